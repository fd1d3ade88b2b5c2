"""Bits per byte, checked by hand: uniform predictions, and an independent token-by-token recomputation.

    .venv/bin/pytest tests/eval -q
"""

import math

import pytest
import torch
import torch.nn.functional as F

from llmlab.eval.bpb import bits_per_byte
from llmlab.model.gpt import GPT, ModelConfig
from llmlab.tokenizer import Tokenizer

TEXT = "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer. " * 3


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.train(TEXT, vocab_size=256 + 16 + 20)


def test_uniform_model_gives_log2_vocab_bits_per_token(tok):
    """A zero output head predicts uniformly: every token costs ln(V) nats, so bpb = n_tokens*log2(V)/bytes."""
    model = GPT(ModelConfig.preset("tiny", vocab_size=tok.vocab_size, max_seq_len=16))
    with torch.no_grad():
        model.embed_tokens.weight.zero_()  # tied: the head is zero too -> all logits 0
    r = bits_per_byte(model, tok, TEXT, context=16)
    n = len(tok.encode(TEXT))
    assert r["tokens"] == n and r["bytes"] == len(TEXT.encode())
    assert r["bpb"] == pytest.approx(n * math.log2(tok.vocab_size) / len(TEXT.encode()), rel=1e-6)


def test_windows_by_hand(tok):
    """Recompute with one forward per scored token: window k covers ids[k*(T-1):(k+1)*(T-1)], fed after BOS."""
    torch.manual_seed(0)
    model = GPT(ModelConfig.preset("tiny", vocab_size=tok.vocab_size, max_seq_len=64)).eval()
    T = 9
    text = TEXT[:120]
    ids = tok.encode(text)
    nats = 0.0
    torch.set_grad_enabled(False)
    for start in range(0, len(ids), T - 1):
        window = ids[start : start + T - 1]
        for j, target in enumerate(window):
            ctx = torch.tensor([[tok.bos_id] + window[:j]])  # BOS + earlier tokens of this window only
            logp = F.log_softmax(model(ctx)[0, -1].double(), dim=-1)
            nats -= float(logp[target])
    torch.set_grad_enabled(True)
    want = nats / math.log(2) / len(text.encode())
    r = bits_per_byte(model, tok, text, context=T, batch_size=3)
    assert r["bpb"] == pytest.approx(want, rel=1e-5)
    assert r["loss"] == pytest.approx(nats / len(ids), rel=1e-5)
    # several texts: sums of nats over sums of bytes
    r2 = bits_per_byte(model, tok, [text, text], context=T)
    assert r2["bpb"] == pytest.approx(want, rel=1e-5) and r2["bytes"] == 2 * len(text.encode())
