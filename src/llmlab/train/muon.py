"""Muon for the hidden matrices: momentum, then the update orthogonalised by a Newton-Schulz iteration.

    from llmlab.train.muon import Muon
    opt = Muon(hidden_matrices, lr=0.02, weight_decay=0.0, momentum=0.95)   # the loop's --optimizer muon

The same algorithm and numbers as ``torch.optim.Muon`` (Nesterov momentum, the quintic Newton-Schulz iteration
with coefficients (3.4445, -4.7750, 2.0315), 5 steps, learning rate scaled by sqrt(max(1, rows / cols)),
decoupled weight decay), with one difference: the dtype the iteration runs in. torch's runs it in bfloat16,
which is right on a GPU (tensor cores) and on CPUs with native bf16 matmuls (AVX512-BF16, AMX), but on a CPU
without them -- this project's AMD EPYC (Zen 3, AVX2 only) -- a bf16 128 x 384 matmul is 17x slower than the
float32 one: the iteration took 1.1 s of a 1.4 s speedrun step (docs/LOG.md, session 7). ``ns_dtype="auto"``
takes bfloat16 on CUDA and on CPUs that report native bf16 support, float32 elsewhere. Float32 is the more
precise of the two, so the update is the same orthogonalisation, computed more exactly.

State: ``momentum_buffer`` per parameter, as torch's Muon keeps it, so checkpoints written with either load.
"""

from __future__ import annotations

import math

import torch

from llmlab.utils.device import fast_bf16_matmul

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz(g: torch.Tensor, steps: int = 5, eps: float = 1e-7, dtype=torch.bfloat16) -> torch.Tensor:
    """G (m, n) -> approximately U V^T of G's SVD (singular values pushed into ~[0.5, 1.5]), in ``dtype``."""
    a, b, c = NS_COEFFICIENTS
    x = g.to(dtype)
    wide = g.shape[0] > g.shape[1]
    if wide:  # iterate on the short side: the Gram matrix is min(m, n) square
        x = x.T
    x.div_(x.norm().clamp(min=eps))  # spectral norm <= Frobenius norm <= 1
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if wide else x


class Muon(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.1, momentum: float = 0.95,
                 nesterov: bool = True, ns_steps: int = 5, eps: float = 1e-7, ns_dtype: str = "auto"):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"Muon: lr, momentum and weight_decay must be >= 0 (got {lr}, {momentum}, {weight_decay})")
        if ns_dtype not in ("auto", "bfloat16", "float32"):
            raise ValueError(f"Muon: ns_dtype must be auto, bfloat16 or float32, not {ns_dtype!r}")
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                                      ns_steps=ns_steps, eps=eps, ns_dtype=ns_dtype))
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() != 2:
                    raise ValueError(f"Muon takes 2-D matrices only, got a parameter of shape {tuple(p.shape)}")

    @staticmethod
    def _dtype(choice: str, device: torch.device) -> torch.dtype:
        if choice == "auto":
            return torch.bfloat16 if fast_bf16_matmul(device) else torch.float32
        return getattr(torch, choice)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mom = group["lr"], group["momentum"]
            choice = group.get("ns_dtype", "auto")  # absent in torch.optim.Muon checkpoints
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(grad, memory_format=torch.preserve_format)
                buf = state["momentum_buffer"]
                buf.lerp_(grad, 1 - mom)
                update = grad.lerp(buf, mom) if group["nesterov"] else buf
                update = newton_schulz(update, group["ns_steps"], group["eps"], self._dtype(choice, p.device))
                rows, cols = p.shape
                p.mul_(1 - lr * group["weight_decay"])
                p.add_(update.to(p.dtype), alpha=-lr * math.sqrt(max(1.0, rows / cols)))
        return loss
