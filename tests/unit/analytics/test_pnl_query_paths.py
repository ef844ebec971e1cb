"""The faster query paths agree with the ones they replaced, on a store the real pipeline
wrote (3,000 events of benchmarks/gen.py) and on a copy whose fill times are shuffled
against their sequence (out-of-order fills):

- the DuckDB equity curve (changes by grid bucket in SQL, running sums in numpy) against
  the former all-SQL query (cross join of strategy × symbol with the grid, windows);
- ``still_open`` as an anti join (whole history) against the correlated form (windows);
- the report's one-scan latency histograms against one ``latency.histogram`` per venue.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.analytics.generated import replay_generated
from tradelog.reports import queries as rq
from tradelog.storage import position_checkpoints
from tradelog.storage.base import EventFilter
from tradelog.storage.duckdb_store import DuckDBStore
from tradelog.storage.queries import fills as fill_q
from tradelog.storage.queries import latency as lat
from tradelog.storage.queries import pnl as pnl_q

NS = 1_000_000_000


@pytest.fixture(scope="module")
def store_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("pnl_paths")
    ordered = tmp / "ordered.duckdb"
    replay_generated(tmp, ordered, seed=5)
    shuffled = tmp / "shuffled.duckdb"
    shutil.copy(ordered, shuffled)
    store = DuckDBStore(str(shuffled))
    try:  # every third fill 40 s earlier: later in seq than fills after it in time
        store._con.execute(
            "UPDATE events SET ts = ts - 40000000000 WHERE kind = 'fill' AND seq % 3 = 0"
        )
        for stmt in position_checkpoints.rebuild_statements(store.sql):
            store._con.execute(stmt)
    finally:
        store.close()
    return {"ordered": ordered, "shuffled": shuffled}


@pytest.fixture(params=["ordered", "shuffled"])
def store(request: pytest.FixtureRequest, store_paths: dict[str, Path]) -> Iterator[DuckDBStore]:
    s = DuckDBStore(str(store_paths[request.param]), read_only=True)
    try:
        yield s
    finally:
        s.close()


def _span(store: DuckDBStore) -> tuple[int, int]:
    row = store.query("SELECT min(ts) AS a, max(ts) AS b FROM events").to_pylist()[0]
    return int(row["a"]), int(row["b"]) + 1


def _reference_equity(
    store: DuckDBStore, flt: EventFilter, start: int, end: int, interval: int
) -> list[dict[str, Any]]:
    """The former DuckDB equity query, verbatim but for the lookback (all quotes)."""
    where, params = pnl_q._fill_filter(store, flt, end)
    k_max = max(-(-(end - start) // interval), 1)
    bucket = f"greatest(({{ts}} - {start}) // {interval} + 1, 1)"
    sql = f"""
        WITH fl AS (SELECT strategy_id, account_id, symbol, seq, ts, pos_after AS pos,
                           coalesce(pos_after * avg_cost_after, 0) AS cost,
                           realized_after - fees_after AS rn
                    FROM events {where}),
             ch AS (SELECT strategy_id, account_id, symbol, max(seq) AS seq, 1 AS k,
                           arg_max(pos, seq) AS pos, arg_max(cost, seq) AS cost,
                           arg_max(rn, seq) AS rn
                    FROM fl WHERE ts < {start} GROUP BY strategy_id, account_id, symbol
                    UNION ALL
                    SELECT strategy_id, account_id, symbol, seq, {bucket.format(ts="ts")} AS k,
                           pos, cost, rn FROM fl WHERE ts >= {start}),
             d AS (SELECT strategy_id, symbol, k,
                          pos - coalesce(lag(pos) OVER w, 0) AS dpos,
                          cost - coalesce(lag(cost) OVER w, 0) AS dcost,
                          rn - coalesce(lag(rn) OVER w, 0) AS drn,
                          (pos <> 0)::INTEGER - coalesce((lag(pos) OVER w <> 0)::INTEGER, 0)
                              AS dopen
                   FROM ch WINDOW w AS (PARTITION BY strategy_id, account_id, symbol
                                        ORDER BY seq)),
             dk AS MATERIALIZED (SELECT strategy_id, symbol, k, sum(dpos) AS dpos,
                                        sum(dcost) AS dcost, sum(drn) AS drn,
                                        sum(dopen) AS dopen
                    FROM d GROUP BY strategy_id, symbol, k),
             pairs AS MATERIALIZED (SELECT DISTINCT strategy_id, symbol FROM dk),
             grid AS (SELECT unnest(range(1, {k_max + 1})) AS k),
             g AS (SELECT p.strategy_id, p.symbol, grid.k, dk.dpos, dk.dcost, dk.drn, dk.dopen
                   FROM pairs p CROSS JOIN grid
                   LEFT JOIN dk ON dk.strategy_id IS NOT DISTINCT FROM p.strategy_id
                        AND dk.symbol IS NOT DISTINCT FROM p.symbol AND dk.k = grid.k),
             c AS (SELECT strategy_id, symbol, k,
                          sum(coalesce(dpos, 0)) OVER w AS pos,
                          sum(coalesce(dcost, 0)) OVER w AS cost,
                          sum(coalesce(drn, 0)) OVER w AS rn,
                          sum(coalesce(dopen, 0)) OVER w AS open_keys
                   FROM g WINDOW w AS (PARTITION BY strategy_id, symbol ORDER BY k
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)),
             qb AS (SELECT symbol, {bucket.format(ts="ts")} AS k,
                           arg_max((bid + ask) / 2, ts) AS mid
                    FROM events
                    WHERE kind = 'quote' AND bid IS NOT NULL AND ask IS NOT NULL
                      AND ts < {start + k_max * interval}
                      AND symbol IN (SELECT symbol FROM pairs)
                    GROUP BY 1, 2),
             ys AS (SELECT DISTINCT symbol FROM pairs),
             mk AS (SELECT ys.symbol, grid.k,
                           last_value(qb.mid IGNORE NULLS) OVER (
                               PARTITION BY ys.symbol ORDER BY grid.k
                               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS mid
                    FROM ys CROSS JOIN grid
                    LEFT JOIN qb ON qb.symbol = ys.symbol AND qb.k = grid.k)
        SELECT {start} + c.k * {interval} AS t, c.strategy_id, sum(c.rn) AS realized,
               CASE WHEN bool_or(c.open_keys > 0 AND mk.mid IS NULL) THEN NULL
                    ELSE sum(CASE WHEN c.open_keys > 0 THEN mk.mid * c.pos - c.cost ELSE 0 END)
               END AS unrealized
        FROM c LEFT JOIN mk ON mk.symbol = c.symbol AND mk.k = c.k
        GROUP BY c.k, c.strategy_id ORDER BY c.k, c.strategy_id
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


def _close(a: float | None, b: float | None, scale: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * scale)


@pytest.mark.parametrize(
    ("part", "points", "strategy"),
    [(None, 200, None), (None, 37, None), ((0.4, 0.7), 50, None), ((0.5, 1.0), 80, "MM-1")],
)
def test_equity_curve_matches_the_former_sql(
    store: DuckDBStore, part: tuple[float, float] | None, points: int, strategy: str | None
) -> None:
    first, last = _span(store)
    if part is None:
        start, end, flt = first, last, EventFilter(strategy=strategy)
    else:
        start = first + int((last - first) * part[0])
        end = first + int((last - first) * part[1])
        flt = EventFilter(start=start, end=end, strategy=strategy)
    interval = -(-(end - start) // points)
    got = pnl_q.equity_curve(store, flt, start, end, interval)
    want = _reference_equity(store, flt, start, end, interval)
    assert len(want) >= points  # every grid point (several strategies unless one asked)
    assert [(r["t"], r["strategy_id"]) for r in got] == [(r["t"], r["strategy_id"]) for r in want]
    scale = max(abs(r["realized"]) for r in want) + 1.0
    if part is None:  # marked open positions (in a window a mark can be missing)
        assert any(r["unrealized"] not in (None, 0.0) for r in want)
    for g, w in zip(got, want, strict=True):
        assert _close(g["realized"], w["realized"], scale), (g, w)
        assert _close(g["unrealized"], w["unrealized"], scale), (g, w)


def _still_open_reference(store: DuckDBStore, start: int | None, end: int | None) -> int:
    finished = {r["order_id"] for r in store.query("SELECT order_id FROM orders").to_pylist()}
    rows = store.query("SELECT ts, root_order_id FROM events WHERE kind = 'order_new'")
    return sum(
        1
        for r in rows.to_pylist()
        if (start is None or r["ts"] >= start)
        and (end is None or r["ts"] < end)
        and r["root_order_id"] not in finished
    )


def test_still_open_anti_join_and_correlated_forms_agree(store: DuckDBStore) -> None:
    first, last = _span(store)
    whole = fill_q.still_open(store, EventFilter())  # anti join
    assert whole == fill_q.still_open(store, EventFilter(start=first))  # correlated
    assert whole == _still_open_reference(store, None, None)
    assert whole > 0
    mid = (first + last) // 2
    assert fill_q.still_open(store, EventFilter(end=mid)) == _still_open_reference(store, None, mid)
    assert fill_q.still_open(store, EventFilter(start=mid)) == _still_open_reference(
        store, mid, None
    )


def test_report_latency_histograms_equal_one_scan_per_venue(store: DuckDBStore) -> None:
    first, last = _span(store)
    for flt in (EventFilter(), EventFilter(start=(first + last) // 2, strategy="MM-1")):
        got = rq.latency_histograms(store, flt)
        venues = [v for v in got if v is not None]
        assert venues
        for venue in [None, *venues]:
            vf = EventFilter(start=flt.start, end=flt.end, strategy=flt.strategy, venue=venue)
            want: dict[str, list[tuple[int | None, int]]] = {}
            for h in lat.histogram(store, vf):
                want.setdefault(h["kind"], []).append((h["bucket"], int(h["n"])))
            assert {k: sorted(v, key=str) for k, v in got[venue].items()} == {
                k: sorted(v, key=str) for k, v in want.items()
            }
