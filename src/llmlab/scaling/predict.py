"""Predict a bigger run than any in a sweep from the sweep's fits, then make that run and compare.

    llmlab scaling predict --out runs/scaling --budget 1.35e13              # predict, run, compare
    llmlab scaling predict --out runs/scaling --budget 1.35e13 --no-run     # the prediction only

    from llmlab.scaling.predict import predict_run
    report = predict_run(SweepConfig(...), budget=1.35e13)     # {"predicted_val_bpb", "val_bpb", "error", ...}

The run: the sweep's model family (``depth-N``, same width rule, data, tokenizer, validation text and training
settings) at ``budget`` FLOPs; its depth is the one whose parameter count is nearest (in log) the IsoFLOP power
law's N_opt(budget), unless ``depth`` is given. The prediction is the parametric law L(N, D) (approach 3)
fitted to the sweep's CSV, at the run's parameters and the tokens the loop will train (the horizon rounded up
to whole optimizer steps). It is written to ``OUT/prediction.json`` before training starts; the measured
validation bits per byte and the relative error are added when the run ends (``OUT/predict/<run>.json`` keeps
each predicted run's record; ``prediction.json`` is the latest).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from llmlab.errors import LlmlabError
from llmlab.scaling.fit import fit_csv, parametric_loss, power_law
from llmlab.scaling.sweep import RunSpec, SweepConfig, budget_label, count, model_config, train_run
from llmlab.utils.io import read_json, write_json

PREDICTION_FORMAT = "llmlab-scaling-prediction"


def spec_for(cfg: SweepConfig, budget: float, depth: int) -> RunSpec:
    mcfg = model_config(cfg, depth)
    n, n_ne, fpt = count(mcfg, cfg.seq_len)
    return RunSpec(budget, depth, mcfg.d_model, mcfg.n_head, n, n_ne, fpt, int(round(budget / fpt)),
                   name=f"C{budget_label(budget)}-d{depth}")


def choose_depth(cfg: SweepConfig, fit: dict, budget: float, max_depth: int = 64) -> int:
    """The depth whose parameter count is nearest (in log) N_opt(budget) from the IsoFLOP power law (or,
    without one, the parametric law's optimum)."""
    iso = fit["isoflop"]
    if "n_opt_power" in iso:
        n_opt = power_law(iso["n_opt_power"], budget)
    else:
        from llmlab.scaling.fit import parametric_optimum

        n_opt = parametric_optimum(fit["parametric"], budget)[0]
    best, err = 1, math.inf
    for depth in range(1, max_depth + 1):
        n = count(model_config(cfg, depth), cfg.seq_len)[0]
        if abs(math.log(n / n_opt)) < err:
            best, err = depth, abs(math.log(n / n_opt))
    return best


def predict_run(cfg: SweepConfig, budget: float, *, depth: int | None = None, run: bool = True,
                progress: bool | None = None, log=None) -> dict:
    """Fit the sweep's CSV, predict the run's val_bpb, record it, then (``run``) train it and compare."""
    log = log or (lambda msg: print(f"llmlab scaling predict: {msg}", file=sys.stderr, flush=True))
    out = Path(cfg.out)
    csv_path = out / "sweep.csv"
    if not csv_path.is_file():
        raise LlmlabError(f"{csv_path}: no sweep results (run `llmlab scaling sweep --out {out}` first)")
    sweep_json = out / "sweep.json"
    if sweep_json.is_file():  # the sweep's own settings win: the run must be of the same family
        from llmlab.utils.config import config_from_dict

        saved = {k: v for k, v in read_json(sweep_json, "sweep config").items() if k not in ("format", "version")}
        cfg = config_from_dict(SweepConfig, saved, source=str(sweep_json), quiet=True)
        cfg.out = str(out)
    fit = fit_csv(csv_path, plot=out / "fit.png")
    depth = depth or choose_depth(cfg, fit, budget)
    spec = spec_for(cfg, budget, depth)
    step = cfg.batch_size * cfg.grad_accum * cfg.seq_len
    tokens = math.ceil(spec.tokens / step) * step  # the loop stops at the first whole step at or past the horizon
    p = fit["parametric"]
    predicted = float(parametric_loss(spec.params, tokens, p["E"], p["A"], p["alpha"], p["B"], p["beta"]))
    import csv

    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    report = {"format": PREDICTION_FORMAT, "version": 1, "budget": budget, "depth": depth, "params": spec.params,
              "params_non_embedding": spec.params_non_embedding, "tokens": tokens,
              "predicted_val_bpb": predicted, "fit": {k: p[k] for k in ("E", "A", "alpha", "B", "beta")},
              "sweep_max_budget": max(float(r["budget"]) for r in rows),
              "sweep_max_params": max(int(r["params"]) for r in rows), "sweep_runs": len(rows)}
    if "n_opt_power" in fit["isoflop"]:
        report["isoflop_n_opt"] = power_law(fit["isoflop"]["n_opt_power"], budget)
    run_dir = out / "predict" / spec.name
    report["run"] = str(run_dir)
    log(f"{spec.name}: {spec.params:,} params, {tokens:,} tokens: predicted val_bpb {predicted:.4f}")
    write_json(out / "prediction.json", report)
    if not run:
        return report
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir.parent / f"{spec.name}.json", report)  # each predicted run keeps its own record
    done = run_dir / "summary.json"
    if done.is_file() and read_json(done, "run summary").get("val_bpb") is not None:
        summary = read_json(done, "run summary")  # made before: compare, don't retrain
    else:
        summary = train_run(cfg, spec, run_dir, _tokenizer(cfg, out), str(out / "val.txt"), progress=progress)
    measured = float(summary["val_bpb"])
    report.update(val_bpb=measured, measured_tokens=int(summary["tokens"]),
                  error=(predicted - measured) / measured, seconds=summary.get("seconds"))
    write_json(out / "prediction.json", report)
    write_json(run_dir.parent / f"{spec.name}.json", report)
    log(f"measured val_bpb {measured:.4f}: prediction error {100 * report['error']:+.2f}%")
    return report


def _tokenizer(cfg: SweepConfig, out: Path) -> str:
    return cfg.tokenizer or str(out / "tokenizer")
