"""Fixtures for the inside/ tests: a tiny random run folder (tokenizer trained in the test, 2 layers, grouped-query
attention) and the same kind of model imported from a Hugging Face Llama folder written by transformers."""

from __future__ import annotations

import pytest

TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
        "You are all resolved rather to die than to famish? We know it, we know it.\n") * 30


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs on one torch thread (see tests/conftest.py)."""
    yield


def make_run(path, *, seed: int = 0, init_std: float = 0.15, n_kv_head: int = 2, tie: bool = True):
    """A run folder with a freshly trained tokenizer and a random 2-layer model; returns (model, tok)."""
    import torch

    from llmlab.model.gpt import GPT, ModelConfig
    from llmlab.runs import save_run_model
    from llmlab.tokenizer import SPECIAL_TOKENS, Tokenizer

    tok = Tokenizer.train(TEXT, vocab_size=256 + len(SPECIAL_TOKENS) + 64)
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=tok.vocab_size, n_layer=2, n_head=4, n_kv_head=n_kv_head, d_model=64,
                      max_seq_len=128, rope_theta=5000.0, tie_embeddings=tie, init_std=init_std)
    model = GPT(cfg).eval()
    save_run_model(path, model, tok)
    return model, tok


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("run")
    model, tok = make_run(path)
    return path, model, tok


@pytest.fixture(scope="module")
def imported_run(tmp_path_factory, tiny_run):
    """A random-weight LlamaForCausalLM made by transformers (untied head, 3 layers, its own init), saved with
    save_pretrained and imported with ``llmlab import hf`` using the tiny run's tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from llmlab.cli import main

    run, _, tok = tiny_run
    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=64, intermediate_size=160, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=128,
                      rope_theta=10000.0, tie_word_embeddings=False, initializer_range=0.1)
    src = tmp_path_factory.mktemp("hf")
    LlamaForCausalLM(cfg).save_pretrained(str(src))
    out = tmp_path_factory.mktemp("imported") / "run"
    assert main(["import", "hf", "--path", str(src), "--out", str(out), "--tokenizer", str(run / "tokenizer")]) == 0
    return out
