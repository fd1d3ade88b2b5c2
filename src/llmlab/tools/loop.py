"""Tools inside generation: the engine generates, a tool call completes, the runner runs it, the result goes
into that row, and the model goes on -- for a whole batch of rows, each with its own calls.

    from llmlab.tools.loop import ToolLoop
    from llmlab.tools.runner import default_registry
    loop = ToolLoop(default_registry(python=False), tokenizer, max_calls=4)
    answers = loop.generate(engine, [prompt_ids_a, prompt_ids_b], SamplingParams(temperature=0, n=2))
    a = answers[0][1]               # prompt 0, sample 1
    a.final_text, a.calls[0].body, a.calls[0].result, a.finish_reason
    a.token_ids, a.sampled          # everything after the prompt; 1 where the model sampled, 0 where a tool wrote

    for ev in loop.run(engine, prompts, params):        # streaming: "token", "call" and "finish" events
        ...

    llmlab chat --model runs/speedrun/sft --tools calc --prompt "What is 123 times 45?"
    llmlab generate --model RUN --prompt "..." --tools calc,python

How a call is seen. llmlab's own models write ``<|tool_call|>BODY<|/tool_call|>`` (``chat/template.py``) and the
answer goes in as ``<|tool_result|>TEXT<|/tool_result|>``; the row is watched for the call's end token. An
imported model whose chat template defines tool calls (ChatML/Hermes/Qwen-style ``<tool_call>{json}</tool_call>``)
is watched for its own end marker, and the result goes in exactly as its template renders a ``tool`` message
after an assistant message with ``tool_calls`` (the end of that turn, the tool turn, the next assistant
header), found once by rendering the template (``template_result_pieces``). A call end that is not one token
is found in the row's text. ``tool_format(tokenizer)`` says which format a model has (None: it has none).

How the result goes in. ``Continuation`` is the one interface: ``Reprefill`` (today's engine) stops the row at the
call's end -- the end id is one of its stop ids -- and adds prompt + output so far + result as a new request to
the running generation (``Generation.add``: its prefill joins the batch between steps, the other rows keep
their caches); ``ForceTokens`` uses an engine primitive ``Generation.force(prompt_index, sample_index, ids)``
that writes the tokens into the live row in one pass (the serve branch's), chosen automatically when the
generation has it. Callers see the same events either way. Sampled tokens count toward ``max_new_tokens``,
forced ones only toward the context.

What never kills a chat: every call is run by ``ToolRegistry.run`` (a body that does not parse, an unknown tool, a
tool that raises: an ``error: ...`` text), tools of one step run in parallel threads with a wall-clock limit
(``timeout_s``: past it the model sees ``error: the TOOL tool did not answer within S s``), and past
``max_calls`` calls in one answer every further call gets an ``error:`` result instead of running.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Protocol, Sequence

from llmlab.chat.template import TOOL_CALL, TOOL_CALL_END, TOOL_RESULT, TOOL_RESULT_END
from llmlab.errors import LlmlabError
from llmlab.infer.sampling import SamplingParams
from llmlab.infer.text import Utf8Decoder
from llmlab.tools.runner import ToolRegistry, escape_specials

# Call delimiters a model's own template may use, most specific first (ChatML/Hermes/Qwen 2.5, then llmlab's
# own format inside an exported template).
TEMPLATE_CALLS = (("<tool_call>", "</tool_call>"), (TOOL_CALL, TOOL_CALL_END))
OPEN, CLOSE = "\ue010", "\ue011"  # marks the tool's content inside a rendered template


# ----------------------------------------------------------------------------------------------------------
# Formats: how a model writes a call and how the result goes back in


@dataclass(frozen=True)
class ToolFormat:
    """``kind``: "native" (llmlab's special tokens) or "template" (the model's own chat template);
    ``end_id``: the call's end as one token (watched at the engine), or None (watched in the text)."""

    kind: str
    call_start: str
    call_end: str
    end_id: int | None


def tool_format(tokenizer) -> ToolFormat | None:
    """The tool-call format of a model with this tokenizer, or None when its template defines none."""
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return ToolFormat("native", TOOL_CALL, TOOL_CALL_END, tokenizer.special_id(TOOL_CALL_END))
    for start, end in TEMPLATE_CALLS:
        if start in template and end in template:
            ids = tokenizer.encode(end, allowed_special="all")
            return ToolFormat("template", start, end, ids[0] if len(ids) == 1 else None)
    return None


def template_result_pieces(tokenizer, fmt: ToolFormat, tools: list | None = None) -> tuple[str, str]:
    """``(before, after)``: the text a model's template writes between a call's end marker and the tool's
    content, and between that content and the next assistant turn (generation prompt included). Found by
    rendering a one-call conversation whose tool content is marked."""
    from llmlab.chat.model_template import render_template, template_variables

    call = {"type": "function", "function": {"name": "f", "arguments": {"x": "1"}}}
    msgs = [{"role": "user", "content": "q"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "name": "f", "tool_call_id": "call_0", "content": OPEN + "R" + CLOSE}]
    text = render_template(tokenizer.chat_template, msgs, add_generation_prompt=True, tools=tools,
                           **template_variables(tokenizer))
    a, b = text.find(OPEN), text.find(CLOSE)
    end = text.rfind(fmt.call_end, 0, max(a, 0))
    if a < 0 or b < a or end < 0:
        raise LlmlabError("this chat template does not render a tool result after a tool call "
                          f"(looked for {fmt.call_end!r} before the tool message's content)")
    return text[end + len(fmt.call_end): a], text[b + 1:]


def result_ids(tokenizer, fmt: ToolFormat, text: str, pieces: tuple[str, str] | None = None) -> list[int]:
    """Token ids of a tool's result ``text`` as the model should see it after its call. The result itself is
    encoded as ordinary text (never special tokens); only the format's own delimiters are special."""
    safe = escape_specials(text)
    if fmt.kind == "native":
        return [tokenizer.special_id(TOOL_RESULT), *tokenizer.encode(safe), tokenizer.special_id(TOOL_RESULT_END)]
    before, after = pieces if pieces is not None else template_result_pieces(tokenizer, fmt)
    segments = [(before, "all"), (safe, ()), (after, "all")]
    if hasattr(tokenizer, "encode_segments"):
        return tokenizer.encode_segments([s for s in segments if s[0]])
    return [i for t, allowed in segments if t for i in tokenizer.encode(t, allowed_special=allowed)]


# ----------------------------------------------------------------------------------------------------------
# Continuation: how forced tokens get into a row


class Continuation(Protocol):
    """Puts tools' results into rows and lets them go on. ``pauses_rows``: a row must stop at its call's end (the
    end id joins its stop ids). ``resume`` takes every row whose call finished in one step, ``[(engine key,
    row ids so far, forced ids, params)]``, and returns per row its (possibly new) engine key and a finish reason
    when it could not go on (else None), plus the events of the tokens sampled after the results."""

    pauses_rows: bool

    def resume(self, gen, items: list[tuple[tuple[int, int], list[int], list[int], SamplingParams]]
               ) -> tuple[list[tuple[tuple[int, int], str | None]], list]: ...


class Reprefill:
    """Today's engine: the rows have stopped at their calls' ends; each one's prompt + output + result joins the
    running generation as a new request of one sample, all of one step in one ``Generation.add`` (one prefill,
    one merge of the caches: adding them one by one would copy the batch's cache once per row)."""

    pauses_rows = True

    def resume(self, gen, items):
        ctx = gen.engine.config.max_seq_len
        out, go = [], []
        for key, row_ids, forced, params in items:
            if len(row_ids) + len(forced) >= ctx:
                out.append((key, "length"))
            else:
                out.append(None)
                go.append((row_ids + forced, params))
        events = []
        if go:
            base = len(gen.outputs())
            events = gen.add([ids for ids, _ in go], [p for _, p in go])
            new = iter(range(base, base + len(go)))
            out = [o if o is not None else ((next(new), 0), None) for o in out]
        return out, events


class ForceTokens:
    """An engine with ``Generation.force(prompt_index, sample_index, ids)``: each result is written into its live
    row in one pass and the token after it is sampled at once; the rows keep their keys."""

    pauses_rows = False

    def resume(self, gen, items):
        out, events = [], []
        for key, _, forced, _ in items:
            evs = gen.force(key[0], key[1], forced)
            own = [e for e in evs if not getattr(e, "forced", False)]
            done = [e.finish_reason for e in evs if getattr(e, "forced", False) and e.finish_reason]
            out.append((key, done[0] if done and not own else None))
            events += own
        return out, events


def default_continuation(engine=None) -> Continuation:
    """``ForceTokens`` when the engine's generations can force tokens into a live row, else ``Reprefill``."""
    from llmlab.infer.engine import Generation

    return ForceTokens() if hasattr(Generation, "force") else Reprefill()


# ----------------------------------------------------------------------------------------------------------
# Results


@dataclass
class ToolCallRecord:
    body: str  # the call as the model wrote it, between the delimiters
    name: str | None  # the tool it named (None: the call did not parse)
    result: str  # what the model was shown (an "error: ..." text when ``ok`` is False)
    ok: bool
    seconds: float


@dataclass
class ToolAnswer:
    """One sample's answer with its tool calls. ``token_ids`` is everything after the prompt (the stop token
    included, as the engine keeps it); ``sampled[i]`` is 1 where the model sampled ``token_ids[i]`` and 0
    where the loop wrote it (tool results: not the policy's tokens, so RL masks them out of its loss)."""

    prompt_index: int
    sample_index: int
    token_ids: list[int] = field(default_factory=list)
    sampled: list[int] = field(default_factory=list)
    logprobs: list[float | None] = field(default_factory=list)
    parts: list[dict] = field(default_factory=list)  # {"type": "text" | "tool_call" | "tool_result", "text"}
    calls: list[ToolCallRecord] = field(default_factory=list)
    finish_reason: str | None = None

    @property
    def final_text(self) -> str:
        """The text after the last tool result: the answer the user reads."""
        tail = []
        for p in reversed(self.parts):
            if p["type"] != "text":
                break
            tail.append(p["text"])
        return "".join(reversed(tail))

    @property
    def text(self) -> str:
        """The whole answer in the native spelling (calls and results between their delimiters)."""
        wrap = {"text": ("", ""), "tool_call": (TOOL_CALL, TOOL_CALL_END), "tool_result": (TOOL_RESULT, TOOL_RESULT_END)}
        return "".join(wrap[p["type"]][0] + p["text"] + wrap[p["type"]][1] for p in self.parts)


@dataclass
class LoopEvent:
    """``kind``: "token" (a sampled token; ``text`` its printable piece, '' for a stop token), "call" (a call
    ran: ``call`` its record, ``token_ids`` the result tokens written into the row, ``text`` their text), or
    "finish" (``answer`` complete)."""

    kind: str
    prompt_index: int
    sample_index: int
    text: str = ""
    token_id: int | None = None
    token_ids: list[int] = field(default_factory=list)
    call: ToolCallRecord | None = None
    answer: ToolAnswer | None = None


class _Row:
    def __init__(self, answer: ToolAnswer, prompt_ids: list[int], params: SamplingParams, tokenizer):
        self.answer, self.prompt_ids, self.params = answer, prompt_ids, params
        self.decoder = Utf8Decoder(tokenizer)
        self.segment = ""  # text since the last tool result
        self.generated = 0  # sampled tokens (the budget counts these)


# ----------------------------------------------------------------------------------------------------------
# The loop


class ToolLoop:
    """Generation with tools for a batch of prompts (see the module doc). ``registry`` holds the tools the
    model may call; ``tools_schema`` (OpenAI ``tools``) goes to a model's own template when it renders them."""

    def __init__(self, registry: ToolRegistry, tokenizer, *, max_calls: int = 4, timeout_s: float = 30.0,
                 continuation: Continuation | None = None, fmt: ToolFormat | None = None,
                 result_filter: Callable[[str], str] | None = None):
        if max_calls < 0 or timeout_s <= 0:
            raise LlmlabError("max_calls must be >= 0 and timeout_s > 0")
        self.registry, self.tok = registry, tokenizer
        self.max_calls, self.timeout_s = max_calls, timeout_s
        self.continuation = continuation
        # What a tool's output becomes before the model reads it (``safety.filters.screen_tool_result``: injected
        # instructions withheld or spotlighted); the record keeps what the model was shown.
        self.result_filter = result_filter
        self.fmt = fmt or tool_format(tokenizer)
        if self.fmt is None:
            raise LlmlabError("this model's chat template defines no tool calls (no <tool_call> markers); "
                              "it cannot use tools")
        self._pieces = template_result_pieces(tokenizer, self.fmt, self.tools_schema) \
            if self.fmt.kind == "template" else None
        self.sources = None  # answer -> "Sources: ..." text, set when a search tool can cite (tools/toolset.py)

    @property
    def tools_schema(self) -> list[dict]:
        return self.registry.openai_tools()

    def messages(self, answer: ToolAnswer) -> list[dict]:
        """The answer as chat messages for the history (``answer_messages``)."""
        return answer_messages(answer, self.fmt)

    def template_kwargs(self) -> dict:
        """What ``render_prompt`` should pass to a model's own template (its tool list); nothing for ours."""
        return {"tools": self.tools_schema} if self.fmt.kind == "template" else {}

    # ------------------------------------------------------------------------------------------------------
    def generate(self, engine, prompts: Sequence[Sequence[int]],
                 params: SamplingParams | Sequence[SamplingParams] | None = None) -> list[list[ToolAnswer]]:
        """Run to completion: ``answers[prompt][sample]``."""
        out: dict[tuple[int, int], ToolAnswer] = {}
        for ev in self.run(engine, prompts, params):
            if ev.kind == "finish":
                out[(ev.prompt_index, ev.sample_index)] = ev.answer
        groups: list[list[ToolAnswer]] = [[] for _ in prompts]
        for (p, j), a in sorted(out.items()):
            groups[p].append(a)
        return groups

    def run(self, engine, prompts: Sequence[Sequence[int]],
            params: SamplingParams | Sequence[SamplingParams] | None = None) -> Iterator[LoopEvent]:
        """Generate, yielding events as they happen (see ``LoopEvent``)."""
        params = params or SamplingParams()
        plist = [params] * len(prompts) if isinstance(params, SamplingParams) else list(params)
        if len(plist) != len(prompts):
            raise LlmlabError(f"got {len(prompts)} prompts but {len(plist)} sampling parameter sets")
        fmt = self.fmt
        cont = self.continuation or default_continuation(engine)
        start_params = [self._with_call_stop(p, cont.pauses_rows) for p in plist]
        gen = engine.start([list(p) for p in prompts], start_params)
        rows: dict[tuple[int, int], _Row] = {}
        keys: dict[tuple[int, int], tuple[int, int]] = {}  # engine key -> (prompt, sample)
        for i, (ids, p) in enumerate(zip(gen.outputs(), plist)):
            for j in range(p.n):
                rows[(i, j)] = _Row(ToolAnswer(i, j), list(ids.prompt_token_ids), p, self.tok)
                keys[(i, j)] = (i, j)
        stops = set(engine.eos_token_ids)
        pending = list(gen.first_events)
        while pending or not gen.done:
            if not pending:
                pending = gen.step()
                continue
            events, pending = pending, []
            calls = []  # (row key, engine key, body) of the calls completed in this batch of events
            for ev in events:
                ekey = (ev.prompt_index, ev.sample_index)
                rk = keys[ekey]
                row = rows[rk]
                a = row.answer
                a.token_ids.append(ev.token_id)
                a.sampled.append(1)
                a.logprobs.append(ev.logprob)
                row.generated += 1
                is_stop = ev.finish_reason == "stop" and (ev.token_id in stops or
                                                          ev.token_id in row.params.stop_token_ids)
                piece = "" if is_stop else row.decoder.feed(ev.token_id)
                row.segment += piece
                body = self._completed_call(row, ev)
                if body is not None:
                    if ev.finish_reason is None and cont.pauses_rows:
                        gen.finish(*ekey, "stop")  # a call end seen in the text: stop the row here
                    yield LoopEvent("token", *rk, text=piece, token_id=ev.token_id)
                    calls.append((rk, ekey, body))
                    continue
                yield LoopEvent("token", *rk, text=piece, token_id=ev.token_id)
                if ev.finish_reason is not None:
                    yield self._finish(row, ev.finish_reason)
            if calls:
                items, owners = [], []
                for rk, ekey, record in self._run_calls(rows, calls):
                    row = rows[rk]
                    forced = result_ids(self.tok, fmt, record.result, self._pieces)
                    a = row.answer
                    a.calls.append(record)
                    a.parts.append({"type": "tool_result", "text": record.result})
                    left = row.params.max_new_tokens - row.generated
                    if left <= 0:
                        yield self._finish(row, "length")
                        if not cont.pauses_rows:
                            gen.finish(*ekey, "length")
                        continue
                    row_ids = row.prompt_ids + a.token_ids
                    a.token_ids += forced
                    a.sampled += [0] * len(forced)
                    a.logprobs += [None] * len(forced)
                    yield LoopEvent("call", *rk, text=self.tok.decode(forced), token_ids=forced, call=record)
                    items.append((ekey, row_ids, forced, self._continue_params(row, left, cont.pauses_rows)))
                    owners.append(rk)
                if items:
                    resumed, evs = cont.resume(gen, items)
                    for rk, (new_key, done) in zip(owners, resumed):
                        keys[new_key] = rk
                        if done is not None:
                            yield self._finish(rows[rk], done)
                    pending += evs

    # ------------------------------------------------------------------------------------------------------
    def _with_call_stop(self, p: SamplingParams, pause: bool) -> SamplingParams:
        if pause and self.fmt.end_id is not None and self.fmt.end_id not in p.stop_token_ids:
            return replace(p, stop_token_ids=(*p.stop_token_ids, self.fmt.end_id))
        return p

    def _continue_params(self, row: _Row, left: int, pause: bool) -> SamplingParams:
        """One more sample of the row's request: the budget left, its own seed (a seeded answer stays
        reproducible, and the draws after each call differ from the first ones)."""
        seed = continue_seed(row.params.seed, row.answer)
        return self._with_call_stop(replace(row.params, n=1, max_new_tokens=left, seed=seed), pause)

    def call(self, answer: ToolAnswer, before: str, body: str) -> tuple[ToolCallRecord, list[int]]:
        """For a caller that generates by itself (the server, whose engine runs in another process): record the
        text before a call and the call, run it as ``run`` does (the same limit on calls, timeout and result
        filter), record the result, and return its record and the token ids the model must read next."""
        if before:
            answer.parts.append({"type": "text", "text": before})
        answer.parts.append({"type": "tool_call", "text": body.strip() if self.fmt.kind == "template" else body})
        record = self._run_calls({0: _Row(answer, [], None, self.tok)}, [(0, None, body)])[0][2]
        answer.calls.append(record)
        answer.parts.append({"type": "tool_result", "text": record.result})
        return record, result_ids(self.tok, self.fmt, record.result, self._pieces)

    def _completed_call(self, row: _Row, ev) -> str | None:
        """The body of the call this token completed, or None. The text before the call becomes a text part."""
        fmt = self.fmt
        if fmt.end_id is not None:
            if ev.token_id != fmt.end_id:
                return None
            # The end token's own piece is its name; the segment ends with it either way.
        if not row.segment.endswith(fmt.call_end):
            return None
        seg = row.segment[: -len(fmt.call_end)]
        start = seg.rfind(fmt.call_start)
        # An end with no start is a call with an empty body: the model is told so ("error: empty tool call").
        pre, body = (seg[:start], seg[start + len(fmt.call_start):]) if start >= 0 else (seg, "")
        if pre:
            row.answer.parts.append({"type": "text", "text": pre})
        row.answer.parts.append({"type": "tool_call", "text": body.strip() if fmt.kind == "template" else body})
        row.segment = ""
        row.decoder = Utf8Decoder(self.tok)
        return body

    def _finish(self, row: _Row, reason: str) -> LoopEvent:
        a = row.answer
        tail = row.segment + row.decoder.flush()
        if tail:
            a.parts.append({"type": "text", "text": tail})
        row.segment = ""
        a.finish_reason = reason
        return LoopEvent("finish", a.prompt_index, a.sample_index, answer=a)

    def _run_calls(self, rows, calls):
        """Run the calls of one step in parallel threads, each within ``timeout_s``; one record per call."""
        todo, records = [], {}
        for rk, ekey, body in calls:
            if len(rows[rk].answer.calls) >= self.max_calls:
                records[rk] = ToolCallRecord(body, None, f"error: no more tool calls in this answer (the limit is "
                                             f"{self.max_calls}); answer with what you have", False, 0.0)
            else:
                todo.append((rk, body))
        if todo:
            pool = ThreadPoolExecutor(max_workers=min(8, len(todo)), thread_name_prefix="llmlab-tool")
            t0 = time.perf_counter()
            futures = [(rk, body, pool.submit(self.registry.run, body)) for rk, body in todo]
            for rk, body, fut in futures:
                left = max(0.0, self.timeout_s - (time.perf_counter() - t0))
                try:
                    r = fut.result(timeout=left)
                    text = self.result_filter(r.text) if self.result_filter is not None and r.ok else r.text
                    records[rk] = ToolCallRecord(body, r.name, text, r.ok, time.perf_counter() - t0)
                except FutureTimeout:
                    name = _call_name(self.registry, body)
                    records[rk] = ToolCallRecord(body, name, f"error: the {name or 'requested'} tool did not answer "
                                                 f"within {self.timeout_s:g} s", False, self.timeout_s)
                except Exception as e:  # noqa: BLE001 -- run() never raises; belt and braces for a chat that lives
                    records[rk] = ToolCallRecord(body, None, f"error: {type(e).__name__}: {e}", False, 0.0)
            pool.shutdown(wait=False, cancel_futures=True)  # a tool past its time keeps its thread, not the chat
        return [(rk, ekey, records[rk]) for rk, ekey, _ in calls]


def continue_seed(seed: int | None, answer: ToolAnswer) -> int | None:
    """The seed of an answer's sampling after its latest call (None stays None)."""
    return None if seed is None else (seed * 1_000_003 + answer.sample_index * 7919 + len(answer.calls)) % (2**62)


def _call_name(registry: ToolRegistry, body: str) -> str | None:
    try:
        return registry.parse(body).name
    except LlmlabError:
        return None


# ----------------------------------------------------------------------------------------------------------
# RL rollouts


def sample_tool_completions(policy, tok, prompts: list[list[int]], loop: ToolLoop, *, n: int = 1,
                            max_new_tokens: int = 64, temperature: float = 1.0, top_k: int = 0,
                            seed: int | None = None):
    """``infer.completions.sample_completions`` through a tool loop: ``n`` answers per prompt as ``Completion``s
    whose ``ids`` include the results the tools wrote (``sampled`` marks them 0, so RL leaves them out of the
    policy loss) and whose ``text`` is the answer after the last result (what a reward checks)."""
    import torch

    from llmlab.chat.template import stop_token_ids
    from llmlab.infer.completions import Completion
    from llmlab.infer.engine import Engine

    was_training = policy.training
    policy.eval()
    stops = stop_token_ids(tok)
    try:
        with torch.no_grad():
            engine = Engine(policy, eos_token_ids=stops)
            params = [SamplingParams(n=n, temperature=temperature, top_k=top_k, max_new_tokens=max_new_tokens,
                                     stop_token_ids=tuple(stops), seed=None if seed is None else seed * 100003 + i)
                      for i in range(len(prompts))]
            groups = loop.generate(engine, prompts, params)
    finally:
        policy.train(was_training)
    return [[Completion(a.token_ids, a.final_text, a.finish_reason == "stop", a.sampled) for a in g] for g in groups]


# ----------------------------------------------------------------------------------------------------------
# Conversations


def answer_messages(answer: ToolAnswer, fmt: ToolFormat) -> list[dict]:
    """The answer as chat messages for the history: one assistant message with content parts (native), or
    OpenAI-style assistant ``tool_calls`` / ``tool`` / assistant messages (a model's own template)."""
    import json

    if fmt.kind == "native":
        parts = [p for p in answer.parts if p["text"] or p["type"] != "text"]
        if all(p["type"] == "text" for p in parts):
            return [{"role": "assistant", "content": "".join(p["text"] for p in parts)}]
        return [{"role": "assistant", "content": parts}]
    msgs: list[dict] = []
    text = ""
    for p in answer.parts:
        if p["type"] == "text":
            text += p["text"]
        elif p["type"] == "tool_call":
            try:
                obj = json.loads(p["text"])
                fn = {"name": str(obj.get("name")), "arguments": obj.get("arguments", obj.get("parameters", {}))}
            except (ValueError, AttributeError):
                fn = {"name": "unknown", "arguments": {"text": p["text"]}}
            msgs.append({"role": "assistant", "content": text.strip(),
                         "tool_calls": [{"type": "function", "function": fn}]})
            text = ""
        else:
            msgs.append({"role": "tool", "content": p["text"]})
    msgs.append({"role": "assistant", "content": text.strip()})
    return msgs
