"""Fixtures for the pretraining/loop tests: a tiny tokenizer and tiny text files, built inside the test."""

import pytest

from llmlab.data.corpus import read_work
from llmlab.tokenizer import Tokenizer


@pytest.fixture(scope="session")
def small_text():
    """~40 KB of real text (the start of Hamlet)."""
    return read_work("hamlet")[:40_000]


@pytest.fixture(scope="session")
def tok_dir(tmp_path_factory, small_text):
    d = tmp_path_factory.mktemp("tok")
    Tokenizer.train(small_text, vocab_size=256 + 16 + 64).save(d)
    return d


@pytest.fixture(scope="session")
def text_files(tmp_path_factory, small_text):
    d = tmp_path_factory.mktemp("text")
    (d / "train.txt").write_text(small_text[:36_000])
    (d / "val.txt").write_text(small_text[36_000:])
    return d


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs on one torch thread (see tests/conftest.py)."""
    yield
