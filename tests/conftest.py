"""Shared test setup: keep torch to the CI's two cores and make GPU tests skip cleanly without CUDA."""

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # torch missing entirely: GPU tests can't run either
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch thread: tiny tensors gain nothing from two, and on a shared 2-core machine
    OpenMP's spinning threads made whole test folders 10-30x slower (measured). Test folders opt in with an
    autouse fixture that requests this one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
