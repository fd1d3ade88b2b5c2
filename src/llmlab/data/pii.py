"""Sensitive-information removal: e-mail addresses, phone numbers, IP addresses, credit-card numbers
(Luhn-checked) and secret/API-key patterns become typed placeholders.

    from llmlab.data.pii import scrub_pii
    text, counts = scrub_pii("mail bob@example.com from 10.0.0.1")
    # -> "mail <EMAIL> from <IP>", {"EMAIL": 1, "IP": 1}

Rules for look-alikes that must stay untouched (each is tested in ``tests/data/test_clean_pii.py``):
- a dotted quad right after a version word ("version 1.2.3.4", "v1.2.3.4", "release 10.0.0.1") is a
  version number, not an address; dotted runs of five or more numbers are never addresses;
- dates (2024-01-15, 15.01.2024, 01/15/2024) and times (12:30:45) are never phones or IPv6 addresses; an
  IPv6 address must parse (``ipaddress``) and have 3+ hex digits including a decimal one ("a::b" stays);
- a digit run is a credit card only with 13-19 digits, a real issuer prefix (Visa, Mastercard, Amex,
  Discover, Diners, JCB) and a valid Luhn checksum -- so ISBN-13s (978/979...) and random ids stay;
- a phone number needs a "+country" prefix or the North-American 3-3-4 grouping with separators; bare
  digit runs stay (they are more often ids, counts or years than phone numbers).
Secrets are replaced first (a key can contain digit runs that would look like phones), then e-mails (whose
domain could look like an address), credit cards, IPs and phones.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter

KINDS = ("SECRET", "EMAIL", "CREDIT_CARD", "IP", "PHONE")

_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
    re.DOTALL,
)
_TOKENS = re.compile(
    r"(?=[Agsx])(?<![A-Za-z0-9])(?:"
    r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{36,255}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{22,255}"  # GitHub fine-grained tokens
    r"|sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{20,}"  # OpenAI / Anthropic / Stripe-style keys
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab tokens
    r")(?![A-Za-z0-9])"
)
_TOKEN_PREFIXES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "sk-", "xox", "AIza", "glpat-")
# key = value assignments: the value is replaced, the key name kept so the text still reads naturally.
# A value after ":" must look like a credential (contain a digit, or be quoted) so that prose such as
# "the password: silence" is left alone; after "=" any 8+ non-space characters count.
_ASSIGN = re.compile(
    r"(?i)(?<![A-Za-z0-9])((?:api[_-]?key|apikey|secret[_-]?key|access[_-]?key(?:[_-]?id)?|access[_-]?token"
    r"|auth[_-]?token|client[_-]?secret|private[_-]?key|password|passwd|pwd|token|secret)[\"']?\s*(?:=|:)\s*)"
    r"([\"']?)([^\s\"',;]{8,})\2"
)
# A cheap necessary condition for _ASSIGN (how every keyword ends, an optional closing quote, then ":" or
# "="), searched on the lower-cased text: ~10x faster than the full case-insensitive pattern.
_ASSIGN_HINT = re.compile(r"(?:key|token|secret|word|wd|id)[\"']?\s*[:=]")
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)
# 13-19 digits, optionally grouped by single spaces or dashes (4-4-4-4, 4-6-5 for Amex).
_CARD = re.compile(r"\d(?<![\d.,/-]\d)(?:[ -]?\d){12,18}(?![\d/-]|[.,]\d)")
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|6(?:011|5|4[4-9])|3(?:0[0-5]|[689])|35(?:2[89]|[3-8]))")
_IPV4 = re.compile(
    r"(?=\d)(?<![\w.])((?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3})(?![\w]|\.\d)"
)
_VERSION_BEFORE = re.compile(r"(?i)(?:\bversion|\bver\.?|\brelease|\brev\.?|\bbuild|\bv)\s*$")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])")
_PHONE = re.compile(
    r"(?=[\d(+])(?:"
    # international: +CC then 2-5 groups of digits (optionally one group in parentheses)
    r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w-])"
    # North American 3-3-4, the last group after a separator: (555) 123-4567, 555-123-4567, 555.123.4567
    r"|(?<![\w.+-])(?:1[ .-])?(?:\(\d{3}\)[ ]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w-]|\.\d)"
    r")"
)


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum every payment-card number carries (double every second digit from the right)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def is_credit_card(candidate: str) -> bool:
    digits = re.sub(r"[ -]", "", candidate)
    return 13 <= len(digits) <= 19 and bool(_CARD_PREFIX.match(digits)) and luhn_ok(digits)


def scrub_pii(text: str, kinds: tuple[str, ...] = KINDS) -> tuple[str, Counter]:
    """Replace sensitive spans by ``<KIND>`` placeholders; return ``(text, Counter(kind -> count))``."""
    counts: Counter = Counter()

    def sub(pattern: re.Pattern, kind: str, text: str, keep=None, repl=None) -> str:
        def f(m: re.Match) -> str:
            if keep is not None and keep(m):
                return m.group(0)
            counts[kind] += 1
            return repl(m) if repl else f"<{kind}>"

        return pattern.sub(f, text)

    # (Patterns open with a lookahead on their first character: a leading lookbehind alone stops the regex engine
# from skipping ahead to plausible start characters, which made these scans 1.5-3x slower.)
# Cheap C-speed pre-checks skip whole regex scans: every digit-based kind needs at least 7 digits, the
    # token patterns need one of their literal prefixes (or "_" for GitHub's), a key block its header.
    digits = sum(map(text.count, "0123456789"))
    if "SECRET" in kinds:
        if "PRIVATE KEY" in text:
            text = sub(_PRIVATE_KEY, "SECRET", text)
        if "_" in text or any(k in text for k in _TOKEN_PREFIXES):
            text = sub(_TOKENS, "SECRET", text)
        if _ASSIGN_HINT.search(text.lower()):
            text = sub(_ASSIGN, "SECRET", text, keep=lambda m: _ASSIGN_keep(m),
                       repl=lambda m: f"{m.group(1)}{m.group(2)}<SECRET>{m.group(2)}")
    if "EMAIL" in kinds and "@" in text:
        text = sub(_EMAIL, "EMAIL", text)
    if "CREDIT_CARD" in kinds and digits >= 13:
        text = sub(_CARD, "CREDIT_CARD", text, keep=lambda m: not is_credit_card(m.group(0)))
    if "IP" in kinds and digits >= 3:
        text = sub(_IPV4, "IP", text, keep=lambda m: bool(_VERSION_BEFORE.search(text_before(m))))
        if "::" in text or text.count(":") >= 7:
            text = sub(_IPV6, "IP", text, keep=lambda m: not _is_ipv6(m.group(0)))
    if "PHONE" in kinds and digits >= 7:
        text = sub(_PHONE, "PHONE", text, keep=lambda m: not 7 <= sum(c.isdigit() for c in m.group(0)) <= 15)
    return text, counts


def text_before(m: re.Match, width: int = 12) -> str:
    return m.string[max(0, m.start() - width): m.start()]


def _ASSIGN_keep(m: re.Match) -> bool:
    value, quoted, sep = m.group(3), bool(m.group(2)), m.group(1).rstrip()[-1]
    if value.startswith("<") and value.endswith(">"):  # already a placeholder
        return True
    if sep == ":" and not quoted and not any(c.isdigit() for c in value):
        return True
    return False


def _is_ipv6(s: str) -> bool:
    # Validation by the standard library rejects times (12:30:45), C++ scopes and other colon runs.
    # Short colon words ("a::b", "::1") are code or loopback, not a personal address: ask for 3+ hex
    # digits, at least one of them a decimal digit.
    if sum(c in "0123456789abcdefABCDEF" for c in s) < 3 or not any(c.isdigit() for c in s):
        return False
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True
