"""Helpers for the server tests: a tiny random model (and a slow one that never stops), a server state around
it, and a real uvicorn server on a free loopback port in a thread."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import torch

from llmlab.model.gpt import GPT, ModelConfig

TEXT = ("What is 12 plus 7? 19. Who says 'To be, or not to be'? Hamlet, in Hamlet. {\"name\": \"calc\", "
        "\"arguments\": {\"expression\": \"2+3\"}} The answer is true, not false. [1, 2, 3] ") * 30

# Tokens that end a chat answer (llmlab.chat.template.stop_token_ids): the slow model never writes them.
STOP_SPECIALS = ("<|end|>", "<|user|>", "<|system|>", "<|assistant|>", "<|bos|>", "<|endoftext|>")


def tiny_model(vocab_size: int, seed: int = 0, max_seq_len: int = 128, cls=GPT):
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=vocab_size, n_layer=2, n_head=4, n_kv_head=2, d_model=64, max_seq_len=max_seq_len)
    return cls(cfg).eval()


class SlowGPT(GPT):
    """A test double: each forward pass takes ``delay`` seconds longer, and only lowercase letters and spaces
    can come next (readable, never a stop token), so an answer streams for as long as a test needs. The
    engine runs a subclass that overrides ``forward`` as it is (no fused copy)."""

    delay = 0.03

    def forward(self, idx, **kw):
        time.sleep(self.delay)
        logits = super().forward(idx, **kw)
        keep = torch.full((logits.shape[-1],), float("-inf"), dtype=logits.dtype)
        keep[list(range(97, 123)) + [32]] = 0.0
        return logits + keep


def make_state(tok, model=None, content_filter=None, **config):
    """A server state whose engine process gets ``model`` (default: a tiny random one) and ``tok``."""
    from llmlab.serve.engine_proc import EngineSpec
    from llmlab.serve.server import ServeConfig, ServerState

    model = model if model is not None else tiny_model(tok.vocab_size)
    config.setdefault("model_name", "tiny")
    return ServerState(EngineSpec(model=model, tokenizer=tok, threads=1), ServeConfig(**config),
                       content_filter=content_filter)


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
