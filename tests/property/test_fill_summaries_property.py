"""Fill summaries on DuckDB: the NumPy path (``storage/queries/fill_stats.py``) against the
grouping-sets SQL it replaces (``tca.fill_summaries`` forced to it with ``use_sql=True``), on
random small stores (real DuckDB):

- fills with null venue, strategy, symbol or liquidity (a group of their own), null
  slippage (no benchmark), null or zero quantity, null price, null fee, null side;
- mids at the fill missing, zero or negative (no spread capture), one-sided books;
- slippage from a small set (ties across and within groups), negative and zero values,
  single fills per group, groups whose fills all lack a slippage;
- other events in between (quotes), windows and key filters, empty windows.

Exact: counts, key values, groupings and quantiles (the same values and the same
interpolation as DuckDB's ``quantile_cont``, bit for bit). Sums, means, the weighted mean
and the spread capture to 1e-12 relative (1e-9 absolute near 0): the same values added in
another order, as between two runs of DuckDB's parallel aggregation. Special values
(±inf, NaN, huge and subnormal slippage) are compared separately: quantiles exactly, the
rest as NaN-aware equality where IEEE makes the result independent of the order."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.property.windows import windows
from tradelog.storage.base import EventFilter
from tradelog.storage.duckdb_store import DuckDBStore
from tradelog.storage.queries import tca

NS = 1_000_000_000
KEYS = ("venue", "strategy_id", "symbol", "liquidity")


@dataclass(frozen=True)
class Fill:
    ts: int
    symbol: str | None
    venue: str | None
    strategy_id: str | None
    liquidity: str | None
    side: str | None
    last_qty: float | None
    last_px: float | None
    fee: float | None
    mkt_bid: float | None
    mkt_ask: float | None
    slippage_bps: float | None


price = st.floats(90.0, 110.0, allow_nan=False).map(lambda x: round(x, 3))
slippage = st.one_of(
    st.none(),
    st.sampled_from([-2.5, -1.0, 0.0, 0.0, 0.5, 1.0, 3.25]),  # ties
    st.floats(-50.0, 50.0, allow_nan=False).map(lambda x: round(x, 4)),
    st.floats(-1e4, 1e4, allow_nan=False, allow_subnormal=False),
)


@st.composite
def fills(draw: st.DrawFn, slip: st.SearchStrategy[float | None] = slippage) -> Fill:
    bid, ask = draw(st.one_of(
        st.tuples(price, price),  # crossed books too
        st.tuples(st.none() | price, st.none()), st.tuples(st.none(), price),  # one-sided
        st.sampled_from([(-1.0, 1.0), (0.0, 0.0), (-3.0, -1.0), (-1.0, 0.5)]),  # mid <= 0
    ))  # fmt: skip
    return Fill(
        ts=draw(st.integers(0, 100)) * NS,
        symbol=draw(st.sampled_from(["A", "B", "C", None])),
        venue=draw(st.sampled_from(["X", "Y", None])),
        strategy_id=draw(st.sampled_from(["s1", "s2", "s3", None])),
        liquidity=draw(st.sampled_from(["maker", "taker", None])),
        side=draw(st.sampled_from(["buy", "sell", "buy", "sell", None])),
        last_qty=draw(st.one_of(st.none(), st.just(0.0), st.floats(0.001, 1e4).map(
            lambda x: round(x, 3)))),
        last_px=draw(st.one_of(price, price, price, st.none())),
        fee=draw(st.one_of(st.none(), st.floats(-5.0, 5.0).map(lambda x: round(x, 4)))),
        mkt_bid=bid,
        mkt_ask=ask,
        slippage_bps=draw(slip),
    )  # fmt: skip


def _load(store: DuckDBStore, rows: list[Fill], quotes: int) -> None:
    con = store._con
    con.execute("DELETE FROM events")
    events = [
        ["fill", r.ts, r.symbol, r.venue, r.strategy_id, r.liquidity, r.side, r.last_qty,
         r.last_px, r.fee, r.mkt_bid, r.mkt_ask, r.slippage_bps]
        for r in rows
    ]  # fmt: skip
    # other events, which carry prices and keys too: never counted
    events += [["quote", i * NS, "A", "X", "s1", None, None, None, None, None, 100.0, 100.5,
                1.0] for i in range(quotes)]  # fmt: skip
    if not events:
        return
    con.executemany(
        "INSERT INTO events (event_id, kind, ts, symbol, venue, strategy_id, liquidity, side, "
        "last_qty, last_px, fee, mkt_bid, mkt_ask, slippage_bps, seq) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[f"e{i}", *e, i + 1] for i, e in enumerate(events)],
    )


def _keyed(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    out = {tuple((r[f"g_{k}"], r[k]) for k in KEYS): r for r in rows}
    assert len(out) == len(rows), "a group twice"
    return out


def _same_float(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


def _same(got: list[dict[str, Any]], want: list[dict[str, Any]], special: bool = False) -> None:
    g, w = _keyed(got), _keyed(want)
    assert g.keys() == w.keys()
    for key, row in w.items():
        mine = g[key]
        assert list(mine) == list(row), key
        for k, v in row.items():
            m = mine[k]
            assert type(m) is type(v), (key, k, m, v)
            if k == "q" and v is not None:
                assert len(m) == len(v), (key, m, v)
                assert all(_same_float(a, b) for a, b in zip(m, v, strict=True)), (key, m, v)
            elif isinstance(v, float) and not special and math.isfinite(v):
                assert math.isclose(m, v, rel_tol=1e-12, abs_tol=1e-9), (key, k, m, v)
            elif not special or k in ("fills", "with_benchmark", *KEYS):
                assert _same_float(m, v), (key, k, m, v)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(fills(), min_size=0, max_size=40),
    flt=windows(100, 60),
    quotes=st.sampled_from([0, 5]),
)
def test_numpy_fill_summaries_match_sql(
    store: DuckDBStore, rows: list[Fill], flt: EventFilter, quotes: int
) -> None:
    _load(store, rows, quotes)
    _same(tca.fill_summaries(store, flt), tca.fill_summaries(store, flt, use_sql=True))


extreme = st.one_of(
    st.none(),
    st.sampled_from([math.inf, -math.inf, math.nan, 0.0, -0.0, 1.0, 5e-324, -1.7e308, 1.7e308]),
    st.floats(allow_nan=True, allow_infinity=True),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(fills(extreme), min_size=1, max_size=30))
def test_quantiles_of_special_values_match_sql(store: DuckDBStore, rows: list[Fill]) -> None:
    """±inf, NaN, huge and subnormal values: quantiles exactly as DuckDB's (NaN sorts
    above +inf, interpolation overflows and NaNs as in IEEE); sums of huge values depend
    on the order of addition, in DuckDB too, so only counts and quantiles are compared."""
    _load(store, rows, 0)
    flt = EventFilter()
    _same(tca.fill_summaries(store, flt), tca.fill_summaries(store, flt, use_sql=True), True)


def test_empty_window_gives_the_overall_row(store: DuckDBStore) -> None:
    _load(store, [], 3)
    want = tca.fill_summaries(store, EventFilter(), use_sql=True)
    got = tca.fill_summaries(store, EventFilter())
    assert got == want
    assert got == [{
        **dict.fromkeys(KEYS), **{f"g_{k}": 1 for k in KEYS}, "fills": 0, "with_benchmark": 0,
        "notional": None, "qty": None, "fees": None, "mean": None, "q": None,
        "notional_weighted": None, "spread_capture": None,
    }]  # fmt: skip
