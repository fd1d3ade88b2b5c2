"""Attention maps: for a prompt, how much every position of every head of every layer attends to each
earlier position -- recomputed from the model's own projections and checked against its attention output.

    llmlab inside attention --model RUN --prompt "To be, or not to be" --out attn.png [--layers 0,1] [--heads 0,1]
    llmlab inside attention --model RUN --prompt "..." --json

    from llmlab.inside.attention import attention_maps, attention_json
    maps = attention_maps(model, ids)            # maps.probs (n_layer, n_head, T, T); rows sum to 1
    data = attention_json(model, tokenizer, "To be, or not to be")   # what the web UI draws

SDPA never materialises the attention weights, so they are rebuilt: the hooks of ``trace.py`` record each
layer's q/k/v projections and RoPE tables; here q and k are rotated (rotate-half, as the model and HF Llama
do), scores = q k^T / sqrt(head_dim) under the causal mask, softmax. The weights are then used the way the
model uses them -- weights @ v, key/value heads shared by groups of query heads -- and the result must equal the
input the model's ``o_proj`` received (``max_error``); a model whose attention differs is refused rather than
drawn wrongly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from llmlab.errors import LlmlabError
from llmlab.inside.trace import rope_for, trace

ATTENTION_FORMAT = "llmlab-attention"
CHECK_TOL = 1e-3  # relative to the attention output's largest value


@dataclass
class AttentionMaps:
    ids: list[int]
    probs: torch.Tensor  # (n_layer, n_head, T, T), row t = where position t looks
    max_error: float  # largest |weights @ v - the model's attention output| over all layers, relative


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE: x (1, H, T, hd), cos/sin broadcastable to it."""
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


@torch.no_grad()
def attention_maps(model, ids: list[int], *, check: bool = True) -> AttentionMaps:
    t = trace(model, ids)
    T = len(ids)
    H, Hkv = model.config.n_head, model.config.n_kv_head
    maps, worst = [], 0.0
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for i, rec in enumerate(t.attention):
        if rec.q is None or rec.out is None:
            raise LlmlabError(f"layer {i}: the attention projections were not called (unknown attention module)")
        hd = rec.q.shape[-1] // H
        q = rec.q.view(1, T, H, hd).transpose(1, 2)  # (1, H, T, hd)
        k = rec.k.view(1, T, Hkv, hd).transpose(1, 2)  # (1, Hkv, T, hd)
        v = rec.v.view(1, T, Hkv, hd).transpose(1, 2)
        cos, sin = rope_for(model, rec, T)
        q, k = _rotate(q, cos.to(q.device), sin.to(q.device)), _rotate(k, cos.to(k.device), sin.to(k.device))
        k, v = k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)  # (1, H, T, hd)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)  # (1, H, T, T)
        scores = scores.masked_fill(~causal.to(scores.device), float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        y = (probs @ v).transpose(1, 2).reshape(1, T, H * hd)  # what o_proj should have received
        scale = rec.out.abs().max().clamp_min(1e-12)
        worst = max(worst, float((y - rec.out).abs().max() / scale))
        maps.append(probs[0].cpu())
    if check and worst > CHECK_TOL:
        raise LlmlabError(f"the recomputed attention differs from the model's own output (relative error "
                          f"{worst:.2e}): this model's attention is not the Llama form inside/ knows")
    return AttentionMaps(list(ids), torch.stack(maps), worst)


def _select(spec: list[int] | None, n: int, what: str) -> list[int]:
    if spec is None:
        return list(range(n))
    bad = [i for i in spec if not 0 <= i < n]
    if bad:
        raise LlmlabError(f"{what} {bad} out of range (the model has {n}: 0..{n - 1})")
    return list(spec)


def attention_json(model, tokenizer, prompt: str | list[int], *, layers: list[int] | None = None,
                   heads: list[int] | None = None, digits: int = 4) -> dict:
    """The attention maps of a prompt as JSON-ready data (for ``--json`` and the web UI):
    ``{"tokens", "token_ids", "layers", "heads", "attention": [layer][head][query][key], "max_error"}``
    where the lists index the selected layers and heads (all by default)."""
    from llmlab.infer.explain import token_text
    from llmlab.infer.text import encode_prompt

    ids = encode_prompt(tokenizer, prompt) if isinstance(prompt, str) else list(prompt)
    m = attention_maps(model, ids)
    L, H = m.probs.shape[:2]
    ls, hs = _select(layers, L, "layers"), _select(heads, H, "heads")
    sel = m.probs[ls][:, hs]
    return {"format": ATTENTION_FORMAT, "version": 1, "tokens": [token_text(tokenizer, i) for i in ids],
            "token_ids": ids, "layers": ls, "heads": hs,
            "attention": torch.round(sel, decimals=digits).tolist(), "max_error": m.max_error}


def plot_attention(data: dict, path, title: str = "") -> None:
    """A grid of heat maps (rows: layers, columns: heads), each query position (row) over key positions."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from llmlab.infer.explain import show
    from llmlab.utils.io import atomic_path

    att = data["attention"]
    nl, nh, T = len(att), len(att[0]), len(data["tokens"])
    cell = 2.4 if T <= 24 else 3.2
    fig, axes = plt.subplots(nl, nh, figsize=(min(2 + cell * nh, 60), min(1 + cell * nl, 60)), squeeze=False)
    labels = [show(s)[1:-1][:8] for s in data["tokens"]]
    for r, layer in enumerate(data["layers"]):
        for c, head in enumerate(data["heads"]):
            ax = axes[r][c]
            ax.imshow(att[r][c], cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_title(f"layer {layer} head {head}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            if T <= 32:
                if c == 0:
                    ax.set_yticks(range(T), labels, fontsize=6)
                if r == nl - 1:
                    ax.set_xticks(range(T), labels, fontsize=6, rotation=90)
    fig.suptitle(title or "attention weights (row: query position, column: key position)", fontsize=10)
    with warnings.catch_warnings():  # missing glyphs (CJK) warn; the maps still draw
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
