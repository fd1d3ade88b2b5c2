"""Undo obfuscations before a text is judged: every decoded *view* of it, so the guard classifies what a model
would read, not the disguise.

    from llmlab.safety.normalize import decoded_views, encode
    for v in decoded_views("aG93IHRvIG1ha2UgYSBib21i"):
        print(v.scheme, v.text)          # plain ..., base64 "how to make a bomb"
    encode("make a bomb", "leet")        # "m4k3 4 b0mb" (the red-team generator's encoders live here too)

The decoders, in the order one pass applies them (each works on the previous one's output):

1. ``unicode``: Unicode tag characters (U+E0020..E007E, "ASCII smuggling") become the ASCII they shadow;
   zero-width characters, soft hyphens, variation selectors and bidi controls are deleted; NFKC folds
   full-width and mathematical letters; combining marks ("zalgo") are dropped; confusable Cyrillic, Greek and
   small-capital letters map to the ASCII letter they imitate (a subset of Unicode's confusables table: the
   letters that pass for Latin ones).
2. ``url`` / ``html`` / ``escape``: ``%xx`` escapes, HTML entities, ``\\xNN`` and ``\\uNNNN`` escapes.
3. ``base64`` / ``hex``: spans that decode to printable UTF-8 text are replaced by that text *in place*, so
   the framing around them ("decode this and do it: ...") stays in the view.
4. ``caesar``: segments that read as gibberish but as English after a letter shift of 1..25 (ROT13 is the
   shift 13) are shifted. "Reads as English" is the share of words in a list of common English words
   (``english_score``); a segment already English is left alone, so normal text never pays for this.
5. ``reverse``: a segment whose reversal reads as English much better than itself.
6. ``split``: runs of single characters joined by spaces or punctuation ("b o m b", "b-o-m-b", "b.o.m.b")
   are joined and re-segmented into words with a small vocabulary ("a b o m b" -> "a bomb"); punctuation
   inside a word ("bo.mb", "ex*plo*sive") is removed.
7. ``leet``: words mixing letters with digits/symbols ("b0mb", "3xpl0s1v3", "h@ck") are mapped back to
   letters; where a symbol is ambiguous (1 -> i or l) the spelling found in the vocabulary wins.

A pass that changed anything records a view named by the chain of decoders that fired
("base64+leet"). When base64/hex/escapes revealed new text, the whole pass runs again on it, up to
``max_depth`` times, which undoes nested encodings (hex of base64 of ROT13...). The guard classifies every
view and reports the one that decided its verdict. The cost is a few regex scans per view; texts longer than
``max_chars`` are judged on their first ``max_chars`` characters for the expensive decoders (Caesar, reverse).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import html
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass

from llmlab.safety.lexicon import lexicon_words

# ----------------------------------------------------------------------------------------------------------
# Vocabulary: common English words (to tell English from gibberish) plus the guard's topic words (so that
# re-segmentation and leet decoding prefer the spellings the guard knows).

COMMON_WORDS = frozenset("""
a about above after again against all also am an and any are as at away back be because been before being
below between both but by can cannot could did do does doing done down during each even every few find first
for from further get gets getting give go going good got had has have having he her here hers herself him
himself his how i if in into is it its itself just know let like little long look made make makes making many
me might more most much must my myself need never new no nor not now of off on once one only or other our ours
ourselves out over own people please put really right said same say see she should show so some someone
something step steps still such take teach tell than that the their theirs them themselves then there these
they thing things this those through to too under until up us use used using very want was way ways we well
were what when where which while who whom why will with without would write you your yours yourself
yourselves time year day man woman child world life hand part place case week company system program question
work number home water room mother area money story fact month lot study book eye job word business issue side
kind head house service friend father power hour game line end member law car city community name president
team minute idea kid body information back parent face others level office door health person art war history
party result change morning reason research girl guy moment air teacher force education explain describe
instructions instruction guide tutorial help hello thanks thank yes sure okay ok best easy quick simple
exactly detailed detail list full complete recipe need needed materials ingredients buy build create produce
home house get getting safely safe without caught anyone nobody quickly cheap cheaply fully automatic bake bread
cake cook cooking food eat drink water coffee tea milk sugar salt dinner lunch breakfast dog cat bird fish horse
tree flower garden weather rain snow sun moon star sky sea ocean river lake mountain city town country school
class student teacher lesson learn read reading writing music song play playing movie film picture photo
video camera phone computer laptop email message letter paper pen car bus train plane bike road street walk run
running swim red blue green yellow black white big small old young good bad happy sad funny joke name capital
france paris london english french spanish german language translate meaning mean does else also another answer
questions ask asked tell told friend family mom dad brother sister son daughter wife husband boy girl baby kid
kids legs spider goldfish rainbow rainbows form book ocean recommend joke cats capital sourdough weeds lawn
""".split())

_TAG_BASE = 0xE0000
# Zero-width, soft hyphen, word joiner, invisible operators, BOM, Mongolian vowel separator, variation selectors.
_INVISIBLE = "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff"
_BIDI = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_DELETE = {ord(c): None for c in _INVISIBLE + _BIDI} | {cp: None for cp in range(0xFE00, 0xFE10)}

# Confusables: letters of other scripts that pass for Latin ones (a subset of Unicode's confusables.txt).
_CONFUSABLE_PAIRS = (
    # Cyrillic
    "аa бb вb гr дd еe ёe һh іi їi јj кk лn мm нh оo пn рp сc тt уy фf хx ѕs ԁd ԛq ԝw ӏl"
    " АA ВB ЕE ЅS ІI ЈJ КK МM НH ОO РP СC ТT ХX УY ԌG"
    # Greek
    " αa βb γy δd εe ζz ηn ιi κk μu νv οo ρp σo τt υu χx ωw ϲc"
    " ΑA ΒB ΕE ΖZ ΗH ΙI ΚK ΜM ΝN ΟO ΡP ΤT ΥY ΧX"
    # Latin look-alikes and small capitals
    " ıi ȷj ɑa ɡg ɩi ɪi ʀr ʏy ᴀa ʙb ᴄc ᴅd ᴇe ꜰf ɢg ʜh ᴊj ᴋk ʟl ᴍm ɴn ᴏo ᴘp ǫq ꜱs ᴛt ᴜu ᴠv ᴡw ʏy ᴢz"
    # Armenian, Cherokee and others commonly seen in homoglyph attacks
    " օo ոn սu ցg ꭺa Ꭺa Ꭼe ᎥI ꓲI ꓳO ꓑP ꓢS ꓔT"
)
_CONFUSABLES = {ord(p[0]): p[1] for p in _CONFUSABLE_PAIRS.split()}

_LEET = {"0": "o", "1": "il", "2": "z", "3": "e", "4": "a", "5": "s", "6": "g", "7": "t", "8": "b", "9": "g",
         "@": "a", "$": "s", "!": "i", "|": "l", "+": "t", "€": "e", "(": "c", "<": "c", "¡": "i"}
_LEET_CHARS = re.escape("".join(_LEET))
# A word of letters and leet symbols holding at least one letter and one symbol ("b0mb", "h@ck", "3xpl0d3").
_LEET_WORD = re.compile(rf"(?<![\w@$!|+€(<¡])(?=[\w{_LEET_CHARS}]*[a-zA-Z])(?=[\w{_LEET_CHARS}]*[{_LEET_CHARS}])"
                        rf"[a-zA-Z0-9{_LEET_CHARS}](?:[a-zA-Z0-9{_LEET_CHARS}]|'(?=[a-zA-Z0-9{_LEET_CHARS}]))+")
_WORD = re.compile(r"[a-zA-Z]+")
# A run of >= 3 single characters joined by one kind of separator: "b o m b", "b-o-m-b", "b . o . m . b".
_SPLIT_RUN = re.compile(r"(?<![\w@$'])(?:[a-zA-Z0-9@$'](?P<sep>\s{1,3}|\s*[-._*/|~+·,]\s*)){2,}[a-zA-Z0-9@$](?![\w@$])")
_INNER_PUNCT = re.compile(r"(?<=[a-zA-Z0-9])[-._*·|~`^](?=[a-zA-Z])")
_B64_SPAN = re.compile(r"(?<![A-Za-z0-9+/_=-])[A-Za-z0-9+/_-]{12,}={0,2}(?![A-Za-z0-9+/_=-])")
_HEX_SPAN = re.compile(r"(?<![0-9A-Za-z])(?:(?:0x|\\x)?[0-9A-Fa-f]{2}[\s:,]?){6,}(?![0-9A-Za-z])")
_URL_ESC = re.compile(r"%[0-9A-Fa-f]{2}")
_HTML_ESC = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z]{2,8});")
_BACKSLASH_ESC = re.compile(r"\\(?:x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8})")
_SEGMENT = re.compile(r"(?:[^\n:;\"'`“”‘’()\[\]{}<>?!.\-]|\.(?!\s)|-(?!-))+")


@dataclass(frozen=True)
class View:
    """One reading of a text: ``scheme`` names the decoders that produced it ("plain" for the text as given,
    "base64+leet" for leetspeak found inside Base64), ``text`` is what they produced."""

    scheme: str
    text: str


@functools.lru_cache(maxsize=1)
def vocabulary() -> frozenset[str]:
    """Common English words plus the guard's lexicon words (so leet and split-word decoding spell them right)."""
    return COMMON_WORDS | lexicon_words()


# ----------------------------------------------------------------------------------------------------------
# Single decoders: each returns the decoded text, or the input unchanged when it found nothing to decode.


def unicode_fold(text: str) -> str:
    """Tag characters to ASCII, invisible and bidi characters deleted, NFKC, combining marks dropped,
    confusable letters mapped to ASCII."""
    if text.isascii():
        return text
    text = "".join(chr(ord(c) - _TAG_BASE) if 0xE0020 <= ord(c) <= 0xE007E else c for c in text)
    text = "".join(c for c in text if not 0xE0000 <= ord(c) <= 0xE007F)  # tag begin/cancel markers
    text = unicodedata.normalize("NFKC", text.translate(_DELETE))
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", text).translate(_CONFUSABLES)


def unescape(text: str) -> tuple[str, list[str]]:
    """URL percent-escapes, HTML entities and backslash escapes; returns the text and which fired."""
    fired = []
    if _URL_ESC.search(text):
        new = urllib.parse.unquote(text.replace("+", " ") if text.count("%") >= 3 and " " not in text else text)
        if new != text:
            text, fired = new, fired + ["url"]
    if _HTML_ESC.search(text):
        new = html.unescape(text)
        if new != text:
            text, fired = new, fired + ["html"]
    if _BACKSLASH_ESC.search(text):
        def one(m: re.Match) -> str:
            try:
                return chr(int(m.group(0)[2:], 16))
            except ValueError:
                return m.group(0)
        new = _BACKSLASH_ESC.sub(one, text)
        if new != text:
            try:  # \xNN escapes of UTF-8 bytes: make them the characters they encode
                new = new.encode("latin-1").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                pass
            text, fired = new, fired + ["escape"]
    return text, fired


def _printable_text(raw: bytes, min_len: int = 4) -> str | None:
    """``raw`` as text if it is valid UTF-8 and at least 90% printable (letters, punctuation, spaces)."""
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(s) < min_len:
        return None
    ok = sum(c.isprintable() or c in "\n\t\r" for c in s)
    alnum = sum(c.isalnum() for c in s)
    return s if ok >= 0.9 * len(s) and alnum >= 0.6 * len(s.replace(" ", "")) else None


def decode_base64(text: str) -> str:
    """Every span of >= 12 Base64 characters that decodes to printable text, replaced by that text."""
    def one(m: re.Match) -> str:
        span = m.group(0)
        # A plain word or identifier is not Base64: require a digit, '+', '/', '=' or mixed case.
        if span.isalpha() and (span.islower() or span.isupper()):
            return span
        body = span.rstrip("=")
        for alt in (None, b"-_"):
            try:
                raw = base64.b64decode(body + "=" * (-len(body) % 4), altchars=alt, validate=True)
            except (binascii.Error, ValueError):
                continue
            s = _printable_text(raw)
            if s is not None:
                return s
        return span
    return _B64_SPAN.sub(one, text) if _B64_SPAN.search(text) else text


def decode_hex(text: str) -> str:
    """Runs of >= 6 hex byte pairs (``68 6f 77``, ``686f77``, ``\\x68\\x6f``, ``0x68 0x6f``) that decode to
    printable text, replaced by that text."""
    def one(m: re.Match) -> str:
        span = m.group(0)
        digits = re.sub(r"0x|\\x|[\s:,]", "", span)
        if len(digits) % 2:
            return span
        s = _printable_text(bytes.fromhex(digits))
        return s + (" " if span[-1].isspace() else "") if s is not None else span
    return _HEX_SPAN.sub(one, text) if _HEX_SPAN.search(text) else text


def english_score(text: str, min_len: int = 1) -> float:
    """Share of the words in ``text`` (of at least ``min_len`` letters) that are common English words (0 for
    no words)."""
    words = [w for w in _WORD.findall(text.lower()) if len(w) >= min_len]
    if not words:
        return 0.0
    vocab = vocabulary()
    return sum(w in vocab for w in words) / len(words)


def _shift(text: str, k: int) -> str:
    lo = "abcdefghijklmnopqrstuvwxyz"
    up = lo.upper()
    return text.translate(str.maketrans(lo + up, lo[k:] + lo[:k] + up[k:] + up[:k]))


def decode_caesar(text: str, max_chars: int = 4000) -> str:
    """Segments (between quotes, colons, brackets, line breaks) that are not English but become English under
    one Caesar shift (ROT13 included) are shifted back."""
    def one(m: re.Match) -> str:
        seg = m.group(0)
        # Single letters ("a", "i") are words under too many shifts: judge on words of two letters or more.
        words = [w for w in _WORD.findall(seg) if len(w) > 1]
        if len(words) < 3 or english_score(seg, 2) >= 0.5 or sum(c.isdigit() for c in seg) > 0.1 * len(seg):
            return seg  # too short to tell, already English, or leetspeak (digits inside words)
        best_k, best = 0, english_score(seg, 2)
        for k in range(1, 26):
            s = english_score(_shift(seg, k), 2)
            if s > best:
                best_k, best = k, s
        return _shift(seg, best_k) if best_k and best >= 0.5 else seg
    head, tail = text[:max_chars], text[max_chars:]
    return _SEGMENT.sub(one, head) + tail


def decode_reverse(text: str, max_chars: int = 4000) -> str:
    """Lines, or the parts of a line after a colon, that read as English reversed (character by character)
    but not as written."""
    def one(seg: str) -> str:
        if len(_WORD.findall(seg)) < 3 or english_score(seg) >= 0.5:
            return seg
        rev = seg[::-1]
        return rev if english_score(rev) >= 0.6 else seg
    head, tail = text[:max_chars], text[max_chars:]
    parts = re.split(r"(\n|: |\? |! | -- |\. )", head)  # the separators are kept (odd indices)
    return "".join(p if i % 2 else one(p) for i, p in enumerate(parts)) + tail


def segment_words(s: str) -> str:
    """Split a run of letters into vocabulary words ("abomb" -> "a bomb", "bypasstwofactor" -> "bypass two
    factor"): the split of least cost, a known word costing 1 and an unknown letter 2 (consecutive unknown
    letters stay together as one piece)."""
    vocab = vocabulary()
    n = len(s)
    if n > 200:
        return s
    cost = [0.0] + [float("inf")] * n
    back: list[tuple[int, bool]] = [(0, False)] * (n + 1)
    for i in range(1, n + 1):
        if cost[i - 1] + 2 < cost[i]:
            cost[i], back[i] = cost[i - 1] + 2, (i - 1, False)
        for j in range(max(0, i - 20), i - 1 if i > 1 else 0):
            if s[j:i] in vocab and cost[j] + 1 < cost[i]:
                cost[i], back[i] = cost[j] + 1, (j, True)
        if s[i - 1:i] in ("a", "i") and cost[i - 1] + 1 < cost[i]:
            cost[i], back[i] = cost[i - 1] + 1, (i - 1, True)
    pieces: list[tuple[str, bool]] = []
    i = n
    while i > 0:
        j, known = back[i]
        pieces.append((s[j:i], known))
        i = j
    if sum(len(p) for p, known in pieces if not known) > 0.25 * n:
        return s  # mostly unknown letters: a guess would invent words
    words: list[str] = []
    for piece, known in reversed(pieces):
        if not known and words and words[-1].startswith("\0"):
            words[-1] += piece
        else:
            words.append(piece if known else "\0" + piece)
    return " ".join(w.lstrip("\0") for w in words)


def join_split_words(text: str) -> str:
    """Join letters spelled out one by one and remove punctuation inside words."""
    def one(m: re.Match) -> str:
        run = m.group(0)
        letters = sum(c.isalnum() or c in "@$" for c in run)
        if len(re.findall(r"[-._*/|~+·,]", run)) >= (letters - 1) / 2:
            # "b-o-m-b a-t h-o-m-e": punctuation joins the letters of a word, spaces part words
            return " ".join(re.sub(r"[-._*/|~+·,]", "", w) for w in run.split())
        chars = re.sub(r"[\s\-._*/|~+·,]", "", run)
        return segment_words(chars.lower()) if chars.replace("'", "").isalpha() else chars
    text = _SPLIT_RUN.sub(one, text)
    return _INNER_PUNCT.sub("", text)


def decode_leet(text: str) -> str:
    """Words mixing letters and leet symbols mapped back to letters; ambiguous symbols take the spelling in
    the vocabulary when one exists."""
    vocab = vocabulary()

    def one(m: re.Match) -> str:
        word = m.group(0)
        core = word.rstrip("!|+(<")  # "Hi!" is a greeting, not "hii"
        if len(core) < 2 or not re.search(f"[{_LEET_CHARS}]", core):
            return word
        tail, word = word[len(core):], core
        options = [""]
        for c in word.lower():
            alts = _LEET.get(c, c)
            options = [o + a for o in options for a in alts][:64]
        for o in options:
            if o in vocab or o.rstrip("s") in vocab:
                return o + tail
        return options[0] + tail
    out = _LEET_WORD.sub(one, text)
    if out != text:
        # In text that is leetspeak, short numbers are words too ("4" a, "70" to, "47" at).
        def num(m: re.Match) -> str:
            options = [""]
            for c in m.group(0):
                options = [o + a for o in options for a in _LEET.get(c, c)]
            return next((o for o in options if o in COMMON_WORDS), m.group(0))
        out = re.sub(r"(?<![\w.,:/])\d{1,3}(?![\w.,:/])", num, out)
    return out


# ----------------------------------------------------------------------------------------------------------
# All views


def _one_pass(text: str, max_chars: int) -> tuple[list[View], View | None]:
    """Apply the decoders in order; return the views after each that fired and, when a revealing decoder
    (escapes, base64, hex) fired, the view right after it: that text earns another pass (the lossy decoders
    after it, leet and split, would garble a nested encoding)."""
    views: list[View] = []
    chain: list[str] = []
    revealed: View | None = None

    def step(name: str, new: str) -> None:
        nonlocal text
        if new != text:
            text = new
            chain.append(name)
            views.append(View("+".join(chain), text))

    step("unicode", unicode_fold(text))
    new, fired = unescape(text)
    if fired:
        step("+".join(fired), new)
    before = text
    step("base64", decode_base64(text))
    step("hex", decode_hex(text))
    if fired or text != before:
        revealed = views[-1]
    base, base_chain = text, list(chain)
    step("caesar", decode_caesar(text, max_chars))
    step("reverse", decode_reverse(text, max_chars))
    ciphered = text != base
    step("split", join_split_words(text))
    step("leet", decode_leet(text))
    if ciphered:
        # A shift or reversal can be a false reading that garbles what split/leet would have recovered
        # ("h0w 70 53t up" shifts to more common words): also read the text without them.
        text, chain = base, base_chain
        step("split", join_split_words(text))
        step("leet", decode_leet(text))
    return views, revealed


def decoded_views(text: str, max_depth: int = 4, max_chars: int = 4000) -> list[View]:
    """The text as given (scheme "plain") followed by every distinct decoded view, nested encodings unwrapped
    up to ``max_depth`` passes deep."""
    out = [View("plain", text)]
    seen = {text}
    todo = [("", text)]
    for _ in range(max_depth):
        nxt = []
        for prefix, t in todo:
            views, revealed = _one_pass(t, max_chars)
            for v in views:
                if v.text not in seen:
                    seen.add(v.text)
                    out.append(View(prefix + v.scheme, v.text))
            if revealed is not None:
                nxt.append((prefix + revealed.scheme + ">", revealed.text))
        if not nxt:
            break
        todo = nxt
    return out


# ----------------------------------------------------------------------------------------------------------
# Encoders (the red-team generator's obfuscations; the tests check each round-trips through decoded_views)

_HOMOGLYPH_OUT = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "i": "і", "s": "ѕ",
                  "A": "А", "B": "В", "E": "Е", "H": "Н", "K": "К", "M": "М", "O": "О", "P": "Р", "T": "Т"}
_LEET_OUT = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7", "b": "8", "g": "9"}


def encode(text: str, scheme: str, *, seed: int = 0) -> str:
    """``text`` obfuscated with ``scheme`` (one of ``ENCODINGS``); ``a>b`` nests (``b`` of ``a`` of text)."""
    if ">" in scheme:
        for s in scheme.split(">"):
            text = encode(text, s, seed=seed)
        return text
    if scheme == "base64":
        return base64.b64encode(text.encode()).decode()
    if scheme == "hex":
        return text.encode().hex(" ")
    if scheme == "rot13":
        return codecs.encode(text, "rot13")
    if scheme.startswith("caesar"):
        return _shift(text, int(scheme[6:] or 3))
    if scheme == "leet":
        return "".join(_LEET_OUT.get(c, c) if (i + seed) % 3 else c for i, c in enumerate(text))
    if scheme == "url":
        return urllib.parse.quote(text, safe="")
    if scheme == "html":
        return "".join(f"&#{ord(c)};" if c.isalpha() and (i + seed) % 2 else c for i, c in enumerate(text))
    if scheme == "zero-width":
        return "\u200b".join(text)
    if scheme == "bidi":
        return "".join(c + ("\u202d" if i % 2 else "\u2066") for i, c in enumerate(text))
    if scheme == "homoglyph":
        return "".join(_HOMOGLYPH_OUT.get(c, c) for c in text)
    if scheme == "fullwidth":
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
    if scheme == "tags":
        return "".join(chr(_TAG_BASE + ord(c)) if " " <= c <= "~" else c for c in text)
    if scheme == "split":
        seps = [" ", "-", ".", "*"]
        sep = seps[seed % len(seps)]
        return " ".join(sep.join(w) if len(w) > 3 else w for w in text.split(" "))
    if scheme == "reverse":
        return text[::-1]
    raise ValueError(f"unknown encoding {scheme!r}; known: {', '.join(ENCODINGS)}")


ENCODINGS = ("base64", "hex", "rot13", "caesar3", "leet", "url", "html", "zero-width", "bidi", "homoglyph",
             "fullwidth", "tags", "split", "reverse")
