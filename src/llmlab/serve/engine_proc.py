"""The engine in its own process: the HTTP process and the step loop do not share a GIL.

    remote = RemoteScheduler(EngineSpec(run="runs/sft"), max_rows=32, max_queue=256)
    remote.start()                                   # spawns the engine process; returns once it is ready
    remote.submit(job_id, JobSpec(...), deliver)     # ApiError(429) when the queue is full
    remote.cancel(job_id)

Why a process. In one process the scheduler thread's decode step is ~150 PyTorch calls, each of which lets go
of the GIL and must take it back; while the event loop is busy writing 32 streams it holds the GIL for up to
the interpreter's switch interval at a time, so every call of the step may wait milliseconds (measured with
32 streams of the speedrun model: 3.8 ms of CPU per step took 19 ms of wall time). vLLM moved its engine core
into its own process for the same reason.

The engine process runs the ``Scheduler`` (``scheduler.py``) as before; a reader thread in it takes messages
from the pipe (submit, cancel, stop), and after every turn of the step loop the items for all jobs go back as
one message. The HTTP process keeps the queue bound (429) from the counts the engine process reports with each
turn, and shows the engine's metrics (sent at most twice a second) in ``/metrics`` beside its own.

Messages, parent -> engine: ``("submit", job_id, JobSpec)``, ``("cancel", job_id)``, ``("stop",)``;
engine -> parent: ``("ready", info)`` or ``("failed", message)`` once, then ``("turn", [(job_id, items), ...],
running, waiting, metrics_text or None)``.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field

from llmlab.errors import LlmlabError
from llmlab.serve.protocol import ApiError


# The weight and KV-cache types the engine process serves in, with their bytes per element (the KV budget).
# bf16 halves the memory and, where matmuls run natively in bf16 (AMX, AVX512-BF16, GPUs), makes many-row decode
# steps and prefills several times faster than fp32 (docs/LOG.md); a row's numbers then depend on its batch.
SERVE_DTYPES = {"fp32": 4, "bf16": 2}


@dataclass
class EngineSpec:
    """What the engine process loads: a run folder, or (tests) a model object and its tokenizer."""

    run: str | None = None
    model: object | None = None
    tokenizer: object | None = None
    device: str = "auto"
    threads: int = 0
    quantize: str | None = None  # a --quantize choice ("int8", "int8-dynamic"; model/kernels/int8.py)
    compile: bool = False
    dtype: str = "fp32"  # a SERVE_DTYPES name
    kv_dtype: str | None = None  # a SERVE_DTYPES name for the KV cache (None: the weights')


@dataclass
class PartSpec:
    ids: list[int]
    params: object  # SamplingParams without a constraint (a callable does not cross processes)
    constraint: tuple | None = None  # ("json_schema", schema_text, terminate, strict)


@dataclass
class JobSpec:
    parts: list[PartSpec]
    stop_ids: list[int]
    stops: tuple = ()
    tools: str | None = None
    json_start: bool = False
    n_choices: int = 0
    arrived: float = field(default_factory=time.time)  # wall clock: TTFT counts from the HTTP arrival


def _error_item(item):
    """ApiError does not pickle (its constructor takes more than the message): send its fields."""
    if item[0] == "error":
        e = item[1]
        return ("error", (e.status, e.message, e.param, e.code))
    return item


# ----------------------------------------------------------------------------------------------------------
# The engine process


def engine_main(spec: EngineSpec, limits: dict, conn) -> None:
    """Entry point of the engine process."""
    try:
        import torch

        from llmlab.chat.template import stop_token_ids
        from llmlab.infer.engine import Engine
        from llmlab.serve.metrics import Metrics
        from llmlab.serve.scheduler import Job, Part, Scheduler

        if spec.threads:
            torch.set_num_threads(spec.threads)
        if spec.run is not None:
            from llmlab.runs import load_run
            from llmlab.utils.device import resolve_device

            dtype = torch.bfloat16 if spec.dtype == "bf16" else None
            model, tok = load_run(spec.run, device=resolve_device(spec.device), dtype=dtype)
        else:
            model, tok = spec.model, spec.tokenizer
            if spec.dtype == "bf16":
                model.to(torch.bfloat16)
        torch_dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}  # SERVE_DTYPES' names
        model.eval()
        if spec.quantize:
            from llmlab.model.kernels.int8 import quantize

            quantize(model, spec.quantize)
        engine = Engine(model, compile=spec.compile, kv_dtype=torch_dtypes[spec.kv_dtype] if spec.kv_dtype else None)
        metrics = Metrics()
        sched = Scheduler(engine, max_rows=limits["max_rows"], max_queue=10**9, max_kv_slots=limits["max_kv_slots"],
                          max_prefill_tokens=limits["max_prefill_tokens"], metrics=metrics)
    except Exception as e:  # a run that cannot load: the parent reports it
        traceback.print_exc(file=sys.stderr)
        conn.send(("failed", f"{type(e).__name__}: {e}"))
        return

    send_lock = threading.Lock()
    outbox: list = []
    jobs: dict[int, Job] = {}
    grammars = None
    last_metrics = [0.0]

    def deliver_to(job_id):
        def deliver(items):
            outbox.append((job_id, [_error_item(it) for it in items]))
            if any(it[0] in ("usage", "error") for it in items):
                jobs.pop(job_id, None)
        return deliver

    def flush():
        """After every turn of the step loop (scheduler thread): one message with everything."""
        running, waiting = sched.counts()
        now = time.monotonic()
        text = None
        if now - last_metrics[0] > 0.5 or (running, waiting) == (0, 0):  # (idle: the final figures, fresh)
            last_metrics[0] = now
            text = metrics.render()
        if not outbox and text is None and not flush.counts_changed(running, waiting):
            return
        batch = outbox[:]
        del outbox[: len(batch)]
        with send_lock:
            conn.send(("turn", batch, running, waiting, text))

    def counts_changed(running, waiting, seen={"v": None}):
        changed = seen["v"] != (running, waiting)
        seen["v"] = (running, waiting)
        return changed

    flush.counts_changed = counts_changed
    sched.on_turn = flush
    sched.start()
    with send_lock:
        conn.send(("ready", {}))
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break  # the parent went away
            if msg[0] == "stop":
                break
            if msg[0] == "cancel":
                job = jobs.pop(msg[1], None)
                if job is not None:
                    sched.cancel(job)
                continue
            job_id, js = msg[1], msg[2]
            try:
                parts = []
                for p in js.parts:
                    params = p.params
                    if p.constraint is not None:
                        if grammars is None:
                            from llmlab.serve.grammar import Grammars

                            grammars = Grammars(tok, engine.config.vocab_size, stop_token_ids(tok))
                        import json

                        _, schema_text, terminate, strict = p.constraint
                        params = params.replace(constraint=grammars.json_schema(json.loads(schema_text), terminate,
                                                                                strict))
                    parts.append(Part(p.ids, params))
                job = Job(parts, tok, js.stop_ids, stops=js.stops, tools=js.tools, json_start=js.json_start,
                          deliver=deliver_to(job_id))
                job.arrived -= max(0.0, time.time() - js.arrived)
                jobs[job_id] = job
                sched.submit(job)
            except (ApiError, LlmlabError) as e:
                err = e if isinstance(e, ApiError) else ApiError(400, str(e))
                with send_lock:
                    conn.send(("turn", [(job_id, [_error_item(("error", err))])], *sched.counts(), None))
    finally:
        sched.stop()


# ----------------------------------------------------------------------------------------------------------
# The HTTP process's side


class RemoteScheduler:
    """The scheduler's interface in the HTTP process, over a pipe to the engine process."""

    def __init__(self, spec: EngineSpec, *, max_rows: int, max_queue: int, max_kv_slots: int | None,
                 max_prefill_tokens: int, context: int, metrics=None):
        self.spec = spec
        self.limits = {"max_rows": max_rows, "max_kv_slots": max_kv_slots, "max_prefill_tokens": max_prefill_tokens}
        self.max_rows, self.max_queue, self.max_kv_slots, self.context = max_rows, max_queue, max_kv_slots, context
        self.metrics = metrics
        self.engine_metrics = ""
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._deliver: dict[int, object] = {}
        self._next_id = 0
        self._running = self._waiting = 0
        self._unreported = 0  # jobs sent since the engine last reported its counts
        self._proc = None
        self._conn = None
        self._reader = None
        self._stopping = False

    def start(self, timeout: float = 600) -> None:
        ctx = multiprocessing.get_context("spawn")  # not fork: torch's thread pools and the server's threads
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=engine_main, args=(self.spec, self.limits, child), name="llmlab-engine",
                                 daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        if not parent.poll(timeout):
            self._proc.kill()
            raise LlmlabError(f"the engine process did not start within {timeout:.0f} s")
        try:
            msg = parent.recv()
        except EOFError:
            raise LlmlabError("the engine process died while starting (see the messages above)") from None
        if msg[0] == "failed":
            raise LlmlabError(f"the engine process could not start: {msg[1]}")
        self._reader = threading.Thread(target=self._read, name="llmlab-engine-reader", daemon=True)
        self._reader.start()

    def stop(self) -> None:
        self._stopping = True
        if self._conn is not None:
            try:
                with self._send_lock:
                    self._conn.send(("stop",))
            except (OSError, BrokenPipeError):
                pass
        if self._proc is not None:
            self._proc.join(timeout=10)
            if self._proc.is_alive():
                self._proc.kill()
        self._fail_all(ApiError(503, "the server is shutting down", code="unavailable"))

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive() and not self._stopping

    def counts(self) -> tuple[int, int]:
        """(jobs running, jobs waiting), as the engine last reported them."""
        return self._running, self._waiting

    def fits_alone(self, prompt_len: int, params) -> str | None:
        from llmlab.serve.scheduler import fits_alone

        return fits_alone(params, prompt_len, self.max_rows, self.max_kv_slots, self.context)

    def submit(self, spec: JobSpec, deliver) -> int:
        with self._lock:
            if not self.alive:
                raise ApiError(503, "the server is shutting down" if self._stopping else "the engine is not running",
                               code="unavailable")
            if self._waiting + self._unreported >= self.max_queue + max(0, self.max_rows - self._running):
                raise ApiError(429, f"the server is busy ({self._waiting} requests waiting); retry later",
                               code="rate_limit_exceeded")
            job_id = self._next_id
            self._next_id += 1
            self._deliver[job_id] = deliver
            self._unreported += 1
        try:
            with self._send_lock:
                self._conn.send(("submit", job_id, spec))
        except (OSError, BrokenPipeError):
            with self._lock:
                self._deliver.pop(job_id, None)
            raise ApiError(503, "the engine is not running", code="unavailable") from None
        return job_id

    def cancel(self, job_id: int) -> None:
        with self._lock:
            if self._deliver.pop(job_id, None) is None:
                return
        try:
            with self._send_lock:
                self._conn.send(("cancel", job_id))
        except (OSError, BrokenPipeError):
            pass

    def _read(self) -> None:
        while True:
            try:
                msg = self._conn.recv()
            except (EOFError, OSError):
                break
            _, batch, running, waiting, text = msg
            with self._lock:
                self._running, self._waiting, self._unreported = running, waiting, 0
                targets = []
                for job_id, items in batch:
                    deliver = self._deliver.get(job_id)
                    if deliver is None:
                        continue  # cancelled meanwhile
                    items = [("error", ApiError(*it[1])) if it[0] == "error" else it for it in items]
                    if any(it[0] in ("usage", "error") for it in items):
                        self._deliver.pop(job_id, None)
                    targets.append((deliver, items))
            if text is not None:
                self.engine_metrics = text
            for deliver, items in targets:
                deliver(items)
        if not self._stopping:
            print("llmlab serve: the engine process stopped", file=sys.stderr)
        self._fail_all(ApiError(503, "the engine process stopped", code="unavailable"))

    def _fail_all(self, error: ApiError) -> None:
        with self._lock:
            pending, self._deliver = list(self._deliver.values()), {}
            self._running = self._waiting = 0
        for deliver in pending:
            deliver([("error", error)])
