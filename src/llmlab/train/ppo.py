"""PPO from a reward model (RLHF as InstructGPT did it): policy, frozen reference, reward model, value model.

    llmlab ppo --model runs/sft --reward-model runs/rm --prompts data/pref/rl_train.jsonl --out runs/ppo

    from llmlab.train.ppo import PPOConfig, run
    result = run(PPOConfig(model="runs/sft", reward_model="runs/rm", prompts="rl_train.jsonl", out="runs/ppo"))

One rollout (rollout.py): the policy answers ``rollout_prompts`` prompts through the engine; the reward model
scores each answer (a log-likelihood reward model, ``llmlab rm --logprob-coef``, counts the answer's tokens
only: log p(prompt) differs from prompt to prompt and would otherwise enter the returns); every answer token
gets the reward -kl_coef * (log pi - log ref) (the per-token KL penalty that keeps the policy near the SFT
model), and the last token also gets the reward model's score. A log-likelihood reward is a head score plus
coef x a sum of per-token log-probs, so by default (``logprob_reward="token"``) each answer token gets coef x
its own log-prob when it is generated, like the KL penalty, and the last token the head's score: the same
total, with credit where each term arises ("answer": all of it on the last token). The value model (initialised from the reward
model's backbone and head, as InstructGPT did, without its log-likelihood term: ``value_model_from``)
estimates the return at every position; GAE turns rewards and values into advantages, whitened over the
rollout. With ``kl_target`` set, the KL coefficient is not fixed but steered after every rollout toward that
KL per answer (``AdaptiveKL``, Ziegler et al. 2019's controller; it lags: from a start below the target it
lowers the coefficient, and the KL overshoots before it rises again). With ``check_coef`` > 0, where an answer
can be checked (the prompt has a reference answer and a checkable kind, ``rewards.checkable``) the final reward also gets +check_coef when it is exactly right and
-check_coef when not: the judge alone lets the policy drift to answers it likes that are wrong (docs/LOG.md
session 10). Then ``epochs`` passes of minibatches, each one step of the shared loop on the clipped policy loss
+ vf_coef * the clipped value loss. Logged: the reward model's score (mean/std), the KL to the reference,
response length, stop rate, clip fractions, the KL coefficient. The run folder holds the tuned policy
(``llmlab chat --model runs/ppo``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from llmlab.errors import LlmlabError
from llmlab.model.heads import ScalarHeadModel, answer_reward_parts, value_model_from
from llmlab.model.sequences import gather_last, response_token_logprobs, token_logprobs
from llmlab.runs import check_same_tokenizer
from llmlab.train.configs import BASELINES, LOGPROB_REWARDS, PPOConfig
from llmlab.train.loop import TrainConfig, TrainResult
from llmlab.train.losses import gae, kl_penalty, masked_mean, masked_whiten, ppo_policy_loss, ppo_value_loss
from llmlab.train.rl_common import frozen_copy
from llmlab.train.rollout import RolloutSource, encode_prompts, pack, sample_completions, stat_metrics
from llmlab.utils.config import config_to_dict, require


def check_sign(prompt, text: str) -> float:
    """+1 for an exactly right answer to a checkable prompt, -1 for a wrong one, 0 when it cannot be checked."""
    from llmlab.tasks.check import checkable, exact_match

    if not checkable(prompt):
        return 0.0
    return 1.0 if exact_match(text, prompt.answer) else -1.0


class AdaptiveKL:
    """The KL coefficient as a proportional controller (Ziegler et al. 2019, "Fine-Tuning Language Models from
    Human Preferences"; TRL's AdaptiveKLController): after a rollout of ``n`` answers whose mean KL to the
    reference is ``kl`` nats, ``coef *= 1 + clip(kl / target - 1, -0.2, 0.2) * n / horizon``. Above the
    target the penalty grows, below it shrinks; ``horizon`` (answers) sets how fast, the clip bounds one
    noisy rollout's pull. Opt-in: on the speedrun's PPO (target 1.5 from 0.1, horizon 500) the KL ended at
    3.9 and 2.3 nats over two seeds, where the fixed 0.1 ended at 2.5 and 2.2 (LOG session 12)."""

    def __init__(self, target: float, horizon: float):
        if target <= 0 or horizon <= 0:
            raise LlmlabError(f"adaptive KL needs a positive target and horizon, got {target} and {horizon}")
        self.target, self.horizon = float(target), float(horizon)

    def next_coef(self, coef: float, kl: float, n: int) -> float:
        error = min(max(kl / self.target - 1.0, -0.2), 0.2)
        return coef * (1.0 + error * n / self.horizon)


class PolicyAndValue(nn.Module):
    """The two trained networks of PPO under one module, so the shared loop optimises (and checkpoints)
    both: ``forward(idx) -> (logits (B, T, V), values (B, T))``."""

    def __init__(self, policy: nn.Module, value: ScalarHeadModel):
        super().__init__()
        self.policy, self.value = policy, value

    @property
    def config(self):
        return self.policy.config

    def forward(self, idx):
        return self.policy(idx), self.value(idx)

    def flops_per_token(self, seq_len=None):
        return self.policy.flops_per_token(seq_len) + self.value.flops_per_token(seq_len)


class PPOSource(RolloutSource):
    def __init__(self, model: PolicyAndValue, ref, rm, tok, prompts, *, rollout_prompts, epochs, minibatch,
                 max_new_tokens, temperature, kl_coef, kl_estimator, gamma, lam, unfinished_penalty,
                 logprob_reward="token", baseline="none", check_coef=0.0, kl_target=None, kl_horizon=500.0, seed=0):
        super().__init__(prompts, rollout_prompts, epochs, minibatch, seed)
        self.check_coef = check_coef
        if kl_target is not None and kl_coef <= 0:  # a multiplicative controller cannot move a zero coefficient
            raise LlmlabError(f"a KL target needs a positive KL coefficient to start from, got {kl_coef}")
        self.kl_control = AdaptiveKL(kl_target, kl_horizon) if kl_target is not None else None
        self.model, self.ref, self.rm, self.tok = model, ref, rm, tok
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self.kl_coef, self.kl_estimator, self.gamma, self.lam = kl_coef, kl_estimator, gamma, lam
        self.unfinished_penalty = unfinished_penalty
        if logprob_reward not in LOGPROB_REWARDS:
            raise LlmlabError(f"logprob_reward must be one of {', '.join(LOGPROB_REWARDS)}, got {logprob_reward!r}")
        if baseline not in BASELINES:
            raise LlmlabError(f"baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")
        self.logprob_reward, self.baseline = logprob_reward, baseline

    def _score(self, ids, mask, last):
        """The reward model's view of packed answers: head score at each answer's last token (B,) and
        coef x each answer token's log-prob (B, T-1), zero outside the answer (never log p(prompt))."""
        device = next(self.rm.parameters()).device
        heads, token_scores = [], []
        for i in range(0, ids.shape[0], 32):
            head, token_score = answer_reward_parts(self.rm, ids[i : i + 32].to(device), mask[i : i + 32].to(device))
            heads.append(gather_last(head, last[i : i + 32].to(device)).cpu())
            token_scores.append(token_score.cpu())
        return torch.cat(heads), torch.cat(token_scores)

    @torch.no_grad()
    def make_rollout(self, prompts):
        tok, policy, value = self.tok, self.model.policy, self.model.value
        p_ids = [p for p, _ in prompts]
        groups = sample_completions(policy, tok, p_ids, n=1, max_new_tokens=self.max_new_tokens,
                                    temperature=self.temperature, seed=self.seed * 7919 + self.rollouts)
        comps = [g[0] for g in groups]
        ids, mask, last = pack(p_ids, [c.ids for c in comps], tok.pad_id)
        device = next(policy.parameters()).device
        was_training = self.model.training
        self.model.eval()
        old_logp, ref_logp, values = [], [], []
        for i in range(0, ids.shape[0], 32):
            chunk = ids[i : i + 32].to(device)
            old_logp.append(response_token_logprobs(policy, chunk).cpu())
            ref_logp.append(response_token_logprobs(self.ref, chunk).cpu())
            values.append(value(chunk)[:, :-1].cpu())  # V at position t: value before emitting token t+1
        heads, token_score = self._score(ids, mask, last)
        stats = {}
        if self.baseline == "greedy":  # ReMax: the reward of the policy's greedy answer to the same prompt
            greedy = [g[0] for g in sample_completions(policy, tok, p_ids, n=1, max_new_tokens=self.max_new_tokens,
                                                        temperature=0.0)]
            g_ids, g_mask, g_last = pack(p_ids, [c.ids for c in greedy], tok.pad_id)
            g_heads, g_token_score = self._score(g_ids, g_mask, g_last)
            g_finished = torch.tensor([float(c.finished) for c in greedy])
            base = g_heads + g_token_score.sum(1) - self.unfinished_penalty * (1.0 - g_finished)
            stats["greedy_reward_mean"] = base.mean()
        self.model.train(was_training)
        old_logp, ref_logp, values = map(torch.cat, (old_logp, ref_logp, values))
        m = mask[:, :-1]  # (B, T-1) response targets
        scores = heads + token_score.sum(1)  # the reward model's score of each answer
        finished = torch.tensor([float(c.finished) for c in comps])
        # Per-token rewards: -beta * KL everywhere in the answer, plus the score on its last token (its
        # log-prob part token by token with logprob_reward="token").
        kl = kl_penalty(old_logp, ref_logp, self.kl_estimator) * m  # (B, T-1)
        rewards = -self.kl_coef * kl
        dense = self.logprob_reward == "token"
        if dense:
            rewards = rewards + token_score
        final = (heads if dense else scores) - self.unfinished_penalty * (1.0 - finished)
        if self.check_coef:
            check = torch.tensor([check_sign(r, c.text) for (_, r), c in zip(prompts, comps)])  # +1 / -1 / 0
            final = final + self.check_coef * check
            stats["checked_right"] = (check > 0).float().sum() / (check != 0).float().sum().clamp(min=1)
        if self.baseline == "greedy":
            # A per-prompt constant: the expected gradient is unchanged, the spread of scores from prompt to
            # prompt (how long and how predictable an answer must be) leaves the returns.
            final = final - base
            stats["beats_greedy"] = (scores - self.unfinished_penalty * (1.0 - finished) > base).float().mean()
        rewards[torch.arange(len(comps)), last - 1] += final  # target position last-1 predicts the last token
        adv, returns = gae(rewards, values * m, m, self.gamma, self.lam)
        adv = masked_whiten(adv, m)
        rows = {"input_ids": ids, "mask": mask, "last": last, "old_logp": old_logp, "old_values": values * m,
                "advantages": adv, "returns": returns}
        lengths = torch.tensor([float(len(c.ids)) for c in comps])
        kl_seq = kl.sum(1).mean()
        stats.update({"reward_mean": scores.mean(), "reward_std": scores.std() if len(comps) > 1 else 0.0,
                      "kl_ref_seq": kl_seq, "response_len": lengths.mean(), "stop_rate": finished.mean(),
                      "value_mean": masked_mean(values, m), "kl_coef": self.kl_coef})
        if self.kl_control is not None:  # this rollout's rewards used the old coefficient; the next uses the new
            self.kl_coef = self.kl_control.next_coef(self.kl_coef, float(kl_seq), len(comps))
        return rows, stats

    def state_dict(self) -> dict:
        return super().state_dict() | {"kl_coef": self.kl_coef}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.kl_coef = float(state.get("kl_coef", self.kl_coef))


def make_ppo_loss(clip: float, value_clip: float, vf_coef: float):
    def loss_fn(model, batch):
        logits, values = model(batch["input_ids"])  # (B, T, V), (B, T)
        logp = token_logprobs(logits[:, :-1], batch["input_ids"][:, 1:])  # (B, T-1)
        m = batch["mask"][:, :-1]
        pg_loss, st = ppo_policy_loss(logp, batch["old_logp"], batch["advantages"], m, clip)
        vf_loss, st2 = ppo_value_loss(values[:, :-1], batch["old_values"], batch["returns"], m, value_clip)
        return pg_loss + vf_coef * vf_loss, {"pg_loss": pg_loss.detach(), "vf_loss": vf_loss.detach(), **st, **st2,
                                              **stat_metrics(batch)}

    return loss_fn


def run(cfg: PPOConfig, tcfg: TrainConfig | None = None, *, resume: bool = False,
        progress: bool | None = None) -> TrainResult:
    """PPO from the run ``cfg.model`` (also the reference) against the reward model ``cfg.reward_model``;
    ``tcfg`` defaults to ``PPOConfig.train_config()``."""
    from llmlab.chat.pref_data import read_prompts
    from llmlab.runs import load_reward_model, load_run, save_run_model
    from llmlab.train.loop import resolve_device, train
    from llmlab.utils.io import write_json

    require(cfg, "ppo")
    train_cfg = tcfg or PPOConfig.train_config()
    policy, tok = load_run(cfg.model)
    device = resolve_device(train_cfg.device)
    rm, rm_tok = load_reward_model(cfg.reward_model, device=device)
    check_same_tokenizer(tok, rm_tok, f"{cfg.model} vs reward model {cfg.reward_model}")
    for p in rm.parameters():
        p.requires_grad_(False)
    value = value_model_from(rm)
    model = PolicyAndValue(policy, value).to(device)
    ref = frozen_copy(policy)
    prompts, dropped = encode_prompts(read_prompts(cfg.prompts), tok, policy.config.max_seq_len)
    source = PPOSource(model, ref, rm, tok, prompts, rollout_prompts=cfg.rollout_prompts, epochs=cfg.epochs,
                       minibatch=cfg.minibatch, max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                       kl_coef=cfg.kl_coef, kl_estimator=cfg.kl_estimator, gamma=cfg.gamma, lam=cfg.lam,
                       unfinished_penalty=cfg.unfinished_penalty, logprob_reward=cfg.logprob_reward,
                       baseline=cfg.baseline, check_coef=cfg.check_coef, kl_target=cfg.kl_target,
                       kl_horizon=cfg.kl_horizon, seed=train_cfg.seed)
    settings = {k: v for k, v in config_to_dict(cfg).items() if k not in ("model", "reward_model", "prompts", "out")}
    run_config = {"stage": "ppo", "ppo": config_to_dict(cfg), "init": str(cfg.model), "reference": str(cfg.model),
                  "reward_model": str(cfg.reward_model), "prompts": str(cfg.prompts), "n_prompts": len(prompts),
                  "prompts_dropped_too_long": dropped, **settings, "rm_logprob_coef": rm.logprob_coef}
    result = train(model, train_cfg, source, make_ppo_loss(cfg.clip, cfg.value_clip, cfg.vf_coef), cfg.out,
                   tokenizer=tok, run_config=run_config, save_fn=lambda m, out: save_run_model(out, m.policy, tok),
                   resume=resume, progress=progress)
    result.summary.update({f"last_rollout_{k}": v for k, v in source.last_stats.items()})
    write_json(Path(cfg.out) / "summary.json", result.summary)
    return result
