"""Fixtures for the server tests: a tokenizer trained on the spot (helpers in serve_fixtures.py)."""

import pytest

from serve_fixtures import TEXT


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs torch on one thread (see tests/conftest.py)."""
    yield


@pytest.fixture(scope="session")
def serve_tok():
    from llmlab.tokenizer import Tokenizer

    return Tokenizer.train(TEXT, vocab_size=256 + 16 + 40)
