"""CPU kernels for the model's layers, swapped in from outside by ``convert`` (``model/kernels/__init__.py``).

    from llmlab.model.kernels import convert
    model = convert(GPT(config), torch.device("cpu"))     # in place; the trainer and load_run do this

The plain model (``model/gpt.py``) is written for a reader and for the GPU. On a CPU, training spends much of its
time in work a GPU does not notice: autograd's many elementwise passes over RMSNorm and RoPE, MKL's float32 GEMM
on AMD CPUs, bf16 attention on CPUs without AMX. Each layer here is a subclass of the plain one with the same
parameters (same names, same state dict) whose ``forward`` takes a faster path where that path applies and
otherwise calls the plain ``forward``. ``convert`` changes the class of each layer in place, so tied weights stay
tied, optimizers and checkpoints see the same tensors, and ``copy.deepcopy`` copies the kernels along.

* ``CPURMSNorm``: RMSNorm with a hand-written backward (six passes instead of autograd's ten);
* ``CPUAttention``: RoPE with a hand-written forward and backward (four passes each, no temporaries), and
  under bf16/fp16 autocast attention in float32 on CPUs without AMX (``float32_attention``);
* ``OneDNNLinear``, ``OneDNNLinearCrossEntropy``: float32 products on oneDNN (``onednn.py``) where
  ``onednn.enabled`` (AMD CPUs with AVX-512).

The fast paths run for eager autograd on a CPU (training); under ``torch.no_grad`` / ``inference_mode``, under
``torch.compile`` (inductor fuses the plain formulas better) and on other devices the plain formulas run, except
oneDNN's products, which also take no-grad calls of many rows. tests/model/test_kernels.py compares a converted
model with the plain one, forward and backward, in float32 and under bf16 autocast.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from llmlab.model import gpt
from llmlab.model.fused_ce import LinearCrossEntropy
from llmlab.model.kernels import onednn


def _eager_grad(x: torch.Tensor, other: torch.Tensor) -> bool:
    """Use the hand-written backward functions: eager autograd on a CPU, with ``other`` in x's dtype or, under
    bf16/fp16 autocast, in float32 (the functions then compute in float32, as the plain formulas' type promotion
    does). Under torch.compile the plain formulas are traced (inductor fuses them better); on a GPU each pass
    is cheap and the plain formulas keep the numerics the GPU tests pin."""
    dtypes_ok = x.dtype == other.dtype or (x.dtype in (torch.bfloat16, torch.float16) and other.dtype == torch.float32)
    return (torch.is_grad_enabled() and x.requires_grad and x.device.type == "cpu" and dtypes_ok
            and not torch.compiler.is_compiling())


# ----------------------------------------------------------------------------------------------------------
# RMSNorm


class _RMSNormFn(torch.autograd.Function):
    """RMSNorm with a hand-written backward: y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps) per row.

    Why: PyTorch's CPU rms_norm runs one fused forward kernel but differentiates the composite formula, about
    ten elementwise passes over (tokens, d) for every norm; this backward takes six, most of them in place.
    The forward is that same fused kernel, which also hands back rstd (rows, 1) for the backward."""

    @staticmethod
    def forward(ctx, x, weight, eps: float):
        y, rstd = torch.ops.aten._fused_rms_norm(x, [x.shape[-1]], weight, eps)
        ctx.save_for_backward(x, weight, rstd)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, rstd = ctx.saved_tensors  # x (..., d), rstd (..., 1)
        a = dy * weight  # d loss / d (x * rstd)
        # d rstd / d x_i = -x_i * rstd^3 / d, so dx = rstd * a - x * rstd^3 * mean(a * x).
        coef = (a * x).mean(dim=-1, keepdim=True).mul_(rstd.pow(3))  # (..., 1)
        dx = a.mul_(rstd).addcmul_(x, coef, value=-1.0)
        dw = None
        if ctx.needs_input_grad[1]:
            dw = (x * rstd).mul_(dy).flatten(0, -2).sum(dim=0)  # (d,)
        return dx, dw, None


class CPURMSNorm(gpt.RMSNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x if x.dtype == torch.float64 else x.float()  # fp32 statistics, as the plain RMSNorm
        w = self.weight.to(xf.dtype)
        if _eager_grad(xf, w):
            return _RMSNormFn.apply(xf, w, self.eps).to(x.dtype)
        return super().forward(x)


# ----------------------------------------------------------------------------------------------------------
# RoPE and attention


class _RopeFn(torch.autograd.Function):
    """Rotate-half RoPE as four elementwise passes forward and four backward, with no temporaries.

    The plain formula (``gpt.apply_rope``) builds rotate_half(x) with a slice, a negation and a concatenation,
    then two products and a sum; autograd differentiates each, padding the slices' gradients with zeros. Here,
    with x = [x1, x2] and the halves' shared cos c / sin s: y1 = x1 c - x2 s, y2 = x2 c + x1 s; the backward is
    the inverse rotation, dx1 = dy1 c + dy2 s, dx2 = dy2 c - dy1 s.

    Under bf16 autocast x is bf16 and cos/sin float32: x is converted to float32 first and the result rounded
    back once, the plain formula's numbers (its products promote to float32), without its mixed-dtype passes
    (PyTorch runs elementwise ops on mixed dtypes unvectorised)."""

    @staticmethod
    def forward(ctx, x, cos, sin, keep_float: bool):
        half = x.shape[-1] // 2
        c, s = cos[..., :half], sin[..., :half]
        ctx.save_for_backward(c, s)
        ctx.x_dtype = x.dtype
        y = _rotate(x.to(c.dtype), c, s, sign=1.0)
        return y if keep_float else y.to(x.dtype)

    @staticmethod
    def backward(ctx, dy):
        c, s = ctx.saved_tensors
        return _rotate(dy.to(c.dtype), c, s, sign=-1.0).to(ctx.x_dtype), None, None, None


def _rotate(x: torch.Tensor, c: torch.Tensor, s: torch.Tensor, sign: float) -> torch.Tensor:
    """y1 = x1 c - sign x2 s, y2 = x2 c + sign x1 s, into a tensor laid out like x."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    y = torch.empty_like(x)
    y1, y2 = y[..., :half], y[..., half:]
    torch.mul(x1, c, out=y1).addcmul_(x2, s, value=-sign)
    torch.mul(x2, c, out=y2).addcmul_(x1, s, value=sign)
    return y


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, keep_float: bool = False) -> torch.Tensor:
    """``gpt.apply_rope`` with the hand-written backward under eager autograd. With ``keep_float`` the result
    stays in cos's float32 instead of being rounded to x's bf16 (for float32 attention under autocast)."""
    if _eager_grad(x, cos):
        return _RopeFn.apply(x, cos, sin, keep_float)
    if not keep_float:
        return gpt.apply_rope(x, cos, sin)
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin  # promoted to float32


_CPU_HAS_AMX = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()


def float32_attention(q: torch.Tensor, kv_cache) -> bool:
    """Run attention in float32 where autocast would run it in bf16/fp16: on CPUs without AMX, whose bf16
    flash-attention kernel is no faster than the float32 one, and at head_dim 32 slower (Zen 5, 1 thread,
    forward + backward, B16 H4 T256: 34.5 vs 28 ms; equal at head_dim 64). It is also the more precise.
    Not with a KV cache (the engine owns the cache's dtype) nor under torch.compile."""
    return (kv_cache is None and q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16)
            and torch.is_autocast_enabled("cpu") and not _CPU_HAS_AMX and not torch.compiler.is_compiling())


class CPUAttention(gpt.Attention):
    def rope_and_attend(self, q, k, v, cos, sin, kv_cache, attn_mask):
        f32 = float32_attention(q, kv_cache)
        if not (f32 or _eager_grad(q, cos)):
            return super().rope_and_attend(q, k, v, cos, sin, kv_cache, attn_mask)
        q, k = apply_rope(q, cos, sin, keep_float=f32), apply_rope(k, cos, sin, keep_float=f32)
        past = 0
        if kv_cache is not None:
            past = kv_cache.length
            k, v = kv_cache.update(self.layer_idx, k, v)  # (B, Hkv, S, hd), S = past + T
        gqa = self.n_kv_head != self.n_head
        if not f32:
            return gpt.attend(q, k, v, past, attn_mask, gqa)  # (B, H, T, hd)
        # q, k are float32 from RoPE; autocast off, or SDPA would cast them back.
        if attn_mask is not None and attn_mask.is_floating_point():
            attn_mask = attn_mask.float()
        with torch.autocast("cpu", enabled=False):
            return gpt.attend(q, k, v.float(), past, attn_mask, gqa)  # (B, H, T, hd) float32


# ----------------------------------------------------------------------------------------------------------
# Matrix products


class OneDNNLinear(nn.Linear):
    """A bias-free ``nn.Linear`` whose float32 CPU products run on oneDNN where ``onednn.linear`` says so."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return onednn.linear(x, self.weight)


class OneDNNLinearCrossEntropy(LinearCrossEntropy):
    """The chunked head + loss with its float32 products on oneDNN (where ``onednn.applies``)."""

    products = onednn


# ----------------------------------------------------------------------------------------------------------
# The converter


def convert(model: nn.Module) -> nn.Module:
    """Swap the CPU kernels into every ``GPT`` inside ``model`` (the model itself, a reward model's backbone),
    in place; returns ``model``. Layers already converted are left alone."""
    swaps = {gpt.RMSNorm: CPURMSNorm, gpt.Attention: CPUAttention}
    if onednn.AVAILABLE:
        swaps[LinearCrossEntropy] = OneDNNLinearCrossEntropy
    for net in [m for m in model.modules() if isinstance(m, gpt.GPT)]:
        for m in net.modules():
            new = swaps.get(type(m))
            if new is None and onednn.AVAILABLE and type(m) is nn.Linear and m.bias is None:
                new = OneDNNLinear
            if new is not None:
                m.__class__ = new
    return model
