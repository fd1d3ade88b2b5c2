"""LoRA: fine-tune low-rank updates of the model's projections instead of the projections, then merge them in.

    from llmlab.train.lora import add_lora, merge_lora
    add_lora(model, rank=8)        # in place: every weight frozen; each block projection gets W + (alpha/r) B A
    ...train...                    # the optimizer holds only A and B (and their Adam moments)
    merge_lora(model)              # in place: W += (alpha/r) B A, the plain layers back: inference and export unchanged

    llmlab sft --model RUN --out OUT --lora-rank 8        # (also llmlab dpo): merged before OUT is written

Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models" (2021). For each linear layer of the blocks
(q, k, v, o, gate, up, down) the trained update is B A with A (r, d_in) and B (d_out, r): A starts random
(Kaiming-uniform, as ``nn.Linear`` and peft do), B at zero, so training starts from the base model exactly; the
update is scaled by alpha / r (alpha = 2r here, a common choice, so the scale does not change with r).
Embeddings, norms and the output head stay frozen.

Why our own and not ``peft``: a training step is as fast with either (``benchmarks/bench_lora.py``, the `cpu`
preset, rank 8, 1 thread: ours 0.95-1.04x peft's over three runs; both hold 7% of full fine-tuning's optimizer
state), so the choice is made on fit: our model's projections are all ``nn.Linear``, so an adapter is a 20-line
layer; it keeps the device's kernels of the layer it wraps (``model/kernels``); it exposes the merged matrix as
``weight``, so the inference engine's fused copy (rollouts, evaluations during training) computes with the
adapted weights, where peft's layers hand out the base weight; merging is four lines; and llmlab does not
depend on peft.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LoRALinear(nn.Module):
    """``base(x) + scale * (x A^T) B^T``; ``base`` (any bias-free linear layer) is frozen."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base = base
        self.rank, self.scale = rank, alpha / rank
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(rank, w.shape[1], device=w.device, dtype=w.dtype))
        self.lora_B = nn.Parameter(torch.zeros(w.shape[0], rank, device=w.device, dtype=w.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scale

    def delta(self) -> torch.Tensor:
        """The update scale * B A: (d_out, d_in)."""
        return (self.lora_B @ self.lora_A) * self.scale

    @property
    def weight(self) -> torch.Tensor:
        """The layer as one matrix, W + scale * B A (what the inference engine's fused copy reads)."""
        with torch.no_grad():
            return self.base.weight + self.delta().to(self.base.weight.dtype)


def add_lora(model: nn.Module, rank: int, alpha: float | None = None, targets=TARGETS) -> list[str]:
    """Freeze every parameter of ``model`` and wrap its linear layers named in ``targets`` with rank-``rank``
    adapters (alpha default 2 * rank). Returns the wrapped layers' names."""
    from llmlab.errors import LlmlabError

    if rank < 1:
        raise LlmlabError(f"--lora-rank {rank}: the rank must be at least 1")
    alpha = float(2 * rank if alpha is None else alpha)
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in targets and isinstance(child, nn.Linear) and child.bias is None:
                if rank > min(child.weight.shape):
                    raise LlmlabError(f"--lora-rank {rank} exceeds the size of {name}.{child_name} "
                                      f"{tuple(child.weight.shape)}")
                setattr(module, child_name, LoRALinear(child, rank, alpha))
                wrapped.append(f"{name}.{child_name}" if name else child_name)
    if not wrapped:
        raise LlmlabError(f"no linear layers named {', '.join(targets)} to put LoRA adapters on")
    return wrapped


@torch.no_grad()
def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight and put the base layer back (in place; returns ``model``). The
    parameters get back ``requires_grad`` (the plain model's default)."""
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                child.base.weight.add_(child.delta().to(child.base.weight.dtype))
                setattr(module, child_name, child.base)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def lora_counts(model: nn.Module) -> tuple[int, int]:
    """(trainable parameters, all parameters), tied weights counted once."""
    params = {id(p): p for p in model.parameters()}.values()
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def merged_saver(tokenizer):
    """A training loop ``save_fn`` that merges the adapters into the weights, then writes the run folder as
    usual (so the run holds a plain model)."""
    from llmlab.runs import save_run_model

    return lambda model, out: save_run_model(out, merge_lora(model), tokenizer)
