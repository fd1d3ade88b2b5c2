"""Scalar heads on the transformer: the reward model (a score at the last token) and PPO's value model (a value
at every position), and batched scoring of token sequences with them.

    from llmlab.model.heads import ScalarHeadModel, score_sequences
    rm = ScalarHeadModel(gpt)                 # transformer + Linear(d_model, 1): a score at every position
    scores = rm(ids)                          # (B, T); the reward of a sequence is the score at its last token

The head reads ``GPT.trunk`` (the final normalised hidden state that the output head reads), so nothing of the
network is re-implemented here. Reward-model run folders are saved and loaded by ``llmlab.runs``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from llmlab.errors import LlmlabError
from llmlab.model.sequences import gather_last, pad_sequences, token_logprobs


class ScalarHeadModel(nn.Module):
    """A transformer with a scalar head: the reward model (score at the last token) and PPO's value model
    (a value at every response position). ``forward(idx) -> (B, T)``.

    ``logprob_coef`` > 0 (reward models only) adds ``logprob_coef * log p(tokens 1..t)`` under the backbone's
    own output head to the score at position t, so a sequence's reward at its last token includes its
    log-likelihood; in a pair the shared prompt's part cancels and the margin gains
    ``logprob_coef * (log p(chosen | prompt) - log p(rejected | prompt))``, what the language model knows about
    which answer is right. The sum runs from the first token, so ``forward``'s absolute scores include the
    prompt's log-likelihood (a per-prompt offset of ~-170 nats on the default prompts that cancels between
    answers to the same prompt but not in PPO's returns); ``answer_reward_parts`` gives the reward of the answer
    alone. Rows packed with an ``attn_mask`` sum over the tokens each position can see, each token scored from
    the last position visible before it.

    ``head_layers`` = n > 1: the head reads the final hidden state concatenated with the residual streams of the
    n - 1 layers below it (``GPT.trunk(..., layers=n)``), not the top layer's alone."""

    def __init__(self, backbone: nn.Module, logprob_coef: float = 0.0, head_layers: int = 1):
        super().__init__()
        if not 1 <= head_layers <= backbone.config.n_layer:
            raise LlmlabError(f"head_layers={head_layers}: the model has {backbone.config.n_layer} layers")
        self.backbone = backbone
        self.logprob_coef = float(logprob_coef)
        self.head_layers = int(head_layers)
        d = backbone.config.d_model
        self.head = nn.Linear(d * self.head_layers, 1)
        # A small head so the initial scores are ~0 and Bradley-Terry starts at log 2.
        nn.init.normal_(self.head.weight, std=1.0 / math.sqrt(d) * 0.1)
        nn.init.zeros_(self.head.bias)

    @property
    def config(self):
        return self.backbone.config

    def forward(self, idx: torch.Tensor, positions: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None, lm_targets: torch.Tensor | None = None):
        """Scores (B, T); with ``lm_targets`` (B, T) token ids (-1 = not scored) also the mean next-token loss
        of the backbone's own output head on them: ``(scores, nll)`` (the reward model's LM regulariser)."""
        feats = self.backbone.trunk(idx, positions=positions, attn_mask=attn_mask, layers=self.head_layers)
        scores = self.head(feats).squeeze(-1).float()  # (B, T)
        h = feats[..., : self.config.d_model]  # what the output head reads
        if self.logprob_coef:
            scores = scores + self.logprob_coef * self._visible_logprob(h, idx, attn_mask)
        if lm_targets is None:
            return scores
        from llmlab.model.fused_ce import linear_cross_entropy

        keep = lm_targets.flatten() >= 0  # the head runs only where a target is scored
        nll = linear_cross_entropy(h.flatten(0, 1)[keep], self.backbone.lm_head.weight, lm_targets.flatten()[keep])
        return scores, nll

    def _visible_logprob(self, h: torch.Tensor, idx: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        """(B, T): at position t, the summed log-prob of the tokens s <= t that t attends to (s >= 1)."""
        B, T = idx.shape
        if attn_mask is None:
            visible = torch.ones(T, T, dtype=torch.bool, device=idx.device).tril().expand(B, T, T)
        else:
            visible = (attn_mask[:, 0] == 0) if attn_mask.is_floating_point() else attn_mask[:, 0]
            visible = visible.expand(B, T, T)
        u = torch.arange(T, device=idx.device)
        before = visible & (u.view(1, 1, T) < u.view(1, T, 1))  # key u strictly before query s
        has_prev = before.any(-1)  # (B, T): False for the first token
        prev = torch.where(before, u.view(1, 1, T), -1).amax(-1).clamp(min=0)  # the position that predicts s
        logits = self.backbone.lm_head(h.gather(1, prev.unsqueeze(-1).expand(-1, -1, h.shape[-1])))
        lp = token_logprobs(logits, idx) * has_prev  # (B, T): log p(token s | what precedes it)
        return (visible.float() @ lp.unsqueeze(-1)).squeeze(-1)

    def head_and_token_logprobs(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two parts of a log-likelihood reward from one backbone pass over right-padded rows: the head's
        score at every position (B, T), and each token's log-prob under the backbone's own output head
        (B, T-1; entry t scores token t+1). See ``answer_reward_parts``."""
        feats = self.backbone.trunk(idx, layers=self.head_layers)
        head = self.head(feats).squeeze(-1).float()  # (B, T)
        h = feats[..., : self.config.d_model]
        return head, token_logprobs(self.backbone.lm_head(h[:, :-1]), idx[:, 1:])

    def flops_per_token(self, seq_len: int | None = None) -> float:
        return self.backbone.flops_per_token(seq_len)


@torch.no_grad()
def score_sequences(rm: ScalarHeadModel, seqs: list[list[int]], pad_id: int, batch_size: int = 32,
                    answer_starts: list[int] | None = None) -> torch.Tensor:
    """Reward of each token sequence (prompt + response) under ``rm``: (N,) on CPU. ``answer_starts`` (the
    prompt's length in each sequence) makes a log-likelihood reward model score the answer only, leaving out
    log p(prompt); without it the score is the whole conversation's (equal between answers to one prompt up
    to float rounding, so rankings of such answers do not change)."""
    if answer_starts is not None and len(answer_starts) != len(seqs):
        raise ValueError(f"score_sequences: {len(answer_starts)} answer starts for {len(seqs)} sequences")
    device = next(rm.parameters()).device
    out = []
    for i in range(0, len(seqs), batch_size):
        chunk = seqs[i : i + batch_size]
        starts = [1] * len(chunk) if answer_starts is None else answer_starts[i : i + batch_size]
        ids, mask, last = pad_sequences(chunk, starts, pad_id)
        if answer_starts is None:  # the whole conversation's score
            out.append(gather_last(rm(ids.to(device)), last.to(device)).cpu())
            continue
        head, token_score = answer_reward_parts(rm, ids.to(device), mask.to(device))
        out.append((gather_last(head, last.to(device)) + token_score.sum(1)).cpu())
    return torch.cat(out)


def answer_reward_parts(rm: ScalarHeadModel, ids: torch.Tensor,
                        mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The reward of the answers in right-padded rows ids (B, T), in two parts: the head's score at every
    position (B, T), and ``logprob_coef`` x each answer token's log-prob (B, T-1), zero outside the answer
    (``mask``: the response-target mask of ``pad_sequences``), so never log p(prompt). The reward of the answer
    ending at ``last`` is ``head[last] + token_score.sum()``; PPO can pay the second part token by token. A
    plain reward model's second part is zero and its output head is not run."""
    if not rm.logprob_coef:
        return rm(ids), torch.zeros(ids.shape[0], ids.shape[1] - 1, device=ids.device)
    head, lp = rm.head_and_token_logprobs(ids)
    return head, rm.logprob_coef * lp * mask[:, :-1]


def value_model_from(rm: ScalarHeadModel) -> ScalarHeadModel:
    """PPO's critic, initialised from the reward model (InstructGPT's choice): a trainable copy of its
    backbone and head *without* the log-likelihood term. The critic predicts the return still to come from
    each position; a log-prob term would add the log-likelihood of the tokens already generated (and, without
    an answer start, of the prompt), which is not part of it."""
    import copy

    value = copy.deepcopy(rm).train()  # a copy, not a new head: no draw from the global random stream
    value.logprob_coef = 0.0
    for p in value.parameters():
        p.requires_grad_(True)
    return value
