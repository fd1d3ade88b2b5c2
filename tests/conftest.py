"""Shared test setup: keep torch to the CI's two cores, make GPU tests skip cleanly without CUDA, and keep
llama.cpp off its AMX weight repacking (see below)."""

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


def _llama_cpp_without_amx_repack():
    """On CPUs with AMX (Intel Sapphire Rapids and later), llama.cpp built natively (llama-cpp-python 0.3.36)
    repacks q8_0 weights into its AMX buffer type and segfaults in that path on our tiny test models (seen
    2026-12-06 in test_llama_cpp_q8_0_stays_close; it passes with extra buffer types off, the same upstream
    class of crash as ggml-org/llama.cpp#20824). The parity tests check our files against llama.cpp's
    reference CPU kernels, so there they load models with ``use_extra_bufts`` off. Benchmarks are untouched."""
    try:
        with open("/proc/cpuinfo") as f:
            if "amx_int8" not in f.read():
                return
        import llama_cpp
        import llama_cpp.llama as high_level
    except Exception:  # no llama.cpp (its tests skip) or no /proc: nothing to change
        return
    default = llama_cpp.llama_model_default_params

    def params():
        p = default()
        p.use_extra_bufts = False
        return p
    llama_cpp.llama_model_default_params = params
    high_level.llama_cpp.llama_model_default_params = params


_llama_cpp_without_amx_repack()


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
