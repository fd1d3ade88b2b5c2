"""A scripted "model" for tests of generation with tools: a GPT whose next token is chosen by a Python function of
the row's whole history, so a test decides exactly when it calls a tool and what it does with the result.

The history lives in the engine's own KV cache (the token id written into one key slot per position), so the
engine's batching, merging, padding and row bookkeeping move it exactly as they move a real model's keys.
"""

from __future__ import annotations

import torch

from llmlab.model.gpt import GPT, ModelConfig


class ScriptedModel(GPT):
    """``script(history ids) -> next id``. Greedy sampling picks it (its logit is 0, every other -inf... -30)."""

    def __init__(self, vocab_size: int, script, max_seq_len: int = 512):
        super().__init__(ModelConfig.preset("tiny", vocab_size=vocab_size, max_seq_len=max_seq_len))
        self.script = script
        self.eval()

    def forward(self, idx, *, positions=None, kv_cache=None, attn_mask=None, logits_to_keep=0, targets=None):
        B, T = idx.shape
        assert kv_cache is not None, "the scripted model only runs inside the engine"
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
