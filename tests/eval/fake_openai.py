"""A small OpenAI-compatible server for the endpoint tests, answering with a model of our own on 127.0.0.1.

    with FakeOpenAI(model, tok) as server:        # server.url == "http://127.0.0.1:PORT/v1"
        server.fail_next = 3                      # the next 3 requests get HTTP 503 (then it recovers)
        server.poison = "POISON"                  # requests whose text contains it always get HTTP 500
        server.bos = False                        # like OpenAI's API: no BOS, the first token has no log-prob

It implements what the evaluator uses, the way llama.cpp's server does (a BOS in front of every prompt, so the
first prompt token has a log-prob): ``GET /v1/models``; ``POST /v1/completions`` with ``echo``/``logprobs``
(``tokens``, ``token_logprobs``, ``top_logprobs``, ``text_offset``), ``max_tokens`` and ``stop``; and
``POST /v1/chat/completions`` (our chat template, greedy). Greedy answers come from a plain forward per token.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch


class FakeOpenAI:
    def __init__(self, model, tok, name: str = "tiny"):
        self.model, self.tok, self.name = model, tok, name
        self.fail_next = 0
        self.poison: str | None = None
        self.bos = True
        self.requests = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    # -- the model's side -------------------------------------------------------------------------------------
    @torch.no_grad()
    def _logprobs(self, ids: list[int]) -> torch.Tensor:
        return torch.log_softmax(self.model(torch.tensor([ids])).double(), -1)[0]  # (T, V)

    @torch.no_grad()
    def _greedy(self, ids: list[int], n: int, stop_ids=()) -> list[int]:
        out = []
        for _ in range(n):
            if len(ids) + len(out) >= self.model.config.max_seq_len:
                break
            t = int(self.model(torch.tensor([ids + out]))[0, -1].argmax())
            if t in stop_ids:
                break
            out.append(t)
        return out

    def completion(self, prompt: str, body: dict) -> dict:
        tok = self.tok
        ids = tok.encode(prompt)
        choice = {"text": "", "index": 0, "finish_reason": "length", "logprobs": None}
        gen = self._greedy([tok.bos_id] + ids, int(body.get("max_tokens", 16)), (tok.eot_id, tok.end_id, tok.bos_id))
        text = tok.decode(gen)
        for s in body.get("stop") or []:
            if s in text:
                text = text[: text.index(s)]
                choice["finish_reason"] = "stop"
        if body.get("echo") and body.get("logprobs") is not None:
            lp = self._logprobs([tok.bos_id] + ids + gen[:1])
            tokens, offsets, vals, tops, pos = [], [], [], [], 0
            for i, t in enumerate(ids + gen[:1]):
                piece = tok.decode([t])
                tokens.append(piece)
                offsets.append(pos)
                pos += len(piece)
                vals.append(float(lp[i, t]) if self.bos or i else None)
                best = int(lp[i].argmax())
                tops.append({tok.decode([best]): float(lp[i, best])})
            choice["logprobs"] = {"tokens": tokens, "token_logprobs": vals, "top_logprobs": tops, "text_offset": offsets}
            choice["text"] = prompt + tok.decode(gen[:1])
        else:
            choice["text"] = text
        return choice

    def chat(self, body: dict) -> dict:
        from llmlab.chat.template import render_prompt, stop_token_ids

        ids = render_prompt(body["messages"], self.tok)
        gen = self._greedy(ids, int(body.get("max_tokens", 16)), set(stop_token_ids(self.tok)))
        return {"index": 0, "message": {"role": "assistant", "content": self.tok.decode(gen)}, "finish_reason": "stop"}

    # -- HTTP -------------------------------------------------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, obj: dict):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/v1/models":
                    return self._send(200, {"object": "list", "data": [{"id": fake.name, "object": "model"}]})
                self._send(404, {"error": {"message": "not found"}})

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw)
                with fake.lock:
                    fake.requests += 1
                    if fake.fail_next > 0:
                        fake.fail_next -= 1
                        return self._send(503, {"error": {"message": "overloaded, try again"}})
                    if fake.poison and fake.poison in raw.decode():
                        return self._send(500, {"error": {"message": "internal error"}})
                    if body.get("model") != fake.name:
                        return self._send(404, {"error": {"message": f"model {body.get('model')!r} not found"}})
                    if self.path == "/v1/completions":
                        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
                        choices = [dict(fake.completion(p, body), index=i) for i, p in enumerate(prompts)]
                        return self._send(200, {"object": "text_completion", "choices": choices})
                    if self.path == "/v1/chat/completions":
                        return self._send(200, {"object": "chat.completion", "choices": [fake.chat(body)]})
                self._send(404, {"error": {"message": "not found"}})

        return Handler
