"""The preference-learning and RL losses as pure functions on tensors: reward model, DPO, PPO, GRPO.

    from llmlab.train.losses import bradley_terry_loss, dpo_loss, gae, ppo_policy_loss, group_advantages
    loss, acc = bradley_terry_loss(r_chosen, r_rejected)          # r_* (B,)

Nothing here knows about models, tokenizers or data: every function takes tensors and returns tensors, so a
test can check it against a hand computation (tests/train/test_rl_losses.py). The trainers (rm.py, dpo.py,
ppo.py, grpo.py) compute log-probs, values and rewards with the model and hand them to these.

Conventions: per-token tensors are (B, T) over *response* positions, with a float ``mask`` (B, T) that is 1
on real response tokens and 0 on padding; log-probs are natural-log probabilities of the sampled token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from llmlab.model.sequences import token_logprobs  # noqa: F401  (the RL losses' log-probs)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` where ``mask`` is 1 (over everything, or along ``dim``). Empty rows give 0, not NaN."""
    mask = mask.to(x.dtype)
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1.0)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1.0)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / std over the masked entries (PPO's advantage normalisation); padding stays 0."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    return (x - mean) * torch.rsqrt(var + eps) * mask


# ----------------------------------------------------------------------------------------------------------
# Reward model


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """-log sigmoid(r_c - r_r), averaged over pairs; also the pairwise accuracy (share with r_c > r_r).

    r_chosen, r_rejected: (B,) scalar rewards. logsigmoid is the stable form of log(sigmoid(.))."""
    margin = r_chosen.float() - r_rejected.float()  # (B,)
    return -F.logsigmoid(margin).mean(), (margin > 0).float().mean()


# ----------------------------------------------------------------------------------------------------------
# DPO


def dpo_loss(
    pi_chosen: torch.Tensor,
    pi_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
    nll_coef: float = 0.0,
    chosen_tokens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Direct Preference Optimisation: -log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r))).

    All inputs (B,) are *summed* log-probs of the whole response under the policy / frozen reference. The
    implicit rewards beta * (pi - ref) are returned for logging; their margin > 0 is the preference accuracy.
    When policy == reference the logit is 0 and the loss is log 2.

    ``nll_coef`` > 0 adds the chosen answers' negative log-likelihood per token, ``-sum(pi_c) / sum(chosen_tokens)``
    (``chosen_tokens`` (B,): response tokens of each chosen answer), times ``nll_coef``: "DPO + SFT loss" (RPO,
    Pang et al. 2024; TRL's ``rpo_alpha``). DPO alone only needs the *gap* to grow and can get there by lowering
    both answers (likelihood displacement: a tuned model that truncates its correct answers); the NLL term
    holds the chosen answers' likelihood up."""
    chosen_reward = beta * (pi_chosen - ref_chosen)  # (B,)
    rejected_reward = beta * (pi_rejected - ref_rejected)
    margin = chosen_reward - rejected_reward
    loss = -F.logsigmoid(margin).mean()
    nll = None
    if nll_coef > 0:
        if chosen_tokens is None:
            raise ValueError("dpo_loss: nll_coef > 0 needs chosen_tokens")
        nll = -pi_chosen.sum() / chosen_tokens.sum().clamp(min=1)
        loss = loss + nll_coef * nll
    stats = {
        "reward_chosen": chosen_reward.detach().mean(),
        "reward_rejected": rejected_reward.detach().mean(),
        "reward_margin": margin.detach().mean(),
        "pref_accuracy": (margin.detach() > 0).float().mean(),
    }
    if nll is not None:
        stats["nll_chosen"] = nll.detach()
    return loss, stats


# ----------------------------------------------------------------------------------------------------------
# KL to the reference


def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) from the sampled token's log-probs, (B, T) -> (B, T).

    k1 = log p - log q: unbiased, can be negative per token (the classic RLHF penalty).
    k3 = (q/p) - 1 - log(q/p): unbiased and always >= 0, lower variance (Schulman's estimator; GRPO's choice).
    Both are exactly 0 where the two log-probs agree."""
    if kind == "k1":
        return logp - ref_logp
    if kind == "k3":
        log_ratio = ref_logp - logp  # log(q/p)
        return torch.exp(log_ratio) - 1.0 - log_ratio
    raise ValueError(f"unknown KL estimator {kind!r}; use 'k1' or 'k3'")


# ----------------------------------------------------------------------------------------------------------
# PPO


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised Advantage Estimation over response tokens.

    rewards, values, mask: (B, T). The value after the last real token is 0 (the episode ends there), so
    delta_t = r_t + gamma * V_{t+1} * m_{t+1} - V_t and A_t = delta_t + gamma * lam * m_{t+1} * A_{t+1}.
    Returns (advantages, returns = advantages + values), both zero on padding."""
    mask = mask.to(values.dtype)
    B, T = rewards.shape
    adv = torch.zeros_like(values)
    next_value = torch.zeros(B, dtype=values.dtype, device=values.device)
    next_adv = torch.zeros_like(next_value)
    next_mask = torch.zeros_like(next_value)
    for t in reversed(range(T)):  # T is a response length (tens of tokens): the Python loop is cheap
        delta = rewards[:, t] + gamma * next_value * next_mask - values[:, t]
        a = delta + gamma * lam * next_mask * next_adv
        adv[:, t] = a * mask[:, t]
        next_value, next_adv, next_mask = values[:, t], adv[:, t], mask[:, t]
    return adv, (adv + values) * mask


def ppo_policy_loss(
    logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, clip: float = 0.2,
    clip_high: float | None = None, token_norm: float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate: -min(ratio * A, clip(ratio, 1-eps, 1+eps_high) * A), token-mean over the mask.

    logp: (B, T) under the current policy (with grad); old_logp: (B, T) at rollout time; advantages: (B, T)
    or (B, 1) (one per sequence, as GRPO). ``clip_high`` (DAPO's clip-higher; default = ``clip``) lets the
    ratio of a good, unlikely token grow further than it may shrink. ``token_norm``: divide the masked sum by
    this constant instead of the number of response tokens (Dr. GRPO). Returns the loss and clip fraction /
    approximate KL(old || new)."""
    high = clip if clip_high is None else clip_high
    log_ratio = logp - old_logp
    ratio = torch.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + high) * advantages
    per_token = -torch.min(unclipped, clipped)
    loss = masked_mean(per_token, mask) if token_norm is None else (per_token * mask).sum() / token_norm
    with torch.no_grad():
        clipfrac = masked_mean(((ratio < 1.0 - clip) | (ratio > 1.0 + high)).float(), mask)
        approx_kl = masked_mean(0.5 * log_ratio**2, mask)
    return loss, {"clip_frac": clipfrac, "approx_kl": approx_kl}


def ppo_value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, clip: float = 0.2
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped value loss: 0.5 * max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2), token-mean.

    The clip keeps the value head from jumping far from where it was when the rollout was scored."""
    clipped_values = old_values + torch.clamp(values - old_values, -clip, clip)
    loss = 0.5 * masked_mean(torch.max((values - returns) ** 2, (clipped_values - returns) ** 2), mask)
    with torch.no_grad():
        clipfrac = masked_mean(((values - old_values).abs() > clip).float(), mask)
    return loss, {"value_clip_frac": clipfrac}


# ----------------------------------------------------------------------------------------------------------
# GRPO


def group_advantages(
    rewards: torch.Tensor, group_size: int, eps: float = 1e-6, scale: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Group-normalised advantages: (r - mean_group) / (std_group + eps) for every sample.

    rewards: (N * group_size,) ordered group by group (the engine's n samples per prompt are adjacent).
    std is the unbiased sample std (as DeepSeekMath). ``scale=False`` only centres (Dr. GRPO: dividing by the
    std up-weights groups that are nearly all right or all wrong).
    Returns (advantages (N * G,), fraction of groups whose rewards are all equal -- they teach nothing)."""
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    r = rewards.float().view(-1, group_size)  # (N, G)
    centred = r - r.mean(dim=1, keepdim=True)
    std = r.std(dim=1, keepdim=True, unbiased=True) if group_size > 1 else torch.zeros_like(r[:, :1])
    adv = centred / (std + eps) if scale else centred
    zero_var = 1.0 - informative_groups(rewards, group_size).float().mean()
    return adv.view(-1), zero_var


def informative_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """(N,) bool: the groups whose rewards are not all equal -- the only ones with a nonzero advantage.
    DAPO's dynamic sampling keeps these and refills the batch with more prompts."""
    r = rewards.float().view(-1, group_size)  # (N, G)
    return r.max(dim=1).values != r.min(dim=1).values


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip: float = 0.2,
    ref_logp: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    clip_high: float | None = None,
    token_norm: float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """GRPO objective: PPO's clipped ratio with one advantage per sequence, plus an optional k3 KL penalty
    to the reference added to the loss (not to the reward), averaged over all response tokens in the batch.

    logp, old_logp, ref_logp, mask: (B, T); advantages: (B,). Averaging over tokens of the whole batch (not
    per sequence first) keeps long and short answers on the same per-token footing; ``token_norm`` replaces
    the token count by a constant (Dr. GRPO: rows x max answer length). ``clip_high``: see ppo_policy_loss."""
    loss, stats = ppo_policy_loss(logp, old_logp, advantages.unsqueeze(1), mask, clip, clip_high, token_norm)
    if ref_logp is not None:
        kl = masked_mean(kl_penalty(logp, ref_logp, "k3"), mask)
        stats["kl_ref"] = kl.detach()
        if kl_coef:
            loss = loss + kl_coef * kl
    return loss, stats
