"""Each preference/RL trainer runs a few steps on a tiny model and moves its objective the right way."""

import json
import math

import pytest
import torch
from rl_fixtures import make_run, toy_pairs, write_jsonl

from llmlab.model.sequences import response_token_logprobs
from llmlab.runs import load_reward_model, load_run
from llmlab.train.loop import TrainConfig


def pairs_cfg(tmp, prompts, **kw):
    """ranked-pairs settings for the toy policy and judge the tests build in tmp (base/, rm/)."""
    from llmlab.train.ranked_pairs import RankedPairsConfig

    return RankedPairsConfig(model=tmp / "base", reward_model=tmp / "rm", prompts=prompts, **kw)


def tiny_cfg(steps, lr, batch_size=8):
    return TrainConfig(lr=lr, max_steps=steps, batch_size=batch_size, warmup_steps=1, schedule="constant",
                       seq_len=64, device="cpu", weight_decay=0.0)


def test_trunk_feeds_lm_head(tmp_path):
    model, _ = load_run(make_run(tmp_path / "base"))
    idx = torch.randint(0, model.config.vocab_size, (2, 10))
    torch.testing.assert_close(model.lm_head(model.trunk(idx)), model(idx))


def test_kl_zero_for_identical_models(tmp_path):
    from llmlab.train.losses import kl_penalty

    model, _ = load_run(make_run(tmp_path / "base"))
    ref, _ = load_run(tmp_path / "base")
    idx = torch.randint(0, model.config.vocab_size, (3, 12))
    with torch.no_grad():
        a, b = response_token_logprobs(model, idx), response_token_logprobs(ref, idx)
    assert kl_penalty(a, b, "k1").abs().max().item() == 0.0
    assert kl_penalty(a, b, "k3").abs().max().item() == 0.0


def test_reward_model_learns_preference(tmp_path):
    from llmlab.train.rm import RMConfig, run

    base = make_run(tmp_path / "base")
    data = write_jsonl(tmp_path / "pairs.jsonl", toy_pairs(16))
    val = write_jsonl(tmp_path / "val.jsonl", toy_pairs(24)[16:])
    summary = run(RMConfig(model=base, data=data, val=val, out=tmp_path / "rm"), tiny_cfg(25, 3e-3),
                  progress=False).summary
    assert summary["val_pair_accuracy"] == 1.0
    assert summary["val_loss"] < math.log(2)
    rm, tok = load_reward_model(tmp_path / "rm")
    hist = [json.loads(l) for l in (tmp_path / "rm" / "metrics.jsonl").read_text().splitlines()]
    assert hist[0]["loss"] == pytest.approx(math.log(2), abs=0.05)  # a near-zero head starts at log 2
    for name in ("model.safetensors", "reward_head.safetensors", "config.json", "summary.json"):
        assert (tmp_path / "rm" / name).is_file()


def test_dpo_raises_margin_and_starts_at_log2(tmp_path):
    from llmlab.train.dpo import DPOConfig, run

    base = make_run(tmp_path / "base")
    data = write_jsonl(tmp_path / "pairs.jsonl", toy_pairs(16))
    val = write_jsonl(tmp_path / "val.jsonl", toy_pairs(24)[16:])
    summary = run(DPOConfig(model=base, data=data, val=val, out=tmp_path / "dpo", beta=0.1), tiny_cfg(15, 3e-3),
                  progress=False).summary
    hist = [json.loads(l) for l in (tmp_path / "dpo" / "metrics.jsonl").read_text().splitlines()]
    assert hist[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)  # policy == reference at step 1
    assert summary["val_loss"] < math.log(2) and summary["val_pref_accuracy"] == 1.0
    load_run(tmp_path / "dpo")  # an ordinary model run: `llmlab chat --model` can load it


def _tasks(n, offset=0):
    # "What is i plus 0?" -> str(i): learnable by a tiny model only through RL in this test's few steps
    return [{"prompt": f"What is {i} plus 0?", "answer": "7", "kind": "arithmetic"} for i in range(offset, offset + n)]


def test_grpo_raises_reward(tmp_path):
    """A few GRPO steps must raise a reward that an untrained model already earns sometimes (digits)."""
    from llmlab.tasks.rewards import exact_match_reward
    from llmlab.train.grpo import GRPOConfig, run

    base = make_run(tmp_path / "base")
    data = write_jsonl(tmp_path / "tasks.jsonl", _tasks(8))

    def digits(prompt, response):  # a denser reward than exact match for an untrained model
        return sum(ch.isdigit() for ch in response) / max(1, len(response))

    cfg = GRPOConfig(model=base, prompts=data, out=tmp_path / "grpo", group_size=8, rollout_prompts=4, epochs=1,
                     max_new_tokens=4, kl_coef=0.01)
    summary = run(cfg, tiny_cfg(12, 1e-2), reward_fns=[digits], progress=False).summary
    hist = [json.loads(l) for l in (tmp_path / "grpo" / "metrics.jsonl").read_text().splitlines() if "loss" in l]
    first = sum(h["reward_mean"] for h in hist[:3]) / 3
    last = sum(h["reward_mean"] for h in hist[-3:]) / 3
    assert last > first + 0.2, (first, last)
    for key in ("reward_std", "zero_var_frac", "kl_ref", "response_len", "clip_frac", "stop_rate"):
        assert key in hist[-1]
    assert exact_match_reward(type("P", (), {"answer": "7"})(), "7.") == 1.0
    load_run(tmp_path / "grpo")


def test_grpo_dynamic_sampling_trains_only_mixed_groups(tmp_path):
    """Prompts answered "same" always score 0 (zero-variance groups); with dynamic sampling the rollout holds
    only the other prompts' groups, refilled from further draws, each with rewards that differ."""
    from llmlab.chat.pref_data import read_prompts
    from llmlab.train.grpo import GRPOSource
    from llmlab.train.rl_common import frozen_copy
    from llmlab.train.rollout import encode_prompts

    model, tok = load_run(make_run(tmp_path / "base"))
    rows = [{"prompt": f"What is {i} plus 0?", "answer": "same" if i % 2 else "mixed"} for i in range(16)]
    prompts, _ = encode_prompts(read_prompts(write_jsonl(tmp_path / "t.jsonl", rows)), tok, 64)

    def reward(prompt, response):  # an untrained model's answers differ in length within a group
        return 0.0 if prompt.answer == "same" else float(len(response) % 2)

    for dynamic in (False, True):
        src = GRPOSource(model, frozen_copy(model), tok, prompts, [reward], group_size=8, rollout_prompts=4,
                         epochs=1, minibatch=32, max_new_tokens=6, temperature=1.0, dynamic_sampling=dynamic,
                         max_draws=4, seed=0)
        batch, stats = src.make_rollout(src._next_prompts())
        adv = batch["adv"].view(-1, 8)
        mixed = (adv.abs().sum(1) > 0).tolist()
        trained = [tok.decode(batch["input_ids"][r * 8].tolist()) for r in range(adv.shape[0])]
        if not dynamic:
            assert stats["groups_sampled"] == stats["groups_trained"] == 4
            assert not all(mixed)  # some of the 4 prompts are "same" prompts: zero advantage
        else:
            assert stats["groups_sampled"] > 4 and stats["groups_trained"] == adv.shape[0] >= 1
            assert all(mixed), trained
            assert 0 < stats["zero_var_frac"] < 1  # measured over every group sampled, dropped ones included
            nums = [int(t.split("What is ")[1].split(" plus")[0]) for t in trained]
            assert all(n % 2 == 0 for n in nums), nums  # only "mixed" prompts were kept


def test_grpo_one_update_per_rollout_uses_its_own_logprobs_as_old(tmp_path):
    """With one optimizer step per rollout the sampling weights are the step's weights: the rollout skips the
    old-log-prob forward, and the loss (ratio 1, detached) and its gradient equal those with the explicit
    old log-probs. With two minibatches per rollout the old log-probs are computed as before."""
    from llmlab.chat.pref_data import read_prompts
    from llmlab.train.grpo import GRPOSource, make_grpo_loss, sequence_kl
    from llmlab.train.rl_common import frozen_copy
    from llmlab.train.rollout import encode_prompts

    model, tok = load_run(make_run(tmp_path / "base"))
    ref = frozen_copy(model)
    with torch.no_grad():  # a policy that differs from its reference, so the KL statistic is not 0
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    rows = [{"prompt": f"What is {i} plus 0?", "answer": str(i)} for i in range(8)]
    prompts, _ = encode_prompts(read_prompts(write_jsonl(tmp_path / "t.jsonl", rows)), tok, 64)

    def reward(prompt, response):
        return float(len(response) % 2)

    def source(minibatch):
        return GRPOSource(model, ref, tok, prompts, [reward], group_size=8, rollout_prompts=4, epochs=1,
                          minibatch=minibatch, max_new_tokens=6, temperature=1.0, dynamic_sampling=False, seed=0)

    assert "old_logp" in source(16).make_rollout(prompts[:4])[0]
    src = source(32)
    assert src.one_update
    batch, stats = src.make_rollout(prompts[:4])
    assert "old_logp" not in batch and "kl_ref_seq" not in stats
    loss_fn = make_grpo_loss(clip=0.2, kl_coef=0.05)
    with torch.no_grad():
        old = response_token_logprobs(model, batch["input_ids"])
    results = []
    for b in (batch, {**batch, "old_logp": old}):
        model.zero_grad()
        loss, st = loss_fn(model, b)
        loss.backward()
        results.append((loss.item(), [p.grad.clone() for p in model.parameters()], st))
    (l1, g1, st1), (l2, g2, _) = results
    assert l1 == pytest.approx(l2, abs=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g1, g2))
    m = batch["mask"][:, :-1]
    expected_kl = sequence_kl(old, batch["ref_logp"], m).mean()
    assert float(st1["kl_ref_seq"]) == pytest.approx(float(expected_kl), rel=1e-4) and float(expected_kl) > 0


@pytest.mark.slow
def _bandit_rm(tmp_path):
    """A reward model whose score is a fixed random function of the answer's last token, saved to tmp/rm."""
    from llmlab.model.heads import ScalarHeadModel
    from llmlab.runs import save_reward_model

    backbone, tok = load_run(make_run(tmp_path / "rm_base", seed=1))
    rm = ScalarHeadModel(backbone)
    with torch.no_grad():
        # Blocks that write nothing: the score is a fixed random function of the last token only, which the
        # policy can learn to choose.
        for name, p in rm.backbone.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                p.zero_()
        rm.head.weight.mul_(30.0)  # scores spread over a few units
    save_reward_model(tmp_path / "rm", rm, tok)
    return tmp_path / "rm"


def test_ppo_raises_reward_model_score(tmp_path):
    """PPO against a fixed reward model raises that model's score (a bandit over the answer's one token)."""
    from llmlab.train.ppo import PPOConfig, run

    base = make_run(tmp_path / "base")
    _bandit_rm(tmp_path)
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"What is {i} plus {i}?"} for i in range(32)])
    run(PPOConfig(model=base, reward_model=tmp_path / "rm", prompts=prompts, out=tmp_path / "ppo", rollout_prompts=32,
                  epochs=2, minibatch=16, max_new_tokens=1, kl_coef=0.01), tiny_cfg(24, 1e-2), progress=False)
    hist = [json.loads(l) for l in (tmp_path / "ppo" / "metrics.jsonl").read_text().splitlines() if "loss" in l]
    first = hist[0]["reward_mean"]  # steps 1-4 share the first rollout, 21-24 the last
    last = hist[-1]["reward_mean"]
    assert last > first + 1.0, (first, last)
    for key in ("reward_std", "kl_ref_seq", "response_len", "clip_frac", "value_clip_frac", "vf_loss", "stop_rate"):
        assert key in hist[-1]
    load_run(tmp_path / "ppo")  # the policy alone, as an ordinary run


def test_adaptive_kl_follows_the_proportional_rule():
    """coef *= 1 + clip(kl / target - 1, +-0.2) * n / horizon, by hand."""
    from llmlab.errors import LlmlabError
    from llmlab.train.ppo import AdaptiveKL

    c = AdaptiveKL(target=2.0, horizon=100)
    assert c.next_coef(0.1, 3.0, 32) == pytest.approx(0.1 * (1 + 0.2 * 0.32))  # 50% over the target: clipped to 20%
    assert c.next_coef(0.1, 1.9, 32) == pytest.approx(0.1 * (1 - 0.05 * 0.32))
    assert c.next_coef(0.1, 0.0, 50) == pytest.approx(0.1 * 0.9)  # far under: clipped to -20%
    assert c.next_coef(0.1, 2.0, 32) == pytest.approx(0.1)  # on target: unchanged
    for bad in ((-1.0, 100), (2.0, 0)):
        with pytest.raises(LlmlabError, match="adaptive KL needs a positive target and horizon"):
            AdaptiveKL(*bad)


def test_ppo_kl_target_steers_the_coefficient_each_rollout(tmp_path):
    """With kl_target, each rollout's KL coefficient is the controller applied to the previous rollout's KL,
    logged as kl_coef; a target far above the KL the run reaches drives the coefficient down."""
    from llmlab.train.ppo import AdaptiveKL, PPOConfig, run

    base = make_run(tmp_path / "base")
    _bandit_rm(tmp_path)
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"What is {i} plus {i}?"} for i in range(16)])
    cfg = PPOConfig(model=base, reward_model=tmp_path / "rm", prompts=prompts, out=tmp_path / "ppo",
                    rollout_prompts=16, epochs=1, minibatch=8, max_new_tokens=2, kl_coef=0.2, kl_target=50.0,
                    kl_horizon=40)
    summary = run(cfg, tiny_cfg(8, 1e-2), progress=False).summary
    hist = [json.loads(l) for l in (tmp_path / "ppo" / "metrics.jsonl").read_text().splitlines() if "loss" in l]
    rollouts = hist[::2]  # two optimizer steps per rollout of 16 answers
    assert len(rollouts) == 4
    control, coef = AdaptiveKL(50.0, 40), 0.2
    for r in rollouts:
        assert r["kl_coef"] == pytest.approx(coef, rel=1e-5)
        coef = control.next_coef(coef, r["kl_ref_seq"], 16)
    assert rollouts[-1]["kl_coef"] == pytest.approx(0.2 * 0.92 ** 3, rel=1e-5)  # every rollout 20% under
    assert summary["last_rollout_kl_coef"] == pytest.approx(rollouts[-1]["kl_coef"], rel=1e-5)
    assert json.loads((tmp_path / "ppo" / "config.json").read_text())["kl_target"] == 50.0

    # A resumed run continues from the coefficient it had reached, not the starting one.
    from llmlab.errors import LlmlabError
    from llmlab.train.ppo import PPOSource

    def source(kl_coef=0.2):
        return PPOSource(None, None, None, None, [([1, 2], None)], rollout_prompts=1, epochs=1, minibatch=1,
                         max_new_tokens=2, temperature=1.0, kl_coef=kl_coef, kl_estimator="k1", gamma=1.0, lam=1.0,
                         unfinished_penalty=0.0, kl_target=50.0, kl_horizon=40)

    first, resumed = source(), source()
    first.kl_coef = 0.05
    resumed.load_state_dict(first.state_dict())
    assert resumed.kl_coef == 0.05
    with pytest.raises(LlmlabError, match="a KL target needs a positive KL coefficient"):
        source(kl_coef=0.0)


def test_win_rate_of_a_model_against_itself_is_half_with_zero_kl(tmp_path, capsys):
    from llmlab.cli import main
    from llmlab.model.heads import ScalarHeadModel
    from llmlab.runs import save_reward_model

    base = make_run(tmp_path / "base")
    backbone, tok = load_run(make_run(tmp_path / "rm_base", seed=1))
    save_reward_model(tmp_path / "rm", ScalarHeadModel(backbone), tok)
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"What is {i} plus {i}?", "answer": str(2 * i)}
                                                       for i in range(6)])
    assert main(["eval", "winrate", "--model", str(base), "--baseline", str(base), "--judge", str(tmp_path / "rm"),
                 "--prompts", str(prompts), "--max-new-tokens", "5"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["win_rate"] == 0.5 and res["tie_rate"] == 1.0 and res["n"] == 6
    assert res["kl_to_baseline"] == 0.0
    assert main(["eval", "exact", "--model", str(base), "--prompts", str(prompts), "--max-new-tokens", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["exact_match"] == 0.0  # an untrained model


def test_cli_bad_data_is_a_one_line_error(tmp_path, capsys):
    from llmlab.cli import main

    base = make_run(tmp_path / "base")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "chosen": "a"}\n')
    assert main(["dpo", "--model", str(base), "--data", str(bad), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmlab: error: ") and f"{bad}:1: missing field 'rejected'" in err and "Traceback" not in err


def test_dpo_reference_cache_is_computed_once_per_pair(tmp_path):
    from llmlab.chat.pref_data import PairBatches, encode_pairs, read_pairs
    from llmlab.train.dpo import RefCachedPairs, reference_logprobs

    model, tok = load_run(make_run(tmp_path / "base"))
    enc, _ = encode_pairs(read_pairs(write_jsonl(tmp_path / "p.jsonl", toy_pairs(6))), tok, 64)
    src = RefCachedPairs(PairBatches(enc, 4, tok.pad_id, seed=0), model, tok.pad_id)
    calls = []
    real_forward = model.forward
    model.forward = lambda *a, **k: calls.append(1) or real_forward(*a, **k)
    b1 = src.next_batch()
    b2 = src.next_batch()  # epoch 2 begins: 4 of 6 pairs already cached
    model.forward = real_forward
    want = reference_logprobs(model, enc, tok.pad_id)
    torch.testing.assert_close(b1["ref"], want[b1["index"]])
    torch.testing.assert_close(b2["ref"], want[b2["index"]])
    # One reference computation per batch that had uncached pairs (two model passes each: the pairs' shared
    # prompts, then their answers), none for cached ones beyond that.
    assert len(calls) == 4
    state = src.state_dict()
    fresh = RefCachedPairs(PairBatches(enc, 4, tok.pad_id, seed=0), model, tok.pad_id)
    fresh.load_state_dict(state)
    assert not torch.isnan(fresh.cache).any()


def test_ranked_pairs_pick_best_and_worst_finished_answers(tmp_path, monkeypatch):
    """On-policy pairs: of each prompt's sampled answers, the reward model's best is chosen and its worst
    rejected; answers that did not end with <|end|> are left out, and a prompt with < 2 distinct answers too."""
    import llmlab.train.rollout as rollout
    from llmlab.train.ranked_pairs import ranked_pairs
    from llmlab.train.rm import RMConfig
    from llmlab.train.rm import run as rm_run
    from llmlab.train.rollout import Completion

    base = make_run(tmp_path / "base")
    rm_run(RMConfig(model=base, data=write_jsonl(tmp_path / "pairs.jsonl", toy_pairs(16)), out=tmp_path / "rm"),
           tiny_cfg(25, 3e-3), progress=False)
    _, tok = load_run(base)
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "What is 3 plus 3?"}, {"prompt": "What is 4 plus 4?"}])

    def done(text):
        return Completion(tok.encode(text) + [tok.end_id], text, True)

    def fake_samples(policy, tok_, prompt_ids, *, n, **kw):
        assert n == 3 and len(prompt_ids) == 2
        cut = Completion(tok.encode("8. Bad answer. Bad"), "8. Bad answer. Bad", False)  # hit the length limit
        return [[done("6. Bad answer."), done("6. Good answer."), done("6. Bad answer.")],
                [done("8. Good answer."), cut, done("8. Good answer.")]]

    monkeypatch.setattr(rollout, "sample_completions", fake_samples)
    rows = ranked_pairs(pairs_cfg(tmp_path, prompts, samples=3, min_margin=0.0))
    assert rows == [{"prompt": [{"role": "user", "content": "What is 3 plus 3?"}], "chosen": "6. Good answer.",
                     "rejected": "6. Bad answer.", "kind": "unknown", "rejected_is": "rm_ranked",
                     "margin": rows[0]["margin"]}]
    assert rows[0]["margin"] > 0
    assert ranked_pairs(pairs_cfg(tmp_path, prompts, samples=3, min_margin=1e6)) == []


def test_ranked_pairs_check_answers_puts_a_right_answer_above_any_wrong_one(tmp_path, monkeypatch):
    """check_answers: on a checkable prompt the right answer is chosen whatever the judge's scores and without
    a margin, against the worst-scored wrong answer; free-text kinds and prompts whose answers are all right make
    no such pair."""
    import llmlab.train.rollout as rollout
    from llmlab.chat.template import render_prompt
    from llmlab.model.heads import score_sequences
    from llmlab.runs import load_reward_model
    from llmlab.train.ranked_pairs import ranked_pairs
    from llmlab.train.rm import RMConfig
    from llmlab.train.rm import run as rm_run
    from llmlab.train.rollout import Completion

    base = make_run(tmp_path / "base")
    rm_run(RMConfig(model=base, data=write_jsonl(tmp_path / "pairs.jsonl", toy_pairs(16)), out=tmp_path / "rm"),
           tiny_cfg(25, 3e-3), progress=False)
    _, tok = load_run(base)
    q = "What is 3 plus 3?"
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [
        {"prompt": q, "answer": "6", "kind": "arithmetic"},
        {"prompt": q, "answer": "6", "kind": "identity"},  # free text: exact match does not judge it
        {"prompt": q, "answer": "7", "kind": "arithmetic"},  # both "7" and "7." are right
    ])
    answers = [["6", "7", "5"], ["6", "7", "5"], ["7", "7."]]

    def done(text):
        return Completion(tok.encode(text) + [tok.end_id], text, True)

    rm, _ = load_reward_model(tmp_path / "rm")
    scores = score_sequences(rm, [render_prompt([{"role": "user", "content": q}], tok) + done(t).ids
                                  for t in answers[0]], tok.pad_id).tolist()
    worst_wrong = answers[0][1] if scores[1] < scores[2] else answers[0][2]

    def fake_samples(policy, tok_, prompt_ids, *, n, **kw):
        return [[done(t) for t in group] for group in answers]

    monkeypatch.setattr(rollout, "sample_completions", fake_samples)
    rows = ranked_pairs(pairs_cfg(tmp_path, prompts, samples=3, min_margin=1e6, check_answers=True))
    assert [(r["chosen"], r["rejected"], r["rejected_is"]) for r in rows] == [("6", worst_wrong, "wrong")]
    unchecked = ranked_pairs(pairs_cfg(tmp_path, prompts, samples=3, min_margin=1e6))
    assert unchecked == []  # unchecked: margin rules


def test_ppo_rewards_a_log_likelihood_rm_for_the_answer_not_the_prompt(tmp_path, monkeypatch):
    """PPO's reward from a ``--logprob-coef`` reward model is head + coef * log p(answer | prompt): two prompts
    whose own log-likelihoods differ by many nats, answered alike, get the rewards of their answers (log
    p(prompt) would be a per-prompt offset in the returns). Paid at the end ("answer"), the return at every
    answer token is that reward; paid token by token ("token"), the return from token t is the head's score
    plus coef * the log-probs of tokens t.. (the same total from the first token). The critic is the RM's
    backbone and head without the log-prob term, and its values are what the rollout stores. With the greedy
    baseline the reward is measured against the score of the policy's greedy answer to the same prompt."""
    import llmlab.train.ppo as ppo
    from llmlab.chat.pref_data import read_prompts
    from llmlab.errors import LlmlabError
    from llmlab.model.heads import ScalarHeadModel, value_model_from
    from llmlab.model.sequences import gather_last, pad_sequences, sequence_logprobs
    from llmlab.train.rl_common import frozen_copy
    from llmlab.train.rollout import Completion, encode_prompts

    policy, tok = load_run(make_run(tmp_path / "base"))
    backbone, _ = load_run(make_run(tmp_path / "rm_base", seed=1))
    torch.manual_seed(0)
    rm = ScalarHeadModel(backbone, logprob_coef=0.5).eval()
    with torch.no_grad():
        rm.head.weight.normal_()
    rows = [{"prompt": "What is 3 plus 4?"}, {"prompt": "zq xv Hamlet? 12 qz vx jj plus kq vv xq zz"}]
    prompts, _ = encode_prompts(read_prompts(write_jsonl(tmp_path / "p.jsonl", rows)), tok, 64)
    answer = tok.encode("7. Good answer.") + [tok.end_id]
    monkeypatch.setattr(ppo, "sample_completions",
                        lambda *a, **k: [[Completion(list(answer), "7. Good answer.", True)] for _ in prompts])
    value = value_model_from(rm)
    assert value.logprob_coef == 0.0 and torch.equal(value.head.weight, rm.head.weight)
    assert rm.logprob_coef == 0.5 and value.head.weight is not rm.head.weight  # a copy; the RM is untouched
    assert all(p.requires_grad for p in value.parameters())

    seqs = [p + answer for p, _ in prompts]
    ids, mask, last = pad_sequences(seqs, [len(p) for p, _ in prompts], tok.pad_id)
    _, whole, _ = pad_sequences(seqs, [1, 1], tok.pad_id)
    with torch.no_grad():
        head = gather_last(value(ids), last)  # the critic starts as the head alone
        want_values = value(ids)[:, :-1] * mask[:, :-1]
        answer_lp = sequence_logprobs(rm.backbone, ids, mask)
        prompt_lp = sequence_logprobs(rm.backbone, ids, whole) - answer_lp
        token_lp = response_token_logprobs(rm.backbone, ids)
    assert abs(prompt_lp[0] - prompt_lp[1]) > 5.0
    want = head + 0.5 * answer_lp
    m = mask[:, :-1] > 0

    def rollout(logprob_reward):
        src = ppo.PPOSource(ppo.PolicyAndValue(policy, value), frozen_copy(policy), rm, tok, prompts,
                            rollout_prompts=2, epochs=1, minibatch=2, max_new_tokens=16, temperature=1.0,
                            kl_coef=0.0, kl_estimator="k1", gamma=1.0, lam=1.0, unfinished_penalty=0.0,
                            logprob_reward=logprob_reward)
        return src.make_rollout(prompts)

    for mode in ("answer", "token"):
        batch, stats = rollout(mode)
        assert float(stats["reward_mean"]) == pytest.approx(float(want.mean()), abs=1e-4)
        torch.testing.assert_close(batch["old_values"], want_values, atol=1e-4, rtol=1e-4)
        for b in range(2):  # with no KL penalty and gamma = lambda = 1 the returns are sums of rewards to come
            lp = token_lp[b][m[b]]
            to_come = lp.flip(0).cumsum(0).flip(0) if mode == "token" else lp.sum().expand(len(lp))
            torch.testing.assert_close(batch["returns"][b][m[b]], head[b] + 0.5 * to_come, atol=1e-4, rtol=1e-4)
            assert float(batch["returns"][b][m[b]][0]) == pytest.approx(float(want[b]), abs=1e-4)
    with pytest.raises(LlmlabError, match="logprob_reward must be one of token, answer"):
        rollout("prompt")

    # ReMax baseline: each answer's reward minus that of the policy's greedy answer to the same prompt.
    other = tok.encode("6. Bad answer.") + [tok.end_id]
    monkeypatch.setattr(ppo, "sample_completions", lambda *a, temperature, **k: [
        [Completion(list(answer if temperature > 0 else other), "", True)] for _ in prompts])
    g_ids, g_mask, g_last = pad_sequences([p + other for p, _ in prompts], [len(p) for p, _ in prompts], tok.pad_id)
    with torch.no_grad():
        g_score = gather_last(value(g_ids), g_last) + 0.5 * sequence_logprobs(rm.backbone, g_ids, g_mask)
    src = ppo.PPOSource(ppo.PolicyAndValue(policy, value), frozen_copy(policy), rm, tok, prompts, rollout_prompts=2,
                        epochs=1, minibatch=2, max_new_tokens=16, temperature=1.0, kl_coef=0.0, kl_estimator="k1",
                        gamma=1.0, lam=1.0, unfinished_penalty=0.0, logprob_reward="answer", baseline="greedy")
    batch, stats = src.make_rollout(prompts)
    assert float(stats["reward_mean"]) == pytest.approx(float(want.mean()), abs=1e-4)  # still the RM's score
    assert float(stats["greedy_reward_mean"]) == pytest.approx(float(g_score.mean()), abs=1e-4)
    assert float(stats["beats_greedy"]) == float((want > g_score).float().mean())
    for b in range(2):
        torch.testing.assert_close(batch["returns"][b][m[b]], (want[b] - g_score[b]).expand(int(m[b].sum())),
                                   atol=1e-4, rtol=1e-4)


def test_ppo_check_coef_rewards_right_answers_and_penalises_wrong_ones(tmp_path, monkeypatch):
    """check_coef: on a checkable prompt the answer's return moves by +coef when it is exactly right and -coef
    when wrong; free-text kinds and prompts without an answer are left to the reward model."""
    import llmlab.train.ppo as ppo
    from llmlab.chat.pref_data import read_prompts
    from llmlab.model.heads import ScalarHeadModel, value_model_from
    from llmlab.train.rl_common import frozen_copy
    from llmlab.train.rollout import Completion, encode_prompts

    policy, tok = load_run(make_run(tmp_path / "base"))
    backbone, _ = load_run(make_run(tmp_path / "rm_base", seed=1))
    rm = ScalarHeadModel(backbone).eval()
    rows = [{"prompt": "What is 3 plus 4?", "answer": "7", "kind": "arithmetic"},
            {"prompt": "What is 3 plus 5?", "answer": "8", "kind": "arithmetic"},
            {"prompt": "Who are you?", "answer": "7", "kind": "identity"},
            {"prompt": "What is 3 plus 4?"}]
    prompts, _ = encode_prompts(read_prompts(write_jsonl(tmp_path / "p.jsonl", rows)), tok, 64)
    assert [ppo.check_sign(r, "7.") for _, r in prompts] == [1.0, -1.0, 0.0, 0.0]
    answer = tok.encode("7.") + [tok.end_id]
    monkeypatch.setattr(ppo, "sample_completions",
                        lambda *a, **k: [[Completion(list(answer), "7.", True)] for _ in prompts])
    value = value_model_from(rm)

    def returns(check_coef):
        src = ppo.PPOSource(ppo.PolicyAndValue(policy, value), frozen_copy(policy), rm, tok, prompts,
                            rollout_prompts=4, epochs=1, minibatch=4, max_new_tokens=16, temperature=1.0,
                            kl_coef=0.0, kl_estimator="k1", gamma=1.0, lam=1.0, unfinished_penalty=0.0,
                            check_coef=check_coef)
        batch, stats = src.make_rollout(prompts)
        return batch["returns"] * batch["mask"][:, :-1], batch["mask"][:, :-1], stats

    plain, m, _ = returns(0.0)
    checked, _, stats = returns(2.0)
    torch.testing.assert_close(checked - plain, torch.tensor([[2.0], [-2.0], [0.0], [0.0]]) * m)
    assert float(stats["checked_right"]) == 0.5


def test_ranked_pairs_against_greedy_reject_the_greedy_answer_when_a_sample_beats_it(tmp_path, monkeypatch):
    """against="greedy": the greedy answer is a candidate; when a sample scores above it, the pair rejects it
    (not the worst sample); when it is the best, the pair is greedy vs worst."""
    import llmlab.train.rollout as rollout
    from llmlab.chat.template import render_prompt
    from llmlab.model.heads import score_sequences
    from llmlab.runs import load_reward_model
    from llmlab.train.ranked_pairs import ranked_pairs
    from llmlab.train.rm import RMConfig
    from llmlab.train.rm import run as rm_run
    from llmlab.train.rollout import Completion

    base = make_run(tmp_path / "base")
    rm_run(RMConfig(model=base, data=write_jsonl(tmp_path / "pairs.jsonl", toy_pairs(16)), out=tmp_path / "rm"),
           tiny_cfg(25, 3e-3), progress=False)
    _, tok = load_run(base)
    questions = ["What is 3 plus 3?", "What is 4 plus 4?"]
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": q} for q in questions])

    def done(text):
        return Completion(tok.encode(text) + [tok.end_id], text, True)

    rm, _ = load_reward_model(tmp_path / "rm")
    ranked = []  # each prompt's three answers, worst to best by the reward model
    for q, n in zip(questions, (6, 8)):
        group = [f"{n}. Good answer.", f"{n}. Bad answer.", f"{n}. Bad answer. Good answer."]
        scores = score_sequences(rm, [render_prompt([{"role": "user", "content": q}], tok) + done(t).ids
                                      for t in group], tok.pad_id)
        assert len(set(scores.tolist())) == 3
        ranked.append([group[i] for i in scores.argsort().tolist()])
    greedy = [ranked[0][1], ranked[1][2]]  # prompt 0: the middle answer; prompt 1: the best one

    def fake_samples(policy, tok_, prompt_ids, *, n, temperature, **kw):
        if temperature == 0.0:
            return [[done(t)] for t in greedy]
        return [[done(t) for t in group] for group in ranked]

    monkeypatch.setattr(rollout, "sample_completions", fake_samples)
    rows = ranked_pairs(pairs_cfg(tmp_path, prompts, samples=3, min_margin=0.0, against="greedy"))
    assert [(r["chosen"], r["rejected"]) for r in rows] == [(ranked[0][2], ranked[0][1]), (ranked[1][2], ranked[1][0])]
    plain = ranked_pairs(pairs_cfg(tmp_path, prompts, samples=3, min_margin=0.0))
    assert [(r["chosen"], r["rejected"]) for r in plain] == [(ranked[0][2], ranked[0][0]), (ranked[1][2], ranked[1][0])]
    with pytest.raises(ValueError, match="against must be one of worst, greedy"):
        ranked_pairs(pairs_cfg(tmp_path, prompts, samples=3, against="best"))
