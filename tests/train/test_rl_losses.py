"""The RL/preference losses against values computed by hand on toy tensors (fast, no model)."""

import math

import pytest
import torch

from llmlab.model.sequences import token_logprobs
from llmlab.train.losses import (
    bradley_terry_loss,
    dpo_loss,
    gae,
    group_advantages,
    grpo_loss,
    informative_groups,
    kl_penalty,
    masked_mean,
    ppo_policy_loss,
    ppo_value_loss,
)


def test_bradley_terry_by_hand():
    rc, rr = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    loss, acc = bradley_terry_loss(rc, rr)
    # margins 1 and -1: -log sigmoid(1) = log(1 + e^-1), -log sigmoid(-1) = log(1 + e)
    want = (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(1))) / 2
    assert loss.item() == pytest.approx(want, rel=1e-6)
    assert acc.item() == 0.5


def test_dpo_is_log2_when_policy_equals_reference():
    pi_c, pi_r = torch.tensor([-3.0, -10.0]), torch.tensor([-4.0, -2.0])
    loss, stats = dpo_loss(pi_c, pi_r, pi_c.clone(), pi_r.clone(), beta=0.1)
    assert loss.item() == pytest.approx(math.log(2), rel=1e-6)
    assert stats["reward_margin"].item() == 0.0


def test_dpo_by_hand_and_gradient_direction():
    pi_c = torch.tensor([-3.0], requires_grad=True)
    pi_r = torch.tensor([-4.0], requires_grad=True)
    ref_c, ref_r = torch.tensor([-4.0]), torch.tensor([-3.0])
    loss, stats = dpo_loss(pi_c, pi_r, ref_c, ref_r, beta=0.5)
    # logit = 0.5 * ((1) - (-1)) = 1
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)
    assert stats["pref_accuracy"].item() == 1.0
    loss.backward()
    assert pi_c.grad.item() < 0 < pi_r.grad.item()  # descending raises chosen, lowers rejected


def test_dpo_nll_term_by_hand():
    # RPO: DPO + nll_coef * (chosen NLL per token). Chosen answers of 2 and 3 tokens, summed log-probs -3 and -6.
    pi_c = torch.tensor([-3.0, -6.0], requires_grad=True)
    pi_r, ref_c, ref_r = torch.tensor([-5.0, -6.0]), torch.tensor([-3.0, -6.0]), torch.tensor([-5.0, -6.0])
    plain, _ = dpo_loss(pi_c, pi_r, ref_c, ref_r, beta=0.1)
    loss, stats = dpo_loss(pi_c, pi_r, ref_c, ref_r, beta=0.1, nll_coef=0.5, chosen_tokens=torch.tensor([2.0, 3.0]))
    assert stats["nll_chosen"].item() == pytest.approx(9.0 / 5.0)
    assert loss.item() == pytest.approx(math.log(2) + 0.5 * 9.0 / 5.0, rel=1e-6)
    assert plain.item() == pytest.approx(math.log(2), rel=1e-6) and "nll_chosen" not in _
    loss.backward()
    # At policy == reference the DPO gradient on pi_c is -beta/2 / B per pair; the NLL adds -0.5 / 5 per pair.
    torch.testing.assert_close(pi_c.grad, torch.full((2,), -0.1 * 0.5 / 2 - 0.5 / 5))
    with pytest.raises(ValueError):
        dpo_loss(pi_c, pi_r, ref_c, ref_r, beta=0.1, nll_coef=0.5)


def test_token_logprobs_matches_log_softmax():
    torch.manual_seed(0)
    logits, targets = torch.randn(2, 3, 5), torch.randint(0, 5, (2, 3))
    want = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(token_logprobs(logits, targets), want)


def test_kl_estimators():
    logp = torch.tensor([[-1.0, -2.0]])
    assert kl_penalty(logp, logp, "k1").abs().max().item() == 0.0
    assert kl_penalty(logp, logp, "k3").abs().max().item() == 0.0
    ref = torch.tensor([[-2.0, -1.0]])
    torch.testing.assert_close(kl_penalty(logp, ref, "k1"), torch.tensor([[1.0, -1.0]]))
    # k3 with log(q/p) = -1 and +1: e^-1 - 1 + 1 and e^1 - 1 - 1
    torch.testing.assert_close(kl_penalty(logp, ref, "k3"), torch.tensor([[math.exp(-1), math.e - 2]]))
    with pytest.raises(ValueError):
        kl_penalty(logp, ref, "k2")


def test_gae_by_hand_with_padding():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.2, 0.4], [0.1, 0.3, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    adv, ret = gae(rewards, values, mask, gamma=1.0, lam=0.5)
    # row 0: A2 = 1 - .4 = .6; A1 = (0 + .4 - .2) + .5 * .6 = .5; A0 = (0 + .2 - .5) + .5 * .5 = -.05
    # row 1: the padded slot (value 9) must not leak: A1 = 1 - .3 = .7; A0 = (.3 - .1) + .5 * .7 = .55
    torch.testing.assert_close(adv, torch.tensor([[-0.05, 0.5, 0.6], [0.55, 0.7, 0.0]]))
    torch.testing.assert_close(ret, torch.tensor([[0.45, 0.7, 1.0], [0.65, 1.0, 0.0]]))


def test_ppo_policy_loss_clips():
    old = torch.zeros(1, 3)
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.1]]))  # ratios 1.5, 0.5, 1.1
    adv = torch.tensor([[1.0, 1.0, -1.0]])
    mask = torch.ones(1, 3)
    loss, stats = ppo_policy_loss(logp, old, adv, mask, clip=0.2)
    # token 0: min(1.5, 1.2) = 1.2; token 1: min(.5, .8) = .5; token 2: min(-1.1, -1.1) = -1.1
    assert loss.item() == pytest.approx(-(1.2 + 0.5 - 1.1) / 3, rel=1e-5)
    assert stats["clip_frac"].item() == pytest.approx(2 / 3)
    # masked tokens do not count
    loss2, _ = ppo_policy_loss(logp, old, adv, torch.tensor([[1.0, 0.0, 0.0]]), clip=0.2)
    assert loss2.item() == pytest.approx(-1.2, rel=1e-5)


def test_ppo_value_loss_clips():
    old, ret, mask = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 1.0]]), torch.ones(1, 2)
    values = torch.tensor([[0.5, 2.0]])
    loss, stats = ppo_value_loss(values, old, ret, mask, clip=0.2)
    # token 0: max(.25, (.2 - 1)^2 = .64) = .64; token 1: max(1, (.2 - 1)^2) = 1
    assert loss.item() == pytest.approx(0.5 * (0.64 + 1.0) / 2, rel=1e-5)
    assert stats["value_clip_frac"].item() == 1.0


def test_group_advantages():
    r = torch.tensor([1.0, 0.0, 0.0, 2.0, 2.0, 2.0])
    adv, zero_var = group_advantages(r, group_size=3)
    s = torch.tensor([1.0, 0.0, 0.0]).std().item()  # unbiased std of the first group
    torch.testing.assert_close(adv[:3], torch.tensor([2 / 3, -1 / 3, -1 / 3]) / (s + 1e-6))
    torch.testing.assert_close(adv[3:], torch.zeros(3))  # all equal: no signal
    assert zero_var.item() == 0.5
    with pytest.raises(ValueError):
        group_advantages(r, group_size=4)


def test_informative_groups_keeps_exactly_the_mixed_ones():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.7])  # 4 groups of 3
    assert informative_groups(r, 3).tolist() == [True, False, False, True]
    _, zero_var = group_advantages(r, 3)
    assert zero_var.item() == 0.5


def test_drgrpo_advantage_and_constant_norm_by_hand():
    r = torch.tensor([1.0, 0.0, 0.0, 0.0])  # one group of 4: mean 0.25, no std division
    adv, _ = group_advantages(r, 4, scale=False)
    torch.testing.assert_close(adv, torch.tensor([0.75, -0.25, -0.25, -0.25]))
    logp = torch.zeros(4, 3, requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])  # 7 tokens
    # ratio 1 everywhere: per-token loss -A; sum = -(2 * .75 - .25 - .25 - 3 * .25) = -0.25
    loss, _ = grpo_loss(logp, logp.detach(), adv, mask, token_norm=4 * 3)  # rows x max answer length
    assert loss.item() == pytest.approx(-0.25 / 12)
    token_mean, _ = grpo_loss(logp, logp.detach(), adv, mask)
    assert token_mean.item() == pytest.approx(-0.25 / 7)
    loss.backward()  # d loss / d logp = -A / 12 on every real token, 0 on padding
    torch.testing.assert_close(logp.grad[:, 0], -adv / 12)
    assert logp.grad[0, 2].item() == 0.0


def test_clip_high_lets_good_tokens_grow_further():
    old = torch.zeros(1, 2)
    logp = torch.log(torch.tensor([[1.25, 0.75]]))  # ratios 1.25 and 0.75
    adv, mask = torch.tensor([[1.0]]), torch.ones(1, 2)
    sym, s1 = ppo_policy_loss(logp, old, adv, mask, clip=0.2)  # min(1.25, 1.2) = 1.2; min(.75, .8) = .75
    assert sym.item() == pytest.approx(-(1.2 + 0.75) / 2, rel=1e-5)
    high, s2 = ppo_policy_loss(logp, old, adv, mask, clip=0.2, clip_high=0.28)  # 1.25 is inside [0.8, 1.28]
    assert high.item() == pytest.approx(-(1.25 + 0.75) / 2, rel=1e-5)
    assert s1["clip_frac"].item() == pytest.approx(1.0) and s2["clip_frac"].item() == pytest.approx(0.5)


def test_grpo_loss_direction_and_kl():
    logp = torch.tensor([[-1.0, -1.0], [-1.0, -1.0]], requires_grad=True)
    adv = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    loss, stats = grpo_loss(logp, logp.detach(), adv, mask, ref_logp=logp.detach(), kl_coef=0.1)
    assert stats["kl_ref"].item() == 0.0
    assert loss.item() == pytest.approx(-(1 + 1 - 1) / 3)
    loss.backward()
    g = logp.grad
    assert g[0, 0] < 0 and g[1, 0] > 0 and g[1, 1] == 0  # raise the good answer, lower the bad, ignore pad


def test_masked_mean_empty_is_zero():
    assert masked_mean(torch.ones(2, 2), torch.zeros(2, 2)).item() == 0.0


def test_reward_functions():
    from llmlab.chat.pref_data import RLPrompt
    from llmlab.tasks.rewards import exact_match_reward, partial_match_reward

    p = RLPrompt([{"role": "user", "content": "Spell stones."}], "s-t-o-n-e-s")
    assert exact_match_reward(p, "S-t-o-n-e-s.") == 1.0 and exact_match_reward(p, "s-t-o-n-e") == 0.0
    assert partial_match_reward(p, "s-t-o-n-e-s") == 0.5
    assert 0.0 < partial_match_reward(p, "s-t-o-n-e") < 0.5
    assert exact_match_reward(RLPrompt([], None), "x") == 0.0


def test_digit_reward_credits_digits_in_place():
    from llmlab.chat.pref_data import RLPrompt
    from llmlab.tasks.rewards import REWARD_FUNCTIONS, digit_match_reward, partial_match_reward

    p = RLPrompt([{"role": "user", "content": "88 - 31 = ?"}], "57")
    assert digit_match_reward(p, "57.") == 0.5 and digit_match_reward(p, "56") == 0.25
    assert digit_match_reward(p, "75") == 0.0  # both digits there, neither in place: difflib gives it credit
    assert partial_match_reward(p, "75") == partial_match_reward(p, "56") > 0.0
    assert digit_match_reward(p, "5") == 0.0 and digit_match_reward(p, "057") == 0.0  # wrong length
    assert digit_match_reward(p, "57 apples") == 0.0 and digit_match_reward(p, "٥٧") == 0.0  # not plain digits
    assert digit_match_reward(RLPrompt(p.prompt, "odd"), "odd") == 0.0  # not a number answer
    assert digit_match_reward(RLPrompt(p.prompt, None), "57") == 0.0
    assert REWARD_FUNCTIONS["digits"] is digit_match_reward
