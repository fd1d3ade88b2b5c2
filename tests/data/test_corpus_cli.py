"""The bundled corpus, its standard split, and `llmlab data list/read/split`.

    .venv/bin/pytest tests/data/test_corpus_cli.py -q
"""

import hashlib
import json
import lzma
from importlib import resources

import pytest

from llmlab.cli import main
from llmlab.data import corpus


def test_manifest_lists_42_works_with_matching_checksums():
    works = corpus.list_works()
    assert len(works) == 42
    assert [w.file for w in works] == sorted(w.file for w in works)
    assert all(w.file.endswith("_gut.txt") and not w.file.endswith("_gut_f.txt") for w in works)
    folder = resources.files("llmlab.corpora").joinpath(corpus.CORPUS)
    for w in works:
        raw = lzma.decompress(folder.joinpath(w.file + ".xz").read_bytes())
        assert len(raw) == w.bytes
        assert hashlib.sha256(raw).hexdigest() == w.sha256


def test_read_work_by_id_and_title_and_unknown():
    text = corpus.read_work("hamlet")
    assert text.startswith("HAMLET, PRINCE OF DENMARK")
    assert corpus.read_work(next(w.title for w in corpus.list_works() if w.id == "hamlet")) == text
    with pytest.raises(corpus.LlmlabError, match="unknown work 'nosuch'"):
        corpus.read_work("nosuch")


def test_standard_split_boundaries():
    works = corpus.list_works()
    whole = "".join(corpus.read_work(w.id).strip() + "\n\n" for w in works)
    train, val = corpus.standard_split()
    data = whole.encode("utf-8")
    cut = int(0.9 * len(data))
    assert train.encode() == data[:cut] and val.encode() == data[cut:]
    assert len(train.encode()) + len(val.encode()) == len(data)
    # Sorted file order: the first work is the alphabetically first file, the last work ends val.
    assert train.startswith(corpus.read_work(works[0].id).strip()[:200])
    assert val.endswith(corpus.read_work(works[-1].id).strip() + "\n\n")
    assert data.isascii()  # so the byte cut never splits a character


def test_cli_list_read_split(tmp_path, capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "hamlet" in out and out.strip().splitlines()[-1].startswith("42 works")
    assert main(["data", "list", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 42
    assert main(["data", "read", "macbeth"]) == 0
    assert capsys.readouterr().out == corpus.read_work("macbeth")
    assert main(["data", "split", "--out", str(tmp_path / "s")]) == 0
    summary = json.loads(capsys.readouterr().out)
    train, val = corpus.standard_split()
    assert (tmp_path / "s" / "train.txt").read_text() == train
    assert (tmp_path / "s" / "val.txt").read_text() == val
    assert summary["train_bytes"] == len(train) and summary["works"] == 42


def test_cli_unknown_work_is_one_line_error(capsys):
    assert main(["data", "read", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmlab: error: unknown work 'nosuch'") and err.count("\n") == 1
