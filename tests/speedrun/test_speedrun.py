"""The main job: the whole pipeline end to end (quick mode, short budgets), its report, and resuming."""

import json

import pytest

from llmlab.cli import main
from llmlab.speedrun import Speedrun, SpeedrunConfig


def test_stage_commands_resume_and_torchrun(tmp_path):
    sr = Speedrun(SpeedrunConfig(out=str(tmp_path / "run"), quick=True, nproc=2))
    stages = {s.name: s for s in sr.stages()}
    assert list(stages) == ["data", "tokenizer", "pretrain", "sft", "prefdata", "rm", "dpo-pairs", "dpo", "grpo",
                            "ppo", "eval", "base-suite", "sft-suite", "tool-data", "grpo-tools", "tools-eval",
                            "dpo-winrate", "grpo-winrate", "ppo-winrate"]
    # GRPO through the tool loop on the calculator tasks the tool-data stage writes; eval tools scores SFT.
    gt = stages["grpo-tools"].argv
    assert gt[gt.index("--tools") + 1] == "calc,search" and gt[gt.index("--index") + 1].endswith("tooldata/index")
    assert gt[gt.index("--prompts") + 1].endswith("tooldata/tools_train.jsonl")
    te = stages["tools-eval"]
    assert te.argv[:2] == ["eval", "tools"] and te.done_file == "eval/tools/tools.json"
    assert stages["ppo"].argv[stages["ppo"].argv.index("--reward-model") + 1].endswith("rm")
    # DPO trains on the SFT model's own answers ranked by the reward model (written by the dpo-pairs stage).
    assert stages["dpo-pairs"].argv[0] == "ranked-pairs" and "--reward-model" in stages["dpo-pairs"].argv
    dpo_data = stages["dpo"].argv[stages["dpo"].argv.index("--data") + 1]
    assert dpo_data == stages["dpo-pairs"].argv[stages["dpo-pairs"].argv.index("--out") + 1]
    cmd = sr.command(stages["pretrain"])
    assert cmd[1:4] == ["-m", "torch.distributed.run", "--standalone"] and "--nproc_per_node=2" in cmd
    assert "torch.distributed.run" not in sr.command(stages["rm"])  # only the stages that shard data
    rm_argv = stages["rm"].argv
    assert rm_argv[rm_argv.index("--head-layers") + 1] == "all"  # the head reads every layer (LOG session 7)
    assert "--resume" not in cmd
    ckpt = tmp_path / "run" / "base" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "last.pt").write_bytes(b"x")
    assert sr.command(stages["pretrain"])[-1] == "--resume"
    dpo_only = Speedrun(SpeedrunConfig(out=str(tmp_path / "r2"), preference="dpo"))
    assert "grpo" not in [s.name for s in dpo_only.stages()] and "ppo" not in [s.name for s in dpo_only.stages()]
    both = [s.name for s in Speedrun(SpeedrunConfig(out=str(tmp_path / "r3"), preference="both")).stages()]
    assert "dpo" in both and "grpo" in both and "ppo" not in both


def test_missing_user_data_is_a_one_line_error(tmp_path, capsys):
    assert main(["speedrun", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "run")]) == 2
    assert "data path not found" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_speedrun_end_to_end_report_matches_stage_summaries(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["speedrun", "--quick", "--out", str(out), "--pretrain-seconds", "20", "--sft-seconds", "15"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())

    def summary(rel):
        return json.loads((out / rel).read_text())

    assert report["val_bpb"] == summary("base/summary.json")["val_bpb"]
    assert 0 < report["val_bpb"] < 8
    chat_eval = summary("eval/chat_eval.json")
    for key in ("sft_format_rate", "sft_exact_match", "base_exact_match"):
        assert report[key] == chat_eval[key]
        assert 0.0 <= report[key] <= 1.0
    assert report["rm_pair_accuracy"] == summary("rm/summary.json")["val_pair_accuracy"]
    assert report["dpo_win_rate"] == summary("eval/dpo_winrate.json")["win_rate"]
    assert report["grpo_win_rate"] == summary("eval/grpo_winrate.json")["win_rate"]
    assert report["ppo_win_rate"] == summary("eval/ppo_winrate.json")["win_rate"]
    assert summary("dpo/config.json")["data"].endswith("dpo_pairs/pairs.jsonl")
    assert report["grpo_exact_match"] == summary("grpo/summary.json")["exact_match_after"]
    tools = summary("eval/tools/tools.json")
    assert report["arith_with_calculator"] == tools["arithmetic"]["with_tool"]
    assert report["retrieval_recall_at_5"] == tools["grounded"]["recall_at_5"] >= 0.95  # BM25 alone, no model
    grpo_tools = summary("grpo_tools/summary.json")
    assert report["grpo_tools_arith_after"] == grpo_tools["exact_match_after_by_kind"]["calc"]
    assert report["seconds_total"] > 0
    for m in ("base", "sft"):  # the task suite's results, as `eval suite` wrote them, in the report
        suite = summary(f"{m}/eval/suite.json")
        assert report["stages"]["suite"][m]["aggregate"]["score"] == suite["aggregate"]["score"]
    assert "## Evaluation suite" in (out / "report.md").read_text()
    assert (out / report["chat_model"].split("/")[-1] / "model.safetensors").is_file()
    md = (out / "report.md").read_text()
    assert "bits per byte" in md and "report_training.png" in md
    assert (out / "report_training.png").stat().st_size > 1000

    # A re-run resumes: every stage is skipped, and the report is written again with the same numbers.
    capsys.readouterr()
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.count("already done") == 19
    assert json.loads((out / "report.json").read_text())["val_bpb"] == report["val_bpb"]
