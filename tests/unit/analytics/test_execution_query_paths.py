"""The faster execution and data-quality query paths agree with plain references, on a
store the real pipeline wrote (3,000 events of benchmarks/gen.py) and on copies that break
what the fast paths rely on:

- ``shuffled``: every third event 40 s earlier than written (out-of-order events, fills
  before their quotes);
- ``reversed``: the same rows stored in reverse seq order (storage order ≠ seq order);
- ``two_sources``: every fifth event from a second source, some clock skew on acks;
- ``seq_stored``: stored in seq order (as the benchmark store), then every third event
  40 s earlier (out of order in time, not in storage);
- ``null_seq``: some events without seq (only the plain SQL windows can order those).

Checked: ``quality.source_activity`` (streaming windows in storage order)
against the sorted windows they replace; ``latency.summaries`` (negatives as nulls)
against exact quantiles in Python; ``tca.markouts`` (one as-of join on a symbol number,
grouped by horizon) against an as-of lookup in Python; ``tca.order_summary`` (end mid
only for orders with an unfilled part) against ``tca.order_rows``.
"""

from __future__ import annotations

import bisect
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from tests.unit.analytics.generated import replay_generated
from tradelog.analytics.stats import QUANTILES
from tradelog.storage.base import EventFilter
from tradelog.storage.duckdb_store import DuckDBStore
from tradelog.storage.queries import latency as lat
from tradelog.storage.queries import markouts as mk
from tradelog.storage.queries import quality as qual
from tradelog.storage.queries import tca

NS = 1_000_000_000
VARIANTS = ("ordered", "shuffled", "reversed", "two_sources", "seq_stored", "null_seq")


def _rewrite(path: Path, statements: list[str]) -> None:
    store = DuckDBStore(str(path))
    try:
        for stmt in statements:
            store._con.execute(stmt)
    finally:
        store.close()


@pytest.fixture(scope="module")
def store_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("exec_paths")
    paths = {v: tmp / f"{v}.duckdb" for v in VARIANTS}
    replay_generated(tmp, paths["ordered"], seed=11)
    for v in VARIANTS[1:]:
        shutil.copy(paths["ordered"], paths[v])
    _rewrite(paths["shuffled"], ["UPDATE events SET ts = ts - 40000000000 WHERE seq % 3 = 0"])
    _rewrite(paths["reversed"], [
        "CREATE TEMP TABLE t AS SELECT * FROM events",
        "DELETE FROM events",
        "SET preserve_insertion_order = true",
        "INSERT INTO events SELECT * FROM t ORDER BY seq DESC",
    ])  # fmt: skip
    _rewrite(paths["two_sources"], [
        "UPDATE events SET source = 'other' WHERE seq % 5 = 0",
        "UPDATE events SET latency_ms = -latency_ms WHERE kind = 'order_ack' AND seq % 7 = 0",
        "UPDATE events SET ts = ts - 3000000000 WHERE source = 'other' AND seq % 4 = 0",
    ])  # fmt: skip
    _rewrite(paths["seq_stored"], [
        "CREATE TEMP TABLE t AS SELECT * FROM events",
        "DELETE FROM events",
        "SET preserve_insertion_order = true",
        "INSERT INTO events SELECT * FROM t ORDER BY seq",
        "UPDATE events SET ts = ts - 40000000000 WHERE seq % 3 = 0",
    ])  # fmt: skip
    _rewrite(paths["null_seq"], ["UPDATE events SET seq = NULL WHERE seq % 97 = 0"])
    return paths


@pytest.fixture(params=VARIANTS)
def store(request: pytest.FixtureRequest, store_paths: dict[str, Path]) -> Iterator[DuckDBStore]:
    s = DuckDBStore(str(store_paths[request.param]), read_only=True)
    try:
        yield s
    finally:
        s.close()


def _windows(store: DuckDBStore) -> list[EventFilter]:
    row = store.query("SELECT min(ts) AS a, max(ts) AS b FROM events").to_pylist()[0]
    a, b = int(row["a"]), int(row["b"]) + 1
    mid = (a + b) // 2
    return [EventFilter(), EventFilter(start=mid, end=b), EventFilter(start=a, end=mid),
            EventFilter(start=mid, end=mid)]  # fmt: skip


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def _quantile_cont(values: list[float], q: float) -> float | None:
    """DuckDB's ``quantile_cont`` / PostgreSQL's ``percentile_cont``."""
    if not values:
        return None
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (pos - lo) * (v[hi] - v[lo])


# ------------------------------------------------------------------- data quality


def test_by_source_matches_sorted_window(store: DuckDBStore) -> None:
    aggregates = f"""
        count(*) AS events, count(DISTINCT kind) AS kinds,
        min(ts) AS first_ts, max(ts) AS last_ts,
        avg((ts_ingest - ts) / 1e6) AS lag_mean,
        {store.sql.quantiles("(ts_ingest - ts) / 1e6", QUANTILES)} AS lag_q,
        max((ts_ingest - ts) / 1e6) AS lag_max
    """
    for flt in _windows(store):
        got = qual.source_activity(store, flt).sources
        want = qual._by_source_sorted(store, flt, aggregates)
        assert _close(got, want), (flt, got, want)


def test_out_of_order_counted(store_paths: dict[str, Path]) -> None:
    """The copies with earlier timestamps have out-of-order events, the others none."""
    for variant, expect_some in (("ordered", False), ("reversed", False), ("shuffled", True),
                                 ("seq_stored", True)):  # fmt: skip
        s = DuckDBStore(str(store_paths[variant]), read_only=True)
        try:
            n = sum(r["out_of_order"] for r in qual.source_activity(s, EventFilter()).sources)
        finally:
            s.close()
        assert (n > 0) == expect_some, (variant, n)


def test_gaps_match_sorted_window(store: DuckDBStore) -> None:
    for flt in _windows(store):
        for top in (1, 5, 50):
            got = qual.source_activity(store, flt, top).gaps
            want = qual._gaps_sorted(store, flt, top, None)
            assert got == want, (flt, top)  # of equal gaps the earliest first, in both


# ------------------------------------------------------------------------ latency


def test_latency_summaries_match_python(store: DuckDBStore) -> None:
    kinds = tuple(lat.KINDS.values())
    rows = store.query(
        f"SELECT kind, venue, strategy_id, symbol, order_type, latency_ms FROM events "
        f"WHERE kind IN {kinds} AND latency_ms IS NOT NULL"
    ).to_pylist()
    got = lat.summaries(store, EventFilter())
    assert got
    for g in got:
        keys = [k for k in lat.GROUPS if g[f"g_{k}"] == 0]
        mine = [r for r in rows if r["kind"] == g["kind"] and all(r[k] == g[k] for k in keys)]
        ok = [r["latency_ms"] for r in mine if r["latency_ms"] >= 0]
        assert g["n"] == len(ok)
        assert g["negative"] == len(mine) - len(ok)
        if ok:
            assert math.isclose(g["mean"], sum(ok) / len(ok), rel_tol=1e-9)
            assert g["mx"] == max(ok)
            want_q = [_quantile_cont(ok, q) for q in QUANTILES]
            assert _close(g["q"], want_q)
        else:
            assert g["mean"] is None and g["q"] is None and g["mx"] is None


def test_negative_latencies_present(store_paths: dict[str, Path]) -> None:
    s = DuckDBStore(str(store_paths["two_sources"]), read_only=True)
    try:
        rows = lat.summaries(s, EventFilter())
    finally:
        s.close()
    assert sum(r["negative"] for r in rows if r["g_venue"] == 1 and r["g_symbol"] == 1
               and r["g_strategy_id"] == 1 and r["g_order_type"] == 1) > 0  # fmt: skip


# ---------------------------------------------------------------------------- TCA


def _markouts_python(store: DuckDBStore, flt: EventFilter) -> dict[str | None, dict[str, Any]]:
    where, params = store.sql.where(flt)
    fills = store.query(
        f"SELECT ts, symbol, side, last_px, liquidity FROM events {where} "
        f"{'AND' if where else 'WHERE'} kind = 'fill'",
        params,
    ).to_pylist()
    quotes = store.query(
        "SELECT symbol, ts, (bid + ask) / 2 AS mid FROM events "
        "WHERE kind = 'quote' AND bid IS NOT NULL AND ask IS NOT NULL ORDER BY ts"
    ).to_pylist()
    by_sym: dict[str, tuple[list[int], list[float]]] = {}
    for q in quotes:
        ts_list, mids = by_sym.setdefault(q["symbol"], ([], []))
        ts_list.append(q["ts"])
        mids.append(q["mid"])
    values: dict[tuple[str | None, int], list[float]] = {}
    for f in fills:
        sgn = {"buy": 1, "sell": -1}.get(f["side"])
        for h in tca.MARKOUT_HORIZONS_S:
            for key in (None, f"liq={f['liquidity']}"):
                values.setdefault((key, h), [])
            if f["symbol"] not in by_sym or sgn is None:
                continue
            ts_list, mids = by_sym[f["symbol"]]
            tq = f["ts"] + h * NS
            if tq > ts_list[-1]:
                continue
            i = bisect.bisect_right(ts_list, tq) - 1
            if i < 0:
                continue
            x = sgn * (mids[i] - f["last_px"]) / f["last_px"] * 1e4
            values[(None, h)].append(x)
            values[(f"liq={f['liquidity']}", h)].append(x)
    out: dict[str | None, dict[str, Any]] = {}
    for (key, h), xs in values.items():
        row = out.setdefault(key, {})
        row[f"n_{h}s"] = len(xs)
        row[f"mean_{h}s"] = sum(xs) / len(xs) if xs else None
        row[f"median_{h}s"] = _quantile_cont(xs, 0.5)
    return out


@pytest.mark.parametrize("max_quotes", [mk.MAX_QUOTES, -1], ids=["numpy", "sql_asof"])
def test_markouts_match_python_asof(store: DuckDBStore, max_quotes: int) -> None:
    """Both paths: the NumPy one and the SQL as-of join (used over ``max_quotes``)."""
    for flt in _windows(store):
        got = {
            None if r["g_liquidity"] == 1 else f"liq={r['liquidity']}": {
                k: v for k, v in r.items() if k.split("_")[0] in ("n", "mean", "median")
            }
            for r in tca.markouts(store, flt, max_quotes=max_quotes)
        }
        want = _markouts_python(store, flt)
        want.setdefault(None, got.get(None, {}))
        assert _close(got, want), flt


def _same_markouts(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> bool:
    """Same rows; counts, ``missing`` and medians exactly, means to 1e-12 relative (the
    order of summation differs, as between two runs of DuckDB's parallel ``avg``)."""
    if [(r["g_liquidity"], r["liquidity"]) for r in got] != [
        (r["g_liquidity"], r["liquidity"]) for r in want
    ]:
        return False
    for a, b in zip(got, want, strict=True):
        if a.keys() != b.keys():
            return False
        for k in a:
            if k.startswith("mean_") and a[k] is not None and b[k] is not None:
                if not math.isclose(a[k], b[k], rel_tol=1e-12, abs_tol=1e-12):
                    return False
            elif a[k] != b[k]:
                return False
    return True


def test_markouts_numpy_matches_sql_asof(store: DuckDBStore) -> None:
    """The NumPy path against the SQL as-of join it replaces, field by field (the stores
    have no two quotes of a symbol at one ts, where the SQL join picks any)."""
    for flt in [*_windows(store), EventFilter(symbol="MSFT"), EventFilter(venue="XNAS")]:
        got = tca.markouts(store, flt)
        want = tca.markouts(store, flt, max_quotes=-1)
        assert _same_markouts(got, want), (flt, got, want)


def test_markouts_numpy_on_a_writable_store(store_paths: dict[str, Path]) -> None:
    """A store open for writing scans without preserving insertion order: same answers."""
    s = DuckDBStore(str(store_paths["reversed"]))
    try:
        for flt in _windows(s):
            assert _same_markouts(tca.markouts(s, flt), tca.markouts(s, flt, max_quotes=-1))
    finally:
        s.close()


def test_markouts_quote_cap(store: DuckDBStore) -> None:
    """Over ``max_quotes`` quotes to read, the NumPy path gives up (the SQL join answers)."""
    fills, params = tca._fills_cte(store, EventFilter())
    n = store.query(f"SELECT count(*) AS n FROM events WHERE {mk.QUOTE_WHERE}").to_pylist()[0]
    args = (store, fills, params, tca.MARKOUT_HORIZONS_S, NS, None)
    assert n["n"] > 0
    assert mk.markout_groups(*args, max_quotes=n["n"] - 1) is None
    assert mk.markout_groups(*args, max_quotes=n["n"]) is not None


def test_seq_order() -> None:
    """Rows put in seq order: none needed; blocks out of order; interleaved runs; rows
    without seq first, by row id."""

    def order(seq: list[int | None], rid: list[int]) -> list[int]:
        fix = mk._seq_order(pa.chunked_array([pa.array(seq, pa.int64())]),
                            pa.chunked_array([pa.array(rid, pa.int64())]))  # fmt: skip
        x = np.arange(len(seq))
        return (x if fix is None else fix(x)).tolist()

    assert mk._seq_order(pa.chunked_array([pa.array([1, 2, 5])]),
                         pa.chunked_array([pa.array([0, 1, 2])])) is None  # fmt: skip
    assert order([4, 5, 6, 1, 2, 3], [3, 4, 5, 0, 1, 2]) == [3, 4, 5, 0, 1, 2]
    assert order([1, 4, 2, 5, 3, 6], [0, 3, 1, 4, 2, 5]) == [0, 2, 4, 1, 3, 5]
    assert order([3, None, 1, None, 2], [0, 4, 1, 2, 3]) == [3, 1, 2, 4, 0]
    assert order([2, 2, 1], [1, 0, 2]) == [2, 1, 0]


def test_median_is_duckdb_quantile_cont() -> None:
    """The NumPy median is DuckDB's ``quantile_cont(x, 0.5)`` to the bit (NaN sorts last)."""
    rng = np.random.default_rng(3)
    con = duckdb.connect()
    try:
        for i in range(300):
            x = rng.standard_normal(int(rng.integers(1, 60))) * 10.0 ** rng.integers(-3, 6)
            if i % 10 == 0:
                x[0] = np.nan if i % 20 else np.inf
            want = con.execute(
                "SELECT quantile_cont(v, 0.5) FROM (SELECT unnest(?::DOUBLE[]) v)", [x.tolist()]
            ).fetchone()
            got = mk._median(x)
            assert want is not None and got is not None
            assert (math.isnan(got) and math.isnan(want[0])) or got == want[0], (x, got, want)
    finally:
        con.close()


def test_markouts_without_fills_has_overall_row(store: DuckDBStore) -> None:
    rows = tca.markouts(store, EventFilter(start=0, end=1))
    assert len(rows) == 1
    assert rows[0]["g_liquidity"] == 1
    assert all(rows[0][f"n_{h}s"] == 0 for h in tca.MARKOUT_HORIZONS_S)


def test_order_summary_matches_order_rows(store: DuckDBStore) -> None:
    for flt in _windows(store):
        got = tca.order_summary(store, flt)
        rows = tca.order_rows(store, flt, 1_000_000)
        assert got["orders"] == len(rows)
        slip = [r["slippage_bps"] for r in rows if r["slippage_bps"] is not None]
        sf = [r for r in rows if r["shortfall_bps"] is not None]
        assert got["with_benchmark"] == len(slip)
        assert _close(got["slippage_median"], _quantile_cont(slip, 0.5))
        assert _close(
            got["shortfall_median"], _quantile_cont([r["shortfall_bps"] for r in sf], 0.5)
        )
        if sf:
            mean = sum(r["shortfall_bps"] for r in sf) / len(sf)
            assert math.isclose(got["shortfall_mean"], mean, rel_tol=1e-9)
            weights = [r["arrival_mid"] * r["qty"] for r in sf]
            weighted = sum(r["shortfall_bps"] * w for r, w in zip(sf, weights, strict=True))
            assert math.isclose(got["shortfall_weighted"], weighted / sum(weights), rel_tol=1e-9)
        else:
            assert got["shortfall_mean"] is None
