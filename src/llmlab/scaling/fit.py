"""Scaling-law fits over a table of runs: Chinchilla's approach 2 (IsoFLOP parabolas) and approach 3 (the
parametric loss L(N, D) = E + A / N^alpha + B / D^beta).

    llmlab scaling fit --csv runs/scaling/sweep.csv [--json] [--plot fit.png]

    from llmlab.scaling.fit import read_runs, fit_runs
    runs = read_runs("runs/scaling/sweep.csv")          # columns params, tokens, val_bpb (others allowed)
    result = fit_runs(runs)                              # {"parametric": {...}, "isoflop": {...}}

Parametric (approach 3, Hoffmann et al. 2022, appendix D.2): with a = log A, b = log B, e = log E, minimise
sum_i Huber_delta(LSE(a - alpha log N_i, b - beta log D_i, e) - log L_i) with L-BFGS from a grid of
initialisations (delta = 1e-3, as theirs); the fit is on the loss's logarithm, so every run weighs by its
relative error. From it, the compute-optimal split under C = 6 N D: N_opt = G (C/6)^(beta/(alpha+beta)),
G = (alpha A / (beta B))^(1/(alpha+beta)).

IsoFLOP (approach 2): runs are grouped by compute budget (a ``budget`` column, else ``flops``, else 6 N D);
in each group of three or more sizes the loss is fitted by a parabola in log N; its vertex gives N_opt and the
loss there, and D_opt is read off the group's own (log N, log D) line (exactly C / 6 N_opt when C = 6 N D).
Power laws N_opt = k C^a and D_opt = k' C^b through the budgets, and D_opt / N_opt, the tokens per parameter.

``val_bpb`` is the loss (bits per byte is the loss in nats per token times a constant of the tokenizer, so the
law's form is the same).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmlab.errors import LlmlabError

REQUIRED = ("params", "tokens", "val_bpb")
HUBER_DELTA = 1e-3
MIN_PARAMETRIC_RUNS = 6  # five unknowns
# Chinchilla's initialisation grid (appendix D.2); every point is scored and the best few start L-BFGS.
GRID = dict(alpha=np.arange(0.0, 2.01, 0.5), beta=np.arange(0.0, 2.01, 0.5), e=np.arange(-1.0, 1.01, 0.5),
            a=np.arange(0.0, 25.1, 5.0), b=np.arange(0.0, 25.1, 5.0))


@dataclass
class Runs:
    """The table's columns as arrays (one entry per run) and where each row came from."""

    params: np.ndarray
    tokens: np.ndarray
    loss: np.ndarray
    budget: np.ndarray  # the compute budget each run belongs to (FLOPs)
    budget_source: str  # "budget", "flops" or "6ND"
    lines: list[int]
    path: str = "<runs>"

    def __len__(self) -> int:
        return len(self.loss)


def read_runs(path: str | Path) -> Runs:
    """Read a CSV with one row per run; ``params``, ``tokens`` and ``val_bpb`` are required (positive numbers).
    Mistakes raise ``LlmlabError("FILE:LINE: ...")``."""
    path = Path(path)
    if not path.is_file():
        raise LlmlabError(f"{path}: file not found")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames
        if not header:
            raise LlmlabError(f"{path}:1: empty file (expected a header with {', '.join(REQUIRED)})")
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise LlmlabError(f"{path}:1: missing column{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(repr(c) for c in missing)} (the header has {', '.join(header)})")
        optional = [c for c in ("budget", "flops") if c in header]
        cols: dict[str, list[float]] = {c: [] for c in (*REQUIRED, *optional)}
        lines = []
        for row in reader:
            line = reader.line_num
            if not any((v or "").strip() for v in row.values()):
                continue  # blank line
            for c in cols:
                raw = (row.get(c) or "").strip()
                try:
                    v = float(raw)
                except ValueError:
                    raise LlmlabError(f"{path}:{line}: column {c!r}: {raw!r} is not a number") from None
                if not math.isfinite(v) or v <= 0:
                    raise LlmlabError(f"{path}:{line}: column {c!r}: {raw} must be a positive number")
                cols[c].append(v)
            lines.append(line)
    params, tokens, loss = (np.array(cols[c]) for c in REQUIRED)
    if "budget" in cols:
        budget, source = np.array(cols["budget"]), "budget"
    elif "flops" in cols:
        budget, source = _cluster(np.array(cols["flops"])), "flops"
    else:
        budget, source = _cluster(6.0 * params * tokens), "6ND"
    return Runs(params, tokens, loss, budget, source, lines, str(path))


def _cluster(flops: np.ndarray, tol: float = 0.05) -> np.ndarray:
    """Runs whose FLOPs agree within ``tol`` (relative) belong to one budget: their geometric mean."""
    order = np.argsort(flops)
    out = np.empty_like(flops)
    group: list[int] = []
    for i in list(order) + [None]:
        if group and (i is None or flops[i] > flops[group[0]] * (1 + tol)):
            out[group] = math.exp(np.mean(np.log(flops[group])))
            group = []
        if i is not None:
            group.append(i)
    return out


# ----------------------------------------------------------------------------------------------------------
# Approach 3: the parametric law


def parametric_loss(params, tokens, E: float, A: float, alpha: float, B: float, beta: float):
    """L(N, D) = E + A / N^alpha + B / D^beta (arrays broadcast)."""
    return E + A / np.power(params, alpha) + B / np.power(tokens, beta)


def _objective(theta: np.ndarray, logN: np.ndarray, logD: np.ndarray, logL: np.ndarray, delta: float):
    """Huber loss of the log-space residuals and its gradient; theta = (a, b, e, alpha, beta)."""
    a, b, e, alpha, beta = theta
    t = np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)])  # (3, n)
    m = t.max(axis=0)
    w = np.exp(t - m)  # (3, n)
    s = w.sum(axis=0)
    pred = m + np.log(s)  # log L predicted, (n,)
    w /= s  # softmax weights: d pred / d t_k
    r = pred - logL
    small = np.abs(r) <= delta
    loss = np.where(small, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta)).sum()
    h = np.where(small, r, delta * np.sign(r))  # d huber / d r
    grad = np.array([(h * w[0]).sum(), (h * w[1]).sum(), (h * w[2]).sum(),
                     -(h * w[0] * logN).sum(), -(h * w[1] * logD).sum()])
    return loss, grad


def _grid_scores(mesh: np.ndarray, logN, logD, logL, delta: float) -> np.ndarray:
    """The Huber objective at every grid point at once: mesh (M, 5) -> (M,)."""
    a, b, e, alpha, beta = (mesh[:, i : i + 1] for i in range(5))  # (M, 1) each
    pred = np.logaddexp(np.logaddexp(a - alpha * logN, b - beta * logD), e)  # (M, n)
    r = np.abs(pred - logL)
    return np.where(r <= delta, 0.5 * r * r, delta * (r - 0.5 * delta)).sum(axis=1)


def fit_parametric(params, tokens, loss, *, delta: float = HUBER_DELTA, starts: int = 24,
                   grid: dict | None = None) -> dict:
    """Fit E, A, alpha, B, beta (Chinchilla approach 3). ``starts``: how many of the best grid points start
    L-BFGS (every grid point is scored first; the grid is Chinchilla's)."""
    from scipy.optimize import minimize

    logN, logD, logL = np.log(params), np.log(tokens), np.log(loss)
    g = grid or GRID
    mesh = np.stack(np.meshgrid(g["a"], g["b"], g["e"], g["alpha"], g["beta"], indexing="ij"), -1).reshape(-1, 5)
    scores = _grid_scores(mesh, logN, logD, logL, delta)
    best = None
    for th in mesh[np.argsort(scores)[:starts]]:
        res = minimize(_objective, th, args=(logN, logD, logL, delta), jac=True, method="L-BFGS-B",
                       options=dict(maxiter=2000, ftol=1e-15, gtol=1e-12))
        if np.all(np.isfinite(res.x)) and (best is None or res.fun < best.fun):
            best = res
    a, b, e, alpha, beta = (float(v) for v in best.x)
    E, A, B = math.exp(e), math.exp(a), math.exp(b)
    pred = parametric_loss(params, tokens, E, A, alpha, B, beta)
    out = {"E": E, "A": A, "alpha": alpha, "B": B, "beta": beta, "runs": int(len(loss)),
           "huber_loss": float(best.fun), "rmse_log": float(np.sqrt(np.mean((np.log(pred) - logL) ** 2))),
           "max_rel_error": float(np.max(np.abs(pred / loss - 1)))}
    if alpha > 0 and beta > 0:
        out["n_opt_exponent"] = beta / (alpha + beta)  # N_opt ∝ C^a
        out["d_opt_exponent"] = alpha / (alpha + beta)  # D_opt ∝ C^b
    return out


def parametric_optimum(fit: dict, flops: float) -> tuple[float, float]:
    """(N_opt, D_opt) minimising the fitted law under C = 6 N D."""
    A, B, alpha, beta = fit["A"], fit["B"], fit["alpha"], fit["beta"]
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    n = G * (flops / 6.0) ** (beta / (alpha + beta))
    return n, flops / (6.0 * n)


# ----------------------------------------------------------------------------------------------------------
# Approach 2: IsoFLOP parabolas


def fit_isoflop(runs: Runs) -> dict:
    """Per budget with >= 3 sizes: the parabola of loss in log N, its vertex (N_opt, L_opt) and D_opt; then the
    power laws through the budgets and the tokens-per-parameter ratio."""
    per, skipped = [], []
    for c in sorted(set(runs.budget.tolist())):
        sel = runs.budget == c
        n, d, l = runs.params[sel], runs.tokens[sel], runs.loss[sel]
        if len(set(n.tolist())) < 3:
            skipped.append({"budget": c, "why": f"{len(set(n.tolist()))} sizes (a parabola needs 3)"})
            continue
        x = np.log(n)
        a2, a1, a0 = np.polyfit(x, l, 2)
        if a2 <= 0:
            skipped.append({"budget": c, "why": "the losses do not curve upward (no minimum)"})
            continue
        xo = -a1 / (2 * a2)
        s, i = np.polyfit(x, np.log(d), 1)  # the budget's own (log N, log D) line
        entry = {"budget": c, "sizes": int(sel.sum()), "n_opt": math.exp(xo), "d_opt": math.exp(s * xo + i),
                 "loss_opt": float(a0 - a1 * a1 / (4 * a2)), "coef": [float(a2), float(a1), float(a0)],
                 "inside": bool(x.min() <= xo <= x.max())}
        entry["tokens_per_param"] = entry["d_opt"] / entry["n_opt"]
        per.append(entry)
    out: dict = {"budget_source": runs.budget_source, "budgets": per, "skipped": skipped}
    if len(per) >= 2:
        C = np.log([p["budget"] for p in per])
        for key, name in (("n_opt", "n_opt_power"), ("d_opt", "d_opt_power")):
            slope, icpt = np.polyfit(C, np.log([p[key] for p in per]), 1)
            out[name] = {"k": math.exp(icpt), "exponent": float(slope)}
        ratios = [p["tokens_per_param"] for p in per]
        out["tokens_per_param"] = float(math.exp(np.mean(np.log(ratios))))  # geometric mean over budgets
    return out


def power_law(law: dict, c: float) -> float:
    return law["k"] * c ** law["exponent"]


# ----------------------------------------------------------------------------------------------------------
# Both, and the picture


def fit_runs(runs: Runs) -> dict:
    if len(runs) < MIN_PARAMETRIC_RUNS:
        last = runs.lines[-1] if runs.lines else 1
        raise LlmlabError(f"{runs.path}:{last}: {len(runs)} runs; the parametric fit needs at least "
                          f"{MIN_PARAMETRIC_RUNS} (five unknowns)")
    iso = fit_isoflop(runs)
    return {"runs": len(runs), "parametric": fit_parametric(runs.params, runs.tokens, runs.loss), "isoflop": iso}


def format_fit(result: dict) -> str:
    p, iso = result["parametric"], result["isoflop"]
    lines = [f"parametric: L(N, D) = E + A/N^alpha + B/D^beta  (Chinchilla approach 3, Huber {HUBER_DELTA:g} on "
             f"log L, {p['runs']} runs)",
             f"  E {p['E']:.4f}  A {p['A']:.4g}  alpha {p['alpha']:.4f}  B {p['B']:.4g}  beta {p['beta']:.4f}",
             f"  fit: rmse of log residuals {p['rmse_log']:.4f}, worst relative error {100 * p['max_rel_error']:.2f}%"]
    if "n_opt_exponent" in p:
        lines.append(f"  compute-optimal under C = 6ND: N_opt ∝ C^{p['n_opt_exponent']:.3f}, "
                     f"D_opt ∝ C^{p['d_opt_exponent']:.3f}")
    lines.append(f"isoflop: parabola of loss in log N per budget (Chinchilla approach 2; budgets from "
                 f"{iso['budget_source']})")
    for b in iso["budgets"]:
        where = "" if b["inside"] else "  (vertex outside the sizes run: extrapolated)"
        lines.append(f"  budget {b['budget']:.3g}: N_opt {b['n_opt']:.4g}  D_opt {b['d_opt']:.4g}  "
                     f"loss {b['loss_opt']:.4f}  tokens/param {b['tokens_per_param']:.2f}  ({b['sizes']} sizes){where}")
    for s in iso["skipped"]:
        lines.append(f"  budget {s['budget']:.3g}: skipped, {s['why']}")
    if "n_opt_power" in iso:
        n, d = iso["n_opt_power"], iso["d_opt_power"]
        lines.append(f"  N_opt = {n['k']:.4g} C^{n['exponent']:.3f}   D_opt = {d['k']:.4g} C^{d['exponent']:.3f}   "
                     f"tokens per parameter {iso['tokens_per_param']:.2f} (geometric mean over budgets)")
    if result.get("plot"):
        lines.append(f"plot: {result['plot']}")
    return "\n".join(lines)


def plot_fit(runs: Runs, result: dict, path: str | Path) -> Path:
    """Three panels: IsoFLOP curves with their parabolas; N_opt and D_opt against C; the parametric law's
    curves of loss against tokens for each size, with the runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from llmlab.utils.io import atomic_path

    p, iso = result["parametric"], result["isoflop"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    budgets = sorted(set(runs.budget.tolist()))
    colors = plt.cm.viridis(np.linspace(0, 0.9, max(1, len(budgets))))
    ax = axes[0]
    fitted = {b["budget"]: b for b in iso["budgets"]}
    for c, col in zip(budgets, colors):
        sel = runs.budget == c
        ax.scatter(runs.params[sel], runs.loss[sel], color=col, label=f"C={c:.2g}", zorder=3)
        if c in fitted:
            b = fitted[c]
            xs = np.linspace(np.log(runs.params[sel].min()) - 0.3, np.log(runs.params[sel].max()) + 0.3, 100)
            ax.plot(np.exp(xs), np.polyval(b["coef"], xs), color=col, lw=1)
            ax.scatter([b["n_opt"]], [b["loss_opt"]], color=col, marker="*", s=160, edgecolor="k", zorder=4)
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("validation bits per byte")
    ax.set_title("IsoFLOP curves (approach 2)")
    ax.legend(fontsize=8)

    ax = axes[1]
    if iso["budgets"]:
        cs = np.array([b["budget"] for b in iso["budgets"]])
        ax.scatter(cs, [b["n_opt"] for b in iso["budgets"]], color="C0", label="N_opt (params)")
        ax.scatter(cs, [b["d_opt"] for b in iso["budgets"]], color="C1", label="D_opt (tokens)")
        if "n_opt_power" in iso:
            grid = np.geomspace(cs.min() / 3, cs.max() * 3, 50)
            for key, col in (("n_opt_power", "C0"), ("d_opt_power", "C1")):
                law = iso[key]
                ax.plot(grid, [power_law(law, g) for g in grid], color=col, lw=1,
                        label=f"{law['k']:.3g} C^{law['exponent']:.3f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("compute C (FLOPs)")
    ax.set_title("compute-optimal N and D")
    ax.legend(fontsize=8)

    ax = axes[2]
    sizes = sorted(set(runs.params.tolist()))
    scol = plt.cm.plasma(np.linspace(0, 0.85, max(1, len(sizes))))
    for n, col in zip(sizes, scol):
        sel = runs.params == n
        ax.scatter(runs.tokens[sel], runs.loss[sel], color=col, label=f"N={n:.3g}", zorder=3)
        ds = np.geomspace(runs.tokens.min() / 2, runs.tokens.max() * 2, 100)
        ax.plot(ds, parametric_loss(n, ds, p["E"], p["A"], p["alpha"], p["B"], p["beta"]), color=col, lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("training tokens D")
    ax.set_title(f"L = {p['E']:.3f} + {p['A']:.3g}/N^{p['alpha']:.3f} + {p['B']:.3g}/D^{p['beta']:.3f}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def fit_csv(path: str | Path, plot: str | Path | None = None) -> dict:
    """Read, fit both ways, and (if ``plot``) draw; the result dict is what ``--json`` prints."""
    runs = read_runs(path)
    result = fit_runs(runs)
    if plot:
        result["plot"] = str(plot_fit(runs, result, plot))
    return result
