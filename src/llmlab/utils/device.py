"""Device names as users type them: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda``, ``cuda:N``.

    from llmlab.utils.device import resolve_device
    resolve_device("auto")      # cuda:LOCAL_RANK under torchrun on GPUs, else cpu
"""

from __future__ import annotations

import os

import torch

from llmlab.errors import LlmlabError


def cpu_info() -> tuple[str, frozenset[str]]:
    """This CPU's vendor (``AuthenticAMD``, ``GenuineIntel``, ...) and feature flags from /proc/cpuinfo; empty
    where there is no such file (not Linux). Read once per call site's need: kernels are chosen by them."""
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
