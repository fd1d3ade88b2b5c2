"""The ahead-of-time compiled decode step (infer/compiled.py) computes what the fused forward computes, and
the engine generates the same tokens with it.

    .venv/bin/pytest tests/infer/test_compiled.py -q

Each dtype compiles one package (~20-40 s of C++ build on two cores), shared by the module's tests.
"""

import os
import shutil

import pytest
import torch

from llmlab.errors import LlmlabError
from llmlab.infer import Engine, SamplingParams
from llmlab.infer.compiled import CompiledDecoder, package_key
from llmlab.infer.fused import FusedWeights
from llmlab.model.gpt import GPT, KVCache, ModelConfig

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.skipif(not any(shutil.which(c) for c in ("g++", "c++", "clang++")),
                                 reason="AOTInductor needs a C++ compiler")]

TOL = {torch.float32: 2e-5, torch.float64: 1e-12}


def random_model(dtype, seed=0) -> GPT:
    """tiny preset: 2 layers, 4 query heads over 2 kv heads (GQA), d64."""
    torch.manual_seed(seed)
    m = GPT(ModelConfig.preset("tiny", vocab_size=97)).to(dtype).eval()
    with torch.no_grad():  # non-trivial norm weights: their folding into the matmuls is exercised
        for name, p in m.named_parameters():
            p.add_(torch.randn_like(p) * (0.3 if "norm" in name else 0.05))
    return m


@pytest.fixture(scope="module", params=[torch.float32, torch.float64], ids=["fp32", "fp64"])
def compiled(request, tmp_path_factory):
    """(dtype, package folder) with the package for the tiny model in that dtype already built."""
    dtype, folder = request.param, tmp_path_factory.mktemp("compiled")
    model = random_model(dtype)
    with torch.inference_mode():
        CompiledDecoder.load_or_build(FusedWeights(model, fold_rotation=False), folder, log=None)
    return dtype, folder


def test_step_matches_the_fused_forward_with_padding(compiled):
    """Left-padded rows of different lengths, several steps: logits and the written cache agree."""
    dtype, folder = compiled
    m = random_model(dtype, seed=1)  # other weights than the build's: the weights are inputs, not constants
    fw = FusedWeights(m, fold_rotation=False)
    dec = CompiledDecoder.load_or_build(fw, folder, log=None)
    B, P, M = 3, 9, 24
    pad = torch.tensor([0, 3, 7])
    ids = torch.randint(0, 97, (B, P))
    pos = (torch.arange(P).reshape(1, P) - pad.reshape(B, 1)).clamp(min=0)
    key_ok = torch.arange(P).reshape(1, P) >= pad.reshape(B, 1)
    allowed = (torch.ones(P, P, dtype=torch.bool).tril() & key_ok.unsqueeze(1)) | torch.eye(P, dtype=torch.bool)
    prefill_mask = torch.zeros(B, 1, P, P, dtype=dtype).masked_fill_(~allowed.unsqueeze(1), float("-inf"))
    decode_mask = torch.zeros(B, 1, 1, M, dtype=dtype).masked_fill_(
        (torch.arange(M).reshape(1, M) < pad.reshape(B, 1)).reshape(B, 1, 1, M), float("-inf"))
    ref, ours = KVCache(m.config, B, M, "cpu", dtype), KVCache(m.config, B, M, "cpu", dtype)
    with torch.inference_mode():
        for cache in (ref, ours):
            logits = fw.forward(ids, positions=pos, kv_cache=cache, attn_mask=prefill_mask, logits_to_keep=1)[:, -1]
        tok, p = logits.argmax(-1, keepdim=True), (P - pad).reshape(B, 1)
        for _ in range(M - P):
            S = ref.length + 1
            a = fw.forward(tok, positions=p, kv_cache=ref, attn_mask=decode_mask[..., :S])[:, -1]
            b = dec.step(fw, tok, p, pad, ours)
            assert b.shape == (B, 97) and b.dtype == dtype
            assert torch.allclose(a, b, atol=TOL[dtype], rtol=0)
            tok, p = a.argmax(-1, keepdim=True), p + 1
    assert ref.length == ours.length == M
    assert torch.allclose(ref.k, ours.k, atol=TOL[dtype], rtol=0)
    assert torch.allclose(ref.v, ours.v, atol=TOL[dtype], rtol=0)


def outputs(engine, prompts, params):
    return [[s.token_ids for s in o.samples] for o in engine.generate(prompts, params)]


def test_engine_generates_the_same_tokens_compiled(compiled):
    dtype, folder = compiled
    m = random_model(dtype, seed=2)
    plain, fast = Engine(m), Engine(m, compile=True, compile_dir=folder, log=lambda msg: None)
    prompts = [[1, 2, 3], [5] * 11, [7, 8]]
    params = [SamplingParams(temperature=0, max_new_tokens=20, ignore_eos=True),
              SamplingParams(temperature=0.9, n=3, seed=4, max_new_tokens=15, ignore_eos=True),
              SamplingParams(temperature=0, max_new_tokens=40, ignore_eos=True)]
    expected = outputs(plain, prompts, params)
    assert outputs(fast, prompts, params) == expected
    assert fast._decoder is not None  # it really ran compiled

    def joined(engine):  # a request joins mid-generation (continuous batching), then finished rows drop out
        gen = engine.start(prompts[:1], params[0])
        for _ in range(5):
            gen.step()
        gen.add([prompts[1]], params[1])
        while not gen.done:
            gen.step()
        return [[s.token_ids for s in o.samples] for o in gen.outputs()]

    assert joined(fast) == joined(plain)


def test_a_head_size_other_than_width_over_heads_and_rope_scaling(tmp_path):
    """Imported models' shapes: head_dim 24 with d_model 64 and 4 heads, Llama-3 RoPE scaling."""
    torch.manual_seed(0)
    scaling = {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 16}
    m = GPT(ModelConfig.preset("tiny", vocab_size=97, head_dim=24, rope_scaling=scaling)).eval()
    plain, fast = Engine(m), Engine(m, compile=True, compile_dir=tmp_path, log=lambda msg: None)
    params = SamplingParams(temperature=0, max_new_tokens=40, ignore_eos=True)
    prompts = [[1, 2, 3], [5] * 11]
    assert outputs(fast, prompts, params) == outputs(plain, prompts, params)
    assert fast._decoder is not None


def test_updated_weights_reuse_the_package(compiled):
    """RL updates the policy in place between generations: the next generation sees them, with no rebuild."""
    dtype, folder = compiled
    m = random_model(dtype, seed=3)
    built = []
    engine = Engine(m, compile=True, compile_dir=folder, log=built.append)
    greedy = SamplingParams(temperature=0, max_new_tokens=12, ignore_eos=True)
    before = outputs(engine, [[4, 5, 6]], greedy)
    with torch.no_grad():
        m.lm_head.weight.mul_(-1.0)  # a different argmax everywhere
    after = outputs(engine, [[4, 5, 6]], greedy)
    assert after == outputs(Engine(m), [[4, 5, 6]], greedy) and after != before
    assert built == []  # loaded from the module's package both times


def test_a_corrupt_package_is_reported_with_its_path(tmp_path):
    fw = FusedWeights(random_model(torch.float32), fold_rotation=False)
    bad = tmp_path / f"{package_key(fw)}.pt2"
    bad.write_bytes(b"not a zip archive")
    with pytest.raises(LlmlabError, match="not a loadable decode-step package"):
        CompiledDecoder.load_or_build(fw, tmp_path, log=None)


def test_compile_needs_the_fused_forward():
    with pytest.raises(LlmlabError, match="compile=True needs the fused forward"):
        Engine(random_model(torch.float32), fused=False, compile=True)


def test_package_key_depends_on_shape_and_dtype():
    a = FusedWeights(random_model(torch.float32), fold_rotation=False)
    b = FusedWeights(random_model(torch.float32, seed=5), fold_rotation=False)
    c = FusedWeights(random_model(torch.float64), fold_rotation=False)
    assert package_key(a) == package_key(b) != package_key(c)
    assert os.sep not in package_key(a)
