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

This file is plain PyTorch and runs on every device. Faster code for one kind of device (the CPU's
hand-written RMSNorm/RoPE autograd, oneDNN products) is swapped in from outside by ``model/kernels``'s
``convert``, which the training loop and ``runs.load_model`` apply; the inference engine runs its own fused
copy of the decode math (``infer/fused.py``). Each is tested against this file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab.model.fused_ce import LinearCrossEntropy

MODEL_FORMAT = "llmlab-model"
MODEL_FORMAT_VERSION = 2  # v2: head_dim and rope_scaling (written only by configs that use them)
LLAMA3_ROPE_KEYS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")


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
    head_dim: int = 0  # 0 = derived: d_model // n_head (imported models may have another, e.g. Mistral-Nemo)
    # None, or Llama-3's RoPE scaling as Hugging Face writes it: {"rope_type": "llama3", "factor": 8.0,
    # "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    rope_scaling: dict | None = None
    extra: dict = field(default_factory=dict)  # free-form notes (preset name, ...); never read by the math

    def __post_init__(self):
        from llmlab.errors import LlmlabError

        if self.ffn_hidden == 0:
            self.ffn_hidden = 64 * math.ceil(8 * self.d_model / 3 / 64)
        problems = []
        if self.head_dim == 0 and self.d_model % self.n_head:
            problems.append(f"d_model={self.d_model} is not divisible by n_head={self.n_head}")
        elif self.head_dim == 0:
            self.head_dim = self.d_model // self.n_head
        if self.head_dim % 2:
            problems.append(f"head_dim={self.head_dim} must be even for RoPE")
        if self.n_kv_head < 1 or self.n_head % self.n_kv_head:
            problems.append(f"n_kv_head={self.n_kv_head} must divide n_head={self.n_head}")
        if min(self.vocab_size, self.n_layer, self.max_seq_len) < 1:
            problems.append("vocab_size, n_layer and max_seq_len must be positive")
        if self.rope_scaling is not None:
            missing = [k for k in LLAMA3_ROPE_KEYS if k not in self.rope_scaling]
            if self.rope_scaling.get("rope_type") != "llama3" or missing:
                problems.append(f"rope_scaling {self.rope_scaling} is not Llama-3's (rope_type 'llama3' with "
                                f"{', '.join(LLAMA3_ROPE_KEYS)})")
        if problems:
            raise LlmlabError("invalid model config: " + "; ".join(problems))

    @property
    def format_version(self) -> int:
        """The model format version a run folder of this config needs: 2 with a head_dim other than
        d_model / n_head or with RoPE scaling (a version-1 reader would build another model), else 1."""
        plain = self.head_dim * self.n_head == self.d_model and self.rope_scaling is None
        return 1 if plain else 2

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


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32 (as Llama does) so bf16 activations don't lose the mean square; fp64 stays fp64.
        xf = x if x.dtype == torch.float64 else x.float()
        return F.rms_norm(xf, (x.shape[-1],), self.weight.to(xf.dtype), self.eps).to(x.dtype)


def rope_tables(head_dim: int, max_len: int, theta: float,
                scaling: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (max_len, head_dim) in the rotate-half layout: [f_0..f_{h/2-1}, f_0..f_{h/2-1}]."""
    inv_freq = rope_frequencies(head_dim, theta, scaling)  # (head_dim/2,) float64
    angles = torch.outer(torch.arange(max_len, dtype=torch.float64), inv_freq)  # (max_len, head_dim/2)
    angles = torch.cat([angles, angles], dim=-1)  # (max_len, head_dim)
    return angles.cos().float(), angles.sin().float()


def rope_frequencies(head_dim: int, theta: float, scaling: dict | None = None) -> torch.Tensor:
    """RoPE's angular frequencies theta^(-2i/head_dim), (head_dim/2,) float64. With Llama-3's scaling the
    long wavelengths (> original context / low_freq_factor) turn ``factor`` times slower, the short ones
    (< original context / high_freq_factor) keep their speed, and those between blend the two smoothly."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    if scaling is None:
        return inv_freq
    factor, lo, hi = float(scaling["factor"]), float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
    old_len = float(scaling["original_max_position_embeddings"])
    wavelen = 2 * math.pi / inv_freq
    smooth = ((old_len / wavelen - lo) / (hi - lo)).clamp(0.0, 1.0)  # 0: long wavelengths, 1: short ones
    return inv_freq * ((1 - smooth) / factor + smooth)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, H, T, hd); cos/sin (B or 1, 1, T, hd). Rotate-half RoPE, as in HF Llama: dimension j turns with
    j + hd/2 by the angle of its position. Computed in cos's float32 (under autocast x is bf16), rounded once."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)  # rotate_half(x)
    return (x * cos + rotated * sin).to(x.dtype)


class KVCache:
    """Preallocated keys/values for every layer: (n_layer, B, n_kv_head, max_len, head_dim) each.

    All rows share one write position ``length`` (prompts of different lengths are left-padded by the engine,
    which masks the padding). ``keep_rows`` drops finished rows so they stop costing work.
    """

    # (B,) int64: each row's masked slots are the prefix [0, pad[b]), when the owner keeps that (the engine's
    # batch does); None otherwise. It lets a decode step skip those slots instead of reading them under a mask.
    pad: torch.Tensor | None = None

    def __init__(self, config: ModelConfig, batch_size: int, max_len: int, device, dtype=torch.float32,
                 zeros: bool = True):
        # zeros=False: the caller fills every slot (or zeroes what it leaves) before anything reads it.
        shape = (config.n_layer, batch_size, config.n_kv_head, max_len, config.head_dim)
        new = torch.zeros if zeros else torch.empty
        self.k = new(shape, device=device, dtype=dtype)
        self.v = new(shape, device=device, dtype=dtype)
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
        d, q, kv = config.d_model, config.n_head * config.head_dim, config.n_kv_head * config.head_dim
        self.q_proj = nn.Linear(d, q, bias=False)
        self.k_proj = nn.Linear(d, kv, bias=False)
        self.v_proj = nn.Linear(d, kv, bias=False)
        self.o_proj = nn.Linear(q, d, bias=False)

    def forward(self, x, cos, sin, kv_cache: KVCache | None, attn_mask: torch.Tensor | None) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = self.k_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)  # (B, Hkv, T, hd)
        v = self.v_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)  # (B, Hkv, T, hd)
        y = self.rope_and_attend(q, k, v, cos, sin, kv_cache, attn_mask)  # (B, H, T, hd)
        y = y.transpose(1, 2).reshape(B, T, -1)  # (B, T, H * hd)
        return self.o_proj(y)

    def rope_and_attend(self, q, k, v, cos, sin, kv_cache: KVCache | None, attn_mask: torch.Tensor | None):
        """RoPE on q and k, the new keys/values appended to the cache, causal attention: (B, H, T, hd)."""
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        past = 0
        if kv_cache is not None:
            past = kv_cache.length
            k, v = kv_cache.update(self.layer_idx, k, v)  # (B, Hkv, S, hd), S = past + T
        return attend(q, k, v, past, attn_mask, self.n_kv_head != self.n_head)


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.d_model, config.ffn_hidden, bias=False)
        self.up_proj = nn.Linear(config.d_model, config.ffn_hidden, bias=False)
        self.down_proj = nn.Linear(config.ffn_hidden, config.d_model, bias=False)

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
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.lm_loss = LinearCrossEntropy()  # head + loss in row chunks (model/fused_ce.py); no weights of its own
        if config.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        cos, sin = rope_tables(config.head_dim, config.max_seq_len, config.rope_theta, config.rope_scaling)
        self.register_buffer("rope_cos", cos, persistent=False)  # (max_seq_len, head_dim)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Normal(0, init_std) everywhere; the two projections that write into the residual stream are scaled
        by 1/sqrt(2 * n_layer) so the residual's variance doesn't grow with depth (GPT-2's rule); norms = 1."""
        if self.embed_tokens.weight.is_meta:
            return  # built on the meta device to be loaded (runs.py): nothing to draw
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
            return self.lm_loss(h.flatten(0, 1), self.lm_head.weight, targets.flatten())
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
        """Training FLOPs per token: 6 * (matmul params) + 12 * n_layer * n_head * head_dim * seq_len (attention
        scores and weighted sum, forward + backward). With tied embeddings the head still costs vocab * d_model."""
        c = self.config
        T = seq_len or c.max_seq_len
        matmul_params = self.num_params(exclude_embedding=True)  # a tied table counts once, as the head
        return 6.0 * matmul_params + 12.0 * c.n_layer * c.n_head * c.head_dim * T


def document_causal_mask(doc_ids: torch.Tensor) -> torch.Tensor:
    """For packed sequences: doc_ids (B, T) -> bool mask (B, 1, T, T), True where token i may attend to j
    (j <= i and same document). Packed conversations then never see each other."""
    T = doc_ids.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=doc_ids.device).tril()
    same = doc_ids.unsqueeze(2) == doc_ids.unsqueeze(1)  # (B, T, T)
    return (same & causal).unsqueeze(1)
