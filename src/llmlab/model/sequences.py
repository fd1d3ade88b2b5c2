"""Sequence-level model math shared by training, evaluation and inference: right-padding token sequences,
per-token and per-answer log-probabilities.

    from llmlab.model.sequences import pad_sequences, sequence_logprobs
    ids, mask, last = pad_sequences([prompt + answer, ...], starts=[len(prompt), ...], pad_id=tok.pad_id)
    lp = sequence_logprobs(model, ids, mask)      # (B,): log p(answer | prompt) of each row

``mask`` marks *targets*: ``mask[b, t] = 1`` when ``ids[b, t + 1]`` is an answer token, because the logits at
position t predict token t + 1.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def pad_sequences(seqs: list[list[int]], starts: list[int], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad: returns ids (B, T), response mask (B, T) over *targets* (mask[b, t] = 1 when ids[b, t+1] is
    a response token; the last column is always 0) and last (B,) the index of each row's last real token."""
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(seqs), T)
    last = torch.empty(len(seqs), dtype=torch.long)
    for b, (s, start) in enumerate(zip(seqs, starts)):
        ids[b, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[b, start - 1 : len(s) - 1] = 1.0  # the logits at position t predict token t+1
        last[b] = len(s) - 1
    return ids, mask, last


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(targets) under ``logits``: logits (B, T, V), targets (B, T) -> (B, T).

    Computed as logit - logsumexp in fp32 (never materialising the full log-softmax gradient twice)."""
    logits = logits.float()
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    return picked - torch.logsumexp(logits, dim=-1)


def gather_last(x: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """x (B, T), last (B,) index of each row's last real token -> (B,)."""
    return x.gather(1, last.unsqueeze(1)).squeeze(1)


def response_token_logprobs(model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
    """Per-token log-probs of a batch under ``model`` (a GPT): idx (B, T) -> (B, T-1), entry t scoring
    token t+1. Multiply by a response mask (``pad_sequences``' ``mask[:, :-1]``) to keep the answer."""
    logits = model(idx)  # (B, T, vocab)
    return token_logprobs(logits[:, :-1], idx[:, 1:])


def sequence_logprobs(model: nn.Module, idx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Summed log-prob of each row's response: (B,)."""
    return (response_token_logprobs(model, idx) * mask[:, :-1]).sum(1)


# ----------------------------------------------------------------------------------------------------------
# Shared prefixes: one pass over the prefixes (prompts, contexts), then every continuation reads their keys and
# values. Used by the reward model's shared-prompt rows (train/shared_prefix.py) and the log-likelihood scorer
# (eval/loglik.py); both pass these as the model's ``kv_cache``.


class CollectKV:
    """A stand-in KV cache for the prefixes' pass: keeps each layer's keys/values (with autograd history)."""

    def __init__(self):
        self.length, self.k, self.v = 0, [], []

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        self.k.append(k)  # (P, n_kv, Lp, hd)
        self.v.append(v)
        return k, v


class PrefixKV:
    """A stand-in KV cache for the continuations' pass: each row's prefix keys/values, then its own."""

    def __init__(self, k: list[torch.Tensor], v: list[torch.Tensor], length: int):
        self.k, self.v, self.length = k, v, length

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        return torch.cat([self.k[layer], k], dim=2), torch.cat([self.v[layer], v], dim=2)  # (B, n_kv, Lp+Ta, hd)
