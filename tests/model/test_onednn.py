"""Float32 CPU training products on oneDNN (model/kernels/onednn.py) equal the plain ones: linear, head + loss,
model.

    .venv/bin/pytest tests/model/test_onednn.py -q
"""

import pytest
import torch
import torch.nn.functional as F

from llmlab.model.kernels import convert, onednn
from llmlab.model.fused_ce import linear_cross_entropy

pytestmark = pytest.mark.skipif(not onednn.AVAILABLE, reason="needs x86 and PyTorch's oneDNN")


@pytest.fixture(autouse=True)
def _onednn_on(monkeypatch):
    # The path is on by default only on AMD CPUs with AVX-512; these tests check it wherever it can run.
    monkeypatch.setattr(onednn, "enabled", True)


def _rel(a, b):
    return ((a.double() - b).norm() / b.norm()).item()


@pytest.mark.parametrize("d_out", [24, 56])  # the weight gradient copies dy.T or x.T, whichever is narrower
def test_linear_forward_and_gradients_equal_the_float64_product(d_out):
    torch.manual_seed(0)
    base = torch.randn(3, 12, 40, dtype=torch.float64)
    w64 = torch.randn(d_out, 40, dtype=torch.float64)
    g = torch.randn(3, 7, d_out, dtype=torch.float64)
    x = base[:, :7].float().requires_grad_()  # (3, 7, 40): leading dims are flattened for dw
    w = w64.float().requires_grad_()
    y = onednn.linear(x, w)
    assert type(y.grad_fn).__name__ == "_LinearFnBackward"  # the oneDNN path is the one tested
    gx, gw = torch.autograd.grad(y, (x, w), g.float())
    x64 = x.detach().double().requires_grad_()
    w64 = w.detach().double().requires_grad_()
    ref = F.linear(x64, w64)
    rx, rw = torch.autograd.grad(ref, (x64, w64), g)
    assert y.dtype == gx.dtype == gw.dtype == torch.float32 and gw.shape == (d_out, 40)
    assert _rel(y, ref) < 1e-6 and _rel(gx, rx) < 1e-6 and _rel(gw, rw) < 1e-6
    # Only one input needing a gradient: the other product is skipped.
    (gw_only,) = torch.autograd.grad(onednn.linear(x.detach(), w), (w,), g.float())
    torch.testing.assert_close(gw_only, gw, rtol=0, atol=0)


def test_linear_keeps_the_plain_path_outside_float32_training():
    x, w = torch.randn(5, 8, requires_grad=True), torch.randn(3, 8, requires_grad=True)
    with torch.no_grad():
        assert onednn.linear(x, w).grad_fn is None  # inference: MKL (few-row calls are faster there)
    assert type(onednn.linear(x.double(), w.double()).grad_fn).__name__ != "_LinearFnBackward"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = onednn.linear(x, w)
    assert y.dtype == torch.bfloat16  # autocast's own bf16 matmul


@pytest.mark.parametrize("chunk_rows", [8, 37, 1024])
def test_chunked_loss_on_onednn_equals_the_float64_reference(chunk_rows):
    torch.manual_seed(0)
    h64 = torch.randn(37, 16, dtype=torch.float64)
    w64 = torch.randn(50, 16, dtype=torch.float64)
    t = torch.randint(0, 50, (37,))
    t[[0, 10, 36]] = -1
    h, w = h64.float().requires_grad_(), w64.float().requires_grad_()
    out = linear_cross_entropy(h, w, t, chunk_rows=chunk_rows, products=onednn)
    fh, fw = torch.autograd.grad(out * 2.5, (h, w))
    h64.requires_grad_(), w64.requires_grad_()
    ref = F.cross_entropy(h64 @ w64.t(), t, ignore_index=-1)
    gh, gw = torch.autograd.grad(ref * 2.5, (h64, w64))
    assert abs(out.item() - ref.item()) < 1e-6 * ref.item()
    assert _rel(fh, gh) < 1e-5 and _rel(fw, gw) < 1e-5
    assert fh[[0, 10, 36]].abs().max() == 0


def test_onednn_path_is_the_one_the_chunked_loss_takes(monkeypatch):
    # A wrong product on the oneDNN path must change the result: proves the test above exercises it.
    h, w = torch.randn(9, 4, requires_grad=True), torch.randn(6, 4, requires_grad=True)
    t = torch.randint(0, 6, (9,))
    good = linear_cross_entropy(h, w, t, products=onednn)
    monkeypatch.setattr(onednn, "mm_t", lambda a, b: 2 * (a @ b.t()))
    assert not torch.allclose(linear_cross_entropy(h, w, t, products=onednn), good)
    torch.testing.assert_close(linear_cross_entropy(h, w, t), good)  # without the kernels: torch.mm


def test_model_training_step_on_onednn_matches_float64(tiny_twins):
    ref, m, idx, tgt = tiny_twins
    convert(m, "cpu")  # the CPU kernels, oneDNN's products among them
    tgt[:, -1] = -1
    loss = m(idx, targets=tgt)
    loss.backward()
    r = ref(idx, targets=tgt)
    r.backward()
    h = m.layers[0].input_layernorm(m.embed_tokens(idx))
    assert type(m.layers[0].self_attn.q_proj(h).grad_fn).__name__ == "_LinearFnBackward"
    assert abs(loss.item() - r.item()) < 1e-6 * r.item()
    for (name, p), q in zip(ref.named_parameters(), m.parameters()):
        assert _rel(q.grad, p.grad) < 1e-5, name


@pytest.mark.parametrize("vendor, flags, on", [("AuthenticAMD", {"avx2", "avx512f"}, True),
                                               ("AuthenticAMD", {"avx2"}, False),
                                               ("GenuineIntel", {"avx2", "avx512f"}, False), ("", set(), False)])
def test_default_is_on_only_where_mkl_takes_its_avx2_path(monkeypatch, vendor, flags, on):
    import llmlab.utils.device as device

    monkeypatch.setattr(device, "cpu_info", lambda: (vendor, frozenset(flags)))
    assert onednn.mkl_is_slow_here() is on


def test_no_grad_calls_take_onednn_from_min_rows(monkeypatch):
    # Many rows without autograd (evaluation, reference log-probs) go to oneDNN, few (decode) to MKL; both equal
    # the float64 product. A wrong oneDNN product shows which path ran.
    torch.manual_seed(0)
    w = torch.randn(24, 40)
    for rows in (onednn.MIN_ROWS_NO_GRAD - 1, onednn.MIN_ROWS_NO_GRAD):
        x = torch.randn(1, rows, 40)
        with torch.no_grad():
            y = onednn.linear(x, w)
        assert _rel(y, x.double() @ w.double().t()) < 1e-6
    monkeypatch.setattr(onednn, "mm_t", lambda a, b: 2 * (a @ b.t()))
    with torch.no_grad():
        few = onednn.linear(torch.ones(onednn.MIN_ROWS_NO_GRAD - 1, 40), w)
        many = onednn.linear(torch.ones(onednn.MIN_ROWS_NO_GRAD, 40), w)
    ref = torch.ones(1, 40) @ w.t()
    torch.testing.assert_close(few[:1], ref)
    torch.testing.assert_close(many[:1], 2 * ref)
