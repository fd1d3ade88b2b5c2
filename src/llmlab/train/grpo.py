"""GRPO: reinforcement learning from checkable rewards, with group-relative advantages (no value model).

    llmlab grpo --model runs/sft --prompts data/pref/rl_train.jsonl --val data/pref/rl_val.jsonl \
        --group-size 8 --out runs/grpo

    from llmlab.train.grpo import GRPOConfig, run
    result = run(GRPOConfig(model="runs/sft", prompts="rl_train.jsonl", val="rl_val.jsonl", out="runs/grpo"))
    result.summary["exact_match_before"], result.summary["exact_match_after"]

For every prompt the policy samples a *group* of G answers (the engine shares one prefill across them); each
answer is scored by plain Python reward functions (default: strict exact match against the prompt's
``answer``, rewards.py); an answer's advantage is its reward relative to its group, (r - mean) / std. Groups
whose answers all score the same carry no signal (their fraction is logged as ``zero_var_frac``); by default
they are dropped and the rollout is refilled with more prompts (DAPO's dynamic sampling, ``--no-dynamic-sampling``
turns it off). The update is PPO's clipped ratio with that one advantage on every token of the answer
(``--clip-high`` for an asymmetric clip; with one optimizer step per rollout, the default, the ratio is exactly
1 and the old log-probs are the step's own, so no separate forward pass computes them), plus an optional k3 KL
penalty to the frozen reference (``--kl-coef``); ``--advantage drgrpo`` uses Dr. GRPO's unscaled advantage and
constant loss normaliser. The run reports exact match on held-out prompts before and after (``val_exact_match``
in summary.json, ``exact_match_before`` beside it), and by kind at every ``--eval-every`` in metrics.jsonl.
"""

from __future__ import annotations

from pathlib import Path

import torch

from llmlab.train.configs import GRPOConfig
from llmlab.train.loop import TrainConfig, TrainResult
from llmlab.train.losses import group_advantages, grpo_loss, informative_groups, kl_penalty
from llmlab.train.rl_common import frozen_copy
from llmlab.train.rollout import RolloutSource, encode_prompts, pack, sample_completions, stat_metrics
from llmlab.train.shared_prefix import shared_prompt_logprobs
from llmlab.utils.config import config_to_dict, require


class GRPOSource(RolloutSource):
    """Rollouts of G samples for each of ``rollout_prompts`` prompts, scored by ``reward_fns``.

    ``dynamic_sampling`` (DAPO): groups whose rewards all agree have zero advantage (they only dilute the
    step), so they are dropped and more prompts are sampled until ``rollout_prompts`` informative groups are
    collected or ``max_draws`` batches of prompts were tried. ``scale_advantages=False``: Dr. GRPO's
    advantage r - mean(group), without dividing by the group's std."""

    def __init__(self, policy, ref, tok, prompts, reward_fns, *, group_size, rollout_prompts, epochs, minibatch,
                 max_new_tokens, temperature, dynamic_sampling, unfinished_reward=None, max_draws=4,
                 scale_advantages=True, seed=0):
        super().__init__(prompts, rollout_prompts, epochs, minibatch, seed)
        self.policy, self.ref, self.tok, self.reward_fns = policy, ref, tok, reward_fns
        self.G, self.max_new_tokens, self.temperature = group_size, max_new_tokens, temperature
        self.unfinished_reward = unfinished_reward
        self.dynamic_sampling, self.max_draws, self.scale_advantages = dynamic_sampling, max_draws, scale_advantages
        # One optimizer step per rollout (the default): the step's weights are the ones that sampled, so the old
        # log-probs are the step's own (detached, ratio exactly 1) and their separate forward pass is skipped.
        self.one_update = epochs == 1 and minibatch >= group_size * self.rollout_prompts

    @torch.no_grad()
    def _sample_and_score(self, prompts, draw: int = 0) -> list[dict]:
        """One group per prompt: its G answers' ids, rewards and whether each stopped. ``draw``: the how-manieth
        batch of prompts of this rollout (dynamic sampling), so every draw gets its own random numbers."""
        groups = sample_completions(self.policy, self.tok, [p for p, _ in prompts], n=self.G,
                                    max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                                    seed=self.seed * 7919 + self.rollouts + 1_000_003 * draw)
        out = []
        for (pid, prompt), group in zip(prompts, groups):
            rewards = []
            for c in group:
                r = sum(fn(prompt, c.text) for fn in self.reward_fns)
                if not c.finished and self.unfinished_reward is not None:
                    r = self.unfinished_reward
                rewards.append(float(r))
            out.append({"pid": pid, "ids": [c.ids for c in group], "rewards": rewards,
                        "finished": [float(c.finished) for c in group]})
        informative = informative_groups(torch.tensor([r for g in out for r in g["rewards"]]), self.G).tolist()
        for g, ok in zip(out, informative):
            g["informative"] = ok  # rewards not all equal: the group has a nonzero advantage
        return out

    @torch.no_grad()
    def make_rollout(self, prompts):
        tok, G = self.tok, self.G
        sampled = self._sample_and_score(prompts)
        groups = sampled
        if self.dynamic_sampling:
            groups = [g for g in sampled if g["informative"]]
            draws = 1
            while len(groups) < self.rollout_prompts and draws < self.max_draws:
                more = self._sample_and_score(self._next_prompts(), draw=draws)
                sampled += more
                groups += [g for g in more if g["informative"]]
                draws += 1
            groups = groups[: self.rollout_prompts] or sampled[: self.rollout_prompts]  # none informative: a no-op step
        p_ids, c_ids = [], []
        for g in groups:  # the G samples of one prompt stay adjacent: group_advantages relies on it
            p_ids += [g["pid"]] * G
            c_ids += g["ids"]
        ids, mask, last = pack(p_ids, c_ids, tok.pad_id)
        rewards_t = torch.tensor([r for g in groups for r in g["rewards"]])
        adv, _ = group_advantages(rewards_t, G, scale=self.scale_advantages)  # (P*G,)
        all_rewards = torch.tensor([r for g in sampled for r in g["rewards"]])  # what the policy scored
        zero_var = 1.0 - sum(g["informative"] for g in sampled) / len(sampled)
        device = next(self.policy.parameters()).device
        was_training = self.policy.training
        self.policy.eval()
        old_logp, ref_logp = [], []
        rows_per_chunk = G * max(1, 32 // G)  # whole groups (they share a prompt); chunks keep the logits small
        for i in range(0, ids.shape[0], rows_per_chunk):
            chunk, chunk_mask = ids[i : i + rows_per_chunk].to(device), mask[i : i + rows_per_chunk].to(device)
            if not self.one_update:
                old_logp.append(shared_prompt_logprobs(self.policy, chunk, chunk_mask).cpu())
            ref_logp.append(shared_prompt_logprobs(self.ref, chunk, chunk_mask).cpu())
        self.policy.train(was_training)
        ref_logp = torch.cat(ref_logp)  # (P*G, T-1)
        rows = {"input_ids": ids, "mask": mask, "last": last, "ref_logp": ref_logp, "adv": adv}
        kl_stat = {}
        if old_logp:
            rows["old_logp"] = old_logp = torch.cat(old_logp)
            kl_stat = {"kl_ref_seq": sequence_kl(old_logp, ref_logp, mask[:, :-1]).mean()}
        # else the loss reports kl_ref_seq from the step's own log-probs
        lengths = [len(c) for g in sampled for c in g["ids"]]
        finished = [f for g in sampled for f in g["finished"]]
        stats = {"reward_mean": all_rewards.mean(), "reward_std": all_rewards.std() if len(all_rewards) > 1 else 0.0,
                 "zero_var_frac": zero_var, **kl_stat, "response_len": sum(lengths) / len(lengths),
                 "stop_rate": sum(finished) / len(finished), "groups_trained": float(len(groups)),
                 "groups_sampled": float(len(sampled))}
        return rows, stats


def sequence_kl(logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(policy || reference) of each sampled answer, the k1 estimate summed over its tokens: (rows,)."""
    return (kl_penalty(logp, ref_logp, "k1") * mask).sum(1)


def make_grpo_loss(clip: float, kl_coef: float, clip_high: float | None = None, const_norm: int | None = None):
    """``const_norm``: normalise the summed token loss by rows x this many tokens (Dr. GRPO) instead of the
    batch's response-token count."""

    def loss_fn(model, batch):
        logp = shared_prompt_logprobs(model, batch["input_ids"], batch["mask"])  # (B, T-1): each prompt run once
        m = batch["mask"][:, :-1]
        norm = None if const_norm is None else float(batch["input_ids"].shape[0] * const_norm)
        old_logp = batch.get("old_logp")
        extra = {}
        if old_logp is None:  # one step per rollout (GRPOSource.one_update): these weights sampled the batch
            old_logp = logp.detach()
            extra["kl_ref_seq"] = sequence_kl(old_logp, batch["ref_logp"], m).mean()
        loss, stats = grpo_loss(logp, old_logp, batch["adv"], m, clip=clip, ref_logp=batch["ref_logp"],
                                kl_coef=kl_coef, clip_high=clip_high, token_norm=norm)
        return loss, {**stats, **extra, **stat_metrics(batch)}

    return loss_fn


def run(cfg: GRPOConfig, tcfg: TrainConfig | None = None, *, reward_fns=None, resume: bool = False,
        progress: bool | None = None) -> TrainResult:
    """GRPO from the run ``cfg.model`` (also the KL reference) on prompts with answers; ``tcfg`` defaults to
    ``GRPOConfig.train_config()``. ``reward_fns``: Python reward functions instead of ``cfg.reward``'s named ones.

    ``advantage``: "grpo" ((r - mean) / std, token-mean loss) or "drgrpo" (r - mean, loss summed over tokens
    and divided by rows x ``max_new_tokens``). ``dynamic_sampling``/``max_draws``: see GRPOSource;
    ``clip_high``: DAPO's asymmetric upper clip (only matters with several updates per rollout)."""
    from llmlab.chat.pref_data import read_prompts
    from llmlab.eval.rl_eval import exact_match_eval
    from llmlab.runs import load_run
    from llmlab.tasks.rewards import REWARD_FUNCTIONS
    from llmlab.train.loop import resolve_device, train
    from llmlab.utils.io import write_json

    require(cfg, "grpo")
    train_cfg = tcfg or GRPOConfig.train_config()
    reward_fns = reward_fns or [REWARD_FUNCTIONS[n] for n in cfg.reward_names()]
    max_new_tokens = cfg.max_new_tokens
    policy, tok = load_run(cfg.model)
    device = resolve_device(train_cfg.device)
    policy.to(device)
    ref = frozen_copy(policy)
    ctx = policy.config.max_seq_len
    prompts, dropped = encode_prompts(read_prompts(cfg.prompts), tok, ctx)
    val = encode_prompts(read_prompts(cfg.val), tok, ctx)[0] if cfg.val else []
    before = exact_match_eval(policy, tok, val, max_new_tokens=max_new_tokens) if val else None
    minibatch = cfg.minibatch or cfg.rollout_prompts * cfg.group_size  # default: one step per rollout per epoch
    source = GRPOSource(policy, ref, tok, prompts, reward_fns, group_size=cfg.group_size,
                        rollout_prompts=cfg.rollout_prompts, epochs=cfg.epochs, minibatch=minibatch,
                        max_new_tokens=max_new_tokens, temperature=cfg.temperature,
                        unfinished_reward=cfg.unfinished_reward, dynamic_sampling=cfg.dynamic_sampling,
                        max_draws=cfg.max_draws, scale_advantages=cfg.advantage == "grpo", seed=train_cfg.seed)

    last_eval: dict = {}

    def eval_fn(model, final=True):
        if not val:
            return {}
        last_eval.update(exact_match_eval(model, tok, val, max_new_tokens=max_new_tokens))
        by_kind = {f"val_em_{k}": v for k, v in last_eval["by_kind"].items()}  # in metrics.jsonl at every eval
        return {"val_exact_match": last_eval["exact_match"], "val_stop_rate": last_eval["stop_rate"], **by_kind}

    settings = {k: v for k, v in config_to_dict(cfg).items() if k not in ("model", "prompts", "val", "out", "reward")}
    run_config = {"stage": "grpo", "grpo": config_to_dict(cfg), "init": str(cfg.model), "reference": str(cfg.model),
                  "prompts": str(cfg.prompts), "val": str(cfg.val), "n_prompts": len(prompts),
                  "prompts_dropped_too_long": dropped, **settings, "minibatch": minibatch,
                  "reward_fns": [getattr(f, "__name__", repr(f)) for f in reward_fns]}
    const_norm = max_new_tokens if cfg.advantage == "drgrpo" else None
    loss_fn = make_grpo_loss(cfg.clip, cfg.kl_coef, cfg.clip_high, const_norm)
    result = train(policy, train_cfg, source, loss_fn, cfg.out, eval_fn=eval_fn, tokenizer=tok,
                   run_config=run_config, resume=resume, progress=progress)
    if before is not None:
        s = result.summary
        s["exact_match_before"] = before["exact_match"]
        s["exact_match_before_by_kind"] = before["by_kind"]
        s["exact_match_after_by_kind"] = last_eval.get("by_kind")  # the loop's final evaluation
        s["exact_match_after"] = s.get("val_exact_match")
        write_json(Path(cfg.out) / "summary.json", s)
    return result
