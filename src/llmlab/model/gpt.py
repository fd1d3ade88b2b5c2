"""The model: a decoder-only Transformer of the Llama family, top to bottom in one file.

    from llmlab.model.gpt import GPT, ModelConfig
    model = GPT(ModelConfig.preset("tiny", vocab_size=512))
    logits = model(idx)                       # idx (B, T) int64 -> logits (B, T, vocab) float

Token embedding -> n_layer x [RMSNorm -> causal self-attention (RoPE, grouped-query, SDPA) -> residual,
RMSNorm -> SwiGLU MLP -> residual] -> RMSNorm -> output head. No biases. The parameter names are those of
Hugging Face ``LlamaForCausalLM`` without the leading ``model.`` (``layers.0.self_attn.q_proj.weight``, ...)
and RoPE is the rotate-half form, so exporting is a renaming, not a re-derivation.

The forward pass is KV-cache ready: ``positions`` says where each token sits (so a batch may hold prompts of
different lengths, left-padded), ``kv_cache`` holds the keys/values of earlier tokens (the inference engine
owns it), ``attn_mask`` is an optional boolean (B, 1, T, S) mask (True = may attend) for padding or for
packed documents that must not see each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab.model import onednn
from llmlab.model.fused_ce import linear_cross_entropy

MODEL_FORMAT = "llmlab-model"
MODEL_FORMAT_VERSION = 1


# ----------------------------------------------------------------------------------------------------------
# Config


@dataclass
class ModelConfig:
    vocab_size: int = 4096
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int = 4  # grouped-query attention when < n_head (must divide n_head)
    d_model: int = 256
    ffn_hidden: int = 0  # 0 = derived: ~8/3 * d_model rounded up to a multiple of 64 (SwiGLU's usual size)
    max_seq_len: int = 256
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True
    init_std: float = 0.02
    extra: dict = field(default_factory=dict)  # free-form notes (preset name, ...); never read by the math

    def __post_init__(self):
        from llmlab.errors import LlmlabError

        if self.ffn_hidden == 0:
            self.ffn_hidden = 64 * math.ceil(8 * self.d_model / 3 / 64)
        problems = []
        if self.d_model % self.n_head:
            problems.append(f"d_model={self.d_model} is not divisible by n_head={self.n_head}")
        elif (self.d_model // self.n_head) % 2:
            problems.append(f"head_dim={self.d_model // self.n_head} must be even for RoPE")
        if self.n_kv_head < 1 or self.n_head % self.n_kv_head:
            problems.append(f"n_kv_head={self.n_kv_head} must divide n_head={self.n_head}")
        if min(self.vocab_size, self.n_layer, self.max_seq_len) < 1:
            problems.append("vocab_size, n_layer and max_seq_len must be positive")
        if problems:
            raise LlmlabError("invalid model config: " + "; ".join(problems))

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    # Named presets. "tiny" is for tests; "cpu" is the CPU-speedrun size; the others are GPU sizes.
    PRESETS = {
        "tiny": dict(n_layer=2, n_head=4, n_kv_head=2, d_model=64, max_seq_len=64),
        # The CPU speedrun's winner (docs/LOG.md): at ~0.4-1.5M tokens in 180 s, 4 x 128 beat 6 x 128 and 4 x 192.
        "cpu": dict(n_layer=4, n_head=4, n_kv_head=4, d_model=128, max_seq_len=256),
        "gpt2-small": dict(n_layer=12, n_head=12, n_kv_head=12, d_model=768, max_seq_len=1024),
        "gpt2-medium": dict(n_layer=24, n_head=16, n_kv_head=16, d_model=1024, max_seq_len=1024),
        "1b": dict(n_layer=16, n_head=32, n_kv_head=8, d_model=2048, max_seq_len=2048, rope_theta=500000.0,
                   tie_embeddings=False),
    }

    @classmethod
    def preset(cls, name: str, **overrides) -> "ModelConfig":
        """A named preset (``tiny``, ``cpu``, ``gpt2-small``, ``gpt2-medium``, ``1b``) or ``depth-N``."""
        from llmlab.errors import LlmlabError

        if name.startswith("depth-") and name[6:].isdigit():
            return cls.from_depth(int(name[6:]), **overrides)
        if name not in cls.PRESETS:
            raise LlmlabError(f"unknown model preset {name!r}; choose one of {', '.join(cls.PRESETS)} or depth-N")
        kw = {**cls.PRESETS[name], **overrides}
        kw.setdefault("extra", {})["preset"] = name
        return cls(**kw)

    @classmethod
    def from_depth(cls, depth: int, **overrides) -> "ModelConfig":
        """One dial derives the rest (as nanochat's --depth): width 64 * depth, 64-wide heads."""
        d_model = 64 * depth
        n_head = max(1, d_model // 64)
        kw = dict(n_layer=depth, d_model=d_model, n_head=n_head, n_kv_head=n_head, extra={"preset": f"depth-{depth}"})
        kw.update(overrides)
        return cls(**kw)


# ----------------------------------------------------------------------------------------------------------
# Building blocks


class Linear(nn.Linear):
    """nn.Linear without bias (same parameter, same state dict) whose float32 CPU training products run on
    oneDNN: MKL's float32 GEMM takes its AVX2 path on AMD CPUs (``onednn.py``)."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__(d_in, d_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return onednn.linear(x, self.weight)


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


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32 (as Llama does) so bf16 activations don't lose the mean square; fp64 stays fp64.
        xf = x if x.dtype == torch.float64 else x.float()
        w = self.weight.to(xf.dtype)
        if _eager_grad(xf, w):
            return _RMSNormFn.apply(xf, w, self.eps).to(x.dtype)
        return F.rms_norm(xf, (x.shape[-1],), w, self.eps).to(x.dtype)


def _eager_grad(x: torch.Tensor, other: torch.Tensor) -> bool:
    """Use the hand-written backward functions: eager autograd on a CPU, with ``other`` in x's dtype or, under
    bf16/fp16 autocast, in float32 (the functions then compute in float32, as the plain formulas' type promotion
    does). Under torch.compile the plain formulas are traced (inductor fuses them better); on a GPU each pass
    is cheap and the plain formulas keep the numerics the GPU tests pin."""
    dtypes_ok = x.dtype == other.dtype or (x.dtype in (torch.bfloat16, torch.float16) and other.dtype == torch.float32)
    return (torch.is_grad_enabled() and x.requires_grad and x.device.type == "cpu" and dtypes_ok
            and not torch.compiler.is_compiling())


def rope_tables(head_dim: int, max_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (max_len, head_dim) in the rotate-half layout: [f_0..f_{h/2-1}, f_0..f_{h/2-1}]."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    angles = torch.outer(torch.arange(max_len, dtype=torch.float64), inv_freq)  # (max_len, head_dim/2)
    angles = torch.cat([angles, angles], dim=-1)  # (max_len, head_dim)
    return angles.cos().float(), angles.sin().float()


class _RopeFn(torch.autograd.Function):
    """Rotate-half RoPE as four elementwise passes forward and four backward, with no temporaries.

    The plain formula (below) builds rotate_half(x) with a slice, a negation and a concatenation, then two
    products and a sum; autograd differentiates each, padding the slices' gradients with zeros. Here, with
    x = [x1, x2] and the halves' shared cos c / sin s: y1 = x1 c - x2 s, y2 = x2 c + x1 s; the backward is the
    inverse rotation, dx1 = dy1 c + dy2 s, dx2 = dy2 c - dy1 s.

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
    """x (B, H, T, hd); cos/sin (B, 1, T, hd). Rotate-half RoPE, as in HF Llama. The result has x's dtype, or
    with ``keep_float`` cos's (float32) without the rounding to bf16 (for float32 attention under autocast)."""
    if _eager_grad(x, cos):
        return _RopeFn.apply(x, cos, sin, keep_float)
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    y = x * cos + rotated * sin
    return y if keep_float else y.to(x.dtype)


class KVCache:
    """Preallocated keys/values for every layer: (n_layer, B, n_kv_head, max_len, head_dim) each.

    All rows share one write position ``length`` (prompts of different lengths are left-padded by the engine,
    which masks the padding). ``keep_rows`` drops finished rows so they stop costing work.
    """

    def __init__(self, config: ModelConfig, batch_size: int, max_len: int, device, dtype=torch.float32):
        shape = (config.n_layer, batch_size, config.n_kv_head, max_len, config.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.max_len = max_len
        self.length = 0  # slots filled so far (advanced by GPT.forward after the last layer)
        self._layer_views()

    def _layer_views(self) -> None:
        # Per-layer views made once: indexing k[layer] on every call is two more operator dispatches per layer,
        # which a batch-1 decode step on a CPU notices.
        self._k = [self.k[i] for i in range(self.k.shape[0])]
        self._v = [self.v[i] for i in range(self.v.shape[0])]

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v (B, n_kv, T, hd) at the current position; return all keys/values so far (B, n_kv, S, hd)."""
        T, t0 = k.shape[2], self.length
        if t0 + T > self.max_len:
            raise ValueError(f"KV cache overflow: {t0 + T} > {self.max_len} slots")
        kl, vl = self._k[layer], self._v[layer]  # (B, n_kv, max_len, hd)
        kl.narrow(2, t0, T).copy_(k)
        vl.narrow(2, t0, T).copy_(v)
        return kl.narrow(2, 0, t0 + T), vl.narrow(2, 0, t0 + T)

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Keep only the batch rows in ``rows`` (a 1-D index tensor), in that order."""
        self.k = self.k.index_select(1, rows)
        self.v = self.v.index_select(1, rows)
        self._layer_views()

    def repeat_rows(self, n: int) -> None:
        """Repeat every row n times (row i -> rows i*n .. i*n+n-1): one prefill shared by n samples."""
        self.k = self.k.repeat_interleave(n, dim=1)
        self.v = self.v.repeat_interleave(n, dim=1)
        self._layer_views()


def default_positions(idx: torch.Tensor, positions, kv_cache, max_seq_len: int) -> torch.Tensor:
    """The given positions, or ``cached + arange(T)`` (checked against the context) when there are none."""
    if positions is not None:
        return positions
    T, past = idx.shape[1], kv_cache.length if kv_cache is not None else 0
    if past + T > max_seq_len:
        raise ValueError(f"{past + T} positions exceed the model's context ({max_seq_len})")
    return torch.arange(past, past + T, device=idx.device)


_CPU_HAS_AMX = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()


def float32_attention(q: torch.Tensor, kv_cache: KVCache | None) -> bool:
    """Run attention in float32 where autocast would run it in bf16/fp16: on CPUs without AMX, whose bf16
    flash-attention kernel is no faster than the float32 one, and at head_dim 32 slower (Zen 5, 1 thread,
    forward + backward, B16 H4 T256: 34.5 vs 28 ms; equal at head_dim 64). It is also the more precise.
    Not with a KV cache (the engine owns the cache's dtype) nor under torch.compile."""
    return (kv_cache is None and q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16)
            and torch.is_autocast_enabled("cpu") and not _CPU_HAS_AMX and not torch.compiler.is_compiling())


def attend(q, k, v, past: int, attn_mask: torch.Tensor | None, gqa: bool) -> torch.Tensor:
    """Causal attention of T new queries q (B, H, T, hd) over S = past + T keys/values (B, Hkv, S, hd).

    The cheapest correct SDPA call: the caller's mask when given (padding, packed documents); plain causal
    when nothing is cached; no mask for one new token (it sees everything); else token i sees [0, past + i]."""
    T = q.shape[2]
    if attn_mask is not None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, enable_gqa=gqa)
    if past == 0:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
    if T == 1:
        return F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)
    mask = torch.ones(T, past + T, dtype=torch.bool, device=q.device).tril(diagonal=past)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)


class Attention(nn.Module):
    def __init__(self, config: ModelConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.n_head, self.n_kv_head, self.head_dim = config.n_head, config.n_kv_head, config.head_dim
        d, kv = config.d_model, config.n_kv_head * config.head_dim
        self.q_proj = Linear(d, d)
        self.k_proj = Linear(d, kv)
        self.v_proj = Linear(d, kv)
        self.o_proj = Linear(d, d)

    def forward(self, x, cos, sin, kv_cache: KVCache | None, attn_mask: torch.Tensor | None) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = self.k_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)  # (B, Hkv, T, hd)
        v = self.v_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)  # (B, Hkv, T, hd)
        f32 = float32_attention(q, kv_cache)
        q, k = apply_rope(q, cos, sin, keep_float=f32), apply_rope(k, cos, sin, keep_float=f32)
        past = 0
        if kv_cache is not None:
            past = kv_cache.length
            k, v = kv_cache.update(self.layer_idx, k, v)  # (B, Hkv, S, hd), S = past + T
        gqa = self.n_kv_head != self.n_head
        if f32:  # q, k are float32 from RoPE; autocast off, or SDPA would cast them back
            if attn_mask is not None and attn_mask.is_floating_point():
                attn_mask = attn_mask.float()
            with torch.autocast("cpu", enabled=False):
                y = attend(q, k, v.float(), past, attn_mask, gqa)  # (B, H, T, hd)
        else:
            y = attend(q, k, v, past, attn_mask, gqa)  # (B, H, T, hd)
        y = y.transpose(1, 2).reshape(B, T, -1)  # (B, T, d_model)
        return self.o_proj(y)


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.gate_proj = Linear(config.d_model, config.ffn_hidden)
        self.up_proj = Linear(config.d_model, config.ffn_hidden)
        self.down_proj = Linear(config.ffn_hidden, config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, config: ModelConfig, layer_idx: int):
        super().__init__()
        self.input_layernorm = RMSNorm(config.d_model, config.norm_eps)
        self.self_attn = Attention(config, layer_idx)
        self.post_attention_layernorm = RMSNorm(config.d_model, config.norm_eps)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin, kv_cache, attn_mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, kv_cache, attn_mask)
        return x + self.mlp(self.post_attention_layernorm(x))


# ----------------------------------------------------------------------------------------------------------
# The model


class GPT(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        self.lm_head = Linear(config.d_model, config.vocab_size)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        cos, sin = rope_tables(config.head_dim, config.max_seq_len, config.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)  # (max_seq_len, head_dim)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Normal(0, init_std) everywhere; the two projections that write into the residual stream are scaled
        by 1/sqrt(2 * n_layer) so the residual's variance doesn't grow with depth (GPT-2's rule); norms = 1."""
        std = self.config.init_std
        for name, p in self.named_parameters():
            if name.endswith("layernorm.weight") or name == "norm.weight":
                p.fill_(1.0)
            elif name.endswith(("o_proj.weight", "down_proj.weight")):
                p.normal_(0.0, std / math.sqrt(2 * self.config.n_layer))
            else:
                p.normal_(0.0, std)

    def forward(
        self,
        idx: torch.Tensor,
        *,
        positions: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
        attn_mask: torch.Tensor | None = None,
        logits_to_keep: int = 0,
        targets: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """idx (B, T) -> logits (B, T, vocab); with ``targets`` (B, T) -> the mean next-token loss instead.

        positions: (T,) or (B, T) position ids; default ``kv_cache.length + arange(T)`` (or ``arange(T)``).
        kv_cache: keys/values of earlier tokens; this call appends T slots to it.
        attn_mask: optional bool (B or 1, 1, T, S) with S = cached + T slots; True where attention is allowed.
            A float mask of the same shape is added to the attention scores instead (0 = allowed, -inf = not);
            the inference engine builds that form once rather than have SDPA convert a bool mask per layer.
        logits_to_keep: if > 0, only the last that many positions go through the output head (logits
        (B, logits_to_keep, vocab)); a prefill that only needs the next token skips a (T, vocab) matmul.
        targets: (B, T) token ids to score (-1 = not scored): returns the mean cross-entropy over the scored
            ones, computed chunk by chunk with the output head (``fused_ce.py``) so the (B*T, vocab) logits
            never exist at once (training memory; the time is the same as head + F.cross_entropy).
        """
        h = self.trunk(idx, positions=positions, kv_cache=kv_cache, attn_mask=attn_mask)  # (B, T, d_model)
        if targets is not None:
            return linear_cross_entropy(h.flatten(0, 1), self.lm_head.weight, targets.flatten())
        if logits_to_keep:
            h = h[:, -logits_to_keep:]
        return self.lm_head(h)  # (B, T or logits_to_keep, vocab)

    def trunk(
        self,
        idx: torch.Tensor,
        *,
        positions: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
        attn_mask: torch.Tensor | None = None,
        layers: int = 1,
    ) -> torch.Tensor:
        """idx (B, T) -> the final normalised hidden state (B, T, d_model): what the output head reads, and
        what the reward and value heads (``model/heads.py``) read. Arguments as ``forward``.

        ``layers`` = n > 1 appends the residual streams after the n - 1 blocks below the top one, each
        RMS-normalised without a learned gain: (B, T, n * d_model), the final state first."""
        T = idx.shape[1]
        positions = default_positions(idx, positions, kv_cache, self.config.max_seq_len)
        if positions.dim() == 1:
            positions = positions.unsqueeze(0)  # (1, T)
        cos = self.rope_cos[positions].unsqueeze(1)  # (B or 1, 1, T, hd): broadcasts over heads
        sin = self.rope_sin[positions].unsqueeze(1)
        x = self.embed_tokens(idx)  # (B, T, d_model)
        below = []  # residual streams under the top block, top first
        n = len(self.layers)
        for i, block in enumerate(self.layers):
            x = block(x, cos, sin, kv_cache, attn_mask)
            if n - layers <= i < n - 1:
                below.insert(0, x)
        if kv_cache is not None:
            kv_cache.length += T
        h = self.norm(x)
        if not below:
            return h
        eps = self.config.norm_eps
        return torch.cat([h] + [F.rms_norm(b, (b.shape[-1],), eps=eps) for b in below], dim=-1)

    # ------------------------------------------------------------------------------------------------------
    # Accounting

    def num_params(self, exclude_embedding: bool = False) -> int:
        """Parameter count (tied weights once). ``exclude_embedding`` drops the lookup table (not a matmul)."""
        n = sum(p.numel() for p in self.parameters())
        if exclude_embedding and not self.config.tie_embeddings:
            n -= self.embed_tokens.weight.numel()
        return n

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token: 6 * (matmul params) + 12 * n_layer * d_model * seq_len (attention scores
        and weighted sum, forward + backward). With tied embeddings the head still costs vocab * d_model."""
        c = self.config
        T = seq_len or c.max_seq_len
        matmul_params = self.num_params(exclude_embedding=True)  # a tied table counts once, as the head
        return 6.0 * matmul_params + 12.0 * c.n_layer * c.d_model * T


def document_causal_mask(doc_ids: torch.Tensor) -> torch.Tensor:
    """For packed sequences: doc_ids (B, T) -> bool mask (B, 1, T, T), True where token i may attend to j
    (j <= i and same document). Packed conversations then never see each other."""
    T = doc_ids.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=doc_ids.device).tril()
    same = doc_ids.unsqueeze(2) == doc_ids.unsqueeze(1)  # (B, T, T)
    return (same & causal).unsqueeze(1)
