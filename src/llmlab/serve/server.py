"""``llmlab serve``: load a run, start the scheduler, serve the OpenAI API and the chat page with uvicorn.

    llmlab serve --model runs/speedrun/sft                        # http://127.0.0.1:8000 (page at /)
    llmlab serve --model runs/speedrun/sft --port 8080 --api-key sk-local --max-batch 64

    from llmlab.serve.server import ServeConfig, ServerState, serve
    from llmlab.serve.engine_proc import EngineSpec
    state = ServerState(EngineSpec(model=model, tokenizer=tok), ServeConfig())   # a test's tiny model
    state.start()                                                  # the engine process (engine_proc.py)
    app = state.app()                                              # an ASGI app for uvicorn

``ServerState`` turns a validated request into a job for the engine process: the prompt through the model's chat
template (``serve/chat_format.py``), sampling parameters, stop tokens and strings, the constraint of a JSON
mode or a forced tool call (``serve/grammar.py``), and the per-request checks that are the client's fault
(400): context length, token ids outside the vocabulary, n larger than the batch, a request larger than the KV
budget. ``content_filter`` is the seam for the safety guard: a callable that gets the request's messages
(``[{"role", "content"}]``; a completions prompt as one user message) and returns None to let it through or a
refusal text, which is answered with ``finish_reason: "content_filter"`` and nothing generated. Two optional
attributes refine it for chats: ``prepare`` (the template's message dicts -> ``(refusal or None, what the model
reads)``: the guard's ``model_view``, with client-sent tool results screened one by one, an injection withheld
rather than the whole request refused) is used instead of the call when present; ``screen_tool`` (text ->
text) is applied to every tool result of the server's own tool rounds (assistants whose tools it runs).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from llmlab.errors import LlmlabError
from llmlab.serve.engine_proc import SERVE_DTYPES
from llmlab.serve.protocol import ApiError, new_id

ContentFilter = Callable[[list[dict]], "str | None"]


@dataclass
class ServeConfig:
    """Everything ``llmlab serve`` takes (the CLI's flags)."""

    model: str = ""  # run folder
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None  # Bearer key for every route but /health and the page
    max_batch: int = 32  # samples decoded at once
    max_queue: int = 256  # requests waiting beyond the batch; more get 429
    kv_cache_mb: float = 0.0  # bound on the KV cache (0 = max_batch x context slots)
    max_body_mb: float = 4.0  # larger request bodies get 413
    max_prefill_tokens: int = 2048  # prompt tokens admitted in one prefill pass
    model_name: str = ""  # the id clients use ("" = the run folder's name)
    device: str = "auto"
    threads: int = 0  # torch CPU threads (0 = torch's choice)
    compile: bool = False  # AOT-compiled decode steps (infer/compiled.py)
    quantize: str | None = None  # "int8" / "int8-dynamic": int8 linear layers (model/kernels/int8.py)
    dtype: str = "fp32"  # the served weights and KV cache: fp32 (as stored) or bf16 (native on AMX CPUs and GPUs)
    kv_dtype: str = "auto"  # the KV cache alone: auto (= dtype), fp32 or bf16 (half the cache's bytes and memory)
    assistants_home: str | None = None  # the home whose assistants/ it serves (None: $LLMLAB_HOME or ~/.llmlab)

    def __post_init__(self):
        problems = []
        if not 0 <= self.port < 65536:
            problems.append(f"port must be in 0..65535, got {self.port}")
        if self.max_batch < 1:
            problems.append(f"max_batch must be >= 1, got {self.max_batch}")
        if self.max_queue < 0:
            problems.append(f"max_queue must be >= 0, got {self.max_queue}")
        if self.kv_cache_mb < 0 or self.max_body_mb <= 0:
            problems.append("kv_cache_mb must be >= 0 and max_body_mb > 0")
        if self.max_prefill_tokens < 1:
            problems.append("max_prefill_tokens must be >= 1")
        if self.api_key is not None and not self.api_key.strip():
            problems.append("api_key must not be empty")
        if self.quantize not in (None, "int8", "int8-dynamic"):
            problems.append(f"quantize must be int8 or int8-dynamic, got {self.quantize!r}")
        if self.dtype not in SERVE_DTYPES:
            problems.append(f"dtype must be one of {', '.join(SERVE_DTYPES)}, got {self.dtype!r}")
        elif self.quantize and self.dtype != "fp32":
            problems.append("quantize converts fp32 weights; use it with dtype fp32")
        if self.kv_dtype != "auto" and self.kv_dtype not in SERVE_DTYPES:
            problems.append(f"kv_dtype must be auto or one of {', '.join(SERVE_DTYPES)}, got {self.kv_dtype!r}")
        elif self.compile and self.kv_dtype not in ("auto", self.dtype):
            problems.append("the compiled decode step reads a KV cache of the weights' dtype; drop compile or "
                            "kv_dtype")
        if problems:
            raise LlmlabError("invalid serve config: " + "; ".join(problems))


@dataclass
class Plan:
    """A request made ready for the scheduler."""

    id: str
    created: int
    job: object | None  # engine_proc.JobSpec
    prompt_tokens: int
    logprobs: int | None = None
    echo: list[str] | None = None  # completions' echo: the prompt text per choice
    refusal: str | None = None
    job_id: int | None = None  # the engine process's handle, once submitted
    model: str = ""  # the model id the answer names (the served run's, or assistant:NAME)
    rounds: "ToolRounds | None" = None  # an assistant that runs its own tools: the state between its rounds


@dataclass
class ToolRounds:
    """A chat with an assistant whose tools the server runs: each round is one job that ends at a tool call's
    end token (or the answer's end); the call runs here and the next round's prompt is this one + what the
    model wrote + the call's end + the result, as ``ToolLoop.run`` continues a row (``tools/loop.py``)."""

    loop: object  # tools.loop.ToolLoop
    answer: object  # tools.loop.ToolAnswer: the text, calls and results so far
    ids: list[int]  # this round's prompt
    params: object  # SamplingParams of the first round
    budget: int  # sampled tokens allowed in all rounds (tool results do not count, as in ToolLoop)
    used: int = 0
    prompt_tokens: int = 0  # summed over the rounds, for usage
    completion_tokens: int = 0


class ServerState:
    """The tokenizer, the engine process's handle, the metrics of one server, and the request -> job
    translation. ``spec`` says what the engine process loads (``EngineSpec``: a run folder, or a model object
    and its tokenizer)."""

    def __init__(self, spec, config: ServeConfig, content_filter: ContentFilter | None = None):
        from llmlab.chat.template import stop_token_ids
        from llmlab.infer.text import stop_ids_for
        from llmlab.serve.app import STATIC
        from llmlab.serve.engine_proc import RemoteScheduler
        from llmlab.serve.metrics import Metrics

        if spec.run is not None:
            from llmlab.runs import load_model_config, load_tokenizer

            tokenizer, model_config = load_tokenizer(spec.run), load_model_config(spec.run)
        else:
            tokenizer, model_config = spec.tokenizer, spec.model.config
        kv_dtype = spec.kv_dtype or spec.dtype  # the KV budget counts the cache's bytes an element
        elem = (spec.model.embed_tokens.weight.element_size() if spec.run is None and kv_dtype == "fp32"
                else SERVE_DTYPES[kv_dtype])  # (a test's model object may be float64)
        self.spec, self.tokenizer, self.config = spec, tokenizer, config
        self.model_config = model_config
        self.content_filter = content_filter
        self.context = model_config.max_seq_len
        self.vocab_size = model_config.vocab_size
        if tokenizer.vocab_size > self.vocab_size:
            raise LlmlabError(f"the tokenizer has {tokenizer.vocab_size} tokens but the model {self.vocab_size}")
        self.model_name = config.model_name or os.path.basename(os.path.normpath(spec.run or "")) or "llmlab"
        self.created = int(time.time())
        self.api_key = config.api_key
        self.max_body_bytes = int(config.max_body_mb * 2**20)
        self.metrics = Metrics(engine=False)
        kv_slots = None
        if config.kv_cache_mb:
            c = model_config
            kv_slots = int(config.kv_cache_mb * 2**20) // (2 * c.n_layer * c.n_kv_head * c.head_dim * elem)
            if kv_slots < self.context:
                raise LlmlabError(f"--kv-cache-mb {config.kv_cache_mb} holds {kv_slots} slots, less than one "
                                  f"request of the full context ({self.context})")
        self.scheduler = RemoteScheduler(spec, max_rows=config.max_batch, max_queue=config.max_queue,
                                         max_kv_slots=kv_slots, max_prefill_tokens=config.max_prefill_tokens,
                                         context=self.context)
        self.chat_stop_ids = list(stop_token_ids(tokenizer))
        self.text_stop_ids = list(stop_ids_for(tokenizer))
        self.static_files = {p.name for p in STATIC.iterdir() if p.is_file()} if STATIC.is_dir() else set()
        self._grammars = None
        self._tool_loops: dict = {}  # (assistant name, updated) -> its ToolLoop
        self._token_text: dict[int, str] = {}
        # The longest token in bytes: text longer than context x this is over the context for sure, and is
        # refused before a tokenizer pass over it (a 1 MB prompt).
        self.max_token_bytes = max(len(tokenizer.token_bytes(i)) for i in range(tokenizer.vocab_size)
                                   if not tokenizer.is_special(i))

    def app(self):
        from llmlab.serve.app import create_app

        return create_app(self)

    def start(self) -> None:
        """Start the engine process (loads the model there); returns when it is ready."""
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()

    # ------------------------------------------------------------------------------------------------------
    def grammars(self):
        if self._grammars is None:
            try:
                from llmlab.serve.grammar import Grammars
            except ImportError:
                raise ApiError(400, "constrained decoding (JSON mode, forced tool calls) needs the xgrammar "
                                    "package on the server (pip install xgrammar)") from None
            self._grammars = Grammars(self.tokenizer, self.vocab_size, self.chat_stop_ids)
        return self._grammars

    def token_text(self, tid: int) -> str:
        text = self._token_text.get(tid)
        if text is None:
            text = self._token_text[tid] = self.tokenizer.token_bytes(tid).decode("utf-8", errors="replace")
        return text

    def check_ids(self, ids, param: str) -> None:
        bad = [t for t in ids if not 0 <= t < self.vocab_size]
        if bad:
            raise ApiError(400, f"{param}: token id {bad[0]} is outside the vocabulary (0..{self.vocab_size - 1})",
                           param=param)

    # ------------------------------------------------------------------------------------------------------
    # Assistants (tools/assistants.py): ``assistant:NAME`` model ids, read from disk on each request so that an
    # assistant created or deleted while the server runs is served (or not) at once.
    def _serves(self, model: str | None) -> bool:
        """Whether an assistant whose profile names run folder ``model`` runs on this server's model: it names
        none, or this run."""
        if model is None:
            return True
        return self.spec.run is not None and Path(model).resolve() == Path(self.spec.run).resolve()

    def assistant_cards(self) -> list[dict]:
        """``/v1/models`` entries of the assistants this server answers as ``assistant:NAME``."""
        from llmlab.tools.assistants import served_models

        return [dict(m, max_model_len=self.context) for m in served_models(self.config.assistants_home)
                if self._serves(m["llmlab"]["model"])]

    def resolve_model(self, name: str | None):
        """The assistant a request's ``model`` names (None for this server's own model or no name); a 404 for any
        other id, an unknown assistant, or one made for another run."""
        from llmlab.tools.assistants import MODEL_PREFIX, load_assistant

        if name is None or name == self.model_name:
            return None
        if name.startswith(MODEL_PREFIX):
            try:
                a = load_assistant(name[len(MODEL_PREFIX):], self.config.assistants_home)
            except LlmlabError:  # (its message names server paths: the client gets the list instead)
                a = None
            if a is not None and self._serves(a.model):
                return a
        known = ", ".join(repr(m["id"]) for m in [{"id": self.model_name}, *self.assistant_cards()])
        raise ApiError(404, f"the model {name!r} does not exist; this server serves {known}", param="model",
                       code="model_not_found")

    def with_assistant(self, req, assistant):
        """``req`` as ``assistant`` answers it: its system prompt first unless the request opens with its own
        system (or developer) message -- a client that writes one means it, as ``chat --system`` overrides a
        profile's -- and its sampling defaults for the fields the request leaves out (the request's win)."""
        from llmlab.serve.protocol import Message

        if assistant is None:
            return req
        update = {}
        if assistant.system and req.messages and req.messages[0].role not in ("system", "developer"):
            update["messages"] = [Message(role="system", content=assistant.system), *req.messages]
        for key in ("temperature", "top_p", "top_k"):
            if key in type(req).model_fields and getattr(req, key) is None and assistant.sampling.get(key) is not None:
                update[key] = assistant.sampling[key]
        return req.model_copy(update=update)

    def tokenize(self, req, assistant=None) -> list[int]:
        from llmlab.infer.text import encode_prompt
        from llmlab.serve.chat_format import prompt_ids

        try:
            if req.prompt is not None:
                return encode_prompt(self.tokenizer, req.prompt, add_bos=req.add_special_tokens)
            # what a chat request's prompt holds: with the guard, its view (datamarked tools, decoded messages)
            return prompt_ids(self.with_assistant(req, assistant).messages, self.tokenizer, view=self._screen()[1])
        except LlmlabError as e:
            raise ApiError(400, str(e), param="messages") from None

    # ------------------------------------------------------------------------------------------------------
    def _check_text_size(self, texts, what: str) -> None:
        n = sum(len(t.encode("utf-8", errors="replace")) for t in texts)
        if n > self.context * self.max_token_bytes:
            raise ApiError(400, f"This model's maximum context length is {self.context} tokens. However, the "
                                f"{what} ({n} bytes) is longer than that for certain.", param=what,
                           code="context_length_exceeded")

    def _check_context(self, n_prompt: int, max_tokens: int | None, what: str) -> int:
        """The max_tokens to use; 400 when the prompt (+ max_tokens) does not fit the context."""
        ctx = self.context
        if n_prompt >= ctx or (max_tokens is not None and n_prompt + max_tokens > ctx):
            asked = f" and {max_tokens} in the completion" if max_tokens is not None else ""
            raise ApiError(400, f"This model's maximum context length is {ctx} tokens. However, you requested "
                                f"{n_prompt + (max_tokens or 0)} tokens ({n_prompt} in the {what}{asked}). Please "
                                f"reduce the length of the {what} or the completion.",
                           param="max_tokens" if n_prompt < ctx else what, code="context_length_exceeded")
        return max_tokens if max_tokens is not None else ctx - n_prompt

    def _sampling(self, req, max_tokens: int, stop_ids, logprobs: int | None):
        from llmlab.infer.sampling import SamplingParams

        bias = {}
        for k, v in (req.logit_bias or {}).items():
            try:
                tid = int(k)
            except ValueError:
                raise ApiError(400, f"logit_bias: key {k!r} is not a token id", param="logit_bias") from None
            if not 0 <= tid < self.vocab_size or not -100 <= v <= 100:
                raise ApiError(400, f"logit_bias: token {k} must be in 0..{self.vocab_size - 1} and its bias in "
                                    f"[-100, 100]", param="logit_bias")
            bias[tid] = v
        top_k = req.top_k if req.top_k and req.top_k > 0 else 0
        try:
            return SamplingParams(
                max_new_tokens=max_tokens, temperature=1.0 if req.temperature is None else req.temperature,
                top_p=1.0 if req.top_p is None else req.top_p, top_k=top_k, min_p=req.min_p or 0.0,
                repetition_penalty=req.repetition_penalty or 1.0, frequency_penalty=req.frequency_penalty or 0.0,
                presence_penalty=req.presence_penalty or 0.0, logit_bias=bias,
                stop_token_ids=() if req.ignore_eos else tuple(stop_ids), ignore_eos=True,
                seed=None if req.seed is None else req.seed % 2**63, n=req.n, logprobs=logprobs)
        except LlmlabError as e:
            raise ApiError(400, str(e)) from None

    def _stops(self, stop) -> tuple[str, ...]:
        stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
        if len(stops) > 4 or any(not s for s in stops):
            raise ApiError(400, "stop: at most 4 non-empty strings", param="stop")
        return stops

    def _fits(self, n_prompt: int, params) -> None:
        why = self.scheduler.fits_alone(n_prompt, params)
        if why:
            raise ApiError(400, why, param="n" if "n=" in why else "max_tokens")

    def _filter(self, messages: list[dict]) -> str | None:
        if self.content_filter is None:
            return None
        return self.content_filter(messages)

    def _screen(self):
        """``(result, view)`` for a chat request: with a content filter that has ``prepare``, ``view`` runs it on
        the template's messages as the prompt is rendered and leaves its refusal (or None) in
        ``result["refusal"]``; without one, ``view`` is None."""
        prepare = getattr(self.content_filter, "prepare", None)
        result = {"refusal": None}
        if prepare is None:
            return result, None

        def view(msgs: list[dict]) -> list[dict]:
            result["refusal"], shown = prepare(msgs)
            return shown
        return result, view

    def _refusal(self, screen: dict, view, req) -> str | None:
        """A chat request's refusal (or None): the one ``prepare`` left in ``screen`` while the prompt was
        rendered through ``view``, or, for a filter without ``prepare``, its verdict on the messages."""
        if view is not None:
            return screen["refusal"]
        return self._filter([{"role": m.role, "content": m.text()} for m in req.messages])

    # ------------------------------------------------------------------------------------------------------
    def build_chat(self, req, assistant=None) -> Plan:
        """A ``/v1/chat/completions`` request -> a Plan with its job (runs in a worker thread); ``assistant``:
        the profile its ``model`` names (``resolve_model``), whose system prompt and sampling defaults apply."""
        from llmlab.serve.chat_format import call_schema, model_template, prompt_ids
        from llmlab.serve.engine_proc import JobSpec, PartSpec

        plan = Plan(new_id("chatcmpl"), int(time.time()), None, 0, model=req.model if assistant else self.model_name)
        req = self.with_assistant(req, assistant)
        for i, m in enumerate(req.messages):
            if m.role != "assistant" and m.content is None:
                raise ApiError(400, f"messages[{i}].content: a {m.role} message needs content",
                               param=f"messages[{i}].content")
        if req.top_logprobs is not None and not req.logprobs:
            raise ApiError(400, "top_logprobs needs logprobs: true", param="top_logprobs")
        plan.logprobs = (req.top_logprobs or 0) if req.logprobs else None
        tools = [t.function.model_dump(exclude_none=True, exclude={"strict"}) for t in req.tools or []]
        choice = req.tool_choice if req.tool_choice is not None else ("auto" if tools else "none")
        if choice != "none" and not tools:
            raise ApiError(400, "tool_choice needs tools", param="tool_choice")
        forced_name = choice.function.name if not isinstance(choice, str) else None
        forced = choice == "required" or forced_name is not None
        use_tools = tools if choice != "none" else None
        self._check_text_size([m.text() for m in req.messages], "messages")
        screen, view = self._screen()
        try:
            ids = prompt_ids(req.messages, self.tokenizer, use_tools, force_call=forced, view=view)
        except LlmlabError as e:
            raise ApiError(400, str(e), param="messages") from None
        plan.prompt_tokens = len(ids)
        refusal = self._refusal(screen, view, req)
        if refusal is not None:
            plan.refusal = refusal
            return plan
        asked = req.max_completion_tokens or req.max_tokens
        max_tokens = self._check_context(len(ids), asked, "messages")
        if asked is None and assistant is not None and assistant.sampling.get("max_new_tokens"):
            max_tokens = min(max_tokens, assistant.sampling["max_new_tokens"])  # a default: clipped, never a 400
        constraint = None  # (kind, schema JSON, terminate, strict): compiled here to check it, and again
        if forced:  #        in the engine process (a compiled grammar does not cross processes)
            try:
                schema = call_schema(use_tools, forced_name)
            except LlmlabError as e:
                raise ApiError(400, str(e), param="tool_choice") from None
            constraint = self._constraint(schema, True, True, "tools")
        elif req.response_format is not None and req.response_format.type == "json_object":
            constraint = self._constraint({"type": "object"}, False, False, "response_format")
        elif req.response_format is not None and req.response_format.type == "json_schema":
            if req.response_format.json_schema is None:
                raise ApiError(400, "response_format: json_schema needs its 'json_schema' object",
                               param="response_format")
            constraint = self._constraint(req.response_format.json_schema.schema_, False, True, "response_format")
        stop_ids = list(self.chat_stop_ids)
        tool_mode = None
        if forced:
            tool_mode = "body"
        elif use_tools:
            tool_mode = "auto"
            if not model_template(self.tokenizer):
                from llmlab.chat.template import TOOL_CALL_END

                stop_ids.append(self.tokenizer.special_id(TOOL_CALL_END))  # the client runs the call
        params = self._sampling(req, max_tokens, stop_ids, plan.logprobs)
        self._fits(len(ids), params)
        plan.job = JobSpec([PartSpec(ids, params, constraint)], stop_ids, stops=self._stops(req.stop),
                           tools=tool_mode, json_start=model_template(self.tokenizer), n_choices=params.n)
        return plan

    def _constraint(self, schema, terminate: bool, strict: bool, param: str) -> tuple:
        import json

        try:
            self.grammars().json_schema(schema, terminate, strict)
            return ("json_schema", json.dumps(schema), terminate, strict)
        except (LlmlabError, TypeError, ValueError) as e:
            raise ApiError(400, str(e), param=param) from None

    # ------------------------------------------------------------------------------------------------------
    # Assistants whose tools the server runs (calc, python, search over its documents)
    def assistant_loop(self, assistant):
        """The tool loop of an assistant with tools (kept per profile version), or None without tools."""
        if not assistant.tools:
            return None
        key = (assistant.name, assistant.updated)
        loop = self._tool_loops.get(key)
        if loop is None:
            import sys

            from llmlab.tools.toolset import make_tool_loop

            try:
                loop = make_tool_loop(self.tokenizer, tuple(assistant.tools), index=assistant.index_path(),
                                      search=assistant.search_config(),
                                      result_filter=getattr(self.content_filter, "screen_tool", None))
            except LlmlabError as e:  # a missing or stale index: the operator's to fix; the server goes on
                print(f"llmlab serve: assistant {assistant.name!r}: {e}", file=sys.stderr)
                raise ApiError(503, f"the assistant {assistant.name!r} cannot load its tools (see the server's "
                                    "log)", param="model", code="unavailable") from None
            if loop.fmt.end_id is None:
                raise ApiError(400, f"the assistant {assistant.name!r} has tools, but this model's tool-call end "
                                    "is not one token; the server runs tools only for models whose is",
                               param="model")
            self._tool_loops[key] = loop
        return loop

    def build_tool_chat(self, req, assistant, loop) -> Plan:
        """The first round of a chat with an assistant whose tools the server runs. The prompt is rendered as
        ``llmlab chat --assistant`` renders it (no tool list for llmlab's own models, which learned their
        tools; the model's own template gets it)."""
        from llmlab.chat.template import render_prompt
        from llmlab.serve.chat_format import template_messages
        from llmlab.tools.loop import ToolAnswer

        for field_, bad in (("tools", req.tools), ("tool_choice", req.tool_choice),
                            ("response_format", req.response_format), ("logprobs", req.logprobs or None),
                            ("n", req.n if req.n > 1 else None)):
            if bad is not None:
                raise ApiError(400, f"{field_}: {req.model!r} runs its own tools; a request to it takes no "
                                    f"{field_}", param=field_)
        plan = Plan(new_id("chatcmpl"), int(time.time()), None, 0, model=req.model)
        req = self.with_assistant(req, assistant)
        for i, m in enumerate(req.messages):
            if m.role != "assistant" and m.content is None:
                raise ApiError(400, f"messages[{i}].content: a {m.role} message needs content",
                               param=f"messages[{i}].content")
        self._check_text_size([m.text() for m in req.messages], "messages")
        screen, view = self._screen()
        try:
            msgs = template_messages(req.messages, self.tokenizer, None)
            ids = render_prompt(view(msgs) if view is not None else msgs, self.tokenizer, **loop.template_kwargs())
        except LlmlabError as e:
            raise ApiError(400, str(e), param="messages") from None
        refusal = self._refusal(screen, view, req)
        if refusal is not None:
            plan.prompt_tokens, plan.refusal = len(ids), refusal
            return plan
        asked = req.max_completion_tokens or req.max_tokens
        max_tokens = self._check_context(len(ids), asked, "messages")
        if asked is None and assistant.sampling.get("max_new_tokens"):
            max_tokens = min(max_tokens, assistant.sampling["max_new_tokens"])
        params = self._sampling(req, max_tokens, self.chat_stop_ids, None)
        self._fits(len(ids), params)
        plan.rounds = ToolRounds(loop, ToolAnswer(0, 0), ids, params, max_tokens)
        plan.job = self._tool_job(plan.rounds, params, self._stops(req.stop))
        return plan

    def _tool_job(self, rounds: ToolRounds, params, stops):
        from llmlab.serve.engine_proc import JobSpec, PartSpec

        stop_ids = [*self.chat_stop_ids, rounds.loop.fmt.end_id]
        return JobSpec([PartSpec(rounds.ids, params.replace(stop_token_ids=tuple(stop_ids)))], stop_ids,
                       stops=stops, n_choices=1)

    def tool_step(self, plan: Plan, text: str, sampled: list[int], reason: str, n_prompt: int, n_out: int) -> bool:
        """After a round: run the call it ended with and make the next round's job (True), or finish the answer
        (False). A round that stopped inside an opened call ended it (at the call's end token, a stop id; an end of
        turn there is taken as the end of the call too)."""
        from llmlab.tools.loop import continue_seed

        r = plan.rounds
        r.prompt_tokens += n_prompt
        r.completion_tokens += n_out
        fmt, a = r.loop.fmt, r.answer
        start = text.rfind(fmt.call_start)
        if reason != "stop" or start < 0:
            if text:
                a.parts.append({"type": "text", "text": text})
            a.finish_reason = reason
            return False
        _, forced = r.loop.call(a, text[:start], text[start + len(fmt.call_start):])
        r.used += len(sampled) + 1  # (+ the call's end token, a stop id: not in ``sampled``)
        r.ids = r.ids + sampled + [fmt.end_id] + forced
        left = min(r.budget - r.used, self.context - len(r.ids))
        if left <= 0:
            a.finish_reason = "length"
            return False
        params = r.params.replace(max_new_tokens=left, seed=continue_seed(r.params.seed, a))
        plan.job = self._tool_job(r, params, plan.job.stops)
        return True

    def build_completion(self, req, assistant=None) -> Plan:
        """A ``/v1/completions`` request -> a Plan with its job (one part per prompt). Assistants answer chats
        only: a completion asked of one is a 400."""
        from llmlab.infer.text import encode_prompt
        from llmlab.serve.engine_proc import JobSpec, PartSpec

        if assistant is not None:
            raise ApiError(400, f"{req.model!r} is an assistant: it answers /v1/chat/completions only", param="model")
        plan = Plan(new_id("cmpl"), int(time.time()), None, 0, model=self.model_name)
        if req.suffix:
            raise ApiError(400, "suffix is not supported", param="suffix")
        if req.best_of is not None and req.best_of != req.n:
            raise ApiError(400, "best_of other than n is not supported", param="best_of")
        if req.echo and req.logprobs is not None:
            raise ApiError(400, "echo with logprobs (prompt logprobs) is not supported", param="echo")
        p = req.prompt
        if isinstance(p, str):
            prompts = [p]
        elif not p:
            raise ApiError(400, "prompt: must not be empty", param="prompt")
        elif isinstance(p[0], int):
            prompts = [p]
        else:
            prompts = list(p)
        self._check_text_size([pr for pr in prompts if isinstance(pr, str)], "prompt")
        ids_list, texts = [], []
        for i, pr in enumerate(prompts):
            if isinstance(pr, str):
                ids_list.append(encode_prompt(self.tokenizer, pr))
                texts.append(pr)
            else:
                if not pr:
                    raise ApiError(400, f"prompt[{i}]: must not be empty", param="prompt")
                self.check_ids(pr, "prompt")
                ids_list.append(list(pr))
                texts.append(self.tokenizer.decode(pr))
        plan.prompt_tokens = sum(len(x) for x in ids_list)
        plan.logprobs = req.logprobs
        refusal = self._filter([{"role": "user", "content": t} for t in texts])
        if refusal is not None:
            plan.refusal = refusal
            return plan
        parts = []
        for ids in ids_list:
            max_tokens = self._check_context(len(ids), req.max_tokens, "prompt")
            params = self._sampling(req, max_tokens, self.text_stop_ids, req.logprobs)
            self._fits(len(ids), params)
            parts.append(PartSpec(ids, params))
        if req.echo:
            plan.echo = [t for t in texts for _ in range(req.n)]
        plan.job = JobSpec(parts, self.text_stop_ids, stops=self._stops(req.stop), n_choices=req.n * len(parts))
        return plan


# ----------------------------------------------------------------------------------------------------------


def load_state(config: ServeConfig, content_filter: ContentFilter | None = None) -> ServerState:
    """The server state for a run folder (the engine process, which loads the weights, is not started yet)."""
    from llmlab.serve.engine_proc import EngineSpec

    if not config.model:
        raise LlmlabError("serve needs a run folder (--model RUN)")
    spec = EngineSpec(run=config.model, device=config.device, threads=config.threads, compile=config.compile,
                      quantize=config.quantize, dtype=config.dtype,
                      kv_dtype=None if config.kv_dtype == "auto" else config.kv_dtype)
    return ServerState(spec, config, content_filter)


def serve(config: ServeConfig, content_filter: ContentFilter | None = None, log=print) -> None:
    """Run the server until interrupted."""
    import uvicorn

    state = load_state(config, content_filter)
    state.start()
    log(f"llmlab serve: {state.model_name} (context {state.context}, batch {config.max_batch}) on "
        f"http://{config.host}:{config.port}  (chat page at /, API at /v1)")
    try:
        uvicorn.run(state.app(), host=config.host, port=config.port, log_level="warning", access_log=False,
                    timeout_graceful_shutdown=5)
    finally:
        state.stop()
