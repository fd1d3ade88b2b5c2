"""Fixtures for the server tests: a tokenizer trained on the spot, a tiny random model, and a real server on a
free loopback port (uvicorn in a thread), torn down after the module."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

TEXT = ("What is 12 plus 7? 19. Who says 'To be, or not to be'? Hamlet, in Hamlet. {\"name\": \"calc\", "
        "\"arguments\": {\"expression\": \"2+3\"}} The answer is true, not false. [1, 2, 3] ") * 30


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs torch on one thread (see tests/conftest.py)."""
    yield


@pytest.fixture(scope="session")
def serve_tok():
    from llmlab.tokenizer import Tokenizer

    return Tokenizer.train(TEXT, vocab_size=256 + 16 + 40)


def tiny_model(vocab_size: int, seed: int = 0, max_seq_len: int = 128, cls=None):
    import torch

    from llmlab.model.gpt import GPT, ModelConfig

    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=vocab_size, n_layer=2, n_head=4, n_kv_head=2, d_model=64, max_seq_len=max_seq_len)
    return (cls or GPT)(cfg).eval()


@contextlib.contextmanager
def running_server(state):
    """Start ``state``'s scheduler and a uvicorn server on a free loopback port; yields the base URL."""
    import uvicorn

    state.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(state.app(), log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        state.stop()
        sock.close()


def make_state(tok, model=None, **config):
    from llmlab.infer.engine import Engine
    from llmlab.serve.server import ServeConfig, ServerState

    model = model if model is not None else tiny_model(tok.vocab_size)
    config.setdefault("model_name", "tiny")
    return ServerState(Engine(model), tok, ServeConfig(**config))
