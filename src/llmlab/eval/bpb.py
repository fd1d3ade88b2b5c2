"""Bits per byte: a tokenizer-independent measure of how well a model predicts a text.

    from llmlab.eval.bpb import bits_per_byte
    r = bits_per_byte(model, tokenizer, text)          # {"bpb": ..., "bytes": ..., "tokens": ..., "loss": ...}

    llmlab eval bpb --model RUN --text FILE            # prints {"bpb": ..., "bytes": ..., "tokens": ...}

Definition (the one the speedrun target uses): encode the text once; cut its token ids into consecutive,
non-overlapping windows of ``context - 1`` tokens; feed each window as ``[<|bos|>] + window`` (so the model
input is at most ``context`` long and every window starts with BOS); each text token is scored exactly once,
conditioned only on BOS and the earlier tokens of its own window. bpb = total negative log-likelihood in nats
/ ln 2 / the text's UTF-8 byte count. ``loss`` is the mean nats per scored token.

Under torchrun each rank scores a share of the windows and the sums are all-reduced.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from llmlab.errors import LlmlabError


@torch.no_grad()
def bits_per_byte(model, tokenizer, text: str | list[str], *, context: int | None = None, batch_size: int = 16,
                  device=None, max_bytes: int = 0) -> dict:
    """Score ``text`` (or each string of a list, summed) as the module docstring defines.

    ``context`` defaults to the model's ``max_seq_len``; ``max_bytes`` > 0 scores only a prefix of each text
    (for quick evaluations during training)."""
    from llmlab.utils.dist import all_reduce_sum, dist_info

    cfg = model.config
    if tokenizer.vocab_size > cfg.vocab_size:
        raise LlmlabError(f"tokenizer has {tokenizer.vocab_size} tokens but the model only {cfg.vocab_size}")
    T = context or cfg.max_seq_len
    if T < 2 or T > cfg.max_seq_len:
        raise LlmlabError(f"context {T} must be between 2 and the model's {cfg.max_seq_len}")
    device = device or next(model.parameters()).device
    texts = [text] if isinstance(text, str) else list(text)
    if max_bytes:
        texts = [t.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore") for t in texts]
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    if n_bytes == 0:
        raise LlmlabError("no text to evaluate")

    # Windows of W = T-1 text tokens: rows (n, T) = [BOS, w_0 .. w_{W-1}] and targets (n, T) = [w_0 .. w_{W-1}, -]
    W = T - 1
    windows: list[list[int]] = []
    n_tokens = 0
    for ids in tokenizer.encode_batch(texts):
        n_tokens += len(ids)
        windows.extend(ids[i : i + W] for i in range(0, len(ids), W))
    rank, world = dist_info()

    was_training = model.training
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)  # (nats, scored tokens)
    # Same-length windows go together (only a text's last window is shorter). Batches are dealt to ranks in
    # turn and every rank runs the same sequence of shapes (a spare rank repeats a batch and discards it), so a
    # sharded (FSDP) model, whose forward is a collective, stays in lockstep.
    by_len: dict[int, list[list[int]]] = {}
    for w in windows:
        by_len.setdefault(len(w), []).append(w)
    for n, group in sorted(by_len.items()):
        batches = [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
        for first in range(0, len(batches), world):
            mine = first + rank
            counted = mine < len(batches)
            chunk = torch.tensor(batches[mine if counted else first], dtype=torch.long, device=device)  # (b, n)
            bos = torch.full((chunk.shape[0], 1), tokenizer.bos_id, dtype=torch.long, device=device)
            inp = torch.cat([bos, chunk[:, :-1]], dim=1)  # (b, n): BOS + all but the last text token
            logits = model(inp).float()  # (b, n, vocab)
            if counted:
                nll = F.cross_entropy(logits.flatten(0, 1), chunk.flatten(), reduction="sum")
                total[0] += nll.double()
                total[1] += chunk.numel()
    if was_training:
        model.train()
    all_reduce_sum(total)
    nats, scored = float(total[0]), int(total[1])
    assert scored == n_tokens, (scored, n_tokens)
    return {"bpb": nats / math.log(2) / n_bytes, "bytes": n_bytes, "tokens": n_tokens,
            "loss": nats / max(1, n_tokens)}
