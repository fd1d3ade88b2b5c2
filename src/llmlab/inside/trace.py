"""One forward pass with its inside recorded: the residual stream after every block, and every attention
layer's inputs and output, captured by hooks on the model's own modules (the model's code is not touched).

    from llmlab.inside.trace import trace
    t = trace(model, ids)              # ids: list[int] (one sequence)
    t.residuals                        # [(1, T, d)] * (n_layer + 1): the embeddings, then after each block
    t.attention                        # [AttentionRecord] * n_layer: normed input, q/k/v, RoPE tables, output
    t.logits                           # (1, T, vocab): the model's own output

What it relies on, all of it Hugging Face Llama's module layout (which the model keeps so exporting is a
renaming): ``embed_tokens``, ``layers[i]`` (a block whose output is the residual stream), ``layers[i].self_attn``
with ``q_proj``, ``k_proj``, ``v_proj``, ``o_proj`` (the last one's input is the attention output, heads
concatenated), ``norm`` and ``lm_head``. The attention module is called with the RoPE tables (cos, sin) as
its second and third arguments; when it is not, they are rebuilt from the model's ``rope_cos``/``rope_sin``
buffers. Whatever is recomputed from these records is checked against what the model itself produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from llmlab.errors import LlmlabError


@dataclass
class AttentionRecord:
    q: torch.Tensor | None = None  # (1, T, n_head * hd), before RoPE
    k: torch.Tensor | None = None  # (1, T, n_kv_head * hd)
    v: torch.Tensor | None = None  # (1, T, n_kv_head * hd)
    cos: torch.Tensor | None = None  # broadcastable to (1, H, T, hd)
    sin: torch.Tensor | None = None
    out: torch.Tensor | None = None  # (1, T, n_head * hd): the input of o_proj


@dataclass
class Trace:
    ids: list[int]
    logits: torch.Tensor  # (1, T, vocab)
    residuals: list[torch.Tensor] = field(default_factory=list)
    attention: list[AttentionRecord] = field(default_factory=list)


def _parts(model):
    try:
        return model.embed_tokens, list(model.layers), model.norm, model.lm_head
    except AttributeError as e:
        raise LlmlabError(f"this model does not have the Llama module layout inside/ reads ({e})") from None


@torch.no_grad()
def trace(model, ids: list[int], *, attention: bool = True) -> Trace:
    """Run ``model`` on one sequence of token ids and record its residual stream (and attention layers)."""
    if not ids:
        raise LlmlabError("nothing to look at: the prompt has no tokens")
    if len(ids) > model.config.max_seq_len:
        raise LlmlabError(f"the prompt has {len(ids)} tokens; the model's context is {model.config.max_seq_len}")
    embed, layers, _, _ = _parts(model)
    residuals: list[torch.Tensor] = [None] * (len(layers) + 1)  # type: ignore[list-item]
    records = [AttentionRecord() for _ in layers]
    handles = []

    def keep(slot: int):
        def hook(_module, _args, output):
            residuals[slot] = output.detach().float()
        return hook

    def keep_attr(rec: AttentionRecord, name: str):
        def hook(_module, _args, output):
            setattr(rec, name, output.detach().float())
        return hook

    def keep_rope(rec: AttentionRecord):
        def hook(_module, args):
            if len(args) >= 3 and all(isinstance(a, torch.Tensor) for a in args[1:3]):
                rec.cos, rec.sin = args[1].detach().float(), args[2].detach().float()
        return hook

    def keep_out(rec: AttentionRecord):
        def hook(_module, args):
            rec.out = args[0].detach().float()
        return hook

    try:
        handles.append(embed.register_forward_hook(keep(0)))
        for i, block in enumerate(layers):
            handles.append(block.register_forward_hook(keep(i + 1)))
            if attention:
                att, rec = block.self_attn, records[i]
                handles.append(att.register_forward_pre_hook(keep_rope(rec)))
                for name in ("q", "k", "v"):
                    handles.append(getattr(att, f"{name}_proj").register_forward_hook(keep_attr(rec, name)))
                handles.append(att.o_proj.register_forward_pre_hook(keep_out(rec)))
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        logits = model(torch.tensor([ids], dtype=torch.long, device=device)).float()
        if was_training:
            model.train()
    finally:
        for h in handles:
            h.remove()
    if any(r is None for r in residuals):
        raise LlmlabError("a layer's output was not seen: this model does not run its blocks in order")
    return Trace(list(ids), logits, residuals, records if attention else [])


def rope_for(model, rec: AttentionRecord, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The RoPE tables the attention layer used (recorded), else the model's own buffers at 0..T-1."""
    if rec.cos is not None:
        return rec.cos, rec.sin
    cos, sin = getattr(model, "rope_cos", None), getattr(model, "rope_sin", None)
    if cos is None:
        raise LlmlabError("cannot find the model's RoPE tables (rope_cos/rope_sin)")
    return cos[:T].float()[None, None], sin[:T].float()[None, None]  # (1, 1, T, hd)
