"""The C decode-attention kernel (model/kernels/decode_attention.py) computes SDPA's answer over each row's
unmasked slots, and the engine gives the same generations with it as without it.

    .venv/bin/pytest tests/model/test_decode_attention.py -q
"""

import pytest
import torch
import torch.nn.functional as F

from llmlab.infer import Engine, SamplingParams
from llmlab.model.gpt import GPT, ModelConfig
from llmlab.model.kernels import decode_attention as da

needs_kernel = pytest.mark.skipif(da._library().lib is None, reason=f"decode-attention kernel: {da.status()}")


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def cache_case(B=5, H=4, Hkv=2, S=37, hd=16, slots=50, dtype=torch.float32, seed=0):
    """q as the fused forward slices it (heads of a wider projection), k/v as views of a larger block, and
    per-row masked prefixes whose slots hold huge values (so reading them would show)."""
    g = torch.Generator().manual_seed(seed)
    qk = torch.randn(B, H + Hkv, 1, hd, generator=g)
    q = qk[:, :H]  # (B, H, 1, hd), row stride (H + Hkv) * hd
    block_k = torch.randn(3, B + 2, Hkv, slots, hd, generator=g)
    block_v = torch.randn(3, B + 2, Hkv, slots, hd, generator=g)
    pad = torch.tensor([0, 3, S - 1, 10, 20][:B])
    for b, p in enumerate(pad.tolist()):
        block_k[1, b, :, :p] = 1e4
        block_v[1, b, :, :p] = -1e4
    k, v = block_k[1, :B, :, :S].to(dtype), block_v[1, :B, :, :S].to(dtype)
    if dtype != torch.float32:  # views of a block in that dtype, as the engine's bf16 cache is
        k, v = block_k.to(dtype)[1, :B, :, :S], block_v.to(dtype)[1, :B, :, :S]
    mask = torch.zeros(B, 1, 1, S)
    for b, p in enumerate(pad.tolist()):
        mask[b, ..., :p] = float("-inf")
    return q.to(dtype), k, v, pad, mask


@needs_kernel
def test_float32_matches_sdpa_and_skips_the_masked_prefix():
    q, k, v, pad, mask = cache_case()
    assert da.applies(q, k, v)
    got = da.decode_attention(q, k, v, pad)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    assert got.shape == want.shape == (5, 4, 1, 16)
    assert torch.allclose(got, want, atol=2e-6, rtol=0)
    # with no pad (None) every slot counts, which the huge masked values make very different
    assert not torch.allclose(da.decode_attention(q, k, v, None), want, atol=1.0)
    assert torch.allclose(da.decode_attention(q, k, v, None),
                          F.scaled_dot_product_attention(q, k, v, enable_gqa=True), atol=2e-6, rtol=0)


@needs_kernel
def test_scale_and_a_row_with_nothing_to_attend_to():
    q, k, v, pad, mask = cache_case(B=3, H=2, Hkv=2, S=9, hd=8, slots=12)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3)
    assert torch.allclose(da.decode_attention(q, k, v, pad, scale=0.3), want, atol=2e-6, rtol=0)
    out = da.decode_attention(q, k, v, torch.tensor([0, 9, 12]))  # rows 1 and 2: every slot masked
    assert torch.equal(out[1:], torch.zeros(2, 2, 1, 8))


@needs_kernel
def test_bfloat16_matches_sdpa_on_the_same_values():
    q, k, v, pad, mask = cache_case(dtype=torch.bfloat16)
    assert da.applies(q, k, v)
    got = da.decode_attention(q, k, v, pad)
    assert got.dtype == torch.bfloat16
    want = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask, enable_gqa=True)
    assert torch.allclose(got.float(), want, atol=1e-2, rtol=1e-2)  # the answer rounded to bf16
    assert (got.float() - want).abs().max() > 0  # (it is rounded: the output is bf16)
    # float32 queries over the bf16 cache (a bf16 cache under float32 weights): float32 out, nothing rounded
    q32 = cache_case()[0]
    assert da.applies(q32, k, v)
    got = da.decode_attention(q32, k, v, pad)
    assert got.dtype == torch.float32
    want = F.scaled_dot_product_attention(q32, k.float(), v.float(), attn_mask=mask, enable_gqa=True)
    assert torch.allclose(got, want, atol=2e-6, rtol=0)


def test_falls_back_where_it_does_not_apply(monkeypatch):
    q, k, v, pad, _ = cache_case()
    assert not da.applies(q.expand(5, 4, 2, 16), k, v)  # two queries a row: a prefill
    assert not da.applies(q.double(), k.double(), v.double())
    assert not da.applies(q, k, v.contiguous())  # k and v laid out differently
    torch.set_num_threads(2)
    assert not da.applies(q, k, v)  # the kernel is one thread; SDPA uses them all
    torch.set_num_threads(1)
    monkeypatch.setenv(da.ENV_SWITCH, "0")
    assert not da.applies(q, k, v) and da.status().startswith("off")


def test_no_compiler_means_no_kernel(monkeypatch, tmp_path):
    monkeypatch.setattr(da, "_compiler", lambda: None)
    da._library.cache_clear()
    try:
        q, k, v, _, _ = cache_case()
        assert not da.applies(q, k, v)
        assert da.status() == "off: no C compiler (set CC, or install gcc)"
    finally:
        da._library.cache_clear()


def test_a_build_failure_is_reported_not_raised(monkeypatch, tmp_path):
    bad = tmp_path / "broken.c"
    bad.write_text("this is not C\n")
    monkeypatch.setattr(da, "SOURCE", bad)
    monkeypatch.setenv("LLMLAB_CACHE_DIR", str(tmp_path / "cache"))
    da._library.cache_clear()
    try:
        assert da.status().startswith("off: building broken.c with ")
        assert not list((tmp_path / "cache" / "kernels").glob("*.so"))  # nothing half-written is left
    finally:
        da._library.cache_clear()


@needs_kernel
def test_engine_generates_the_same_with_and_without_the_kernel(monkeypatch):
    torch.manual_seed(3)
    m = GPT(ModelConfig.preset("tiny", vocab_size=97)).eval()  # float32, n_kv_head 2 < n_head 4
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.3)
    calls = []
    real = da.decode_attention
    monkeypatch.setattr(da, "decode_attention", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    params = SamplingParams(temperature=0, max_new_tokens=10, logprobs=2)

    def run():
        gen = Engine(m).open()
        gen.add([[1, 2, 3], list(range(5, 30))], params)  # left-padded rows
        for _ in range(4):
            gen.step()
        gen.add([list(range(40, 52))], params)  # a row joining mid-way: masked slots in front of it
        while not gen.done:
            gen.step()
        return [(o.samples[0].token_ids, o.samples[0].logprobs) for o in gen.outputs()]

    with_kernel = run()
    assert calls  # the kernel ran the decode steps
    monkeypatch.setenv(da.ENV_SWITCH, "0")
    calls.clear()
    without = run()
    assert not calls
    for (ta, la), (tb, lb) in zip(with_kernel, without):
        assert ta == tb
        assert la == pytest.approx(lb, abs=1e-5)


def test_a_bf16_cache_under_float32_weights(monkeypatch):
    """Engine(kv_dtype=bf16) (serve --kv-dtype bf16): the cache holds bf16 (half the bytes a slot), the queries
    meet it in bf16 and the result goes back to float32; kernel and SDPA agree; other engines refuse it."""
    from llmlab.errors import LlmlabError

    torch.manual_seed(5)
    m = GPT(ModelConfig.preset("tiny", vocab_size=97)).eval()
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.1)
    full, half = Engine(m), Engine(m, kv_dtype=torch.bfloat16)
    assert half.kv_bytes_per_slot() * 2 == full.kv_bytes_per_slot()
    params = SamplingParams(temperature=0, max_new_tokens=8, logprobs=0)
    prompts = [[1, 2, 3], list(range(5, 30))]
    gen = half.start(prompts, params)
    assert gen.cache.k.dtype == torch.bfloat16
    while not gen.done:
        gen.step()
    got = [o.samples[0] for o in gen.outputs()]
    want = [o.samples[0] for o in full.generate(prompts, params)]
    diffs = [abs(a - b) for g, w in zip(got, want) for a, b in zip(g.logprobs, w.logprobs)]
    assert max(diffs) < 0.05 and max(diffs) > 1e-5  # close to the float32 cache's, but rounded through bf16
    monkeypatch.setenv(da.ENV_SWITCH, "0")  # SDPA on the same bf16 cache
    sdpa = [o.samples[0] for o in half.generate(prompts, params)]
    for g, s in zip(got, sdpa):
        assert g.token_ids == s.token_ids
        assert g.logprobs == pytest.approx(s.logprobs, abs=1e-2)  # (SDPA rounds q and its output to bf16)
    with pytest.raises(LlmlabError, match="needs the fused forward"):
        Engine(m, fused=False, kv_dtype=torch.bfloat16)
    with pytest.raises(LlmlabError, match="drop --compile"):
        Engine(m, compile=True, kv_dtype=torch.bfloat16)
