"""``llmlab reason``: check's exit codes, a run over a puzzle file with bad lines skipped and counted (JSON
report, trees as JSON and PNG), the paper's CSV with --ranks, an endpoint run, and one-line errors.

    .venv/bin/pytest tests/reason/test_reason_cli.py -q
"""

import json

import pytest
import torch

from llmlab.cli import main
from llmlab.runs import save_run_model
from llmlab.model.gpt import GPT, ModelConfig
from llmlab.reason.tree import Tree, draw_tree
from llmlab.tokenizer import Tokenizer


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tok = Tokenizer.train("Make 24 with 1 2 3 4. 1 + 2 = 3 (left: 3 3 4)\nsure\n" * 30, vocab_size=256 + 16 + 12)
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("run") / "tiny"
    save_run_model(d, GPT(ModelConfig.preset("tiny", vocab_size=tok.vocab_size, max_seq_len=128)), tok)
    return d


def test_check_exit_codes(capsys):
    assert main(["reason", "check", "--task", "game24", "--puzzle", "4 9 10 13", "--answer", "(10-4)*(13-9)"]) == 0
    assert capsys.readouterr().out.startswith("valid")
    assert main(["reason", "check", "--puzzle", "4 9 10 13", "--answer", "(10-4)*(13-9)+4"]) == 1
    assert capsys.readouterr().out.strip() == "invalid: it uses 4 twice but the puzzle has it once"
    assert main(["reason", "check", "--puzzle", "3 3 8 8", "--answer", "8/(3-8/3)"]) == 0
    assert main(["reason", "check", "--puzzle", "4 9 10 99", "--answer", "1"]) == 2  # not a puzzle: a user error
    assert "out of range" in capsys.readouterr().err


def test_run_skips_bad_lines_and_saves_trees(run_dir, tmp_path, capsys):
    puzzles = tmp_path / "p.txt"
    puzzles.write_text("# hard ones\n4 9 10 13\n1 2 3\n\n3 3 8 8\n4 9 10 14\nfour five six seven\n")
    out = tmp_path / "out"
    rc = main(["reason", "--model", str(run_dir), "--task", "game24", "--method", "tot", "--breadth", "2",
               "--puzzles", str(puzzles), "--out", str(out), "--json", "--no-progress"])
    assert rc == 0
    cap = capsys.readouterr()
    report = json.loads(cap.out)
    assert report["n"] == 2 and report["skipped"] == 3 and report["method"] == "tot-bfs(b=2)"
    assert 0.0 <= report["success_rate"] <= 1.0 and report["tokens_per_puzzle"] > 0
    assert [r["puzzle"] for r in report["results"]] == ["4 9 10 13", "3 3 8 8"]
    assert "p.txt:3: a puzzle is 4 numbers, got 3" in cap.err and "out of range" in cap.err
    assert json.loads((out / "report.json").read_text())["n"] == 2
    trees = sorted((out / "trees").glob("*.json"))
    assert [t.name for t in trees] == ["0000_4_9_10_13.json", "0001_3_3_8_8.json"]
    assert Tree.load(trees[0]).nodes[0].state == "4 9 10 13"
    assert (out / "trees" / "0000_4_9_10_13.png").read_bytes()[:4] == b"\x89PNG"


def test_run_over_the_papers_csv_with_ranks(run_dir, tmp_path, capsys):
    from llmlab.tasks.game24 import DATA_FILE

    rc = main(["reason", "--model", str(run_dir), "--method", "cot-sc", "--samples", "2", "--puzzles",
               str(DATA_FILE), "--ranks", "901-903", "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == 0
    line = capsys.readouterr().out
    assert line.startswith("game24 cot-sc(k=2): ") and "/3)" in line and "tokens generated per puzzle" in line


def test_user_errors_are_one_line(run_dir, tmp_path, capsys):
    p = tmp_path / "p.txt"
    p.write_text("1 2 3 4\n")
    assert main(["reason", "--model", str(run_dir), "--puzzles", str(p)]) == 2  # no --method
    assert main(["reason", "--model", str(run_dir), "--endpoint", "http://x", "--method", "io",
                 "--puzzles", str(p)]) == 2
    assert main(["reason", "--model", str(tmp_path / "nope"), "--method", "io", "--puzzles", str(p)]) == 2
    (tmp_path / "bad.txt").write_text("1 2 3\n")
    assert main(["reason", "--model", str(run_dir), "--method", "io", "--puzzles", str(tmp_path / "bad.txt")]) == 2
    err = capsys.readouterr().err
    assert "no valid puzzles (1 line(s) skipped)" in err and "Traceback" not in err


def test_tree_json_round_trip_and_drawing(tmp_path):
    t = Tree("4 9 10 13", "tot-bfs(b=1)")
    root = t.add(None, "root", "", "4 9 10 13")
    a = t.add(root, "step", "13 - 9 = 4 (left: 4 4 10)", "4 4 10")
    a.value, a.judgements, a.selected = 40.0, ["sure", "sure"], True
    t.add(a, "answer", "(10 - 4) * (13 - 9) = 24").ok = True
    t.save(tmp_path / "t.json")
    back = Tree.load(tmp_path / "t.json")
    assert back.to_json() == t.to_json() and back.path(back.nodes[2])[0].text == a.text
    draw_tree(back, tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 1000
    data = t.to_json()
    data["version"] = 99
    from llmlab.errors import LlmlabError

    with pytest.raises(LlmlabError, match="newer"):
        Tree.from_json(data)


def test_arith_check_and_run(run_dir, tmp_path, capsys):
    word = "Ann has 23 apples. She buys 3 bags of 12. She gives away 17. How many apples does Ann have now?"
    assert main(["reason", "check", "--task", "arith", "--puzzle", word, "--answer", "42"]) == 0
    assert capsys.readouterr().out.startswith("valid: 42 is the answer")
    assert main(["reason", "check", "--task", "arith", "--puzzle", word, "--answer", "41"]) == 1
    assert capsys.readouterr().out.strip() == "invalid: 41 is wrong"
    assert main(["reason", "check", "--task", "arith", "--puzzle", "4 9 10 13", "--answer", "1"]) == 2
    p = tmp_path / "p.txt"
    p.write_text(f"{word}\nAnn has lots.\n")
    rc = main(["reason", "--model", str(run_dir), "--task", "arith", "--method", "cot-sc", "--samples", "2",
               "--puzzles", str(p), "--out", str(tmp_path / "o"), "--json", "--no-progress"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "arith" and report["n"] == 1 and report["skipped"] == 1
    assert report["results"][0]["puzzle"] == word and report["method"] == "cot-sc(k=2)"
    assert main(["reason", "--model", str(run_dir), "--task", "arith", "--method", "tot", "--puzzles", str(p),
                 "--out", str(tmp_path / "o2"), "--no-progress"]) == 2
    assert "supports io, cot, cot-sc only" in capsys.readouterr().err


def test_train_flags_reach_the_arith_config(monkeypatch, tmp_path, capsys):
    import llmlab.reason.train as rt

    seen = {}

    def fake_train(cfg, progress=None):
        seen["cfg"] = cfg
        return {"config": {}, "final_stage": "sft"}

    monkeypatch.setattr(rt, "train_game24", fake_train)
    assert main(["reason", "train", "--task", "arith", "--out", str(tmp_path / "r"), "--events", "3,4",
                 "--order-shares", "0.25,0.15,0.2,0.4", "--swap-share", "0.5", "--layers", "6",
                 "--width", "192"]) == 0
    cfg = seen["cfg"]
    assert cfg.arith.events == (3, 4) and cfg.arith.order_shares == (0.25, 0.15, 0.2, 0.4)
    assert cfg.arith.swap_share == 0.5 and (cfg.n_layer, cfg.d_model) == (6, 192)
    # The defaults are the data config's own.
    assert main(["reason", "train", "--task", "arith", "--out", str(tmp_path / "r")]) == 0
    from llmlab.tasks.arith_word import ArithDataConfig

    d = ArithDataConfig()
    assert (seen["cfg"].arith.events, seen["cfg"].arith.order_shares, seen["cfg"].arith.swap_share) == \
        (d.events, d.order_shares, d.swap_share)
    with pytest.raises(SystemExit):
        main(["reason", "train", "--task", "arith", "--out", str(tmp_path / "r"), "--events", "three"])
    assert "comma-separated integers" in capsys.readouterr().err
