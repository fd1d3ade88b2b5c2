"""Shared helpers for the data tests: deterministic filler text that passes every quality filter."""

import random

import pytest

_SYLLABLES = ["ka", "lo", "mi", "ren", "tas", "vel", "dor", "pin", "ghu", "sel", "tro", "mar", "ben", "lux"]


def words(n: int, seed: int) -> list[str]:
    """``n`` pseudo-words of 4-9 letters from a vocabulary of thousands: no repeated n-grams in practice."""
    rng = random.Random(seed)
    return ["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(n)]


def prose(n_words: int, seed: int, per_line: int = 12) -> str:
    """Plain lines of ``per_line`` words ending with a period."""
    w = words(n_words, seed)
    return "\n".join(" ".join(w[i: i + per_line]) + "." for i in range(0, n_words, per_line))


@pytest.fixture
def make_prose():
    return prose
