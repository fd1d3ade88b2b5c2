"""The chat template: conversations <-> token ids and a loss mask, over the tokenizer's special tokens.

    from llmlab.chat.template import render, render_prompt, render_text, CHAT_TEMPLATE
    msgs = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 2+3?"},
            {"role": "assistant", "content": "5"}]
    ids, mask = render(msgs, tok)                  # training: mask is 1 on what the assistant produced
    ids = render_prompt(msgs[:2], tok)             # generation: ends with <|assistant|>
    render_text(msgs)                              # the same conversation as text (== CHAT_TEMPLATE via Jinja)

The format (docs/DESIGN.md, "Special tokens")::

    <|bos|><|system|>Be brief.<|end|><|user|>What is 2+3?<|end|><|assistant|>5<|end|>

``<|bos|>`` once, then every message as its role token, its content and ``<|end|>``. Content is encoded as
ordinary text, so a user who types ``<|end|>`` gets bytes, never the special token.

Tools. An assistant turn may hold tool calls and tool results. Two spellings, rendered identically:

* an assistant ``content`` that is a list of parts ``{"type": "text" | "tool_call" | "tool_result",
  "text": ...}``;
* OpenAI-style separate messages: ``assistant`` (the call), ``tool`` (the result), ``assistant`` (the rest).
  A ``tool`` message continues the assistant turn before it, and an ``assistant`` message right after a
  ``tool`` message continues that same turn (no second ``<|assistant|>``).

A call renders as ``<|tool_call|>...<|/tool_call|>`` and a result as ``<|tool_result|>...<|/tool_result|>``::

    <|assistant|>Let me add.<|tool_call|>calc 2+3<|/tool_call|><|tool_result|>5<|/tool_result|>It is 5.<|end|>

Thinking. An assistant part ``{"type": "think", "text": ...}`` renders as ``<|think|>...<|/think|>``: the
chain of thought before the answer, trained on like the rest of the answer. ``split_think(text)`` separates
it from the final answer again (generated text shows special tokens by name); callers show the answer alone
unless asked for the thought::

    <|assistant|><|think|>4 + 8 = 12 (left: 4 6 12) ...<|/think|>(6 - 4) * (4 + 8) = 24<|end|>

Loss mask. 1 exactly on the tokens the assistant produces -- its text, its tool calls (with their delimiters)
and the ``<|end|>`` that closes its turn -- and 0 on everything else: ``<|bos|>``, system and user turns, the
``<|assistant|>`` role token (it is part of the prompt the engine writes), and tool results with their
delimiters (the tool wrote them, not the model). ``mask[i]`` says whether ``ids[i]`` is a training target.

Context overflow (``max_len``): drop whole exchanges from the oldest, each exchange being a user message and
everything up to the next user message, but always keep the system prompt and the last user message with
what follows it. If that still does not fit, ``render`` cuts the end (the caller can see the last id is not
``<|end|>``; SFT skips such conversations), and ``render_prompt`` keeps ``<|bos|>`` + the system turn and the
most recent tokens of the rest, so the prompt still ends with ``<|assistant|>``.

Imported models. A tokenizer that carries its model's own ``chat_template`` (an ``ImportedTokenizer``) is
rendered with that template instead (``chat/model_template.py``: sandboxed Jinja as in transformers, content
never turned into special tokens, the loss mask found by rendering, the model's add-BOS rule); ``render``,
``render_prompt``, ``fit_messages`` and ``stop_token_ids`` take either kind of tokenizer, and llmlab's own runs
keep the native format above.
"""

from __future__ import annotations

from typing import Any, Sequence

from llmlab.errors import LlmlabError

ROLES = ("system", "user", "assistant", "tool")
PART_TYPES = ("text", "tool_call", "tool_result", "think")

BOS, END = "<|bos|>", "<|end|>"
ROLE_TOKEN = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
TOOL_CALL, TOOL_CALL_END = "<|tool_call|>", "<|/tool_call|>"
TOOL_RESULT, TOOL_RESULT_END = "<|tool_result|>", "<|/tool_result|>"
THINK, THINK_END = "<|think|>", "<|/think|>"

# The same format as a Jinja template for Hugging Face ``tokenizer.apply_chat_template`` (exported into
# tokenizer_config.json). Every tag strips whitespace ({%- -%}) so the result does not depend on the
# environment's trim_blocks/lstrip_blocks settings. tests/chat/test_template.py checks it renders exactly
# what render_text does.
CHAT_TEMPLATE = (
    "{{- '<|bos|>' -}}"
    "{%- for message in messages -%}"
    "{%- set prev = messages[loop.index0 - 1]['role'] if not loop.first else '' -%}"
    "{%- set next = messages[loop.index0 + 1]['role'] if not loop.last else '' -%}"
    "{%- if message['role'] == 'tool' -%}"
    "{{- '<|tool_result|>' + message['content'] + '<|/tool_result|>' -}}"
    "{%- if next != '' and next != 'assistant' and next != 'tool' -%}{{- '<|end|>' -}}{%- endif -%}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{%- if prev != 'tool' -%}{{- '<|assistant|>' -}}{%- endif -%}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'tool_call' -%}{{- '<|tool_call|>' + part['text'] + '<|/tool_call|>' -}}"
    "{%- elif part['type'] == 'tool_result' -%}{{- '<|tool_result|>' + part['text'] + '<|/tool_result|>' -}}"
    "{%- elif part['type'] == 'think' -%}{{- '<|think|>' + part['text'] + '<|/think|>' -}}"
    "{%- else -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- if next != 'tool' -%}{{- '<|end|>' -}}{%- endif -%}"
    "{%- else -%}"
    "{{- '<|' + message['role'] + '|>' + message['content'] + '<|end|>' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt and (messages | length == 0 or messages[-1]['role'] != 'tool') -%}"
    "{{- '<|assistant|>' -}}"
    "{%- endif -%}"
)


# ----------------------------------------------------------------------------------------------------------
# Validation


def validate_messages(messages: Any, where: str | None = None, field: str = "messages") -> list[dict]:
    """Check the structure and return a list of plain ``{"role", "content"}`` dicts (a copy).

    Raises ``LlmlabError`` naming ``where`` (e.g. ``file.jsonl:12``), ``field`` and the message index
    (``file.jsonl:12: messages[1]: field 'role' ...``) for: a non-list, an unknown role, a
    non-string content (or a malformed part list for assistants), a system message that is not first, a
    tool message that does not follow an assistant or tool message.
    """
    prefix = f"{where}: " if where else ""
    if not isinstance(messages, (list, tuple)):
        raise LlmlabError(f"{prefix}field {field!r}: expected a list of messages, got {type(messages).__name__}")
    out = []
    for i, m in enumerate(messages):
        loc = f"{prefix}{field}[{i}]"
        if not isinstance(m, dict):
            raise LlmlabError(f"{loc}: a message must be an object with 'role' and 'content'")
        role = m.get("role")
        if role not in ROLES:
            raise LlmlabError(f"{loc}: field 'role' must be one of {', '.join(ROLES)}, got {role!r}")
        content = m.get("content")
        if role == "assistant" and isinstance(content, list):
            parts = []
            for j, p in enumerate(content):
                if not isinstance(p, dict) or p.get("type") not in PART_TYPES or not isinstance(p.get("text"), str):
                    raise LlmlabError(f"{loc}: field 'content[{j}]' must be {{\"type\": one of "
                                      f"{', '.join(PART_TYPES)}, \"text\": string}}")
                parts.append({"type": p["type"], "text": p["text"]})
            content = parts
        elif not isinstance(content, str):
            raise LlmlabError(f"{loc}: field 'content' must be a string, got {type(content).__name__}")
        if role == "system" and i != 0:
            raise LlmlabError(f"{loc}: a system message may only come first")
        if role == "tool" and (i == 0 or out[-1]["role"] not in ("assistant", "tool")):
            raise LlmlabError(f"{loc}: a tool message must follow an assistant (or tool) message")
        out.append({"role": role, "content": content})
    return out


# ----------------------------------------------------------------------------------------------------------
# Rendering: one list of (text, special?, trainable?) segments, shared by text, ids and mask


def _segments(messages: Sequence[dict], add_generation_prompt: bool) -> list[tuple[str, bool, bool]]:
    """The conversation as ``(text, is_special_token, trainable)`` pieces, in the order of CHAT_TEMPLATE."""
    segs: list[tuple[str, bool, bool]] = [(BOS, True, False)]
    n = len(messages)
    for i, m in enumerate(messages):
        role, content = m["role"], m["content"]
        prev = messages[i - 1]["role"] if i > 0 else ""
        nxt = messages[i + 1]["role"] if i + 1 < n else ""
        if role == "tool":
            segs += [(TOOL_RESULT, True, False), (content, False, False), (TOOL_RESULT_END, True, False)]
            if nxt not in ("", "assistant", "tool"):
                segs.append((END, True, True))  # the assistant's turn ended with this result; close it
        elif role == "assistant":
            if prev != "tool":
                segs.append((ROLE_TOKEN["assistant"], True, False))
            parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
            for p in parts:
                if p["type"] == "tool_call":
                    segs += [(TOOL_CALL, True, True), (p["text"], False, True), (TOOL_CALL_END, True, True)]
                elif p["type"] == "tool_result":
                    segs += [(TOOL_RESULT, True, False), (p["text"], False, False), (TOOL_RESULT_END, True, False)]
                elif p["type"] == "think":
                    segs += [(THINK, True, True), (p["text"], False, True), (THINK_END, True, True)]
                else:
                    segs.append((p["text"], False, True))
            if nxt != "tool":
                segs.append((END, True, True))
        else:
            segs += [(ROLE_TOKEN[role], True, False), (content, False, False), (END, True, False)]
    if add_generation_prompt and (n == 0 or messages[-1]["role"] != "tool"):
        segs.append((ROLE_TOKEN["assistant"], True, False))
    return segs


def render_text(messages: Sequence[dict], add_generation_prompt: bool = False) -> str:
    """The conversation as text, exactly as ``CHAT_TEMPLATE`` renders it."""
    return "".join(text for text, _, _ in _segments(validate_messages(messages), add_generation_prompt))


def _encode_segments(segs, tokenizer) -> tuple[list[int], list[int]]:
    ids: list[int] = []
    mask: list[int] = []
    for text, special, trainable in segs:
        piece = [tokenizer.special_id(text)] if special else tokenizer.encode(text)
        ids += piece
        mask += [int(trainable)] * len(piece)
    return ids, mask


def _model_template(tokenizer) -> str | None:
    return getattr(tokenizer, "chat_template", None)


def _validate(messages, tokenizer) -> list[dict]:
    if _model_template(tokenizer):
        from llmlab.chat.model_template import validate_model_messages

        return validate_model_messages(messages)
    return validate_messages(messages)


def _render_ids(messages: Sequence[dict], tokenizer, add_generation_prompt: bool, **template_kwargs):
    """``(ids, mask)`` with the tokenizer's own template, or the native one."""
    if _model_template(tokenizer):
        from llmlab.chat.model_template import render_model

        return render_model(messages, tokenizer, add_generation_prompt=add_generation_prompt, **template_kwargs)
    if template_kwargs:
        raise LlmlabError(f"llmlab's native chat template takes no {', '.join(template_kwargs)}")
    return _encode_segments(_segments(messages, add_generation_prompt), tokenizer)


def _exchange_starts(messages: Sequence[dict]) -> list[int]:
    """Indices of the user messages: each starts an exchange that truncation may drop as a whole."""
    return [i for i, m in enumerate(messages) if m["role"] == "user"]


def fit_messages(messages: Sequence[dict], tokenizer, max_len: int, add_generation_prompt: bool = False,
                 **template_kwargs) -> list[dict]:
    """The overflow policy: drop the oldest exchanges (keeping the system prompt and the last user message
    with everything after it) until the rendering fits in ``max_len`` tokens, or nothing more may be
    dropped. The result may still be too long; the caller decides what to do then."""
    msgs = _validate(messages, tokenizer)
    has_system = bool(msgs) and msgs[0]["role"] == "system"
    head = msgs[:1] if has_system else []
    body = msgs[1:] if has_system else list(msgs)
    while True:
        ids, _ = _render_ids(head + body, tokenizer, add_generation_prompt, **template_kwargs)
        if len(ids) <= max_len:
            break
        starts = _exchange_starts(body)
        if not starts:
            break  # no user message: nothing we may drop
        # Everything before the second exchange start goes (a leading assistant greeting goes with the first
        # exchange); the last user message and what follows it always stay.
        if len(starts) >= 2:
            body = body[starts[1]:]
        elif starts[0] > 0:
            body = body[starts[0]:]
        else:
            break
    return head + body


def render(messages: Sequence[dict], tokenizer, max_len: int | None = None,
           **template_kwargs) -> tuple[list[int], list[int]]:
    """``(ids, loss_mask)`` for training. With ``max_len``, the overflow policy applies (see the module doc);
    a conversation that still does not fit is cut at the end. ``template_kwargs`` (``tools=...``) go to a
    model's own template."""
    msgs = _validate(messages, tokenizer)
    if max_len is not None:
        msgs = fit_messages(msgs, tokenizer, max_len, **template_kwargs)
    ids, mask = _render_ids(msgs, tokenizer, False, **template_kwargs)
    if max_len is not None and len(ids) > max_len:
        ids, mask = ids[:max_len], mask[:max_len]
    return ids, mask


def render_prompt(messages: Sequence[dict], tokenizer, max_len: int | None = None, **template_kwargs) -> list[int]:
    """Ids for generation: the conversation followed by ``<|assistant|>`` (or, after a tool result, nothing:
    the assistant's turn is still open; a model's own template: its generation prompt). With ``max_len``, the
    overflow policy applies; if the system turn and the last user message still do not fit, the oldest tokens
    after the system turn are cut."""
    msgs = _validate(messages, tokenizer)
    if max_len is None:
        return _render_ids(msgs, tokenizer, True, **template_kwargs)[0]
    msgs = fit_messages(msgs, tokenizer, max_len, add_generation_prompt=True, **template_kwargs)
    ids, _ = _render_ids(msgs, tokenizer, True, **template_kwargs)
    if len(ids) <= max_len:
        return ids
    has_system = bool(msgs) and msgs[0]["role"] == "system"
    head_len = len(_render_ids(msgs[:1], tokenizer, False, **template_kwargs)[0]) if has_system else \
        int(bool(ids) and ids[0] == getattr(tokenizer, "bos_id", None))
    keep = max_len - head_len
    if keep < 2:
        raise LlmlabError(f"the system prompt alone takes {head_len} tokens; the context holds {max_len}")
    return ids[:head_len] + ids[-keep:]


def split_think(text: str) -> tuple[str, str]:
    """``(thought, answer)`` of a generated assistant text: the ``<|think|>...<|/think|>`` span (or the
    ``<think>...</think>`` spelling other models use) and what follows it. Without a span the thought is ''
    and the answer is the text; a span that never closes (the model ran out of tokens) leaves no answer."""
    for start, end in ((THINK, THINK_END), ("<think>", "</think>")):
        i = text.find(start)
        if i < 0:
            continue
        j = text.find(end, i + len(start))
        if j < 0:
            return text[i + len(start):].strip(), ""
        return text[i + len(start): j].strip(), (text[:i] + text[j + len(end):]).strip()
    return "", text.strip()


def stop_token_ids(tokenizer) -> list[int]:
    """Tokens that end an assistant answer when generating: ``<|end|>``, plus tokens that may never appear
    inside an assistant turn (a new role, a new conversation) so a confused model still stops there. An
    imported model: its own stop tokens (eos ids, ``generation_config.json``'s, GGUF's end-of-turn ids)."""
    if getattr(tokenizer, "kind", "native") != "native":
        return list(tokenizer.stop_ids)
    names = ("<|user|>", "<|system|>", "<|assistant|>", "<|bos|>", "<|endoftext|>")
    return [tokenizer.end_id] + [tokenizer.special_id(n) for n in names]
