"""The bundled default corpus (the complete works of Shakespeare) and its standard train/validation split.

    from llmlab.data.corpus import list_works, read_work, standard_split
    train, val = standard_split()           # the split every later stage and benchmark uses

    llmlab data list                        # id, title, bytes of each work
    llmlab data read hamlet | head
    llmlab data split --out data/shakespeare   # writes train.txt and val.txt

The standard split: concatenate the works in sorted file-name order, each work's text stripped and followed
by a blank line; the first int(0.9 * total bytes) bytes are train, the rest validation. The corpus is pure
ASCII, so the byte cut never splits a character.
"""

from __future__ import annotations

import functools
import hashlib
import json
import lzma
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from llmlab.errors import LlmlabError

CORPUS = "shakespeare"
TRAIN_FRACTION = 0.9


@dataclass(frozen=True)
class Work:
    id: str  # e.g. "hamlet"
    title: str  # e.g. "Hamlet"
    file: str  # original file name, e.g. "hamlet_gut.txt"
    bytes: int
    sha256: str
    source_url: str


def _corpus_dir():
    return resources.files("llmlab.corpora").joinpath(CORPUS)


@functools.lru_cache(maxsize=1)
def _manifest() -> dict:
    return json.loads(_corpus_dir().joinpath("manifest.json").read_text(encoding="utf-8"))


def list_works() -> list[Work]:
    """All works of the bundled corpus, in sorted file-name order (the order of the standard split)."""
    works = [Work(w["id"], w["title"], w["file"], w["bytes"], w["sha256"], w["source_url"]) for w in _manifest()["works"]]
    return sorted(works, key=lambda w: w.file)


def read_work(work_id: str) -> str:
    """The full text of one work by id (``hamlet``) or title (``Hamlet``), verified against the manifest."""
    for w in list_works():
        if work_id in (w.id, w.title, w.file):
            break
    else:
        ids = ", ".join(w.id for w in list_works())
        raise LlmlabError(f"unknown work {work_id!r}; known works: {ids}")
    return _read_verified(w.file, w.sha256)


@functools.lru_cache(maxsize=64)
def _read_verified(file: str, sha256: str) -> str:
    raw = lzma.decompress(_corpus_dir().joinpath(file + ".xz").read_bytes())
    if hashlib.sha256(raw).hexdigest() != sha256:
        raise LlmlabError(f"bundled corpus file {file} is corrupt (checksum mismatch); reinstall llmlab")
    return raw.decode("utf-8")


def corpus_text() -> str:
    """The whole corpus as one string: each work stripped and followed by a blank line, in sorted order."""
    return "".join(read_work(w.id).strip() + "\n\n" for w in list_works())


def standard_split() -> tuple[str, str]:
    """``(train, val)``: the first int(0.9 * total bytes) bytes of ``corpus_text()`` and the rest."""
    data = corpus_text().encode("utf-8")
    cut = int(TRAIN_FRACTION * len(data))
    return data[:cut].decode("utf-8"), data[cut:].decode("utf-8")


def split_documents(split: str) -> list[str]:
    """The standard split of the bundled corpus cut into works (documents): the split's text is exactly the
    concatenation of the returned strings."""
    train, val = standard_split()
    docs, pos, cut = [], 0, len(train)
    for w in list_works():
        piece = read_work(w.id).strip() + "\n\n"
        lo, hi = pos, pos + len(piece)
        pos = hi
        a, b = (lo, min(hi, cut)) if split == "train" else (max(lo, cut), hi)
        if a < b:
            docs.append(piece[a - lo : b - lo])
    text = train if split == "train" else val
    assert "".join(docs) == text  # the corpus is ASCII: character and byte offsets agree
    return docs


def write_split(out_dir: str | Path) -> dict:
    """Write ``train.txt`` and ``val.txt`` (atomically) and return a summary with their byte counts."""
    from llmlab.utils.io import write_text

    out = Path(out_dir)
    train, val = standard_split()
    write_text(out / "train.txt", train)
    write_text(out / "val.txt", val)
    return {"out": str(out), "train_bytes": len(train.encode()), "val_bytes": len(val.encode()), "works": len(list_works())}
