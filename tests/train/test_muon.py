"""Our Muon (train/muon.py) is torch.optim.Muon's algorithm, with the Newton-Schulz dtype chosen per device.

    .venv/bin/pytest tests/train/test_muon.py -q
"""

import pytest
import torch

from llmlab.train.muon import Muon, newton_schulz


def _run(opt_cls, steps=4, **kw):
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(12, 5)), torch.nn.Parameter(torch.randn(4, 9))]  # tall and wide
    opt = opt_cls(params, lr=0.02, weight_decay=0.1, momentum=0.95, **kw)
    for i in range(steps):
        for j, p in enumerate(params):
            p.grad = torch.sin(p * (i + 1) + j)  # a deterministic, step-dependent gradient
        opt.step()
    return [p.detach().clone() for p in params], opt


def test_bfloat16_iteration_equals_torch_muon_exactly():
    ours, _ = _run(Muon, ns_dtype="bfloat16")
    ref, _ = _run(torch.optim.Muon)
    for a, b in zip(ours, ref):
        assert torch.equal(a, b)


def test_float32_iteration_is_the_same_update_more_precisely():
    ours, _ = _run(Muon, ns_dtype="float32")
    ref, _ = _run(torch.optim.Muon)
    for a, b in zip(ours, ref):
        assert not torch.equal(a, b)  # a different dtype really ran
        torch.testing.assert_close(a, b, atol=2e-3, rtol=0)  # bf16 has ~3 significant digits
    g = torch.randn(16, 40, dtype=torch.float64)
    s = torch.linalg.svdvals(newton_schulz(g, dtype=torch.float32).double())
    assert 0.5 < s.min() and s.max() < 1.5  # orthogonalised: singular values near one
    assert torch.linalg.svdvals(g).max() / torch.linalg.svdvals(g).min() > 2  # and G itself was not


def test_state_dict_round_trip_and_torch_checkpoints_load():
    _, ours = _run(Muon, ns_dtype="float32")
    _, ref = _run(torch.optim.Muon)
    params = [p for g in ours.param_groups for p in g["params"]]
    fresh = Muon(params, lr=0.02)
    fresh.load_state_dict(ref.state_dict())  # a checkpoint written by torch.optim.Muon
    fresh.step()  # groups without ns_dtype run with "auto"
    assert all("momentum_buffer" in fresh.state[p] for p in params)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="2-D"):
        Muon([torch.nn.Parameter(torch.randn(3))])
    with pytest.raises(ValueError, match="ns_dtype"):
        Muon([torch.nn.Parameter(torch.randn(3, 3))], ns_dtype="float16")
