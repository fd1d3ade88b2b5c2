"""Quality filters in the style of Gopher (Rae et al. 2021, appendix A) and C4 (Raffel et al. 2020).

    from llmlab.data.filters import FilterConfig, quality_filter, remove_boilerplate_lines
    text, n_lines = remove_boilerplate_lines(text)       # C4: drop boilerplate *lines*
    reason = quality_filter(text, FilterConfig())        # None to keep, else e.g. "too_few_words"

Each document-level rule returns the name of the first rule it fails; ``disabled`` switches rules off by name
(``llmlab data prepare --no-filter NAME``). The defaults are Gopher's published thresholds except where the
bundled Shakespeare plays (short speaker-tag lines such as "Ham." repeated hundreds of times) would fail:
the duplicate-line rule counts *characters* in repeated lines (Gopher's second variant, threshold 0.2) rather
than the fraction of lines, since repeated speaker tags are structure, not spam. ``tests/data/test_filters.py``
checks that all 42 works pass and that each rule fires on a document built to break it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FILTERS = (
    "boilerplate_lines",
    "too_few_words",
    "too_many_words",
    "mean_word_length",
    "symbol_ratio",
    "digit_ratio",
    "alpha_words",
    "ellipsis_lines",
    "bullet_lines",
    "duplicate_lines",
    "top_ngram",
    "duplicate_ngrams",
)


@dataclass
class FilterConfig:
    """Thresholds of the quality filters; ``disabled`` names rules to skip (see ``FILTERS``)."""

    min_words: int = 50
    max_words: int = 1_000_000  # a whole play is ~30k words; Gopher's 100k is meant for web pages
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1  # "#" and "..."/"…" per word
    max_digit_ratio: float = 0.2  # digits per non-space character
    min_alpha_words: float = 0.8  # words with at least one letter
    max_ellipsis_lines: float = 0.3  # non-empty lines ending with "..." or "…"
    max_bullet_lines: float = 0.9  # non-empty lines starting with a bullet
    max_duplicate_line_chars: float = 0.2  # characters in lines that repeat an earlier line
    max_top_ngram_chars: tuple[float, ...] = (0.20, 0.18, 0.16)  # n = 2, 3, 4
    max_duplicate_ngram_chars: tuple[float, ...] = (0.15, 0.14, 0.13, 0.12, 0.11, 0.10)  # n = 5..10
    disabled: tuple[str, ...] = field(default_factory=tuple)


# C4's line-level rules: lines with these phrases are site furniture, not content; a line ending in "{" is
# code. Matched as lower-case substrings (C-speed ``in``) -- one case-insensitive regex alternation over the
# whole text was the slowest step of the filters (1.7 s on the 5 MB bundled corpus).
BOILERPLATE_PHRASES = (
    "lorem ipsum", "javascript", "cookie policy", "use of cookies", "uses cookies", "terms of use",
    "terms of service", "privacy policy", "all rights reserved", "click here", "subscribe to our newsletter",
)
# Counted over the whole text at once (one C scan instead of a Python call per line).
_BULLET = re.compile(r"^[ \t]*(?:[-*•●▪‣◦–]|\d+[.)])\s", re.MULTILINE)
_ELLIPSIS = re.compile(r"(?:\.\.\.|…)[ \t]*$", re.MULTILINE)
# Gopher's normalised words: lower-cased, punctuation dropped ("--Stand," -> "stand", "o'er" stays).
_NGRAM_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_DIGIT = re.compile(r"\d")
# A whitespace-delimited word without any letter (the complement of Gopher's "alphabetic word"); [^\W\d_]
# is "a letter" in Python's Unicode regex syntax.
_NO_ALPHA_WORD = re.compile(r"(?<!\S)(?:(?![^\W\d_])\S)+(?!\S)")


def remove_boilerplate_lines(text: str) -> tuple[str, int]:
    """Drop C4 boilerplate lines ("cookie policy", "javascript", "lorem ipsum", ...); return the new text and
    how many lines went. Text without any boilerplate comes back unchanged (same object)."""
    low = text.lower()
    if "{" not in text and not any(p in low for p in BOILERPLATE_PHRASES):
        return text, 0
    kept, dropped = [], 0
    for line in text.split("\n"):
        if _is_boilerplate(line):
            dropped += 1
        else:
            kept.append(line)
    return "\n".join(kept).strip(), dropped


def _is_boilerplate(line: str) -> bool:
    low = line.lower()
    return line.rstrip().endswith("{") or any(p in low for p in BOILERPLATE_PHRASES)


def document_stats(text: str) -> dict:
    """The measurements the rules compare against thresholds (handy for tuning: see the docstring)."""
    words = text.split()
    n_words = len(words)
    lines = [ln for ln in text.split("\n") if ln.strip()]
    non_space = len("".join(words))
    stats = {
        "words": n_words,
        "mean_word_length": non_space / max(n_words, 1),
        "symbol_word_ratio": (text.count("#") + text.count("...") + text.count("…")) / max(n_words, 1),
        "digit_ratio": len(_DIGIT.findall(text)) / max(non_space, 1),
        "alpha_words": (n_words - len(_NO_ALPHA_WORD.findall(text))) / max(n_words, 1),
        "ellipsis_lines": len(_ELLIPSIS.findall(text)) / max(len(lines), 1),
        "bullet_lines": len(_BULLET.findall(text)) / max(len(lines), 1),
        "duplicate_line_chars": _duplicate_line_chars(lines),
    }
    stats["top_ngram_chars"], stats["duplicate_ngram_chars"] = _ngram_stats(_NGRAM_WORD.findall(text.lower()))
    return stats


def quality_filter(text: str, cfg: FilterConfig) -> str | None:
    """``None`` if the document passes every enabled rule, else the name of the first rule it fails."""
    off = set(cfg.disabled)
    s = document_stats(text)
    checks = [
        ("too_few_words", s["words"] < cfg.min_words),
        ("too_many_words", s["words"] > cfg.max_words),
        ("mean_word_length", not cfg.min_mean_word_length <= s["mean_word_length"] <= cfg.max_mean_word_length),
        ("symbol_ratio", s["symbol_word_ratio"] > cfg.max_symbol_word_ratio),
        ("digit_ratio", s["digit_ratio"] > cfg.max_digit_ratio),
        ("alpha_words", s["alpha_words"] < cfg.min_alpha_words),
        ("ellipsis_lines", s["ellipsis_lines"] > cfg.max_ellipsis_lines),
        ("bullet_lines", s["bullet_lines"] > cfg.max_bullet_lines),
        ("duplicate_lines", s["duplicate_line_chars"] > cfg.max_duplicate_line_chars),
        ("top_ngram", any(v > t for v, t in zip(s["top_ngram_chars"], cfg.max_top_ngram_chars))),
        ("duplicate_ngrams", any(v > t for v, t in zip(s["duplicate_ngram_chars"], cfg.max_duplicate_ngram_chars))),
    ]
    for name, failed in checks:
        if failed and name not in off:
            return name
    return None


def _duplicate_line_chars(lines: list[str]) -> float:
    seen: set[str] = set()
    dup = total = 0
    for ln in lines:
        ln = ln.strip()
        total += len(ln)
        if ln in seen:
            dup += len(ln)
        else:
            seen.add(ln)
    return dup / max(total, 1)


def _ngram_stats(words: list[str]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Gopher's repetition measures over normalised words, vectorised with numpy.

    top n-gram (n = 2..4): characters covered by the most frequent n-gram (count x its length) / all word
    characters. duplicate n-grams (n = 5..10): characters of words covered by any repeated occurrence of an
    n-gram (every occurrence after the first), each word counted once, / all word characters."""
    if not words:
        return (0.0, 0.0, 0.0), (0.0,) * 6
    import numpy as np  # here, not at the top: `llmlab --help` imports this module for FILTERS

    from llmlab.data.dedup import word_hashes

    # Words become 64-bit hashes in one vectorised pass; lengths are in UTF-8 bytes (a proxy for characters
    # that scales the same way in the numerator and the denominator).
    uid, starts, ends = word_hashes(np.frombuffer(" ".join(words).encode("utf-8"), dtype=np.uint8))
    lens = ends - starts
    total = float(lens.sum())
    csum = np.concatenate([[0], np.cumsum(lens)])
    # Random odd 64-bit multipliers make the n-gram hash a polynomial in the word hashes (wrapping arithmetic);
    # collisions at 2^-64 per pair are negligible against the thresholds. Fixed seed: deterministic.
    mult = np.random.default_rng(0).integers(1, 2**63, size=10, dtype=np.uint64) | np.uint64(1)
    top, dup = [], []
    h = np.zeros(len(words), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for n in range(1, 11):
            if n > len(words):  # too short to hold an n-gram: nothing repeats
                if n >= 2:
                    (top if n <= 4 else dup).append(0.0)
                continue
            m = len(words) - n + 1
            h = h[:m] + uid[n - 1: n - 1 + m] * mult[n - 1]  # hash of words[i : i + n]
            if n == 1:
                continue
            chars = csum[n: n + m] - csum[:m]  # characters of each n-gram's words
            # Group equal hashes with an unstable argsort (faster than np.unique's stable one); the first
            # occurrence of each group is its smallest position.
            order = np.argsort(h)
            hs = h[order]
            gstart = np.flatnonzero(np.concatenate([[True], hs[1:] != hs[:-1]]))
            counts = np.diff(np.append(gstart, m))
            first = np.minimum.reduceat(order, gstart)
            if n <= 4:
                best = int(np.argmax(counts * chars[first]))
                top.append(float(counts[best] * chars[first[best]]) / total if counts[best] > 1 else 0.0)
            else:
                is_dup = np.ones(m, dtype=bool)
                is_dup[first] = False
                if not is_dup.any():
                    dup.append(0.0)
                    continue
                # Mark the words covered by repeated occurrences with a difference array.
                cover = np.zeros(len(words) + 1, dtype=np.int64)
                starts = np.nonzero(is_dup)[0]
                np.add.at(cover, starts, 1)
                np.add.at(cover, starts + n, -1)
                covered = np.cumsum(cover[:-1]) > 0
                dup.append(float(lens[covered].sum()) / total)
    return tuple(top), tuple(dup)
