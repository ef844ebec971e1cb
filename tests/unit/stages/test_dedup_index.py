"""The dedup index's sorted runs: merged like an LSM tree up to ``max_run`` hashes, never
beyond, and membership is exact whatever the run layout."""

from __future__ import annotations

import numpy as np

from tradelog.stages.dedup import IdIndex


def fill(index: IdIndex, hashes: np.ndarray) -> None:
    for h in hashes.tolist():
        index.recent[h] = str(h)
        index.maybe_flush()


def test_runs_stop_merging_at_the_cap_and_membership_stays_exact() -> None:
    rng = np.random.default_rng(3)
    hashes = rng.integers(-(2**63), 2**63 - 1, size=20_000, dtype=np.int64)
    index = IdIndex(recent_limit=600, keep_recent=100, max_run=2_000)
    fill(index, hashes)
    runs = index._runs
    assert len(runs) >= 20_000 // 2_000 - 1  # capped: several runs, not one
    assert all(len(r) <= 2_000 for r in runs)
    assert all(bool(np.all(r[:-1] <= r[1:])) for r in runs)  # each run sorted
    assert len(index) == 20_000
    in_runs = index.in_runs(hashes)
    assert sorted(h for h, hit in zip(hashes.tolist(), in_runs, strict=True) if not hit) == sorted(
        index.recent
    )
    others = rng.integers(-(2**63), 2**63 - 1, size=5_000, dtype=np.int64)
    assert not index.in_runs(np.setdiff1d(others, hashes)).any()


def test_without_a_binding_cap_runs_merge_into_few() -> None:
    hashes = np.arange(20_000, dtype=np.int64) * 7919
    index = IdIndex(recent_limit=600, keep_recent=100, max_run=1 << 30)
    fill(index, hashes)
    assert len(index._runs) <= 8  # geometric sizes: about log2(40) runs
    assert index.in_runs(hashes).sum() == 20_000 - len(index.recent)
