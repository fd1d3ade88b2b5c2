"""What the reward model, DPO, PPO and GRPO share: hidden states, a scalar head, response log-probs, rollouts.

    from llmlab.train.rl_common import ScalarHeadModel, sequence_logprobs, save_reward_model, load_reward_model
    rm = ScalarHeadModel(gpt)                 # transformer + Linear(d_model, 1): a score at every position
    scores = rm(ids)                          # (B, T); the reward of a sequence is the score at its last token
    lp = response_token_logprobs(policy, ids) # (B, T-1): log p(ids[:, t+1] | ids[:, :t+1])

A reward-model run folder is an ordinary run folder (the backbone's ``model.safetensors``,
``model_config.json``, ``tokenizer/``) plus ``reward_head.safetensors`` and ``reward_head.json``
(format ``llmlab-reward-head`` v1, v2 when it records a ``logprob_coef``, v3 when it records ``head_layers``), so
the backbone loads with ``load_run`` like any model.

Hidden states: ``GPT.forward`` returns logits only, so ``hidden_states`` runs the same embedding, blocks and
final norm here (the blocks are the model's own modules; nothing is re-implemented but the 6-line walk).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn

from llmlab.errors import LlmlabError
from llmlab.train.losses import token_logprobs

REWARD_HEAD = "reward_head.safetensors"
REWARD_HEAD_META = "reward_head.json"
REWARD_HEAD_FORMAT = "llmlab-reward-head"
REWARD_HEAD_VERSION = 3  # v2 adds logprob_coef (written only when it is not 0), v3 head_layers (when not 1)


def hidden_states(gpt: nn.Module, idx: torch.Tensor, positions: torch.Tensor | None = None,
                  attn_mask: torch.Tensor | None = None, layers: int = 1) -> torch.Tensor:
    """The final normalised hidden state (what ``lm_head`` reads): idx (B, T) -> (B, T, d_model).

    ``layers`` = n > 1 appends the residual streams after the n - 1 blocks below the top one, each RMS-normalised
    without a learned gain: (B, T, n * d_model), the final state first.

    Mirrors ``GPT.forward`` without a KV cache: right-padded batches need no mask (causal attention never
    lets a real token see later padding). ``positions`` (B, T) and ``attn_mask`` (B, 1, T, T; bool, or float
    added to the scores) are for rows that pack several sequences (the reward model's shared-prompt pairs)."""
    T = idx.shape[1]
    if positions is None:
        if T > gpt.config.max_seq_len:
            raise ValueError(f"{T} positions exceed the model's context ({gpt.config.max_seq_len})")
        positions = torch.arange(T, device=idx.device).unsqueeze(0)  # (1, T)
    cos = gpt.rope_cos[positions].unsqueeze(1)  # (B or 1, 1, T, hd)
    sin = gpt.rope_sin[positions].unsqueeze(1)
    x = gpt.embed_tokens(idx)  # (B, T, d_model)
    below = []  # residual streams under the top block, top first
    n = len(gpt.layers)
    for i, block in enumerate(gpt.layers):
        x = block(x, cos, sin, None, attn_mask)
        if n - layers <= i < n - 1:
            below.insert(0, x)
    if not below:
        return gpt.norm(x)
    eps = gpt.config.norm_eps
    return torch.cat([gpt.norm(x)] + [nn.functional.rms_norm(b, (b.shape[-1],), eps=eps) for b in below], dim=-1)


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
    n - 1 layers below it (``hidden_states(..., layers=n)``), not the top layer's alone."""

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
        feats = hidden_states(self.backbone, idx, positions, attn_mask, self.head_layers)
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
        feats = hidden_states(self.backbone, idx, layers=self.head_layers)
        head = self.head(feats).squeeze(-1).float()  # (B, T)
        h = feats[..., : self.config.d_model]
        return head, token_logprobs(self.backbone.lm_head(h[:, :-1]), idx[:, 1:])

    def flops_per_token(self, seq_len: int | None = None) -> float:
        return self.backbone.flops_per_token(seq_len)


def gather_last(x: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """x (B, T), last (B,) index of each row's last real token -> (B,)."""
    return x.gather(1, last.unsqueeze(1)).squeeze(1)


def response_token_logprobs(model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
    """Per-token log-probs of a batch under ``model`` (a GPT): idx (B, T) -> (B, T-1), entry t scoring
    token t+1. Multiply by a response mask (pref_data.pad_sequences' ``mask[:, :-1]``) to keep the answer."""
    logits = model(idx)  # (B, T, vocab)
    return token_logprobs(logits[:, :-1], idx[:, 1:])


def sequence_logprobs(model: nn.Module, idx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Summed log-prob of each row's response: (B,)."""
    return (response_token_logprobs(model, idx) * mask[:, :-1]).sum(1)


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode with gradients off (the reference policy)."""
    import copy

    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


# ----------------------------------------------------------------------------------------------------------
# Reward-model run folders


def save_reward_model(run_dir: str | Path, rm: ScalarHeadModel, tokenizer=None) -> None:
    """Backbone as a normal run folder, the head beside it (atomic writes)."""
    from safetensors.torch import save_file

    from llmlab.model.checkpoint import save_run_model, unwrap
    from llmlab.utils.io import atomic_path, write_json

    rm = unwrap(rm) if not isinstance(rm, ScalarHeadModel) else rm
    run_dir = Path(run_dir)
    save_run_model(run_dir, rm.backbone, tokenizer)
    head = {k: v.detach().cpu().contiguous() for k, v in rm.head.state_dict().items()}
    meta = {"format": REWARD_HEAD_FORMAT, "version": 1, "d_model": rm.config.d_model}
    if rm.logprob_coef:  # v2: the score adds the log-likelihood term; a v1 reader must refuse it, not ignore it
        meta.update(version=2, logprob_coef=rm.logprob_coef)
    if rm.head_layers != 1:  # v3: the head reads several layers; older readers must refuse it
        meta.update(version=3, head_layers=rm.head_layers)
    with atomic_path(run_dir / REWARD_HEAD) as tmp:
        save_file(head, str(tmp), metadata={"format": REWARD_HEAD_FORMAT, "version": str(meta["version"])})
    write_json(run_dir / REWARD_HEAD_META, meta)


def load_reward_model(run_dir: str | Path, device="cpu") -> tuple[ScalarHeadModel, object]:
    """``(reward_model, tokenizer)`` from a folder written by ``llmlab rm``."""
    from safetensors.torch import load_file

    from llmlab.model.checkpoint import load_run
    from llmlab.utils.io import read_json

    run_dir = Path(run_dir)
    if not (run_dir / REWARD_HEAD).is_file():
        raise LlmlabError(f"{run_dir}: not a reward-model run (no {REWARD_HEAD}; train one with `llmlab rm`)")
    meta = read_json(run_dir / REWARD_HEAD_META, "reward head metadata")
    if meta.get("format") != REWARD_HEAD_FORMAT or int(meta.get("version", 0)) > REWARD_HEAD_VERSION:
        raise LlmlabError(f"{run_dir / REWARD_HEAD_META}: unknown reward head format {meta.get('format')!r} "
                          f"v{meta.get('version')}")
    backbone, tok = load_run(run_dir, device="cpu")
    rm = ScalarHeadModel(backbone, logprob_coef=float(meta.get("logprob_coef", 0.0)),
                         head_layers=int(meta.get("head_layers", 1)))
    rm.head.load_state_dict(load_file(str(run_dir / REWARD_HEAD)))
    return rm.to(device).eval(), tok


@torch.no_grad()
def score_sequences(rm: ScalarHeadModel, seqs: list[list[int]], pad_id: int, batch_size: int = 32,
                    answer_starts: list[int] | None = None) -> torch.Tensor:
    """Reward of each token sequence (prompt + response) under ``rm``: (N,) on CPU. ``answer_starts`` (the
    prompt's length in each sequence) makes a log-likelihood reward model score the answer only, leaving out
    log p(prompt); without it the score is the whole conversation's (equal between answers to one prompt up
    to float rounding, so rankings of such answers do not change)."""
    from llmlab.train.pref_data import pad_sequences

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


def check_same_tokenizer(a, b, what: str) -> None:
    """Two runs must share a vocabulary for their token ids to mean the same thing."""
    if a.vocab_size != b.vocab_size or a.encode("To be, or not to be: 12 + 7 = 19.") != b.encode(
        "To be, or not to be: 12 + 7 = 19."
    ):
        raise LlmlabError(f"{what}: the tokenizers differ; train every stage from the same base run")
