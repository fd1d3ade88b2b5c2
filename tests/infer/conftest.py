"""Inference tests run torch on one thread: their tensors are tiny (measured: 60 s instead of 5 s for the
folder on a shared 2-core machine with two threads)."""

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs on one torch thread (see tests/conftest.py)."""
    yield
