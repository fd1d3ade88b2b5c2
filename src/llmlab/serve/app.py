"""The HTTP layer: FastAPI routes in OpenAI's shape over the scheduler, plus the chat page at ``/``.

    app = create_app(state)            # state: ServerState (engine, tokenizer, scheduler, ...)
    uvicorn.run(app, host="127.0.0.1", port=8000)

Routes: ``POST /v1/chat/completions``, ``POST /v1/completions``, ``GET /v1/models`` (and ``/v1/models/{id}``),
``POST /tokenize``, ``POST /detokenize``, ``GET /metrics`` (Prometheus text), ``GET /health`` (open: no key),
``GET /`` (the web chat, ``static/``). Besides the served run, ``/v1/models`` lists the saved assistants made for it
(or for no model) as ``assistant:NAME`` (``tools/assistants.py``); a chat asked of one gets its system prompt and
sampling defaults (``ServerState.with_assistant``). With an API key every route but ``/health`` and the page's files needs
``Authorization: Bearer KEY``.

Each handler parses and checks the body (``protocol.py``), builds the prompt and sampling parameters in a
worker thread (tokenizing a 1 MB prompt or compiling a JSON schema must not stall the event loop), hands the
job to the engine process (``engine_proc.py``) and answers from the items it delivers: one JSON body, or server-sent events
(``data: {chunk}`` per piece, ``data: [DONE]`` at the end). A client that disconnects cancels its job: its rows
leave the batch at the next step. Errors are OpenAI's body with the right status; an unexpected exception is a
500 with a generic message (the traceback goes to the server's log, never to the client).
"""


import asyncio
import hmac
import json
import math
import sys
import traceback
from pathlib import Path

from llmlab.serve.protocol import (
    ApiError,
    ChatRequest,
    CompletionRequest,
    DetokenizeRequest,
    TokenizeRequest,
    parse_body,
)

STATIC = Path(__file__).parent / "static"
OPEN_PATHS = {"/health", "/", "/favicon.ico"}
ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/completions": "completions", "/v1/models": "models",
             "/tokenize": "tokenize", "/detokenize": "detokenize", "/metrics": "metrics", "/health": "health"}
# The page loads nothing from the network: only its own files, and talks only to this server.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _finite(x: float | None) -> float | None:
    if x is None:
        return None
    return x if math.isfinite(x) else -9999.0  # JSON has no -inf; OpenAI writes -9999 for "impossible"


class _Asgi:
    """Pure ASGI middleware: body size limit (413, also for chunked bodies without a length), the API key,
    and the request counter. Pure ASGI rather than BaseHTTPMiddleware so streaming and disconnects pass
    through untouched."""

    def __init__(self, app, state):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        endpoint = ENDPOINTS.get(path, "page" if not path.startswith(("/v1", "/tok", "/detok")) else "other")
        status_seen = {}

        async def send_counted(message):
            if message["type"] == "http.response.start":
                status_seen["status"] = message["status"]
            await send(message)

        try:
            error = self._check(scope, path)
            if error is not None:
                return await _send_error(send_counted, error)
            limit = self.state.max_body_bytes
            received = 0

            async def receive_limited():
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise _TooLarge(limit)
                return message

            try:
                await self.app(scope, receive_limited, send_counted)
            except _TooLarge:  # (the app answers it itself when it reads the body in a handler)
                if "status" not in status_seen:
                    await _send_error(send_counted, _too_large(limit))
        finally:
            self.state.metrics.requests.inc(endpoint=endpoint, status=str(status_seen.get("status", 499)))

    def _check(self, scope, path: str) -> ApiError | None:
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                if int(length) > self.state.max_body_bytes:
                    return _too_large(self.state.max_body_bytes)
            except ValueError:
                return ApiError(400, "invalid Content-Length header")
        key = self.state.api_key
        if key and path not in OPEN_PATHS and not path.startswith("/static/"):
            auth = headers.get(b"authorization", b"").decode("latin-1")
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
                return ApiError(401, "missing or incorrect API key (send Authorization: Bearer KEY)",
                                code="invalid_api_key")
        return None


def merge_deltas(items: list) -> list:
    """The scheduler's items for one stream, as drained together: each choice's consecutive ``("delta", c, text,
    tokens)`` items become one (texts and tokens joined), so a client that reads slower than the engine writes
    gets fewer, longer chunks instead of falling further behind (SGLang's ``--stream-interval`` does this with a
    fixed count). A choice's order is kept: its finish comes after its merged delta; usage and errors end it."""
    out: list = []
    open_delta: dict[int, int] = {}  # choice -> index in out of its delta still open for more text
    for item in items:
        if item[0] == "delta":
            c = item[1]
            at = open_delta.get(c)
            if at is None:
                open_delta[c] = len(out)
                out.append(item)
            else:
                _, _, text, tokens = out[at]
                out[at] = ("delta", c, text + item[2], list(tokens) + list(item[3]))
            continue
        if item[0] == "finish":
            open_delta.pop(item[1], None)
        else:
            open_delta.clear()
        out.append(item)
    return out


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the request body is larger than this server accepts ({limit} bytes)",
                    code="request_too_large")


class _TooLarge(ApiError):
    """Raised while a body without a Content-Length is read past the limit (the app answers it as a 413)."""

    def __init__(self, limit: int):
        e = _too_large(limit)
        super().__init__(e.status, e.message, e.param, e.code)


async def _send_error(send, error: ApiError) -> None:
    body = json.dumps(error.body()).encode()
    await send({"type": "http.response.start", "status": error.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# ----------------------------------------------------------------------------------------------------------


def create_app(state):
    """The FastAPI application over a ``ServerState`` (``serve/server.py``)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect

    app = FastAPI(title="llmlab", docs_url=None, redoc_url=None, openapi_url=None)

    async def read_body(request: Request) -> bytes:
        try:
            return await request.body()
        except ClientDisconnect:  # nobody will read the answer; a 400 keeps it out of the error log
            raise ApiError(400, "the client closed the connection before sending the whole body") from None

    def error_response(e: ApiError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(ApiError)
    async def _api_error(request, e: ApiError):
        return error_response(e)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, e):
        msg = "no such route" if e.status_code == 404 else str(e.detail)
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code)
        return error_response(ApiError(e.status_code, f"{msg}: {request.method} {request.url.path}", code=code))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, e):
        return error_response(ApiError(400, "invalid request"))

    @app.exception_handler(Exception)
    async def _unexpected(request, e):
        traceback.print_exception(e, file=sys.stderr)
        return error_response(ApiError(500, "internal server error", code="internal_error"))

    # -------------------------------------------------------------------------------------------- open routes
    @app.get("/health")
    async def health():
        if not state.scheduler.alive:
            return error_response(ApiError(503, "the engine is not running", code="unavailable"))
        return {"status": "ok"}

    @app.get("/")
    async def page():
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": CSP,
                                                            "Cache-Control": "no-cache"})

    @app.get("/static/{name}")
    async def static_file(name: str):
        path = STATIC / name
        if name not in state.static_files or not path.is_file():
            raise ApiError(404, f"no such file: {name}", code="not_found")
        return FileResponse(path, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"})

    # ------------------------------------------------------------------------------------------------ models
    def model_card() -> dict:
        return {"id": state.model_name, "object": "model", "created": state.created, "owned_by": "llmlab",
                "max_model_len": state.context}

    async def check_model(name: str | None):
        """None for this server's model (or no name), the assistant ``assistant:NAME`` names, else a 404."""
        if name is None or name == state.model_name:
            return None
        return await run_in_threadpool(state.resolve_model, name)  # (reads the profile from disk)

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [model_card(), *await run_in_threadpool(state.assistant_cards)]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str):
        if await check_model(model_id) is None:
            return model_card()
        return next(m for m in await run_in_threadpool(state.assistant_cards) if m["id"] == model_id)

    @app.get("/metrics")
    async def metrics():
        text = state.metrics.render() + state.scheduler.engine_metrics  # the engine process's, as last sent
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    # -------------------------------------------------------------------------------------- tokens <-> text
    @app.post("/tokenize")
    async def tokenize(request: Request):
        req = parse_body(await read_body(request), TokenizeRequest)
        assistant = await check_model(req.model)
        if (req.prompt is None) == (req.messages is None):
            raise ApiError(400, "give exactly one of 'prompt' and 'messages'")
        ids = await run_in_threadpool(state.tokenize, req, assistant)
        return {"count": len(ids), "max_model_len": state.context, "tokens": ids}

    @app.post("/detokenize")
    async def detokenize(request: Request):
        req = parse_body(await read_body(request), DetokenizeRequest)
        await check_model(req.model)
        state.check_ids(req.tokens, "tokens")
        return {"prompt": state.tokenizer.decode(req.tokens)}

    # ----------------------------------------------------------------------------------------- completions
    async def run(request: Request, build, body_model, kind: str):
        req = parse_body(await read_body(request), body_model)
        assistant = await check_model(req.model)
        if kind == "chat" and assistant is not None and assistant.tools:
            return await tool_chat(request, req, assistant)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def deliver(items):
            loop.call_soon_threadsafe(queue.put_nowait, items)

        plan = await run_in_threadpool(build, req, assistant)
        if plan.refusal is not None:
            return refusal(plan, req, kind)
        plan.job_id = state.scheduler.submit(plan.job, deliver)  # ApiError(429/503): its status, before any byte
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return StreamingResponse(stream(plan, queue, kind, include_usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return await collect(request, plan, queue, kind)

    # --------------------------------------------------------------------------- assistants that run tools
    async def tool_round(request, job) -> tuple:
        """One round's job to its end: (text, sampled ids, finish_reason, prompt tokens, completion tokens)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        job_id = state.scheduler.submit(job, lambda items: loop.call_soon_threadsafe(queue.put_nowait, items))
        ids, reason, text = [], None, ""
        try:
            while True:
                for item in await next_items(request, queue):
                    if item[0] == "delta":
                        ids.extend(t[0] for t in item[3])
                    elif item[0] == "finish":
                        reason, text = item[2], item[3]
                    elif item[0] == "usage":
                        return text, ids, reason, item[1], item[2]
                    elif item[0] == "error":
                        raise item[1]
        except (asyncio.CancelledError, Exception):
            state.scheduler.cancel(job_id)
            raise

    async def tool_chat(request, req, assistant):
        """A chat with an assistant that has tools: the server runs its calls between rounds and answers with
        the final text and its sources (``ServerState.tool_step``). A stream gets the answer at the end, in one
        piece (the rounds before it are the server's business)."""
        tools = await run_in_threadpool(state.assistant_loop, assistant)
        plan = await run_in_threadpool(state.build_tool_chat, req, assistant, tools)
        if plan.refusal is not None:
            return refusal(plan, req, "chat")
        r = plan.rounds
        while await run_in_threadpool(state.tool_step, plan, *await tool_round(request, plan.job)):
            pass
        sources = tools.sources(r.answer) if tools.sources is not None else ""
        content = r.answer.final_text + ("\n\n" + sources if sources else "")
        extra = {"tool_calls": [{"call": c.body, "name": c.name, "result": c.result, "ok": c.ok}
                                for c in r.answer.calls], "sources": sources}
        reason, u = r.answer.finish_reason, usage(r.prompt_tokens, r.completion_tokens)
        if not req.stream:
            msg = {"role": "assistant", "content": content, "refusal": None, "llmlab": extra}
            return {"id": plan.id, "object": "chat.completion", "created": plan.created, "model": plan.model,
                    "system_fingerprint": None, "usage": u,
                    "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": reason}]}
        include = bool(req.stream_options and req.stream_options.include_usage)

        async def gen():
            yield chunk(plan, "chat", [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                                        "finish_reason": None}], with_usage=include)
            yield chunk(plan, "chat", [{"index": 0, "delta": {"content": content, "llmlab": extra}, "logprobs": None,
                                        "finish_reason": None}], with_usage=include)
            yield chunk(plan, "chat", [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}],
                        with_usage=include)
            if include:
                yield chunk(plan, "chat", [], u, with_usage=True)
            yield "data: [DONE]\n\n"

        return StreamingResponse(gen(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        return await run(request, state.build_chat, ChatRequest, "chat")

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await run(request, state.build_completion, CompletionRequest, "completions")

    # ---------------------------------------------------------------------------------------------- shapes
    def token_entry(tid, lp, top, kind):
        text = state.token_text(tid)
        if kind == "chat":
            entry = {"token": text, "logprob": _finite(lp), "bytes": list(state.tokenizer.token_bytes(tid))}
            entry["top_logprobs"] = [{"token": state.token_text(i), "logprob": _finite(v),
                                      "bytes": list(state.tokenizer.token_bytes(i))} for i, v in (top or [])]
            return entry
        return text, _finite(lp), {state.token_text(i): _finite(v) for i, v in (top or [])}

    def logprobs_block(tokens, kind, offset0=0, text=""):
        if kind == "chat":
            return {"content": [token_entry(t, lp, top, kind) for t, lp, top in tokens], "refusal": None}
        toks, lps, tops, offs = [], [], [], []
        off = offset0
        for t, lp, top in tokens:
            s, v, d = token_entry(t, lp, top, kind)
            toks.append(s)
            lps.append(v)
            tops.append(d)
            offs.append(off)
            off += len(s)
        return {"tokens": toks, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offs}

    def usage(prompt, completion):
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def tool_call_list(calls):
        return [{"id": c["id"], "type": "function", "function": dict(c["function"])} for c in calls]

    async def next_items(request, queue) -> list:
        """Wait for the scheduler's next items; with ``request``, notice a client that went away (a stream's
        disconnect is noticed by StreamingResponse itself, which cancels the generator)."""
        if request is None:
            return await queue.get()
        while True:
            try:
                return await asyncio.wait_for(queue.get(), timeout=0.5)
            except asyncio.TimeoutError:
                if await request.is_disconnected():
                    raise asyncio.CancelledError

    async def collect(request, plan, queue, kind):
        n = plan.job.n_choices
        texts = [[] for _ in range(n)]
        toks = [[] for _ in range(n)]
        finish = [None] * n
        done_usage = None
        try:
            while done_usage is None:
                for item in await next_items(request, queue):
                    if item[0] == "delta":
                        texts[item[1]].append(item[2])
                        toks[item[1]].extend(item[3])
                    elif item[0] == "finish":
                        finish[item[1]] = item[2:]
                    elif item[0] == "usage":
                        done_usage = usage(item[1], item[2])
                    elif item[0] == "error":
                        raise item[1]
        except (asyncio.CancelledError, Exception):
            state.scheduler.cancel(plan.job_id)
            raise
        choices = []
        for c in range(n):
            reason, content, calls = finish[c]
            want_lp = plan.logprobs is not None
            if kind == "chat":
                msg = {"role": "assistant", "content": content if (content or not calls) else None, "refusal": None}
                if calls:
                    msg["tool_calls"] = tool_call_list(calls)
                choices.append({"index": c, "message": msg,
                                "logprobs": logprobs_block(toks[c], kind) if want_lp else None,
                                "finish_reason": reason})
            else:
                echo = plan.echo[c] if plan.echo else ""
                choices.append({"index": c, "text": echo + content,
                                "logprobs": logprobs_block(toks[c], kind, len(echo)) if want_lp else None,
                                "finish_reason": reason})
        obj = "chat.completion" if kind == "chat" else "text_completion"
        return {"id": plan.id, "object": obj, "created": plan.created, "model": plan.model,
                "system_fingerprint": None, "choices": choices, "usage": done_usage}

    def chunk(plan, kind, choices, usage_=None, with_usage=False) -> str:
        obj = {"id": plan.id, "object": "chat.completion.chunk" if kind == "chat" else "text_completion",
               "created": plan.created, "model": plan.model, "system_fingerprint": None, "choices": choices}
        if with_usage:
            obj["usage"] = usage_
        return "data: " + json.dumps(obj, ensure_ascii=False) + "\n\n"

    async def stream(plan, queue, kind, include_usage):
        n = plan.job.n_choices
        shown = [""] * n
        want_lp = plan.logprobs is not None
        finished = False
        try:
            if kind == "chat":
                yield chunk(plan, kind, [{"index": c, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                                          "finish_reason": None} for c in range(n)], with_usage=include_usage)
            while not finished:
                items = await next_items(None, queue)
                while not queue.empty():  # coalesce what is already there into one write
                    items += queue.get_nowait()
                out = []
                for item in merge_deltas(items):
                    if item[0] == "delta":
                        c, text, tokens = item[1], item[2], item[3]
                        if kind == "completions" and plan.echo and not shown[c]:
                            text = plan.echo[c] + text
                        offset = len(shown[c]) + len(text) - len(item[2])  # the tokens' text starts after any echo
                        shown[c] += text
                        lp = logprobs_block(tokens, kind, offset) if want_lp else None
                        if kind == "chat":
                            out.append(chunk(plan, kind, [{"index": c, "delta": {"content": text}, "logprobs": lp,
                                                           "finish_reason": None}], with_usage=include_usage))
                        else:
                            out.append(chunk(plan, kind, [{"index": c, "text": text, "logprobs": lp,
                                                           "finish_reason": None}], with_usage=include_usage))
                    elif item[0] == "finish":
                        c, reason, content, calls = item[1:]
                        rest = "" if calls else content[len(shown[c]):] if content.startswith(shown[c]) else ""
                        if kind == "chat":
                            delta = {}
                            if rest:
                                delta["content"] = rest
                            if calls:
                                delta["tool_calls"] = [dict(tc, index=i) for i, tc in enumerate(tool_call_list(calls))]
                            if delta:
                                out.append(chunk(plan, kind, [{"index": c, "delta": delta, "logprobs": None,
                                                               "finish_reason": None}], with_usage=include_usage))
                            out.append(chunk(plan, kind, [{"index": c, "delta": {}, "logprobs": None,
                                                           "finish_reason": reason}], with_usage=include_usage))
                        else:
                            out.append(chunk(plan, kind, [{"index": c, "text": rest, "logprobs": None,
                                                           "finish_reason": reason}], with_usage=include_usage))
                    elif item[0] == "usage":
                        if include_usage:
                            out.append(chunk(plan, kind, [], usage(item[1], item[2]), with_usage=True))
                        out.append("data: [DONE]\n\n")
                        finished = True
                    elif item[0] == "error":
                        out.append("data: " + json.dumps(item[1].body()) + "\n\n")
                        out.append("data: [DONE]\n\n")
                        finished = True
                if out:
                    yield "".join(out)
        finally:
            if not finished:
                state.scheduler.cancel(plan.job_id)  # the client went away (or the server stops)

    def refusal(plan, req, kind):
        """A request the content filter refused: an answer that says so (finish_reason content_filter)."""
        n = req.n
        if kind == "chat":
            msg = {"role": "assistant", "content": None, "refusal": plan.refusal}
            choices = [{"index": c, "message": msg, "logprobs": None, "finish_reason": "content_filter"}
                       for c in range(n)]
        else:
            choices = [{"index": c, "text": "", "logprobs": None, "finish_reason": "content_filter"}
                       for c in range(n)]
        u = usage(plan.prompt_tokens, 0)
        if not req.stream:
            obj = "chat.completion" if kind == "chat" else "text_completion"
            return {"id": plan.id, "object": obj, "created": plan.created, "model": plan.model,
                    "system_fingerprint": None, "choices": choices, "usage": u}
        include = bool(req.stream_options and req.stream_options.include_usage)

        async def gen():
            for ch in choices:
                if kind == "chat":
                    ch = {"index": ch["index"], "delta": {"role": "assistant", "refusal": plan.refusal},
                          "logprobs": None, "finish_reason": "content_filter"}
                yield chunk(plan, kind, [ch], with_usage=include)
            if include:
                yield chunk(plan, kind, [], u, with_usage=True)
            yield "data: [DONE]\n\n"

        return StreamingResponse(gen(), media_type="text/event-stream")

    return _Asgi(app, state)
