"""OpenAI chat messages and tools -> the model's chat template, and tool calls parsed back out of its text.

    from llmlab.serve.chat_format import prompt_ids, parse_tool_calls
    ids = prompt_ids(request.messages, tok, tools=[...], force_call=False)   # through llmlab.chat.template
    content, calls = parse_tool_calls("Let me check.<|tool_call|>{\\"name\\": \\"f\\", \\"arguments\\": {}}")

Every prompt is rendered by ``llmlab.chat.template.render_prompt``: llmlab's own template for our runs, the
model's own Jinja template for imported ones (which receive ``tools=`` as transformers passes them).

llmlab's native format has no place for tool definitions, so they go into the system message as text, and a
call is ``<|tool_call|>`` + a JSON body ``{"name": ..., "arguments": {...}}`` + ``<|/tool_call|>``; an
assistant message's ``tool_calls`` render as such parts and a ``tool`` message as the tool's result
(``<|tool_result|>...<|/tool_result|>``), as ``chat/template.py`` defines. For imported templates the calls are
found as ``<tool_call>{...}</tool_call>`` (Hermes/Qwen) or as a message that is one JSON object with a name
and arguments/parameters (Llama 3).
"""

from __future__ import annotations

import json
import re
import secrets

from llmlab.chat.template import TOOL_CALL, TOOL_CALL_END, render_prompt
from llmlab.errors import LlmlabError

TOOLS_INTRO = ("You can call these functions. To call one, write a tool call holding a JSON object "
               '{"name": <function name>, "arguments": <its arguments as a JSON object>}. Functions:')

CALL_MARKERS = (TOOL_CALL, "<tool_call>", "<|python_tag|>")
_TAGGED = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.S)


def model_template(tokenizer) -> bool:
    """Whether the tokenizer carries its model's own chat template (an imported model)."""
    return bool(getattr(tokenizer, "chat_template", None))


def _arguments(text: str):
    """OpenAI sends arguments as a JSON string; templates want the object (the string if it is not JSON)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def template_messages(messages, tokenizer, tools: list[dict] | None) -> list[dict]:
    """Validated request messages (``protocol.Message``) as the chat template's message dicts."""
    native = not model_template(tokenizer)
    out: list[dict] = []
    for m in messages:
        role = "system" if m.role == "developer" else m.role
        if role == "assistant" and m.tool_calls:
            calls = [{"name": c.function.name, "arguments": _arguments(c.function.arguments)} for c in m.tool_calls]
            if native:
                parts = [{"type": "text", "text": m.text()}] if m.text() else []
                parts += [{"type": "tool_call", "text": json.dumps(c, ensure_ascii=False)} for c in calls]
                out.append({"role": "assistant", "content": parts})
            else:
                out.append({"role": "assistant", "content": m.text() or None, "tool_calls": [
                    {"id": c.id or f"call_{i}", "type": "function", "function": d}
                    for i, (c, d) in enumerate(zip(m.tool_calls, calls))]})
        elif role == "tool" and not native:
            msg = {"role": "tool", "content": m.text()}
            if m.tool_call_id:
                msg["tool_call_id"] = m.tool_call_id
            out.append(msg)
        else:
            out.append({"role": role, "content": m.text()})
    if native and tools:
        text = TOOLS_INTRO + "\n" + "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": out[0]["content"] + "\n\n" + text}
        else:
            out.insert(0, {"role": "system", "content": text})
    return out


def prompt_ids(messages, tokenizer, tools: list[dict] | None = None, force_call: bool = False,
               view=None) -> list[int]:
    """The prompt's token ids (``LlmlabError`` for a conversation the template refuses). ``tools``: the
    functions' OpenAI definitions (``{"name", "description", "parameters"}``). ``force_call`` (native format)
    opens a tool call after the assistant's role token, so the model writes only its JSON body. ``view``
    (message dicts -> message dicts): what the model reads instead, e.g. the safety guard's (tool results
    screened, decoded text shown)."""
    msgs = template_messages(messages, tokenizer, tools)
    if view is not None:
        msgs = view(msgs)
    if tools and model_template(tokenizer):
        ids = render_prompt(msgs, tokenizer, tools=[{"type": "function", "function": t} for t in tools])
    else:
        ids = render_prompt(msgs, tokenizer)
    if force_call and not model_template(tokenizer):
        ids = ids + [tokenizer.special_id(TOOL_CALL)]
    return ids


def call_schema(tools: list[dict], name: str | None = None) -> dict:
    """The JSON schema of one call ``{"name", "arguments"}`` to ``name`` or to any of ``tools``."""
    options = []
    for t in tools:
        if name is not None and t["name"] != name:
            continue
        params = t.get("parameters") or {"type": "object"}
        options.append({"type": "object", "properties": {"name": {"const": t["name"]}, "arguments": params},
                        "required": ["name", "arguments"], "additionalProperties": False})
    if not options:
        raise LlmlabError(f"tool_choice names function {name!r}, which is not in tools")
    return options[0] if len(options) == 1 else {"anyOf": options}


def _call(obj) -> dict | None:
    """An OpenAI tool call from a parsed JSON object, or None if it is not one."""
    if isinstance(obj, dict) and isinstance(obj.get("function"), dict):
        obj = obj["function"]
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if not isinstance(args, str):
        args = json.dumps(args, ensure_ascii=False)
    return {"id": "call_" + secrets.token_hex(12), "type": "function",
            "function": {"name": obj["name"], "arguments": args}}


def _json_prefix(text: str):
    """The JSON value at the start of ``text`` (after whitespace), or None."""
    try:
        return json.JSONDecoder(strict=False).raw_decode(text.lstrip())[0]
    except ValueError:
        return None


def parse_tool_calls(text: str, forced_body: bool = False) -> tuple[str, list[dict]]:
    """(content before the calls, [OpenAI tool calls]) from generated text. ``forced_body``: the whole text is
    one call's JSON body (the prompt opened the call). Text that holds no well-formed call is all content."""
    if forced_body:
        call = _call(_json_prefix(text))
        return ("", [call]) if call else (text, [])
    calls = []
    if TOOL_CALL in text:
        content, _, rest = text.partition(TOOL_CALL)
        for body in rest.split(TOOL_CALL):
            call = _call(_json_prefix(body.split(TOOL_CALL_END)[0]))
            if call:
                calls.append(call)
        return (content, calls) if calls else (text, [])
    if "<tool_call>" in text:
        content = text[: text.index("<tool_call>")]
        calls = [c for c in (_call(_json_prefix(b)) for b in _TAGGED.findall(text)) if c]
        return (content, calls) if calls else (text, [])
    body = text.split("<|python_tag|>", 1)[-1]
    if body.lstrip().startswith("{"):
        call = _call(_json_prefix(body))
        if call:
            return "", [call]
    return text, []
