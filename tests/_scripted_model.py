"""A scripted "model" for tests of generation with tools: a GPT whose next token is chosen by a Python function of
the row's whole history, so a test decides exactly when it calls a tool and what it does with the result.

``native_script`` calls ``calc`` with the user's message; ``searcher`` calls ``search`` and cites passage [1].
The history lives in the engine's own KV cache (the token id written into one key slot per position), so the
engine's batching, merging, padding and row bookkeeping move it exactly as they move a real model's keys.
"""

from __future__ import annotations

import functools

import torch

from llmlab.model.gpt import GPT, KVCache, ModelConfig
from llmlab.tasks.docqa import IDK
from llmlab.tools.retrieval import NO_RESULTS



class ScriptedModel(GPT):
    """``script(history ids) -> next id`` inside the engine (its logit 0, every other -30: sampling picks it too).
    Outside the engine (a loss's log-probs) it is the tiny GPT it also is."""

    def __init__(self, vocab_size: int, script, max_seq_len: int = 512):
        super().__init__(ModelConfig.preset("tiny", vocab_size=vocab_size, max_seq_len=max_seq_len))
        self.script = script
        self.eval()

    def forward(self, idx, *, positions=None, kv_cache=None, attn_mask=None, logits_to_keep=0, targets=None):
        if not isinstance(kv_cache, KVCache):  # outside the engine (log-probs for a loss): the tiny GPT it is
            return super().forward(idx, positions=positions, kv_cache=kv_cache, attn_mask=attn_mask,
                                   logits_to_keep=logits_to_keep, targets=targets)
        B, T = idx.shape
        t0 = kv_cache.length
        kv_cache.k[0, :, 0, t0:t0 + T, 0] = idx.to(kv_cache.k.dtype)
        kv_cache.length += T
        S = t0 + T
        if attn_mask is None:
            valid = torch.ones(B, S, dtype=torch.bool)
        elif attn_mask.dtype == torch.bool:
            valid = attn_mask[:, 0, -1, :S].expand(B, S)
        else:
            valid = (attn_mask[:, 0, -1, :S] == 0).expand(B, S)
        logits = torch.full((B, 1, self.config.vocab_size), -30.0)
        for b in range(B):
            hist = [int(x) for x, ok in zip(kv_cache.k[0, b, 0, :S, 0].tolist(), valid[b].tolist()) if ok]
            logits[b, 0, self.script(hist)] = 0.0
        return logits


def native_script(tok, calls_per_answer=1, body=None):
    """The assistant answers a user message "Q" by calling ``calc Q`` (``calls_per_answer`` times, each after
    the previous result), then writes "= RESULT" and ends its turn. ``body(q, k)`` overrides the k-th call."""
    TC, TCE, TR, TRE, END = (tok.special_id(n) for n in ("tool_call", "/tool_call", "tool_result", "/tool_result",
                                                         "end"))
    A, U = tok.special_id("assistant"), tok.special_id("user")

    def script(hist):
        a = len(hist) - 1 - hist[::-1].index(A)
        u = len(hist) - 1 - hist[::-1].index(U)
        q = tok.decode(hist[u + 1: hist.index(END, u)])
        ans = hist[a + 1:]
        k = ans.count(TRE)  # results so far
        since = ans[len(ans) - 1 - ans[::-1].index(TRE) + 1:] if k else ans
        if k < calls_per_answer:
            target = ([] if k else tok.encode("Let me use the calculator.")) + [TC] + \
                tok.encode(body(q, k) if body else f"calc {q}") + [TCE]
        else:
            r = ans.index(TR, len(ans) - 1 - ans[::-1].index(TR))
            result = tok.decode(ans[r + 1: ans.index(TRE, r)])
            target = tok.encode(f" = {result}") + [END]
        return target[len(since)] if len(since) < len(target) else END

    return script


def searcher(tok):
    """Calls ``search QUESTION``, then answers with the first word of passage [1] and cites it, or says it does
    not know when the search found nothing. (A partial of a module function: it pickles into the server's engine
    process.)"""
    return functools.partial(_search_then_cite, tok)


def _search_then_cite(tok, hist):
    TC, TCE, TR, TRE, END = (tok.special_id(n) for n in ("tool_call", "/tool_call", "tool_result", "/tool_result",
                                                         "end"))
    A, U = tok.special_id("assistant"), tok.special_id("user")
    u = len(hist) - 1 - hist[::-1].index(U)
    a = len(hist) - 1 - hist[::-1].index(A)
    q = tok.decode(hist[u + 1: hist.index(END, u)])
    ans = hist[a + 1:]
    if TRE not in ans:
        target = [TC] + tok.encode(f"search {q}") + [TCE]
        done = ans
    else:
        r = ans.index(TR)
        result = tok.decode(ans[r + 1: ans.index(TRE)])
        reply = IDK if result == NO_RESULTS else result.split("] ", 1)[1].split()[-1].rstrip(".") + " [1]"
        target = tok.encode(reply) + [END]
        done = ans[ans.index(TRE) + 1:]
    return target[len(done)] if len(done) < len(target) else END


def probe(tok, needle: str):
    """Answers "saw NEEDLE" when ``needle`` is anywhere in the text of its prompt, else "clean": a test sees
    exactly what reached the model (an injection a guard should have withheld, a text it should have decoded)."""
    return functools.partial(_probe, tok, needle)


def _probe(tok, needle, hist):
    A, TRE, END = tok.special_id("assistant"), tok.special_id("/tool_result"), tok.special_id("end")
    a = max(i for i, t in enumerate(hist) if t in (A, TRE))  # the answer starts after the role or a tool result
    prompt = tok.decode([t for t in hist[:a] if not tok.is_special(t)])
    target = tok.encode(f"saw {needle}" if needle in prompt else "clean") + [END]
    done = hist[a + 1:]
    return target[len(done)] if len(done) < len(target) else END
