"""Byte-level BPE tokenizer: our own trainer, a tiktoken fast path, chat special tokens, HF export.

    from llmlab.tokenizer import Tokenizer
    tok = Tokenizer.train(text, vocab_size=4096)
    tok.encode("hello"), tok.decode([...]), tok.save(DIR), Tokenizer.load(DIR)

    llmlab tokenizer train --input bundled --vocab-size 4096 --out out/tok
    llmlab tokenizer show --tokenizer out/tok --text "To be, or not to be"

See tokenizer.py for the id layout and encoding semantics, bpe.py for the training algorithm.
"""

from __future__ import annotations

import importlib

# Resolved on first access (PEP 562) so that `llmlab --help`, which imports llmlab.tokenizer.cli, does not
# pay for the regex module.
_EXPORTS = {
    "Tokenizer": "llmlab.tokenizer.tokenizer",
    "SPECIAL_TOKENS": "llmlab.tokenizer.tokenizer",
    "GPT4_PATTERN": "llmlab.tokenizer.bpe",
    "GPT2_PATTERN": "llmlab.tokenizer.bpe",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
