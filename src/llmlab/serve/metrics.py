"""Server metrics in Prometheus' text format (``GET /metrics``): counters, gauges and latency histograms.

    m = Metrics()
    m.requests.inc(endpoint="chat", status="200"); m.ttft.observe(0.12)
    m.render()  ->  "# HELP llmlab_requests_total ...\\n# TYPE ... counter\\nllmlab_requests_total{...} 1\\n..."

Written out by hand (the format is a few lines of text) rather than pulling in a client library. All
updates take one lock: the scheduler thread and the request handlers both write.
"""

from __future__ import annotations

import bisect
import threading

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _labels(labels: dict) -> str:
    if not labels:
        return ""
    esc = (str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for v in labels.values())
    return "{" + ",".join(f'{k}="{v}"' for k, v in zip(labels, esc)) + "}"


class _Metric:
    def __init__(self, registry: "Metrics", name: str, help: str, kind: str):
        self.name, self.help, self.kind = name, help, kind
        self.lock = registry.lock
        registry.metrics.append(self)


class Counter(_Metric):
    def __init__(self, registry, name, help):
        super().__init__(registry, name, help, "counter")
        self.values: dict[tuple, float] = {}

    def inc(self, amount: float = 1.0, **labels) -> None:
        key = tuple(sorted(labels.items()))
        with self.lock:
            self.values[key] = self.values.get(key, 0.0) + amount

    def lines(self) -> list[str]:
        return [f"{self.name}{_labels(dict(k))} {v:g}" for k, v in sorted(self.values.items())] or [f"{self.name} 0"]


class Gauge(_Metric):
    def __init__(self, registry, name, help):
        super().__init__(registry, name, help, "gauge")
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = float(value)

    def lines(self) -> list[str]:
        return [f"{self.name} {self.value:g}"]


class Histogram(_Metric):
    def __init__(self, registry, name, help, buckets=LATENCY_BUCKETS):
        super().__init__(registry, name, help, "histogram")
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        with self.lock:
            self.counts[bisect.bisect_left(self.buckets, value)] += 1
            self.sum += value

    def lines(self) -> list[str]:
        out, total = [], 0
        for le, c in zip([*self.buckets, float("inf")], self.counts):
            total += c
            out.append(f'{self.name}_bucket{{le="{"+Inf" if le == float("inf") else f"{le:g}"}"}} {total}')
        return out + [f"{self.name}_sum {self.sum:g}", f"{self.name}_count {total}"]


class Metrics:
    """The server's metrics (names as vLLM's where they mean the same, under ``llmlab_``). The HTTP process
    keeps the request counter (``http=True``), the engine process the rest (``engine=True``); ``/metrics``
    shows both."""

    def __init__(self, http: bool = True, engine: bool = True):
        self.lock = threading.Lock()
        self.metrics: list[_Metric] = []
        if http:
            self.requests = Counter(self, "llmlab_requests_total", "HTTP requests answered, by endpoint and status.")
        if engine:
            self.prompt_tokens = Counter(self, "llmlab_prompt_tokens_total", "Prompt tokens prefilled.")
            self.generation_tokens = Counter(self, "llmlab_generation_tokens_total", "Tokens generated.")
            self.running = Gauge(self, "llmlab_num_requests_running", "Requests generating now.")
            self.waiting = Gauge(self, "llmlab_num_requests_waiting", "Requests waiting in the queue.")
            self.kv_bytes = Gauge(self, "llmlab_kv_cache_bytes", "Bytes of the KV cache block allocated.")
            self.steps = Gauge(self, "llmlab_engine_steps", "Decode steps the engine has run.")
            self.step_seconds = Gauge(self, "llmlab_engine_step_seconds", "Seconds the engine spent in decode steps.")
            self.ttft = Histogram(self, "llmlab_time_to_first_token_seconds", "From arrival to the first token.")
            self.itl = Histogram(self, "llmlab_inter_token_latency_seconds",
                                 "Between consecutive tokens of a request.")
            self.e2e = Histogram(self, "llmlab_e2e_request_latency_seconds", "From arrival to the last token.")

    def render(self) -> str:
        out = []
        with self.lock:
            for m in self.metrics:
                out += [f"# HELP {m.name} {m.help}", f"# TYPE {m.name} {m.kind}", *m.lines()]
        return "\n".join(out) + "\n"
