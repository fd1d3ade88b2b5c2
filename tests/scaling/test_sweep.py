"""The sweep: its plan, a tiny real sweep that resumes without rerunning, and a prediction made and checked."""

import csv
import json

import pytest

from llmlab.cli import main
from llmlab.errors import LlmlabError
from llmlab.scaling import sweep as sweep_mod
from llmlab.scaling.sweep import CSV_COLUMNS, SweepConfig, budget_label, count, model_config, plan, run_sweep


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def test_plan_trains_each_size_to_its_budget():
    cfg = SweepConfig.from_preset("cpu")
    specs = plan(cfg)
    assert [(s.budget, s.depth) for s in specs][:4] == [(5e11, 1), (5e11, 2), (5e11, 3), (5e11, 4)]
    assert len(specs) == 12
    for s in specs:
        assert s.tokens * s.flops_per_token == pytest.approx(s.budget, rel=1e-5)
        mcfg = model_config(cfg, s.depth)
        assert mcfg.d_model == 32 * s.depth and mcfg.n_layer == s.depth and mcfg.head_dim == 32
        assert s.params - s.params_non_embedding == cfg.vocab_size * mcfg.d_model  # tied: one table
    sizes = [s.params for s in specs[:4]]
    assert sizes == sorted(sizes)
    assert budget_label(1.5e12) == "1.5e12" and budget_label(5e11) == "5e11"


def test_plan_counts_match_a_built_model():
    import torch

    from llmlab.model.gpt import GPT

    cfg = SweepConfig.from_preset("cpu")
    mcfg = model_config(cfg, 2)
    n, n_ne, fpt = count(mcfg, cfg.seq_len)
    torch.manual_seed(0)
    model = GPT(mcfg)
    assert n == sum(p.numel() for p in model.parameters()) and fpt == model.flops_per_token(cfg.seq_len)


def test_bad_sweeps_are_refused(tmp_path):
    with pytest.raises(LlmlabError, match="only .* tokens"):
        plan(SweepConfig(budgets=(1e6,)))
    with pytest.raises(LlmlabError, match="unknown sweep preset"):
        SweepConfig.from_preset("tpu")
    with pytest.raises(LlmlabError, match="no training data"):
        plan(SweepConfig.from_preset("gpu"))


@pytest.fixture
def texts(tmp_path):
    """Small train and validation files (a slice of the bundled corpus): the sweep's cost is its runs."""
    from llmlab.data.corpus import split_documents

    train, val = tmp_path / "train.txt", tmp_path / "val.txt"
    train.write_text("".join(split_documents("train"))[:60000])
    val.write_text("".join(split_documents("val"))[:4000])
    return str(train), str(val)


def tiny_sweep(out, texts, **kw):
    base = dict(out=str(out), depths=(1, 2), budgets=(2.5e9, 5e9), aspect=16, head_dim=16, data=texts[0],
                val_data=texts[1], vocab_size=300, seq_len=32, batch_size=8, warmup_steps=2)
    base.update(kw)
    return SweepConfig.from_preset("cpu", **base)


@pytest.mark.slow
def test_a_tiny_sweep_resumes_fits_and_predicts(tmp_path, texts, monkeypatch, capsys):
    out = tmp_path / "sw"
    cfg = tiny_sweep(out, texts)
    path = run_sweep(cfg, progress=False)
    rows = list(csv.DictReader(open(path)))
    assert [(r["budget"], r["depth"]) for r in rows] == [("2.5e9", "1"), ("2.5e9", "2"), ("5e9", "1"), ("5e9", "2")]
    assert list(rows[0]) == CSV_COLUMNS
    for r in rows:
        assert int(r["tokens"]) >= float(r["budget"]) / float(r["flops_per_token"])  # trained to its budget
        assert int(r["params"]) > int(r["params_non_embedding"]) > 0 and 0 < float(r["val_bpb"]) < 9
    # A second call reruns nothing; adding a depth runs only the new rows.
    monkeypatch.setattr(sweep_mod, "train_run", lambda *a, **k: pytest.fail("a finished run was trained again"))
    run_sweep(cfg, progress=False)
    with pytest.raises(LlmlabError, match="other seq_len"):
        run_sweep(tiny_sweep(out, texts, seq_len=64), progress=False)
    monkeypatch.undo()
    run_sweep(tiny_sweep(out, texts, depths=(3,), budgets=(2.5e9,)), progress=False)
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == 5 and ("2.5e9", "3") in [(r["budget"], r["depth"]) for r in rows]
    assert json.loads((out / "sweep.json").read_text())["depths"] == [1, 2, 3]
    # The fit reads the sweep's own CSV: five runs are too few for five unknowns, six will do.
    assert main(["scaling", "fit", "--csv", str(path), "--plot", ""]) == 2
    assert "sweep.csv:6: 5 runs; the parametric fit needs at least 6" in capsys.readouterr().err
    run_sweep(tiny_sweep(out, texts, depths=(3,), budgets=(5e9,)), progress=False)
    assert main(["scaling", "fit", "--csv", str(path), "--json", "--plot", ""]) == 0
    fit = json.loads(capsys.readouterr().out)
    assert fit["runs"] == 6 and len(fit["isoflop"]["budgets"]) + len(fit["isoflop"]["skipped"]) == 2
    # Predict a bigger budget: recorded first, then run and compared.
    assert main(["scaling", "predict", "--out", str(out), "--budget", "1e10", "--no-run", "--json"]) == 0
    pred = json.loads(capsys.readouterr().out)
    assert pred["budget"] == 1e10 and pred["predicted_val_bpb"] > 0 and "val_bpb" not in pred
    assert pred["sweep_runs"] == 6 and pred["budget"] > pred["sweep_max_budget"]
    assert main(["scaling", "predict", "--out", str(out), "--budget", "1e10", "--depth", "3", "--json",
                 "--no-progress"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["depth"] == 3 and done["measured_tokens"] == done["tokens"]
    assert done["error"] == pytest.approx((done["predicted_val_bpb"] - done["val_bpb"]) / done["val_bpb"])
    assert json.loads((out / "prediction.json").read_text())["val_bpb"] == done["val_bpb"]
    assert (out / "fit.png").is_file()


def test_a_config_made_directly_names_its_preset():
    """The ``preset`` field is a plain string (a classmethod of the same name once shadowed its default)."""
    assert SweepConfig().preset == "cpu" and SweepConfig.from_preset("gpu").preset == "gpu"
