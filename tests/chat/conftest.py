"""Fixtures for the chat tests: tokenizers built inside the test (no files, no network)."""

import pytest

from llmlab.tokenizer import Tokenizer


@pytest.fixture(scope="session")
def byte_tok():
    """A tokenizer with no merges: ids 0..255 are bytes, so golden ids can be checked by hand."""
    return Tokenizer([])


@pytest.fixture(scope="session")
def small_tok():
    """A small trained BPE (a few hundred ids) on text that looks like the chat data."""
    text = ("What is 12 plus 7? 19. Who says 'To be, or not to be'? Hamlet, in Hamlet. "
            "Spell the word night. n-i-g-h-t. Reverse the word stone: enots. I am llmlab's assistant. ") * 20
    return Tokenizer.train(text, vocab_size=256 + 16 + 64)
