"""Byte-level BPE tokenizer: our own trainer, a tiktoken fast path, chat special tokens, HF export.

    from llmlab.tokenizer import Tokenizer
    tok = Tokenizer.train(text, vocab_size=4096)
    tok.encode("hello"), tok.decode([...]), tok.save(DIR), Tokenizer.load(DIR)

    llmlab tokenizer train --input bundled --vocab-size 4096 --out out/tok
    llmlab tokenizer show --tokenizer out/tok --text "To be, or not to be"

See tokenizer.py for the id layout and encoding semantics, bpe.py for the training algorithm.

Imported models bring their own tokenizer (imported.py: byte-level or SentencePiece-style BPE read from an HF
folder, hf_import.py, or a GGUF file, gguf_vocab.py). Both kinds answer the same interface; ``load_tokenizer_dir``
reads a saved tokenizer folder and returns the right kind by its format marker.
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
    "ImportedTokenizer": "llmlab.tokenizer.imported",
}
__all__ = [*_EXPORTS, "load_tokenizer_dir"]


def load_tokenizer_dir(directory):
    """The tokenizer saved in ``directory`` (or that ``tokenizer.json``): the native ``Tokenizer`` for
    ``"format": "llmlab-bpe"``, an ``ImportedTokenizer`` for ``"llmlab-imported-bpe"``."""
    from pathlib import Path

    from llmlab.errors import LlmlabError
    from llmlab.tokenizer import imported, tokenizer
    from llmlab.utils.io import read_json

    path = Path(directory)
    file = path / tokenizer.FILENAME if path.is_dir() or not path.suffix else path
    data = read_json(file, "tokenizer file")
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt == tokenizer.FORMAT:
        return tokenizer.Tokenizer.load(file)
    if fmt == imported.FORMAT:
        return imported.ImportedTokenizer.load(file)
    raise LlmlabError(f"{file}: not an llmlab tokenizer (format {fmt!r}; expected {tokenizer.FORMAT!r} or "
                      f"{imported.FORMAT!r})")


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
