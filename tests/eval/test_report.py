"""The report's choice of the model to chat with.

    .venv/bin/pytest tests/eval/test_report.py -q
"""

from pathlib import Path

from llmlab.eval.report import _final_model


def _report(**winrates):
    """winrates: algo -> (win rate, exact match of the tuned model, exact match of SFT)."""
    return {"stages": {f"{a}_winrate": {"win_rate": w, "exact_match_model": em, "exact_match_baseline": base}
                       for a, (w, em, base) in winrates.items()}}


def test_the_most_preferred_model_that_is_not_less_correct_is_chosen():
    run = Path("r")
    # PPO wins most but answers checkable prompts far less often correctly: DPO is chosen.
    report = _report(dpo=(0.718, 0.245, 0.245), grpo=(0.56, 0.25, 0.245), ppo=(0.865, 0.13, 0.245))
    assert _final_model(run, report) == str(run / "dpo")
    # Within the tolerance (one standard error or so) a small loss is accepted.
    assert _final_model(run, _report(ppo=(0.7, 0.23, 0.245), dpo=(0.6, 0.3, 0.245))) == str(run / "ppo")
    # Nobody preferred to SFT, or nothing tuned at all: SFT.
    assert _final_model(run, _report(dpo=(0.5, 0.3, 0.245), grpo=(0.45, 0.3, 0.245))) == str(run / "sft")
    assert _final_model(run, {"stages": {}}) == str(run / "sft")
    # No exact-match figures (older runs): the win rate alone decides.
    assert _final_model(run, _report(dpo=(0.6, None, None))) == str(run / "dpo")


def test_suite_results_appear_in_the_report(tmp_path):
    import json

    from llmlab.eval.report import write_report

    def suite(score_pairs, score_sum, agg):
        return {"format": "llmlab-eval-suite", "version": 1, "prompt_style": "text", "suite_version": 1,
                "tasks": {"minimal_pairs": {"score": score_pairs, "ci": [score_pairs - 0.05, score_pairs + 0.05],
                                            "metric": "acc", "chance": 0.5, "n": 500, "errors": 0},
                          "arithmetic": {"score": score_sum, "ci": [0.0, score_sum + 0.02], "metric": "exact_match",
                                         "chance": 0.0, "n": 200, "errors": 2},
                          "bpb": {"score": 2.3, "ci": [2.2, 2.4], "metric": "bpb", "lower_is_better": True, "n": 64,
                                  "errors": 0}},
                "aggregate": {"score": agg, "ci": [agg - 0.03, agg + 0.03], "tasks": ["arithmetic", "minimal_pairs"]}}

    for stage, s in {"base": suite(0.8, 0.0, 0.3), "sft": suite(0.75, 0.4, 0.45)}.items():
        (tmp_path / stage / "eval").mkdir(parents=True)
        (tmp_path / stage / "eval" / "suite.json").write_text(json.dumps(s))
    report = write_report(tmp_path)
    assert report["suite_core_base"] == 0.3 and report["suite_core_sft"] == 0.45
    assert set(report["stages"]["suite"]) == {"base", "sft"}
    md = (tmp_path / "report.md").read_text()
    assert "## Evaluation suite" in md and "| task | metric | chance | base | sft |" in md
    assert "| arithmetic | exact_match | 0.00 | 0.000 [0.000, 0.020] | 0.400 [0.000, 0.420] |" in md
    assert "| bpb | bpb (lower is better) | - |" in md and "Items that could not be scored: base 2, sft 2." in md
