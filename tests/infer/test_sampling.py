"""Decoding strategies: each mask exactly on hand-made logits, agreement with Hugging Face's warpers, the
penalties' arithmetic, sampling frequencies (chi-square, fixed seed) and parameter validation.

    .venv/bin/pytest tests/infer/test_sampling.py -q
"""

import math

import pytest
import torch

from llmlab.errors import LlmlabError
from llmlab.infer.sampling import (
    SamplingBatch,
    SamplingParams,
    apply_frequency_presence,
    apply_repetition_penalty,
    apply_temperature,
    min_p_mask,
    sample_from_logits,
    top_k_mask,
    top_p_mask,
)


def logits_of(probs):
    return torch.tensor([probs]).log()


def kept(mask):
    return (~mask[0]).nonzero().flatten().tolist()


def test_top_k_exact_and_ties():
    x = torch.tensor([[1.0, 3.0, 3.0, 2.0, 0.0]])
    assert kept(top_k_mask(x, 2)) == [1, 2]
    assert kept(top_k_mask(x, 3)) == [1, 2, 3]
    assert kept(top_k_mask(x, 1)) == [1, 2]  # both tokens tied at the top survive k=1
    assert kept(top_k_mask(x, 0)) == [0, 1, 2, 3, 4]  # off
    assert kept(top_k_mask(x, 99)) == [0, 1, 2, 3, 4]  # k > V keeps all
    # Per-row k.
    rows = torch.tensor([[1.0, 3.0, 2.0], [5.0, 4.0, 6.0]])
    m = top_k_mask(rows, torch.tensor([1, 2]))
    assert m.tolist() == [[True, False, True], [False, True, False]]


def test_top_p_exact_and_ties():
    x = logits_of([0.5, 0.2, 0.2, 0.1])
    assert kept(top_p_mask(x, 0.45)) == [0]  # the top token alone already has mass 0.5 >= 0.45
    assert kept(top_p_mask(x, 0.6)) == [0, 1, 2]  # needs one 0.2; its tie is kept too
    assert kept(top_p_mask(x, 0.75)) == [0, 1, 2]
    assert kept(top_p_mask(x, 0.95)) == [0, 1, 2, 3]
    assert kept(top_p_mask(x, 1.0)) == [0, 1, 2, 3]
    assert kept(top_p_mask(x, 1e-9)) == [0]  # the top token always stays
    # Order in the vocabulary doesn't matter.
    y = logits_of([0.1, 0.2, 0.5, 0.2])
    assert kept(top_p_mask(y, 0.6)) == [1, 2, 3]


def test_min_p_exact_and_ties():
    x = logits_of([0.5, 0.2, 0.2, 0.1])
    # min_p exactly at the two tied tokens' ratio to the top (0.4 up to float32 rounding): both stay (>=).
    ratio = float(torch.exp(x[0, 1] - x[0, 0]))
    assert ratio == pytest.approx(0.4)
    assert kept(min_p_mask(x, ratio)) == [0, 1, 2]
    assert kept(min_p_mask(x, ratio * 1.001)) == [0]
    assert kept(min_p_mask(x, 0.3)) == [0, 1, 2]
    assert kept(min_p_mask(x, 0.15)) == [0, 1, 2, 3]
    assert kept(min_p_mask(x, 0.0)) == [0, 1, 2, 3]
    assert kept(min_p_mask(x, 1.0)) == [0]


def test_penalties_and_temperature_arithmetic():
    x = torch.tensor([[2.0, -2.0, 1.0, 0.5]])
    seen = torch.tensor([[True, True, False, False]])
    assert apply_repetition_penalty(x, seen, 2.0).tolist() == [[1.0, -4.0, 1.0, 0.5]]
    counts = torch.tensor([[0.0, 3.0, 1.0, 0.0]])
    out = apply_frequency_presence(x, counts, 0.5, 0.25)
    assert out.tolist() == [[2.0, -2.0 - 1.5 - 0.25, 1.0 - 0.5 - 0.25, 0.5]]
    t = apply_temperature(torch.tensor([[2.0, 1.0], [2.0, 1.0]]), torch.tensor([0.5, 0.0]))
    assert t.tolist() == [[4.0, 2.0], [2.0, 1.0]]  # temperature 0 rows are left for argmax


def test_matches_hugging_face_warpers_on_random_logits():
    tr = pytest.importorskip("transformers")
    torch.manual_seed(0)
    x = torch.randn(6, 300) * 3
    ids = torch.randint(0, 300, (6, 20))
    seen = torch.zeros(6, 300, dtype=torch.bool).scatter_(1, ids, True)
    for k in (1, 5, 50):
        hf = tr.TopKLogitsWarper(top_k=k)(ids, x.clone())
        assert torch.equal(torch.isinf(hf), top_k_mask(x, k))
    for p in (0.1, 0.5, 0.9, 0.99):
        hf = tr.TopPLogitsWarper(top_p=p)(ids, x.clone())
        assert torch.equal(torch.isinf(hf), top_p_mask(x, p))
    for m in (0.01, 0.1, 0.5):
        hf = tr.MinPLogitsWarper(min_p=m)(ids, x.clone())
        assert torch.equal(torch.isinf(hf), min_p_mask(x, m))
    hf = tr.RepetitionPenaltyLogitsProcessor(penalty=1.3)(ids, x.clone())
    torch.testing.assert_close(hf, apply_repetition_penalty(x, seen, 1.3))
    hf = tr.TemperatureLogitsWarper(0.7)(ids, x.clone())
    torch.testing.assert_close(hf, apply_temperature(x, 0.7))


def chi_square(counts, probs, n):
    return sum((c - n * p) ** 2 / (n * p) for c, p in zip(counts, probs) if p > 0)


def test_sampling_frequencies_match_the_distribution():
    probs = [0.5, 0.3, 0.15, 0.05, 0.0]
    x = logits_of(probs).expand(20000, 5)
    g = torch.Generator().manual_seed(0)
    draws = sample_from_logits(x, torch.rand(20000, generator=g, dtype=torch.float64))
    counts = torch.bincount(draws, minlength=5).tolist()
    assert counts[4] == 0  # probability 0 is never drawn
    assert chi_square(counts, probs, 20000) < 16.3  # chi-square, 3 d.o.f., p = 0.001


def batch(params, V=5, seed=0):
    gens = [torch.Generator().manual_seed(seed + i) for i in range(len(params))]
    return SamplingBatch(params, V, "cpu", gens)


def test_sampling_batch_top_k_temperature_frequencies_and_seeds():
    # temperature 0.5 squares the probabilities' ratios; top-k 3 then drops the two smallest.
    base = torch.tensor([0.4, 0.3, 0.2, 0.06, 0.04]).log()
    N = 20000
    p = SamplingParams(temperature=0.5, top_k=3)
    sb = batch([p] * N)
    logits = base.expand(N, 5)
    toks = sb.choose(sb.process(logits, None, None))
    want = torch.tensor([0.4, 0.3, 0.2]) ** 2
    want = (want / want.sum()).tolist() + [0.0, 0.0]
    counts = torch.bincount(toks, minlength=5).tolist()
    assert counts[3] == counts[4] == 0
    assert chi_square(counts, want, N) < 13.8  # 2 d.o.f., p = 0.001
    # Same generators -> same draws.
    again = batch([p] * N)
    assert torch.equal(again.choose(again.process(logits, None, None)), toks)


def test_sampling_batch_greedy_bias_and_mixed_rows():
    logits = torch.tensor([[1.0, 2.0, 3.0, 0.0, 0.0], [1.0, 2.0, 3.0, 0.0, 0.0]])
    greedy = SamplingParams(temperature=0, logit_bias={0: 5.0})
    sampled = SamplingParams(temperature=1.0, top_k=1)  # top-k 1 makes a sampled row deterministic
    sb = batch([greedy, sampled])
    assert sb.choose(sb.process(logits, None, None)).tolist() == [0, 2]
    # Dropping a row keeps the other row's parameters.
    sb.select(torch.tensor([1]), [1])
    assert sb.choose(sb.process(logits[:1], None, None)).tolist() == [2]
    with pytest.raises(LlmlabError, match="outside the vocabulary"):
        batch([SamplingParams(logit_bias={7: 1.0})])


def test_presence_penalty_in_batch_uses_counts():
    logits = torch.tensor([[3.0, 2.9, 0.0]])
    sb = batch([SamplingParams(temperature=0, presence_penalty=1.0)], V=3)
    counts = torch.tensor([[1.0, 0.0, 0.0]])
    assert sb.choose(sb.process(logits, counts > 0, counts)).tolist() == [1]


def test_params_validation():
    for bad in (dict(temperature=-1), dict(top_p=0), dict(top_p=1.5), dict(min_p=2), dict(top_k=-1),
                dict(max_new_tokens=0), dict(n=0), dict(repetition_penalty=0), dict(logprobs=-1),
                dict(logprobs_mode="x"), dict(stop=("",)), dict(temperature=math.inf)):
        with pytest.raises(LlmlabError):
            SamplingParams(**bad)
    p = SamplingParams(stop="END", logit_bias={"3": 1})
    assert p.stop == ("END",) and p.logit_bias == {3: 1.0}
    assert p.replace(n=3).n == 3 and p.replace(n=3).stop == ("END",)


def test_argmax_is_torchs_first_maximum_through_numpy():
    from llmlab.infer.sampling import argmax

    x = torch.tensor([[1.0, 3.0, 3.0, 2.0], [0.0, -1.0, float("nan"), 5.0], [-2.0, -2.0, -2.0, -2.0]])
    assert argmax(x).tolist() == x.argmax(-1).tolist() == [1, 2, 0]  # ties: the first; NaN is the maximum
    assert argmax(x).dtype == torch.int64
    assert argmax(x[0]).item() == 1 and argmax(x[0]).shape == ()  # one row: a 0-d tensor, as torch's
    flipped = (x > 0).flip(-1).to(torch.uint8)  # a strided view, as sample_from_logits passes
    assert argmax(flipped).tolist() == flipped.argmax(-1).tolist()
    with torch.inference_mode():
        y = torch.randn(6, 1000)
        assert torch.equal(argmax(y), y.argmax(-1))
    z = torch.randn(3, 5, dtype=torch.bfloat16)  # not numpy's: torch's own
    assert torch.equal(argmax(z), z.argmax(-1))
