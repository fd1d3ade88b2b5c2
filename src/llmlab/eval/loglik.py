"""Log-likelihoods of continuations given contexts, batched, each distinct context run through the model once.

    from llmlab.eval.loglik import score_continuations
    out = score_continuations(model, [(ctx_ids, cont_a), (ctx_ids, cont_b), (other_ctx, cont_c)])
    out[0].logprob, out[0].greedy, out[0].token_logprobs   # log p(cont_a | ctx), whether greedy decoding gives it

Multiple-choice tasks score k continuations of one context. Running each (context + continuation) row whole
repeats the context's forward k times; a cloze item's context is ~100 tokens and its choices 1-3 tokens, so
almost all of that work is the repeat. Here, as in the inference engine's prefill and ``train/shared_prefix.py``
(the same technique with autograd, for RL), the distinct contexts of a batch go through the model once,
left-padded, with their keys and values collected per layer (a stand-in KV cache passed to ``GPT.forward``);
the continuations then run against their context's keys and values. Only the plain model forward is used, so
the numbers equal a whole-row forward's up to float rounding (``tests/eval/test_loglik.py`` checks).

Shapes: P distinct contexts padded to Lp; B continuations, each fed without its last token (Ta = the longest
continuation - 1); the first continuation token is scored from its context's last logits.

Context window: the input is context + continuation[:-1], which must fit the model's ``max_seq_len``. A longer
context keeps its most recent tokens (``truncated`` counts the tokens cut); a continuation longer than the
window itself is an error for that request (``ItemError``), not for the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from llmlab.model.sequences import CollectKV, PrefixKV, token_logprobs


@dataclass
class ItemError:
    """A request that could not be scored (the rest of its batch and task go on)."""

    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class Scored:
    logprob: float  # sum of the continuation's token log-probs (nats)
    greedy: bool  # every continuation token is the argmax of its distribution
    token_logprobs: list[float]
    truncated: int = 0  # context tokens cut from the left to fit the window


def fit_window(ctx: list[int], cont: list[int], window: int) -> tuple[list[int], int] | ItemError:
    """The context cut to fit ``window`` with the continuation (input = ctx + cont[:-1]); (ctx, tokens cut)."""
    if not cont:
        return ItemError("empty continuation: nothing to score")
    if not ctx:
        return ItemError("empty context: a continuation needs at least one token (e.g. <|bos|>) before it")
    if len(cont) > window:
        return ItemError(f"continuation of {len(cont)} tokens does not fit the model's context of {window}")
    keep = window + 1 - len(cont)
    return (ctx[-keep:], max(0, len(ctx) - keep))


@torch.no_grad()
def score_continuations(model, pairs: list[tuple[list[int], list[int]]], *, batch_rows: int = 64,
                        window: int | None = None) -> list[Scored | ItemError]:
    """Score each (context ids, continuation ids) pair; results in the order of ``pairs``."""
    window = window or model.config.max_seq_len
    dev = next(model.parameters()).device
    results: list[Scored | ItemError | None] = [None] * len(pairs)
    groups: dict[tuple[int, ...], list[int]] = {}
    cut: dict[int, int] = {}
    for i, (ctx, cont) in enumerate(pairs):
        fitted = fit_window(list(ctx), list(cont), window)
        if isinstance(fitted, ItemError):
            results[i] = fitted
            continue
        groups.setdefault(tuple(fitted[0]), []).append(i)
        cut[i] = fitted[1]
    # Long contexts first; a batch takes whole groups until it holds batch_rows continuations.
    order = sorted(groups, key=len, reverse=True)
    batch: list[tuple[int, ...]] = []
    rows = 0
    was_training = model.training
    model.eval()
    try:
        for key in order:
            batch.append(key)
            rows += len(groups[key])
            if rows >= batch_rows:
                _score_batch(model, batch, groups, pairs, cut, results, dev)
                batch, rows = [], 0
        if batch:
            _score_batch(model, batch, groups, pairs, cut, results, dev)
    finally:
        model.train(was_training)
    return results  # type: ignore[return-value]


def _score_batch(model, contexts, groups, pairs, cut, results, dev) -> None:
    P, Lp = len(contexts), max(len(c) for c in contexts)
    pad = torch.tensor([Lp - len(c) for c in contexts], device=dev)  # (P,) left padding
    p_ids = torch.tensor([[0] * (Lp - len(c)) + list(c) for c in contexts], device=dev)  # (P, Lp)
    ar = torch.arange(Lp, device=dev)
    p_pos = (ar.unsqueeze(0) - pad.unsqueeze(1)).clamp(min=0)  # (P, Lp): real tokens at 0..len-1
    key_ok = ar.unsqueeze(0) >= pad.unsqueeze(1)  # (P, Lp): a key that is not padding
    causal = torch.ones(Lp, Lp, dtype=torch.bool, device=dev).tril()
    eye = torch.eye(Lp, dtype=torch.bool, device=dev)  # a padding query sees itself: no all -inf softmax row
    p_mask = ((causal & key_ok.unsqueeze(1)) | eye).unsqueeze(1)  # (P, 1, Lp, Lp)
    kv = CollectKV()
    first = model(p_ids, positions=p_pos, kv_cache=kv, attn_mask=p_mask, logits_to_keep=1)[:, 0].float()  # (P, V)

    members = [(g, i) for g, key in enumerate(contexts) for i in groups[key]]
    B = len(members)
    conts = [list(pairs[i][1]) for _, i in members]
    g_idx = torch.tensor([g for g, _ in members], device=dev)  # (B,) each row's context
    first_tok = torch.tensor([c[0] for c in conts], device=dev)  # (B,)
    f_logits = first.index_select(0, g_idx)  # (B, V)
    lp_first = token_logprobs(f_logits.unsqueeze(1), first_tok.unsqueeze(1))[:, 0]  # (B,)
    greedy_first = f_logits.argmax(-1) == first_tok  # (B,)
    Ta = max(len(c) for c in conts) - 1
    lp_rest = greedy_rest = None
    if Ta > 0:
        # Continuations fed without their last token, right-padded (a pad query's output is never read).
        a_ids = torch.tensor([c[:-1] + [0] * (Ta - len(c) + 1) for c in conts], device=dev)  # (B, Ta)
        ctx_len = torch.tensor([len(contexts[g]) for g, _ in members], device=dev)  # (B,)
        j = torch.arange(Ta, device=dev)
        a_pos = (ctx_len.unsqueeze(1) + j).clamp(max=model.config.max_seq_len - 1)  # (B, Ta)
        a_causal = torch.ones(Ta, Ta, dtype=torch.bool, device=dev).tril()
        a_mask = torch.cat([key_ok[g_idx].unsqueeze(1).expand(B, Ta, Lp), a_causal.expand(B, Ta, Ta)], dim=2)
        cache = PrefixKV([k.index_select(0, g_idx) for k in kv.k], [v.index_select(0, g_idx) for v in kv.v], Lp)
        logits = model(a_ids, positions=a_pos, kv_cache=cache, attn_mask=a_mask.unsqueeze(1)).float()  # (B, Ta, V)
        targets = torch.tensor([c[1:] + [0] * (Ta - len(c) + 1) for c in conts], device=dev)  # (B, Ta)
        lp_rest = token_logprobs(logits, targets)  # (B, Ta)
        greedy_rest = logits.argmax(-1) == targets  # (B, Ta)
    for b, (_, i) in enumerate(members):
        n = len(conts[b])
        lps = [float(lp_first[b])] + ([float(x) for x in lp_rest[b, : n - 1]] if n > 1 else [])
        greedy = bool(greedy_first[b]) and (n == 1 or bool(greedy_rest[b, : n - 1].all()))
        results[i] = Scored(sum(lps), greedy, lps, cut[i])
