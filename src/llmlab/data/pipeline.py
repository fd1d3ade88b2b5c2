"""The data-preparation pipeline: ingest -> clean -> remove PII -> quality filters -> dedup -> sharded output.

    from llmlab.data.pipeline import PrepareConfig, prepare
    report = prepare(PrepareConfig(inputs=("bundled:shakespeare",), out="data/prepared"))

    llmlab data prepare --input corpus/ --input extra.jsonl.zst --out data/prepared
    llmlab data prepare --bundled --out data/prepared          # the bundled Shakespeare corpus

Output folder (written under a temporary name beside it and renamed into place at the end, so a failed run
leaves nothing behind and a finished one is complete):
    shard_00000.jsonl ...   one {"text": ...} per line, each shard at most ``shard_bytes`` (``--format txt``:
                            plain text, documents separated by a blank line -- boundaries are lost)
    config.json             the resolved PrepareConfig
    scan_report.json        with --drop-poison: the poisoning scanner's report (data/scan.py); the documents
                            it flags are removed (reason "poisoned")
    report.json, report.md  documents/bytes in and out, changed, removed (reason -> count),
                            pii_replaced (kind -> count), invalid UTF-8 sequences, timings (per stage,
                            summed over workers, and the wall-clock total)

``workers > 1`` (``--workers``) runs cleaning, PII and filters in a process pool over bounded windows of
documents; ingest, dedup and writing stay in the main process, so the output is identical for any number of
workers. Documents flow one at a time (dedup works on small batches), so memory stays bounded by the largest single
document plus the dedup index (~1 KB per kept document; see ``dedup.py``). Output is deterministic given the
same inputs, config and ``seed`` (the seed draws the MinHash permutations).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import shutil
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from llmlab.data.clean import clean_text
from llmlab.data.dedup import Deduplicator
from llmlab.data.filters import FilterConfig, quality_filter, remove_boilerplate_lines
from llmlab.data.ingest import Document, iter_documents
from llmlab.data.pii import scrub_pii
from llmlab.errors import LlmlabError
from llmlab.utils.config import config_to_dict
from llmlab.utils.io import write_json, write_text

REPORT_VERSION = 1


@dataclass
class PrepareConfig:
    """Everything ``llmlab data prepare`` does; written to ``OUT/config.json``."""

    inputs: tuple[str, ...] = ()  # files, folders, or "bundled:shakespeare"
    out: str = "data/prepared"
    text_field: str = "text"  # JSONL field holding the text
    column: str = "text"  # Parquet / datasets column holding the text
    format: str = "jsonl"  # "jsonl" or "txt"
    shard_bytes: int = 64 << 20
    seed: int = 0
    pii: bool = True
    exact_dedup: bool = True
    near_dedup: bool = True
    dedup_threshold: float = 0.8  # Jaccard similarity of word n-gram sets
    num_perm: int = 128
    shingle_ngram: int = 5
    filters: FilterConfig = field(default_factory=FilterConfig)
    overwrite: bool = False  # replace an existing non-empty output folder
    batch_docs: int = 256  # documents per dedup batch (vectorised MinHash)
    workers: int = 1  # processes for clean/PII/filters (dedup and writing stay in the main process)
    window_docs: int = 1024  # documents handed to the workers at a time (bounds memory)
    drop_poison: bool = False  # run the poisoning scanner first (data/scan.py) and drop the documents it flags


def prepare(cfg: PrepareConfig, progress: bool = False) -> dict:
    """Run the pipeline; return the report (also written to ``cfg.out``). Raises ``LlmlabError`` on bad input."""
    if not cfg.inputs:
        raise LlmlabError("no inputs given (use --input PATH or --bundled)")
    if cfg.format not in ("jsonl", "txt"):
        raise LlmlabError(f"unknown output format {cfg.format!r}; use jsonl or txt")
    if not 0.0 < cfg.dedup_threshold <= 1.0:
        raise LlmlabError(f"dedup threshold must be in (0, 1], got {cfg.dedup_threshold}")
    if cfg.num_perm < 2 or cfg.shingle_ngram < 1:
        raise LlmlabError(f"num_perm must be >= 2 and shingle_ngram >= 1, got {cfg.num_perm} and {cfg.shingle_ngram}")
    if cfg.workers < 1 or cfg.window_docs < 1:
        raise LlmlabError(f"workers and window_docs must be >= 1, got {cfg.workers} and {cfg.window_docs}")
    if cfg.shard_bytes < 1:
        raise LlmlabError(f"shard size must be positive, got {cfg.shard_bytes} bytes")
    out = Path(cfg.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not cfg.overwrite:
        raise LlmlabError(f"{out}: output folder exists and is not empty (pass --overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        report = _run(cfg, tmp, progress)
        write_json(tmp / "config.json", config_to_dict(cfg) | {"inputs": list(cfg.inputs)})
        write_json(tmp / "report.json", report)
        write_text(tmp / "report.md", report_markdown(report))
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished folder into place; an old one is renamed away first and deleted after."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


class ShardWriter:
    """Writes documents into ``shard_00000.<ext>``, ``shard_00001.<ext>``, ... of at most ``shard_bytes``
    each (a single document larger than that gets a shard of its own; documents are never split)."""

    def __init__(self, folder: Path, fmt: str, shard_bytes: int):
        self.folder, self.fmt, self.shard_bytes = folder, fmt, max(1, shard_bytes)
        self.shards: list[str] = []
        self._f = None
        self._size = 0

    def write(self, text: str) -> int:
        rec = (json.dumps({"text": text}, ensure_ascii=False) + "\n") if self.fmt == "jsonl" else None
        data = rec.encode("utf-8") if rec is not None else ((b"\n" if self._size else b"") + text.encode("utf-8") + b"\n")
        if self._f is None or (self._size and self._size + len(data) > self.shard_bytes):
            self._next()
            if self.fmt == "txt":
                data = text.encode("utf-8") + b"\n"
        self._f.write(data)
        self._size += len(data)
        return len(text.encode("utf-8"))

    def _next(self) -> None:
        self.close()
        name = f"shard_{len(self.shards):05d}.{self.fmt}"
        self.shards.append(name)
        self._f = open(self.folder / name, "wb")
        self._size = 0

    def close(self) -> None:
        if self._f is not None:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            self._f = None


@dataclass
class DocResult:
    text: str  # the cleaned text ("" when removed)
    reason: str | None  # removal reason, None to keep
    pii: Counter
    boilerplate_lines: int
    timings: Counter


def process_document(text: str, cfg: PrepareConfig) -> DocResult:
    """Clean, scrub and filter one document (everything but dedup, which needs the whole stream)."""
    timings: Counter = Counter()
    t = time.perf_counter()
    text = clean_text(text)
    timings["clean"] += time.perf_counter() - t
    counts: Counter = Counter()
    if cfg.pii:
        t = time.perf_counter()
        text, counts = scrub_pii(text)
        timings["pii"] += time.perf_counter() - t
    t = time.perf_counter()
    dropped = 0
    if "boilerplate_lines" not in cfg.filters.disabled:
        text, dropped = remove_boilerplate_lines(text)
    reason = "empty" if not text else quality_filter(text, cfg.filters)
    timings["filter"] += time.perf_counter() - t
    return DocResult("" if reason else text, reason, counts, dropped, timings)


@contextlib.contextmanager
def _pool(workers: int):
    """``None`` for one worker, else a process pool. "spawn" rather than fork: the parent may hold threads
    (torch, tqdm's monitor) that a forked child would inherit in a broken state."""
    if workers <= 1:
        yield None
        return
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield pool


def _run(cfg: PrepareConfig, folder: Path, progress: bool) -> dict:
    from tqdm import tqdm

    t0 = time.perf_counter()
    timings: Counter = Counter()
    removed: Counter = Counter()
    pii: Counter = Counter()
    n = Counter()  # documents_in, bytes_in, ...
    dedup = Deduplicator(cfg.dedup_threshold, cfg.num_perm, cfg.shingle_ngram, cfg.seed,
                         exact=cfg.exact_dedup, near=cfg.near_dedup)
    writer = ShardWriter(folder, cfg.format, cfg.shard_bytes)
    batch: list[tuple[str, bool]] = []  # (text, changed) waiting for dedup

    def flush() -> None:
        t = time.perf_counter()
        reasons = dedup.process([text for text, _ in batch])
        timings["dedup"] += time.perf_counter() - t
        t = time.perf_counter()
        for (text, changed), reason in zip(batch, reasons):
            if reason:
                removed[reason] += 1
                continue
            n["bytes_out"] += writer.write(text)
            n["documents_out"] += 1
            n["documents_changed"] += changed
        timings["write"] += time.perf_counter() - t
        batch.clear()

    poisoned: set[str] = set()
    if cfg.drop_poison:
        from llmlab.data.scan import ScanConfig, flagged_sources, scan

        t = time.perf_counter()
        scan_report = scan(ScanConfig(inputs=cfg.inputs, text_field=cfg.text_field, column=cfg.column))
        poisoned = flagged_sources(scan_report)
        write_json(folder / "scan_report.json", scan_report)
        timings["scan"] += time.perf_counter() - t

    def handle(doc: Document, res: DocResult) -> None:
        n["documents_in"] += 1
        n["bytes_in"] += doc.nbytes
        n["invalid_utf8"] += doc.invalid_utf8
        if doc.source in poisoned:
            removed["poisoned"] += 1
            bar.update(doc.nbytes)
            return
        n["boilerplate_lines_removed"] += res.boilerplate_lines
        pii.update(res.pii)
        timings.update(res.timings)
        bar.update(doc.nbytes)
        if not bar.disable:  # tqdm redraws at most every mininterval; this only updates the text
            rate = n["documents_in"] / max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix_str(f"{n['documents_in']} docs, {rate:.1f} docs/s", refresh=False)
        if res.reason:
            removed[res.reason] += 1
            return
        batch.append((res.text, res.text != doc.text))
        if len(batch) >= cfg.batch_docs:
            flush()

    bar = tqdm(total=None, unit="B", unit_scale=True, desc="prepare", file=sys.stderr, disable=not progress,
               mininterval=0.5)
    docs = iter_documents(list(cfg.inputs), text_field=cfg.text_field, column=cfg.column)
    with contextlib.closing(bar), _pool(cfg.workers) as pool:
        while True:
            # Take a bounded window of documents (ingest always runs here, so its errors and their order are
            # those of a single process), process it, handle results in input order: deterministic output and
            # bounded memory for any number of workers.
            t = time.perf_counter()
            window = list(itertools.islice(docs, cfg.window_docs if pool else 1))
            timings["ingest"] += time.perf_counter() - t
            if not window:
                break
            texts = [d.text for d in window]
            if pool:
                results = pool.map(functools.partial(process_document, cfg=cfg), texts,
                                   chunksize=max(1, len(texts) // (4 * cfg.workers)))
            else:
                results = [process_document(x, cfg) for x in texts]
            for doc, res in zip(window, results):
                handle(doc, res)
        if batch:
            flush()
    writer.close()
    if n["documents_in"] == 0:
        raise LlmlabError(f"empty corpus: no documents found in {', '.join(map(str, cfg.inputs))}")
    total = time.perf_counter() - t0
    return {
        "format": "llmlab-data-report",
        "version": REPORT_VERSION,
        "inputs": list(cfg.inputs),
        "documents_in": n["documents_in"],
        "documents_out": n["documents_out"],
        "bytes_in": n["bytes_in"],
        "bytes_out": n["bytes_out"],
        "documents_changed": n["documents_changed"],
        "removed": dict(sorted(removed.items())),
        "pii_replaced": dict(sorted(pii.items())),
        "invalid_utf8": n["invalid_utf8"],
        "boilerplate_lines_removed": n["boilerplate_lines_removed"],
        "shards": writer.shards,
        "timings_s": {k: round(v, 3) for k, v in sorted(timings.items())} | {"total": round(total, 3)},
        "docs_per_s": round(n["documents_in"] / max(total, 1e-9), 1),
    }


def report_markdown(r: dict) -> str:
    """A human-readable version of ``report.json``."""
    lines = [
        "# Data preparation report",
        "",
        f"Inputs: {', '.join(f'`{i}`' for i in r['inputs'])}",
        "",
        "| | documents | bytes |",
        "|---|---:|---:|",
        f"| in | {r['documents_in']} | {r['bytes_in']} |",
        f"| out | {r['documents_out']} | {r['bytes_out']} |",
        "",
        f"- documents changed by cleaning/PII/boilerplate removal (among those kept): {r['documents_changed']}",
        f"- invalid UTF-8 sequences replaced: {r['invalid_utf8']}",
        f"- boilerplate lines removed: {r['boilerplate_lines_removed']}",
        f"- shards: {len(r['shards'])}",
        "",
        "## Removed documents",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in r["removed"].items()] or ["- none"]
    lines += ["", "## Sensitive information replaced", ""]
    lines += [f"- {k}: {v}" for k, v in r["pii_replaced"].items()] or ["- none"]
    lines += ["", "## Timings (seconds)", ""]
    lines += [f"- {k}: {v}" for k, v in r["timings_s"].items()]
    lines += ["", f"{r['docs_per_s']} documents/s", ""]
    return "\n".join(lines)


def summary_line(r: dict) -> str:
    removed = sum(r["removed"].values())
    pii = sum(r["pii_replaced"].values())
    return (f"prepared {r['documents_out']}/{r['documents_in']} documents ({r['bytes_out']}/{r['bytes_in']} bytes), "
            f"removed {removed}, {pii} PII replaced, {len(r['shards'])} shard(s) in {r['timings_s']['total']}s")
