"""The CPU kernels (model/kernels/cpu.py) against the plain model (model/gpt.py): each hand-written function
against its formula, and a converted model against the plain one, forward and backward, in float32 and under
bf16 autocast.

    .venv/bin/pytest tests/model/test_kernels.py -q
"""

import copy

import pytest
import torch

from llmlab.model import gpt
from llmlab.model.gpt import GPT, KVCache, ModelConfig
from llmlab.model.kernels import convert, cpu, onednn


def _plain_rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def _plain_rope(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


def _rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


# ----------------------------------------------------------------------------------------------------------
# Each kernel against its formula


def test_rms_norm_backward_equals_the_plain_formula_in_float64():
    torch.manual_seed(0)
    norm = cpu.CPURMSNorm(24, 1e-5).double()
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
    torch.manual_seed(0)
    B, T, H, hd = 2, 9, 3, 8
    cos, sin = (t.double() for t in gpt.rope_tables(hd, 32, 10000.0))
    pos = torch.stack([torch.arange(T), torch.arange(T) + 5]) if per_row_positions else torch.arange(T)[None]
    c, s = cos[pos].unsqueeze(1), sin[pos].unsqueeze(1)  # (B or 1, 1, T, hd)
    base = torch.randn(B, T, H * hd, dtype=torch.float64, requires_grad=True)
    x = base.view(B, T, H, hd).transpose(1, 2)  # (B, H, T, hd), not contiguous: as the attention passes it
    y = cpu.apply_rope(x, c, s)
    assert type(y.grad_fn).__name__ == "_RopeFnBackward"
    g = torch.randn_like(y)
    (gx,) = torch.autograd.grad(y, base, g)
    ref = _plain_rope(x, c, s)
    (rx,) = torch.autograd.grad(ref, base, g)
    torch.testing.assert_close(y, ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(gx, rx, atol=1e-12, rtol=0)
    with torch.no_grad():  # inference takes the plain formula: same numbers
        torch.testing.assert_close(cpu.apply_rope(x, c, s), ref, atol=1e-12, rtol=0)
        torch.testing.assert_close(gpt.apply_rope(x, c, s), ref, atol=1e-12, rtol=0)


def test_rope_under_bf16_autocast_rounds_once():
    # Autocast's matmuls hand RoPE bf16 q/k and float32 cos/sin. The plain formula promotes to float32 and
    # rounds once; the hand-written function converts x to float32 and rounds once too: the same numbers.
    # Its backward also rounds once (autograd on the plain formula rounds each of the two terms to bf16 and
    # adds them in bf16), so it is within half a bf16 step (2^-8 relative) of the exact gradient.
    torch.manual_seed(0)
    B, T, H, hd = 2, 9, 3, 8
    cos, sin = gpt.rope_tables(hd, 32, 10000.0)
    c, s = cos[:T][None, None], sin[:T][None, None]  # (1, 1, T, hd) float32
    base = torch.randn(B, T, H * hd).bfloat16().requires_grad_()
    x = base.view(B, T, H, hd).transpose(1, 2)  # (B, H, T, hd) bf16, strided
    y = cpu.apply_rope(x, c, s)
    assert type(y.grad_fn).__name__ == "_RopeFnBackward" and y.dtype == torch.bfloat16
    torch.testing.assert_close(y, _plain_rope(x, c, s).to(torch.bfloat16), atol=0, rtol=0)
    torch.testing.assert_close(y, gpt.apply_rope(x, c, s), atol=0, rtol=0)
    g = torch.randn(y.shape).bfloat16()
    (gx,) = torch.autograd.grad(y, base, g)
    x64 = base.detach().double().requires_grad_()
    ref = _plain_rope(x64.view(B, T, H, hd).transpose(1, 2), c.double(), s.double())
    (rx,) = torch.autograd.grad(ref, x64, g.double())
    assert gx.dtype == torch.bfloat16
    assert ((gx.double() - rx).abs() <= rx.abs() * 2**-8 + 1e-6).all()


def test_bf16_autocast_training_runs_attention_in_float32_and_matches_float64(monkeypatch, tiny_twins):
    monkeypatch.setattr(cpu, "_CPU_HAS_AMX", False)  # the rule under test (on AMX CPUs bf16 attention stays)
    seen = []
    real_attend = gpt.attend
    monkeypatch.setattr(gpt, "attend", lambda q, k, v, *a: seen.append((q.dtype, k.dtype, v.dtype)) or
                        real_attend(q, k, v, *a))
    ref, m, idx, tgt = tiny_twins
    convert(m, "cpu")
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


# ----------------------------------------------------------------------------------------------------------
# A converted model against the plain one


def _twins(**kw):
    """(float64 reference, plain float32, converted float32) with the same weights, and a batch."""
    torch.manual_seed(0)
    ref = GPT(ModelConfig.preset("tiny", vocab_size=97, **kw)).double()
    plain = GPT(ModelConfig.preset("tiny", vocab_size=97, **kw))
    plain.load_state_dict(ref.state_dict())
    fast = convert(copy.deepcopy(plain), "cpu")
    idx = torch.randint(0, 97, (3, 40))
    tgt = torch.roll(idx, -1, 1)
    tgt[:, -1] = -1
    return ref, plain, fast, idx, tgt


def _loss_and_grads(model, idx, tgt, autocast: bool):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = model(idx, targets=tgt)
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("bf16, kw", [(False, dict(n_kv_head=2)), (False, dict(n_kv_head=4, tie_embeddings=False)),
                                      (True, dict(n_kv_head=2))])
def test_converted_model_trains_like_the_plain_one(monkeypatch, bf16, kw):
    # float32: the same arithmetic up to the order of sums (oneDNN's products, where this torch has them).
    # bf16 autocast: both round their matmuls to bf16 and the converted one runs attention in float32 (no AMX),
    # so each is within bf16's error of the float64 reference, and so of the other.
    monkeypatch.setattr(onednn, "enabled", onednn.AVAILABLE)
    monkeypatch.setattr(cpu, "_CPU_HAS_AMX", False)
    loss_tol, grad_tol = (1e-2, 3e-2) if bf16 else (1e-6, 1e-5)
    ref, plain, fast, idx, tgt = _twins(**kw)
    assert type(fast.layers[0].input_layernorm) is cpu.CPURMSNorm
    assert type(fast.layers[0].self_attn) is cpu.CPUAttention
    assert fast.state_dict().keys() == plain.state_dict().keys()
    assert (fast.lm_head.weight is fast.embed_tokens.weight) == fast.config.tie_embeddings
    r, rg = _loss_and_grads(ref, idx, tgt, False)
    p, pg = _loss_and_grads(plain, idx, tgt, bf16)
    f, fg = _loss_and_grads(fast, idx, tgt, bf16)
    assert abs(f - r) < loss_tol * r and abs(p - r) < loss_tol * r
    for name in rg:
        assert _rel(fg[name], rg[name]) < grad_tol, name
        assert _rel(pg[name], rg[name]) < grad_tol, name
        assert _rel(fg[name], pg[name]) < 2 * grad_tol, name
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # inference: logits alike
        torch.testing.assert_close(fast(idx).float(), plain(idx).float(), atol=10 * grad_tol, rtol=10 * grad_tol)


def test_the_converted_layers_take_their_fast_paths_only_in_cpu_training():
    _, plain, fast, idx, tgt = _twins(n_kv_head=2)
    norm = fast.layers[0].input_layernorm
    x = fast.embed_tokens(idx)
    assert type(norm(x).grad_fn).__name__ == "_RMSNormFnBackward"
    with torch.no_grad():
        assert norm(x).grad_fn is None
        torch.testing.assert_close(norm(x), plain.layers[0].input_layernorm(x), atol=0, rtol=0)
    # A training step's graph holds the hand-written backward functions; the plain model's holds autograd's.
    assert {"_RopeFnBackward", "_RMSNormFnBackward"} <= _backward_names(fast(idx, targets=tgt))
    assert not {"_RopeFnBackward", "_RMSNormFnBackward"} & _backward_names(plain(idx, targets=tgt))


def _backward_names(loss) -> set[str]:
    """The class names of every node in ``loss``'s autograd graph."""
    names, todo, seen = set(), [loss.grad_fn], set()
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.add(type(fn).__name__)
        todo.extend(nxt for nxt, _ in fn.next_functions)
    return names


def test_convert_is_in_place_idempotent_and_survives_a_copy():
    model = GPT(ModelConfig.preset("tiny", vocab_size=97))
    params = [id(p) for p in model.parameters()]
    assert convert(model, "cpu") is model and [id(p) for p in model.parameters()] == params
    kinds = [type(m) for m in model.modules()]
    convert(model, "cpu")
    assert [type(m) for m in model.modules()] == kinds
    assert [type(m) for m in copy.deepcopy(model).modules()] == kinds
    other = GPT(ModelConfig.preset("tiny", vocab_size=97))
    convert(other, "meta")  # no kernels for this device: the plain layers stay
    assert type(other.layers[0].self_attn) is gpt.Attention


def test_a_reward_models_backbone_is_converted_and_its_head_is_not():
    from llmlab.model.heads import ScalarHeadModel

    rm = ScalarHeadModel(GPT(ModelConfig.preset("tiny", vocab_size=97)))
    convert(rm, "cpu")
    assert type(rm.backbone.layers[0].self_attn) is cpu.CPUAttention
    assert type(rm.head) is torch.nn.Linear  # a biased head keeps the plain layer
