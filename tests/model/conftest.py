"""Shared by the model tests: a tiny float32 model, its float64 twin with the same weights, and a batch."""

import pytest
import torch

from llmlab.model.gpt import GPT, ModelConfig


@pytest.fixture
def tiny_twins():
    """``(ref64, model32, idx (3, 40), targets (3, 40))``: the reference computes the same math in float64."""
    torch.manual_seed(0)
    ref = GPT(ModelConfig.preset("tiny", vocab_size=97, n_kv_head=2)).double()
    m = GPT(ModelConfig.preset("tiny", vocab_size=97, n_kv_head=2))
    m.load_state_dict(ref.state_dict())
    idx = torch.randint(0, 97, (3, 40))
    return ref, m, idx, torch.roll(idx, -1, 1)
