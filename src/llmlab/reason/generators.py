"""Generators: what the reasoning strategies sample from -- our engine over a run folder, or any
OpenAI-compatible server.

    from llmlab.reason.generators import EngineGenerator, OpenAIGenerator
    gen = EngineGenerator.from_run("runs/game24")                 # or OpenAIGenerator("http://127.0.0.1:8000/v1")
    outs = gen.generate([messages_a, messages_b], n=3, temperature=0.7, max_tokens=64, stop=("\\n\\n",))
    outs[1][2].text, outs[1][2].tokens, outs[1][2].finish_reason   # prompt 1, sample 2

The protocol is batched on purpose: a Tree-of-Thoughts level hands over every proposal prompt (or every
value prompt, n samples each) in one call, and the engine runs them as one batch (each prompt prefilled once,
its n samples sharing that prefill). Prompts are chat messages; replies are text, with a chain of thought
between ``<|think|>`` and ``<|/think|>`` where the model wrote one (``chat.template.split_think``).

``Completion.tokens`` counts the tokens generated for that sample (the stop token included), which is what
the strategies report per puzzle. ``Completion.error`` is set, and the text empty, when an endpoint failed
for that prompt after its retries: a search treats it as an empty reply and records the error, and the run
goes on with the next puzzle.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, Sequence

from llmlab.errors import LlmlabError


@dataclass
class Completion:
    text: str
    tokens: int = 0
    finish_reason: str | None = None  # "stop" | "length" | "error"
    error: str | None = None


class Generator(Protocol):
    name: str

    def generate(self, prompts: Sequence[list[dict]], *, n: int = 1, temperature: float = 0.0,
                 max_tokens: int = 256, stop: Sequence[str] = ()) -> list[list[Completion]]:
        """``n`` completions for every prompt (a list of chat messages), in prompt order."""
        ...


# ----------------------------------------------------------------------------------------------------------
# Our engine


class EngineGenerator:
    """Generation with ``llmlab.infer.Engine`` over a model and its tokenizer.

    Sampling is seeded: call k's prompt i draws from a seed derived from (``seed``, k, i), so a run is
    reproducible and no two prompts share random numbers. Prompts that would overflow the context follow the
    chat template's overflow policy. ``max_rows`` bounds the rows (prompts x n) of one engine batch."""

    def __init__(self, model, tokenizer, *, seed: int = 0, max_rows: int = 256, name: str = "engine"):
        from llmlab.chat.template import stop_token_ids
        from llmlab.infer.engine import Engine

        self.model, self.tokenizer = model, tokenizer
        self.stops = tuple(stop_token_ids(tokenizer))
        self.engine = Engine(model, eos_token_ids=self.stops)
        self.seed, self.max_rows, self.name = seed, max_rows, name
        self.calls = 0

    @classmethod
    def from_run(cls, run_dir, *, device: str = "cpu", seed: int = 0) -> "EngineGenerator":
        from llmlab.runs import load_run

        model, tok = load_run(run_dir, device=device)
        return cls(model, tok, seed=seed, name=str(run_dir))

    def generate(self, prompts, *, n=1, temperature=0.0, max_tokens=256, stop=()) -> list[list[Completion]]:
        from llmlab.chat.template import render_prompt

        self.calls += 1
        ctx = self.model.config.max_seq_len
        ids = [render_prompt(m, self.tokenizer, max_len=ctx - 1) for m in prompts]
        per_chunk = max(1, self.max_rows // max(1, n))
        out: list[list[Completion]] = []
        for start in range(0, len(ids), per_chunk):
            out += self._run(ids[start : start + per_chunk], start, n, temperature, max_tokens, tuple(stop))
        return out

    def _run(self, ids, offset, n, temperature, max_tokens, stop) -> list[list[Completion]]:
        from llmlab.infer.sampling import SamplingParams
        from llmlab.infer.text import StopMatcher, Utf8Decoder

        params = [SamplingParams(n=n, temperature=temperature, max_new_tokens=max_tokens, stop_token_ids=self.stops,
                                 seed=(self.seed * 1_000_003 + self.calls) * 100_003 + offset + i)
                  for i in range(len(ids))]
        gen = self.engine.start(ids, params)
        dec = {(i, j): Utf8Decoder(self.tokenizer) for i in range(len(ids)) for j in range(n)}
        match = {k: StopMatcher(stop) for k in dec}
        texts = {k: [] for k in dec}
        events = gen.first_events
        while True:
            for ev in events:
                k = (ev.prompt_index, ev.sample_index)
                if match[k].stopped is not None:
                    continue
                stop_tok = ev.finish_reason == "stop" and ev.token_id in self.stops
                piece = "" if stop_tok else dec[k].feed(ev.token_id)
                if ev.finish_reason is not None:
                    piece += dec[k].flush()
                texts[k].append(match[k].feed(piece))
                if match[k].stopped is not None and ev.finish_reason is None:
                    gen.finish(ev.prompt_index, ev.sample_index, "stop")  # a stop string: end the row now
                elif ev.finish_reason is not None:
                    texts[k].append(match[k].flush())
            if gen.done:
                break
            events = gen.step()
        results = gen.outputs()
        return [[Completion("".join(texts[(i, s.index)]), len(s.token_ids), s.finish_reason) for s in r.samples]
                for i, r in enumerate(results)]


# ----------------------------------------------------------------------------------------------------------
# Any OpenAI-compatible server


class GeneratorError(LlmlabError):
    """An endpoint kept failing for one request (after its retries)."""


class OpenAIGenerator:
    """Chat completions from an OpenAI-compatible server (``llmlab serve``, vLLM, llama.cpp's server, ...).

    ``base_url`` is the server (``http://host:port``) or its API root (``.../v1``). Transient failures (no
    connection, timeouts, HTTP 429 and 5xx) are retried ``retries`` times with exponential backoff from
    ``backoff`` seconds; then that prompt's completions carry ``error`` and the caller moves on. A server that
    returns fewer than ``n`` choices (many ignore ``n``) is asked again for the rest. Prompts of one call are
    sent ``concurrency`` at a time. The API key comes from ``api_key`` or the ``OPENAI_API_KEY`` variable."""

    def __init__(self, base_url: str, model: str = "default", *, api_key: str | None = None, retries: int = 3,
                 backoff: float = 0.5, timeout: float = 120.0, concurrency: int = 4, client=None, log=None):
        import httpx

        url = base_url.rstrip("/")
        self.url = (url if url.endswith("/v1") else url + "/v1") + "/chat/completions"
        self.model, self.retries, self.backoff, self.concurrency = model, retries, backoff, concurrency
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = client or httpx.Client(timeout=timeout, headers=headers)
        self.name = f"{model} at {base_url}"
        self.log = log or (lambda msg: print(f"llmlab reason: {msg}", file=sys.stderr))
        self.errors = 0  # requests that failed after their retries

    def generate(self, prompts, *, n=1, temperature=0.0, max_tokens=256, stop=()) -> list[list[Completion]]:
        def one(messages):
            got: list[Completion] = []
            while len(got) < n:
                try:
                    got += self._request(messages, n - len(got), temperature, max_tokens, stop)
                except GeneratorError as e:
                    self.errors += 1
                    self.log(str(e))
                    return got + [Completion("", 0, "error", str(e))] * (n - len(got))
            return got[:n]

        if self.concurrency <= 1 or len(prompts) <= 1:
            return [one(m) for m in prompts]
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(one, prompts))

    def _request(self, messages, n, temperature, max_tokens, stop) -> list[Completion]:
        import httpx

        payload = {"model": self.model, "messages": messages, "n": n, "temperature": temperature,
                   "max_tokens": max_tokens}
        if stop:
            payload["stop"] = list(stop)
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                r = self.client.post(self.url, json=payload)
            except httpx.HTTPError as e:
                problem = f"{type(e).__name__}: {e}"
                continue
            if r.status_code == 429 or r.status_code >= 500:
                problem = f"HTTP {r.status_code}: {r.text[:200]}"
                continue
            if r.status_code != 200:  # a request the server will never accept: no point retrying
                raise GeneratorError(f"{self.url}: HTTP {r.status_code}: {r.text[:200]}")
            try:
                return _parse_choices(r.json())
            except (ValueError, KeyError, TypeError, IndexError) as e:
                problem = f"malformed reply ({e})"
                continue
        raise GeneratorError(f"{self.url}: failed after {self.retries + 1} tries: {problem}")


def _parse_choices(body: dict) -> list[Completion]:
    choices = body["choices"]
    if not choices:
        raise ValueError("no choices")
    used = (body.get("usage") or {}).get("completion_tokens")
    out = []
    for ch in choices:
        msg = ch["message"]
        text = msg.get("content") or ""
        thought = msg.get("reasoning_content") or msg.get("reasoning")
        if thought:  # servers that split the chain of thought off: put it back where split_think finds it
            text = f"<think>{thought}</think>{text}"
        out.append(Completion(text, 0, ch.get("finish_reason")))
    for c in out:  # usage is per request; share it out (or estimate ~4 characters a token without it)
        c.tokens = round(used / len(out)) if isinstance(used, int) else max(1, len(c.text) // 4)
    return out
