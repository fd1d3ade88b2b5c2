"""Scaling-law fits: recovery of known laws from synthetic runs, the CSV's errors, the CLI."""

import json
import math

import numpy as np
import pytest

from llmlab.cli import main
from llmlab.errors import LlmlabError
from llmlab.scaling.fit import fit_csv, fit_isoflop, fit_parametric, parametric_loss, parametric_optimum, read_runs

# Chinchilla's own fit (Hoffmann et al. 2022, approach 3) and a second law with different exponents.
LAWS = [dict(E=1.69, A=406.4, alpha=0.34, B=410.7, beta=0.28), dict(E=0.9, A=60.0, alpha=0.45, B=900.0, beta=0.40)]


def isoflop_design(law, budgets=(1e12, 3e12, 1e13, 3e13), factors=(0.25, 0.5, 1, 2, 4)):
    """Runs on IsoFLOP lines: at each budget, sizes spread in log around the law's own optimum, D = C / 6N."""
    rows = []
    for c in budgets:
        n0, _ = parametric_optimum(law, c)
        for f in factors:
            n = n0 * f
            d = c / (6 * n)
            rows.append((c, n, d, float(parametric_loss(n, d, **law))))
    return rows


def write_csv(path, rows, header="budget,params,tokens,val_bpb,depth"):
    lines = [header] + [f"{c:g},{n:.0f},{d:.0f},{l:.8f},{i}" for i, (c, n, d, l) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("law", LAWS)
def test_parametric_fit_recovers_a_known_law(law):
    rows = isoflop_design(law)
    n, d, l = (np.array([r[i] for r in rows]) for i in (1, 2, 3))
    fit = fit_parametric(n, d, l)
    assert fit["rmse_log"] < 1e-4
    for k in ("alpha", "beta"):
        assert fit[k] == pytest.approx(law[k], abs=0.01), k
    for k in ("E", "A", "B"):
        assert fit[k] == pytest.approx(law[k], rel=0.05), k


def test_parametric_fit_with_noise_stays_close():
    law = LAWS[0]
    rows = isoflop_design(law, budgets=(1e12, 3e12, 1e13, 3e13, 1e14))
    n, d, l = (np.array([r[i] for r in rows]) for i in (1, 2, 3))
    noisy = l * np.exp(np.random.default_rng(0).normal(0, 0.003, len(l)))  # 0.3% multiplicative noise
    fit = fit_parametric(n, d, noisy)
    # Exponents are the hard part with noise; the predicted loss at a 10x bigger budget must stay within 1%.
    n_big, d_big = parametric_optimum(law, 1e15)
    assert parametric_loss(n_big, d_big, **{k: fit[k] for k in law}) == pytest.approx(
        parametric_loss(n_big, d_big, **law), rel=0.01)
    assert fit["n_opt_exponent"] == pytest.approx(law["beta"] / (law["alpha"] + law["beta"]), abs=0.06)


@pytest.mark.parametrize("law", LAWS)
def test_isoflop_recovers_the_optimal_allocation(tmp_path, law):
    rows = isoflop_design(law)
    runs = read_runs(write_csv(tmp_path / "runs.csv", rows))
    iso = fit_isoflop(runs)
    assert [b["budget"] for b in iso["budgets"]] == [1e12, 3e12, 1e13, 3e13]
    a_true = law["beta"] / (law["alpha"] + law["beta"])
    assert iso["n_opt_power"]["exponent"] == pytest.approx(a_true, abs=0.02)
    assert iso["d_opt_power"]["exponent"] == pytest.approx(1 - a_true, abs=0.02)
    for b in iso["budgets"]:
        n_opt, d_opt = parametric_optimum(law, b["budget"])
        assert b["n_opt"] == pytest.approx(n_opt, rel=0.1)  # a parabola in log N is close, not exact
        assert b["d_opt"] * b["n_opt"] * 6 == pytest.approx(b["budget"], rel=1e-4)  # on the IsoFLOP line
        assert b["inside"]
    ratio_true = math.exp(np.mean([math.log(d / n) for n, d in (parametric_optimum(law, c) for c in
                                                              (1e12, 3e12, 1e13, 3e13))]))
    assert iso["tokens_per_param"] == pytest.approx(ratio_true, rel=0.15)


def test_budgets_without_a_budget_column_come_from_6nd(tmp_path):
    rows = isoflop_design(LAWS[0], budgets=(1e12, 1e13))
    path = tmp_path / "runs.csv"
    path.write_text("params,tokens,val_bpb\n" + "".join(f"{n:.0f},{d:.0f},{l}\n" for _, n, d, l in rows))
    runs = read_runs(path)
    assert runs.budget_source == "6ND"
    assert sorted(set(np.round(runs.budget, -9))) == pytest.approx([1e12, 1e13], rel=1e-3)


def test_bad_csvs_name_file_and_line(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("params,tokens,loss\n1,2,3\n")
    with pytest.raises(LlmlabError, match=r"a\.csv:1: missing column 'val_bpb'"):
        read_runs(p)
    p.write_text("params,tokens,val_bpb\n1000,2000,3.1\n1000,abc,3.0\n")
    with pytest.raises(LlmlabError, match=r"a\.csv:3: column 'tokens': 'abc' is not a number"):
        read_runs(p)
    p.write_text("params,tokens,val_bpb\n1000,2000,3.1\n\n1000,2000,-1\n")
    with pytest.raises(LlmlabError, match=r"a\.csv:4: column 'val_bpb': -1 must be a positive number"):
        read_runs(p)
    p.write_text("params,tokens,val_bpb\n" + "".join(f"{1000 * i},{2000 * i},{3 - 0.1 * i}\n" for i in range(1, 4)))
    with pytest.raises(LlmlabError, match=r"a\.csv:4: 3 runs; the parametric fit needs at least 6"):
        fit_csv(p)
    p.write_text("")
    with pytest.raises(LlmlabError, match=r"a\.csv:1: empty file"):
        read_runs(p)
    with pytest.raises(LlmlabError, match="file not found"):
        read_runs(tmp_path / "missing.csv")


@pytest.mark.slow
def test_cli_fit_prints_both_fits_and_draws(tmp_path, capsys):
    law = LAWS[0]
    path = write_csv(tmp_path / "sweep.csv", isoflop_design(law))
    assert main(["scaling", "fit", "--csv", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["parametric"]) >= {"E", "A", "alpha", "B", "beta"}
    assert out["parametric"]["alpha"] == pytest.approx(law["alpha"], abs=0.01)
    assert len(out["isoflop"]["budgets"]) == 4 and "tokens_per_param" in out["isoflop"]
    png = tmp_path / "sweep_fit.png"
    assert out["plot"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["scaling", "fit", "--csv", str(path), "--plot", ""]) == 0  # text, no picture
    text = capsys.readouterr().out
    assert text.startswith("parametric:") and "isoflop:" in text and "tokens per parameter" in text
    bad = tmp_path / "bad.csv"
    bad.write_text("params,val_bpb\n1,2\n")
    assert main(["scaling", "fit", "--csv", str(bad)]) == 2
    assert "bad.csv:1: missing column 'tokens'" in capsys.readouterr().err
