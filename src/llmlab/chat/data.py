"""Conversation data on disk: JSONL in the formats users already have.

    from llmlab.chat.data import load_conversations, write_conversations
    convs, n_bad = load_conversations("chats.jsonl")                  # malformed line -> LlmlabError
    convs, n_bad = load_conversations("chats.jsonl", skip_bad=True)   # or skip it and count it

One JSON object per line, either

* OpenAI-style ``{"messages": [{"role": "system"|"user"|"assistant"|"tool", "content": "..."}, ...]}``, or
* ``{"prompt": "...", "completion": "..."}`` (optionally ``"system": "..."``), read as one user turn and one
  assistant turn. ``prompt`` may also be a list of messages, which the completion then answers.

Any other keys ride along in ``Conversation.meta`` (the bundled generator stores ``kind`` and ``answer``
there, which the exact-match evaluation reads). Blank lines are ignored. Errors name the file, the line
and the field: ``chats.jsonl:12: messages[1]: field 'role' must be one of ...``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from llmlab.chat.template import validate_messages
from llmlab.errors import LlmlabError


@dataclass
class Conversation:
    messages: list[dict]
    meta: dict = field(default_factory=dict)  # e.g. {"kind": "arithmetic", "answer": "42"}

    def to_json(self) -> dict:
        return {"messages": self.messages, **self.meta}


def parse_record(obj, where: str, require_assistant: bool = True) -> Conversation:
    """One decoded JSON line -> ``Conversation``; ``where`` (``file:line``) prefixes every error."""
    if not isinstance(obj, dict):
        raise LlmlabError(f"{where}: expected a JSON object with 'messages' or 'prompt'/'completion', "
                          f"got {type(obj).__name__}")
    if "messages" in obj:
        messages = validate_messages(obj["messages"], where=where)
        meta = {k: v for k, v in obj.items() if k != "messages"}
    elif "prompt" in obj or "completion" in obj:
        for key in ("prompt", "completion"):
            if key not in obj:
                raise LlmlabError(f"{where}: field {key!r} is missing")
        if not isinstance(obj["completion"], str):
            raise LlmlabError(f"{where}: field 'completion' must be a string")
        prompt = obj["prompt"]
        if isinstance(prompt, str):
            head = []
            if "system" in obj:
                if not isinstance(obj["system"], str):
                    raise LlmlabError(f"{where}: field 'system' must be a string")
                head = [{"role": "system", "content": obj["system"]}]
            prompt_msgs = head + [{"role": "user", "content": prompt}]
        elif isinstance(prompt, list):
            prompt_msgs = list(prompt)
        else:
            raise LlmlabError(f"{where}: field 'prompt' must be a string or a list of messages")
        messages = validate_messages(prompt_msgs + [{"role": "assistant", "content": obj["completion"]}],
                                     where=where, field="prompt")
        meta = {k: v for k, v in obj.items() if k not in ("prompt", "completion", "system")}
    else:
        raise LlmlabError(f"{where}: expected field 'messages' (or 'prompt' and 'completion'); "
                          f"found {sorted(obj)[:5]}")
    if require_assistant and not any(m["role"] == "assistant" for m in messages):
        raise LlmlabError(f"{where}: field 'messages' has no assistant message to learn from")
    return Conversation(messages, meta)


def load_conversations(path: str | Path, skip_bad: bool = False,
                       require_assistant: bool = True) -> tuple[list[Conversation], int]:
    """``(conversations, n_skipped)`` from a JSONL file. Without ``skip_bad`` the first malformed line raises
    ``LlmlabError("FILE:LINE: ...")``; with it, malformed lines are counted and skipped."""
    path = Path(path)
    if not path.is_file():
        raise LlmlabError(f"{path}: conversation file not found")
    convs: list[Conversation] = []
    bad = 0
    with open(path, encoding="utf-8", errors="strict") as f:
        lineno = 0
        while True:
            lineno += 1
            try:
                line = f.readline()
            except UnicodeDecodeError:
                raise LlmlabError(f"{path}:{lineno}: not valid UTF-8") from None
            if not line:
                break
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise LlmlabError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from None
                convs.append(parse_record(obj, where, require_assistant=require_assistant))
            except LlmlabError:
                if not skip_bad:
                    raise
                bad += 1
    if not convs:
        raise LlmlabError(f"{path}: no usable conversations" + (f" ({bad} malformed lines skipped)" if bad else ""))
    return convs, bad


def write_conversations(path: str | Path, convs: Iterable[Conversation]) -> int:
    """Write conversations as JSONL (atomically); returns the number written."""
    from llmlab.utils.io import atomic_write

    n = 0
    with atomic_write(path, "w") as f:
        for c in convs:
            f.write(json.dumps(c.to_json(), ensure_ascii=False) + "\n")
            n += 1
    return n
