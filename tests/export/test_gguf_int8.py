"""GGUF straight to int8 linear layers (``export.gguf_import.load_gguf_int8``): Q8_0 blocks rescaled to one
scale per row within half a step of llama.cpp's values, an f32 file giving exactly ``int8.convert``'s layers,
and logits near the dequantized import's.

    OMP_NUM_THREADS=1 .venv/bin/pytest tests/export/test_gguf_int8.py -q
"""

from __future__ import annotations

import pytest

from .conftest import make_run

torch = pytest.importorskip("torch")
gguf = pytest.importorskip("gguf")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from llmlab.export.gguf import export_gguf

    d = tmp_path_factory.mktemp("gguf_int8")
    model, _ = make_run(d / "run", tie=True, ffn_hidden=128)  # widths multiples of 32 (Q8_0 blocks)
    for dtype in ("f32", "q8_0"):
        export_gguf(d / "run", d / f"{dtype}.gguf", dtype)
    return d, model


def int8_layers(model):
    from llmlab.model.kernels.int8 import Int8Linear

    return {n: m for n, m in model.named_modules() if isinstance(m, Int8Linear)}


def test_f32_file_gives_convert_exactly(files):
    import copy

    from llmlab.export.gguf_import import load_gguf_int8
    from llmlab.model.kernels import int8

    d, model = files
    got, _ = load_gguf_int8(d / "f32.gguf")
    want = int8.convert(copy.deepcopy(model))
    a, b = int8_layers(got), int8_layers(want)
    assert set(a) == set(b) and len(a) == 2 * 7 + 1
    for n in a:
        assert torch.equal(a[n].qweight, b[n].qweight) and torch.equal(a[n].scale, b[n].scale), n
    idx = torch.randint(0, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(got(idx), want(idx), atol=1e-5)


def test_q8_0_file_within_half_a_step(files):
    """Each int8 row is within half its step of the Q8_0 values llama.cpp computes with (the dequantized
    import), and the logits stay within 5% (rel. RMS) of that import's."""
    from llmlab.export.gguf_import import load_gguf_int8, read_gguf
    from llmlab.runs import model_from_state_dict

    d, _ = files
    got, _ = load_gguf_int8(d / "q8_0.gguf")
    config, sd, _ = read_gguf(d / "q8_0.gguf")
    ref = model_from_state_dict(config, sd, "q8_0").eval()
    refs = dict(ref.named_modules())
    worst = 0.0
    for n, m in int8_layers(got).items():
        w = refs[n].weight if n != "lm_head" else ref.embed_tokens.weight
        err = (m.qweight.float() * m.scale[:, None] - w).abs()
        assert (err <= m.scale[:, None] / 2 + 1e-6).all(), n
        worst = max(worst, ((err.norm() / w.norm()).item()))
    assert 0 < worst < 0.01
    idx = torch.randint(0, config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = got(idx), ref(idx)
    assert ((a - b).norm() / b.norm()).item() < 0.05
