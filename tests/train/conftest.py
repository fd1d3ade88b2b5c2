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
def one_thread():
    """One torch thread: on a shared 2-core machine two spinning OpenMP threads can be 30x slower than one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
