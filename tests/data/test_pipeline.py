"""``prepare`` end to end: report, shards, determinism, atomic output, and the ``llmlab data prepare`` CLI.

    .venv/bin/pytest tests/data/test_pipeline.py -q
"""

import json
from pathlib import Path

import pytest
from conftest import prose

from llmlab.cli import main
from llmlab.data.pipeline import PrepareConfig, prepare
from llmlab.errors import LlmlabError
from llmlab.utils.config import config_from_dict


def _corpus(folder: Path) -> Path:
    """Ten distinct documents, one exact and one near duplicate, one too short, one with PII and boilerplate,
    one with invalid UTF-8 -- as text files and a JSONL file."""
    folder.mkdir()
    for i in range(10):
        (folder / f"doc{i:02d}.txt").write_text(prose(120, 100 + i))
    (folder / "doc90_exact.txt").write_text(prose(120, 100).upper() + "\n\n\n\n\n")
    near = prose(300, 200).split(" ")
    near2 = list(near)
    near2[150] = "changed"
    (folder / "doc91_near_a.txt").write_text(" ".join(near))
    (folder / "doc92_near_b.txt").write_text(" ".join(near2))
    (folder / "doc93_short.txt").write_text("too short to keep")
    (folder / "doc94_pii.txt").write_text(
        prose(80, 300) + "\nMail jane@example.com or call 555-123-4567 from 10.1.2.3.\n"
        "We use cookies; see our cookie policy.\n")
    (folder / "doc95_utf8.txt").write_bytes(prose(80, 400).encode() + b" \xff end.\r\n")
    rows = [{"text": prose(60, 500 + i)} for i in range(3)]
    (folder / "more.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _read_shards(out: Path) -> list[str]:
    return [json.loads(line)["text"] for p in sorted(out.glob("shard_*.jsonl")) for line in p.open()]


def test_report_counts_and_outputs(tmp_path):
    src = _corpus(tmp_path / "in")
    out = tmp_path / "out"
    r = prepare(PrepareConfig(inputs=(str(src),), out=str(out)))
    assert r["documents_in"] == 19
    assert r["removed"] == {"exact_duplicate": 1, "near_duplicate": 1, "too_few_words": 1}
    assert r["documents_out"] == 16
    assert r["pii_replaced"] == {"EMAIL": 1, "IP": 1, "PHONE": 1}
    assert r["invalid_utf8"] == 1 and r["boilerplate_lines_removed"] == 1
    assert r["bytes_in"] == sum(p.stat().st_size for p in src.iterdir() if p.suffix == ".txt") + \
        sum(len(line) for line in (src / "more.jsonl").read_bytes().splitlines(keepends=True))
    texts = _read_shards(out)
    assert len(texts) == 16 and r["bytes_out"] == sum(len(t.encode()) for t in texts)
    pii_doc = next(t for t in texts if "<EMAIL>" in t)
    assert "Mail <EMAIL> or call <PHONE> from <IP>." in pii_doc and "cookie" not in pii_doc
    assert any(t.endswith("\ufffd end.") for t in texts)  # CRLF and trailing space repaired
    assert r["documents_changed"] == 2  # the PII document and the invalid-UTF-8 one
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "report.json", "report.md", "shard_00000.jsonl"]
    assert json.loads((out / "report.json").read_text()) == r
    assert "| in | 19 |" in (out / "report.md").read_text()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["inputs"] == [str(src)] and cfg["filters"]["min_words"] == 50 and cfg["dedup_threshold"] == 0.8
    assert config_from_dict(PrepareConfig, cfg) == PrepareConfig(inputs=(str(src),), out=str(out))


def test_deterministic_and_seeded(tmp_path):
    src = _corpus(tmp_path / "in")
    r1 = prepare(PrepareConfig(inputs=(str(src),), out=str(tmp_path / "a"), seed=3))
    r2 = prepare(PrepareConfig(inputs=(str(src),), out=str(tmp_path / "b"), seed=3))
    assert (tmp_path / "a" / "shard_00000.jsonl").read_bytes() == (tmp_path / "b" / "shard_00000.jsonl").read_bytes()
    assert {k: v for k, v in r1.items() if k not in ("timings_s", "docs_per_s")} == \
        {k: v for k, v in r2.items() if k not in ("timings_s", "docs_per_s")}


def test_workers_give_identical_output(tmp_path):
    src = _corpus(tmp_path / "in")
    r1 = prepare(PrepareConfig(inputs=(str(src),), out=str(tmp_path / "a")))
    r2 = prepare(PrepareConfig(inputs=(str(src),), out=str(tmp_path / "b"), workers=2, window_docs=4))
    assert (tmp_path / "a" / "shard_00000.jsonl").read_bytes() == (tmp_path / "b" / "shard_00000.jsonl").read_bytes()
    assert r1["removed"] == r2["removed"] and r1["pii_replaced"] == r2["pii_replaced"]
    assert r1["documents_changed"] == r2["documents_changed"] and r1["invalid_utf8"] == r2["invalid_utf8"]


def test_shards_size_limited_and_txt_format(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    texts = [prose(100, i) for i in range(12)]
    for i, t in enumerate(texts):
        (src / f"{i:02d}.txt").write_text(t)
    limit = 3 * len(texts[0].encode()) + 200
    r = prepare(PrepareConfig(inputs=(str(src),), out=str(tmp_path / "j"), shard_bytes=limit))
    shards = sorted((tmp_path / "j").glob("shard_*.jsonl"))
    assert len(shards) == len(r["shards"]) > 3 and all(p.stat().st_size <= limit for p in shards)
    assert _read_shards(tmp_path / "j") == texts  # order kept across shards
    prepare(PrepareConfig(inputs=(str(src),), out=str(tmp_path / "t"), format="txt", shard_bytes=limit))
    joined = "".join(p.read_text() for p in sorted((tmp_path / "t").glob("shard_*.txt")))
    assert joined.replace("\n\n", "\n") == "".join(t + "\n" for t in texts).replace("\n\n", "\n")


def test_switches(tmp_path):
    src = _corpus(tmp_path / "in")
    r = prepare(PrepareConfig(inputs=(str(src),), out=str(tmp_path / "o"), pii=False, exact_dedup=False,
                              near_dedup=False))
    assert r["removed"] == {"too_few_words": 1} and r["pii_replaced"] == {}
    from llmlab.data.filters import FilterConfig

    r = prepare(PrepareConfig(inputs=(str(src),), out=str(tmp_path / "p"),
                              filters=FilterConfig(disabled=("too_few_words", "boilerplate_lines"))))
    assert "too_few_words" not in r["removed"] and r["boilerplate_lines_removed"] == 0


def test_failed_run_leaves_nothing(tmp_path):
    src = _corpus(tmp_path / "in")
    (src / "zz_bad.jsonl").write_text('{"text": "fine"}\n{"oops": 1}\n')
    with pytest.raises(LlmlabError, match=r"zz_bad\.jsonl:2: field 'text' missing"):
        prepare(PrepareConfig(inputs=(str(src),), out=str(tmp_path / "out")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no out/, no temporary folder


def test_existing_output_needs_overwrite(tmp_path):
    src = _corpus(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    with pytest.raises(LlmlabError, match="output folder exists and is not empty"):
        prepare(PrepareConfig(inputs=(str(src),), out=str(out)))
    assert (out / "old.txt").read_text() == "keep me"
    prepare(PrepareConfig(inputs=(str(src),), out=str(out), overwrite=True))
    assert not (out / "old.txt").exists() and (out / "report.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]


def test_empty_corpus(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "empty.txt").write_text("")
    with pytest.raises(LlmlabError, match="empty corpus: no documents found"):
        prepare(PrepareConfig(inputs=(str(tmp_path / "in"),), out=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--input", "{tmp}/nope"], "llmlab: error: {tmp}/nope: input not found, cannot read it"),
    (["--input", "{tmp}/bin.dat"], "llmlab: error: {tmp}/bin.dat: looks like a binary file"),
    (["--input", "{tmp}/bad.jsonl"], "llmlab: error: {tmp}/bad.jsonl:1: malformed JSON"),
    (["--input", "{tmp}/bad.jsonl", "--text-field", "x"], "llmlab: error: {tmp}/bad.jsonl:1: malformed JSON"),
    (["--input", "{tmp}/ok.jsonl", "--text-field", "body"], "llmlab: error: {tmp}/ok.jsonl:1: field 'body' missing"),
    ([], "llmlab: error: no inputs given"),
])
def test_cli_errors_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "bin.dat").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    (tmp_path / "ok.jsonl").write_text('{"text": "fine"}\n')
    argv = ["data", "prepare", "--out", str(tmp_path / "out"), "--no-progress"]
    argv += [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message.replace("{tmp}", str(tmp_path))) and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_cli_success(tmp_path, capsys):
    src = _corpus(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["data", "prepare", "--input", str(src), "--out", str(out), "--no-progress", "--format", "txt",
                 "--no-filter", "too_few_words", "--seed", "7", "--shard-mb", "0.01"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("prepared 17/19 documents") and line.endswith(f"-> {out}")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["format"] == "txt" and cfg["seed"] == 7 and cfg["filters"]["disabled"] == ["too_few_words"]
    assert len(list(out.glob("shard_*.txt"))) > 1


@pytest.mark.slow
def test_bundled_corpus_passes_untouched(tmp_path):
    """All 42 works pass the default filters, none is a duplicate, and no PII is found in Shakespeare."""
    r = prepare(PrepareConfig(inputs=("bundled:shakespeare",), out=str(tmp_path / "s")))
    assert r["documents_in"] == 42 and r["documents_out"] == 42, r["removed"]
    assert r["removed"] == {} and r["pii_replaced"] == {} and r["invalid_utf8"] == 0
    assert r["boilerplate_lines_removed"] == 0
    assert r["bytes_out"] > 0.99 * r["bytes_in"]  # only whitespace repair
