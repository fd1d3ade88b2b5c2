"""Device names as users type them: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda``, ``cuda:N``.

    from llmlab.utils.device import resolve_device
    resolve_device("auto")      # cuda:LOCAL_RANK under torchrun on GPUs, else cpu

Also what the CPU can do (``cpu_info``, ``fast_bf16_matmul``) and ``keep_freed_memory`` (glibc's malloc keeps
freed blocks, so a CPU training step does not page-fault on its activations every step).
"""

from __future__ import annotations

import functools
import os

import torch

from llmlab.errors import LlmlabError


@functools.cache
def cpu_info() -> tuple[str, frozenset[str]]:
    """This CPU's vendor (``AuthenticAMD``, ``GenuineIntel``, ...) and feature flags from /proc/cpuinfo (read
    once); empty where there is no such file (not Linux). Kernel choices (oneDNN vs MKL, bf16) follow them."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return "", frozenset()
    vendor = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("vendor_id")), "")
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    return vendor, frozenset(flags)


def resolve_device(name: str | torch.device) -> torch.device:
    """A ``torch.device`` for ``name``; a bad or unavailable device is a one-line ``LlmlabError``."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        if torch.cuda.is_available():
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            _check_cuda_index(dev)
            return dev
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise LlmlabError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise LlmlabError(f"device {name!r} requested but CUDA is not available")
        if dev.index is None:
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        _check_cuda_index(dev)
    return dev


def _check_cuda_index(dev: torch.device) -> None:
    n = torch.cuda.device_count()
    if dev.index >= n:
        why = (f" (torchrun's local rank {os.environ['LOCAL_RANK']}: start at most {n} processes per node, or "
               "use --device cpu)" if "LOCAL_RANK" in os.environ else "")
        raise LlmlabError(f"device cuda:{dev.index} requested but this machine has {n} GPU(s){why}")


def fast_bf16_matmul(device: torch.device) -> bool:
    """Whether bfloat16 matmuls run natively here: CUDA, or a CPU with AVX512-BF16 / AMX (what oneDNN uses)."""
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    return bool(cpu_info()[1] & {"avx512_bf16", "amx_bf16"})


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit systems


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to serve blocks up to 32 MB from its heap and keep freed memory instead of handing it
    back to the OS. Why: a CPU training step allocates and frees the same large activations every step; by
    default glibc unmaps blocks above its mmap threshold on free and trims the heap's top once more than 2x that
    threshold (at most 64 MB) is free, so every step pays a page fault per 4 KiB touched again (89-134 MB of
    faults per step of the `cpu` preset at 16 x 256, ~10-15% of its time, docs/LOG.md session 8). The process
    then holds on to its peak heap, as PyTorch's own CUDA caching allocator does.
    Returns whether the setting took (False off glibc, e.g. macOS or musl)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) and mallopt(_M_TRIM_THRESHOLD, 2**30))
