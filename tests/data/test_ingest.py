"""Ingest: text folders, .gz/.zst, JSONL, Parquet, datasets save_to_disk folders, the bundled corpus, and the
one-line errors for bad input.

    .venv/bin/pytest tests/data/test_ingest.py -q
"""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from llmlab.data.ingest import iter_documents, looks_binary
from llmlab.errors import LlmlabError


def _docs(*inputs, **kw):
    return list(iter_documents([str(i) for i in inputs], **kw))


def test_folder_recursive_sorted_hidden_skipped(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.txt").write_text("zed")
    (tmp_path / "a.txt").write_text("alpha\r\n")
    (tmp_path / ".hidden.txt").write_text("secret")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    (tmp_path / "empty.txt").write_text("")
    docs = _docs(tmp_path)
    assert [d.text for d in docs] == ["alpha\r\n", "zed"]  # raw: cleaning is the pipeline's job
    assert docs[0].source.endswith("a.txt") and docs[0].nbytes == 7


def test_streaming_over_many_files_is_lazy(tmp_path):
    for i in range(300):
        (tmp_path / f"doc_{i:04d}.txt").write_text(f"document number {i}")
    (tmp_path / "zzzz_broken.jsonl").write_text("{not json\n")
    it = iter_documents([str(tmp_path)])
    first = next(it)  # produced before the broken file at the end is even opened
    assert first.text == "document number 0"
    rest = []
    with pytest.raises(LlmlabError, match="zzzz_broken.jsonl:1: malformed JSON"):
        for d in it:
            rest.append(d)
    assert len(rest) == 299


def test_gz_and_zst_text(tmp_path):
    text = "compressed \u00e9t\u00e9 text\n" * 1000
    with gzip.open(tmp_path / "a.txt.gz", "wt", encoding="utf-8") as f:
        f.write(text)
    (tmp_path / "b.txt.zst").write_bytes(zstandard.ZstdCompressor().compress(text.encode()))
    docs = _docs(tmp_path / "a.txt.gz", tmp_path / "b.txt.zst")
    assert [d.text for d in docs] == [text, text]
    assert docs[0].nbytes == len(text.encode())


def test_invalid_utf8_counted(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"caf\xc3\xa9 and \xff\xfe broken \xe2\x82")
    (doc,) = _docs(tmp_path / "bad.txt")
    assert doc.text == "caf\u00e9 and \ufffd\ufffd broken \ufffd" and doc.invalid_utf8 == 3


def test_jsonl_plain_and_compressed_with_field(tmp_path):
    rows = [{"content": "first row", "id": 1}, {"content": "second row", "id": 2}, {"content": None, "id": 3}]
    body = "".join(json.dumps(r) + "\n" for r in rows[:2]) + "\n" + json.dumps(rows[2]) + "\n"
    (tmp_path / "a.jsonl").write_text(body)
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.write(body)
    (tmp_path / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(body.encode()))
    for name in ("a.jsonl", "b.jsonl.gz", "c.jsonl.zst"):
        docs = _docs(tmp_path / name, text_field="content")
        assert [d.text for d in docs] == ["first row", "second row"]  # null skipped, blank line skipped
        assert docs[1].source.endswith(f"{name}:2")


def test_parquet_row_groups(tmp_path):
    texts = [f"row {i} text" for i in range(2500)]
    table = pa.table({"id": list(range(2500)), "body": texts})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=700)
    docs = _docs(tmp_path / "t.parquet", column="body")
    assert [d.text for d in docs] == texts
    assert docs[-1].source.endswith("t.parquet#2500")


def _save_to_disk(folder, texts, column="text"):
    """The layout ``datasets.Dataset.save_to_disk`` writes: Arrow IPC stream files listed in state.json."""
    folder.mkdir(parents=True)
    names = []
    for k, part in enumerate((texts[: len(texts) // 2], texts[len(texts) // 2:])):
        name = f"data-{k:05d}-of-00002.arrow"
        table = pa.table({column: part, "label": list(range(len(part)))})
        with pa.ipc.new_stream(folder / name, table.schema) as w:
            w.write_table(table, max_chunksize=3)
        names.append(name)
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": n} for n in names],
                                                   "_split": None}))
    (folder / "dataset_info.json").write_text(json.dumps({"features": {column: {"dtype": "string"}}}))


def test_hf_dataset_and_dataset_dict(tmp_path):
    texts = [f"example {i}" for i in range(10)]
    _save_to_disk(tmp_path / "ds", texts)
    assert [d.text for d in _docs(tmp_path / "ds")] == texts
    _save_to_disk(tmp_path / "dd" / "train", texts[:6])
    _save_to_disk(tmp_path / "dd" / "test", texts[6:])
    (tmp_path / "dd" / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    assert [d.text for d in _docs(tmp_path / "dd")] == texts
    with pytest.raises(LlmlabError, match=r"column 'content' not found \(columns: text, label\)"):
        _docs(tmp_path / "ds", column="content")


def test_dataset_folder_inside_a_text_folder(tmp_path):
    (tmp_path / "a.txt").write_text("plain")
    _save_to_disk(tmp_path / "b_ds", ["row one", "row two"])
    (tmp_path / "c.txt").write_text("after")
    assert [d.text for d in _docs(tmp_path)] == ["plain", "row one", "row two", "after"]


def test_bundled():
    docs = _docs("bundled:shakespeare")
    assert len(docs) == 42 and docs[0].source == "bundled:shakespeare/alls_well_that_ends_well"
    with pytest.raises(LlmlabError, match="unknown bundled corpus 'nope'"):
        _docs("bundled:nope")


@pytest.mark.parametrize("setup, kw, message", [
    (lambda p: None, {}, r"missing\.txt: input not found"),
    (lambda p: (p / "x.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10), {}, r"x\.bin: looks like a binary file"),
    (lambda p: (p / "x.jsonl").write_text('{"text": "ok"}\n{"text": "cut\n'), {}, r"x\.jsonl:2: malformed JSON"),
    (lambda p: (p / "x.jsonl").write_text('{"text": "ok"}\n[1, 2]\n'), {}, r"x\.jsonl:2: expected a JSON object"),
    (lambda p: (p / "x.jsonl").write_text('{"body": "ok"}\n'), {}, r"x\.jsonl:1: field 'text' missing \(fields: body\)"),
    (lambda p: (p / "x.jsonl").write_text('{"text": 5}\n'), {}, r"x\.jsonl:1: field 'text' is int"),
    (lambda p: pq.write_table(pa.table({"body": ["a"]}), p / "x.parquet"), {}, r"x\.parquet: column 'text' not found"),
    (lambda p: (p / "x.parquet").write_text("not parquet"), {}, r"x\.parquet: not a readable Parquet file"),
    (lambda p: (p / "x.txt.gz").write_bytes(b"not gzip at all"), {}, r"x\.txt\.gz: cannot decompress"),
    (lambda p: (p / "x.txt.zst").write_bytes(b"not zstd at all"), {}, r"x\.txt\.zst: cannot decompress"),
])
def test_bad_input_errors_name_the_problem(tmp_path, setup, kw, message):
    setup(tmp_path)
    target = next((p for p in tmp_path.iterdir()), tmp_path / "missing.txt")
    with pytest.raises(LlmlabError, match=message) as e:
        _docs(target, **kw)
    assert "\n" not in str(e.value)


def test_looks_binary():
    assert looks_binary(b"abc\x00def")
    assert looks_binary(bytes(range(1, 32)) * 4)
    assert not looks_binary("plain text, caf\u00e9, \u4e2d\u6587\n\ttab".encode())
    assert not looks_binary(b"")
