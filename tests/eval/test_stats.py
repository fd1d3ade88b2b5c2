"""Intervals and the chance-centred aggregate: known values, the arithmetic, and coverage by simulation.

    .venv/bin/pytest tests/eval/test_stats.py -q
"""

import random

import pytest

from llmlab.eval.stats import bootstrap_mean, bootstrap_ratio, centered, core_aggregate, wilson
from llmlab.eval.suite import aggregate
from llmlab.eval.taskfile import Task


def test_wilson_known_values():
    # Wilson (1927) / e.g. Newcombe (1998), table I: 81/263 -> (0.2553, 0.3662); 0/10 -> (0, 0.2775).
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    assert wilson(10, 10)[1] == pytest.approx(1.0) and wilson(10, 10)[0] == pytest.approx(1 - 0.2775, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_core_arithmetic():
    assert centered(0.75, 0.5) == 0.5 and centered(0.2, 0.0) == 0.2 and centered(0.25, 0.25) == 0.0
    assert centered(0.0, 0.25) == pytest.approx(-1 / 3)
    agg = core_aggregate({"pairs": ([1, 1, 1, 0], 0.5), "sums": ([1, 0, 0, 0, 0], 0.0), "empty": ([], 0.25)})
    assert agg["score"] == pytest.approx((0.5 + 0.2) / 2) and agg["tasks"] == ["pairs", "sums"]
    assert agg["centered"] == {"pairs": 0.5, "sums": pytest.approx(0.2)}
    lo, hi = agg["ci"]
    assert lo < agg["score"] < hi
    assert core_aggregate({})["score"] is None
    # Through the suite's summaries: chance is each task's mean 1/k (2 and 4 options -> 0.375); bpb is left out.
    t1 = Task(name="mc", kind="choice", items=[{"context": "", "choices": ["a", "b"], "answer": 0},
                                               {"context": "", "choices": ["a", "b", "c", "d"], "answer": 0}])
    t2 = Task(name="gen", kind="generate", items=[{"context": "", "answer": "x"}] * 4)
    t3 = Task(name="bpb", kind="bpb", items=[{"text": "x"}])
    per = {"mc": [{"acc": 1, "acc_norm": 0, "chance": 0.5}, {"acc": 1, "acc_norm": 1, "chance": 0.25}],
           "gen": [{"acc": 1, "chance": 0.0}, {"acc": 0, "chance": 0.0}, {"error": "boom"}, {"acc": 0, "chance": 0.0}],
           "bpb": [{"nats": 1.0, "bytes": 1}]}
    agg = aggregate([t1, t2, t3], per)
    assert agg["tasks"] == ["gen", "mc"]
    assert agg["score"] == pytest.approx(((1.0 - 0.375) / (1 - 0.375) + 1 / 3) / 2)


def _coverage(make_interval, p, n, trials, seed=0):
    rng = random.Random(seed)
    hit = 0
    for _ in range(trials):
        k = sum(rng.random() < p for _ in range(n))
        lo, hi = make_interval(k, n)
        hit += lo <= p <= hi
    return hit / trials


def test_wilson_coverage_is_near_95_percent():
    for p, n in [(0.3, 40), (0.5, 100), (0.05, 60)]:
        cov = _coverage(wilson, p, n, 3000, seed=n)
        assert 0.92 <= cov <= 0.98, (p, n, cov)


def test_bootstrap_coverage_and_ratio():
    rng = random.Random(1)
    hit = 0
    trials = 120
    for t in range(trials):  # mean of an exponential (true mean 1), n = 40
        xs = [rng.expovariate(1.0) for _ in range(40)]
        lo, hi = bootstrap_mean(xs, samples=200, seed=t)
        hit += lo <= 1.0 <= hi
    assert 0.85 <= hit / trials <= 0.99
    # A ratio interval is around the ratio of sums, and seeded: the same input gives the same interval.
    nums, dens = [2.0, 4.0, 3.0, 5.0], [1.0, 2.0, 1.0, 2.0]
    lo, hi = bootstrap_ratio(nums, dens)
    assert lo <= sum(nums) / sum(dens) <= hi and (lo, hi) == bootstrap_ratio(nums, dens)
