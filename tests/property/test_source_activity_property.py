"""Per-source activity on DuckDB: ``quality.source_activity`` (NumPy over the events in
storage order, ``storage/queries/source_stats.py``, with its SQL re-computations) against
the plain SQL windows over the events sorted by seq and by (ts, seq) that it replaces
(``_by_source_sorted``, ``_gaps_sorted``), on random small stores (real DuckDB):

- one to three sources, events stored in seq order or not, going back in time or not,
  equal timestamps, equal gaps, null ``seq``, ``ts`` or ``ts_ingest``, negative lags;
- read in batches of 1 000 000 rows and of 3 (the state carried across batches);
- windows, including empty ones and windows that split a source.

Exact: sources, counts, first/last times, kinds, out-of-order counts, lag quantiles and
maxima, the gaps in order (of equal gaps the earliest first). The lag mean to 1e-12
relative (the same values added in another order)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradelog.analytics.stats import QUANTILES
from tradelog.storage.base import EventFilter
from tradelog.storage.duckdb_store import DuckDBStore
from tradelog.storage.queries import quality, source_stats

NS = 1_000_000_000


@dataclass(frozen=True)
class Row:
    source: str
    kind: str
    ts: int | None
    seq: int | None
    ts_ingest: int | None


@st.composite
def stores(draw: st.DrawFn) -> list[Row]:
    n = draw(st.integers(0, 40))
    sources = draw(st.sampled_from([["a"], ["a"], ["a", "b"], ["a", "b", "c"]]))
    ts = 0
    rows: list[Row] = []
    for i in range(n):
        ts += draw(st.sampled_from([0, 1, 1, 2, 5, 5, 30]))  # ties, equal gaps
        t: int | None = ts * NS
        if draw(st.integers(0, 9)) == 0:  # back in time
            t = max(ts - draw(st.integers(1, 20)), 0) * NS
        seq: int | None = i + 1
        lag_ms = draw(st.sampled_from([0, 1, 250, 250, 7_000, -3_000]))
        ingest: int | None = (t or 0) + lag_ms * 10**6
        hole = draw(st.integers(0, 60))
        if hole == 0:
            seq = None
        elif hole == 1:
            t = None
        elif hole == 2:
            ingest = None
        kind = draw(st.sampled_from(["quote", "fill", "order_new"]))
        rows.append(Row(draw(st.sampled_from(sources)), kind, t, seq, ingest))
    if draw(st.booleans()):  # stored out of seq order
        rows = draw(st.permutations(rows))
    return rows


@st.composite
def windows(draw: st.DrawFn) -> EventFilter:
    start = draw(st.one_of(st.none(), st.integers(0, 200).map(lambda s: s * NS)))
    end = draw(st.one_of(st.none(), st.integers(0, 400).map(lambda s: s * NS)))
    if start is not None and end is not None and end < start:
        start, end = end, start
    return EventFilter(start=start, end=end)


def _load(store: DuckDBStore, rows: list[Row]) -> None:
    con = store._con
    con.execute("DELETE FROM events")
    if rows:
        con.executemany(
            "INSERT INTO events (event_id, source, kind, ts, seq, ts_ingest) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [[f"e{i}", r.source, r.kind, r.ts, r.seq, r.ts_ingest] for i, r in enumerate(rows)],
        )


def _reference(store: DuckDBStore, flt: EventFilter) -> quality.SourceActivity:
    aggregates = quality._aggregates(store.sql)
    return quality.SourceActivity(
        quality._by_source_sorted(store, flt, aggregates), quality._gaps_sorted(store, flt, 5, None)
    )


def _same_rows(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert [r["source"] for r in got] == [r["source"] for r in want]
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys(), (g, w)
        for k, v in w.items():
            if k == "lag_mean" and v is not None:
                assert math.isclose(g[k], v, rel_tol=1e-12, abs_tol=1e-12), (k, g, w)
            else:
                assert g[k] == v, (k, g, w)


def _same_gaps(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert got == want


@pytest.mark.parametrize("batch_rows", [source_stats.BATCH_ROWS, 3])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(rows=stores(), flt=windows())
def test_source_activity_matches_sql_windows(
    store: DuckDBStore,
    monkeypatch: pytest.MonkeyPatch,
    batch_rows: int,
    rows: list[Row],
    flt: EventFilter,
) -> None:
    monkeypatch.setattr(source_stats, "BATCH_ROWS", batch_rows)
    _load(store, rows)
    got, want = quality.source_activity(store, flt), _reference(store, flt)
    _same_rows(got.sources, want.sources)
    _same_gaps(got.gaps, want.gaps)


def test_quantile_cont_matches_duckdb(store: DuckDBStore) -> None:
    """Spot check of the interpolation on values whose neighbours differ."""
    values = [0.1 * i * i for i in range(1, 998)]
    want = (
        store.query(
            f"SELECT quantile_cont(x, {list(QUANTILES)}) AS q FROM unnest(?::DOUBLE[]) t(x)",
            [values],
        )
        .column("q")[0]
        .as_py()
    )
    assert source_stats.quantile_cont(np.array(values[::-1]), QUANTILES) == want


def test_rows_of_an_unlisted_source_are_left_out() -> None:
    """A source written between the listing of the sources and the read (null code)."""
    batch = pa.RecordBatch.from_pydict(
        {"code": [0, None, 0], "ts": [1 * NS, 2 * NS, 4 * NS], "seq": [1, 2, 3],
         "ts_ingest": [1 * NS, 2 * NS, 4 * NS]},
        schema=pa.schema([("code", pa.int16()), ("ts", pa.int64()), ("seq", pa.int64()),
                          ("ts_ingest", pa.int64())]),
    )  # fmt: skip
    got = source_stats.source_stats([batch], ["a"], QUANTILES, 5)
    assert [(r["source"], r["events"]) for r in got.rows] == [("a", 2)]
    assert [g["gap_s"] for g in got.gaps] == [3.0]
    assert got.redo == {} and got.nulls == []
