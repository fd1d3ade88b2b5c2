"""Preference pairs and RL prompts: reading JSONL, turning them into token ids, batching them.

    from llmlab.chat.pref_data import read_pairs, read_prompts, encode_pair, PairBatches
    pairs = read_pairs("data/pref/train.jsonl")        # list[PrefPair]
    prompts = read_prompts("data/pref/rl_train.jsonl") # list[RLPrompt]

Two JSONL formats (one object per line; blank lines are skipped):

* preference pairs ``{"prompt": P, "chosen": C, "rejected": R}`` -- P is a string (one user turn) or a list
  of chat messages ending with a user turn; C and R are strings (one assistant answer) or lists of assistant
  messages (the OpenAI/TRL "conversational" form). Extra keys (``"kind"``, ...) are kept as ``meta``.
* prompts for on-policy RL ``{"prompt": P, "answer": A}`` -- ``answer`` (a string) is optional and is what the
  verifiable-reward checkers compare against.

A malformed line raises ``LlmlabError("FILE:LINE: what is wrong")``. ``llmlab rm|dpo|ppo|grpo`` read these;
``llmlab.tasks.pref_synth`` writes the default ones.

Encoding: ``render_prompt(prompt)`` gives the prompt ids (ending with ``<|assistant|>``), ``render(prompt +
answer)`` the full conversation; the response is everything after the prompt (the answer's tokens and its
closing ``<|end|>``). Batches are right-padded, which a causal model needs no mask for: a real token never
attends to a later (padding) position.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import torch

from llmlab.errors import LlmlabError
from llmlab.model.sequences import pad_sequences


@dataclass
class PrefPair:
    prompt: list[dict]  # chat messages, the last one a user turn
    chosen: list[dict]  # assistant message(s)
    rejected: list[dict]
    meta: dict = field(default_factory=dict)


@dataclass
class RLPrompt:
    prompt: list[dict]
    answer: str | None = None
    meta: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------------
# Reading


def _as_prompt(value, loc: str) -> list[dict]:
    from llmlab.chat.template import validate_messages

    if isinstance(value, str):
        if not value.strip():
            raise LlmlabError(f"{loc}: field 'prompt' is empty")
        return [{"role": "user", "content": value}]
    if isinstance(value, list):
        msgs = validate_messages(value, where=f"{loc}: field 'prompt'")
        if not msgs or msgs[-1]["role"] != "user":
            raise LlmlabError(f"{loc}: field 'prompt' must end with a user message")
        return msgs
    raise LlmlabError(f"{loc}: field 'prompt' must be a string or a list of messages, got {type(value).__name__}")


def _as_answer(value, name: str, loc: str) -> list[dict]:
    from llmlab.chat.template import validate_messages

    if isinstance(value, str):
        return [{"role": "assistant", "content": value}]
    if isinstance(value, list):
        msgs = validate_messages(value, where=f"{loc}: field {name!r}")
        if not msgs or any(m["role"] not in ("assistant", "tool") for m in msgs) or msgs[0]["role"] != "assistant":
            raise LlmlabError(f"{loc}: field {name!r} must hold assistant message(s)")
        return msgs
    raise LlmlabError(f"{loc}: field {name!r} must be a string or a list of messages, got {type(value).__name__}")


def _read_jsonl(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise LlmlabError(f"{path}: file not found")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            loc = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise LlmlabError(f"{loc}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise LlmlabError(f"{loc}: expected a JSON object, got {type(obj).__name__}")
            yield loc, obj


def read_pairs(path: str | Path) -> list[PrefPair]:
    """Preference pairs from JSONL; ``LlmlabError`` naming file:line on the first malformed line."""
    pairs = []
    for loc, obj in _read_jsonl(path):
        for key in ("prompt", "chosen", "rejected"):
            if key not in obj:
                raise LlmlabError(f"{loc}: missing field {key!r} (a preference pair needs prompt, chosen, rejected)")
        chosen, rejected = _as_answer(obj["chosen"], "chosen", loc), _as_answer(obj["rejected"], "rejected", loc)
        if chosen == rejected:
            raise LlmlabError(f"{loc}: 'chosen' and 'rejected' are identical")
        meta = {k: v for k, v in obj.items() if k not in ("prompt", "chosen", "rejected")}
        pairs.append(PrefPair(_as_prompt(obj["prompt"], loc), chosen, rejected, meta))
    if not pairs:
        raise LlmlabError(f"{path}: no preference pairs")
    return pairs


def read_prompts(path: str | Path) -> list[RLPrompt]:
    """Prompts (with optional ``answer``) from JSONL; ``LlmlabError`` naming file:line when malformed."""
    prompts = []
    for loc, obj in _read_jsonl(path):
        if "prompt" not in obj:
            raise LlmlabError(f"{loc}: missing field 'prompt'")
        answer = obj.get("answer")
        if answer is not None and not isinstance(answer, str):
            raise LlmlabError(f"{loc}: field 'answer' must be a string, got {type(answer).__name__}")
        meta = {k: v for k, v in obj.items() if k not in ("prompt", "answer")}
        prompts.append(RLPrompt(_as_prompt(obj["prompt"], loc), answer, meta))
    if not prompts:
        raise LlmlabError(f"{path}: no prompts")
    return prompts


def write_jsonl(path: str | Path, rows: list[dict]) -> None:
    from llmlab.utils.io import atomic_write

    with atomic_write(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


# ----------------------------------------------------------------------------------------------------------
# Encoding


def encode_response(prompt: list[dict], answer: list[dict], tok) -> tuple[list[int], int]:
    """``(ids, prompt_len)``: the whole conversation's ids; positions >= prompt_len are the response."""
    from llmlab.chat.template import render, render_prompt

    p_ids = render_prompt(prompt, tok)
    ids, _ = render(prompt + answer, tok)
    if ids[: len(p_ids)] != p_ids:  # cannot happen with our template; guards a future template change
        raise LlmlabError("chat template: a prompt's rendering is not a prefix of the full conversation")
    return ids, len(p_ids)


@dataclass
class EncodedPair:
    chosen: list[int]
    chosen_start: int  # first response position
    rejected: list[int]
    rejected_start: int


def encode_pairs(pairs: list[PrefPair], tok, max_len: int) -> tuple[list[EncodedPair], int]:
    """Encode pairs, dropping those whose longer side exceeds ``max_len`` tokens; returns (encoded, dropped)."""
    out, dropped = [], 0
    for p in pairs:
        c, cs = encode_response(p.prompt, p.chosen, tok)
        r, rs = encode_response(p.prompt, p.rejected, tok)
        if max(len(c), len(r)) > max_len:
            dropped += 1
            continue
        out.append(EncodedPair(c, cs, r, rs))
    return out, dropped


def pair_batch(enc: list[EncodedPair], pad_id: int) -> dict:
    """One batch of B pairs as 2B rows: chosen rows 0..B-1, rejected rows B..2B-1 (one forward for both).

    Keys: ``input_ids`` (2B, T), ``mask`` (2B, T) response-target mask, ``last`` (2B,), ``num_tokens``."""
    seqs = [e.chosen for e in enc] + [e.rejected for e in enc]
    starts = [e.chosen_start for e in enc] + [e.rejected_start for e in enc]
    ids, mask, last = pad_sequences(seqs, starts, pad_id)
    return {"input_ids": ids, "mask": mask, "last": last, "num_tokens": int(sum(len(s) for s in seqs))}


class PairBatches:
    """An endless, seeded, resumable source of preference-pair batches (for the shared training loop).

    ``next_batch()`` returns ``pair_batch(...)`` plus ``"index"`` (the pairs' positions in ``enc``, so DPO can
    look up its cached reference log-probs). Epochs reshuffle with ``seed + epoch``."""

    def __init__(self, enc: list[EncodedPair], batch_size: int, pad_id: int, seed: int = 0):
        if not enc:
            raise LlmlabError("no preference pairs fit in the model's context")
        self.enc, self.batch_size, self.pad_id, self.seed = enc, min(batch_size, len(enc)), pad_id, seed
        self.epoch, self.pos = 0, 0
        self._order = self._shuffle()

    def _shuffle(self) -> list[int]:
        order = list(range(len(self.enc)))
        random.Random(self.seed + self.epoch).shuffle(order)
        return order

    def next_batch(self) -> dict:
        if self.pos + self.batch_size > len(self._order):
            self.epoch, self.pos = self.epoch + 1, 0
            self._order = self._shuffle()
        index = self._order[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        batch = self._batch([self.enc[i] for i in index])
        batch["index"] = torch.tensor(index, dtype=torch.long)
        return batch

    def _batch(self, enc: list[EncodedPair]) -> dict:
        """The tensors of one batch of pairs (subclasses may lay them out differently)."""
        return pair_batch(enc, self.pad_id)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._order = self._shuffle()
