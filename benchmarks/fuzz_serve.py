"""Fuzz: thousands of malformed or hostile requests against ``llmlab serve``; none may get a 5xx.

    PYTHONPATH=src python benchmarks/fuzz_serve.py --model runs/speedrun/sft               # 10,000 requests
    PYTHONPATH=src python benchmarks/fuzz_serve.py --url http://127.0.0.1:8000 --requests 2000

Starts the server on the run (or targets ``--url``), then sends ``--requests`` requests, 16 at a time, drawn
from these kinds (seeded): bodies that are not JSON (random bytes, truncated JSON, invalid UTF-8, nesting
10,000 deep); valid JSON with a field of the wrong type or out of range (every field of both completion
endpoints, including huge and negative ``max_tokens``, NaN, 2**70); unknown roles and content parts;
prompts of 1 MB; hostile tool and JSON-schema definitions; bodies cut short (a Content-Length larger than
what is sent, then the connection closes) and clients that leave mid-stream; wrong methods, routes and
content types. Mixed in are valid requests, some streaming, so the engine works while it is attacked.

Prints the count of each status per kind, and fails (exit 1) on any 5xx, on a request the server did not
answer at all (except the cut-short ones, where no answer is correct), or when the server is not alive and
answering a normal request afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

GOOD_CHAT = {"model": "fuzz", "messages": [{"role": "user", "content": "Who says to be or not to be?"}],
             "max_tokens": 8}
GOOD_COMP = {"model": "fuzz", "prompt": "To be, or not", "max_tokens": 8}
WEIRD = [None, True, False, 0, -1, 1.5, -1e308, 1e308, 2**70, -(2**70), "", "x", "\u0000", "😀" * 50,
         [], [1, "a"], {}, {"a": {"b": []}}, "NaN", [[[[]]]], "1" * 1000]
FIELDS = ["model", "messages", "prompt", "temperature", "top_p", "top_k", "min_p", "n", "stop", "max_tokens",
          "max_completion_tokens", "presence_penalty", "frequency_penalty", "repetition_penalty", "logit_bias",
          "logprobs", "top_logprobs", "seed", "stream", "stream_options", "response_format", "tools",
          "tool_choice", "echo", "suffix", "best_of", "user", "ignore_eos", "parallel_tool_calls"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_case(rng: random.Random) -> tuple[str, str, str, bytes, dict]:
    """(kind, method, path, body, headers)."""
    chat = rng.random() < 0.6
    path = "/v1/chat/completions" if chat else "/v1/completions"
    good = json.loads(json.dumps(GOOD_CHAT if chat else GOOD_COMP))
    hdr = {"Content-Type": "application/json"}
    k = rng.randrange(16)
    if k == 0:
        return "random bytes", "POST", path, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))), hdr
    if k == 1:
        s = json.dumps(good)
        return "truncated JSON", "POST", path, s[: rng.randrange(len(s))].encode(), hdr
    if k == 2:
        s = json.dumps(good).encode()
        i = rng.randrange(len(s))
        return "invalid UTF-8", "POST", path, s[:i] + bytes([rng.choice([0x80, 0xC3, 0xFF, 0xED])]) + s[i:], hdr
    if k in (3, 4, 5):
        field = rng.choice(FIELDS)
        good[field] = rng.choice(WEIRD)
        return f"wrong type: {field}", "POST", path, json.dumps(good).encode(), hdr
    if k == 6:
        field = rng.choice(["max_tokens", "max_completion_tokens", "n", "top_logprobs", "logprobs", "seed",
                            "top_k", "best_of"])
        good[field] = rng.choice([10**9, 2**63, 2**64 + 5, -5, 0, 10**30, 129, 21, 100000])
        return "huge or negative numbers", "POST", path, json.dumps(good).encode(), hdr
    if k == 7:
        msg = rng.choice([{"role": "robot", "content": "hi"}, {"role": "user"}, {"role": "user", "content": None},
                          {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
                          {"role": "tool", "content": "x"}, {"role": "assistant", "tool_calls": [{"function": 1}]},
                          {"role": "system", "content": "late system"}, "not an object", {"content": "x"}])
        good = dict(GOOD_CHAT, messages=[{"role": "user", "content": "hi"}, msg])
        return "bad messages", "POST", "/v1/chat/completions", json.dumps(good).encode(), hdr
    if k == 8 and rng.random() < 0.25:  # 1 MB prompts: a few of them (each takes a tokenizer pass)
        big = "".join(rng.choice("abc def ghi \n") for _ in range(1 << 20))
        if chat:
            good["messages"][0]["content"] = big
        else:
            good["prompt"] = big
        return "1 MB prompt", "POST", path, json.dumps(good).encode(), hdr
    if k == 9:
        deep = "[" * 10000 + "]" * 10000
        return "deep nesting", "POST", path, (json.dumps(good)[:-1] + ', "x": ' + deep + "}").encode(), hdr
    if k == 10:
        schema = rng.choice([{"type": "no"}, {"$ref": "#/nope"}, {"type": "object", "properties": 5},
                             {"anyOf": []}, {"type": "string", "pattern": "(("}, {"enum": []},
                             {"type": "array", "items": {"type": "object", "properties": {"a": {"$ref": "#"}}}},
                             {"type": "integer", "minimum": 5, "maximum": 1}])
        good = dict(GOOD_CHAT, response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
        return "hostile JSON schema", "POST", "/v1/chat/completions", json.dumps(good).encode(), hdr
    if k == 11:
        tool = rng.choice([{"type": "function", "function": {"name": "a b"}}, {"type": "function"},
                           {"type": "function", "function": {"name": "f", "parameters": {"type": "zzz"}}},
                           {"type": "web", "function": {"name": "f"}}, "tool"])
        good = dict(GOOD_CHAT, tools=[tool], tool_choice=rng.choice(["auto", "required", "none", "maybe",
                                                                     {"type": "function", "function": {"name": "g"}}]))
        return "hostile tools", "POST", "/v1/chat/completions", json.dumps(good).encode(), hdr
    if k == 12:
        return "cut short", "CUT", path, json.dumps(good).encode(), hdr
    if k == 13:
        method, p = rng.choice([("GET", path), ("PUT", path), ("DELETE", "/v1/models"), ("POST", "/v1/models"),
                                ("GET", "/v1/../etc/passwd"), ("GET", "/static/../server.py"), ("GET", "/v2/x"),
                                ("POST", "/tokenize"), ("POST", "/detokenize")])
        return "wrong method or route", method, p, json.dumps(rng.choice([good, {"tokens": [-1]}, {}])).encode(), hdr
    if k == 14:
        h = rng.choice([{"Content-Type": "text/plain"}, {}, {"Content-Type": "application/json; charset=latin-1"}])
        return "content types", "POST", path, json.dumps(good).encode(), h
    good["stream"] = rng.random() < 0.5
    good["n"] = rng.randint(1, 3)
    if rng.random() < 0.3:
        good["logprobs"] = True if chat else 3
        if chat:
            good["top_logprobs"] = 3
    return ("valid, client leaves" if good["stream"] and rng.random() < 0.3 else "valid"), "POST", path, \
        json.dumps(good).encode(), hdr


async def send_cut(host: str, port: int, path: str, body: bytes) -> int | None:
    """Announce the whole body, send part of it, close. No answer is the right answer."""
    reader, writer = await asyncio.open_connection(host, port)
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body) + 50}\r\n\r\n").encode()
    writer.write(head + body[: len(body) // 2])
    await writer.drain()
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return None


async def fuzz(url: str, n: int, seed: int, concurrency: int):
    import httpx

    rng = random.Random(seed)
    cases = [make_case(rng) for _ in range(n)]
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    failures = []
    host, port = url.split("//")[1].split(":")
    sem = asyncio.Semaphore(concurrency)

    async def one(client, kind, method, path, body, hdr):
        async with sem:
            try:
                if method == "CUT":
                    await send_cut(host, int(port), path, body)
                    counts[kind]["cut"] += 1
                    return
                if kind == "valid, client leaves":
                    async with client.stream(method, url + path, content=body, headers=hdr) as r:
                        async for _ in r.aiter_lines():
                            break  # leave after the first line
                    status = r.status_code
                else:
                    r = await client.request(method, url + path, content=body, headers=hdr)
                    status = r.status_code
                    if status != 200 and status != 405:
                        err = r.json().get("error", {})
                        if not {"message", "type", "param", "code"} <= set(err):
                            failures.append((kind, status, "error body not in OpenAI's shape"))
                counts[kind][status] += 1
                if status >= 500:
                    failures.append((kind, status, r.text[:200] if kind != "valid, client leaves" else ""))
            except Exception as e:
                counts[kind]["no answer"] += 1
                failures.append((kind, "no answer", f"{type(e).__name__}: {e}"[:200]))

    async with httpx.AsyncClient(timeout=httpx.Timeout(300.0),
                                 limits=httpx.Limits(max_connections=concurrency + 4)) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(client, *c) for c in cases))
        wall = time.perf_counter() - t0
    return counts, failures, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="run folder to serve (or --url)")
    ap.add_argument("--url", help="a server already running")
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if not (args.model or args.url):
        raise SystemExit("give --model RUN or --url URL")
    import httpx

    proc = None
    url = args.url
    if not url:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = tempfile.NamedTemporaryFile(prefix="fuzz_serve_", suffix=".log", delete=False)
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=str(REPO / "src"))
        proc = subprocess.Popen([sys.executable, "-m", "llmlab.cli", "serve", "--model", args.model, "--port",
                                 str(port), "--model-name", "fuzz", "--threads", str(args.threads)],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 300
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit(f"the server did not start; see {log.name}")
            time.sleep(0.5)
    try:
        counts, failures, wall = asyncio.run(fuzz(url, args.requests, args.seed, args.concurrency))
        total = collections.Counter()
        print(f"{args.requests} requests in {wall:.0f} s, {args.concurrency} at a time")
        for kind in sorted(counts):
            print(f"  {kind:<34} " + ", ".join(f"{k}: {v}" for k, v in sorted(counts[kind].items(), key=str)))
            total.update(counts[kind])
        fives = sum(v for k, v in total.items() if isinstance(k, int) and k >= 500)
        alive = httpx.get(url + "/health", timeout=10).status_code == 200
        r = httpx.post(url + "/v1/chat/completions", json=GOOD_CHAT, timeout=60)
        answers = r.status_code == 200 and r.json()["choices"][0]["finish_reason"] in ("stop", "length")
        print(f"5xx responses: {fives}; requests not answered: {total['no answer']}; "
              f"server alive after: {alive}; answers a normal request after: {answers}")
        if proc is not None:
            print(f"server log: {log.name}")
        for f in failures[:10]:
            print("  failure:", f)
        if fives or failures or not alive or not answers:
            raise SystemExit(1)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
