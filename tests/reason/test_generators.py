"""Generators: our engine (batched, n samples, seeded, stop strings, token counts, equal to the text edge's
greedy output) and an OpenAI-compatible endpoint served by a tiny HTTP server inside the test (retries with
backoff, servers that ignore n, a request that keeps failing becomes an error the run survives).

    .venv/bin/pytest tests/reason/test_generators.py -q
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from llmlab.model.gpt import GPT, ModelConfig
from llmlab.reason.generators import EngineGenerator, OpenAIGenerator
from llmlab.tokenizer import Tokenizer

MSGS = [{"role": "user", "content": "Make 24 with 1 2 3 4. Think step by step."}]


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.train("Make 24 with 1 2 3 4. 1 + 2 = 3 (left: 3 3 4)\n" * 30, vocab_size=256 + 16 + 12)


class NoStop(GPT):
    """A random GPT that never picks a stop token (so greedy replies run to their token limit)."""

    bias: torch.Tensor

    def forward(self, idx, **kw):
        return super().forward(idx, **kw) + self.bias


@pytest.fixture(scope="module")
def model(tok):
    from llmlab.chat.template import stop_token_ids

    torch.manual_seed(0)
    m = NoStop(ModelConfig.preset("tiny", vocab_size=tok.vocab_size, max_seq_len=128)).eval()
    m.bias = torch.zeros(tok.vocab_size)
    m.bias[stop_token_ids(tok)] = -100.0
    return m


def test_engine_generator_matches_the_text_edge(model, tok):
    from llmlab.chat.template import render_prompt, stop_token_ids
    from llmlab.infer import Engine, SamplingParams
    from llmlab.infer.text import generate_text

    gen = EngineGenerator(model, tok)
    (outs,) = gen.generate([MSGS], n=1, temperature=0.0, max_tokens=30)
    stops = stop_token_ids(tok)
    ref = generate_text(Engine(model, eos_token_ids=stops), tok, render_prompt(MSGS, tok),
                        SamplingParams(temperature=0, max_new_tokens=30, stop_token_ids=stops))
    assert outs[0].text == ref.text
    assert outs[0].tokens == len(ref.completions[0].token_ids)


def test_engine_generator_batches_samples_seeds_and_stops(model, tok):
    prompts = [MSGS, [{"role": "user", "content": "Possible next steps for 3 3 4:"}]]
    a = EngineGenerator(model, tok, seed=1).generate(prompts, n=3, temperature=1.0, max_tokens=20)
    b = EngineGenerator(model, tok, seed=1).generate(prompts, n=3, temperature=1.0, max_tokens=20)
    assert [[c.text for c in r] for r in a] == [[c.text for c in r] for r in b]  # reproducible
    assert len(a) == 2 and all(len(r) == 3 for r in a)
    assert len({c.text for r in a for c in r}) > 1  # samples differ
    assert all(1 <= c.tokens <= 20 for r in a for c in r)
    # A stop string cuts the text and ends the sample (fewer tokens than without it).
    full = EngineGenerator(model, tok).generate([MSGS], temperature=0.0, max_tokens=40)[0][0]
    stop = full.text[5:7]
    cut = EngineGenerator(model, tok).generate([MSGS], temperature=0.0, max_tokens=40, stop=(stop,))[0][0]
    assert full.tokens == 40 and full.finish_reason == "length"
    assert cut.text == full.text[: full.text.index(stop)]
    assert cut.tokens < full.tokens and cut.finish_reason == "stop"
    # Rows per engine batch are bounded; the answers are the same either way.
    small = EngineGenerator(model, tok, seed=1, max_rows=3).generate(prompts, n=3, temperature=0.0, max_tokens=10)
    big = EngineGenerator(model, tok, seed=1).generate(prompts, n=3, temperature=0.0, max_tokens=10)
    assert [[c.text for c in r] for r in small] == [[c.text for c in r] for r in big]


class _Server:
    """A chat-completions endpoint on localhost whose replies come from ``handler(payload, hit) -> (status,
    body)``; ``hits`` counts requests."""

    def __init__(self, handler):
        outer = self
        self.hits, self.payloads = 0, []

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.hits += 1
                outer.payloads.append((self.path, body, self.headers.get("Authorization")))
                status, reply = handler(body, outer.hits)
                data = json.dumps(reply).encode() if not isinstance(reply, bytes) else reply
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _choices(texts, tokens=6):
    return {"choices": [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                        for i, t in enumerate(texts)], "usage": {"completion_tokens": tokens}}


def test_endpoint_generator_retries_and_fills_n():
    # First request: 503; then the server answers but ignores n (one choice each time).
    def handler(body, hit):
        if hit == 1:
            return 503, {"error": "warming up"}
        return 200, _choices([f"reply {hit}"])

    srv = _Server(handler)
    try:
        gen = OpenAIGenerator(srv.url, "m", api_key="k", retries=2, backoff=0.01, concurrency=1)
        (outs,) = gen.generate([MSGS], n=3, temperature=0.7, max_tokens=16, stop=("\n\n",))
    finally:
        srv.close()
    assert [c.text for c in outs] == ["reply 2", "reply 3", "reply 4"]
    assert all(c.tokens == 6 and c.error is None for c in outs)
    path, body, auth = srv.payloads[0]
    assert path == "/v1/chat/completions" and auth == "Bearer k"
    assert body["messages"] == MSGS and body["n"] == 3 and body["max_tokens"] == 16 and body["stop"] == ["\n\n"]
    assert srv.payloads[2][1]["n"] == 2  # asked again for the rest only
    assert gen.errors == 0


def test_endpoint_reasoning_content_becomes_a_think_span():
    srv = _Server(lambda body, hit: (200, {"choices": [{"message": {"content": "(1+2+3)*4",
                                                                    "reasoning_content": "1+2=3"}}]}))
    try:
        (outs,) = OpenAIGenerator(srv.url + "/v1", retries=0).generate([MSGS])
    finally:
        srv.close()
    from llmlab.chat.template import split_think

    assert split_think(outs[0].text) == ("1+2=3", "(1+2+3)*4")


def test_endpoint_that_keeps_failing_is_reported_and_the_run_goes_on(tmp_path):
    from llmlab.reason.runner import run_puzzles
    from llmlab.reason.strategies import StrategyConfig
    from llmlab.reason.tasks import get_task

    def handler(body, hit):
        if "1 1 4 6" in body["messages"][-1]["content"]:
            return 500, {"error": "boom"}
        return 200, _choices(["(1 + 2 + 3) * 4 = 24"])

    srv = _Server(handler)
    notes = []
    try:
        gen = OpenAIGenerator(srv.url, retries=2, backoff=0.01, log=notes.append)
        task = get_task("game24")
        report = run_puzzles(gen, task, [(1, 1, 4, 6), (1, 2, 3, 4)], StrategyConfig(method="io"), progress=False)
    finally:
        srv.close()
    assert report["errors"] == 1 and report["n"] == 2 and report["success_rate"] == 0.5
    assert report["results"][0]["error"].endswith("HTTP 500: {\"error\": \"boom\"}")
    assert "failed after 3 tries" in notes[0]
    # A 4xx is not retried: the request will never be accepted.
    srv = _Server(lambda body, hit: (400, {"error": "bad"}))
    try:
        gen = OpenAIGenerator(srv.url, retries=3, backoff=0.01, log=notes.append)
        (outs,) = gen.generate([MSGS])
    finally:
        srv.close()
    assert srv.hits == 1 and outs[0].error and outs[0].finish_reason == "error"
