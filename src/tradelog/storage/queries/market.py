"""Market data: OHLCV bars from public trades (``market_trade``) and the top of book
(latest ``quote``).

Bars are time buckets of ``width_ns`` (1 s, 1 m, 5 m) labelled by their start, from the
trades of one symbol (all venues, or one): open/close are the first/last trade by
(``ts``, ``seq``), volume = Σ qty, VWAP = Σ price·qty / Σ qty, trades = count. Never
backfilled: an interval without a trade has no bar. The window is widened to whole bars
(start rounded down, end rounded up), so every bar returned is complete for the data stored.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from tradelog.storage.base import EventFilter, Store
from tradelog.storage.sql import Sql

MIN_NS: Final = -(2**63)
MAX_NS: Final = 2**63 - 1
BAR_COLUMNS: Final = ("ts_ns", "open", "high", "low", "close", "volume", "notional", "vwap",
                      "trades")  # fmt: skip
QUOTE_COLUMNS: Final = ("ts", "venue", "bid", "ask", "bid_size", "ask_size", "event_id")


def _first(s: Sql, value: str) -> str:
    """``value`` of the group's first row by (ts, seq)."""
    if s.dialect == "duckdb":
        return f"arg_min({value}, (ts, seq))"
    return f"(array_agg({value} ORDER BY ts, seq))[1]"


def _last(s: Sql, value: str) -> str:
    """``value`` of the group's last row by (ts, seq)."""
    if s.dialect == "duckdb":
        return f"arg_max({value}, (ts, seq))"
    return f"(array_agg({value} ORDER BY ts DESC, seq DESC))[1]"


def align_window(flt: EventFilter, width_ns: int) -> EventFilter:
    """The window widened to whole bars: start down, end up to a multiple of ``width_ns``."""
    start, end = flt.start, flt.end
    if start is not None:
        start = max(MIN_NS, (start // width_ns) * width_ns)
    if end is not None:
        end = min(MAX_NS, -((-end) // width_ns) * width_ns)
    return dataclasses.replace(flt, start=start, end=end)


def _trades_where(
    store: Store, flt: EventFilter, symbols: tuple[str, ...]
) -> tuple[str, list[Any]]:
    p = store.sql.p
    trades = EventFilter(start=flt.start, end=flt.end, venue=flt.venue)
    where, params = store.sql.where(
        trades,
        extra=[
            "kind = 'market_trade'",
            f"symbol IN ({', '.join(p for _ in symbols)})",
            "price IS NOT NULL",
            "qty IS NOT NULL",
        ],
    )
    return where, [*symbols, *params]


def bars(
    store: Store, symbol: str, width_ns: int, flt: EventFilter, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """The last ``limit`` bars of ``symbol`` in the window (ascending by start), and
    whether older bars were left out. ``flt`` gives the window and the venue."""
    s = store.sql
    where, params = _trades_where(store, align_window(flt, width_ns), (symbol,))
    sql = f"""
        SELECT {s.bucket("ts", width_ns)} AS ts_ns,
               {_first(s, "price")} AS open, max(price) AS high, min(price) AS low,
               {_last(s, "price")} AS close,
               sum(qty) AS volume, sum(price * qty) AS notional,
               CASE WHEN sum(qty) > 0 THEN sum(price * qty) / sum(qty) END AS vwap,
               count(*) AS trades
        FROM events {where}
        GROUP BY 1 ORDER BY 1 DESC LIMIT {int(limit) + 1}
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    truncated = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    return rows, truncated


def pair_closes(
    store: Store, a: str, b: str, width_ns: int, flt: EventFilter, limit: int
) -> list[dict[str, Any]]:
    """Closes of ``a`` and ``b`` on the bar times where both traded (the last ``limit`` of
    them, ascending): ``ts_ns``, ``a_close``, ``b_close``."""
    s = store.sql
    p = s.p
    where, params = _trades_where(store, align_window(flt, width_ns), (a, b))
    sql = f"""
        WITH c AS (
            SELECT symbol, {s.bucket("ts", width_ns)} AS ts_ns, {_last(s, "price")} AS close
            FROM events {where}
            GROUP BY 1, 2
        )
        SELECT x.ts_ns AS ts_ns, x.close AS a_close, y.close AS b_close
        FROM c x JOIN c y ON x.ts_ns = y.ts_ns
        WHERE x.symbol = {p} AND y.symbol = {p}
        ORDER BY x.ts_ns DESC LIMIT {int(limit)}
    """
    rows: list[dict[str, Any]] = store.query(sql, [*params, a, b]).to_pylist()
    rows.reverse()
    return rows


def top_of_book(store: Store, symbol: str, venue: str | None = None) -> dict[str, Any] | None:
    """The latest quote of ``symbol`` (on ``venue``, or on any venue): ts, venue, bid, ask,
    bid_size, ask_size, event_id; None if the symbol has no quote."""
    p = store.sql.p
    where, params = store.sql.where(
        EventFilter(venue=venue), extra=["kind = 'quote'", f"symbol = {p}"]
    )
    sql = f"""
        SELECT {", ".join(QUOTE_COLUMNS)} FROM events {where}
        ORDER BY ts DESC, seq DESC LIMIT 1
    """
    rows = store.query(sql, [symbol, *params]).to_pylist()
    return dict(rows[0]) if rows else None


def book_by_venue(store: Store, symbol: str) -> list[dict[str, Any]]:
    """The latest quote of ``symbol`` on each venue that quoted it, by venue."""
    p = store.sql.p
    sql = f"""
        SELECT {", ".join(f"e.{c}" for c in QUOTE_COLUMNS)}, e.seq
        FROM events e JOIN (
            SELECT venue, max(ts) AS ts FROM events
            WHERE kind = 'quote' AND symbol = {p} GROUP BY venue
        ) m ON e.venue IS NOT DISTINCT FROM m.venue AND e.ts = m.ts
        WHERE e.kind = 'quote' AND e.symbol = {p}
        ORDER BY e.venue, e.seq
    """
    latest: dict[str, dict[str, Any]] = {}
    for row in store.query(sql, [symbol, symbol]).to_pylist():
        row.pop("seq")
        latest[row["venue"]] = row  # the last (highest seq) of equal times wins
    return list(latest.values())
