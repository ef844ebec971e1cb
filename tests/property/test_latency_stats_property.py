"""Latency analysis on DuckDB: the NumPy path (``storage/queries/latency_stats.py``) against
the three queries it replaces there (``latency.summaries``, ``histogram``, ``trend``), on
random small stores (real DuckDB):

- acks, fills and cancels with null venue, strategy, symbol or order type (a group of their
  own), null latency (not counted), zero, negative (clock skew: counted apart) and
  duplicate latencies, kinds or groups with only negative ones, single values;
- events of other kinds with a latency (never counted), null timestamps, several minutes;
- windows, key filters and the order type filter, empty windows.

Exact: groupings, key values, counts, negatives, maxima, quantiles (the same values and the
same interpolation as DuckDB's ``quantile_cont``, bit for bit), histogram rows and trend
rows in the SQL's order. Means to 1e-12 relative: the same values added in another order."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.property.windows import windows
from tradelog.analytics.stats import QUANTILES
from tradelog.storage.base import EventFilter
from tradelog.storage.duckdb_store import DuckDBStore
from tradelog.storage.queries import latency as lat
from tradelog.storage.queries import latency_stats

NS = 1_000_000_000
KEYS = lat.GROUPS
Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Event:
    kind: str
    ts: int | None
    venue: str | None
    strategy_id: str | None
    symbol: str | None
    order_type: str | None
    latency_ms: float | None


latency = st.one_of(
    st.none(),
    st.sampled_from([0.0, 0.0, 0.5, 1.0, 1.0, 2.75, 10.0, -1.0, -0.25]),  # ties, zero, skew
    st.floats(0.001, 2000.0).map(lambda x: round(x, 3)),
    st.floats(-50.0, 5000.0, allow_nan=False),
    st.floats(1e-9, 1e9, allow_nan=False),
)


@st.composite
def events(draw: st.DrawFn) -> Event:
    return Event(
        kind=draw(st.sampled_from(["order_ack", "fill", "order_cancelled", "order_ack",
                                   "fill", "quote"])),
        ts=draw(st.one_of(st.integers(0, 300).map(lambda s: s * NS + 7),
                          st.integers(0, 300).map(lambda s: s * NS), st.just(None))),
        venue=draw(st.sampled_from(["X", "Y", None])),
        strategy_id=draw(st.sampled_from(["s1", "s2", "s3", None])),
        symbol=draw(st.sampled_from(["A", "B", "C", None])),
        order_type=draw(st.sampled_from(["limit", "market", None])),
        latency_ms=draw(latency),
    )  # fmt: skip


def _load(store: DuckDBStore, rows: list[Event]) -> None:
    con = store._con
    con.execute("DELETE FROM events")
    if not rows:
        return
    con.executemany(
        "INSERT INTO events (event_id, kind, ts, venue, strategy_id, symbol, order_type, "
        "latency_ms, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[f"e{i}", r.kind, r.ts, r.venue, r.strategy_id, r.symbol, r.order_type,
          r.latency_ms, i + 1] for i, r in enumerate(rows)],
    )  # fmt: skip


def _numpy(store: DuckDBStore, flt: EventFilter, order_type: str | None) -> tuple[Rows, ...]:
    where, params = lat._base(store, flt, order_type)
    got = latency_stats.analysis(
        store, where, params, kinds=list(lat.KINDS.values()), groups=KEYS,
        quantiles=QUANTILES, trend_quantiles=lat.TREND_QUANTILES,
        minute_ns=lat.MINUTE_NS, bucket=lat.BUCKET,
    )  # fmt: skip
    assert got is not None, "the NumPy path fell back to SQL"
    assert got == lat.analysis(store, flt, order_type)
    return got


def _sql(store: DuckDBStore, flt: EventFilter, order_type: str | None) -> tuple[Rows, ...]:
    return (
        lat.summaries(store, flt, order_type),
        lat.histogram(store, flt, order_type),
        lat.trend(store, flt, order_type),
    )


def _same_row(mine: dict[str, Any], row: dict[str, Any]) -> None:
    assert list(mine) == list(row), (mine, row)
    for k, v in row.items():
        m = mine[k]
        assert type(m) is type(v), (k, m, v, row)
        if k == "mean" and v is not None:
            assert math.isclose(m, v, rel_tol=1e-12, abs_tol=1e-300), (m, v, row)
        else:
            assert m == v, (k, m, v, row)


def _same(got: tuple[Rows, ...], want: tuple[Rows, ...]) -> None:
    summaries, histogram, trend = got
    w_summaries, w_histogram, w_trend = want
    assert histogram == w_histogram
    assert len(trend) == len(w_trend)
    for mine, row in zip(trend, w_trend, strict=True):
        _same_row(mine, row)

    def keyed(rows: Rows) -> dict[tuple[Any, ...], dict[str, Any]]:
        out = {(r["kind"], *((r[f"g_{k}"], r[k]) for k in KEYS)): r for r in rows}
        assert len(out) == len(rows), "a group twice"
        return out

    g, w = keyed(summaries), keyed(w_summaries)
    assert g.keys() == w.keys()
    for key, row in w.items():
        _same_row(g[key], row)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(events(), min_size=0, max_size=60),
    flt=windows(300, 200),
    order_type=st.sampled_from([None, None, None, "limit", "stop"]),
)
def test_numpy_latency_analysis_matches_sql(
    store: DuckDBStore, rows: list[Event], flt: EventFilter, order_type: str | None
) -> None:
    _load(store, rows)
    _same(_numpy(store, flt, order_type), _sql(store, flt, order_type))


def test_empty_window_and_negative_only_kinds(store: DuckDBStore) -> None:
    _load(store, [Event("quote", NS, "X", "s1", "A", "limit", 3.0)])
    assert _numpy(store, EventFilter(), None) == ([], [], []) == _sql(store, EventFilter(), None)
    _load(store, [
        Event("order_ack", NS, "X", "s1", "A", "limit", -2.0),
        Event("order_ack", 2 * NS, "Y", None, "A", "limit", -1.0),
        Event("fill", 61 * NS, "X", "s1", "A", "market", 4.0),
        Event("fill", 62 * NS, "X", "s1", "A", "market", -3.0),
    ])  # fmt: skip
    got = _numpy(store, EventFilter(), None)
    _same(got, _sql(store, EventFilter(), None))
    overall = {r["kind"]: r for r in got[0] if all(r[f"g_{k}"] for k in KEYS)}
    assert overall["order_ack"]["n"] == 0 and overall["order_ack"]["negative"] == 2
    assert overall["order_ack"]["q"] is None and overall["order_ack"]["mx"] is None
    assert overall["fill"]["q"] == [4.0] * len(QUANTILES) and overall["fill"]["mx"] == 4.0
    assert [r["kind"] for r in got[1]] == ["fill"]  # histogram: non-negative only
    assert [(r["kind"], r["minute_ns"], r["n"]) for r in got[2]] == [("fill", 60 * NS, 1)]


def test_many_rows_per_group(store: DuckDBStore) -> None:
    """Groups large enough for the values to fill many bins, with ties and zeros."""
    rows = [
        Event(("order_ack", "fill", "order_cancelled")[i % 3], (i % 400) * NS // 2,
              ("X", "Y", None)[i % 7 % 3], ("s1", "s2")[i % 5 % 2], ("A", "B", "C")[i % 11 % 3],
              ("limit", None)[i % 13 % 2], round((i * 7919 % 1000) * 0.37, 2) - (i % 97 == 0))
        for i in range(6000)
    ]  # fmt: skip
    _load(store, rows)
    for flt in (EventFilter(), EventFilter(start=10 * NS, end=150 * NS, venue="X")):
        _same(_numpy(store, flt, None), _sql(store, flt, None))
