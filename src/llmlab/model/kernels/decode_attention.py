"""Decode attention on a CPU: one new token per row over a left-padded KV cache, in a small C kernel.

    from llmlab.model.kernels import decode_attention as da
    if da.applies(q, k, v):                                  # else: F.scaled_dot_product_attention with the mask
        y = da.decode_attention(q, k, v, pad)                # q (B, H, 1, hd), k/v (B, Hkv, S, hd), pad (B,)

Why: in a batched decode step of a small model the attention, not the matmuls, is the largest cost. PyTorch's
CPU SDPA runs each (row, head) of a one-query call through its flash kernel's blocked GEMMs, ~3.5 us per
(row, head) at 200 cached slots whether the cache is in L1 or in memory, and with a padding mask it also reads
the masked slots in front of shorter rows. At the CPU speedrun's shape (4 heads of 32, 32 rows, ~190 slots) that
was 1.7 of the step's 4.2 ms (docs/LOG.md, 2026-12-06). The kernel (``decode_attention.c``) makes three
vectorised passes over each (row, head)'s own slots ``[pad[b], S)``, which is what the step must read anyway.

The C file is compiled at first use with the machine's C compiler (``$CC``, else ``cc``/``gcc``/``clang``;
``-O3 -march=native``, no ``-ffast-math``), about a second, and kept in ``$LLMLAB_CACHE_DIR/kernels`` under a
name that hashes the source, the flags, the compiler and the CPU, written atomically. Where there is no
compiler, the build fails, the thread count is above one (SDPA then runs on the threads; the kernel is one
thread) or ``LLMLAB_DECODE_KERNEL=0``, ``applies`` is False and callers keep SDPA: the numbers are the same to
float rounding (tests/model/test_decode_attention.py)."""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("decode_attention.c")
FLAGS = ("-O3", "-fno-math-errno", "-fopenmp-simd", "-shared", "-fPIC")
ENV_SWITCH = "LLMLAB_DECODE_KERNEL"  # "0": never use the kernel


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _arch_flags() -> tuple[str, ...]:
    return ("-march=native",) if platform.machine() in ("x86_64", "AMD64", "i686") else ("-mcpu=native",)


class _Lib:
    """The loaded library, or why there is none (``error``)."""

    def __init__(self, lib: ctypes.CDLL | None, error: str | None = None, path: Path | None = None):
        self.lib, self.error, self.path = lib, error, path
        if lib is None:
            return
        p, i, f = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
        common = [p, i, i, p, p, i, i, p, i, i, i, i, i, i, f, p, p]
        lib.llmlab_decode_attn_f32.argtypes = common
        lib.llmlab_decode_attn_bf16.argtypes = common + [p, i, i]
        lib.llmlab_decode_attn_f32.restype = lib.llmlab_decode_attn_bf16.restype = None


@functools.lru_cache(maxsize=1)
def _library() -> _Lib:
    """Build (once per machine) and load the kernel; a ``_Lib`` with ``error`` set when that is not possible."""
    from llmlab.utils.device import cpu_info
    from llmlab.utils.io import atomic_path, cache_root

    cc = _compiler()
    if cc is None:
        return _Lib(None, "no C compiler (set CC, or install gcc)")
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return _Lib(None, f"{cc} --version failed: {e}")
    source = SOURCE.read_bytes()
    name, cpu_flags = cpu_info()
    ident = [source, " ".join(FLAGS + _arch_flags()).encode(), cc.encode(), version.encode(), str(name).encode(),
             " ".join(sorted(cpu_flags)).encode()]
    digest = hashlib.sha256(b"\0".join(ident)).hexdigest()[:16]
    path = cache_root() / "kernels" / f"decode_attention-{digest}.so"
    if not path.exists():
        try:
            with atomic_path(path) as tmp:
                out = subprocess.run([cc, *FLAGS, *_arch_flags(), str(SOURCE), "-o", str(tmp), "-lm"],
                                     capture_output=True, text=True, timeout=300)
                if out.returncode != 0:
                    raise RuntimeError((out.stderr or out.stdout).strip().splitlines()[-1:] or ["(no output)"])
        except (OSError, subprocess.SubprocessError, RuntimeError) as e:
            return _Lib(None, f"building {SOURCE.name} with {cc} failed: {e}")
    try:
        return _Lib(ctypes.CDLL(str(path)), path=path)
    except OSError as e:
        return _Lib(None, f"loading {path} failed: {e}")


def status() -> str:
    """One line for logs and benchmarks: where the kernel was loaded from, or why it is not used."""
    if os.environ.get(ENV_SWITCH) == "0":
        return f"off ({ENV_SWITCH}=0)"
    lib = _library()
    return f"on ({lib.path})" if lib.lib is not None else f"off: {lib.error}"


def applies(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> bool:
    """Whether ``decode_attention`` can run this call: CPU tensors, a float32 or bfloat16 cache with queries of
    its dtype or float32 (a bf16 cache under float32 weights), one query per row, every head's slots contiguous
    (k and v laid out alike), one torch thread, and the kernel built."""
    if q.device.type != "cpu" or q.shape[2] != 1 or os.environ.get(ENV_SWITCH) == "0":
        return False
    if k.dtype != v.dtype or k.dtype not in (torch.float32, torch.bfloat16) or q.dtype not in (k.dtype, torch.float32):
        return False
    hd = q.shape[3]
    if q.stride(3) != 1 or k.stride(3) != 1 or k.stride(2) != hd or k.stride() != v.stride():
        return False
    if q.shape[1] % k.shape[1] or torch.get_num_threads() != 1:
        return False
    return _library().lib is not None


def decode_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pad: torch.Tensor | None,
                     scale: float | None = None) -> torch.Tensor:
    """softmax(q k^T * scale) v for q (B, H, 1, hd) over the slots ``[pad[b], S)`` of k, v (B, Hkv, S, hd), in
    q's dtype: (B, H, 1, hd), computed in float32 (a bf16 cache's values are widened as they are read). ``pad`` (B,) int64: each row's masked prefix (None: no row has one). A row whose
    prefix covers every slot gets zeros. Call only where ``applies(q, k, v)``."""
    B, H, _, hd = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    scale = hd ** -0.5 if scale is None else scale
    if pad is None:
        pad = torch.zeros(B, dtype=torch.long)
    elif pad.dtype != torch.long or not pad.is_contiguous():
        pad = pad.to(torch.long).contiguous()
    out = torch.empty(B, H, 1, hd, dtype=q.dtype)
    scratch = torch.empty(S + 2 * hd, dtype=torch.float32)  # the scores; bf16: + the accumulator, q in float32
    args = [q.data_ptr(), q.stride(0), q.stride(1), k.data_ptr(), v.data_ptr(), k.stride(0), k.stride(1),
            pad.data_ptr(), 0, B, H, Hkv, S, hd, scale, out.data_ptr(), scratch.data_ptr()]
    lib = _library().lib
    if k.dtype == torch.float32:
        lib.llmlab_decode_attn_f32(*args)
    else:
        f32 = int(q.dtype == torch.float32)
        lib.llmlab_decode_attn_bf16(*args, scratch.data_ptr() + 4 * S, f32, f32)
    return out
