"""A model's own chat template (Jinja), rendered as transformers renders it, with ids and a loss mask.

    from llmlab.chat.model_template import render_template, render_model
    text = render_template(tok.chat_template, messages, add_generation_prompt=True, bos_token="<s>")
    ids, mask = render_model(messages, tok)                          # training: mask 1 on what the assistant says
    ids = render_model(messages, tok, add_generation_prompt=True)[0]  # generation

``llmlab.chat.template`` calls this for a tokenizer that carries a ``chat_template`` (an imported model);
llmlab's own runs keep the native template.

Rendering. Templates come from files anyone can publish, so they run in Jinja's
``ImmutableSandboxedEnvironment`` with transformers' settings: ``trim_blocks`` and ``lstrip_blocks``, the
``loopcontrols`` extension, ``raise_exception(msg)``, ``strftime_now(fmt)``, a ``tojson`` filter that does not
escape HTML (``ensure_ascii=False``, optional ``indent``...), the ``{% generation %}`` block (rendered as its
body), and the variables ``messages``, ``tools``, ``documents``, ``add_generation_prompt`` and the special
tokens' texts (``bos_token``, ``eos_token``, ...). A syntax error, or a conversation the template refuses, is
a one-line ``LlmlabError``.

Ids. Every message's content is rendered wrapped in private-use marker characters, so the text can be cut into
template text (whose special tokens, ``<|im_start|>``, ``</s>``, become special ids) and message content
(encoded as plain text: a user who types ``<|im_end|>`` gets its bytes, never the token), and encoded as one
text (``ImportedTokenizer.encode_segments``): the same ids as ``tokenizer.encode(rendered,
allowed_special="all")`` and transformers' ``apply_chat_template(tokenize=True)`` for ordinary content. A
template that changes content (``| trim`` of a padded string...) is caught by comparing the marked render with
the plain one; then the plain text is encoded with every special token allowed, as transformers does. The bos
token: an HF model's template writes it itself (``{{ bos_token }}``) and transformers adds nothing; a GGUF
model follows llama.cpp, which puts the bos token in front when the tokenizer adds one and the rendering does
not already start with it.

Loss mask (what SFT and DPO train on), found by rendering, for each assistant message ``i``:

* it starts where the generation prompt of the conversation before it ends (``messages[:i]`` rendered with
  ``add_generation_prompt=True`` is a prefix of the whole rendering), so the role header the template writes
  is prompt, not target; if that render is not a prefix, at the start of the message's content;
* it ends after the first end-of-turn token (the tokenizer's eos / stop tokens) that the template writes after
  the message's content and before the next message's content, so the model learns to stop; tool calls the
  template renders from ``tool_calls`` sit in that stretch and are trained too. Without such a token, it ends
  with the content (the native format's tool call, answered by a tool message, is an example).

Characters become tokens by encoding the prefix up to each boundary: token ``k`` is trained when it lies
between the two boundaries' longest common prefixes with the full encoding. On llmlab's own format this gives
exactly the native template's mask (``tests/chat/test_model_template.py``).
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any, Sequence

from llmlab.errors import LlmlabError

OPEN, MID, CLOSE = "\ue000", "\ue001", "\ue002"  # marker: OPEN <message index> MID content CLOSE


# ----------------------------------------------------------------------------------------------------------
# The sandboxed environment


@functools.lru_cache(maxsize=16)
def compile_template(source: str):
    """The template compiled in transformers' sandboxed environment (cached by source)."""
    import jinja2
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationBlock(Extension):
        """``{% generation %}...{% endgeneration %}`` (transformers' assistant-mask marker): its body."""

        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationBlock, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as e:
        raise LlmlabError(f"chat template: line {e.lineno}: {e.message}") from None


def render_template(source: str, messages: Sequence[dict], *, add_generation_prompt: bool = False,
                    tools: list | None = None, documents: list | None = None, **variables) -> str:
    """The template's text for ``messages`` (what transformers' ``apply_chat_template(tokenize=False)`` gives
    with the same special-token variables)."""
    import jinja2

    template = compile_template(source)
    try:
        return template.render(messages=list(messages), tools=tools, documents=documents,
                               add_generation_prompt=add_generation_prompt, **variables)
    except jinja2.exceptions.SecurityError as e:
        raise LlmlabError(f"chat template: blocked by the sandbox ({e})") from None
    except jinja2.TemplateError as e:
        raise LlmlabError(f"chat template refused the conversation: {str(e).splitlines()[0] if str(e) else e}") \
            from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
        raise LlmlabError(f"chat template failed on this conversation ({type(e).__name__}: {e})") from None


# ----------------------------------------------------------------------------------------------------------
# Messages


def validate_model_messages(messages: Any, where: str | None = None) -> list[dict]:
    """Messages for a model's template: dicts with a string ``role``; ``content`` a string, a list of parts, or
    absent/None (an assistant message that only calls tools). Other keys (``tool_calls``, ``name``...) are
    kept for the template. Returns copies."""
    prefix = f"{where}: " if where else ""
    if not isinstance(messages, (list, tuple)):
        raise LlmlabError(f"{prefix}field 'messages': expected a list of messages, got {type(messages).__name__}")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise LlmlabError(f"{prefix}messages[{i}]: a message must be an object with a string 'role'")
        c = m.get("content")
        if c is not None and not isinstance(c, (str, list)):
            raise LlmlabError(f"{prefix}messages[{i}]: field 'content' must be a string or a list of parts")
        out.append(json.loads(json.dumps(m)))  # a plain-JSON copy: the template sees nothing else
    return out


def _mark(messages: list[dict]) -> list[dict] | None:
    """Copies with every content string wrapped in markers, or None if content already holds a marker."""
    out = []
    for i, m in enumerate(messages):
        m = dict(m)
        c = m.get("content")
        tag = f"{OPEN}{i}{MID}"
        if isinstance(c, str):
            if any(x in c for x in (OPEN, MID, CLOSE)):
                return None
            m["content"] = tag + c + CLOSE
        elif isinstance(c, list):
            parts = []
            for p in c:
                if isinstance(p, dict) and isinstance(p.get("text"), str):
                    if any(x in p["text"] for x in (OPEN, MID, CLOSE)):
                        return None
                    p = {**p, "text": tag + p["text"] + CLOSE}
                parts.append(p)
            m["content"] = parts
        out.append(m)
    return out


def _unmark(text: str) -> tuple[str, list[tuple[int, int, int]]] | None:
    """(plain text, [(message index, start, end) of each content span]) or None if the markers are mangled."""
    out, spans = [], []
    pos, n = 0, 0
    while True:
        a = text.find(OPEN, pos)
        if a < 0:
            rest = text[pos:]
            if MID in rest or CLOSE in rest:
                return None
            out.append(rest)
            break
        b = text.find(MID, a)
        c = text.find(CLOSE, b + 1) if b >= 0 else -1
        if b < 0 or c < 0 or not text[a + 1:b].isdigit():
            return None
        head, body = text[pos:a], text[b + 1:c]
        if any(x in head + body for x in (MID, CLOSE, OPEN)):
            return None
        out.append(head)
        n += len(head)
        spans.append((int(text[a + 1:b]), n, n + len(body)))
        out.append(body)
        n += len(body)
        pos = c + 1
    return "".join(out), spans


# ----------------------------------------------------------------------------------------------------------
# Ids and mask


def template_variables(tokenizer) -> dict:
    """The special tokens' texts the template sees (``bos_token``, ``eos_token``, ...)."""
    vars_ = dict(getattr(tokenizer, "template_tokens", None) or {})
    if not vars_ and getattr(tokenizer, "kind", "") == "native":
        vars_ = {"bos_token": "<|bos|>", "eos_token": "<|end|>", "pad_token": "<|pad|>"}
    return vars_


def _encode(tokenizer, segments: list[tuple[str, object]]) -> list[int]:
    if hasattr(tokenizer, "encode_segments"):
        return tokenizer.encode_segments(segments)
    return [i for text, allowed in segments for i in tokenizer.encode(text, allowed_special=allowed)]


def _cut(segments: list[tuple[str, object]], x: int) -> list[tuple[str, object]]:
    out, n = [], 0
    for text, allowed in segments:
        if n + len(text) >= x:
            out.append((text[: x - n], allowed))
            return out
        out.append((text, allowed))
        n += len(text)
    return out


def _stop_texts(tokenizer) -> list[str]:
    ids = list(dict.fromkeys([*getattr(tokenizer, "eos_ids", ()), *getattr(tokenizer, "stop_ids", ())]))
    return [tokenizer.token_bytes(i).decode("utf-8", "replace") for i in ids if tokenizer.is_special(i)]


def render_model(messages: Sequence[dict], tokenizer, *, add_generation_prompt: bool = False,
                 template: str | None = None, tools: list | None = None, documents: list | None = None,
                 **variables) -> tuple[list[int], list[int]]:
    """``(ids, loss_mask)`` of ``messages`` under the model's template (``template`` or
    ``tokenizer.chat_template``); see the module doc for both. With ``add_generation_prompt`` the mask is
    all zeros (nothing is a target yet)."""
    source = template or tokenizer.chat_template
    if not source:
        raise LlmlabError("this tokenizer has no chat template")
    msgs = validate_model_messages(messages)
    variables = {**template_variables(tokenizer), **variables}

    def render(ms, gen):
        return render_template(source, ms, add_generation_prompt=gen, tools=tools, documents=documents, **variables)

    plain = render(msgs, add_generation_prompt)
    marked = _mark(msgs)
    parsed = _unmark(render(marked, add_generation_prompt)) if marked is not None else None
    if parsed is not None and parsed[0] == plain:
        spans = parsed[1]
        segments: list[tuple[str, object]] = []
        pos = 0
        for _, a, b in spans:
            segments += [(plain[pos:a], "all"), (plain[a:b], ())]
            pos = b
        segments.append((plain[pos:], "all"))
        segments = [s for s in segments if s[0]]
    else:  # the template transforms content: encode as transformers does
        spans, segments = [], [(plain, "all")]
    ids = _encode(tokenizer, segments)
    mask = [0] * len(ids)
    if not add_generation_prompt:
        stops = _stop_texts(tokenizer)
        for i, m in enumerate(msgs):
            if m["role"] != "assistant":
                continue
            start = _turn_start(render, msgs, i, plain, spans)
            own = [(a, b) for j, a, b in spans if j == i]
            content_end = own[-1][1] if own else start
            later = [a for j, a, _ in spans if j > i and a >= content_end]
            limit = min(later) if later else len(plain)
            end = content_end
            hits = [(plain.find(s, content_end, limit), s) for s in stops]
            hits = [(k, s) for k, s in hits if k >= 0]
            if hits:
                k, s = min(hits)
                end = k + len(s)
            if end <= start:
                continue
            lo, hi = _token_index(tokenizer, segments, ids, start), _token_index(tokenizer, segments, ids, end)
            for k in range(lo, hi):
                mask[k] = 1
    bos = getattr(tokenizer, "bos_id", None)
    if getattr(tokenizer, "semantics", "") == "llama.cpp" and tokenizer.add_bos and bos is not None \
            and ids[:1] != [bos]:
        ids, mask = [bos] + ids, [0] + mask
    return ids, mask


def _turn_start(render, msgs, i, plain, spans) -> int:
    try:
        prefix = render(msgs[:i], True)
    except LlmlabError:
        prefix = None
    if prefix is not None and plain.startswith(prefix):
        return len(prefix)
    own = [a for j, a, _ in spans if j == i]
    if own:
        return own[0]
    raise LlmlabError(f"messages[{i}]: cannot find where this assistant message starts in the template's "
                      f"rendering (its generation prompt is not a prefix and its content is transformed)")


def _token_index(tokenizer, segments, ids, x: int) -> int:
    """How many leading tokens of ``ids`` the text before character ``x`` accounts for."""
    pre = _encode(tokenizer, _cut(segments, x))
    k = 0
    for a, b in zip(pre, ids):
        if a != b:
            break
        k += 1
    return k
