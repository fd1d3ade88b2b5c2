"""Scores with intervals: Wilson intervals for accuracies, percentile bootstrap for ratios and the aggregate,
and the chance-centred aggregate (nanochat's CORE).

    from llmlab.eval.stats import wilson, bootstrap_ratio, centered, core_aggregate
    lo, hi = wilson(k=37, n=50)                          # 95% Wilson score interval of 37/50
    centered(0.62, chance=0.25)                          # (0.62 - 0.25) / (1 - 0.25) = 0.4933...
    agg = core_aggregate({"cloze": (correct_list, 0.25), "arithmetic": (correct_list, 0.0)})

Why these. A per-task accuracy on a few hundred items has a sampling error of several points; a 95% interval
says whether two models (or base vs SFT) really differ. The Wilson score interval keeps its coverage near the
nominal 95% at small n and near 0 or 1 (where the normal "p +- 1.96 sqrt(p(1-p)/n)" interval collapses to a
point at p = 0 or 1). Ratios (bits per byte = nats / bytes over items) and the aggregate, a mean of several
tasks' centred scores, have no closed form, so they get a percentile bootstrap: resample each task's items
with replacement (independently per task), recompute, and take the 2.5th and 97.5th percentiles. The
bootstrap is seeded, so the same results always give the same interval.

The aggregate: every accuracy task's score is centred on its chance level, ``(acc - chance) / (1 - chance)``
(0 = guessing, 1 = perfect; below 0 = worse than guessing), and the centred scores are averaged over tasks,
as nanochat's CORE metric does over its tasks.
"""

from __future__ import annotations

import math
import random

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile
BOOTSTRAP_SAMPLES = 1000
WILSON = "wilson-95"
BOOTSTRAP = f"bootstrap-95 ({BOOTSTRAP_SAMPLES} resamples of the items)"


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion k/n (95% by default); (0, 1) when n == 0."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def centered(score: float, chance: float) -> float:
    """``(score - chance) / (1 - chance)``: 0 at guessing, 1 at perfect."""
    if chance >= 1:
        raise ValueError("chance must be below 1")
    return (score - chance) / (1 - chance)


def _percentiles(values: list[float], lo: float = 0.025, hi: float = 0.975) -> tuple[float, float]:
    v = sorted(values)
    n = len(v)

    def at(q):  # linear interpolation between order statistics (numpy's default)
        x = q * (n - 1)
        i = int(math.floor(x))
        j = min(i + 1, n - 1)
        return v[i] + (v[j] - v[i]) * (x - i)

    return at(lo), at(hi)


def bootstrap_ratio(nums: list[float], dens: list[float], *, samples: int = BOOTSTRAP_SAMPLES,
                    seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of sum(nums) / sum(dens) over items (e.g. bits per byte)."""
    n = len(nums)
    if n == 0:
        return float("nan"), float("nan")
    rng = random.Random(seed)
    stats = []
    for _ in range(samples):
        idx = [rng.randrange(n) for _ in range(n)]
        d = sum(dens[i] for i in idx)
        stats.append(sum(nums[i] for i in idx) / d if d else float("nan"))
    return _percentiles(stats)


def bootstrap_mean(values: list[float], *, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of a mean."""
    return bootstrap_ratio(values, [1.0] * len(values), samples=samples, seed=seed)


def core_aggregate(tasks: dict[str, tuple[list[float], float]], *, samples: int = BOOTSTRAP_SAMPLES,
                   seed: int = 0) -> dict:
    """The chance-centred mean over tasks. ``tasks`` maps a name to (per-item scores in [0, 1], chance).

    Returns ``{"score", "ci", "ci_method", "tasks", "centered": {name: ...}}``; the interval resamples each
    task's items independently. ``score`` is None when no task has items."""
    tasks = {k: v for k, v in tasks.items() if v[0]}
    if not tasks:
        return {"score": None, "ci": None, "ci_method": BOOTSTRAP, "tasks": [], "centered": {}}
    cen = {k: centered(sum(xs) / len(xs), ch) for k, (xs, ch) in tasks.items()}
    score = sum(cen.values()) / len(cen)
    rng = random.Random(seed)
    stats = []
    for _ in range(samples):
        tot = 0.0
        for xs, ch in tasks.values():
            n = len(xs)
            tot += centered(sum(xs[rng.randrange(n)] for _ in range(n)) / n, ch)
        stats.append(tot / len(tasks))
    lo, hi = _percentiles(stats)
    return {"score": score, "ci": [lo, hi], "ci_method": BOOTSTRAP, "tasks": sorted(tasks), "centered": cen}
