"""The ``Tokenizer``: byte-level BPE with chat special tokens, a tiktoken fast path and a reference encoder.

    from llmlab.tokenizer import Tokenizer
    tok = Tokenizer.train(text, vocab_size=4096)      # or an iterable of texts
    ids = tok.encode("To be, or not to be")           # never yields a special id from user text
    tok.decode(ids)                                   # 'To be, or not to be'
    tok.save("out/tok"); tok = Tokenizer.load("out/tok")
    tok.encode("<|bos|>hi<|end|>", allowed_special="all")   # special tokens recognised only when allowed

    llmlab tokenizer train --input bundled --vocab-size 4096 --out out/tok

Id layout (docs/DESIGN.md, "Special tokens"): ids 0..255 are the single bytes, merge ``i`` makes id
``256 + i``, and the special tokens take the last ids, in ``SPECIAL_TOKENS`` order. ``vocab_size`` counts all.

Encoding semantics: split the text with the pattern, then apply the merges to each chunk in merge order (the
lowest-ranked adjacent pair first, all its occurrences left to right). ``encode_reference`` does exactly that
in pure Python; ``encode`` runs tiktoken built from the same ranks (token bytes -> id). tiktoken merges by the
rank of the *concatenated bytes*; for merges our trainer produces, that is the same thing: every token's bytes
encode to that token on their own, so two different adjacent tokens whose bytes join into a token never occur
in an encoding, and no two tokens share bytes. ``verify_fast_path`` and the tests check the equality.

Lone surrogates (``"\\udc80"``, e.g. from ``bytes.decode(errors="surrogateescape")``) have no UTF-8 form; both
encoders replace them with U+FFFD first (tiktoken's own rule). Every other string round-trips exactly:
``decode(encode(s)) == s``; ``decode_bytes`` returns the raw bytes, ``decode`` uses ``errors="replace"``.
"""

from __future__ import annotations

import json
import operator
import os
import time
from pathlib import Path
from typing import Iterable, Sequence

import regex

from llmlab.errors import LlmlabError
from llmlab.tokenizer.bpe import GPT4_PATTERN, clean_surrogates, count_chunks, resolve_pattern, train_merges

SPECIAL_TOKENS = (
    "<|bos|>", "<|endoftext|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>",
    "<|tool_call|>", "<|/tool_call|>", "<|tool_result|>", "<|/tool_result|>", "<|think|>", "<|/think|>",
    "<|reserved_0|>", "<|reserved_1|>", "<|reserved_2|>",
)  # fmt: skip
FORMAT = "llmlab-bpe"
VERSION = 1
FILENAME = "tokenizer.json"


class Tokenizer:
    """Byte-level BPE tokenizer. Build with ``Tokenizer.train`` or ``Tokenizer.load``."""

    def __init__(self, merges: Sequence[tuple[int, int]], pattern: str = GPT4_PATTERN,
                 special_tokens: Sequence[str] = SPECIAL_TOKENS):
        self.pattern = resolve_pattern(pattern)
        self.merges: list[tuple[int, int]] = [(int(a), int(b)) for a, b in merges]
        vocab = [bytes([i]) for i in range(256)]
        self._ranks: dict[tuple[int, int], int] = {}
        for i, (a, b) in enumerate(self.merges):
            new_id = 256 + i
            if not (0 <= a < new_id and 0 <= b < new_id):
                raise LlmlabError(f"merge {i} ({a}, {b}) refers to a token that does not exist yet")
            if (a, b) in self._ranks:
                raise LlmlabError(f"merge {i} ({a}, {b}) is a duplicate")
            self._ranks[(a, b)] = new_id
            vocab.append(vocab[a] + vocab[b])
        self._vocab = vocab  # id -> bytes, ordinary tokens only
        n = len(vocab)
        if len(set(special_tokens)) != len(special_tokens):
            raise LlmlabError("special tokens must be distinct")
        self.special_tokens: dict[str, int] = {s: n + i for i, s in enumerate(special_tokens)}
        self._special_by_id = {i: s for s, i in self.special_tokens.items()}
        self._compiled = regex.compile(self.pattern)
        self._tiktoken = None  # built on first use: ~0.1 s for a 16k vocabulary

    # ------------------------------------------------------------------ construction
    @classmethod
    def train(cls, texts: str | Iterable[str], vocab_size: int, pattern: str = GPT4_PATTERN,
              special_tokens: Sequence[str] = SPECIAL_TOKENS, verbose: bool = False) -> "Tokenizer":
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``texts`` (a str or an iterable of str)."""
        pattern = resolve_pattern(pattern)
        floor = 256 + len(special_tokens)
        try:
            vocab_size = operator.index(vocab_size)  # int, numpy int; not 4096.0
        except TypeError:
            raise LlmlabError(f"vocab size must be an integer, got {vocab_size!r}") from None
        if vocab_size < floor:
            raise LlmlabError(f"vocab size must be at least 256 bytes + {len(special_tokens)} special tokens = "
                              f"{floor}, got {vocab_size}")
        t0 = time.perf_counter()
        counts = count_chunks(texts, pattern)
        if not counts:
            raise LlmlabError("the training text is empty")
        t1 = time.perf_counter()
        merges = train_merges(counts, vocab_size - floor)
        if verbose:
            print(f"tokenizer: {len(counts)} unique chunks in {t1 - t0:.2f}s, "
                  f"{len(merges)} merges in {time.perf_counter() - t1:.2f}s")
        return cls(merges, pattern, special_tokens)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Tokenizer":
        """Load ``DIR/tokenizer.json`` written by ``save``."""
        from llmlab.utils.io import read_json

        path = Path(directory)
        if path.is_dir() or not path.suffix:
            path = path / FILENAME
        data = read_json(path, "tokenizer file")
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise LlmlabError(f"{path}: not an llmlab tokenizer (expected \"format\": \"{FORMAT}\")")
        if data.get("version") != VERSION:
            raise LlmlabError(f"{path}: tokenizer format version {data.get('version')} is not supported "
                              f"(this llmlab reads version {VERSION})")
        try:
            merges = [(a, b) for a, b in data["merges"]]
            specials = sorted(data["special_tokens"].items(), key=lambda kv: kv[1])
            tok = cls(merges, data["pattern"], [s for s, _ in specials])
        except (KeyError, TypeError, ValueError) as e:
            raise LlmlabError(f"{path}: malformed tokenizer file ({type(e).__name__}: {e})") from None
        if tok.special_tokens != data["special_tokens"]:
            raise LlmlabError(f"{path}: special token ids must be the last ids, consecutive after the merges")
        if data.get("vocab_size", tok.vocab_size) != tok.vocab_size:
            raise LlmlabError(f"{path}: \"vocab_size\" is {data['vocab_size']} but the merges and special tokens "
                              f"make {tok.vocab_size}")
        return tok

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``DIR/tokenizer.json`` (atomically): format, version, pattern, merges, special tokens."""
        from llmlab.utils.io import atomic_write

        path = Path(directory) / FILENAME
        head = {"format": FORMAT, "version": VERSION, "pattern": self.pattern, "vocab_size": self.vocab_size,
                "special_tokens": self.special_tokens}
        # One merge per line keeps the file readable and diffable; each line shows the merged bytes too.
        body = json.dumps(head, ensure_ascii=False, indent=1)[:-2]
        lines = [f"[{a}, {b}]" for a, b in self.merges]
        with atomic_write(path, "w") as f:
            f.write(body + ',\n "merges": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n")
        return path

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocab_size(self) -> int:
        return len(self._vocab) + len(self.special_tokens)

    @property
    def bos_id(self) -> int:
        return self.special_tokens["<|bos|>"]

    @property
    def eot_id(self) -> int:
        return self.special_tokens["<|endoftext|>"]

    @property
    def end_id(self) -> int:
        return self.special_tokens["<|end|>"]

    @property
    def pad_id(self) -> int:
        return self.special_tokens["<|pad|>"]

    # What the inference edge and the chat template ask every tokenizer (``ImportedTokenizer`` answers the
    # same): the add-BOS rule, the end-of-sequence ids, the ids that end a generation, and the model's own
    # chat template (None: llmlab's native template, chat/template.py).
    kind = "native"
    add_bos = True  # every document and conversation starts with <|bos|>
    add_eos = False
    chat_template = None

    @property
    def eos_ids(self) -> tuple[int, ...]:
        return (self.end_id, self.eot_id)

    @property
    def stop_ids(self) -> tuple[int, ...]:
        """Ids that end a generation: ``<|end|>`` (a chat turn), ``<|endoftext|>``, and ``<|bos|>`` (a base
        model that starts a new document has finished the current one)."""
        return (self.end_id, self.eot_id, self.bos_id)

    def special_id(self, name: str) -> int:
        """Id of a special token, by full name (``<|user|>``) or bare name (``user``)."""
        key = name if name.startswith("<|") else f"<|{name}|>"
        try:
            return self.special_tokens[key]
        except KeyError:
            raise LlmlabError(f"unknown special token {name!r}; known: {', '.join(self.special_tokens)}") from None

    def is_special(self, token_id: int) -> bool:
        return token_id in self._special_by_id

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes of one token; a special token gives its UTF-8 name."""
        if 0 <= token_id < len(self._vocab):
            return self._vocab[token_id]
        if token_id in self._special_by_id:
            return self._special_by_id[token_id].encode("utf-8")
        raise LlmlabError(f"token id {token_id} is out of range (vocab size {self.vocab_size})")

    # ------------------------------------------------------------------ encoding
    def _allowed(self, allowed_special) -> set[str]:
        if allowed_special == "all":
            return set(self.special_tokens)
        if allowed_special in (None, "none"):
            return set()
        allowed = set(allowed_special)
        unknown = allowed - set(self.special_tokens)
        if unknown:
            raise LlmlabError(f"unknown special tokens in allowed_special: {sorted(unknown)}")
        return allowed

    @property
    def tiktoken_encoding(self):
        """A ``tiktoken.Encoding`` with our ranks (token bytes -> id) and special tokens; built once."""
        if self._tiktoken is None:
            import tiktoken

            ranks = {b: i for i, b in enumerate(self._vocab)}
            if len(ranks) != len(self._vocab):
                raise LlmlabError("two tokens have the same bytes; these merges cannot use the tiktoken fast path")
            try:
                self._tiktoken = tiktoken.Encoding(name=f"llmlab-bpe-{self.vocab_size}", pat_str=self.pattern,
                                                   mergeable_ranks=ranks, special_tokens=dict(self.special_tokens))
            except ValueError as e:
                # tiktoken's regex engine (Rust fancy-regex) lacks some `regex` module syntax (\X, \m, (?V1)).
                raise LlmlabError(f"the split pattern is not supported by tiktoken's regex engine ({e}); "
                                  "use Tokenizer.encode_reference (slow) or a pattern without that syntax") from None
        return self._tiktoken

    def encode(self, text: str, allowed_special: str | Iterable[str] = ()) -> list[int]:
        """Token ids of ``text``. Special-token names in the text are ordinary bytes unless listed in
        ``allowed_special`` (or ``allowed_special="all"``)."""
        allowed = self._allowed(allowed_special)
        enc = self.tiktoken_encoding
        if not allowed:
            return enc.encode_ordinary(text)
        return enc.encode(text, allowed_special=allowed, disallowed_special=())

    def encode_batch(self, texts: Sequence[str], allowed_special: str | Iterable[str] = (),
                     num_threads: int | None = None) -> list[list[int]]:
        """``[encode(t) for t in texts]`` on a thread pool (tiktoken releases the GIL while it encodes)."""
        allowed = self._allowed(allowed_special)
        enc = self.tiktoken_encoding
        threads = num_threads or os.cpu_count() or 1
        if not allowed:
            return enc.encode_ordinary_batch(list(texts), num_threads=threads)
        return enc.encode_batch(list(texts), num_threads=threads, allowed_special=allowed, disallowed_special=())

    def encode_reference(self, text: str, allowed_special: str | Iterable[str] = ()) -> list[int]:
        """The pure-Python encoder that defines the semantics ``encode`` must match (slow; for tests)."""
        allowed = self._allowed(allowed_special)
        text = clean_surrogates(text)
        ids: list[int] = []
        if allowed:
            # Longest names first so that no name shadows a longer one that starts with it.
            names = sorted(allowed, key=len, reverse=True)
            parts = regex.split("(" + "|".join(regex.escape(s) for s in names) + ")", text)
        else:
            parts = [text]
        for i, part in enumerate(parts):
            if i % 2 == 1:  # a captured special-token name
                ids.append(self.special_tokens[part])
                continue
            for chunk in self._compiled.findall(part):
                ids.extend(self._merge_chunk(chunk.encode("utf-8")))
        return ids

    def _merge_chunk(self, data: bytes) -> list[int]:
        ids = list(data)
        ranks = self._ranks
        while len(ids) >= 2:
            # The adjacent pair that was merged earliest in training goes first.
            best = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, 1 << 62))
            new_id = ranks.get(best)
            if new_id is None:
                break
            a, b = best
            out, i = [], 0
            while i < len(ids):
                if i + 1 < len(ids) and ids[i] == a and ids[i + 1] == b:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            ids = out
        return ids

    def verify_fast_path(self, texts: Iterable[str]) -> None:
        """Raise ``LlmlabError`` if tiktoken and the reference encoder disagree on any of ``texts``."""
        for t in texts:
            fast, ref = self.encode(t, allowed_special="all"), self.encode_reference(t, allowed_special="all")
            if fast != ref:
                raise LlmlabError(f"tiktoken and reference encodings differ on {t[:60]!r}")

    # ------------------------------------------------------------------ decoding
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The exact bytes of ``ids`` (special tokens as their UTF-8 names)."""
        vocab, n = self._vocab, len(self._vocab)
        if hasattr(ids, "tolist"):  # numpy arrays and torch tensors: plain ints are much faster to index with
            ids = ids.tolist()
        try:
            return b"".join(vocab[i] if 0 <= i < n else self.token_bytes(i) for i in ids)
        except TypeError:
            raise LlmlabError("token ids must be integers") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; byte sequences that are not valid UTF-8 become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    # ------------------------------------------------------------------ export
    def hf_tokens_and_merges(self) -> tuple[list[str], list[tuple[str, str]]]:
        """Vocabulary as HF byte-level strings (id order, specials last) and merges as string pairs (for GGUF)."""
        from llmlab.tokenizer.hf import hf_tokens_and_merges

        return hf_tokens_and_merges(self)

    def export_hf(self, path: str | os.PathLike, add_bos: bool = False) -> Path:
        """Write a Hugging Face ``tokenizer.json`` (a file path, or a folder to put it in); see ``hf.py``."""
        from llmlab.tokenizer.hf import export_hf

        return export_hf(self, path, add_bos=add_bos)

    to_hf_tokenizer_json = export_hf

    def __getstate__(self) -> dict:
        # DataLoader workers and process pools pickle the tokenizer; the tiktoken Encoding is rebuilt on demand.
        state = self.__dict__.copy()
        state["_tiktoken"] = None
        return state

    def __repr__(self) -> str:
        n_special = len(self.special_tokens)
        return f"Tokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, specials={n_special})"
