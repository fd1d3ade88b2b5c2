"""The engine's fused forward (infer/fused.py) computes what GPT.forward computes, and the engine rebuilds it
when the weights change.

    .venv/bin/pytest tests/infer/test_fused.py -q
"""

import pytest
import torch

from llmlab.infer import Engine, SamplingParams
from llmlab.infer import fused
from llmlab.infer.fused import FusedWeights, _rotate_rows
from llmlab.model.gpt import GPT, KVCache, ModelConfig, apply_rope


def random_model(dtype, seed=0, **kw) -> GPT:
    torch.manual_seed(seed)
    m = GPT(ModelConfig.preset("tiny", vocab_size=97, **kw)).to(dtype).eval()
    with torch.no_grad():  # non-trivial norm weights, so folding them into the matmuls is exercised
        for name, p in m.named_parameters():
            p.add_(torch.randn_like(p) * (0.3 if "norm" in name else 0.05))
    return m


def test_rotated_rows_give_rotate_half_of_the_projection():
    w, x = torch.randn(4 * 8, 16, dtype=torch.float64), torch.randn(3, 16, dtype=torch.float64)
    q = (x @ w.T).view(3, 4, 8)
    ones, zeros = torch.ones(8, dtype=torch.float64), torch.zeros(8, dtype=torch.float64)
    rotated = apply_rope(q, zeros, ones)  # cos = 0, sin = 1 leaves exactly rotate_half(q)
    assert torch.equal((x @ _rotate_rows(w, 4, 8).T).view(3, 4, 8), rotated)


LLAMA3_ROPE = {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 16}


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("kw", [{}, {"n_kv_head": 1, "tie_embeddings": False},
                                {"head_dim": 24, "rope_scaling": LLAMA3_ROPE}])  # imported models' shapes
@pytest.mark.parametrize("fold_rotation", [True, False])
def test_fused_forward_matches_the_model(dtype, tol, kw, fold_rotation):
    m = random_model(dtype, **kw)
    fw = FusedWeights(m, fold_rotation=fold_rotation)
    check_matches_the_model(fw, m, tol)
    layers, head = fw.packed(16)  # tiny matrices: never worth oneDNN's blocked layout
    assert head is None and all(p is None for ws in layers for p in ws)


def test_many_rows_skip_the_folded_heads_and_still_match(monkeypatch):
    # From FOLD_ROTATION_MAX_ROWS rows a model with folded rotate-half heads multiplies only the plain q/k/v
    # columns and rotates them itself; 4 here, so the checks' prefills (3 x 20 rows) take that path, their
    # 3-row decode steps do not.
    monkeypatch.setattr(fused, "FOLD_ROTATION_MAX_ROWS", 4)
    m = random_model(torch.float64)
    fw = FusedWeights(m, fold_rotation=True)
    calls = []
    real = fused._mm
    monkeypatch.setattr(fused, "_mm", lambda x, w, how: calls.append(w.shape[1]) or real(x, w, how))
    check_matches_the_model(fw, m, 1e-12)
    c = m.config
    plain, folded = (c.n_head + 2 * c.n_kv_head) * c.head_dim, (2 * c.n_head + 3 * c.n_kv_head) * c.head_dim
    assert plain in calls and folded in calls  # prefills without the folded heads, decode steps with them


@pytest.mark.skipif(not fused.onednn_usable(torch.zeros(1)), reason="this torch build has no oneDNN")
@pytest.mark.parametrize("kw", [{}, {"n_kv_head": 1, "tie_embeddings": False}])
def test_onednn_blocked_matmuls_match_the_model(monkeypatch, kw):
    # Every matrix through oneDNN from 2 rows on (by default only large ones, from 4 rows): 3-row decode steps,
    # prefills and the 3- and 6-row heads all take it; the 1-row calls below it keep mm.
    monkeypatch.setattr(fused, "ONEDNN_MIN_ELEMENTS", 1)
    monkeypatch.setattr(fused, "ONEDNN_MIN_ROWS", 2)
    m = random_model(torch.float32, **kw)
    fw = FusedWeights(m)
    check_matches_the_model(fw, m, 2e-5)
    layers, head = fw._packed
    assert head is not None and all(p is not None for ws in layers for p in ws)
    # No room for the blocked copies: the same results through mm.
    monkeypatch.setattr(fused, "available_memory", lambda: 1000.0)
    fw = FusedWeights(m)
    check_matches_the_model(fw, m, 2e-5)
    assert fw._packed is None and fw.onednn_share(16) == 0.0
    with torch.inference_mode():
        one = torch.randint(0, 97, (1, 1))
        assert torch.allclose(fw.forward(one), m(one), atol=2e-5, rtol=0)
        assert fw.packed(1)[1] is None


@pytest.mark.skipif(not fused.onednn_usable(torch.zeros(1, dtype=torch.bfloat16)),
                    reason="this CPU has no native bf16 matmuls (AMX, AVX512-BF16) or torch no oneDNN")
def test_bf16_takes_onednn_from_one_row_and_matches_the_model(monkeypatch):
    # bf16 weights (serve --dtype bf16): every call, a 1-row decode step included, multiplies the blocked
    # copies, and the results are the bf16 model's up to bf16 rounding (logits of size ~1 here: 3e-2).
    monkeypatch.setattr(fused, "ONEDNN_MIN_ELEMENTS_BF16", 1)
    m = random_model(torch.bfloat16, n_kv_head=1, tie_embeddings=False)
    fw = FusedWeights(m)
    one = torch.randint(0, 97, (1, 1))
    with torch.inference_mode():
        assert torch.allclose(fw.forward(one).float(), m(one).float(), atol=3e-2, rtol=0)
    layers, head = fw.packed(1)
    assert head is not None and all(p is not None for ws in layers for p in ws)
    check_matches_the_model(fw, m, 3e-2)
    assert not FusedWeights(random_model(torch.float32))._onednn_rows(1)  # fp32 keeps mm at one row


def check_matches_the_model(fw: FusedWeights, m: GPT, tol: float) -> None:
    dtype = fw.embed.dtype
    idx = torch.randint(0, 97, (3, 20))
    with torch.inference_mode():
        # Whole sequences, and only the last 2 positions through the head.
        assert torch.allclose(fw.forward(idx).float(), m(idx).float(), atol=tol, rtol=0)
        assert torch.allclose(fw.forward(idx, logits_to_keep=2).float(), m(idx, logits_to_keep=2).float(), atol=tol,
                              rtol=0)
        # Left-padded prefill with per-row positions and a mask, then cached decode steps: the engine's calls.
        pad = torch.tensor([[0], [5], [11]])
        pos = (torch.arange(20).unsqueeze(0) - pad).clamp(min=0)  # (3, 20)
        key_ok = (torch.arange(20).unsqueeze(0) >= pad).unsqueeze(1)  # (3, 1, 20): not onto padding
        causal, eye = torch.ones(20, 20, dtype=torch.bool).tril(), torch.eye(20, dtype=torch.bool)
        mask = ((causal & key_ok) | eye).unsqueeze(1)  # (3, 1, 20, 20)
        dec_mask = torch.cat([key_ok, torch.ones(3, 1, 3, dtype=torch.bool)], dim=2).unsqueeze(1)  # (3,1,1,23)
        caches = [KVCache(m.config, 3, 30, "cpu", dtype) for _ in range(2)]
        outs = [f(idx, positions=pos, kv_cache=c, attn_mask=mask) for f, c in zip((fw.forward, m), caches)]
        assert torch.allclose(outs[0], outs[1], atol=tol, rtol=0)
        for step in range(3):
            tok = torch.randint(0, 97, (3, 1))
            p = pos[:, -1:] + 1 + step
            mk = dec_mask[..., : 21 + step]
            a, b = (f(tok, positions=p, kv_cache=c, attn_mask=mk) for f, c in zip((fw.forward, m), caches))
            assert torch.allclose(a, b, atol=tol, rtol=0)
        assert caches[0].length == caches[1].length == 23
        assert torch.allclose(caches[0].k, caches[1].k, atol=tol, rtol=0)
        assert torch.allclose(caches[0].v, caches[1].v, atol=tol, rtol=0)


def test_engine_fused_and_unfused_agree_and_see_weight_updates():
    m = random_model(torch.float64, seed=1)
    with torch.no_grad():  # peaked distributions: no near-ties for rounding to flip
        for p in m.parameters():
            if p.dim() == 2:
                p.mul_(6.0)
    fused, plain = Engine(m), Engine(m, fused=False)
    prompts = [[1, 2, 3], [7] * 9, [50, 4]]
    params = SamplingParams(temperature=0, max_new_tokens=12, ignore_eos=True)

    def greedy(engine):
        return [o.samples[0].token_ids for o in engine.generate(prompts, params)]

    before = greedy(fused)
    assert before == greedy(plain)
    built = fused._fused_weights
    assert greedy(fused) == before and fused._fused_weights is built  # unchanged weights: no rebuild
    # An optimizer-style in-place update must be seen by the next generation (RL generates with the policy).
    with torch.no_grad():
        m.layers[0].mlp.down_proj.weight.mul_(-1.0)
        m.norm.weight.add_(0.5)
    after = greedy(fused)
    assert fused._fused_weights is not built
    assert after == greedy(plain) and after != before


def test_engine_runs_batched_steps_eager_where_onednn_takes_the_matmuls(monkeypatch):
    """With compile on, a step goes to the compiled decoder unless oneDNN would take most of its matmul work
    (a large model's batch); then the eager fused forward runs it."""
    monkeypatch.setattr(fused, "ONEDNN_MIN_ELEMENTS", 1)  # every matrix counts as large
    m = random_model(torch.float32)
    engine = Engine(m)
    engine.forward_fn()
    usable = fused.onednn_usable(torch.zeros(1))
    assert engine._fused_weights.onednn_share(16) == (1.0 if usable else 0.0)
    assert engine._fused_weights.onednn_share(fused.ONEDNN_MIN_ROWS - 1) == 0.0
    assert engine.compiled_step_pays(1) and engine.compiled_step_pays(16) != usable
    params = SamplingParams(temperature=0, max_new_tokens=4, ignore_eos=True)
    for prompts in ([[1, 2, 3]], [[1, 2, 3], [4, 5], [6], [7, 8, 9]]):
        calls = []
        gen = engine.start(prompts, params)
        fw = engine._fused_weights

        def compiled_stand_in(last, pos, pad, cache):  # what the compiled step returns, counted
            calls.append(len(last))
            return fw.forward(last, positions=pos, kv_cache=cache)[:, -1]

        gen.decode = compiled_stand_in
        while not gen.done:
            gen.step()
        assert calls == ([] if len(prompts) >= fused.ONEDNN_MIN_ROWS and usable else [len(prompts)] * 3)



@pytest.mark.parametrize("threads", [2, 3])
def test_column_blocks_on_several_threads_match_the_model(monkeypatch, threads):
    # Every product of a few rows as column blocks, one per thread (by default only large matrices' products,
    # below oneDNN's row count): decode steps, prefills and heads all take them where the columns divide.
    monkeypatch.setattr(fused, "SPLIT_MIN_ELEMENTS", 1)
    monkeypatch.setattr(fused, "ONEDNN_MIN_ROWS", 0)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        m = random_model(torch.float32)
        fw = FusedWeights(m)
        check_matches_the_model(fw, m, 2e-5)
        layers, head = fw.packed(1)
        how = [p for ws in layers for p in ws] + [head]
        assert [p is not None for p in how] == [w.shape[1] % threads == 0 for w in fw.matrices()]
        assert threads in how and set(how) <= {None, threads}
    finally:
        torch.set_num_threads(before)
    assert fw.packed(1)[1] is None  # one thread: mm again


def test_one_row_products_on_openblas_match_the_model_and_leave_its_threads_alone(monkeypatch):
    # One torch thread, one row, every matrix through numpy's OpenBLAS (by default: large float32 matrices on
    # CPUs where MKL runs AVX2 code): decode steps equal the model's, and OpenBLAS gets its thread count back.
    lib = _numpy_openblas()
    if lib is None:
        pytest.skip("numpy here does not use OpenBLAS")
    monkeypatch.setattr(fused, "_openblas", lambda: lib)
    monkeypatch.setattr(fused, "SPLIT_MIN_ELEMENTS", 1)
    monkeypatch.setattr(fused, "ONEDNN_MIN_ROWS", 0)
    before, blas_before = torch.get_num_threads(), lib.get_num_threads()
    torch.set_num_threads(1)
    lib.set_num_threads(2)
    seen = []
    monkeypatch.setattr(fused.torch, "from_numpy", lambda a: seen.append(lib.get_num_threads()) or torch.as_tensor(a))
    try:
        m = random_model(torch.float32)
        fw = FusedWeights(m)
        assert fw.packed(1)[1] is None  # not while autograd records (numpy cannot take such tensors)
        caches = [KVCache(m.config, 1, 12, "cpu", torch.float32) for _ in range(2)]
        with torch.inference_mode():
            layers, head = fw.packed(1)
            assert head is fused.BLAS and all(p is fused.BLAS for ws in layers for p in ws)
            assert fw.eager_share(1) == 1.0  # so a compiling engine runs these steps eager
            tok = torch.randint(0, 97, (1, 1))
            for _ in range(6):
                a, b = (f(tok, kv_cache=c) for f, c in zip((fw.forward, m), caches))
                assert torch.allclose(a, b, atol=2e-5, rtol=0)
                tok = a[:, -1].argmax(-1, keepdim=True)
        assert seen and set(seen) == {1}  # held to one thread while multiplying
        assert lib.get_num_threads() == 2  # and given its own count back
    finally:
        torch.set_num_threads(before)
        lib.set_num_threads(blas_before)


def _numpy_openblas():
    import numpy  # noqa: F401
    from threadpoolctl import ThreadpoolController

    libs = [c for c in ThreadpoolController().lib_controllers if c.internal_api == "openblas"]
    return libs[0] if libs else None

