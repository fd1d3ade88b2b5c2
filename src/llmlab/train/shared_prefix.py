"""Answer log-probs of rows that share prompts, with each distinct prompt run through the model once.

    from llmlab.train.shared_prefix import shared_prompt_logprobs
    logp = shared_prompt_logprobs(model, ids, mask)   # == rl_common.response_token_logprobs on the answers

GRPO scores G sampled answers per prompt, so a rollout's rows are G copies of each prompt followed by short
answers (the speedrun's tasks: ~30 prompt tokens, ~3-16 answer tokens). Running every row whole repeats
each prompt's forward (and backward) G times. Here the distinct prompts go through the model once, left-padded
into one batch, their keys and values are kept per layer (with their autograd history), and every row's
answer then runs against its prompt's keys and values, as the inference engine does with a prefill and its
cache. The log-probs (and their gradients) equal a whole-row forward's up to float rounding
(tests/train/test_shared_prefix.py); only the answer positions are computed (entries elsewhere are 0, as the
response mask expects).

Shapes: ids (B, T) right-padded rows; mask (B, T) the response-target mask of ``pref_data.pad_sequences``
(mask[b, t] = 1 when ids[b, t + 1] is an answer token); the result is (B, T - 1) like
``response_token_logprobs``.
"""

from __future__ import annotations

import torch

from llmlab.model.sequences import CollectKV, PrefixKV, token_logprobs


def shared_prompt_logprobs(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-token log-probs of the answers, (B, T - 1): entry t scores token t + 1 where ``mask[:, t]`` is 1."""
    from llmlab.model.sequences import response_token_logprobs

    B, T = ids.shape
    m = mask[:, :-1] > 0
    has_answer = m.any(1)
    start = m.float().argmax(1) + 1  # (B,) each row's prompt length (its first answer token's index)
    end = T - 1 - m.flip(1).float().argmax(1)  # (B,) each row's last answer token's index
    rows = ids.tolist()
    prompt_of, keys = [], {}
    for b in range(B):
        prompt_of.append(keys.setdefault(tuple(rows[b][: int(start[b])]), len(keys)))
    if len(keys) == B or not bool(has_answer.all()):
        return response_token_logprobs(model, ids)  # nothing shared (or a row without an answer): plain rows
    dev = ids.device
    prompts = list(keys)
    P, Lp = len(prompts), max(len(p) for p in prompts)
    pad = torch.tensor([Lp - len(p) for p in prompts], device=dev)  # (P,) left padding
    p_ids = torch.tensor([[0] * (Lp - len(p)) + list(p) for p in prompts], device=dev)  # (P, Lp)
    ar = torch.arange(Lp, device=dev)
    p_pos = (ar.unsqueeze(0) - pad.unsqueeze(1)).clamp(min=0)  # (P, Lp): real tokens at 0..len-1
    key_ok = ar.unsqueeze(0) >= pad.unsqueeze(1)  # (P, Lp): not onto padding
    causal = torch.ones(Lp, Lp, dtype=torch.bool, device=dev).tril()
    eye = torch.eye(Lp, dtype=torch.bool, device=dev)  # a padding query sees itself: no all -inf softmax row
    p_mask = ((causal & key_ok.unsqueeze(1)) | eye).unsqueeze(1)  # (P, 1, Lp, Lp)
    kv = CollectKV()
    first = model(p_ids, positions=p_pos, kv_cache=kv, attn_mask=p_mask, logits_to_keep=1)[:, 0]  # (P, vocab)

    # Answers: row b's tokens ids[b, start_b : end_b + 1], right-padded to Ta, at positions start_b + j.
    idx = torch.tensor(prompt_of, device=dev)  # (B,) the row's prompt
    Ta = int((end - start + 1).max())
    j = torch.arange(Ta, device=dev)
    cols = (start.unsqueeze(1) + j).clamp(max=T - 1)  # (B, Ta) token indices of the answer in ids
    a_ids = ids.gather(1, cols)
    a_pos = (start.unsqueeze(1) + j).clamp(max=model.config.max_seq_len - 1)  # (B, Ta)
    a_causal = torch.ones(Ta, Ta, dtype=torch.bool, device=dev).tril()  # (Ta, Ta)
    a_mask = torch.cat([key_ok[idx].unsqueeze(1).expand(B, Ta, Lp), a_causal.expand(B, Ta, Ta)], dim=2)
    cache = PrefixKV([k.index_select(0, idx) for k in kv.k], [v.index_select(0, idx) for v in kv.v], Lp)
    logits = model(a_ids, positions=a_pos, kv_cache=cache, attn_mask=a_mask.unsqueeze(1))  # (B, Ta, vocab)

    # Log-probs: the first answer token from its prompt's last logits, the others from the answer pass.
    lp_first = token_logprobs(first.index_select(0, idx).unsqueeze(1), a_ids[:, :1])  # (B, 1)
    lp_rest = token_logprobs(logits[:, :-1], a_ids[:, 1:])  # (B, Ta - 1)
    values = torch.cat([lp_first, lp_rest], dim=1)  # (B, Ta): scores of tokens start_b .. start_b + Ta - 1
    out = torch.zeros(B, T - 1 + Ta, dtype=values.dtype, device=dev)
    out = out.scatter(1, start.unsqueeze(1) - 1 + j, values)  # entry t scores token t + 1
    return out[:, : T - 1] * m
