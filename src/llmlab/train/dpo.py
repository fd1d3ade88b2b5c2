"""Direct Preference Optimisation: tune the policy on preference pairs directly, no reward model, no sampling.

    llmlab dpo --model runs/sft --data data/pref/pairs_train.jsonl --val data/pref/pairs_val.jsonl \
        --beta 0.1 --out runs/dpo

    from llmlab.train.dpo import DPOConfig, run
    result = run(DPOConfig(model="runs/sft", data="pairs_train.jsonl", out="runs/dpo", beta=0.1))

The loss -log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r))) (losses.dpo_loss) uses the summed log-probs
of each answer under the policy (trained) and a frozen reference (the starting model); ``nll_coef`` adds the
chosen answers' per-token NLL ("DPO + SFT loss", RPO), which keeps DPO from lowering the chosen answers too. The reference never
changes, so its log-probs are computed once per pair -- the first time the pair is drawn -- and cached (an
(N, 2) table, ``RefCachedPairs``): each step then costs one forward/backward of the policy on B chosen + B
rejected rows, plus a reference forward only for pairs not seen before. The run folder is an
ordinary model run, so ``llmlab chat --model runs/dpo`` talks to the tuned policy.
"""

from __future__ import annotations

import torch

from llmlab.chat.pref_data import PairBatches, encode_pairs, pair_batch, read_pairs
from llmlab.train.configs import DPOConfig
from llmlab.train.loop import TrainConfig, TrainResult
from llmlab.train.losses import dpo_loss
from llmlab.train.rl_common import frozen_copy
from llmlab.train.shared_prefix import shared_prompt_logprobs
from llmlab.utils.config import config_to_dict, require


@torch.no_grad()
def reference_logprobs(model, enc, pad_id: int, batch_size: int = 32) -> torch.Tensor:
    """Summed response log-probs of every pair under ``model``: (N, 2) = [chosen, rejected], on CPU."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(enc), batch_size):
        b = pair_batch(enc[i : i + batch_size], pad_id)
        lp = shared_prompt_logprobs(model, b["input_ids"].to(device), b["mask"].to(device)).sum(1)  # (2n,)
        n = lp.shape[0] // 2
        out.append(torch.stack([lp[:n], lp[n:]], dim=1).cpu())
    model.train(was_training)
    return torch.cat(out)


class RefCachedPairs:
    """Pair batches with the frozen reference's summed log-probs attached (``ref`` (B, 2) = [chosen, rejected]).

    Each pair's reference log-probs are computed the first time the pair is drawn and cached (an (N, 2) table,
    NaN = not yet computed): the reference never changes, so every pair costs one reference forward pass per
    run, and pairs a short run never reaches cost nothing. The cache is part of the resumable state."""

    def __init__(self, pairs: PairBatches, ref, pad_id: int):
        self.pairs, self.ref, self.pad_id = pairs, ref, pad_id
        self.cache = torch.full((len(pairs.enc), 2), float("nan"))

    @torch.no_grad()
    def next_batch(self) -> dict:
        batch = self.pairs.next_batch()
        index = batch["index"]
        todo = index[torch.isnan(self.cache[index, 0])]
        if len(todo):
            self.cache[todo] = reference_logprobs(self.ref, [self.pairs.enc[i] for i in todo.tolist()], self.pad_id)
        batch["ref"] = self.cache[index].clone()
        return batch

    def state_dict(self) -> dict:
        return {"pairs": self.pairs.state_dict(), "cache": self.cache.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.pairs.load_state_dict(state["pairs"])
        self.cache = state["cache"].clone()


def make_dpo_loss(beta: float, nll_coef: float = 0.0):
    """The loss_fn for the shared loop: the batch carries the cached reference log-probs ``ref`` (B, 2)."""

    def loss_fn(model, batch):
        # (2B,) summed answer log-probs; a pair's chosen and rejected rows share their prompt's forward pass
        lp = shared_prompt_logprobs(model, batch["input_ids"], batch["mask"]).sum(1)
        n = lp.shape[0] // 2
        ref = batch["ref"]  # (B, 2)
        chosen_tokens = batch["mask"][:n, :-1].sum(1)  # (B,) response tokens of each chosen answer
        loss, stats = dpo_loss(lp[:n], lp[n:], ref[:, 0], ref[:, 1], beta, nll_coef=nll_coef,
                               chosen_tokens=chosen_tokens)
        stats["logp_chosen"] = lp[:n].detach().mean()
        stats["logp_rejected"] = lp[n:].detach().mean()
        return loss, stats

    return loss_fn


@torch.no_grad()
def dpo_eval(model, enc, ref_cache: torch.Tensor, beta: float, pad_id: int, batch_size: int = 32) -> dict:
    """Held-out DPO loss and preference accuracy (implicit reward of chosen > rejected)."""
    pol = reference_logprobs(model, enc, pad_id, batch_size)
    loss, stats = dpo_loss(pol[:, 0], pol[:, 1], ref_cache[:, 0], ref_cache[:, 1], beta)
    return {"val_loss": loss.item(), "val_pref_accuracy": stats["pref_accuracy"].item(),
            "val_reward_margin": stats["reward_margin"].item()}


def run(cfg: DPOConfig, tcfg: TrainConfig | None = None, *, resume: bool = False,
        progress: bool | None = None) -> TrainResult:
    """DPO from the run ``cfg.model`` (also the reference) on the pairs in ``cfg.data``; ``tcfg`` defaults to
    ``DPOConfig.train_config()``."""
    from llmlab.runs import load_run
    from llmlab.train.loop import resolve_device, train

    require(cfg, "dpo")
    train_cfg = tcfg or DPOConfig.train_config()
    beta = cfg.beta
    policy, tok = load_run(cfg.model)
    device = resolve_device(train_cfg.device)
    policy.to(device)
    max_len = policy.config.max_seq_len
    enc, dropped = encode_pairs(read_pairs(cfg.data), tok, max_len)
    val_enc = encode_pairs(read_pairs(cfg.val), tok, max_len)[0] if cfg.val else []
    # The reference is the starting policy, frozen: held-out log-probs now, training pairs' on first use.
    ref = frozen_copy(policy)
    val_ref = reference_logprobs(ref, val_enc, tok.pad_id) if val_enc else None
    batches = RefCachedPairs(PairBatches(enc, train_cfg.batch_size, tok.pad_id, seed=train_cfg.seed), ref, tok.pad_id)

    def eval_fn(model, final=True):
        return dpo_eval(model, val_enc, val_ref, beta, tok.pad_id) if val_enc else {}

    run_config = {"stage": "dpo", "dpo": config_to_dict(cfg), "init": str(cfg.model), "reference": str(cfg.model),
                  "beta": beta, "nll_coef": cfg.nll_coef, "data": str(cfg.data), "val": str(cfg.val),
                  "pairs": len(enc), "pairs_dropped_too_long": dropped, "val_pairs": len(val_enc)}
    return train(policy, train_cfg, batches, make_dpo_loss(beta, cfg.nll_coef), cfg.out, eval_fn=eval_fn,
                 tokenizer=tok, run_config=run_config, resume=resume, progress=progress)
