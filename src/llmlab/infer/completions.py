"""Sampled answers to chat prompts through the engine, and packing prompt + answer rows: what RL rollouts,
ranked preference pairs and the RL evaluations share.

    from llmlab.infer.completions import encode_prompts, sample_completions, pack
    prompts, dropped = encode_prompts(rl_prompts, tok, max_len=model.config.max_seq_len)
    samples = sample_completions(policy, tok, [ids for ids, _ in prompts], n=4, max_new_tokens=32, seed=0)
    samples[0][2].text, samples[0][2].ids, samples[0][2].finished      # prompt 0, sample 2
    ids, mask, last = pack([p for p, _ in prompts], [s[0].ids for s in samples], tok.pad_id)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from llmlab.chat.pref_data import RLPrompt
from llmlab.model.sequences import pad_sequences


@dataclass
class Completion:
    ids: list[int]  # the generated tokens (including the stop token if the answer stopped)
    text: str  # decoded answer without the stop token
    finished: bool  # True when a stop token ended it (False: it hit the token limit)


@torch.no_grad()
def sample_completions(policy, tok, prompts: list[list[int]], *, n: int = 1, max_new_tokens: int = 64,
                       temperature: float = 1.0, top_k: int = 0, seed: int | None = None) -> list[list[Completion]]:
    """``n`` sampled answers for every prompt (one shared prefill per prompt), through the engine.

    The engine stops a row at a stop token (kept in ``ids``), after ``max_new_tokens``, or when prompt +
    answer fill the model's context. The engine holds no copy of the weights: it samples the current policy."""
    from llmlab.chat.template import stop_token_ids
    from llmlab.infer.engine import Engine
    from llmlab.infer.sampling import SamplingParams

    was_training = policy.training
    policy.eval()
    stops = stop_token_ids(tok)
    try:
        engine = Engine(policy, eos_token_ids=stops)
        # One seed per prompt: the engine derives sample j's seed from (seed, j) alone, so a shared seed would
        # give every prompt the same random draws (near-identical answers to similar prompts).
        params = [SamplingParams(n=n, temperature=temperature, top_k=top_k, max_new_tokens=max_new_tokens,
                                 stop_token_ids=tuple(stops), seed=None if seed is None else seed * 100003 + i)
                  for i in range(len(prompts))]
        results = engine.generate(prompts, params)
    finally:
        policy.train(was_training)
    out: list[list[Completion]] = []
    for res in results:
        group = []
        for s in res.samples:
            ids = list(s.token_ids)
            finished = s.finish_reason == "stop"
            body = ids[:-1] if finished else ids
            group.append(Completion(ids, tok.decode(body), finished))
        out.append(group)
    return out


def pack(prompts: list[list[int]], completions: list[list[int]], pad_id: int):
    """Right-padded (prompt + answer) rows: ids (B, T), response-target mask (B, T), last index (B,).
    An empty answer (the engine returned nothing) keeps one pad token so every row scores something."""
    seqs, starts = [], []
    for p, c in zip(prompts, completions):
        seqs.append(p + (c if c else [pad_id]))
        starts.append(len(p))
    return pad_sequences(seqs, starts, pad_id)


def encode_prompts(prompts: list[RLPrompt], tok, max_len: int, min_answer_room: int = 8):
    """``[(prompt_ids, RLPrompt)]`` for prompts that leave at least ``min_answer_room`` tokens to answer."""
    from llmlab.chat.template import render_prompt

    out, dropped = [], 0
    for p in prompts:
        ids = render_prompt(p.prompt, tok)
        if len(ids) + min_answer_room > max_len:
            dropped += 1
            continue
        out.append((ids, p))
    return out, dropped
