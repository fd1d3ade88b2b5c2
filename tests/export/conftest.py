"""Shared fixtures for the export tests: a tiny random run folder (tokenizer trained in the test, 2-layer model).

The model is randomly initialised with a wide ``init_std`` so its next-token distributions are peaked: greedy
parity between implementations then tests the math, not float-rounding ties between near-equal logits.
"""

from __future__ import annotations

import pytest

# Varied prompts: English, contractions, numbers, CJK, accents, emoji, code, whitespace runs.
PROMPTS = [
    "To be, or not to be, that is the question:",
    "It's 2024; we've got 1234567 apples, they'll say.",
    "中文分词测试：大型语言模型是如何工作的？",
    "café naïve Ωμέγα Привет 🌍🎉 ok",
    "def f(x):\n    return x**2  # comment\n\n\n\tend   ",
]

TRAIN_TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
    "You are all resolved rather to die than to famish? We'll know; they're done, I'd say.\n"
) * 20 + "\n".join(PROMPTS * 5)


def make_run(path, *, tie: bool = True, n_kv_head: int = 2, vocab_extra: int = 140, seed: int = 0,
             pattern: str = "gpt4"):
    """Write a run folder with a freshly trained tokenizer and a random tiny model; returns (model, tok)."""
    import torch

    from llmlab.model.gpt import GPT, ModelConfig
    from llmlab.runs import save_run_model
    from llmlab.tokenizer import SPECIAL_TOKENS, Tokenizer

    tok = Tokenizer.train(TRAIN_TEXT, vocab_size=256 + len(SPECIAL_TOKENS) + vocab_extra, pattern=pattern)
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=tok.vocab_size, n_layer=2, n_head=4, n_kv_head=n_kv_head, d_model=64,
                      max_seq_len=160, rope_theta=5000.0, norm_eps=1e-5, tie_embeddings=tie, init_std=0.15)
    model = GPT(cfg).eval()
    save_run_model(path, model, tok)
    return model, tok


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("run_tied")
    model, tok = make_run(path, tie=True)
    return path, model, tok


@pytest.fixture(scope="module")
def tiny_run_untied(tmp_path_factory):
    path = tmp_path_factory.mktemp("run_untied")
    model, tok = make_run(path, tie=False, n_kv_head=4, seed=1)
    return path, model, tok


def greedy_ours(model, ids: list[int], n: int, stop: set[int] = frozenset()) -> list[int]:
    """The reference greedy loop: the full forward pass over the whole sequence at every step, no cache."""
    import torch

    out = list(ids)
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(torch.tensor([out]))[0, -1].argmax())
            out.append(nxt)
            if nxt in stop:
                break
    return out[len(ids):]


@pytest.fixture(autouse=True, scope="package")
def _one_torch_thread():
    """These models are tiny: one thread is fastest, and on busy shared cores a spinning second OpenMP thread
    makes each forward pass ~100x slower. Restored afterwards for other test packages."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
