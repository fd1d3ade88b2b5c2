"""Fixtures for the evaluation tests: a tokenizer trained on the spot and a tiny model (no files, no network)."""

import pytest

TEXT = ("To be, or not to be, that is the question. The king is here. The lords are gone. What is 12 + 7? 19. "
        "Spell the word night: n-i-g-h-t. Question: Who says this?\nAnswer: Hamlet, in Hamlet.\n\n") * 20


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs on one torch thread (see tests/conftest.py)."""
    yield


@pytest.fixture(scope="session")
def tiny():
    """(model, tokenizer): a 2-layer GPT with grouped-query attention over a small trained BPE, fixed seed."""
    import torch

    from llmlab.model.gpt import GPT, ModelConfig
    from llmlab.tokenizer import Tokenizer

    tok = Tokenizer.train(TEXT, vocab_size=256 + 16 + 64)
    torch.manual_seed(0)
    model = GPT(ModelConfig.preset("tiny", vocab_size=tok.vocab_size, max_seq_len=64)).eval()
    with torch.no_grad():  # sharper predictions than the small init gives: scores and greedy choices far from ties
        model.lm_head.weight.mul_(20.0)
    return model, tok


@pytest.fixture(scope="session")
def tiny_run(tiny, tmp_path_factory):
    """The tiny model saved as a run folder."""
    from llmlab.runs import save_run_model

    model, tok = tiny
    run = tmp_path_factory.mktemp("run")
    save_run_model(run, model, tok)
    return run
