"""Continuous batching: one thread owns the engine's step loop; requests join and leave between steps.

    sched = Scheduler(engine, tokenizer, max_rows=32, max_queue=256)
    sched.start()
    job = Job([Part(ids, SamplingParams(...))], tokenizer, deliver=callback)   # callback(list of items)
    sched.submit(job)          # ApiError(429) when the queue is full
    sched.cancel(job)          # the client went away: its rows leave the batch at the next step

The loop, each turn: take cancellations; admit waiting jobs from the front of the queue while the
generation's admission control (``Generation.can_add``: rows and KV slots) lets them in and their prompts
stay under ``max_prefill_tokens`` together (one prefill pass for all of them; the first job always goes in
when it fits, so no prompt starves); run one decode step for every live row; turn the token events into
text per sample and hand each job its items. The engine is touched by this thread only.

Text per sample (``SampleText``) is the inference text edge's work (``llmlab.infer.text``): UTF-8 safe
pieces, stop tokens not rendered, stop strings cut (the sample is then ended in the engine at once), plus
holding back a tool call from the stream once one starts. Items a job receives, in order:

    ("delta", choice, text, [(token_id, logprob, [(id, logprob), ...]), ...])   tokens behind the text
    ("finish", choice, finish_reason, content, tool_calls)   content: the whole text when calls were held
    ("usage", prompt_tokens, completion_tokens)              after the last choice finished
    ("error", ApiError)                                       instead, when the engine failed
"""

from __future__ import annotations

import collections
import sys
import threading
import time
import traceback
from dataclasses import dataclass

from llmlab.errors import LlmlabError
from llmlab.infer.sampling import SamplingParams
from llmlab.infer.text import StopMatcher, Utf8Decoder
from llmlab.serve.chat_format import CALL_MARKERS, parse_tool_calls
from llmlab.serve.protocol import ApiError


ENGINE_ERROR = ApiError(500, "the engine failed while generating; the request was dropped", code="engine_error")


@dataclass
class Part:
    """One prompt of a job (a completions request may carry several), and where its choices start."""

    ids: list[int]
    params: SamplingParams
    first_choice: int = 0
    prompt_index: int | None = None  # the engine's, once admitted


class SampleText:
    """One sample's token events -> text deltas (UTF-8 safe, stop tokens hidden, stop strings cut, tool
    calls held back). ``tools``: None, "auto" (hold from a call's start) or "body" (the whole text is a
    call's JSON body, held)."""

    def __init__(self, tokenizer, stop_ids, stops, tools: str | None, json_start: bool):
        self.decoder = Utf8Decoder(tokenizer)
        self.matcher = StopMatcher(stops)
        self.stop_ids = stop_ids
        self.tools = tools
        self.json_start = json_start  # a call may be a bare JSON object at the start (imported templates)
        self.shown: list[str] = []  # text released to the client
        self.held: list[str] = []  # text of a tool call, kept back
        self.holding = tools == "body"
        self.pending: list[tuple] = []  # tokens not yet attached to a released delta

    def _release(self, text: str) -> str:
        """Split released text between the client and the held call."""
        if self.holding:
            self.held.append(text)
            return ""
        if self.tools == "auto":
            so_far = "".join(self.shown)
            cut = min((i for i in (text.find(m) for m in CALL_MARKERS) if i >= 0), default=-1)
            if cut < 0 and self.json_start and not so_far.strip() and text.lstrip().startswith("{"):
                cut = 0
            if cut >= 0:
                self.holding = True
                self.held.append(text[cut:])
                text = text[:cut]
        self.shown.append(text)
        return text

    def feed(self, ev) -> tuple[str, list[tuple], bool]:
        """(text to show, tokens behind it, whether a stop string just ended the sample)."""
        stop_token = ev.finish_reason == "stop" and ev.token_id in self.stop_ids and not ev.forced
        piece = "" if stop_token else self.decoder.feed(ev.token_id)
        if ev.finish_reason is not None:
            piece += self.decoder.flush()
        text = self.matcher.feed(piece)
        stopped = self.matcher.stopped is not None
        if ev.finish_reason is not None and not stopped:
            text += self.matcher.flush()
        if not stop_token:
            self.pending.append((ev.token_id, ev.logprob, ev.top_logprobs))
        text = self._release(text)
        if text or ev.finish_reason is not None or stopped:
            tokens, self.pending = self.pending, []
            return text, tokens, stopped
        return "", [], stopped

    def result(self, finish_reason: str) -> tuple[str, str, list[dict] | None]:
        """(finish_reason, content, tool calls) at the end."""
        if self.matcher.stopped is not None:
            finish_reason = "stop"
        if self.tools is None:
            return finish_reason, "".join(self.shown), None
        full = "".join(self.shown) + "".join(self.held)
        content, calls = parse_tool_calls("".join(self.held) if self.tools == "body" else full,
                                          forced_body=self.tools == "body")
        if calls:
            return "tool_calls", content, calls
        return finish_reason, full, None


class Job:
    """One API request as the scheduler runs it: its prompts, and per choice the text state.
    ``deliver(items)`` is called from the scheduler thread (the server hands it to its event loop)."""

    def __init__(self, parts: list[Part], tokenizer, stop_ids, *, stops=(), tools: str | None = None,
                 json_start: bool = False, deliver=None):
        self.parts = parts
        n = 0
        for p in parts:
            p.first_choice = n
            n += p.params.n
        self.texts = [SampleText(tokenizer, set(stop_ids), tuple(stops), tools, json_start) for _ in range(n)]
        self.finished = [False] * n
        self.deliver = deliver or (lambda items: None)
        self.cancelled = False
        self.arrived = time.perf_counter()
        self.first_token: float | None = None
        self.last_token: float | None = None
        self.prompt_tokens = sum(len(p.ids) for p in parts)
        self.completion_tokens = 0

    @property
    def done(self) -> bool:
        return all(self.finished)


def fits_alone(params: SamplingParams, prompt_len: int, max_rows: int, max_kv_slots: int | None,
               context: int) -> str | None:
    """Why a request could never be admitted, even into an empty batch (then it is a 400), or None."""
    if params.n > max_rows:
        return f"n={params.n} is more than this server decodes at once ({max_rows})"
    if max_kv_slots is not None:
        need = params.n * min(context, prompt_len + params.max_new_tokens)
        if need > max_kv_slots:
            return (f"the request needs {need} KV cache slots (n x (prompt + max_tokens)) but the server has "
                    f"{max_kv_slots}; lower max_tokens or n")
    return None


class Scheduler:
    """Owns an ``Engine``'s open generation in its own thread (see the module docstring).

    ``max_rows``: samples decoded at once (the batch); ``max_kv_slots``: the KV cache's bound in rows x slots;
    ``max_queue``: jobs waiting beyond those (more get 429)."""

    def __init__(self, engine, *, max_rows: int = 32, max_queue: int = 256, max_kv_slots: int | None = None,
                 max_prefill_tokens: int = 2048, metrics=None):
        self.engine = engine
        self.max_rows, self.max_queue, self.max_kv_slots = max_rows, max_queue, max_kv_slots
        self.max_prefill_tokens = max_prefill_tokens
        self.metrics = metrics
        self._cond = threading.Condition()
        self._pending: collections.deque[Job] = collections.deque()
        self._cancels: list[Job] = []
        self._live: dict[int, tuple[Job, Part]] = {}  # engine prompt_index -> its job and part
        self._running: set[Job] = set()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.gen = None
        self.steps = 0
        self._steps_before = self._step_seconds_before = 0  # of generations replaced after an engine failure
        self.on_turn = None  # called (in the scheduler thread) after every turn of the loop

    # ------------------------------------------------------------------------------------------------------
    # Called from other threads

    def start(self) -> None:
        self.gen = self._open()
        self._thread = threading.Thread(target=self._run, name="llmlab-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._stop or not self.alive:
                raise ApiError(503, "the server is shutting down" if self._stop else "the engine is not running",
                               code="unavailable")
            if len(self._pending) >= self.max_queue:
                raise ApiError(429, f"the server is busy ({len(self._pending)} requests waiting); retry later",
                               code="rate_limit_exceeded")
            self._pending.append(job)
            self._cond.notify()

    def cancel(self, job: Job) -> None:
        with self._cond:
            if job.cancelled or job.done:
                return
            job.cancelled = True
            self._cancels.append(job)
            self._cond.notify()

    def counts(self) -> tuple[int, int]:
        """(jobs running, jobs waiting)."""
        return len(self._running), len(self._pending)

    # ------------------------------------------------------------------------------------------------------
    # The scheduler thread

    def _open(self):
        return self.engine.open(keep_finished=False, max_rows=self.max_rows, max_kv_slots=self.max_kv_slots)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._stop or self._pending or self._cancels or not self.gen.done):
                    self._cond.wait()
                if self._stop:
                    break
                cancels, self._cancels = self._cancels, []
                admit = self._take_admissible()
            try:
                for job in cancels:
                    self._drop(job)
                events = self._admit(admit) if admit else []
                if not self.gen.done:
                    events += self.gen.step()
                    self.steps += 1
                self._dispatch(events)
            except Exception:  # a bug or out of memory: fail the jobs in flight, keep serving
                traceback.print_exc(file=sys.stderr)
                self._fail_all(ENGINE_ERROR, also=admit)
                self._steps_before += self.gen.stats.decode_steps
                self._step_seconds_before += self.gen.stats.decode_seconds
                self.gen = self._open()
            self._update_gauges()
            if self.on_turn is not None:
                self.on_turn()
        self._fail_all(ApiError(503, "the server is shutting down", code="unavailable"))

    def _take_admissible(self) -> list[Job]:
        """Jobs from the front of the queue that fit now (called with the lock held)."""
        admit, prompts, params, tokens = [], [], [], 0
        while self._pending:
            job = self._pending[0]
            if job.cancelled:
                self._pending.popleft()
                continue
            ids = [p.ids for p in job.parts]
            ps = [p.params for p in job.parts]
            n_tok = sum(len(i) for i in ids)
            if admit and tokens + n_tok > self.max_prefill_tokens:
                break
            if not self.gen.can_add(prompts + ids, params + ps):
                break
            self._pending.popleft()
            admit.append(job)
            prompts += ids
            params += ps
            tokens += n_tok
        return admit

    def _admit(self, jobs: list[Job]) -> list:
        prompts = [p.ids for j in jobs for p in j.parts]
        params = [p.params for j in jobs for p in j.parts]
        base = self.gen.next_prompt_index
        try:
            events = self.gen.add(prompts, params)
        except Exception as e:  # (handlers check requests first; this is the safety net)
            if len(jobs) > 1:
                return [ev for job in jobs for ev in self._admit([job])]  # one by one: only the culprit fails
            # add() changes nothing before its prefill succeeded: the generation goes on without this job.
            if not isinstance(e, LlmlabError):
                traceback.print_exc(file=sys.stderr)
            jobs[0].finished = [True] * len(jobs[0].finished)
            jobs[0].deliver([("error", ApiError(400, str(e)) if isinstance(e, LlmlabError) else ENGINE_ERROR)])
            return []
        for job in jobs:
            self._running.add(job)
            for p in job.parts:
                p.prompt_index = base
                self._live[base] = (job, p)
                base += 1
        if self.metrics is not None:
            self.metrics.prompt_tokens.inc(sum(len(p) for p in prompts))
        return events

    def _drop(self, job: Job) -> None:
        for p in job.parts:
            if p.prompt_index is not None and self._live.pop(p.prompt_index, None) is not None:
                self.gen.cancel(p.prompt_index)
        self._running.discard(job)

    def _dispatch(self, events) -> None:
        now = time.perf_counter()
        out: dict[Job, list] = {}
        for ev in events:
            got = self._live.get(ev.prompt_index)
            if got is None:
                continue  # its job was cancelled
            job, part = got
            c = part.first_choice + ev.sample_index
            if job.finished[c]:
                continue
            items = out.setdefault(job, [])
            job.completion_tokens += 1
            text, tokens, stopped = job.texts[c].feed(ev)
            if text or tokens:
                items.append(("delta", c, text, tokens))
            reason = ev.finish_reason
            if stopped and reason is None:
                self.gen.finish(ev.prompt_index, ev.sample_index, "stop")  # a stop string: the row ends now
                reason = "stop"
            if reason is not None:
                job.finished[c] = True
                items.append(("finish", c, *job.texts[c].result(reason)))
        for job, items in out.items():
            if self.metrics is not None:
                n = sum(len(it[3]) for it in items if it[0] == "delta")
                self.metrics.generation_tokens.inc(n)
                if job.first_token is None:
                    self.metrics.ttft.observe(now - job.arrived)
                elif job.last_token is not None:
                    self.metrics.itl.observe(now - job.last_token)
            job.first_token = job.first_token or now
            job.last_token = now
            if job.done:
                items.append(("usage", job.prompt_tokens, job.completion_tokens))
                self._running.discard(job)
                for p in job.parts:
                    self._live.pop(p.prompt_index, None)
                if self.metrics is not None:
                    self.metrics.e2e.observe(now - job.arrived)
            job.deliver(items)

    def _fail_all(self, error: ApiError, also=()) -> None:
        with self._cond:
            jobs = set(self._running) | set(self._pending) | set(also)
            self._pending.clear()
        for job in jobs:
            if not job.done and not job.cancelled:
                job.deliver([("error", error)])
            job.finished = [True] * len(job.finished)
        self._running.clear()
        self._live.clear()

    def _update_gauges(self) -> None:
        if self.metrics is not None:
            self.metrics.running.set(len(self._running))
            self.metrics.waiting.set(len(self._pending))
            self.metrics.kv_bytes.set(self.gen.kv_bytes())
            self.metrics.steps.set(self._steps_before + self.gen.stats.decode_steps)
            self.metrics.step_seconds.set(self._step_seconds_before + self.gen.stats.decode_seconds)
