"""Float32 matrix products of CPU training on oneDNN: ``linear`` (x @ w.T, backward included), ``mm_t``, ``mm_tn``.

    from llmlab.model.kernels import onednn
    y = onednn.linear(x, weight)        # == F.linear(x, weight); on oneDNN where ``applies`` says so

The CPU kernels (``cpu.py``) use these for the model's linear layers and its chunked head + loss; the plain
model (``model/gpt.py``) never calls them.

Why: PyTorch's float32 CPU ``mm`` calls MKL's sgemm, and MKL picks its code path by CPU vendor: on AMD CPUs it
runs its AVX2 kernels even where the CPU has AVX-512. On this project's Zen 5 box (AVX-512, 1 thread) that is
~90 GFLOP/s, where oneDNN's float32 GEMM (the library PyTorch already runs CPU bf16 matmuls on, and the engine
its batched decode, ``infer/fused.py``) does 150-220 on the training step's shapes, forward and both backward
products (docs/LOG.md, session 8). The arithmetic is IEEE float32 either way; only the order of the sums
differs, as between any two GEMMs.

Where: float32 CPU tensors, by default on x86 AMD CPUs with AVX-512 only (``enabled``); not under autocast
(bf16 matmuls already run on oneDNN) nor torch.compile (inductor picks its own kernels). ``linear`` takes it for
training and for no-grad calls of many rows: at the few rows of a decode step oneDNN's ~15 us call overhead
loses to MKL (the engine has its own rule for that).
"""

from __future__ import annotations

import platform

import torch
import torch.nn.functional as F

AVAILABLE = (platform.machine().lower() in ("x86_64", "amd64") and torch.backends.mkldnn.is_available()
             and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


def mkl_is_slow_here() -> bool:
    """AMD CPUs with AVX-512: where MKL's sgemm runs its AVX2 kernels and oneDNN its AVX-512 ones (2-2.5x on
    Zen 5). On Intel CPUs MKL already runs AVX-512, and on AVX2-only CPUs both libraries have the same
    instructions, so there the default stays MKL (not measured to gain; the engine's batched decode, which
    prepacks its weights, has its own rule in ``infer/fused.py``)."""
    from llmlab.utils.device import cpu_info

    vendor, flags = cpu_info()
    return vendor == "AuthenticAMD" and "avx512f" in flags


# On by default where it is measured to win; tests and A/B measurements set it to switch the path on or off.
enabled = AVAILABLE and mkl_is_slow_here()


def applies(x: torch.Tensor, w: torch.Tensor) -> bool:
    """Whether x @ w.T should go to oneDNN: float32 CPU operands, no autocast, not being compiled."""
    return (enabled and x.device.type == "cpu" and x.dtype == torch.float32 and w.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu") and not torch.compiler.is_compiling())


def mm_t(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a (..., k) @ b.T for b (n, k), on oneDNN (call only where ``applies``). Either operand may be a strided
    view, e.g. ``b = w.t()`` for a @ w, or ``a = g.t(), b = h.t()`` for g.T @ h."""
    return torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")


def mm_tn(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a.T @ b for a (N, m), b (N, n): (m, n), e.g. a weight's gradient dy.T @ x, on oneDNN. PyTorch's oneDNN
    call makes its first operand contiguous (a transposing copy of an (N, k) view) and reads the second in
    place, so the narrower of a and b is the one copied; the result may be a transposed view."""
    if a.shape[1] <= b.shape[1]:
        return mm_t(a.t(), b.t())  # copies a.T (m, N)
    return mm_t(b.t(), a.t()).t()  # copies b.T (n, N)


class _LinearFn(torch.autograd.Function):
    """y = x @ w.T with all three products on oneDNN: y, dx = dy @ w, dw = dy.T @ x (over all leading dims)."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return mm_t(x, w)  # (..., out)

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors  # x (..., in), w (out, in)
        dx = mm_t(dy, w.t()) if ctx.needs_input_grad[0] else None  # (..., in)
        dw = None
        if ctx.needs_input_grad[1]:
            dy2, x2 = dy.reshape(-1, dy.shape[-1]), x.reshape(-1, x.shape[-1])  # (N, out), (N, in)
            dw = mm_tn(dy2, x2)  # (out, in)
        return dx, dw


# Without autograd (evaluation, RL's reference and old log-prob passes, reward-model scoring) oneDNN wins from
# about this many rows: 1 thread, Zen 5, d128 -> 384: 16 rows 26 us (MKL) vs 35 us, 32 rows 44 vs 42, 64 rows
# 80 vs 50; d768 -> 2304 already at 16 rows (852 vs 495 us). Fewer rows (a decode step) stay on MKL.
MIN_ROWS_NO_GRAD = 64


def linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """F.linear(x, w) without bias; through oneDNN on a float32 CPU where ``applies`` says so, for training and
    for no-grad calls of at least ``MIN_ROWS_NO_GRAD`` rows (see the module docstring)."""
    if not applies(x, w):
        return F.linear(x, w)
    if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad):
        return _LinearFn.apply(x, w)
    if x.numel() >= MIN_ROWS_NO_GRAD * x.shape[-1]:
        return mm_t(x, w)  # (..., out)
    return F.linear(x, w)
