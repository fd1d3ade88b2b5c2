"""``ImportedTokenizer``: the BPE tokenizers Llama-family models ship, read from an HF folder or a GGUF file.

    from llmlab.tokenizer.imported import ImportedTokenizer
    tok = ImportedTokenizer.from_hf("some-model/")           # tokenizer.json (+ tokenizer_config.json, ...)
    tok = ImportedTokenizer.from_gguf("model.gguf")          # tokenizer.ggml.* metadata
    ids = tok.encode("Hello 世界 🎉")                          # the model's own ids, never a special id from text
    ids = tok.encode("<|im_start|>user", allowed_special="all")
    tok.decode(ids); tok.save("runs/x/tokenizer"); ImportedTokenizer.load("runs/x/tokenizer")

Two kinds, one algorithm family (byte-pair merges over a word's symbols):

* ``byte_bpe`` (GPT-2 / Llama-3 / SmolLM / Qwen2): the text is split by the model's pre-tokenizer (regexes,
  digits), each byte becomes one printable character (GPT-2's table, ``tokenizer/hf.py``) and the merges are
  applied to those characters, lowest rank first (leftmost on ties).
* ``sp_bpe`` (Llama-2 / TinyLlama / Mistral, SentencePiece-style): spaces become ``▁`` and a ``▁`` is put in
  front (the add-prefix-space rule), the characters are merged, and a character the vocabulary lacks becomes
  its UTF-8 bytes as ``<0xNN>`` tokens (byte fallback) or the unknown token.

Where a model's rules come from matters, because Hugging Face ``tokenizers`` and llama.cpp differ in corners,
and we give **exactly** the ids of the library the file was made for (``semantics``):

* ``hf``: merges ranked by pair (``tokenizer.json``'s ``merges``); a character the byte-level vocabulary lacks
  is dropped before merging (its neighbours may then merge); ``ignore_merges`` (Llama-3) takes a word that is
  itself a token whole; the Metaspace ``prepend_scheme`` ``first`` puts ``▁`` only at the very start.
* ``llama.cpp``: byte-level merges as above, but a missing byte stays in place (blocking merges across it) and
  is dropped afterwards; the ``llama`` (SentencePiece) model merges the adjacent pair whose concatenation is the
  highest-scoring token (``tokenizer.ggml.scores``), and puts a space in front of every text fragment that
  starts the text or follows a special token.

Added tokens (HF ``added_tokens``; GGUF control / user-defined tokens) are cut out of the text before
anything else, longest first at each position. Special ones (control tokens: ``<s>``, ``<|im_end|>``...) are
recognised only when ``allowed_special`` allows them, as in the native ``Tokenizer``: user text never turns
into a special id by default. Non-special added tokens are always recognised (both libraries do that).

Fast path. Encoding runs in tiktoken (Rust) when the scheme allows it: one split regex, and merges for which
tiktoken's rule ("merge the adjacent pair whose *concatenation* has the lowest rank") provably makes the same
choices as the pair-ranked rule. ``plan_fast_path`` checks, once at import, that (a) every merge's parts were
made by earlier merges, (b) all merges that make one token sit together in rank order, (c) every token's own
characters merge back into that token (or every split of it into two tokens is one of its merges), (d) no token is made by two overlapping pairs in an order the two rules
break differently, and (e) with ``ignore_merges`` no token outside the merges can be formed from two tokens.
Under (a)-(c) the symbols of any stretch of text evolve as that stretch alone would, so two adjacent symbols
whose concatenation is a token are that token's merge pair and both rules pick the same pair at every step.
SentencePiece pieces are merged character by character; tiktoken works on bytes, so every multi-byte
character the vocabulary has is assembled from its bytes first (extra ranks below all real ones) and the
bytes of a character it lacks come out as fragments that become ``<0xNN>`` tokens. When the check fails,
or a text needs what tiktoken cannot do (a byte the vocabulary lacks under ``hf`` semantics, several regex
steps, the unknown token), our own merge loop runs (``encode_reference``), with a cache of words.
The tests compare both paths with ``tokenizers`` and ``llama_cpp`` on English, code, Chinese and emoji text.

Decoding: ``token_bytes(id)`` is a token's own bytes (byte-level characters mapped back; ``▁`` as a space;
``<0xNN>`` as its byte; a special token as its UTF-8 name); ``decode`` additionally removes the space the
add-prefix-space rule put at the start, so ``decode(encode(text)) == text``.

Saved as ``DIR/tokenizer.json`` with ``"format": "llmlab-imported-bpe"`` and a version (``save``/``load``);
``load_tokenizer_dir`` in ``tokenizer/__init__.py`` returns the right class for a run folder's tokenizer.
"""

from __future__ import annotations

import heapq
import json
import os
import re
import unicodedata
from pathlib import Path
from typing import Iterable, Sequence

import regex

from llmlab.errors import LlmlabError
from llmlab.tokenizer.bpe import clean_surrogates
from llmlab.tokenizer.hf import byte_to_unicode

FORMAT = "llmlab-imported-bpe"
VERSION = 1
FILENAME = "tokenizer.json"

# Token types (GGUF's numbering, which llama.cpp and the gguf package use).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
MODELS = ("byte_bpe", "sp_bpe")
SEMANTICS = ("hf", "llama.cpp")
META = "▁"  # SentencePiece's visible space, U+2581

# Hugging Face's ByteLevel pre-tokenizer with use_regex=True splits with GPT-2's pattern, spelled like this.
HF_GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_CACHE_MAX = 1 << 17  # words kept in the slow path's cache
_CACHE_WORD_MAX = 256  # longer words are not cached


class _Added:
    """One added token: matched in the text before pre-tokenization (HF ``AddedToken`` flags)."""

    __slots__ = ("id", "content", "special", "lstrip", "rstrip", "single_word", "normalized")

    def __init__(self, d: dict):
        self.id, self.content = int(d["id"]), str(d["content"])
        self.special = bool(d.get("special", True))
        self.lstrip, self.rstrip = bool(d.get("lstrip", False)), bool(d.get("rstrip", False))
        self.single_word, self.normalized = bool(d.get("single_word", False)), bool(d.get("normalized", False))


class ImportedTokenizer:
    """A model's own BPE tokenizer (byte-level or SentencePiece-style); the native ``Tokenizer``'s interface."""

    kind = "imported"

    def __init__(self, spec: dict):
        self.spec = spec = dict(spec)
        where = spec.get("source", "tokenizer")
        self.model, self.semantics = spec["model"], spec["semantics"]
        if self.model not in MODELS or self.semantics not in SEMANTICS:
            raise LlmlabError(f"{where}: unknown tokenizer model {self.model!r} / semantics {self.semantics!r}")
        self.tokens: list[str] = list(spec["tokens"])
        n = len(self.tokens)
        self.types: list[int] = list(spec.get("token_types") or [NORMAL] * n)
        if len(self.types) != n:
            raise LlmlabError(f"{where}: {len(self.types)} token types for {n} tokens")
        # The BPE model's vocabulary: strings the merge loop may produce or start from.
        bpe_ids = spec.get("bpe_ids")
        bpe_ids = range(n) if bpe_ids is None else bpe_ids
        self._bpe_vocab: dict[str, int] = {}
        for i in bpe_ids:
            if self.types[i] != UNUSED or self.semantics == "llama.cpp":
                self._bpe_vocab.setdefault(self.tokens[i], i)
        self._token_to_id = {}  # every token string (llama.cpp looks merges up in the whole vocabulary)
        for i, s in enumerate(self.tokens):
            self._token_to_id.setdefault(s, i)
        self.merge_by = spec.get("merge_by", "rank")
        self.merges: list[tuple[int, int]] = [(int(a), int(b)) for a, b in spec.get("merges") or []]
        self.scores: list[float] | None = spec.get("scores")
        self._ranks: dict[tuple[int, int], tuple[int, int]] = {}  # (left, right) -> (rank, merged id)
        for r, (a, b) in enumerate(self.merges):
            if not (0 <= a < n and 0 <= b < n):
                raise LlmlabError(f"{where}: merge {r} refers to token ids ({a}, {b}) outside the vocabulary")
            new = self._bpe_vocab.get(self.tokens[a] + self.tokens[b])
            if new is None:
                raise LlmlabError(f"{where}: merge {r} ({self.tokens[a]!r} + {self.tokens[b]!r}) makes a string "
                                  f"that is not in the vocabulary")
            self._ranks.setdefault((a, b), (r, new))
        if self.merge_by == "score" and (self.scores is None or len(self.scores) != n):
            raise LlmlabError(f"{where}: score-ranked merges need one score per token")
        self.ignore_merges = bool(spec.get("ignore_merges", False))
        self.byte_fallback = bool(spec.get("byte_fallback", False))
        self.unk_id: int | None = spec.get("unk_id")
        self.fuse_unk = bool(spec.get("fuse_unk", False))
        self.normalizer: list[dict] = list(spec.get("normalizer") or [])
        self.pre_tokenizer: list[dict] = list(spec.get("pre_tokenizer") or [])
        self.decoder: dict = dict(spec.get("decoder") or {})
        self._added = [_Added(d) for d in spec.get("added_tokens") or []]
        self.special_tokens: dict[str, int] = {a.content: a.id for a in self._added if a.special}
        self._special_ids = set(self.special_tokens.values()) | {i for i, t in enumerate(self.types)
                                                                 if t in (CONTROL, UNKNOWN)}
        self.bos_id: int | None = spec.get("bos_id")
        self.eos_ids: tuple[int, ...] = tuple(int(i) for i in spec.get("eos_ids") or ())
        self.stop_ids: tuple[int, ...] = tuple(dict.fromkeys([*self.eos_ids, *map(int, spec.get("stop_ids") or ())]))
        self._pad_id: int | None = spec.get("pad_id")
        self.add_bos, self.add_eos = bool(spec.get("add_bos", False)), bool(spec.get("add_eos", False))
        self.chat_template: str | None = spec.get("chat_template")
        self.template_tokens: dict[str, str] = dict(spec.get("template_tokens") or {})
        for i in (self.bos_id, self._pad_id, self.unk_id, *self.eos_ids):
            if i is not None and not 0 <= i < n:
                raise LlmlabError(f"{where}: special token id {i} is outside the vocabulary of {n}")
        if self.bos_id is None and self.add_bos:
            raise LlmlabError(f"{where}: add_bos is set but the tokenizer has no bos token")
        self._byte_ids = self._find_byte_tokens()
        self._bytes = [self._token_bytes_uncached(i) for i in range(n)]
        self._added_res: dict[frozenset, tuple] = {}
        self._steps = [self._compile_step(s, where) for s in self.pre_tokenizer]
        self._cache: dict[str, tuple[int, ...]] = {}
        self._fast = None  # built on first use
        self._fast_plan = spec.get("fast_path") if isinstance(spec.get("fast_path"), dict) else None
        self._missing_bytes: bytes = b""
        if self.model == "byte_bpe":
            table = byte_to_unicode()
            self._missing_bytes = bytes(b for b in range(256) if table[b] not in self._bpe_vocab)
        self._missing_re = re.compile(b"[" + b"".join(re.escape(bytes([b])) for b in self._missing_bytes) + b"]") \
            if self._missing_bytes else None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_hf(cls, path: str | os.PathLike) -> "ImportedTokenizer":
        """From a Hugging Face folder: ``tokenizer.json`` (required), ``tokenizer_config.json``,
        ``special_tokens_map.json`` and ``generation_config.json`` (optional)."""
        from llmlab.tokenizer.hf_import import spec_from_hf

        return cls(with_fast_path(spec_from_hf(path)))

    @classmethod
    def from_gguf(cls, path: str | os.PathLike) -> "ImportedTokenizer":
        """From a GGUF file's ``tokenizer.ggml.*`` metadata (``gguf`` package reader)."""
        from llmlab.tokenizer.gguf_vocab import spec_from_gguf

        return cls(with_fast_path(spec_from_gguf(path)))

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "ImportedTokenizer":
        """Load ``DIR/tokenizer.json`` written by ``save``."""
        from llmlab.utils.io import read_json

        path = Path(directory)
        if path.is_dir() or not path.suffix:
            path = path / FILENAME
        data = read_json(path, "tokenizer file")
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise LlmlabError(f"{path}: not an imported llmlab tokenizer (expected \"format\": \"{FORMAT}\")")
        if data.get("version") != VERSION:
            raise LlmlabError(f"{path}: imported tokenizer format version {data.get('version')} is not supported "
                              f"(this llmlab reads version {VERSION})")
        try:
            return cls({**data, "source": str(path)})
        except (KeyError, TypeError, ValueError) as e:
            raise LlmlabError(f"{path}: malformed tokenizer file ({type(e).__name__}: {e})") from None

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``DIR/tokenizer.json`` (atomically): the whole spec, with format and version."""
        from llmlab.utils.io import atomic_write

        path = Path(directory) / FILENAME
        data = {"format": FORMAT, "version": VERSION,
                **{k: v for k, v in self.spec.items() if k not in ("format", "version", "source")}}
        with atomic_write(path, "w") as f:
            json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
        return path

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    @property
    def eos_id(self) -> int | None:
        """The model's main end-of-sequence token (the first of ``eos_ids``)."""
        return self.eos_ids[0] if self.eos_ids else None

    # The native tokenizer's names for the ids generation stops at: an imported model has one end token (or a
    # list), which plays both roles.
    end_id = eot_id = eos_id

    @property
    def pad_id(self) -> int:
        """The padding id: the model's pad token, else its eos (padding is never a training target)."""
        if self._pad_id is not None:
            return self._pad_id
        if self.eos_ids:
            return self.eos_ids[0]
        return 0

    def special_id(self, name: str) -> int:
        """Id of an added/special token by its exact text (``<|im_start|>``, ``</s>``)."""
        i = self.special_tokens.get(name)
        if i is None:
            i = next((a.id for a in self._added if a.content == name), None)
        if i is None:
            i = next((j for j, t in enumerate(self.types) if t == CONTROL and self.tokens[j] == name), None)
        if i is None:
            raise LlmlabError(f"unknown special token {name!r}; known: {', '.join(list(self.special_tokens)[:12])}")
        return i

    def is_special(self, token_id: int) -> bool:
        return token_id in self._special_ids

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes of one token (a special token gives its UTF-8 name)."""
        if not 0 <= token_id < len(self._bytes):
            raise LlmlabError(f"token id {token_id} is out of range (vocab size {self.vocab_size})")
        return self._bytes[token_id]

    def _find_byte_tokens(self) -> dict[int, int]:
        out = {}
        if self.model != "sp_bpe":
            return out
        for i, s in enumerate(self.tokens):
            m = _BYTE_TOKEN.fullmatch(s)
            if m and (self.types[i] in (BYTE, NORMAL, UNUSED) or self.semantics == "hf"):
                out.setdefault(int(m.group(1), 16), i)
        return out

    def _token_bytes_uncached(self, i: int) -> bytes:
        s = self.tokens[i]
        if self.model == "byte_bpe":
            # HF's ByteLevel decoder: every character through GPT-2's table, or the token's UTF-8 if any
            # character is not in the table (added tokens such as "    ").
            inv = _char_to_byte()
            try:
                return bytes(inv[c] for c in s)
            except KeyError:
                return s.encode("utf-8")
        if self.types[i] in (CONTROL, UNKNOWN) or i in self.special_tokens.values():
            return s.encode("utf-8")
        m = _BYTE_TOKEN.fullmatch(s)
        if m and (self.types[i] == BYTE or self._byte_ids.get(int(m.group(1), 16)) == i):
            return bytes([int(m.group(1), 16)])
        return s.replace(META, " ").encode("utf-8")

    # ------------------------------------------------------------------ encoding
    def _allowed(self, allowed_special) -> frozenset:
        if allowed_special == "all":
            return frozenset(self.special_tokens)
        if allowed_special in (None, "none"):
            return frozenset()
        allowed = frozenset(allowed_special)
        unknown = allowed - set(self.special_tokens)
        if unknown:
            raise LlmlabError(f"unknown special tokens in allowed_special: {sorted(unknown)[:5]}")
        return allowed

    def encode(self, text: str, allowed_special: str | Iterable[str] = ()) -> list[int]:
        """Token ids of ``text`` (no bos/eos added: see ``add_bos``). Special tokens' names in the text are
        ordinary text unless listed in ``allowed_special`` (or ``"all"``)."""
        return self.encode_segments([(text, allowed_special)])

    def encode_batch(self, texts: Sequence[str], allowed_special: str | Iterable[str] = (),
                     num_threads: int | None = None) -> list[list[int]]:
        """``[encode(t) for t in texts]``; plain texts on the fast path go to tiktoken as one batch."""
        allowed = self._allowed(allowed_special)
        fast = self._fast_encoding()
        if fast is not None and not self.normalizer and not self._prefix_rule() and not self._added_in_any(texts, allowed):
            texts = [clean_surrogates(t) for t in texts]
            if self._missing_re is None or self.semantics == "llama.cpp":
                threads = num_threads or os.cpu_count() or 1
                batches = fast.encode_ordinary_batch(texts, num_threads=threads)
                return [self._ranks_to_ids(r, t) for r, t in zip(batches, texts)]
        return [self.encode(t, allowed) for t in texts]

    def encode_reference(self, text: str, allowed_special: str | Iterable[str] = ()) -> list[int]:
        """The pure-Python encoder (our own merge loop) that defines what ``encode`` must give."""
        return self.encode_segments([(text, allowed_special)], fast=False)

    def encode_segments(self, segments: Sequence[tuple[str, object]], fast: bool = True) -> list[int]:
        """Encode the concatenation of ``segments`` (``(text, allowed_special)`` pairs) as one text, where
        special tokens are recognised in each segment only as its own ``allowed_special`` says. The chat
        template uses this: template text may hold special tokens, message content never does."""
        pieces: list[tuple[str, int] | int] = []  # (text, start offset in the whole text) or an added id
        offset = 0
        for text, allowed in segments:
            text = clean_surrogates(text)
            for part in self._split_added(text, self._allowed(allowed)):
                if isinstance(part, int):
                    pieces.append(part)
                elif pieces and not isinstance(pieces[-1], int):
                    pieces[-1] = (pieces[-1][0] + part[0], pieces[-1][1])  # text runs on across segments
                else:
                    pieces.append((part[0], part[1] + offset))
            offset += len(text)
        ids: list[int] = []
        for p in pieces:
            if isinstance(p, int):
                ids.append(p)
            else:
                ids.extend(self._encode_piece(p[0], at_start=p[1] == 0, fast=fast))
        return ids

    # -- added tokens ---------------------------------------------------------------------------------------

    def _added_in_any(self, texts, allowed) -> bool:
        _, pattern = self._added_regex(allowed)
        return pattern is not None and any(pattern.search(t) for t in texts)

    def _added_regex(self, allowed: frozenset):
        key = allowed
        if key not in self._added_res:
            usable = [a for a in self._added if (not a.special) or a.content in allowed]
            usable = [a for a in usable if a.content]
            by_content = {a.content: a for a in usable}
            names = sorted(by_content, key=len, reverse=True)  # longest first: leftmost-longest matching
            pattern = regex.compile("|".join(regex.escape(s) for s in names)) if names else None
            self._added_res[key] = (by_content, pattern)
        return self._added_res[key]

    def _split_added(self, text: str, allowed: frozenset) -> list:
        """The text as ``(piece, start)`` strings and added-token ids (HF's matching, with lstrip/rstrip and
        single_word)."""
        by_content, pattern = self._added_regex(allowed)
        if pattern is None or not text:
            return [(text, 0)] if text else []
        out: list = []
        start = 0
        for m in pattern.finditer(text):
            a = by_content[m.group()]
            s, e = m.start(), m.end()
            if s < start:
                continue  # inside what an rstrip already took
            if a.single_word:
                before = text[s - 1] if s > 0 else ""
                after = text[e] if e < len(text) else ""
                if (before and _is_word_char(before)) or (after and _is_word_char(after)):
                    continue
            if a.lstrip:
                while s > start and text[s - 1].isspace():
                    s -= 1
            if a.rstrip:
                while e < len(text) and text[e].isspace():
                    e += 1
            if s > start:
                out.append((text[start:s], start))
            out.append(a.id)
            start = e
        if start < len(text):
            out.append((text[start:], start))
        return out

    # -- one piece of text between added tokens --------------------------------------------------------------

    def _prefix_rule(self) -> bool:
        return any(s.get("type") == "prepend" for s in self.normalizer) or any(
            s.get("type") == "metaspace" and s.get("prepend_scheme", "always") != "never" for s in self.pre_tokenizer
        ) or any(s.get("type") == "byte_level" and s.get("add_prefix_space") for s in self.pre_tokenizer)

    def _normalize(self, text: str) -> str:
        for step in self.normalizer:
            kind = step["type"]
            if kind in ("nfc", "nfd", "nfkc", "nfkd"):
                text = unicodedata.normalize(kind.upper(), text)
            elif kind == "lowercase":
                text = text.lower()
            elif kind == "replace":
                if step.get("regex"):
                    text = regex.sub(step["pattern"], lambda m: step["content"], text)
                else:
                    text = text.replace(step["pattern"], step["content"])
            elif kind == "prepend":
                text = step["prepend"] + text if text else text
            elif kind == "strip":
                if step.get("left", True):
                    text = text.lstrip()
                if step.get("right", True):
                    text = text.rstrip()
        return text

    def _encode_piece(self, piece: str, at_start: bool, fast: bool) -> list[int]:
        text = self._normalize(piece)
        if not text:
            return []
        if fast:
            enc = self._fast_encoding()
            if enc is not None:
                out = self._encode_fast(enc, text, at_start)
                if out is not None:
                    return out
        ids: list[int] = []
        for word in self._pre_tokenize(text, at_start):
            ids.extend(self._encode_word(word))
        return ids

    # -- pre-tokenization (slow path) -----------------------------------------------------------------------

    @staticmethod
    def _compile_step(step: dict, where: str) -> dict:
        step = dict(step)
        if step["type"] == "split":
            try:
                step["_re"] = regex.compile(step["pattern"])
            except regex.error as e:
                raise LlmlabError(f"{where}: pre-tokenizer regex does not compile ({e})") from None
        elif step["type"] == "byte_level" and step.get("use_regex", True):
            step["_re"] = regex.compile(HF_GPT2_PATTERN)
        elif step["type"] == "digits":
            step["_re"] = regex.compile(r"\p{N}" if step.get("individual", False) else r"\p{N}+")
        return step

    def _pre_tokenize(self, text: str, at_start: bool) -> list[str]:
        words = [text]
        for step in self._steps:
            kind = step["type"]
            if kind in ("split", "digits"):
                words = [w for word in words for w in _split(word, step["_re"], step.get("behavior", "isolated"),
                                                              step.get("invert", False))]
            elif kind == "byte_level":
                if step.get("add_prefix_space"):
                    words = [w if w.startswith(" ") else " " + w for w in words]
                if "_re" in step:
                    words = [w for word in words for w in _split(word, step["_re"], "isolated", False)]
                table = byte_to_unicode()
                words = ["".join(table[b] for b in w.encode("utf-8")) for w in words]
            elif kind == "metaspace":
                rep = step.get("replacement", META)
                scheme = step.get("prepend_scheme", "always")
                out = []
                for k, w in enumerate(words):
                    w = w.replace(" ", rep)
                    if (scheme == "always" or (scheme == "first" and at_start and k == 0)) and not w.startswith(rep):
                        w = rep + w
                    out.append(w)
                words = out
                if step.get("split", True):
                    words = [w for word in out for w in _split_before(word, rep)]
            else:  # checked at import
                raise LlmlabError(f"pre-tokenizer step {kind!r} is not supported")
        return [w for w in words if w]

    # -- the merge loop (slow path) --------------------------------------------------------------------------

    def _encode_word(self, word: str) -> tuple[int, ...]:
        hit = self._cache.get(word)
        if hit is not None:
            return hit
        ids = tuple(self._merge_word(word))
        if len(word) <= _CACHE_WORD_MAX:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[word] = ids
        return ids

    def _merge_word(self, word: str, shortcut: bool = True) -> list[int]:
        vocab = self._bpe_vocab
        if shortcut and self.ignore_merges and word in vocab:
            return [vocab[word]]
        syms: list[int | None] = []  # token ids; None = a character the vocabulary lacks (blocks merges)
        texts: list[str] = []
        hf = self.semantics == "hf"
        unk_run = False
        for ch in word:
            i = vocab.get(ch)
            if i is not None:
                syms.append(i)
                texts.append(ch)
                unk_run = False
            elif hf and self._fallback_ids(ch.encode("utf-8")) is not None:
                for b in self._fallback_ids(ch.encode("utf-8")):
                    syms.append(b)
                    texts.append("")  # byte tokens never merge
                unk_run = False
            elif hf:
                if self.unk_id is not None:
                    if not (self.fuse_unk and unk_run):
                        syms.append(self.unk_id)
                        texts.append("")
                    unk_run = True
                # else: HF drops the character, and its neighbours may merge
            else:
                syms.append(None)
                texts.append(ch)
        if self.merge_by == "score":
            return self._merge_by_score(syms, texts)
        syms = self._merge_by_rank(syms)
        # llama.cpp keeps a missing byte in place while merging (it blocks merges across it), then drops it.
        return [s for s in syms if s is not None]

    def _merge_by_rank(self, syms: list) -> list:
        n = len(syms)
        if n < 2:
            return syms
        ranks = self._ranks
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        heap = []
        for i in range(n - 1):
            m = ranks.get((syms[i], syms[i + 1]))
            if m is not None:
                heap.append((m[0], i, syms[i], syms[i + 1], m[1]))
        heapq.heapify(heap)
        while heap:
            rank, i, a, b, new = heapq.heappop(heap)
            j = nxt[i]
            if syms[i] != a or j >= n or syms[j] != b:
                continue  # stale: one side changed since this pair was queued
            syms[i] = new
            syms[j] = -1  # removed
            nxt[i] = nxt[j]
            if nxt[j] < n:
                prv[nxt[j]] = i
            p = prv[i]
            if p >= 0:
                m = ranks.get((syms[p], new))
                if m is not None:
                    heapq.heappush(heap, (m[0], p, syms[p], new, m[1]))
            q = nxt[i]
            if q < n:
                m = ranks.get((new, syms[q]))
                if m is not None:
                    heapq.heappush(heap, (m[0], i, new, syms[q], m[1]))
        return [s for s in syms if s != -1]

    def _merge_by_score(self, syms: list, texts: list[str]) -> list:
        """llama.cpp's SentencePiece merge: the adjacent pair whose concatenation is the highest-scoring
        token, leftmost on ties; characters the vocabulary lacks end as their bytes' ``<0xNN>`` tokens."""
        n = len(syms)
        scores, lookup = self.scores, self._token_to_id
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        texts = list(texts)
        heap: list = []

        def push(i, j):
            t = texts[i] + texts[j]
            k = lookup.get(t)
            if k is not None:
                heapq.heappush(heap, (-float(scores[k]), i, t, k))

        for i in range(n - 1):
            push(i, i + 1)
        alive = [True] * n
        ids: list = list(syms)
        while heap:
            _, i, t, k = heapq.heappop(heap)
            j = nxt[i]
            if not alive[i] or j >= n or texts[i] + texts[j] != t:
                continue
            texts[i], ids[i] = t, k
            alive[j] = False
            nxt[i] = nxt[j]
            if nxt[j] < n:
                prv[nxt[j]] = i
            if prv[i] >= 0:
                push(prv[i], i)
            if nxt[i] < n:
                push(i, nxt[i])
        out = []
        for i in range(n):
            if not alive[i]:
                continue
            if ids[i] is not None:
                out.append(ids[i])
            else:  # a character the vocabulary lacks: its bytes
                out.extend(self._byte_ids[b] for b in texts[i].encode("utf-8") if b in self._byte_ids)
        return out

    # -- the fast path --------------------------------------------------------------------------------------

    def _fast_encoding(self):
        """The tiktoken ``Encoding`` for this vocabulary when the import-time check allowed it, else None."""
        if self._fast is None:
            plan = self._fast_plan
            if not plan or not plan.get("pattern"):
                self._fast = False
            else:
                self._fast = _build_fast(self, plan["pattern"])
        return self._fast.encoding if self._fast else None

    def _encode_fast(self, enc, text: str, at_start: bool) -> list[int] | None:
        """``text`` (normalized) through tiktoken, or None when this text needs the slow path."""
        text = self._fast_prefix(text, at_start)
        if self._missing_re is not None and self.semantics == "hf" and self._missing_re.search(text.encode("utf-8")):
            return None  # HF drops a missing byte *before* merging; tiktoken cannot
        return self._ranks_to_ids(enc.encode_ordinary(text), text)

    def _fast_prefix(self, text: str, at_start: bool) -> str:
        for step in self.pre_tokenizer:  # the one step a fast-path plan allows besides the split
            if step["type"] == "byte_level" and step.get("add_prefix_space") and not text.startswith(" "):
                text = " " + text
            elif step["type"] == "metaspace":
                rep, scheme = step.get("replacement", META), step.get("prepend_scheme", "always")
                text = text.replace(" ", rep)
                if (scheme == "always" or (scheme == "first" and at_start)) and not text.startswith(rep):
                    text = rep + text
        return text

    def _ranks_to_ids(self, ranks: list[int], text: str) -> list[int]:
        f = self._fast
        if f.identity and f.n_fake == 0:
            return ranks
        import numpy as np

        arr = np.asarray(ranks, dtype=np.int64)
        ids = f.rank_to_id[arr]
        if not (ids < 0).any():
            return ids.tolist()
        # Fake ranks: a byte the vocabulary lacks (llama.cpp drops it) or the fragments of a character it
        # lacks (byte fallback: its bytes as <0xNN> tokens).
        out: list[int] = []
        for r, i in zip(arr.tolist(), ids.tolist()):
            if i >= 0:
                out.append(i)
            elif self.model == "byte_bpe":
                continue
            else:
                fallback = self._fallback_ids(f.rank_bytes[r])
                if fallback is None:
                    return self._encode_piece_slow(text)  # the unknown token (fused or not): the slow path
                out.extend(fallback)
        return out

    def _fallback_ids(self, data: bytes) -> list[int] | None:
        """``<0xNN>`` ids for the bytes of a character the vocabulary lacks, if the rules say so."""
        if (self.semantics == "hf" and not self.byte_fallback) or any(b not in self._byte_ids for b in data):
            return None
        return [self._byte_ids[b] for b in data]

    def _encode_piece_slow(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in self._pre_tokenize(text, at_start=False):
            ids.extend(self._encode_word(word))
        return ids

    def verify_fast_path(self, texts: Iterable[str]) -> None:
        """Raise ``LlmlabError`` if the fast path and the reference encoder disagree on any of ``texts``."""
        for t in texts:
            if self.encode(t, "all") != self.encode_reference(t, "all"):
                raise LlmlabError(f"fast and reference encodings differ on {t[:60]!r}")

    @property
    def uses_fast_path(self) -> bool:
        return self._fast_encoding() is not None

    # ------------------------------------------------------------------ decoding
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes of ``ids`` (special tokens as their names), as the tokens spell them."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        table = self._bytes
        try:
            return b"".join(table[i] for i in ids)
        except IndexError:
            bad = next(i for i in ids if not 0 <= i < len(table))
            raise LlmlabError(f"token id {bad} is out of range (vocab size {self.vocab_size})") from None
        except TypeError:
            raise LlmlabError("token ids must be integers") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``: the model's decoder (the space the add-prefix-space rule put first is removed;
        invalid UTF-8 becomes U+FFFD)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        ids = list(ids)
        rule = self.decoder.get("strip_prefix")
        if rule == "first_token" and ids:
            # HF's Metaspace decoder: every ▁ of the first token is dropped.
            first = self.tokens[ids[0]].replace(META, "").encode("utf-8") if not self.is_special(ids[0]) \
                and ids[0] not in self._byte_ids.values() else self._bytes[ids[0]]
            data = first + self.decode_bytes(ids[1:])
        else:
            data = self.decode_bytes(ids)
            if rule == "one_space" and data.startswith(b" "):
                data = data[1:]
        return data.decode("utf-8", errors="replace")

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_fast"] = None
        return state

    def __repr__(self) -> str:
        return (f"ImportedTokenizer({self.model}, {self.semantics}, vocab_size={self.vocab_size}, "
                f"merges={len(self.merges)}, fast={'yes' if self._fast_plan and self._fast_plan.get('pattern') else 'no'})")


# ----------------------------------------------------------------------------------------------------------
# Splitting helpers (HF's SplitDelimiterBehavior on regex matches)


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def _split(text: str, pattern, behavior: str, invert: bool) -> list[str]:
    spans = []  # (start, end, is_match)
    pos = 0
    for m in pattern.finditer(text):
        if m.start() == m.end():
            continue
        if m.start() > pos:
            spans.append((pos, m.start(), False))
        spans.append((m.start(), m.end(), True))
        pos = m.end()
    if pos < len(text):
        spans.append((pos, len(text), False))
    if invert:
        spans = [(s, e, not k) for s, e, k in spans]
    out: list[str] = []
    if behavior == "isolated":
        out = [text[s:e] for s, e, _ in spans]
    elif behavior == "removed":
        out = [text[s:e] for s, e, k in spans if not k]
    elif behavior == "merged_with_previous":
        for s, e, k in spans:
            if k and out:
                out[-1] += text[s:e]
            else:
                out.append(text[s:e])
    elif behavior == "merged_with_next":
        carry = ""
        for s, e, k in spans:
            if k:
                if carry:
                    out.append(carry)
                carry = text[s:e]
            else:
                out.append(carry + text[s:e])
                carry = ""
        if carry:
            out.append(carry)
    elif behavior == "contiguous":
        for s, e, k in spans:
            if k and out and out[-1][1]:
                out[-1] = (out[-1][0] + text[s:e], True)
            else:
                out.append((text[s:e], k))
        out = [t for t, _ in out]
    else:
        raise LlmlabError(f"split behavior {behavior!r} is not supported")
    return [w for w in out if w]


def _split_before(text: str, rep: str) -> list[str]:
    """Metaspace's split: every ``rep`` starts a new word (MergedWithNext)."""
    out, cur = [], ""
    for ch in text:
        if ch == rep and cur:
            out.append(cur)
            cur = ""
        cur += ch
    if cur:
        out.append(cur)
    return out


def _char_to_byte() -> dict[str, int]:
    global _INV
    if _INV is None:
        _INV = {c: b for b, c in byte_to_unicode().items()}
    return _INV


_INV: dict[str, int] | None = None


# ----------------------------------------------------------------------------------------------------------
# The fast path: plan (checked once, at import) and build (on first use)


class _Fast:
    __slots__ = ("encoding", "rank_to_id", "rank_bytes", "identity", "n_fake")


def _model_bytes(tok: ImportedTokenizer, i: int) -> bytes:
    """A BPE token's bytes in the space tiktoken works in: original bytes (byte-level) or the piece's UTF-8
    with ``▁`` kept (SentencePiece)."""
    if tok.model == "byte_bpe":
        inv = _char_to_byte()
        return bytes(inv[c] for c in tok.tokens[i])
    return tok.tokens[i].encode("utf-8")


def _merge_order(tok: ImportedTokenizer) -> tuple[list[int], str | None]:
    """Multi-symbol tokens in the order the merge rule makes them, or a reason tiktoken cannot follow it."""
    if tok.merge_by == "score":
        bpe = [i for i in tok._token_to_id.values() if len(tok.tokens[i]) > 1 and tok.types[i] not in (BYTE,)]
        reachable = [i for i in bpe if any(tok.tokens[i][:k] in tok._token_to_id and tok.tokens[i][k:] in
                                           tok._token_to_id for k in range(1, len(tok.tokens[i])))]
        scores = [float(tok.scores[i]) for i in reachable]
        if len(set(scores)) != len(scores):
            return [], "two mergeable tokens have the same score (llama.cpp breaks the tie by position)"
        return sorted(reachable, key=lambda i: -float(tok.scores[i])), None
    lo: dict[int, int] = {}
    hi: dict[int, int] = {}
    for r, (a, b) in enumerate(tok.merges):
        new = tok._ranks[(a, b)][1]
        if tok._ranks[(a, b)][0] != r:
            continue  # a duplicate merge line: never used
        lo.setdefault(new, r)
        hi[new] = r
    for r, (a, b) in enumerate(tok.merges):
        if tok._ranks[(a, b)][0] != r:
            continue
        for part in (a, b):
            if part in hi and hi[part] >= r:
                return [], f"merge {r} uses a token that a later merge also makes"
    order = sorted(lo, key=lo.get)
    for x, y in zip(order, order[1:]):
        if hi[x] > lo[y]:
            return [], "the merges that make one token are interleaved with other merges"
    # Overlapping producers of one token: [p, q, r] with p+q = q+r = t, where the pair-ranked rule would pick
    # the right pair and tiktoken (leftmost) the left one.
    producers: dict[int, list[tuple[int, int, int]]] = {}
    for r, (a, b) in enumerate(tok.merges):
        if tok._ranks[(a, b)][0] == r:
            producers.setdefault(tok._ranks[(a, b)][1], []).append((r, a, b))
    for t, prods in producers.items():
        if len(prods) < 2:
            continue
        lefts = {a: (r, b) for r, a, b in prods}
        for r1, p, q in prods:
            if q in lefts and lefts[q][0] < r1:
                return [], f"token {tok.tokens[t]!r} is made by overlapping pairs in conflicting orders"
    return order, None


def plan_fast_path(tok: ImportedTokenizer) -> dict:
    """Decide (once, at import) whether tiktoken can encode for this tokenizer; ``{"pattern": ...}`` when
    it can, ``{"reason": ...}`` when it cannot. See the module docstring for the conditions."""
    steps = [s["type"] for s in tok.pre_tokenizer]
    pattern = None
    if tok.model == "byte_bpe":
        if steps == ["byte_level"] and tok.pre_tokenizer[0].get("use_regex", True):
            pattern = HF_GPT2_PATTERN
        elif steps == ["split", "byte_level"] and not tok.pre_tokenizer[1].get("use_regex", True) \
                and not tok.pre_tokenizer[1].get("add_prefix_space") \
                and tok.pre_tokenizer[0].get("behavior", "isolated") == "isolated" \
                and not tok.pre_tokenizer[0].get("invert"):
            pattern = tok.pre_tokenizer[0]["pattern"]
        else:
            return {"reason": f"pre-tokenizer {steps} is not one regex split"}
    else:
        if steps == ["metaspace"] and tok.pre_tokenizer[0].get("split", True):
            pattern = f"[^{META}]+|{META}[^{META}]*"
        elif steps in ([], ["metaspace"]):
            pattern = f"{META}*[^{META}]+|{META}+"  # safe only if no token has ▁ after another character
            if any(regex.search(f"[^{META}]{META}", tok.tokens[i]) for i in tok._bpe_vocab.values()
                   if tok.types[i] not in (CONTROL, UNKNOWN, BYTE)):
                return {"reason": "a token has a ▁ after another character, so words cannot be split at spaces"}
        else:
            return {"reason": f"pre-tokenizer {steps} is not supported by the fast path"}
    try:
        import tiktoken  # noqa: F401
    except ImportError:
        return {"reason": "tiktoken is not installed"}
    order, reason = _merge_order(tok)
    if reason:
        return {"reason": reason}
    # Every token must be what its own characters merge into (the argument in the module docstring), unless
    # every split of it into two tokens is one of its own merges (vocabularies converted from tiktoken, such as
    # Llama-3's, list all of them): then two adjacent symbols that spell it always are its merge pair.
    vocab = tok._bpe_vocab if tok.merge_by != "score" else tok._token_to_id
    for i in order:
        s = tok.tokens[i]
        if tok.merge_by != "score" and all(
                tok._ranks.get((vocab[s[:k]], vocab[s[k:]]), (0, -1))[1] == i
                for k in range(1, len(s)) if s[:k] in vocab and s[k:] in vocab):
            continue
        if tok._merge_word(s, shortcut=False) != [i]:
            return {"reason": f"token {s!r} is not what its own characters merge into"}
    if tok.ignore_merges:
        made = set(order)
        for s, i in tok._bpe_vocab.items():
            if len(s) > 1 and i not in made and tok.types[i] not in (CONTROL, UNKNOWN, BYTE) and any(
                    s[:k] in tok._bpe_vocab and s[k:] in tok._bpe_vocab for k in range(1, len(s))):
                return {"reason": f"token {s!r} is outside the merges but made of two tokens"}
    try:
        _build_fast(tok, pattern, order=order)
    except ValueError as e:
        return {"reason": f"tiktoken refused the vocabulary ({e})"}
    return {"pattern": pattern}


def _build_fast(tok: ImportedTokenizer, pattern: str, order: list[int] | None = None) -> _Fast:
    import numpy as np
    import tiktoken

    if order is None:
        order, reason = _merge_order(tok)
        if reason:
            raise LlmlabError(f"the saved fast-path plan no longer holds ({reason})")
    ranks: dict[bytes, int] = {}
    rank_id: dict[int, int] = {}
    fake: dict[int, bytes] = {}
    nxt = 0

    def add(data: bytes, token_id: int | None) -> None:
        nonlocal nxt
        if data in ranks:
            return
        ranks[data] = nxt
        if token_id is None:
            fake[nxt] = data
        else:
            rank_id[nxt] = token_id
        nxt += 1

    bpe = tok._bpe_vocab if tok.merge_by != "score" else tok._token_to_id
    if tok.model == "byte_bpe":
        table = byte_to_unicode()
        for b in range(256):
            add(bytes([b]), bpe.get(table[b]))
    else:
        # Single characters first (with the byte prefixes that assemble them), below every real merge.
        singles = [i for s, i in bpe.items() if len(s) == 1 and tok.types[i] not in (CONTROL, UNKNOWN, BYTE)]
        for i in singles:
            data = tok.tokens[i].encode("utf-8")
            for k in range(1, len(data)):
                add(data[:k], None)
        for b in range(256):
            add(bytes([b]), None)
        for i in singles:
            data = tok.tokens[i].encode("utf-8")
            if ranks.get(data) is not None and ranks[data] in fake:
                # a single byte that is itself a token (ASCII): make it real
                r = ranks[data]
                del fake[r]
                rank_id[r] = i
            else:
                add(data, i)
    for i in order:
        data = _model_bytes(tok, i)
        if data in ranks:
            raise ValueError(f"two tokens have the bytes {data!r}")
        add(data, i)
    if tok.ignore_merges:
        for s, i in tok._bpe_vocab.items():
            if len(s) > 1 and tok.types[i] not in (CONTROL, UNKNOWN, BYTE):
                add(_model_bytes(tok, i), i)
    rank_to_id = np.full(nxt, -1, dtype=np.int64)
    for r, i in rank_id.items():
        rank_to_id[r] = i
    enc = tiktoken.Encoding(name=f"llmlab-imported-{tok.vocab_size}", pat_str=pattern, mergeable_ranks=ranks,
                            special_tokens={})
    f = _Fast()
    f.encoding, f.rank_to_id, f.rank_bytes = enc, rank_to_id, fake
    f.identity = bool(np.array_equal(rank_to_id, np.arange(nxt)))
    f.n_fake = len(fake)
    return f


def with_fast_path(spec: dict) -> dict:
    """The spec with its ``fast_path`` decision (made here, once, and saved with the tokenizer)."""
    tok = ImportedTokenizer({**spec, "fast_path": None})
    return {**spec, "fast_path": plan_fast_path(tok)}
