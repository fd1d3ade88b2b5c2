"""The model: shapes, causality, KV cache == full forward, GQA, presets, accounting.

    .venv/bin/pytest tests/model -q
"""

import math

import pytest
import torch

from llmlab.errors import LlmlabError
from llmlab.model.gpt import GPT, KVCache, ModelConfig, document_causal_mask


def tiny(**kw):
    torch.manual_seed(0)
    return GPT(ModelConfig.preset("tiny", vocab_size=97, **kw)).eval()


def test_shapes_and_param_count():
    m = tiny()
    idx = torch.randint(0, 97, (3, 17))
    assert m(idx).shape == (3, 17, 97)
    c = m.config
    per_layer = 2 * c.d_model + c.d_model * c.d_model * 2 + 2 * c.d_model * c.n_kv_head * c.head_dim + 3 * c.d_model * c.ffn_hidden
    assert m.num_params() == 97 * c.d_model + c.n_layer * per_layer + c.d_model  # tied head counted once
    assert m.flops_per_token(16) == 6 * m.num_params() + 12 * c.n_layer * c.d_model * 16


def test_causality_future_tokens_do_not_change_past_logits():
    m = tiny()
    idx = torch.randint(0, 97, (2, 20))
    changed = idx.clone()
    changed[:, 12:] = torch.randint(0, 97, (2, 8))
    a, b = m(idx), m(changed)
    torch.testing.assert_close(a[:, :12], b[:, :12])
    assert not torch.allclose(a[:, 12:], b[:, 12:])


def test_kv_cache_forward_equals_full_forward():
    m = tiny()
    idx = torch.randint(0, 97, (2, 24))
    full = m(idx)
    cache = KVCache(m.config, 2, 24, "cpu")
    parts = [m(idx[:, :10], kv_cache=cache), m(idx[:, 10:17], kv_cache=cache)]
    parts += [m(idx[:, t : t + 1], kv_cache=cache) for t in range(17, 24)]  # one token at a time
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 24


def test_gqa_matches_explicitly_repeated_kv_heads():
    """n_kv_head=2 < n_head=4 equals a full multi-head model whose k/v weights repeat each kv head."""
    gqa = tiny()
    assert gqa.config.n_kv_head == 2 and gqa.config.n_head == 4
    mha = GPT(ModelConfig.preset("tiny", vocab_size=97, n_kv_head=4)).eval()
    sd = gqa.state_dict()
    hd, rep = gqa.config.head_dim, 2
    for k in list(sd):
        if k.endswith(("k_proj.weight", "v_proj.weight")):
            w = sd[k].view(2, hd, -1)  # (kv_heads, hd, d_model)
            sd[k] = w.repeat_interleave(rep, dim=0).reshape(4 * hd, -1)
    mha.load_state_dict(sd)
    idx = torch.randint(0, 97, (2, 15))
    torch.testing.assert_close(gqa(idx), mha(idx), atol=1e-5, rtol=1e-5)


def test_document_mask_isolates_packed_documents():
    m = tiny()
    a, b = torch.randint(0, 97, (1, 7)), torch.randint(0, 97, (1, 9))
    packed = torch.cat([a, b], dim=1)
    doc_ids = torch.tensor([[0] * 7 + [1] * 9])
    positions = torch.cat([torch.arange(7), torch.arange(9)]).unsqueeze(0)
    out = m(packed, positions=positions, attn_mask=document_causal_mask(doc_ids))
    torch.testing.assert_close(out[:, 7:], m(b), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[:, :7], m(a), atol=1e-5, rtol=1e-5)


def test_presets_and_errors():
    assert ModelConfig.preset("depth-6").d_model == 384
    for name in ModelConfig.PRESETS:
        ModelConfig.preset(name)
    with pytest.raises(LlmlabError, match="unknown model preset 'huge'"):
        ModelConfig.preset("huge")
    with pytest.raises(LlmlabError, match="n_kv_head"):
        ModelConfig(d_model=64, n_head=4, n_kv_head=3)


def test_initial_loss_is_near_uniform():
    m = tiny()
    idx, targets = torch.randint(0, 97, (4, 32)), torch.randint(0, 97, (4, 32))
    loss = torch.nn.functional.cross_entropy(m(idx).flatten(0, 1), targets.flatten())
    assert abs(loss.item() - math.log(97)) < 0.1


@pytest.fixture
def no_tf32():
    # TF32 off: the GPU then does float32 arithmetic, so only summation order differs from the CPU.
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.mark.gpu
def test_cuda_float32_forward_and_gradients_match_the_cpu_in_float64(no_tf32):
    cpu = GPT(ModelConfig.preset("tiny", vocab_size=97, n_kv_head=2)).double()
    gpu = GPT(ModelConfig.preset("tiny", vocab_size=97, n_kv_head=2)).cuda()
    gpu.load_state_dict(cpu.float().state_dict())
    cpu.double()
    idx = torch.randint(0, 97, (3, 40))
    tgt = torch.roll(idx, -1, 1)
    ref = cpu(idx, targets=tgt)
    ref.backward()
    out = gpu(idx.cuda(), targets=tgt.cuda())
    out.backward()
    assert abs(out.item() - ref.item()) < 1e-5 * abs(ref.item())
    for (name, p), q in zip(cpu.named_parameters(), gpu.parameters()):
        err = (q.grad.double().cpu() - p.grad).norm() / p.grad.norm()
        assert err < 1e-4, (name, err.item())
    # Logits and the KV-cache path too (the engine's decode uses it).
    torch.testing.assert_close(gpu(idx.cuda()).double().cpu(), cpu(idx), rtol=1e-4, atol=1e-4)


def _plain_rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def _plain_rope(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


def test_rms_norm_backward_equals_the_plain_formula_in_float64():
    from llmlab.model.gpt import RMSNorm

    torch.manual_seed(0)
    norm = RMSNorm(24, 1e-5).double()
    with torch.no_grad():
        norm.weight.normal_()
    x = torch.randn(3, 7, 24, dtype=torch.float64, requires_grad=True)
    y = norm(x)
    assert type(y.grad_fn).__name__ == "_RMSNormFnBackward"  # the hand-written backward is the one tested
    g = torch.randn_like(y)
    gx, gw = torch.autograd.grad(y, (x, norm.weight), g)
    ref = _plain_rms_norm(x, norm.weight, 1e-5)
    rx, rw = torch.autograd.grad(ref, (x, norm.weight), g)
    torch.testing.assert_close(y, ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(gx, rx, atol=1e-12, rtol=0)
    torch.testing.assert_close(gw, rw, atol=1e-12, rtol=0)


@pytest.mark.parametrize("per_row_positions", [False, True])
def test_rope_backward_equals_the_plain_formula_on_strided_inputs(per_row_positions):
    from llmlab.model.gpt import apply_rope, rope_tables

    torch.manual_seed(0)
    B, T, H, hd = 2, 9, 3, 8
    cos, sin = (t.double() for t in rope_tables(hd, 32, 10000.0))
    pos = torch.stack([torch.arange(T), torch.arange(T) + 5]) if per_row_positions else torch.arange(T)[None]
    c, s = cos[pos].unsqueeze(1), sin[pos].unsqueeze(1)  # (B or 1, 1, T, hd)
    base = torch.randn(B, T, H * hd, dtype=torch.float64, requires_grad=True)
    x = base.view(B, T, H, hd).transpose(1, 2)  # (B, H, T, hd), not contiguous: as the attention passes it
    y = apply_rope(x, c, s)
    assert type(y.grad_fn).__name__ == "_RopeFnBackward"
    g = torch.randn_like(y)
    (gx,) = torch.autograd.grad(y, base, g)
    ref = _plain_rope(x, c, s)
    (rx,) = torch.autograd.grad(ref, base, g)
    torch.testing.assert_close(y, ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(gx, rx, atol=1e-12, rtol=0)
    with torch.no_grad():  # inference takes the plain formula: same numbers
        torch.testing.assert_close(apply_rope(x, c, s), ref, atol=1e-12, rtol=0)


def test_rope_under_bf16_autocast_rounds_once():
    # Autocast's matmuls hand RoPE bf16 q/k and float32 cos/sin. The plain formula promotes to float32 and
    # rounds once; the hand-written function converts x to float32 and rounds once too: the same numbers.
    # Its backward also rounds once (autograd on the plain formula rounds each of the two terms to bf16 and
    # adds them in bf16), so it is within half a bf16 step (2^-8 relative) of the exact gradient.
    from llmlab.model.gpt import apply_rope, rope_tables

    torch.manual_seed(0)
    B, T, H, hd = 2, 9, 3, 8
    cos, sin = rope_tables(hd, 32, 10000.0)
    c, s = cos[:T][None, None], sin[:T][None, None]  # (1, 1, T, hd) float32
    base = torch.randn(B, T, H * hd).bfloat16().requires_grad_()
    x = base.view(B, T, H, hd).transpose(1, 2)  # (B, H, T, hd) bf16, strided
    y = apply_rope(x, c, s)
    assert type(y.grad_fn).__name__ == "_RopeFnBackward" and y.dtype == torch.bfloat16
    torch.testing.assert_close(y, _plain_rope(x, c, s).to(torch.bfloat16), atol=0, rtol=0)
    g = torch.randn(y.shape).bfloat16()
    (gx,) = torch.autograd.grad(y, base, g)
    x64 = base.detach().double().requires_grad_()
    ref = _plain_rope(x64.view(B, T, H, hd).transpose(1, 2), c.double(), s.double())
    (rx,) = torch.autograd.grad(ref, x64, g.double())
    assert gx.dtype == torch.bfloat16
    assert ((gx.double() - rx).abs() <= rx.abs() * 2**-8 + 1e-6).all()


def test_bf16_autocast_training_runs_attention_in_float32_and_matches_float64(monkeypatch, tiny_twins):
    import llmlab.model.gpt as gpt

    monkeypatch.setattr(gpt, "_CPU_HAS_AMX", False)  # the rule under test (on AMX CPUs bf16 attention stays)
    seen = []
    real_attend = gpt.attend
    monkeypatch.setattr(gpt, "attend", lambda q, k, v, *a: seen.append((q.dtype, k.dtype, v.dtype)) or
                        real_attend(q, k, v, *a))
    ref, m, idx, tgt = tiny_twins
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = m(idx, targets=tgt)
    loss.backward()
    assert seen and all(d == (torch.float32,) * 3 for d in seen)
    r = ref(idx, targets=tgt)
    r.backward()
    assert abs(loss.item() - r.item()) < 1e-2 * r.item()
    for (name, p), q in zip(ref.named_parameters(), m.parameters()):
        assert (q.grad.double() - p.grad).norm() / p.grad.norm() < 3e-2, name
    # With a KV cache (the engine) or without autocast, attention keeps its inputs' dtype.
    seen.clear()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        m(idx[:, :5], kv_cache=KVCache(m.config, 3, 8, "cpu", dtype=torch.bfloat16))
    assert seen and all(d[0] == torch.bfloat16 for d in seen)
