"""Ingest: stream documents out of plain text, .gz/.zst text, JSONL, Parquet and Hugging Face ``datasets``
folders written by ``save_to_disk``, one document at a time (bounded memory).

    from llmlab.data.ingest import iter_documents, iter_texts
    for doc in iter_documents(["corpus/", "extra.jsonl.zst", "bundled:shakespeare"], text_field="text"):
        doc.text, doc.source, doc.nbytes, doc.invalid_utf8
    for text in iter_texts("corpus.jsonl.gz"):  # one source, as pretraining, the tokenizer and bpb read it
        ...

This is the one document reader: ``llmlab data prepare``, pretraining, tokenizer training and evaluation all
read through it.

What a document is: a whole file for plain text (folders are walked recursively in sorted order, hidden
files skipped, ``save_to_disk`` folders inside read as datasets); one line for JSONL (``text_field`` chooses
the field); one row for Parquet and ``datasets`` (``column`` chooses the column). ``bundled:shakespeare`` yields
the 42 works of the bundled corpus; ``bundled:train`` / ``bundled:val`` its standard split (the works cut at
the 90% byte mark). A folder that ``llmlab data prepare`` wrote (``report.json`` beside ``shard_*`` files) is
read as its shards only.

Memory: JSONL, Parquet (row-group batches) and Arrow files are streamed record by record, so their size does
not matter. A plain-text file is one document by definition and is read whole (in chunks, through an
incremental decoder); a single multi-GB text file therefore needs that much memory -- split such a file, or
convert it to JSONL, before preparing it.

``datasets`` folders are read with pyarrow directly: ``save_to_disk`` writes Arrow IPC stream files listed
in ``state.json`` (and one such folder per split next to ``dataset_dict.json``), so no ``datasets`` install
is needed to read them.

Bad input raises ``LlmlabError`` with the file (and line) at fault: a missing path, a binary file, malformed
JSONL, a missing field or column.
"""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from llmlab.data.clean import CountingDecoder, decode_bytes
from llmlab.errors import LlmlabError

BUNDLED_PREFIX = "bundled:"
CHUNK = 1 << 20
_JSONL_SUFFIXES = {".jsonl", ".ndjson"}
_COMPRESSED = {".gz", ".zst", ".zstd"}
# Bytes that never occur in text: C0 controls other than \t \n \v \f \r and ESC, and DEL.
_BINARY_BYTES = bytes(set(range(32)) - {9, 10, 11, 12, 13, 27}) + b"\x7f"


@dataclass
class Document:
    text: str
    source: str  # "path", "path:line" (JSONL) or "path#row" (Parquet/Arrow)
    nbytes: int  # size of the raw (uncompressed) UTF-8 input this document came from
    invalid_utf8: int = 0  # invalid byte sequences replaced by U+FFFD


def iter_documents(inputs: list[str], text_field: str = "text", column: str = "text") -> Iterator[Document]:
    """Every document of every input, in input order (folders in sorted path order)."""
    for inp in inputs:
        if str(inp).startswith(BUNDLED_PREFIX):
            yield from _bundled(str(inp)[len(BUNDLED_PREFIX):])
            continue
        path = Path(inp)
        if not path.exists():
            raise LlmlabError(f"{path}: input not found, cannot read it")
        if path.is_dir():
            if _is_hf_dataset(path):
                yield from _hf_dataset(path, column)
                continue
            yield from _walk(path, text_field, column)
        else:
            yield from _file(path, text_field, column)


def _files(path: Path) -> list[Path]:
    """The data files under a folder, in sorted order: hidden ones skipped, and for a folder ``llmlab data
    prepare`` wrote, only its shards (not its report)."""
    if (path / "report.json").is_file():
        shards = sorted(p for p in path.glob("shard_*") if p.is_file())
        if shards:
            return shards
    return [f for f in sorted(p for p in path.rglob("*") if p.is_file())
            if not any(part.startswith(".") for part in f.relative_to(path).parts)]  # .git, .DS_Store, ...


def _walk(path: Path, text_field: str, column: str) -> Iterator[Document]:
    """Files under ``path`` in sorted order (``_files``); a ``save_to_disk`` folder met on the way is read as
    one dataset (its state.json and Arrow files are not documents)."""
    files = _files(path)
    marks = {f.parent for f in files if f.name in ("state.json", "dataset_dict.json")}
    roots = {r for r in marks if not any(a in marks for a in r.parents)}  # a DatasetDict holds its splits
    done: set[Path] = set()
    for f in files:
        root = next((r for r in roots if r in f.parents), None)
        if root is None:
            yield from _file(f, text_field, column)
        elif root not in done:
            done.add(root)
            yield from _hf_dataset(root, column)


def _bundled(name: str) -> Iterator[Document]:
    from llmlab.data import corpus

    if name in ("train", "val"):
        for i, text in enumerate(corpus.split_documents(name)):
            yield Document(text, f"{BUNDLED_PREFIX}{name}#{i + 1}", len(text.encode("utf-8")))
        return
    if name != corpus.CORPUS:
        raise LlmlabError(f"unknown bundled corpus {name!r}; available: {BUNDLED_PREFIX}{corpus.CORPUS}, "
                          f"{BUNDLED_PREFIX}train, {BUNDLED_PREFIX}val")
    for w in corpus.list_works():
        text = corpus.read_work(w.id)
        yield Document(text, f"{BUNDLED_PREFIX}{name}/{w.id}", len(text.encode("utf-8")))


def _source_name(source: str | Path) -> str:
    """``bundled`` alone means the bundled corpus's training split."""
    return f"{BUNDLED_PREFIX}train" if str(source) == "bundled" else str(source)


def iter_texts(source: str | Path, text_field: str = "text", column: str = "text") -> Iterator[str]:
    """The documents of one source as strings, in a fixed order: what pretraining, tokenizer training and bits
    per byte read. ``bundled`` is the bundled corpus's training split. Invalid UTF-8 is an error here (a model
    would learn the replacement characters); ``llmlab data prepare`` repairs and counts it instead."""
    for doc in iter_documents([_source_name(source)], text_field=text_field, column=column):
        if doc.invalid_utf8:
            raise LlmlabError(f"{doc.source}: not UTF-8 text ({doc.invalid_utf8} invalid byte sequences); "
                              "repair it with `llmlab data prepare`")
        yield doc.text


def read_text(source: str | Path) -> str:
    """All documents of a source joined (tokenizer training, bits per byte)."""
    return "".join(iter_texts(source))


def source_files(source: str | Path) -> list[Path]:
    """The files a source reads, sorted (for cache keys); none for the bundled corpus."""
    name = _source_name(source)
    if name.startswith(BUNDLED_PREFIX):
        return []
    path = Path(name)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = _files(path)
        if not files:
            raise LlmlabError(f"{path}: no files in this folder")
        return files
    raise LlmlabError(f"{path}: data file or folder not found")


def _kind(path: Path) -> tuple[str, str | None]:
    """``(format, compression)`` from the file name: e.g. ``data.jsonl.zst`` -> ("jsonl", ".zst")."""
    suffixes = [s.lower() for s in path.suffixes]
    comp = suffixes.pop() if suffixes and suffixes[-1] in _COMPRESSED else None
    inner = suffixes[-1] if suffixes else ""
    if inner in _JSONL_SUFFIXES:
        return "jsonl", comp
    if inner == ".parquet" and comp is None:
        return "parquet", None
    if inner == ".arrow" and comp is None:
        return "arrow", None
    return "text", comp


def _open(path: Path, comp: str | None) -> io.BufferedIOBase:
    try:
        if comp == ".gz":
            return gzip.open(path, "rb")
        if comp in (".zst", ".zstd"):
            import zstandard

            return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True))
        return open(path, "rb")
    except OSError as e:
        raise LlmlabError(f"{path}: cannot open: {e.strerror or e}") from None


def _read_chunks(path: Path, f) -> Iterator[bytes]:
    try:
        while chunk := f.read(CHUNK):
            yield chunk
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError; truncated streams raise EOFError
        raise LlmlabError(f"{path}: cannot decompress: {e}") from None
    except Exception as e:  # zstandard.ZstdError
        if type(e).__module__.startswith("zstandard") or "zstd" in type(e).__name__.lower():
            raise LlmlabError(f"{path}: cannot decompress: {e}") from None
        raise


def looks_binary(head: bytes) -> bool:
    """True for data that is not text: any NUL byte, or more than 10% control bytes in the first chunk."""
    if not head:
        return False
    if b"\x00" in head:
        return True
    return len(head) - len(head.translate(None, _BINARY_BYTES)) > 0.1 * len(head)


def _file(path: Path, text_field: str, column: str) -> Iterator[Document]:
    fmt, comp = _kind(path)
    if fmt == "parquet":
        yield from _parquet(path, column)
    elif fmt == "arrow":
        yield from _arrow_stream(path, column)
    elif fmt == "jsonl":
        yield from _jsonl(path, comp, text_field)
    else:
        yield from _text(path, comp)


def _text(path: Path, comp: str | None) -> Iterator[Document]:
    dec = CountingDecoder()
    parts, nbytes = [], 0
    with _open(path, comp) as f:
        for chunk in _read_chunks(path, f):
            if nbytes == 0 and looks_binary(chunk[:8192]):
                raise LlmlabError(f"{path}: looks like a binary file (NUL or control bytes), not text")
            nbytes += len(chunk)
            parts.append(dec.decode(chunk))
    parts.append(dec.decode(b"", final=True))
    if nbytes:
        yield Document("".join(parts), str(path), nbytes, dec.invalid)


def _jsonl(path: Path, comp: str | None, field: str) -> Iterator[Document]:
    with _open(path, comp) as f:
        lineno = 0
        try:
            for raw in f:  # buffered line iteration: one line in memory at a time
                lineno += 1
                if lineno == 1 and looks_binary(raw[:8192]):
                    raise LlmlabError(f"{path}: looks like a binary file (NUL or control bytes), not JSONL")
                if not raw.strip():
                    continue
                line, invalid = decode_bytes(raw)
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise LlmlabError(f"{path}:{lineno}: malformed JSON: {e.msg} (column {e.colno})") from None
                if not isinstance(obj, dict):
                    raise LlmlabError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
                if field not in obj:
                    keys = ", ".join(sorted(obj)) or "none"
                    raise LlmlabError(f"{path}:{lineno}: field {field!r} missing (fields: {keys}); choose one with --text-field")
                text = obj[field]
                if text is None:
                    continue
                if not isinstance(text, str):
                    raise LlmlabError(f"{path}:{lineno}: field {field!r} is {type(text).__name__}, expected a string")
                yield Document(text, f"{path}:{lineno}", len(raw), invalid)
        except (OSError, EOFError) as e:
            raise LlmlabError(f"{path}: cannot decompress: {e}") from None


def _check_column(path: Path, names: list[str], column: str) -> None:
    if column not in names:
        raise LlmlabError(f"{path}: column {column!r} not found (columns: {', '.join(names) or 'none'}); choose one with --column")


def _batch_docs(path: Path, batches, column: str) -> Iterator[Document]:
    row = 0
    for batch in batches:
        for value in batch.column(0).to_pylist():
            row += 1
            if value is None:
                continue
            if isinstance(value, bytes):
                text, invalid = decode_bytes(value)
                nbytes = len(value)
            elif isinstance(value, str):
                text, invalid, nbytes = value, 0, len(value.encode("utf-8"))
            else:
                raise LlmlabError(f"{path}#{row}: column {column!r} holds {type(value).__name__}, expected text")
            yield Document(text, f"{path}#{row}", nbytes, invalid)


def _parquet(path: Path, column: str) -> Iterator[Document]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow.ArrowInvalid and friends: not a Parquet file
        raise LlmlabError(f"{path}: not a readable Parquet file: {e}") from None
    with pf:
        _check_column(path, pf.schema_arrow.names, column)
        # iter_batches reads one row group at a time: memory is bounded by the row-group size.
        yield from _batch_docs(path, pf.iter_batches(batch_size=1024, columns=[column]), column)


def _arrow_stream(path: Path, column: str) -> Iterator[Document]:
    import pyarrow as pa

    try:
        reader = pa.ipc.open_stream(pa.memory_map(str(path)))
    except Exception as e:
        raise LlmlabError(f"{path}: not a readable Arrow stream file: {e}") from None
    _check_column(path, reader.schema.names, column)
    yield from _batch_docs(path, (b.select([column]) for b in reader), column)


def _is_hf_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def _hf_dataset(path: Path, column: str) -> Iterator[Document]:
    """A ``Dataset.save_to_disk`` folder (state.json + Arrow files) or a ``DatasetDict`` one (one per split)."""
    if (path / "dataset_dict.json").is_file():
        splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8")).get("splits", [])
        for split in splits:
            yield from _hf_dataset(path / split, column)
        return
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        files = [d["filename"] for d in state["_data_files"]]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise LlmlabError(f"{path / 'state.json'}: not a datasets save_to_disk folder ({e})") from None
    for name in files:
        yield from _arrow_stream(path / name, column)
