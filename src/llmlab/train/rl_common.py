"""What the reward model, DPO, PPO and GRPO share: hidden states, a scalar head, response log-probs, rollouts.

    from llmlab.train.rl_common import ScalarHeadModel, sequence_logprobs, save_reward_model, load_reward_model
    rm = ScalarHeadModel(gpt)                 # transformer + Linear(d_model, 1): a score at every position
    scores = rm(ids)                          # (B, T); the reward of a sequence is the score at its last token
    lp = response_token_logprobs(policy, ids) # (B, T-1): log p(ids[:, t+1] | ids[:, :t+1])

A reward-model run folder is an ordinary run folder (the backbone's ``model.safetensors``,
``model_config.json``, ``tokenizer/``) plus ``reward_head.safetensors`` and ``reward_head.json``
(format ``llmlab-reward-head`` v1), so the backbone loads with ``load_run`` like any model.

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
REWARD_HEAD_VERSION = 1


def hidden_states(gpt: nn.Module, idx: torch.Tensor) -> torch.Tensor:
    """The final normalised hidden state (what ``lm_head`` reads): idx (B, T) -> (B, T, d_model).

    Mirrors ``GPT.forward`` without a KV cache: right-padded batches need no mask (causal attention never
    lets a real token see later padding)."""
    T = idx.shape[1]
    if T > gpt.config.max_seq_len:
        raise ValueError(f"{T} positions exceed the model's context ({gpt.config.max_seq_len})")
    pos = torch.arange(T, device=idx.device)
    cos = gpt.rope_cos[pos].unsqueeze(0).unsqueeze(1)  # (1, 1, T, hd)
    sin = gpt.rope_sin[pos].unsqueeze(0).unsqueeze(1)
    x = gpt.embed_tokens(idx)  # (B, T, d_model)
    for block in gpt.layers:
        x = block(x, cos, sin, None, None)
    return gpt.norm(x)


class ScalarHeadModel(nn.Module):
    """A transformer with a scalar head: the reward model (score at the last token) and PPO's value model
    (a value at every response position). ``forward(idx) -> (B, T)``."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.config.d_model, 1)
        # A small head so the initial scores are ~0 and Bradley-Terry starts at log 2.
        nn.init.normal_(self.head.weight, std=1.0 / math.sqrt(backbone.config.d_model) * 0.1)
        nn.init.zeros_(self.head.bias)

    @property
    def config(self):
        return self.backbone.config

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(hidden_states(self.backbone, idx)).squeeze(-1).float()  # (B, T)

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
    with atomic_path(run_dir / REWARD_HEAD) as tmp:
        save_file(head, str(tmp), metadata={"format": REWARD_HEAD_FORMAT, "version": str(REWARD_HEAD_VERSION)})
    write_json(run_dir / REWARD_HEAD_META, {"format": REWARD_HEAD_FORMAT, "version": REWARD_HEAD_VERSION,
                                            "d_model": rm.config.d_model})


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
    rm = ScalarHeadModel(backbone)
    rm.head.load_state_dict(load_file(str(run_dir / REWARD_HEAD)))
    return rm.to(device).eval(), tok


@torch.no_grad()
def score_sequences(rm: ScalarHeadModel, seqs: list[list[int]], pad_id: int, batch_size: int = 32) -> torch.Tensor:
    """Reward of each whole token sequence (prompt + response) under ``rm``: (N,) on CPU."""
    device = next(rm.parameters()).device
    out = []
    for i in range(0, len(seqs), batch_size):
        chunk = seqs[i : i + batch_size]
        T = max(len(s) for s in chunk)
        ids = torch.full((len(chunk), T), pad_id, dtype=torch.long)
        for b, s in enumerate(chunk):
            ids[b, : len(s)] = torch.tensor(s)
        last = torch.tensor([len(s) - 1 for s in chunk], device=device)
        out.append(gather_last(rm(ids.to(device)), last).cpu())
    return torch.cat(out)


def check_same_tokenizer(a, b, what: str) -> None:
    """Two runs must share a vocabulary for their token ids to mean the same thing."""
    if a.vocab_size != b.vocab_size or a.encode("To be, or not to be: 12 + 7 = 19.") != b.encode(
        "To be, or not to be: 12 + 7 = 19."
    ):
        raise LlmlabError(f"{what}: the tokenizers differ; train every stage from the same base run")
