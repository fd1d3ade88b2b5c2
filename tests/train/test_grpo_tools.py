"""GRPO with tools: rollouts go through the tool loop (the model emits the calls), the tool results in an answer
are not policy targets, the reward reads the answer after the last result, and the stage runs end to end.

    .venv/bin/pytest tests/train/test_grpo_tools.py -q
"""

import json

import pytest
import torch

from _scripted_model import ScriptedModel, native_script
from llmlab.chat.pref_data import read_prompts
from llmlab.infer.completions import pack
from llmlab.tasks.rewards import exact_match_reward
from llmlab.tokenizer import Tokenizer
from llmlab.tools.toolset import make_tool_loop
from llmlab.train.grpo import GRPOSource
from llmlab.train.rl_common import frozen_copy
from llmlab.train.rollout import encode_prompts
from llmlab.train.loop import TrainConfig
from rl_fixtures import make_run, write_jsonl


def test_pack_leaves_tool_written_tokens_out_of_the_targets():
    ids, mask, last = pack([[1, 2], [3]], [[4, 5, 6, 7], [8]], 0, [[1, 0, 0, 1], None])
    assert ids.tolist() == [[1, 2, 4, 5, 6, 7], [3, 8, 0, 0, 0, 0]]
    # mask[t] scores ids[t + 1]: the answer tokens 4 and 7 are targets, the tool's 5 and 6 are not
    assert mask.tolist() == [[0, 1, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0]]


def test_rollout_through_the_tool_loop_masks_results(tmp_path):
    tok = Tokenizer([])
    torch.manual_seed(0)
    model = ScriptedModel(tok.vocab_size, native_script(tok), max_seq_len=256)
    rows = [{"prompt": q, "answer": a} for q, a in (("12*34", "= 408"), ("7+8", "= 15"), ("9*9", "= 80"))]
    prompts, _ = encode_prompts(read_prompts(write_jsonl(tmp_path / "t.jsonl", rows)), tok, 256)
    src = GRPOSource(model, frozen_copy(model), tok, prompts, [exact_match_reward], group_size=2, rollout_prompts=3,
                     epochs=1, minibatch=6, max_new_tokens=100, temperature=1.0, dynamic_sampling=False,
                     tool_loop=make_tool_loop(tok, ["calc"]))
    batch, stats = src.make_rollout(src._next_prompts())
    assert stats["reward_mean"] == 4 / 6  # "9*9" is 81, not the answer written in the task
    for b in range(6):
        ids, mask = batch["input_ids"][b].tolist(), batch["mask"][b].tolist()
        targets = tok.decode([ids[t + 1] for t in range(len(ids) - 1) if mask[t]])
        text = tok.decode(ids)
        assert "<|tool_result|>" in text and "<|tool_result|>" not in targets
        assert targets.startswith("Let me use the calculator.<|tool_call|>calc ") and targets.endswith("<|end|>")
        result = text.split("<|tool_result|>")[1].split("<|/tool_result|>")[0]
        assert targets.endswith(f"<|/tool_call|> = {result}<|end|>")


def test_grpo_stage_with_tools_runs(tmp_path):
    from llmlab.train.grpo import GRPOConfig, run

    base = make_run(tmp_path / "base", max_seq_len=64)
    data = write_jsonl(tmp_path / "tasks.jsonl", [{"prompt": f"What is {i} times 3?", "answer": str(3 * i),
                                                   "kind": "calc"} for i in range(8)])
    cfg = GRPOConfig(model=str(base), prompts=str(data), val=str(data), out=str(tmp_path / "grpo"), group_size=2,
                     rollout_prompts=2, max_new_tokens=8, dynamic_sampling=False, tools="calc")
    tcfg = TrainConfig(lr=1e-3, max_steps=2, batch_size=8, warmup_steps=1, schedule="constant", seq_len=64,
                       device="cpu")
    s = run(cfg, tcfg, progress=False).summary
    assert "exact_match_before" in s and "exact_match_after" in s
    assert json.loads((tmp_path / "grpo" / "config.json").read_text())["grpo"]["tools"] == "calc"


def test_grpo_config_checks_its_tools():
    from llmlab.errors import ConfigError
    from llmlab.train.grpo import GRPOConfig

    with pytest.raises(ConfigError, match=r"unknown tool\(s\) \['abacus'\]"):
        GRPOConfig(model="m", prompts="p", out="o", tools="calc,abacus")
    with pytest.raises(ConfigError, match="--tools search needs --index"):
        GRPOConfig(model="m", prompts="p", out="o", tools="search")
    cfg = GRPOConfig(model="m", prompts="p", out="o", tools="calc, search", index="i")
    assert cfg.tool_names() == ["calc", "search"]
