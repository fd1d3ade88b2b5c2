"""Pretraining data: text -> token ids cached as memmap shards -> deterministic, resumable batches.

    from llmlab.train.data import tokenize_to_shards, TokenBatches
    shards = tokenize_to_shards("data/train/", tokenizer, cache_dir="runs/x/data_cache/train")
    batches = TokenBatches(shards, batch_size=16, seq_len=256, bos_id=tokenizer.bos_id, seed=1337)
    batch = batches.next_batch()    # {"input_ids": (16, 256) int64, "targets": (16, 256) int64}

Sources: anything ``llmlab data prepare`` reads (``llmlab.data.ingest.iter_texts``: text, .gz/.zst, JSONL,
Parquet, ``datasets`` folders, a folder ``data prepare`` wrote), or ``bundled`` (the bundled corpus's standard
train split, one document per work; ``bundled:val`` for the validation split). Every document is encoded
with one ``<|bos|>`` in front of it and appended to a token stream, stored as ``.npy`` shards of
uint16 (vocabularies up to 65,536) or uint32, written atomically into a cache folder keyed by the source files
and the tokenizer, so a resumed run or a second run reuses them.

Batches: ``random`` windows (default) or ``sequential`` packing of consecutive windows (epochs wrap). With
``bos_windows`` (default) each row is ``<|bos|>`` followed by seq_len-1 stream tokens, exactly the form in
which bits per byte scores text (each window starts with BOS), so training and evaluation see the same kind
of context. Batch number ``i`` depends only on (seed, i): the state is one counter, and under DDP rank r of
world w draws the global batches ``i * w + r``, so two ranks see exactly what one process with 2x gradient
accumulation sees.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from llmlab.data.ingest import iter_texts, source_files
from llmlab.errors import LlmlabError
from llmlab.utils.io import atomic_path, read_json, write_json

SHARD_TOKENS = 1 << 27  # 128M tokens per shard (256 MB as uint16)
CACHE_VERSION = 1


# ----------------------------------------------------------------------------------------------------------
# Token shards


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of the tokenizer's vocabulary (bytes of every ordinary token plus the special tokens)."""
    h = hashlib.sha256()
    specials = tokenizer.special_tokens
    special_ids = set(specials.values())
    for i in range(tokenizer.vocab_size):
        if i not in special_ids:
            h.update(len(tokenizer.token_bytes(i)).to_bytes(4, "little") + tokenizer.token_bytes(i))
    h.update(json.dumps(sorted(specials.items())).encode())
    return h.hexdigest()[:16]


def _source_key(source: str | Path, fingerprint: str) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}|{fingerprint}|{source}".encode())
    if not str(source).startswith("bundled"):
        for p in source_files(source):
            st = p.stat()
            h.update(f"|{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def tokenize_to_shards(source: str | Path, tokenizer, cache_dir: str | Path, *, batch_docs: int = 256) -> list[np.ndarray]:
    """Encode a source into ``cache_dir/shard_NNNN.npy`` (reusing them if ``meta.json`` matches) and return the
    shards as read-only memmaps. Long documents are encoded in ~4 MB pieces cut at newlines."""
    cache = Path(cache_dir)
    key = _source_key(source, tokenizer_fingerprint(tokenizer))
    meta_path = cache / "meta.json"
    if meta_path.is_file():
        meta = read_json(meta_path, "token cache metadata")
        if meta.get("key") == key:
            return [np.load(cache / name, mmap_mode="r") for name in meta["shards"]]
    dtype = np.uint16 if tokenizer.vocab_size <= 65536 else np.uint32
    bos = tokenizer.bos_id
    shards, pending, pending_len = [], [], 0
    n_docs = n_bytes = n_tokens = 0

    def flush(final: bool):
        nonlocal pending, pending_len
        while pending_len >= SHARD_TOKENS or (final and pending_len):
            stream = np.concatenate(pending)
            take = min(SHARD_TOKENS, len(stream))
            name = f"shard_{len(shards):04d}.npy"
            with atomic_path(cache / name) as tmp:
                np.save(tmp, stream[:take])
            shards.append(name)
            pending, pending_len = [stream[take:]], len(stream) - take

    def encode_docs(docs: list[str]):
        nonlocal n_tokens, pending_len
        pieces = [_pieces(d) for d in docs]
        ids = iter(tokenizer.encode_batch([p for ps in pieces for p in ps]))  # one parallel call per batch
        for ps in pieces:
            arrs = [np.array([bos], dtype=dtype)] + [np.asarray(next(ids), dtype=dtype) for _ in ps]
            pending.extend(arrs)
            n = sum(len(a) for a in arrs)
            pending_len += n
            n_tokens += n
        if pending_len >= SHARD_TOKENS:
            flush(False)

    batch: list[str] = []
    for doc in iter_texts(source):
        n_docs += 1
        n_bytes += len(doc.encode("utf-8"))
        batch.append(doc)
        if len(batch) >= batch_docs:
            encode_docs(batch)
            batch = []
    if batch:
        encode_docs(batch)
    flush(True)
    if n_tokens == 0:
        raise LlmlabError(f"{source}: no text")
    write_json(meta_path, {"key": key, "source": str(source), "documents": n_docs, "bytes": n_bytes,
                           "tokens": n_tokens, "dtype": np.dtype(dtype).name, "shards": shards,
                           "vocab_size": tokenizer.vocab_size})
    return [np.load(cache / name, mmap_mode="r") for name in shards]


def _pieces(doc: str, size: int = 4 << 20) -> list[str]:
    """Cut a long document at newlines into pieces of about ``size`` characters (short ones stay whole)."""
    if len(doc) <= size:
        return [doc]
    out, start = [], 0
    while start < len(doc):
        end = doc.find("\n", start + size)
        end = len(doc) if end < 0 else end + 1
        out.append(doc[start:end])
        start = end
    return out


# ----------------------------------------------------------------------------------------------------------
# Batches


@dataclass
class _Layout:
    shards: list[np.ndarray]
    counts: np.ndarray  # usable window starts (random) or windows (sequential) per shard
    cum: np.ndarray  # cumulative counts, for mapping a global index to (shard, local index)


class TokenBatches:
    """A resumable batch source over token shards (see the module docstring)."""

    def __init__(self, shards: list[np.ndarray], batch_size: int, seq_len: int, bos_id: int, *, seed: int = 0,
                 rank: int = 0, world_size: int = 1, sampling: str = "random", bos_windows: bool = True,
                 source: str = "data"):
        if sampling not in ("random", "sequential"):
            raise LlmlabError(f"unknown sampling {sampling!r} (choose random or sequential)")
        self.B, self.T, self.bos = batch_size, seq_len, bos_id
        self.seed, self.rank, self.world = seed, rank, world_size
        self.sampling, self.bos_windows = sampling, bos_windows
        # Stream tokens one row needs: T targets (+1 for the first input when rows don't start with BOS).
        self.need = seq_len if bos_windows else seq_len + 1
        total = sum(len(s) for s in shards)
        usable = [s for s in shards if len(s) >= self.need]
        if not usable:
            raise LlmlabError(
                f"{source}: {total} tokens is too little for one batch row of seq_len {seq_len} "
                f"(needs {self.need}); use more data or a smaller --seq-len")
        if sampling == "random":
            counts = np.array([len(s) - self.need + 1 for s in usable], dtype=np.int64)
        else:
            counts = np.array([(len(s) - self.need) // seq_len + 1 for s in usable], dtype=np.int64)
        self.layout = _Layout(usable, counts, np.cumsum(counts))
        self.counter = 0  # batches drawn by this rank

    def _starts(self, i: int) -> list[tuple[int, int]]:
        """(shard, offset) of each row of global batch i."""
        lay = self.layout
        total = int(lay.cum[-1])
        if self.sampling == "random":
            idx = np.random.default_rng([self.seed, i]).integers(0, total, size=self.B)
        else:
            idx = (np.arange(self.B, dtype=np.int64) + i * self.B) % total
        shard = np.searchsorted(lay.cum, idx, side="right")
        local = idx - np.concatenate([[0], lay.cum[:-1]])[shard]
        if self.sampling == "sequential":
            local = local * self.T
        return list(zip(shard.tolist(), local.tolist()))

    def next_batch(self) -> dict[str, torch.Tensor]:
        i = self.counter * self.world + self.rank
        self.counter += 1
        rows = np.stack([np.asarray(self.layout.shards[s][o : o + self.need], dtype=np.int64) for s, o in self._starts(i)])
        rows = torch.from_numpy(rows)  # (B, need)
        if self.bos_windows:
            inputs = torch.cat([torch.full((self.B, 1), self.bos, dtype=torch.int64), rows[:, :-1]], dim=1)
            targets = rows  # (B, T): position t predicts stream token t given BOS + tokens < t
        else:
            inputs, targets = rows[:, :-1], rows[:, 1:]
        return {"input_ids": inputs.contiguous(), "targets": targets.contiguous()}

    def state_dict(self) -> dict:
        return {"counter": self.counter, "seed": self.seed, "sampling": self.sampling, "batch_size": self.B,
                "seq_len": self.T}

    def load_state_dict(self, state: dict) -> None:
        mine = self.state_dict()
        for k in ("seed", "sampling", "batch_size", "seq_len"):
            if state.get(k, mine[k]) != mine[k]:
                raise LlmlabError(f"cannot resume: the checkpoint's data {k} was {state[k]!r}, now {mine[k]!r}")
        self.counter = int(state["counter"])
