"""The tool-call protocol at the text level: a registry of tools, parsing one call, running it, the result text.

    llmlab tool call "calc 12*7"                                   ->  84
    from llmlab.tools.runner import default_registry, pending_call, result_block
    reg = default_registry()
    reg.run("calc 12*7")                                           ->  ToolResult(name='calc', text='84', ok=True)
    reg.run('{"name": "calc", "arguments": {"expression": "12*7"}}')   # the same call, OpenAI-style
    reg.run("python\\nprint(sum(range(10)))")                       ->  ToolResult(name='python', text='45', ...)
    reg.run("calc 1/0").text                                       ->  'error: division by zero'
    body = pending_call("Let me add.<|tool_call|>calc 2+3<|/tool_call|>")   ->  'calc 2+3'
    result_block(reg.run(body).text)                               ->  '<|tool_result|>5<|/tool_result|>'

Where calls live (``chat/template.py``): an assistant turn writes ``<|tool_call|>BODY<|/tool_call|>``; the tool's
answer follows as ``<|tool_result|>TEXT<|/tool_result|>`` and the assistant goes on. This module knows only
text: the engine (next phase) watches for ``<|/tool_call|>``, hands the body to ``ToolRegistry.run`` and forces
the tokens of ``result_block(...)`` into that row -- result text encoded as ordinary text, never with
special tokens allowed.

A call body is either

* native: the tool's name, then its one text argument after a space or a newline --
  ``calc 12*7``, ``python\\n<code>`` (a tool names the parameter that takes it: ``Tool.native_arg``); or
* JSON: ``{"name": "calc", "arguments": {"expression": "12*7"}}`` -- ``arguments`` may also be a JSON-encoded
  string (OpenAI's wire format) and may be spelled ``parameters`` (Llama 3's), and the object may be wrapped as
  ``{"type": "function", "function": {...}}``.

Nothing escapes: a body that does not parse, an unknown tool, arguments that do not fit the tool's JSON
schema, a tool that raises or times out -- each becomes a result text starting with ``error:`` that the model
sees, so a chat or a server never dies of a tool call. Results are cut at ``max_result_chars``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from llmlab.chat.template import TOOL_CALL, TOOL_CALL_END, TOOL_RESULT, TOOL_RESULT_END
from llmlab.errors import LlmlabError

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# Anything spelled like a special token (ours, or an imported model's such as <|eot_id|>).
SPECIAL_RE = re.compile(r"<\|(/?[A-Za-z0-9_.-]+)\|>")
JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list,
              "object": dict, "null": type(None)}


class ToolCallError(LlmlabError):
    """A tool call that cannot be run as written (the model sees the message as the tool's result)."""


@dataclass(frozen=True)
class Tool:
    """One tool: ``fn(**arguments) -> str``; ``parameters`` is the JSON schema of the arguments (an object),
    as OpenAI's ``tools`` carries it; ``native_arg`` names the parameter that ``name TEXT`` fills."""

    name: str
    description: str
    parameters: dict
    fn: Callable[..., str]
    native_arg: str | None = None

    def __post_init__(self):
        if not NAME_RE.fullmatch(self.name):
            raise LlmlabError(f"tool name {self.name!r} must match {NAME_RE.pattern}")
        if self.parameters.get("type") != "object":
            raise LlmlabError(f"tool {self.name!r}: parameters must be a JSON schema of type 'object'")
        if self.native_arg is not None and self.native_arg not in self.parameters.get("properties", {}):
            raise LlmlabError(f"tool {self.name!r}: native_arg {self.native_arg!r} is not one of its parameters")

    def openai_schema(self) -> dict:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass
class ToolResult:
    """What the model sees (``text``); ``ok`` is False when ``text`` is an error message; ``name`` is None when
    the call did not even parse."""

    name: str | None
    text: str
    ok: bool


# ----------------------------------------------------------------------------------------------------------
# Parsing


def strip_delimiters(text: str) -> str:
    """The body of ``<|tool_call|>BODY<|/tool_call|>`` (either delimiter may be absent)."""
    body = text.strip()
    if body.startswith(TOOL_CALL):
        body = body[len(TOOL_CALL):]
    if body.endswith(TOOL_CALL_END):
        body = body[: -len(TOOL_CALL_END)]
    return body.strip()


def _json_call(body: str) -> ToolCall:
    try:
        obj = json.loads(body)
    except ValueError as e:
        raise ToolCallError(f"the call is not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ToolCallError("a JSON call must be an object with 'name' and 'arguments'")
    if isinstance(obj.get("function"), dict):
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str):
        raise ToolCallError("a JSON call needs a string 'name'")
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):  # OpenAI sends the arguments as a JSON-encoded string
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError as e:
            raise ToolCallError(f"the arguments of {name!r} are not valid JSON: {e}") from None
    if not isinstance(args, dict):
        raise ToolCallError(f"the arguments of {name!r} must be an object, got {type(args).__name__}")
    return ToolCall(name, args)


def parse_call(text: str, tools: dict[str, Tool] | None = None) -> ToolCall:
    """One call (with or without its delimiters) -> ``ToolCall``; ``ToolCallError`` if it does not parse.
    ``tools`` (name -> Tool) is needed for native calls, to know which parameter takes the text."""
    body = strip_delimiters(text)
    if not body:
        raise ToolCallError("empty tool call")
    if body.startswith("{"):
        return _json_call(body)
    m = NAME_RE.match(body)
    if m is None:
        raise ToolCallError(f"a tool call starts with the tool's name, got {body[:30]!r}")
    name, rest = m.group(), body[m.end():]
    if rest and rest[0] not in " \t\n":
        raise ToolCallError(f"expected a space or a newline after the tool name {name!r}")
    # One separator goes: "calc 1+2" -> "1+2", "python\n<code>" -> "<code>" (the code keeps its indentation).
    rest = rest[1:] if rest[:1] == "\n" else rest.lstrip(" \t")
    tool = (tools or {}).get(name)
    if tool is None:
        return ToolCall(name, {"": rest})  # execute() reports the unknown tool
    if tool.native_arg is None:
        if rest.strip():
            raise ToolCallError(f"tool {name!r} takes JSON arguments: {{\"name\": \"{name}\", \"arguments\": {{...}}}}")
        return ToolCall(name, {})
    return ToolCall(name, {tool.native_arg: rest})


def check_arguments(tool: Tool, args: dict[str, Any]) -> None:
    """The subset of JSON schema tool definitions use: required keys, property types, no unknown keys when
    ``additionalProperties`` is false."""
    props = tool.parameters.get("properties", {})
    for key in tool.parameters.get("required", []):
        if key not in args:
            raise ToolCallError(f"tool {tool.name!r}: missing argument {key!r}")
    for key, value in args.items():
        if key not in props:
            if tool.parameters.get("additionalProperties", True) is False:
                known = ", ".join(props) or "none"
                raise ToolCallError(f"tool {tool.name!r}: unknown argument {key!r} (arguments: {known})")
            continue
        want = props[key].get("type")
        types = want if isinstance(want, list) else [want] if want else []
        ok = not types or any(
            isinstance(value, JSON_TYPES[t]) and not (t in ("integer", "number") and isinstance(value, bool))
            for t in types if t in JSON_TYPES)
        if not ok:
            raise ToolCallError(f"tool {tool.name!r}: argument {key!r} must be {' or '.join(types)}, "
                                f"got {type(value).__name__}")


# ----------------------------------------------------------------------------------------------------------
# Running


@dataclass
class ToolRegistry:
    """Name -> Tool, plus the rules every call goes through (``run`` never raises on a bad call)."""

    tools: dict[str, Tool] = field(default_factory=dict)
    max_result_chars: int = 4000

    def register(self, tool: Tool) -> Tool:
        if tool.name in self.tools:
            raise LlmlabError(f"tool {tool.name!r} is already registered")
        self.tools[tool.name] = tool
        return tool

    @property
    def names(self) -> list[str]:
        return sorted(self.tools)

    def openai_tools(self) -> list[dict]:
        """The registry as OpenAI's ``tools`` request field."""
        return [self.tools[n].openai_schema() for n in self.names]

    def parse(self, text: str) -> ToolCall:
        return parse_call(text, self.tools)

    def execute(self, call: ToolCall) -> ToolResult:
        tool = self.tools.get(call.name)
        if tool is None:
            return ToolResult(call.name, f"error: unknown tool {call.name!r} (tools: {', '.join(self.names)})",
                              False)
        try:
            check_arguments(tool, call.arguments)
            text = tool.fn(**call.arguments)
            if not isinstance(text, str):
                raise TypeError(f"returned {type(text).__name__}, not text")
            ok = True
        except LlmlabError as e:
            text, ok = f"error: {e}", False
        except Exception as e:  # noqa: BLE001 -- a tool's bug becomes the model's error message, not a crash
            text, ok = f"error: the {tool.name} tool failed: {type(e).__name__}: {e}", False
        return ToolResult(tool.name, self._cut(text), ok)

    def run(self, text: str) -> ToolResult:
        """Parse and execute one call; every failure is a ``ToolResult`` whose text starts with ``error:``."""
        try:
            call = self.parse(text)
        except LlmlabError as e:
            return ToolResult(None, f"error: {e}", False)
        return self.execute(call)

    def _cut(self, text: str) -> str:
        if len(text) <= self.max_result_chars:
            return text
        more = len(text) - self.max_result_chars
        return text[: self.max_result_chars] + f"\n[... {more} more characters cut]"


def escape_specials(text: str) -> str:
    """Tool output is untrusted text: spell anything that looks like a special token (``<|/tool_result|>``,
    ``<|end|>``, ``<|eot_id|>``) as ``<\\|...|>`` so re-reading the conversation as text cannot end the
    result early or start a turn. (Token ids are safe anyway: results are encoded as ordinary text.)"""
    return SPECIAL_RE.sub(lambda m: "<\\|" + m.group(1) + "|>", text)


def result_block(text: str) -> str:
    """``<|tool_result|>TEXT<|/tool_result|>``, with ``escape_specials`` applied to TEXT."""
    return TOOL_RESULT + escape_specials(text) + TOOL_RESULT_END


def pending_call(text: str) -> str | None:
    """If ``text`` (an assistant's output so far) ends with a completed tool call that has no result yet, that
    call's body; else None. Trailing whitespace after ``<|/tool_call|>`` is allowed."""
    t = text.rstrip()
    if not t.endswith(TOOL_CALL_END):
        return None
    start = t.rfind(TOOL_CALL, 0, len(t) - len(TOOL_CALL_END))
    if start < 0:
        return None
    return t[start + len(TOOL_CALL): len(t) - len(TOOL_CALL_END)]


def respond(text: str, registry: ToolRegistry) -> str | None:
    """The text to append after ``text`` when it ends with a call: the call's ``result_block``; else None."""
    body = pending_call(text)
    if body is None:
        return None
    return result_block(registry.run(body).text)


# ----------------------------------------------------------------------------------------------------------
# The built-in tools


LIMIT_TEXT = {"wall_time": "wall-clock time limit", "cpu_time": "CPU time limit", "memory": "memory limit",
              "file_size": "file size limit", "scratch_full": "scratch space limit",
              "open_files": "open files limit", "processes": "process limit", "output": "output size limit"}


def format_python_result(r) -> str:
    """A ``SandboxResult`` as the model sees it: what the program printed, its stderr, and how it ended when
    that was not a clean exit."""
    parts = []
    if r.stdout:
        parts.append(r.stdout.rstrip("\n"))
    if r.stderr:
        parts.append("stderr:\n" + r.stderr.rstrip("\n"))
    if r.limit:
        parts.append(f"error: stopped by the {LIMIT_TEXT.get(r.limit, r.limit)}")
    elif r.signal:
        parts.append(f"error: killed by {r.signal}")
    elif r.exit_code:
        parts.append(f"exit status {r.exit_code}")
    return "\n".join(parts) if parts else "(no output)"


def calc_tool(limits=None) -> Tool:
    from llmlab.tools.calc import FUNCTIONS, calculate

    return Tool(
        name="calc",
        description="Exact arithmetic: integers of any size, fractions and decimals; + - * / // % ** and "
                    f"{', '.join(FUNCTIONS)}. Returns an integer, an exact decimal, or p/q.",
        parameters={"type": "object", "properties": {"expression": {"type": "string",
                                                                    "description": "e.g. 12*7 or (1/3 + 0.5)**2"}},
                    "required": ["expression"], "additionalProperties": False},
        fn=lambda expression: calculate(expression, limits),
        native_arg="expression",
    )


def python_tool(config=None) -> Tool:
    from llmlab.tools.sandbox import run_python

    return Tool(
        name="python",
        description="Run a Python 3 program in a sandbox (no network, no files outside its scratch directory, "
                    "time and memory limits) and return what it printed.",
        parameters={"type": "object", "properties": {"code": {"type": "string", "description": "the program"}},
                    "required": ["code"], "additionalProperties": False},
        fn=lambda code: format_python_result(run_python(code, config)),
        native_arg="code",
    )


def default_registry(sandbox=None, calc_limits=None, python: bool = True) -> ToolRegistry:
    """``calc`` and (unless ``python=False``) ``python`` with the given ``SandboxConfig``."""
    reg = ToolRegistry()
    reg.register(calc_tool(calc_limits))
    if python:
        reg.register(python_tool(sandbox))
    return reg
