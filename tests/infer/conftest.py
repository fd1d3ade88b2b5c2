"""Inference tests run torch on one thread: their tensors are tiny, and on a shared 2-core machine OpenMP's
two threads spin-wait against other processes (measured: the same tests take 60 s instead of 5 s)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
