"""The reversal-curse experiment: the facts it makes, its test on a model, and a small run of the whole thing."""

import json

import pytest

from llmlab.cli import main
from llmlab.errors import LlmlabError
from llmlab.inside.reversal import (TOM, ReversalConfig, build_facts, evaluate, forward_fact, make_people,
                                    reverse_fact, run_reversal)


def test_people_are_made_up_and_distinct():
    people = make_people(300, seed=1)
    names = [n for pair in people for n in pair]
    assert len(set(names)) == len(names) and TOM[0] not in names and TOM[1] not in names
    assert all(len(s.split()) == 2 and len(m.split()) == 3 for s, m in people)
    assert make_people(300, seed=1) == people and make_people(300, seed=2) != people


def test_one_direction_pairs_are_never_seen_reversed():
    cfg = ReversalConfig(pairs=20, both_pairs=15)
    one, both, facts = build_facts(cfg)
    assert one[0] == TOM and len(one) == 20 and len(both) == 15 and not set(one) & set(both)
    text = set(facts)
    assert len(facts) == 20 + 2 * 15
    assert all(forward_fact(s, m) in text and reverse_fact(s, m) not in text for s, m in one)
    assert all(forward_fact(s, m) in text and reverse_fact(s, m) in text for s, m in both)
    assert not any(f"{m}'s" in f for _, m in one for f in facts)  # no sentence starts from a one-way mother
    with pytest.raises(LlmlabError, match="pairs >= choices"):
        ReversalConfig(pairs=5, choices=10).validate()


def test_evaluate_reports_both_directions(tmp_path):
    import torch

    from llmlab.model.gpt import GPT, ModelConfig
    from llmlab.tokenizer import Tokenizer

    cfg = ReversalConfig(pairs=12, both_pairs=4, choices=4)
    one, both, facts = build_facts(cfg)
    tok = Tokenizer.train("\n".join(facts * 3), vocab_size=256 + 16 + 40)
    torch.manual_seed(0)
    model = GPT(ModelConfig.preset("tiny", vocab_size=tok.vocab_size))
    r = evaluate(model, tok, one, both, choices=4)
    assert set(r) >= {"forward", "reverse", "control_reverse_exact", "chance_choice", "tom_cruise"}
    assert r["chance_choice"] == 0.25 and r["pairs"] == 12
    for d in ("forward", "reverse"):
        assert 0 <= r[d]["exact"] <= 1 and 0 <= r[d]["choice"] <= 1
    assert r["forward"]["exact"] == 0.0  # an untrained model knows no mothers
    assert r["tom_cruise"]["prompt_reverse"] == "Mary Lee Pfeiffer's son is"


@pytest.mark.slow
def test_a_small_run_learns_one_direction_only(tmp_path, capsys):
    cfg = ReversalConfig(out=str(tmp_path / "rev"), pairs=12, both_pairs=12, choices=4, preset="tiny",
                         seq_len=32, batch_size=8, max_steps=400)
    r = run_reversal(cfg, progress=False)
    assert r["forward"]["exact"] >= 0.75  # memorised A -> B
    assert r["control_reverse_exact"] >= 0.75  # and the reverse questions it was shown
    assert r["reverse"]["exact"] <= 0.1  # but not B -> A for the one-way facts
    # Again through the CLI: the trained model is reused, the report is the same.
    assert main(["inside", "reversal", "--out", cfg.out, "--pairs", "12", "--both-pairs", "12", "--preset", "tiny",
                 "--json", "--plot", str(tmp_path / "rev.png")]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["forward"]["exact"] == r["forward"]["exact"] and again["reverse"]["exact"] == r["reverse"]["exact"]
    assert (tmp_path / "rev.png").read_bytes()[:4] == b"\x89PNG"
