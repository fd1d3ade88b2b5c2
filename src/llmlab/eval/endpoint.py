"""Any OpenAI-compatible server as a suite backend: imported models behind llama.cpp or vLLM, other servers.

    llmlab eval suite --endpoint http://127.0.0.1:8080/v1 --model NAME --api-key KEY --out results/x --json

    from llmlab.eval.endpoint import EndpointBackend
    be = EndpointBackend("http://127.0.0.1:8080/v1", model="NAME", api_key="...")
    be.loglikelihood([LLRequest("The cat sat on the", " mat")])

What each request becomes (the server's own tokenizer and chat template are used; nothing is tokenized here):

* log-likelihood: ``POST /completions`` with ``prompt = context + continuation``, ``echo: true``,
  ``logprobs: 1``, ``max_tokens: 1``, ``temperature: 0`` -- the legacy completions API's way to get the
  prompt's own token log-probs (vLLM, llama.cpp's server and OpenAI's older models support it). The
  continuation's tokens are those whose ``text_offset`` falls at or after the context's end and before the
  prompt's end (the generated token is not counted); greedy = each of them is its position's top token. The
  options of one item go in one request (``prompt`` as a list). A server without a BOS gives the prompt's
  first token no log-prob, so an empty context (BLiMP-style items) is then sent as ``"\n"``. A chat
  conversation cannot be scored this way (chat APIs give log-probs of generated tokens only), so the suite
  poses choice tasks to an endpoint as text.
* generation, text: ``POST /completions`` with ``max_tokens``, ``temperature: 0`` and ``stop``.
* generation, chat: ``POST /chat/completions`` with the user message, ``max_tokens``, ``temperature: 0``.
* rolling (bpb): the text alone, echoed; a token the server gives no log-prob for (the first one, without a
  BOS) is not counted.

Failures: a connection error, a timeout, 429 or a 5xx is retried ``retries`` times with exponential backoff
(``backoff`` x 2^attempt seconds, capped at ``max_backoff``); any other 4xx is not (it will not get better).
A request that still fails gives an ``ItemError`` for its item: the suite reports it and goes on with the
rest. Requests run on ``workers`` threads.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from llmlab.errors import LlmlabError
from llmlab.eval.backends import GenRequest, LLRequest, cut_at_stop
from llmlab.eval.loglik import ItemError, Scored

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class EndpointError(Exception):
    """A request that failed after its retries (or at once, for a client error)."""


class EndpointBackend:
    """Suite requests answered by an OpenAI-compatible HTTP API."""

    kind = "endpoint"
    chat_loglikelihood = False  # chat APIs do not score a given reply

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None, *, retries: int = 4,
                 backoff: float = 1.0, max_backoff: float = 30.0, timeout: float = 120.0, workers: int = 4,
                 max_batch: int = 16, transport=None):
        import httpx

        if not base_url.startswith(("http://", "https://")):
            raise LlmlabError(f"--endpoint must be an http(s) URL such as http://127.0.0.1:8000/v1, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.workers, self.max_batch = workers, max_batch
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        kw = {"transport": transport} if transport is not None else {}
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, **kw)
        self.model = model or self._first_model()
        self.fingerprint = {"endpoint": self.base_url, "model": self.model}

    # -- HTTP -----------------------------------------------------------------------------------------------
    def _post(self, path: str, body: dict) -> dict:
        import httpx

        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))
            try:
                r = self.client.post(path, json=body)
            except httpx.HTTPError as e:  # connection refused, reset, timeout
                last = f"{type(e).__name__}: {e}"
                continue
            if r.status_code == 200:
                try:
                    return r.json()
                except ValueError:
                    last = "the server's answer is not JSON"
                    continue
            last = f"HTTP {r.status_code}: {r.text[:200]}"
            if r.status_code not in RETRY_STATUS:
                break
        raise EndpointError(f"{path}: {last}")

    def _first_model(self) -> str:
        try:
            r = self.client.get("/models")
            r.raise_for_status()
            data = r.json().get("data") or []
            if data:
                return data[0]["id"]
        except Exception as e:
            raise LlmlabError(f"{self.base_url}/models: cannot list the server's models ({e}); pass --model NAME") from None
        raise LlmlabError(f"{self.base_url}/models: the server lists no model; pass --model NAME")

    def _map(self, fn, items: list) -> list:
        def safe(x):
            try:
                return fn(x)
            except (EndpointError, ValueError, KeyError, TypeError, IndexError) as e:
                return ItemError(str(e) if isinstance(e, EndpointError) else f"unexpected answer: {type(e).__name__}: {e}")

        if self.workers <= 1:
            return [safe(x) for x in items]
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(safe, items))

    # -- log-likelihood -------------------------------------------------------------------------------------
    def _echo(self, prompts: list[str]) -> list[dict]:
        body = {"model": self.model, "prompt": prompts, "max_tokens": 1, "echo": True, "logprobs": 1,
                "temperature": 0.0}
        choices = sorted(self._post("/completions", body)["choices"], key=lambda c: c.get("index", 0))
        if len(choices) != len(prompts):
            raise ValueError(f"asked for {len(prompts)} completions, got {len(choices)}")
        out = []
        for c in choices:
            lp = c.get("logprobs")
            if not lp or lp.get("text_offset") is None or lp.get("token_logprobs") is None:
                raise EndpointError("the server gives no prompt log-probs (completions with echo and logprobs); "
                                    "log-likelihood tasks need them")
            out.append(lp)
        return out

    @staticmethod
    def _span(lp: dict, start: int, end: int) -> tuple[list[float], bool, int]:
        """Log-probs of the tokens whose text starts in [start, end); (logprobs, greedy, tokens without one)."""
        vals, greedy, missing = [], True, 0
        tops = lp.get("top_logprobs") or []
        for i, (tok, off, v) in enumerate(zip(lp["tokens"], lp["text_offset"], lp["token_logprobs"])):
            if not start <= off < end:
                continue
            if v is None:
                missing += 1
                continue
            vals.append(float(v))
            top = tops[i] if i < len(tops) else None
            if top:
                greedy = greedy and max(top.values()) <= float(v) + 1e-6
        return vals, greedy, missing

    def loglikelihood(self, requests: list[LLRequest]) -> list[Scored | ItemError]:
        # One HTTP request per run of (at most max_batch) requests that share a context -- an item's options,
        # so they fail or succeed together.
        groups: list[list[int]] = []
        for i, r in enumerate(requests):
            if groups and requests[groups[-1][0]].context == r.context and len(groups[-1]) < self.max_batch:
                groups[-1].append(i)
            else:
                groups.append([i])

        def one(group: list[int]):
            reqs = [requests[i] for i in group]
            if any(r.chat for r in reqs):
                raise EndpointError("chat log-likelihoods are not available from an endpoint")
            ctx = reqs[0].context
            for attempt in (ctx, "\n"):
                lps = self._echo([attempt + r.continuation for r in reqs])
                spans = [self._span(lp, len(attempt), len(attempt) + len(r.continuation)) for r, lp in zip(reqs, lps)]
                if all(vals and not missing for vals, _, missing in spans):
                    return [Scored(sum(vals), greedy, vals) for vals, greedy, _ in spans]
                if ctx:  # a server without a BOS gives the prompt's first token no log-prob: only an empty
                    break  # context is affected, and it is then sent as a newline
            raise EndpointError("the server gave no log-prob for a continuation token")

        res = self._map(one, groups)
        out: list = [None] * len(requests)
        for group, r in zip(groups, res):
            for k, i in enumerate(group):
                out[i] = r if isinstance(r, ItemError) else r[k]
        return out

    # -- generation -----------------------------------------------------------------------------------------
    def generate(self, requests: list[GenRequest]) -> list[str | ItemError]:
        def one(r: GenRequest) -> str:
            if r.chat:
                body = {"model": self.model, "messages": list(r.prompt), "max_tokens": r.max_new_tokens,
                        "temperature": 0.0}
                return self._post("/chat/completions", body)["choices"][0]["message"]["content"] or ""
            body = {"model": self.model, "prompt": r.prompt, "max_tokens": r.max_new_tokens, "temperature": 0.0}
            if r.stop:
                body["stop"] = list(r.stop)[:4]  # OpenAI's limit
            return cut_at_stop(self._post("/completions", body)["choices"][0]["text"], r.stop)

        return self._map(one, requests)

    # -- rolling --------------------------------------------------------------------------------------------
    def rolling(self, texts: list[str]) -> list[float | ItemError]:
        def one(t: str) -> float:
            vals, _, _ = self._span(self._echo([t])[0], 0, len(t))
            if not vals:
                raise EndpointError("the server gave no log-probs for the text")
            return -sum(vals)

        return self._map(one, texts)
