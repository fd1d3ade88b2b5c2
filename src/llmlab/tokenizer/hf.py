"""Hugging Face export: our tokenizer as a ``tokenizer.json`` that ``tokenizers`` and ``transformers`` load.

    tok.export_hf("out/hf")          # writes out/hf/tokenizer.json
    import tokenizers; tokenizers.Tokenizer.from_file("out/hf/tokenizer.json").encode(text).ids == tok.encode(text)

HF byte-level BPE stores tokens as strings, not bytes: each byte maps to one printable character (GPT-2's
table: printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100 onwards, in byte order). The
pre-tokenizer is our regex (``Split``, isolated) followed by that byte mapping; the model is BPE with our
merges in order; the special tokens are added tokens at their ids. The GGUF exporter needs the same strings:
``hf_tokens_and_merges(tok)``.

HF recognises added tokens wherever their names occur in the text, so HF's ids equal
``tok.encode(text, allowed_special="all")``; for text without special-token names the two modes agree.

``add_bos=True`` adds a ``TemplateProcessing`` post-processor that puts ``<|bos|>`` in front when HF encodes
with special tokens (``tokenizer(text)``), as Llama tokenizers do and as ``llmlab generate`` does; the model
export (``export/hf.py``) uses it so the same prompt text gives the same ids in transformers and in llmlab.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path


@functools.lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table used by every HF byte-level tokenizer."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def bytes_to_hf(data: bytes) -> str:
    table = byte_to_unicode()
    return "".join(table[b] for b in data)


def hf_tokens_and_merges(tok) -> tuple[list[str], list[tuple[str, str]]]:
    """(token strings in id order including the specials, merges as (left, right) byte-level strings)."""
    n = tok.vocab_size - len(tok.special_tokens)
    tokens = [bytes_to_hf(tok.token_bytes(i)) for i in range(n)]
    tokens += sorted(tok.special_tokens, key=tok.special_tokens.get)
    merges = [(tokens[a], tokens[b]) for a, b in tok.merges]
    return tokens, merges


def hf_tokenizer_dict(tok, add_bos: bool = False) -> dict:
    tokens, merges = hf_tokens_and_merges(tok)
    bos = "<|bos|>"
    post = None
    if add_bos:
        post = {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {bos: {"id": bos, "ids": [tok.bos_id], "tokens": [bos]}}}
    n_ordinary = tok.vocab_size - len(tok.special_tokens)
    added = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for s, i in tok.special_tokens.items()]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": tok.pattern}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
            ],
        },
        "post_processor": post,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": {s: i for i, s in enumerate(tokens[:n_ordinary])},
            "merges": [[a, b] for a, b in merges],
        },
    }


def export_hf(tok, path: str | os.PathLike, add_bos: bool = False) -> Path:
    """Write the HF ``tokenizer.json`` (atomically) to ``path`` (a ``.json`` file, or a folder); ``add_bos``:
    HF puts ``<|bos|>`` in front when it encodes with special tokens."""
    from llmlab.utils.io import atomic_write

    path = Path(path)
    if path.suffix != ".json":
        path = path / "tokenizer.json"
    with atomic_write(path, "w") as f:
        json.dump(hf_tokenizer_dict(tok, add_bos=add_bos), f, ensure_ascii=False)
    return path
