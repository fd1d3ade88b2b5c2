"""Byte-level BPE tokenizer: our own trainer, a tiktoken fast path, chat special tokens, HF export.

    from llmlab.tokenizer import Tokenizer
    tok = Tokenizer.train(text, vocab_size=4096)
    tok.encode("hello"), tok.decode([...]), tok.save(DIR), Tokenizer.load(DIR)

    llmlab tokenizer train --input bundled --vocab-size 4096 --out out/tok
    llmlab tokenizer show --tokenizer out/tok --text "To be, or not to be"

See tokenizer.py for the id layout and encoding semantics, bpe.py for the training algorithm.
"""

from llmlab.tokenizer.bpe import GPT2_PATTERN, GPT4_PATTERN
from llmlab.tokenizer.tokenizer import SPECIAL_TOKENS, Tokenizer

__all__ = ["Tokenizer", "SPECIAL_TOKENS", "GPT4_PATTERN", "GPT2_PATTERN"]
