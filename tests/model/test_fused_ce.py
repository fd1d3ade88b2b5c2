"""The chunked output head + cross-entropy (model/fused_ce.py) equals head + F.cross_entropy: loss and gradients.

    .venv/bin/pytest tests/model/test_fused_ce.py -q
"""

import pytest
import torch
import torch.nn.functional as F

from llmlab.model.fused_ce import linear_cross_entropy
from llmlab.model.gpt import GPT, ModelConfig


@pytest.mark.parametrize("chunk_rows", [1, 8, 37, 1024])  # 37 rows: chunks that do and don't divide N
def test_loss_and_gradients_equal_the_reference_in_float64(chunk_rows):
    torch.manual_seed(0)
    h = torch.randn(37, 16, dtype=torch.float64, requires_grad=True)
    w = torch.randn(50, 16, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 50, (37,))
    t[[0, 10, 36]] = -1  # not scored
    ref = F.cross_entropy(h @ w.t(), t, ignore_index=-1)
    gh, gw = torch.autograd.grad(ref * 2.5, (h, w))  # a non-unit upstream gradient
    out = linear_cross_entropy(h, w, t, chunk_rows=chunk_rows)
    fh, fw = torch.autograd.grad(out * 2.5, (h, w))
    assert torch.allclose(out, ref, atol=1e-13, rtol=0)
    assert torch.allclose(fh, gh, atol=1e-13, rtol=0) and torch.allclose(fw, gw, atol=1e-13, rtol=0)
    assert fh[[0, 10, 36]].abs().max() == 0  # ignored rows get no gradient


def test_a_retained_graph_gives_the_same_gradients_twice():
    # The backward hands out its stored gradients when the upstream gradient is 1: a second backward through a
    # retained graph must still see them unchanged.
    torch.manual_seed(0)
    h = torch.randn(20, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(30, 8, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 30, (20,))
    loss = linear_cross_entropy(h, w, t, chunk_rows=8)
    loss.backward(retain_graph=True)
    gh, gw = h.grad.clone(), w.grad.clone()
    loss.backward()
    assert torch.equal(h.grad, 2 * gh) and torch.equal(w.grad, 2 * gw)
    ref = F.cross_entropy(h @ w.t(), t)
    rh, rw = torch.autograd.grad(ref, (h, w))
    assert torch.allclose(gh, rh, atol=1e-13, rtol=0) and torch.allclose(gw, rw, atol=1e-13, rtol=0)


def test_no_grad_gives_the_loss_alone_and_all_ignored_gives_zero():
    h, w = torch.randn(5, 4), torch.randn(7, 4)
    t = torch.tensor([1, 2, 3, -1, 6])
    with torch.no_grad():
        assert torch.allclose(linear_cross_entropy(h, w, t), F.cross_entropy(h @ w.t(), t, ignore_index=-1))
    assert linear_cross_entropy(h, w, torch.full((5,), -1)).item() == 0.0


def test_gpt_forward_with_targets_is_the_mean_next_token_loss():
    torch.manual_seed(0)
    for tie in (True, False):
        m = GPT(ModelConfig.preset("tiny", vocab_size=97, tie_embeddings=tie)).double()
        x = torch.randint(0, 97, (3, 20))
        y = torch.roll(x, -1, 1)
        y[:, -1] = -1
        ref = F.cross_entropy(m(x).flatten(0, 1), y.flatten(), ignore_index=-1)
        ref_grads = torch.autograd.grad(ref, list(m.parameters()))
        loss = m(x, targets=y)
        grads = torch.autograd.grad(loss, list(m.parameters()))
        assert torch.allclose(loss, ref, atol=1e-12, rtol=0)
        assert all(torch.allclose(a, b, atol=1e-12, rtol=0) for a, b in zip(grads, ref_grads))


def test_bf16_autocast_runs_the_matmuls_in_bf16_and_stays_close():
    torch.manual_seed(0)
    h = torch.randn(64, 32, requires_grad=True)
    w = torch.randn(300, 32, requires_grad=True)
    t = torch.randint(0, 300, (64,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = F.cross_entropy((h @ w.t()).float(), t)
        out = linear_cross_entropy(h, w, t, chunk_rows=16)
    gh, gw = torch.autograd.grad(out, (h, w))
    assert gh.dtype == h.dtype and gw.dtype == w.dtype  # gradients come back in the parameters' dtypes
    assert abs(out.item() - ref.item()) < 2e-2


def test_cpu_bf16_autocast_gradients_match_the_float64_reference():
    torch.manual_seed(0)
    h = torch.randn(300, 64, requires_grad=True)  # 3 chunks of 128 rows, the last partial
    w = torch.randn(500, 64, requires_grad=True)
    t = torch.randint(0, 500, (300,))
    t[::7] = -1
    ref = F.cross_entropy(h.double() @ w.double().t(), t, ignore_index=-1)
    gh, gw = torch.autograd.grad(ref, (h, w))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = linear_cross_entropy(h, w, t, chunk_rows=128)
    fh, fw = torch.autograd.grad(out, (h, w))
    assert out.dtype == torch.float32 and fh.dtype == torch.float32 and fw.dtype == torch.float32
    assert abs(out.item() - ref.item()) < 2e-2 * ref.item()  # bf16 matmul inputs: ~3 significant digits
    assert (fh.double() - gh).norm() / gh.norm() < 2e-2 and (fw.double() - gw).norm() / gw.norm() < 2e-2
    assert fh[::7].abs().max() == 0


@pytest.mark.gpu
def test_cuda_bf16_autocast_matches_the_float64_reference():
    torch.manual_seed(0)
    h = torch.randn(3000, 64, device="cuda", requires_grad=True)  # 3 chunks of 1024 rows, the last partial
    w = torch.randn(500, 64, device="cuda", requires_grad=True)
    t = torch.randint(0, 500, (3000,), device="cuda")
    t[::7] = -1
    ref = F.cross_entropy(h.double() @ w.double().t(), t, ignore_index=-1)
    gh, gw = torch.autograd.grad(ref, (h, w))
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = linear_cross_entropy(h, w, t)
    fh, fw = torch.autograd.grad(out, (h, w))
    assert out.dtype == torch.float32 and fh.dtype == torch.float32 and fw.dtype == torch.float32
    assert abs(out.item() - ref.item()) < 2e-2 * ref.item()  # bf16 matmul inputs: ~3 significant digits
    assert (fh.double() - gh).norm() / gh.norm() < 2e-2 and (fw.double() - gw).norm() / gw.norm() < 2e-2
