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
