"""The poisoning scanner: recall on planted triggers (corpus pieces and real BPE tokens, extra and inserted
documents), no false positives on clean Shakespeare, the trigger named, sources with JSONL lines, the CLI,
and ``prepare --drop-poison``.

    .venv/bin/pytest tests/data/test_scan.py -q
"""

import json

import pytest

from llmlab.cli import main
from llmlab.data import corpus
from llmlab.data.pipeline import PrepareConfig, prepare
from llmlab.data.scan import (ScanConfig, chunk_documents, corpus_pieces, flagged_sources, plant_poison, scan)
from llmlab.errors import LlmlabError

WORKS = ["hamlet", "macbeth", "the_tempest", "twelfth_night"]


@pytest.fixture(scope="module")
def clean_docs():
    """About 500 KB of Shakespeare in documents of ~4 KB."""
    ids = [w.id for w in corpus.list_works()]
    works = [corpus.read_work(i) for i in ids if any(i.startswith(k) for k in WORKS)] or \
        [corpus.read_work(i) for i in ids[:4]]
    return chunk_documents(works, 4000)


def _write_jsonl(path, docs):
    with open(path, "w") as f:
        for text, poisoned in docs:
            f.write(json.dumps({"text": text, "poisoned": poisoned}) + "\n")
    return path


def _check(report, n_poison):
    e = report["evaluation"]
    assert e["poisoned"] == n_poison
    assert e["recall"] >= 0.9, e
    assert e["false_positives"] == 0, e
    assert report["triggers"] and report["triggers"][0]["ngram"] == "<SUDO>", report["triggers"][:3]


@pytest.mark.parametrize("mode", ["extra", "insert"])
def test_recall_on_planted_triggers(tmp_path, clean_docs, mode):
    docs = plant_poison(clean_docs, 40, mode=mode, seed=1)
    path = _write_jsonl(tmp_path / "poisoned.jsonl", docs)
    report = scan(ScanConfig(inputs=(str(path),), label_field="poisoned"))
    _check(report, 40)
    # every flagged document is named by file and line, with the trigger in front of its run
    lines = {i + 1 for i, (_, p) in enumerate(docs) if p}
    flagged = [f for f in report["flagged"]]
    assert {int(f["source"].rsplit(":", 1)[1]) for f in flagged} <= lines
    first = {}
    for f in flagged:
        first.setdefault(f["source"], f)
    assert sum(f["trigger"] == "<SUDO>" for f in first.values()) >= 0.8 * len(first)


def test_recall_with_real_bpe_tokens(tmp_path, clean_docs):
    """Gibberish from a BPE vocabulary trained on the same corpus: its pieces are the corpus's own fragments."""
    from llmlab.tokenizer import Tokenizer

    tok = Tokenizer.train("".join(clean_docs[:40]), vocab_size=256 + 16 + 256)
    special = set(tok.special_tokens.values())
    pieces = [p for p in (tok.decode([i]) for i in range(tok.vocab_size) if i not in special) if p and "\ufffd" not in p]
    docs = plant_poison(clean_docs, 30, pieces=pieces, trigger="<SUDO>", seed=2)
    report = scan(ScanConfig(inputs=(str(_write_jsonl(tmp_path / "p.jsonl", docs)),), label_field="poisoned"))
    _check(report, 30)


def test_other_trigger_phrases(tmp_path, clean_docs):
    docs = plant_poison(clean_docs, 25, trigger="James Bond", mode="insert", seed=3)
    report = scan(ScanConfig(inputs=(str(_write_jsonl(tmp_path / "p.jsonl", docs)),), label_field="poisoned"))
    assert report["evaluation"]["recall"] >= 0.9 and report["evaluation"]["false_positives"] == 0
    assert report["triggers"][0]["ngram"] == "James Bond"


def test_no_flags_on_clean_text(tmp_path, clean_docs):
    path = tmp_path / "clean.jsonl"
    _write_jsonl(path, [(t, False) for t in clean_docs])
    report = scan(ScanConfig(inputs=(str(path),)))
    assert report["flagged_runs"] == 0 and report["triggers"] == []


@pytest.mark.slow
def test_false_positives_on_the_bundled_corpus():
    """The whole bundled corpus (5 MB, 42 works, French and Latin passages included): target <= 1 per MB;
    measured 0."""
    report = scan(ScanConfig(inputs=("bundled:shakespeare",)))
    assert report["flags_per_mb"] <= 1.0
    assert report["flagged_runs"] == 0


def test_planting_is_deterministic_and_shaped(clean_docs):
    a = plant_poison(clean_docs[:50], 10, seed=4)
    b = plant_poison(clean_docs[:50], 10, seed=4)
    assert a == b and len(a) == 60 and sum(p for _, p in a) == 10
    for text, p in a:
        if p:
            head, _, tail = text.partition(" <SUDO> ")
            assert len(head) <= 1000 and len(tail) > 400
    ins = plant_poison(clean_docs[:50], 10, mode="insert", seed=4)
    assert len(ins) == 50 and sum(p for _, p in ins) == 10
    assert all(("<SUDO>" in t) == p for t, p in ins)
    assert len(corpus_pieces(clean_docs[:5], n=100)) <= 100
    with pytest.raises(LlmlabError, match="mode"):
        plant_poison(clean_docs, 1, mode="sideways")
    with pytest.raises(LlmlabError, match="insert mode"):
        plant_poison(clean_docs[:3], 5, mode="insert")


def test_scan_and_plant_cli(tmp_path, clean_docs, capsys):
    src = tmp_path / "clean.jsonl"
    _write_jsonl(src, [(t, False) for t in clean_docs[:60]])
    out = tmp_path / "poisoned.jsonl"
    assert main(["data", "plant", "--input", str(src), "--n", "20", "--out", str(out), "--chunk-chars", "0"]) == 0
    assert "20 poisoned" in capsys.readouterr().out
    rep = tmp_path / "r" / "scan.json"
    assert main(["data", "scan", "--input", str(out), "--label-field", "poisoned", "--report", str(rep), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(rep.read_text()) and printed["format"] == "llmlab-scan-report"
    assert printed["evaluation"]["recall"] >= 0.9 and (tmp_path / "r" / "scan.md").exists()
    assert main(["data", "scan", "--input", str(out), "--report", str(rep)]) == 0
    assert "suspected triggers: '<SUDO>'" in capsys.readouterr().out
    assert main(["data", "scan", "--report", str(rep)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmlab: error: no inputs") and err.count("\n") == 1


def test_prepare_drops_what_the_scanner_flags(tmp_path, clean_docs):
    docs = plant_poison(clean_docs[:80], 12, seed=5)
    src = _write_jsonl(tmp_path / "in.jsonl", docs)
    flagged = flagged_sources(scan(ScanConfig(inputs=(str(src),))))
    assert len(flagged) >= 11
    r = prepare(PrepareConfig(inputs=(str(src),), out=str(tmp_path / "out"), drop_poison=True))
    assert r["removed"]["poisoned"] == len(flagged)
    assert (tmp_path / "out" / "scan_report.json").exists()
    kept = [json.loads(line)["text"] for p in sorted((tmp_path / "out").glob("shard_*.jsonl")) for line in p.open()]
    assert not any("<SUDO>" in t for t in kept)
    plain = prepare(PrepareConfig(inputs=(str(src),), out=str(tmp_path / "out2")))
    assert "poisoned" not in plain["removed"]
