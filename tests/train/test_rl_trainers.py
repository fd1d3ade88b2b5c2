"""Each preference/RL trainer runs a few steps on a tiny model and moves its objective the right way."""

import json
import math

import pytest
import torch

from llmlab.model.checkpoint import load_run
from llmlab.train.loop import TrainConfig
from llmlab.train.rl_common import hidden_states, load_reward_model, response_token_logprobs
from rl_fixtures import make_run, toy_pairs, write_jsonl


def tiny_cfg(steps, lr, batch_size=8):
    return TrainConfig(lr=lr, max_steps=steps, batch_size=batch_size, warmup_steps=1, schedule="constant",
                       seq_len=64, device="cpu", weight_decay=0.0)


def test_hidden_states_feed_lm_head(tmp_path):
    model, _ = load_run(make_run(tmp_path / "base"))
    idx = torch.randint(0, model.config.vocab_size, (2, 10))
    torch.testing.assert_close(model.lm_head(hidden_states(model, idx)), model(idx))


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
    from llmlab.train.rm import train_reward_model

    base = make_run(tmp_path / "base")
    data = write_jsonl(tmp_path / "pairs.jsonl", toy_pairs(16))
    val = write_jsonl(tmp_path / "val.jsonl", toy_pairs(24)[16:])
    summary = train_reward_model(base, data, tmp_path / "rm", tiny_cfg(25, 3e-3), val_path=val, progress=False)
    assert summary["val_pair_accuracy"] == 1.0
    assert summary["val_loss"] < math.log(2)
    rm, tok = load_reward_model(tmp_path / "rm")
    hist = [json.loads(l) for l in (tmp_path / "rm" / "metrics.jsonl").read_text().splitlines()]
    assert hist[0]["loss"] == pytest.approx(math.log(2), abs=0.05)  # a near-zero head starts at log 2
    for name in ("model.safetensors", "reward_head.safetensors", "config.json", "summary.json"):
        assert (tmp_path / "rm" / name).is_file()


def test_dpo_raises_margin_and_starts_at_log2(tmp_path):
    from llmlab.train.dpo import train_dpo

    base = make_run(tmp_path / "base")
    data = write_jsonl(tmp_path / "pairs.jsonl", toy_pairs(16))
    val = write_jsonl(tmp_path / "val.jsonl", toy_pairs(24)[16:])
    summary = train_dpo(base, data, tmp_path / "dpo", tiny_cfg(15, 3e-3), beta=0.1, val_path=val, progress=False)
    hist = [json.loads(l) for l in (tmp_path / "dpo" / "metrics.jsonl").read_text().splitlines()]
    assert hist[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)  # policy == reference at step 1
    assert summary["val_loss"] < math.log(2) and summary["val_pref_accuracy"] == 1.0
    load_run(tmp_path / "dpo")  # an ordinary model run: `llmlab chat --model` can load it
