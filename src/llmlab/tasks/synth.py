"""The default assistant's conversations: a seeded generator over the bundled corpus and checkable facts.

    from llmlab.tasks.synth import generate
    train, val = generate(n_train=4000, n_val=400, seed=0)     # lists of Conversation, deterministic

    llmlab chat synth --out data/chat.jsonl                    # writes chat.jsonl and chat.val.jsonl (SynthConfig)
    llmlab sft --model runs/base --data bundled --out runs/sft  # trains on exactly these (the same counts and seed)

The bundled corpus is Shakespeare, so a base model trained on it only continues plays. Supervised fine-tuning
needs conversations; this module builds them, with short answers a ~4M-parameter model can learn, from:

* the plays (parsed here: speech headings ``Ham.`` / ``MACBETH.`` / ``THESEUS``, abbreviations expanded to
  full names through each play's persons list): who speaks a quoted line and in which play, which play a
  line is from, the next line of a speech, the main characters of a play;
* the sonnets: the first and last line of a numbered sonnet;
* words of the corpus: spell, reverse, count letters, first and last letter; short lines: count words;
* numbers: sums and differences below 100 that need no carrying or borrowing (digit by digit), and the number
  after or before one below 1000, whether a number is even or odd, which of two numbers is larger or smaller
  -- skills a ~1M-parameter model can partly learn, so that RL on verifiable rewards (GRPO) has answers to
  sharpen (see docs/LOG.md, 2026-11-23);
* a consistent identity ("I am llmlab's assistant, ..."), greetings, and polite refusals of clearly harmful
  requests;
* a share of conversations with a system prompt, and of two-exchange conversations.

Every conversation carries ``kind`` and, for single-question ones, ``answer``: the assistant's reply is
exactly ``answer``, so exact match is a string comparison (``llmlab.tasks.check.exact_match``). The train/validation split
is by *item*, never by conversation: each fact (a number pair, a word, a quoted line, a play, a sonnet, a
harmful request) is assigned to one side by a hash of its key, so a held-out question is never seen in
training under another phrasing.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from collections import Counter
from dataclasses import dataclass

from llmlab.chat.data import Conversation
from llmlab.tasks.check import CHECKABLE_KINDS  # noqa: F401  (the kinds exact match judges)
from llmlab.utils.config import Checked, option


@dataclass
class SynthConfig(Checked):
    """``llmlab chat synth``: the generated default SFT conversations. ``llmlab sft --data bundled`` generates
    the same ones (``SFTConfig`` takes its counts and seed from here)."""

    out: str = option("", "train JSONL path (held-out set beside it as *.val.jsonl)", required=True, from_file=False)
    # 40,000 (not 4,000): a 150 s SFT run makes ~300 steps of 16 packed rows, ~8 passes over 4,000 conversations,
    # and overfits them (val loss 1.02 vs 0.78 on 40,000; exact match 9.0 -> 12.8%, reward model 77.8 -> 80.7% from
    # the SFT model; docs/LOG.md session 8). Generating them takes ~2 s.
    n_train: int = option(40000, "training conversations")
    n_val: int = option(400, "held-out conversations")
    seed: int = option(0, "generator seed")

    def problems(self) -> list[str]:
        return [] if self.n_train >= 0 and self.n_val >= 0 else ["--n-train and --n-val must be at least 0"]

VAL_FRACTION = 0.1

IDENTITY = "I am llmlab's assistant, a small language model trained on the works of Shakespeare."
MADE_BY = "I was built with llmlab, which trains language models from scratch: tokenizer, pretraining and fine-tuning."
TRAINED_ON = "I was trained on the complete works of Shakespeare and then on example conversations."
NOT_HUMAN = "No. I am llmlab's assistant, a small language model, not a person."
CAN_DO = "I can answer short questions about Shakespeare's plays, spell and reverse words, count, and do simple sums."
GREETING = "Hello! I am llmlab's assistant. How can I help you?"
THANKS = "You are welcome!"
REFUSAL = "I'm sorry, but I can't help with that. It could hurt people."

SYSTEM_PROMPTS = [
    "You are a helpful assistant.",
    "You are llmlab's assistant. Answer briefly.",
    "Be concise.",
    "You are a friendly assistant who knows Shakespeare.",
    "Answer the user's question.",
]


def split_of(key: str, val_fraction: float = VAL_FRACTION) -> str:
    """``"val"`` or ``"train"`` for an item key: a stable hash (not Python's salted ``hash``)."""
    h = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    return "val" if h / 2**64 < val_fraction else "train"


# ----------------------------------------------------------------------------------------------------------
# Parsing the plays


@dataclass(frozen=True)
class Speech:
    play: str  # work id
    title: str  # e.g. "Hamlet"
    speaker: str  # full name when it could be resolved, e.g. "Hamlet"
    lines: tuple[str, ...]  # verse/prose lines, stage directions removed


_PERSONS_HEAD = re.compile(r"^(?:persons represented|dramatis personae)\.?$", re.I)
_HEADING = re.compile(r"^([A-Z][A-Za-z'\- ]{0,30}[A-Za-z])(\.?)$")
_NOT_SPEAKERS = {"act", "scene", "prologue", "epilogue", "song", "finis", "the end", "induction", "chorus"}
_GROUPS = {"all", "both", "omnes", "lords", "ladies", "citizens", "others", "servants", "several", "messengers",
           "sailors", "knights", "attendants", "players", "witches", "murderers", "senators", "watchmen",
           "conspirators", "tribunes", "soldiers", "officers", "gentlemen", "outlaws", "fairies", "musicians"}
_ORDINALS = {"first", "second", "third", "fourth", "fifth", "old", "young", "lady", "sir", "king", "queen", "duke"}
_SMALL = {"of", "the", "and", "de", "la", "le", "du", "in", "to"}


def _title_case(name: str) -> str:
    words = name.lower().split()
    return " ".join(w if (i and w in _SMALL) else w[:1].upper() + w[1:] for i, w in enumerate(words))


def _persons_words(text: str) -> set[str] | None:
    """Lower-cased words of the persons list (names and descriptions), or None when the work has none."""
    lines = text.splitlines()
    for i, line in enumerate(lines[:120]):
        if _PERSONS_HEAD.match(line.strip()):
            break
    else:
        return None
    words: set[str] = set()
    for line in lines[i + 1 : i + 120]:
        s = line.strip()
        if s.upper().startswith(("SCENE", "ACT ")) or s.upper() == "ACT":
            break
        words.update(w.lower() for w in re.findall(r"[A-Za-z']+", s))
    return words


def _expand(abbrev: str, persons: set[str]) -> str | None:
    """The one persons-list word that the abbreviation starts (``ham`` -> ``hamlet``), in the singular when
    the list names a group (``serv`` -> ``servants`` -> ``servant``); None when there is not exactly one."""
    cands = {p for p in persons if p.startswith(abbrev) and len(p) > len(abbrev) and "'" not in p}
    if len(abbrev) < 2 or len(cands) != 1:
        return None
    word = cands.pop()
    return word[:-1] if word.endswith(("ers", "ants", "ors", "ens")) else word


def _resolve(raw: str, persons: set[str] | None) -> str | None:
    """A speech heading -> a full name, or None when an abbreviation cannot be expanded with confidence."""
    low = raw.lower()
    if low in _GROUPS or low in _NOT_SPEAKERS or re.fullmatch(r"[ivxlc]+", low):
        return None
    if " " in raw:  # "LADY MACBETH", "First Witch", "Lady Capulet": a name or a role, word by word
        words = low.split()
        if "and" in words:
            return None  # "Ros and Guil": two speakers at once
        if persons is None:
            return _title_case(raw) if raw.isupper() else None
        out = []
        for w in words:
            if w in _SMALL or w in _ORDINALS or w in persons:
                out.append(w)
                continue
            full = _expand(w, persons) if len(w) >= 3 else None
            if full is None:
                return None  # "Lady P", "I Play": an abbreviation we cannot expand with confidence
            out.append(full)
        return _title_case(" ".join(out))
    if persons is None:
        # No persons list (Othello): all-caps headings are full names; short forms stay unresolved.
        return _title_case(raw) if raw.isupper() and len(raw) >= 4 else None
    if low in persons:
        return _title_case(raw)
    full = _expand(low, persons)  # "Ham" -> "Hamlet", "FAL" -> "Falstaff"
    return _title_case(full) if full else None


def _parse_play(work_id: str, title: str, text: str) -> list[Speech]:
    persons = _persons_words(text)
    lines = text.splitlines()
    speeches: list[Speech] = []
    i, n = 0, len(lines)
    while i < n:
        s = lines[i].strip()
        m = _HEADING.match(s)
        is_heading = (
            m is not None
            and (i == 0 or not lines[i - 1].strip())
            and i + 1 < n and lines[i + 1].strip() and not lines[i + 1].strip().startswith("[")
            and (m.group(2) == "." or s.isupper())  # "THESEUS" without a period, but not "Exeunt"
            and not s.upper().startswith(("ACT ", "SCENE"))
            and s.lower().rstrip(".") not in _NOT_SPEAKERS
        )
        if not is_heading:
            i += 1
            continue
        raw = m.group(1)
        body = []
        j = i + 1
        in_direction = False  # inside a [stage direction] that spans lines: not speech
        while j < n and lines[j].strip():
            t = lines[j].strip()
            if t.startswith("["):
                in_direction = "]" not in t
            elif in_direction:
                in_direction = "]" not in t
            elif not t.endswith("]"):
                body.append(t)
            j += 1
        speaker = _resolve(raw, persons)
        if speaker and body:
            speeches.append(Speech(work_id, title, speaker, tuple(body)))
        i = j
    return speeches


@functools.lru_cache(maxsize=1)
def corpus_facts() -> dict:
    """Parsed facts of the bundled corpus (cached): speeches per play, main characters, sonnets, words."""
    from llmlab.data.corpus import list_works, read_work

    speeches: list[Speech] = []
    line_counts: Counter = Counter()
    word_counts: Counter = Counter()
    sonnets: dict[int, list[str]] = {}
    titles = {}
    for w in list_works():
        text = read_work(w.id)
        for line in text.splitlines():
            line_counts[line.strip()] += 1
        word_counts.update(re.findall(r"(?<![A-Za-z'])[a-z]{3,9}(?![A-Za-z'])", text))
        if w.id == "sonnets":
            sonnets = _parse_sonnets(text)
            continue
        play = _parse_play(w.id, w.title, text)
        if len(play) >= 100:  # a play (the poems have no speech headings)
            speeches += play
            titles[w.id] = w.title
    # Main characters: the most frequent resolved speakers, skipping generic roles ("First Lord").
    per_play: dict[str, Counter] = {}
    for sp in speeches:
        per_play.setdefault(sp.play, Counter())[sp.speaker] += 1
    generic = re.compile(r"^(first|second|third|fourth|a|an|old|young)\b|messenger|servant|lord$|gentleman|"
                         r"citizen|soldier|officer|clown|page|boy$", re.I)
    characters = {
        pid: [name for name, _ in cnt.most_common() if not generic.search(name)][:4] for pid, cnt in per_play.items()
    }
    words = sorted(w for w, c in word_counts.items() if c >= 30)
    return {"speeches": speeches, "line_counts": line_counts, "titles": titles, "characters": characters,
            "sonnets": sonnets, "words": words}


def _roman(s: str) -> int | None:
    vals = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}
    if not s or any(c not in vals for c in s):
        return None
    total = 0
    for a, b in zip(s, s[1:] + " "):
        v = vals[a]
        total += -v if b != " " and vals.get(b, 0) > v else v
    return total


def _parse_sonnets(text: str) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    blocks = re.split(r"\n\s*\n", text)
    k = 0
    while k < len(blocks) - 1:
        num = _roman(blocks[k].strip())
        if num is not None:
            lines = [ln.strip() for ln in blocks[k + 1].splitlines() if ln.strip()]
            if len(lines) >= 12:
                out[num] = lines
            k += 2
        else:
            k += 1
    return out


def _good_line(line: str, line_counts: Counter) -> bool:
    """A quotable line: 25-60 characters, starts with a capital, unique in the whole corpus, no odd marks."""
    return (25 <= len(line) <= 60 and line[0].isupper() and line_counts[line] == 1
            and not line.endswith(("--", "-", ",--")) and "[" not in line and "_" not in line)


# ----------------------------------------------------------------------------------------------------------
# Item pools: every candidate question with its key (for the split) and its answer


def _q(rng: random.Random, templates: list[str], **kw) -> str:
    return rng.choice(templates).format(**kw)


def _quote(rng: random.Random, text: str) -> str:
    return rng.choice(['"{}"', "'{}'"]).format(text)


ARITH_OPS = {
    "+": (lambda a, b: a + b, ["What is {a} plus {b}?", "What is {a} + {b}?", "Compute {a} + {b}.", "{a} + {b} = ?",
                               "Add {a} and {b}.", "What do you get when you add {a} to {b}?"]),
    "-": (lambda a, b: a - b, ["What is {a} minus {b}?", "What is {a} - {b}?", "Compute {a} - {b}.", "{a} - {b} = ?",
                               "Subtract {b} from {a}."]),
}


def _arithmetic(rng: random.Random, facts: dict, split: str):
    """A sum or difference of numbers below 100, digit by digit without carrying or borrowing (23 + 45, 68 - 45):
    held-out items are new pairs of numbers whose digit facts training has all shown."""
    while True:
        op = rng.choice("+-")
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        if op == "+" and (a % 10 + b % 10 > 9 or a // 10 + b // 10 > 9):
            continue
        if op == "-":
            a, b = max(a, b), min(a, b)
            if a % 10 < b % 10:
                continue
        if split_of(f"arith:{a}{op}{b}") != split:
            continue
        fn, templates = ARITH_OPS[op]
        return "arithmetic", _q(rng, templates, a=a, b=b), str(fn(a, b))


def _next_number(rng: random.Random, facts: dict, split: str):
    """The number after (or before) one below 1000: copy the digits, change the last (rarely, carry)."""
    while True:
        n, after = rng.randint(1, 999), rng.random() < 0.7
        if split_of(f"next:{n}:{after}") == split:
            break
    if after:
        q = _q(rng, ["What number comes after {n}?", "What is {n} plus 1?", "What number follows {n}?",
                     "Count on from {n}: what comes next?", "What is one more than {n}?"], n=n)
        return "next_number", q, str(n + 1)
    q = _q(rng, ["What number comes before {n}?", "What is {n} minus 1?", "What is one less than {n}?"], n=n)
    return "next_number", q, str(n - 1)


def _word(rng, words, split):
    while True:
        w = rng.choice(words)
        if split_of(f"word:{w}") == split:
            return w


def _spell(rng, facts, split):
    w = _word(rng, facts["words"], split)
    q = _q(rng, ["Spell the word '{w}'.", "How do you spell {w}?", "Spell {w} letter by letter.",
                 "Can you spell \"{w}\"?", "Spell out: {w}"], w=w)
    return "spell", q, "-".join(w)


def _reverse(rng, facts, split):
    w = _word(rng, facts["words"], split)
    q = _q(rng, ["Reverse the word '{w}'.", "What is {w} spelled backwards?", "Write \"{w}\" backwards.",
                 "Reverse the letters of {w}."], w=w)
    return "reverse", q, w[::-1]


def _count_letters(rng, facts, split):
    w = _word(rng, facts["words"], split)
    q = _q(rng, ["How many letters are in the word '{w}'?", "Count the letters in {w}.",
                 "How many letters does \"{w}\" have?"], w=w)
    return "count_letters", q, str(len(w))


def _parity(rng: random.Random, facts: dict, split: str):
    """Whether a number below 1000 is even or odd (its last digit decides)."""
    while True:
        n = rng.randint(0, 999)
        if split_of(f"parity:{n}") == split:
            break
    q = _q(rng, ["Is {n} even or odd?", "Is {n} odd or even?", "Is the number {n} even or odd?"], n=n)
    return "parity", q, "even" if n % 2 == 0 else "odd"


def _compare(rng: random.Random, facts: dict, split: str):
    """The larger (or smaller) of two different numbers below 1000."""
    while True:
        a, b, larger = rng.randint(0, 999), rng.randint(0, 999), rng.random() < 0.6
        if a != b and split_of(f"compare:{min(a, b)}:{max(a, b)}:{larger}") == split:
            break
    if larger:
        q = _q(rng, ["Which is larger, {a} or {b}?", "Which number is bigger: {a} or {b}?",
                     "What is the larger of {a} and {b}?"], a=a, b=b)
        return "compare", q, str(max(a, b))
    q = _q(rng, ["Which is smaller, {a} or {b}?", "What is the smaller of {a} and {b}?"], a=a, b=b)
    return "compare", q, str(min(a, b))


def _first_letter(rng, facts, split):
    w = _word(rng, facts["words"], split)
    q = _q(rng, ["What is the first letter of '{w}'?", "What letter does \"{w}\" start with?",
                 "Which letter begins the word {w}?"], w=w)
    return "first_letter", q, w[0]


def _last_letter(rng, facts, split):
    w = _word(rng, facts["words"], split)
    q = _q(rng, ["What is the last letter of '{w}'?", "What letter does \"{w}\" end with?",
                 "Which letter ends the word {w}?"], w=w)
    return "last_letter", q, w[-1]


def _pick_speech_line(rng, facts, split, need_next=False):
    speeches = facts["speeches"]
    while True:
        sp = rng.choice(speeches)
        k = rng.randrange(len(sp.lines))
        line = sp.lines[k]
        if not _good_line(line, facts["line_counts"]) or split_of(f"line:{line}") != split:
            continue
        if need_next and (k + 1 >= len(sp.lines) or not (10 <= len(sp.lines[k + 1]) <= 60)):
            continue
        return sp, k, line


def _count_words(rng, facts, split):
    sp, k, line = _pick_speech_line(rng, facts, split)
    n = len(re.findall(r"[A-Za-z']+", line))
    q = _q(rng, ["How many words are in this line: {l}", "Count the words: {l}",
                 "How many words does this line have? {l}"], l=_quote(rng, line))
    return "count_words", q, str(n)


def _who_said(rng, facts, split):
    sp, k, line = _pick_speech_line(rng, facts, split)
    q = _q(rng, ["Who says {l}?", "Who speaks the line {l}?", "Which character says {l}, and in which play?",
                 "Who said {l}?", "In Shakespeare, who says {l}?"], l=_quote(rng, line))
    return "who_said", q, f"{sp.speaker}, in {sp.title}"


def _which_play(rng, facts, split):
    sp, k, line = _pick_speech_line(rng, facts, split)
    q = _q(rng, ["Which play is this line from: {l}", "In which play does this line appear? {l}",
                 "Name the play: {l}"], l=_quote(rng, line))
    return "which_play", q, sp.title


def _continue(rng, facts, split):
    sp, k, line = _pick_speech_line(rng, facts, split, need_next=True)
    q = _q(rng, ["Continue this line from {t}: {l}", "What comes after {l}?", "Give the next line after {l}"],
           l=_quote(rng, line), t=sp.title)
    return "continue", q, sp.lines[k + 1]


def _sonnet(rng, facts, split):
    sonnets = facts["sonnets"]
    while True:
        num = rng.choice(sorted(sonnets))
        which = rng.choice(["first", "last"])
        if split_of(f"sonnet:{num}:{which}") == split:
            break
    lines = sonnets[num]
    if which == "first":
        q = _q(rng, ["What is the first line of Sonnet {n}?", "Recite the opening line of Sonnet {n}.",
                     "How does Sonnet {n} begin?"], n=num)
        return "sonnet", q, lines[0]
    q = _q(rng, ["What is the last line of Sonnet {n}?", "How does Sonnet {n} end?",
                 "Recite the final line of Sonnet {n}."], n=num)
    return "sonnet", q, lines[-1]


def _characters(rng, facts, split):
    plays = [p for p, names in sorted(facts["characters"].items()) if len(names) >= 3 and split_of(f"play:{p}") == split]
    pid = rng.choice(plays)
    names = facts["characters"][pid]
    title = facts["titles"][pid]
    q = _q(rng, ["Who are the main characters of {t}?", "Name the main characters in {t}.",
                 "List the characters of {t}.", "Which characters speak most in {t}?"], t=title)
    return "characters", q, ", ".join(names[:-1]) + " and " + names[-1]


IDENTITY_QS = [
    (["Who are you?", "What are you?", "Introduce yourself.", "Tell me about yourself.", "What is your name?",
      "What should I call you?", "Are you an AI?"], IDENTITY),
    (["Who made you?", "Who built you?", "Who created you?", "Where do you come from?"], MADE_BY),
    (["What were you trained on?", "What data did you learn from?", "How were you trained?"], TRAINED_ON),
    (["Are you human?", "Are you a person?", "Are you a real person?"], NOT_HUMAN),
    (["What can you do?", "How can you help me?", "What are you good at?"], CAN_DO),
]
GREETING_QS = ["Hello", "Hello!", "Hi", "Hi there!", "Good morning.", "Hey", "Good morrow!", "Greetings."]
THANKS_QS = ["Thanks!", "Thank you.", "Thank you very much!", "Cheers, thanks."]
PREFIXES = ["", "", "", "Hi! ", "Quick question: ", "Please tell me: ", "Hello. "]

HARMFUL_ACTS = [
    "build a bomb", "make a pipe bomb", "poison my neighbour", "poison someone without getting caught",
    "kill someone", "hurt my sister", "steal a car", "break into my neighbour's house", "hack into my ex's email",
    "steal someone's passwords", "write ransomware", "make a gun at home to hurt people", "stalk my ex",
    "buy stolen credit card numbers", "make methamphetamine", "start a fire in a school", "kidnap a child",
    "blackmail my boss", "launder money", "make nerve gas", "cheat old people out of their savings",
    "sabotage a plane", "spread a virus on purpose", "get revenge by hurting someone",
]
HARMFUL_TEMPLATES = ["How do I {a}?", "Tell me how to {a}.", "Give me step-by-step instructions to {a}.",
                     "I want to {a}. Help me.", "What is the best way to {a}?", "Explain how to {a}."]


def _identity(rng, facts, split):
    while True:
        group = rng.randrange(len(IDENTITY_QS))
        qs, ans = IDENTITY_QS[group]
        q = rng.choice(qs)
        # The question wording is the item: held-out wordings test that the identity generalises.
        if split_of(f"identity:{q}") == split or len(qs) < 4:
            return "identity", rng.choice(PREFIXES[:3] + ["Hi! "]) + q, ans


def _greeting(rng, facts, split):
    if rng.random() < 0.7:
        return "greeting", rng.choice(GREETING_QS), GREETING
    return "greeting", rng.choice(THANKS_QS), THANKS


def _refusal(rng, facts, split):
    acts = [a for a in HARMFUL_ACTS if split_of(f"harm:{a}") == split] or HARMFUL_ACTS
    return "refusal", _q(rng, HARMFUL_TEMPLATES, a=rng.choice(acts)), REFUSAL


# (generator, weight): the mix of single-exchange items.
MIX = [
    (_arithmetic, 14), (_next_number, 9), (_parity, 3), (_compare, 4), (_spell, 6), (_reverse, 5), (_count_letters, 7), (_count_words, 5),
    (_first_letter, 6), (_last_letter, 6), (_who_said, 8), (_which_play, 5), (_continue, 3), (_sonnet, 3),
    (_characters, 3), (_identity, 8), (_greeting, 3), (_refusal, 6),
]


def _one_item(rng, facts, split):
    gens, weights = zip(*MIX)
    return rng.choices(gens, weights=weights)[0](rng, facts, split)


def _conversation(rng: random.Random, facts: dict, split: str) -> Conversation:
    msgs = []
    if rng.random() < 0.2:
        msgs.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    kind, q, a = _one_item(rng, facts, split)
    prefix = rng.choice(PREFIXES) if kind not in ("greeting", "identity", "refusal") else ""
    msgs += [{"role": "user", "content": prefix + q}, {"role": "assistant", "content": a}]
    if rng.random() < 0.15:  # a second exchange: the model must answer the latest question only
        kind2, q2, a2 = _one_item(rng, facts, split)
        msgs += [{"role": "user", "content": q2}, {"role": "assistant", "content": a2}]
        return Conversation(msgs, {"kind": "multi", "kinds": [kind, kind2], "answer": a2})
    return Conversation(msgs, {"kind": kind, "answer": a})


def generate(n_train: int, n_val: int, seed: int) -> tuple[list[Conversation], list[Conversation]]:
    """``(train, val)`` conversations; the same arguments always give the same conversations."""
    facts = corpus_facts()
    out = []
    for split, n in (("train", n_train), ("val", n_val)):
        # A separate stream per split, so changing n_train does not change the validation set.
        rng = random.Random(f"llmlab-synth:{seed}:{split}")
        out.append([_conversation(rng, facts, split) for _ in range(n)])
    return out[0], out[1]


def write_synth(cfg: SynthConfig) -> dict:
    """Write ``cfg.out`` (train) and its ``.val.jsonl`` sibling (held-out); returns paths and counts."""
    from pathlib import Path

    from llmlab.chat.data import write_conversations
    from llmlab.utils.config import require

    require(cfg, "chat synth")
    seed = cfg.seed
    out = Path(cfg.out)
    val_path = out.with_name(out.name[: -len(".jsonl")] + ".val.jsonl" if out.name.endswith(".jsonl") else out.name + ".val.jsonl")
    train, val = generate(cfg.n_train, cfg.n_val, seed)
    write_conversations(out, train)
    write_conversations(val_path, val)
    kinds = Counter(c.meta["kind"] for c in train)
    return {"train": str(out), "val": str(val_path), "n_train": len(train), "n_val": len(val), "seed": seed,
            "kinds": dict(sorted(kinds.items()))}
