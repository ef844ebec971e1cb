"""Markouts on DuckDB: the NumPy path (``storage/queries/markouts.py``) against the SQL
as-of join it replaces (``tca.markouts`` forced to it with ``max_quotes=-1``) and against a
plain Python as-of lookup, on random small stores (real DuckDB):

- quotes on a coarse time grid (many at the same ts, also in other venues), one-sided
  quotes (no mid), symbols without quotes, fills without symbol, time, side or price;
- fills on a 1 s grid, so ts + h often falls exactly on a quote (the as-of bound);
- fills before any quote of their symbol and near the end of the data (no mid);
- rows stored out of time order, with seq in or out of storage order, some without seq;
- windows (bounded quote reads, with the exact re-run when a fill is not covered) and
  filters on the fills.

Several quotes of a symbol at one ts: the NumPy path takes the last in seq order (events
without seq first, in storage order), as the Python reference does; the SQL as-of join
takes any of them, so it is compared only when such quotes have the same mid.

Exact: counts, ``missing`` and medians (the same values and the same interpolation as
DuckDB's ``quantile_cont``); means to 1e-12 relative (the order of summation differs, as
it does between two runs of DuckDB's parallel ``avg``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradelog.storage.base import EventFilter
from tradelog.storage.duckdb_store import DuckDBStore
from tradelog.storage.queries import tca

NS = 1_000_000_000
SYMBOLS = ("A", "B", "C")


@dataclass(frozen=True)
class Row:
    kind: str
    symbol: str | None
    ts: int | None
    venue: str
    bid: float | None = None
    ask: float | None = None
    side: str | None = None
    last_px: float | None = None
    liquidity: str | None = None


price = st.floats(90.0, 110.0, allow_nan=False).map(lambda x: round(x, 3))
quote = st.builds(
    lambda sym, k, nudge, bid, spread, one_sided, venue: Row(
        "quote", sym, k * 5 * NS + nudge, venue,
        bid=None if one_sided == "no_bid" else bid,
        ask=None if one_sided == "no_ask" else round(bid + spread, 3),
    ),
    st.sampled_from(SYMBOLS), st.one_of(st.integers(0, 60), st.sampled_from([1, 2, 6, 12])),
    st.sampled_from([0, 0, 0, 1]), price,
    st.floats(0.0, 1.0, allow_nan=False), st.sampled_from(["", "", "", "no_bid", "no_ask"]),
    st.sampled_from(["X", "Y"]),
)  # fmt: skip
fill = st.builds(
    lambda sym, j, side, px, liq, venue: Row(
        "fill", sym, None if j < 0 else j * NS, venue, side=side, last_px=px, liquidity=liq
    ),
    st.sampled_from([*SYMBOLS, "A", "D", None]),
    st.one_of(st.integers(-1, 330), st.sampled_from([4, 5, 9, 10, 29, 30])),
    st.sampled_from(["buy", "sell", "buy", "sell", None]),
    st.one_of(price, price, price, st.none()), st.sampled_from(["maker", "taker", None]),
    st.sampled_from(["X", "Y"]),
)  # fmt: skip


@st.composite
def stores(draw: st.DrawFn) -> tuple[list[Row], list[int | None], EventFilter, bool]:
    quotes = draw(st.lists(quote, min_size=draw(st.sampled_from([0, 20])), max_size=60))
    if draw(st.booleans()):  # the data reaches past every fill's horizons for A and B
        quotes += [Row("quote", sym, 400 * NS, "X", bid=100.0, ask=100.5) for sym in "AB"]
    if quotes:  # more quotes at the same time as others (the same symbol and ts)
        for i, bid in draw(st.lists(st.tuples(st.integers(0, 10**6), price), max_size=12)):
            q = quotes[i % len(quotes)]
            quotes.append(Row("quote", q.symbol, q.ts, "Y", bid=bid, ask=bid + 0.5))
    rows = quotes + draw(st.lists(fill, min_size=draw(st.sampled_from([1, 10])), max_size=30))
    if draw(st.booleans()):  # tied quotes of a symbol share their mid
        first: dict[tuple[str | None, int | None], Row] = {}
        rows = [first.setdefault((r.symbol, r.ts), r) if r.kind == "quote" else r for r in rows]
    rows = draw(st.permutations(rows))  # storage order
    n = len(rows)
    mode = draw(st.sampled_from(["storage", "shuffled", "some_null"]))
    seq: list[int | None] = list(range(1, n + 1))
    if mode == "shuffled":
        seq = list(draw(st.permutations(seq)))
    elif mode == "some_null":
        nulls = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        seq = [None if z else s for s, z in zip(seq, nulls, strict=True)]
    start = draw(st.one_of(st.none(), st.none(), st.integers(0, 330).map(lambda s: s * NS)))
    end = None
    if start is not None and draw(st.booleans()):
        end = start + draw(st.integers(0, 200)) * NS
    flt = EventFilter(
        start=start, end=end,
        symbol=draw(st.sampled_from([None] * 6 + ["A", "D"])),
        venue=draw(st.sampled_from([None] * 4 + ["X"])),
    )  # fmt: skip
    return rows, seq, flt, draw(st.booleans())


def _load(store: DuckDBStore, rows: list[Row], seq: list[int | None]) -> None:
    con = store._con
    con.execute("DELETE FROM events")
    con.executemany(
        "INSERT INTO events (event_id, kind, ts, symbol, venue, bid, ask, side, last_px, "
        "liquidity, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[f"e{i}", r.kind, r.ts, r.symbol, r.venue, r.bid, r.ask, r.side, r.last_px,
          r.liquidity, s] for i, (r, s) in enumerate(zip(rows, seq, strict=True))],
    )  # fmt: skip


def _reference(
    rows: list[Row], seq: list[int | None], flt: EventFilter
) -> dict[tuple[int, str | None], dict[str, Any]]:
    """As-of lookup in Python: the latest two-sided quote of the symbol with ts <= fill.ts
    + h, among equal ts the last in seq order (no seq first, then storage order); null
    when fill.ts + h is after the symbol's last quote."""
    book: dict[str, list[tuple[tuple[int, bool, int, int], float]]] = {}
    for i, (r, s) in enumerate(zip(rows, seq, strict=True)):
        if r.kind == "quote" and r.bid is not None and r.ask is not None and r.ts is not None:
            key = (r.ts, s is not None, s or 0, i)
            book.setdefault(str(r.symbol), []).append((key, (r.bid + r.ask) / 2))
    for quotes in book.values():
        quotes.sort()
    fills = [
        r for r in rows
        if r.kind == "fill"
        and (flt.start is None or (r.ts is not None and r.ts >= flt.start))
        and (flt.end is None or (r.ts is not None and r.ts < flt.end))
        and (flt.symbol is None or r.symbol == flt.symbol)
        and (flt.venue is None or r.venue == flt.venue)
    ]  # fmt: skip
    out: dict[tuple[int, str | None], dict[str, Any]] = {}
    groups = [(1, None), *sorted({(0, f.liquidity) for f in fills}, key=lambda g: str(g[1]))]
    for h in tca.MARKOUT_HORIZONS_S:
        per: dict[tuple[int, str | None], tuple[list[float], list[float], list[int]]] = {
            g: ([], [], []) for g in groups
        }
        for f in fills:
            quotes = book.get(str(f.symbol), []) if f.symbol is not None else []
            mid = None
            missing = 0
            if f.ts is not None and quotes and f.ts + h * NS <= quotes[-1][0][0]:
                before = [m for k, m in quotes if k[0] <= f.ts + h * NS]
                if before:
                    mid = before[-1]
                else:
                    missing = 1
            sgn = {"buy": 1, "sell": -1}.get(str(f.side))
            for g in ((1, None), (0, f.liquidity)):
                mids, xs, miss = per[g]
                miss.append(missing)
                if mid is not None:
                    mids.append(mid)
                    if sgn is not None and f.last_px is not None:
                        xs.append(sgn * (mid - f.last_px) / f.last_px * 1e4)
        for g, (mids, xs, miss) in per.items():
            row = out.setdefault(g, {"missing": 0})
            row[f"n_{h}s"] = len(mids)
            row[f"mean_{h}s"] = sum(xs) / len(xs) if xs else None
            row[f"median_{h}s"] = _median(xs)
            row["missing"] += sum(miss)
    return out


def _median(xs: list[float]) -> float | None:
    if not xs:
        return None
    v = sorted(xs)
    k = (len(v) - 1) // 2
    return v[k] if len(v) % 2 else v[k] * 0.5 + v[k + 1] * 0.5


def _keyed(rows: list[dict[str, Any]]) -> dict[tuple[int, str | None], dict[str, Any]]:
    return {(int(r["g_liquidity"]), r["liquidity"]): {k: v for k, v in r.items()
            if k not in ("g_liquidity", "liquidity")} for r in rows}  # fmt: skip


def _same(got: dict[Any, dict[str, Any]], want: dict[Any, dict[str, Any]]) -> None:
    assert got.keys() == want.keys()
    for g, row in want.items():
        assert got[g].keys() == row.keys(), g
        for k, v in row.items():
            if k.startswith("mean_") and v is not None and got[g][k] is not None:
                assert math.isclose(got[g][k], v, rel_tol=1e-12, abs_tol=1e-9), (g, k)
            else:
                assert got[g][k] == v, (g, k, got[g][k], v)


def _distinct_ties(rows: list[Row]) -> bool:
    mids: dict[tuple[str | None, int | None], set[float]] = {}
    for r in rows:
        if r.kind == "quote" and r.bid is not None and r.ask is not None:
            mids.setdefault((r.symbol, r.ts), set()).add((r.bid + r.ask) / 2)
    return any(len(m) > 1 for m in mids.values())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=stores())
def test_numpy_markouts_match_sql_and_python(
    store: DuckDBStore, case: tuple[list[Row], list[int | None], EventFilter, bool]
) -> None:
    rows, seq, flt, _ = case
    _load(store, rows, seq)
    got = tca.markouts(store, flt)
    _same(_keyed(got), _reference(rows, seq, flt))
    if not _distinct_ties(rows):
        _same(_keyed(got), _keyed(tca.markouts(store, flt, max_quotes=-1)))
