"""``model.bin``: the seeds' "parameter file" -- one versioned binary that ``llmlab/standalone/run.py`` runs.

    llmlab export bin --model runs/sft --out model.bin
    python src/llmlab/standalone/run.py model.bin --prompt "To be" --max-new-tokens 50 --temperature 0.8

Layout (little-endian)::

    magic    4 bytes  b"LLMB"
    version  uint32   1
    hlen     uint64   length of the JSON header
    header   hlen bytes of UTF-8 JSON: config, tokenizer, tensor table
    padding  zeros up to a multiple of 64 bytes; offsets below count from here (the data start)
    data     the merges as int32 pairs, then every tensor as fp32, each 64-byte aligned

The header's ``tokenizer`` holds everything a numpy-only program needs to tokenize exactly as we do, with no
``regex`` module: the special tokens, the split pattern (for reference; ``split`` names the one run.py
implements, GPT-4's), and ``char_classes`` -- the code point ranges of ``\\p{L}``, ``\\p{N}`` and ``\\s`` as
the ``regex`` module defines them here. Python's ``unicodedata`` lags behind (Unicode 14 in Python 3.11 vs the
``regex`` module's newer tables), so run.py reads these ranges instead of guessing from ``unicodedata``.
Tensors keep our (HF Llama) names and shapes; 64-byte alignment lets run.py map them without copying.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from llmlab.errors import LlmlabError

MAGIC = b"LLMB"
VERSION = 1
ALIGN = 64


def char_class_ranges() -> dict[str, list[list[int]]]:
    """Inclusive ``[first, last]`` code point ranges of ``\\p{L}``, ``\\p{N}`` and ``\\s`` per the regex module."""
    import regex

    # One string of every code point (surrogates stand in as U+FFFD, which is in none of the classes), scanned
    # with each class: the runs found are exactly the ranges. ~0.2 s, versus ~3 s for 1.1M single matches.
    everything = "".join(chr(c) if not 0xD800 <= c < 0xE000 else "\ufffd" for c in range(0x110000))
    out = {}
    for name, pat in (("L", r"\p{L}+"), ("N", r"\p{N}+"), ("S", r"\s+")):
        out[name] = [[m.start(), m.end() - 1] for m in regex.finditer(pat, everything)]
    return out


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def export_bin(run_dir: str | Path, out_file: str | Path) -> Path:
    """Write the run's model and tokenizer as one ``model.bin``; returns its path."""
    import numpy as np

    from llmlab.runs import load_run, model_state_dict
    from llmlab.tokenizer.bpe import GPT4_PATTERN
    from llmlab.utils.config import config_to_dict
    from llmlab.utils.io import atomic_write

    model, tok = load_run(run_dir)
    if tok.pattern != GPT4_PATTERN:
        raise LlmlabError(f"{run_dir}: the tokenizer splits with a custom pattern; standalone run.py implements "
                          f"GPT-4's split only (train the tokenizer with the default pattern)")
    cfg = {k: v for k, v in config_to_dict(model.config).items() if k not in ("extra", "init_std")}
    blobs: list[tuple[str, np.ndarray]] = [("merges", np.asarray(tok.merges, dtype="<i4").reshape(-1, 2))]
    for name, t in model_state_dict(model).items():
        blobs.append((name, t.float().numpy().astype("<f4", copy=False)))
    table, offset = [], 0
    for name, arr in blobs:
        table.append({"name": name, "dtype": "int32" if name == "merges" else "float32",
                      "shape": list(arr.shape), "offset": offset})
        offset = _align(offset + arr.nbytes)
    header = {
        "format": "llmlab-model-bin",
        "config": cfg,
        "tokenizer": {"split": "gpt4", "pattern": tok.pattern, "special_tokens": tok.special_tokens,
                      "bos": "<|bos|>", "stop": ["<|end|>", "<|endoftext|>"], "char_classes": char_class_ranges()},
        "tensors": table,
    }
    head = json.dumps(header, ensure_ascii=False).encode("utf-8")
    prefix = MAGIC + struct.pack("<IQ", VERSION, len(head)) + head
    with atomic_write(out_file, "wb") as f:
        f.write(prefix + b"\0" * (_align(len(prefix)) - len(prefix)))
        pos = 0
        for (name, arr), entry in zip(blobs, table):
            f.write(b"\0" * (entry["offset"] - pos))
            f.write(np.ascontiguousarray(arr).tobytes())
            pos = entry["offset"] + arr.nbytes
    return Path(out_file)
