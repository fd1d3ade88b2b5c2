"""Exact and near-duplicate removal (our numpy MinHash + LSH).

    .venv/bin/pytest tests/data/test_dedup.py -q
"""

import numpy as np
from conftest import words

from llmlab.data.dedup import Deduplicator, LSHIndex, MinHasher, exact_key, optimal_bands


def _jaccard(a: str, b: str, n: int = 5) -> float:
    sa = {tuple(a.split()[i: i + n]) for i in range(len(a.split()) - n + 1)}
    sb = {tuple(b.split()[i: i + n]) for i in range(len(b.split()) - n + 1)}
    return len(sa & sb) / len(sa | sb)


def _mutate(ws: list[str], every: int, seed: int) -> list[str]:
    repl = words(len(ws), seed)
    return [repl[i] if i % every == 0 else w for i, w in enumerate(ws)]


def test_exact_duplicates_ignore_case_and_whitespace():
    base = " ".join(words(100, 1))
    variant = "  " + base.upper().replace(" ", " \n\t ") + "\n"
    assert exact_key(base) == exact_key(variant)
    dd = Deduplicator(near=False)
    assert dd.process([base, variant, base + " extra"]) == [None, "exact_duplicate", None]


def test_near_duplicates_found_distinct_kept():
    base = words(400, 2)
    near = _mutate(base, 100, 3)  # 4 of 400 words changed: Jaccard ~ 0.9
    half = _mutate(base, 4, 4)  # every 4th word changed: Jaccard far below 0.8
    other = words(400, 5)
    texts = [" ".join(t) for t in (base, near, half, other)]
    assert _jaccard(texts[0], texts[1]) > 0.85 and _jaccard(texts[0], texts[2]) < 0.2
    dd = Deduplicator(exact=False)
    assert dd.process(texts) == [None, "near_duplicate", None, None]
    # Across batches too: the index persists, so a later copy of an earlier document is caught.
    assert dd.process([" ".join(_mutate(other, 80, 6))]) == ["near_duplicate"]


def test_threshold_controls_removal():
    base = words(400, 7)
    mid = _mutate(base, 12, 8)  # Jaccard ~ 0.55
    j = _jaccard(" ".join(base), " ".join(mid))
    assert 0.4 < j < 0.7
    texts = [" ".join(base), " ".join(mid)]
    assert Deduplicator(threshold=0.8, exact=False).process(texts) == [None, None]
    assert Deduplicator(threshold=0.3, exact=False).process(texts) == [None, "near_duplicate"]


def test_minhash_estimates_jaccard():
    mh = MinHasher(num_perm=256, seed=0)
    base = words(500, 9)
    for every in (3, 10, 50):
        a, b = " ".join(base), " ".join(_mutate(base, every, every))
        sig = mh.signatures([a, b])
        est = float(np.mean(sig[0] == sig[1]))
        assert abs(est - _jaccard(a, b)) < 0.08, (every, est, _jaccard(a, b))


def test_signatures_batch_equals_single_and_deterministic():
    texts = [" ".join(words(n, n)) for n in (3, 40, 700)] + ["", "one"]
    mh = MinHasher(seed=5)
    batch = mh.signatures(texts)
    single = np.stack([mh.signatures([t])[0] for t in texts])
    assert np.array_equal(batch, single)
    assert np.array_equal(batch, MinHasher(seed=5).signatures(texts))
    assert not np.array_equal(batch, MinHasher(seed=6).signatures(texts))
    assert (batch[3] == np.iinfo(np.uint32).max).all()  # no words: matches nothing


def test_band_choice_matches_datasketch():
    # Reference values from datasketch 1.6 ``datasketch.lsh._optimal_param(t, p, 0.5, 0.5)``, hard-coded
    # because importing datasketch (and scipy) costs seconds; benchmarks/bench_dedup.py runs it live.
    for (t, p), expected in {(0.8, 128): (9, 13), (0.5, 64): (14, 4), (0.9, 256): (9, 28), (0.7, 128): (14, 9)}.items():
        assert optimal_bands(t, p) == expected


def test_lsh_verifies_candidates():
    idx = LSHIndex(threshold=0.8, num_perm=128)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2**32, size=128, dtype=np.uint32)
    b = a.copy()
    b[idx.rows:] = rng.integers(0, 2**32, size=128 - idx.rows, dtype=np.uint32)  # shares band 0 only
    assert idx.query_insert(a) is None
    assert idx.query_insert(b) is None  # a band collision, but estimated Jaccard ~0.1: kept
    assert idx.query_insert(a.copy()) == 0
