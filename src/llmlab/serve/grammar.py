"""Constrained decoding for the server: JSON mode and JSON schemas through xgrammar, as engine constraints.

    from llmlab.serve.grammar import Grammars
    grammars = Grammars(tokenizer, vocab_size=model.config.vocab_size, stop_ids=[tok.end_id])
    factory = grammars.json_schema({"type": "object", "properties": {"ok": {"type": "boolean"}}})
    SamplingParams(constraint=factory)        # each sample gets its own matcher; the engine masks every draw

xgrammar (a maintained grammar engine, also vLLM's and SGLang's) compiles a JSON schema or its built-in JSON
grammar against the vocabulary once, then a matcher per sample says, before every token, which tokens keep
the output a prefix of some valid document (a bitmask over the vocabulary), and advances on the token drawn.
The vocabulary is given as each token's bytes (``tokenizer.token_bytes``); special tokens, and tokens with a
control byte, are given as empty strings, which xgrammar treats as never part of the text, so only the stop
tokens (allowed once the document is complete) can end it and the document is strict JSON (``json.loads``). A schema is compiled once and cached (xgrammar's compiler keeps a cache too).

``terminate=True`` (a tool call's JSON body, which no stop token follows) ends the sample as soon as the
document is complete.
"""

from __future__ import annotations

import functools
import json
import threading

import torch

from llmlab.errors import LlmlabError


class GrammarConstraint:
    """One sample's matcher as an engine ``TokenConstraint`` (``llmlab.infer.sampling``)."""

    def __init__(self, compiled, vocab_size: int, terminate: bool):
        import xgrammar as xgr

        self.matcher = xgr.GrammarMatcher(compiled, terminate_without_stop_token=terminate)
        self.vocab_size = vocab_size
        self.bitmask = xgr.allocate_token_bitmask(1, vocab_size)  # (1, ceil(V / 32)) int32
        self._shifts = torch.arange(32, dtype=torch.int32)

    def allowed(self) -> torch.Tensor:
        self.matcher.fill_next_token_bitmask(self.bitmask)
        bits = (self.bitmask[0].unsqueeze(-1) >> self._shifts) & 1  # (V / 32, 32): bit j of word i = token 32i+j
        return bits.flatten()[: self.vocab_size].bool()

    def advance(self, token_id: int) -> None:
        self.matcher.accept_token(int(token_id))

    def done(self) -> bool:
        return self.matcher.is_terminated()


class Grammars:
    """The compiler for one model's vocabulary, and constraint factories for the request kinds."""

    def __init__(self, tokenizer, vocab_size: int, stop_ids):
        import xgrammar as xgr

        n = tokenizer.vocab_size
        # Special tokens and tokens holding a control byte are left out (empty): compact JSON has no whitespace
        # outside strings, and JSON forbids raw control characters inside them (xgrammar's string rule would
        # let a tab or a backspace through, which json.loads then refuses).
        vocab = [b"" if tokenizer.is_special(i) or any(c < 0x20 for c in tokenizer.token_bytes(i))
                 else tokenizer.token_bytes(i) for i in range(n)]
        info = xgr.TokenizerInfo(vocab, xgr.VocabType.RAW, vocab_size=vocab_size, stop_token_ids=list(stop_ids))
        self.compiler = xgr.GrammarCompiler(info, max_threads=1)
        self.vocab_size = vocab_size
        self._lock = threading.Lock()  # handlers compile from several threads

    def _factory(self, compiled, terminate: bool):
        return functools.partial(GrammarConstraint, compiled, self.vocab_size, terminate)

    def json_object(self):
        """Any JSON object (OpenAI's ``response_format: {"type": "json_object"}``)."""
        return self.json_schema({"type": "object"}, strict=False)

    def json_schema(self, schema: dict, terminate: bool = False, strict: bool = True):
        """A factory of constraints for documents valid under ``schema``; ``LlmlabError`` if xgrammar cannot
        compile it (an unsupported keyword, a malformed schema). ``strict``: objects get no properties beyond
        those the schema names (still valid documents; a random model would otherwise invent keys forever)."""
        text = json.dumps(schema)  # (key order kept: it is the order properties are generated in)
        try:
            with self._lock:
                compiled = self._compile(text, strict)
        except LlmlabError:
            raise
        except Exception as e:  # xgrammar raises RuntimeError/ValueError subclasses with a message
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise LlmlabError(f"the JSON schema cannot be used for constrained decoding: {msg[:300]}") from None
        return self._factory(compiled, terminate)

    @functools.lru_cache(maxsize=64)
    def _compile(self, schema_text: str, strict: bool):
        # Compact JSON (no free whitespace): a sampled document cannot wander off into endless spaces.
        return self.compiler.compile_json_schema(schema_text, any_whitespace=False, strict_mode=strict)
