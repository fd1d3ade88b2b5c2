"""``reason train``'s recipe end to end at toy size: data (never a test game, in SFT data or GRPO prompts),
tokenizer and fresh model, SFT, GRPO with the checker as reward, the final run folder, and reuse of finished
stages; plus the reward itself.

    .venv/bin/pytest tests/reason/test_train.py -q
"""

import json
import re

import pytest

from llmlab.reason.train import Game24TrainConfig, checker_reward, train_game24
from llmlab.tasks import game24 as g
from llmlab.tasks.game24_text import Game24DataConfig
from llmlab.chat.pref_data import RLPrompt


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def test_checker_reward():
    p = RLPrompt([{"role": "user", "content": "Make 24 with 4 9 10 13. Think step by step."}], None,
                 {"puzzle": "4 9 10 13"})
    assert checker_reward(p, "<|think|>10 - 4 = 6 (left: 6 9 13)<|/think|>(10 - 4) * (13 - 9) = 24") == 1.0
    assert checker_reward(p, "<|think|>...<|/think|>(10 - 4) * (13 - 9) + 0 = 24") == 0.0
    assert checker_reward(p, "<|think|>ran out of tokens") == 0.0
    assert checker_reward(p, "(10 - 4) * (13 - 9) = 24") == 1.0  # an answer without a thought counts too


@pytest.mark.slow
def test_train_recipe_at_toy_size(tmp_path, capsys):
    data = Game24DataConfig(n_io=20, n_cot=20, n_propose=(10, 10, 10), n_value=(20, 20, 5), n_answer=20,
                            n_judge=10, state_sources=30)
    cfg = Game24TrainConfig(out=str(tmp_path / "run"), n_layer=1, d_model=32, n_head=2, vocab_size=300,
                            sft_steps=3, sft_batch=4, grpo_steps=2, grpo_group=2, grpo_prompts=2,
                            grpo_max_new_tokens=24, eval_puzzles=2, threads=1, data=data)
    summary = train_game24(cfg, progress=False)
    run = tmp_path / "run"
    assert summary["final_stage"] == "grpo" and summary["sft"]["steps"] >= 1 and summary["grpo"]["steps"] >= 1
    assert 0.0 <= summary["val_cot_grpo"] <= 1.0
    assert json.loads((run / "summary.json").read_text())["final_stage"] == "grpo"
    from llmlab.runs import load_run

    model, tok = load_run(run)
    assert model.config.n_layer == 1 and tok.vocab_size == 300
    # Nothing the model trained on shows a test game: SFT conversations and GRPO prompts alike.
    shown = []
    for line in (run / "data" / "train.jsonl").read_text().splitlines() + \
            (run / "data" / "grpo_prompts.jsonl").read_text().splitlines():
        for m in json.loads(line).get("messages", json.loads(line).get("prompt")):
            if m["role"] == "user":
                shown += re.findall(r"(?:for|with) ((?:\d+ ){3}\d+)\b", m["content"])
    assert len(shown) > 50 and not any(g.is_test(g.parse_puzzle(s)) for s in shown)
    # Run again: every stage is reused, nothing retrains.
    before = (run / "sft" / "model.safetensors").stat().st_mtime_ns
    train_game24(cfg, progress=False)
    assert (run / "sft" / "model.safetensors").stat().st_mtime_ns == before
    assert "reusing" in capsys.readouterr().err


def test_checker_reward_for_arith():
    word = "Ann has 23 apples. She buys 3 bags of 12. She gives away 17. How many apples does Ann have now?"
    p = RLPrompt([{"role": "user", "content": word + " Think step by step."}], None, {"puzzle": word, "task": "arith"})
    assert checker_reward(p, "<|think|>3 * 12 = 36\n23 + 36 = 59\n59 - 17 = 42<|/think|>42") == 1.0
    assert checker_reward(p, "<|think|>3 * 12 = 36\n23 + 36 = 59\n59 - 17 = 41<|/think|>41") == 0.0
    assert checker_reward(p, "<|think|>3 * 12 = 36") == 0.0


@pytest.mark.slow
def test_arith_recipe_at_toy_size(tmp_path):
    from llmlab.tasks import arith_word as aw

    cfg = Game24TrainConfig(out=str(tmp_path / "run"), task="arith", n_layer=1, d_model=32, n_head=2,
                            vocab_size=300, sft_steps=2, sft_batch=4, grpo_steps=1, grpo_group=2, grpo_prompts=2,
                            grpo_max_new_tokens=16, eval_puzzles=2, threads=1, split_digits=True,
                            arith=aw.ArithDataConfig(n_cot=60, n_io=10, n_val=5, n_test=7, events=(3, 4),
                                                     order_shares=(0, 0, 0, 1)))
    summary = train_game24(cfg, progress=False)
    run = tmp_path / "run"
    from llmlab.runs import load_run

    _, tok = load_run(run)
    pieces = [tok.decode([i]) for i in tok.encode("175 + 20 = 195")]
    assert [p for p in pieces if any(ch.isdigit() for ch in p)] == list("17520195")  # every digit its own token
    assert summary["final_stage"] == "grpo" and 0.0 <= summary["val_cot_grpo"] <= 1.0
    assert summary["data"]["by_kind"] == {"cot": 60, "io": 10}
    test = (run / "data" / "test.txt").read_text().splitlines()
    assert len(test) == 7 and all(aw.parse_problem(t).split == "test" for t in test)
    # --events reaches every problem (training, GRPO, held out), and the model records it for the benchmark.
    assert all(len(aw.parse_problem(t).events) in (3, 4) for t in test)
    assert json.loads((run / "model_config.json").read_text())["extra"]["arith_events"] == [3, 4]
    # Nothing trained on is held out: SFT conversations and GRPO prompts are all train-split problems.
    held = {aw.parse_problem(t).numbers for t in test + (run / "data" / "val.txt").read_text().splitlines()}
    shown = [json.loads(line)["puzzle"] for line in (run / "data" / "train.jsonl").read_text().splitlines()]
    shown += [json.loads(line)["puzzle"] for line in (run / "data" / "grpo_prompts.jsonl").read_text().splitlines()]
    assert all(aw.parse_problem(t).split == "train" and aw.parse_problem(t).numbers not in held for t in shown)
    assert all(len(aw.parse_problem(t).events) in (3, 4) for t in shown)
