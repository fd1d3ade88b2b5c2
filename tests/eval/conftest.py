"""Fixtures for the evaluation tests."""

import pytest


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine two spinning OpenMP threads can be 30x slower than one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
