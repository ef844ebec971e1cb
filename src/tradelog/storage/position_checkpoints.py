"""Hourly position checkpoints: per strategy × account × symbol and event-time hour, the
position state after the key's last fill (highest ``seq``) whose ``ts`` falls in that hour.

They make "the state before time t" (positions as of a time, PnL of a window, the equity
curve's opening state) cheap: instead of every fill before ``t``, read the checkpoints of
the whole hours before ``t``'s hour plus the fills of ``t``'s own hour. The answer is the
same as from the fills alone: the state at the highest ``seq`` among fills with ``ts < t``
is the highest ``seq`` among those two sets, because every hour's checkpoint holds its own
highest ``seq`` (upserts keep the higher one, so late and redelivered fills are harmless)
and ``max(ts)`` merges the same way.

Written with every batch (both stores, in the batch's transaction) and filled from the
stored fills by the migration that created the table.
"""

from __future__ import annotations

from typing import Any, Final

import pyarrow as pa

from tradelog.model.events import Event, EventKind
from tradelog.storage.base import EventFilter
from tradelog.storage.sql import Sql

HOUR_NS: Final = 3600 * 1_000_000_000
TABLE: Final = "position_checkpoints"
STATE: Final = ("pos_after", "avg_cost_after", "realized_after", "fees_after", "last_px")
COLUMNS: Final = ("key", "hour", "strategy_id", "account_id", "symbol", "seq", "ts", *STATE)
SCHEMA: Final = pa.schema([
    ("key", pa.string()), ("hour", pa.int64()), ("strategy_id", pa.string()),
    ("account_id", pa.string()), ("symbol", pa.string()), ("seq", pa.int64()),
    ("ts", pa.int64()), *((c, pa.float64()) for c in STATE),
])  # fmt: skip


def key_of(strategy: str | None, account: str | None, symbol: str | None) -> str:
    """The primary-key text of a strategy × account × symbol: each part length-prefixed
    (``3:abc``), null as ``-``, so no two keys share a text whatever the parts hold."""
    return ";".join("-" if p is None else f"{len(p)}:{p}" for p in (strategy, account, symbol))


def hour_of(ts: int) -> int:
    """Start of the event-time hour of ``ts`` (floor, also before 1970)."""
    return ts - ts % HOUR_NS


def _key_sql(alias: str = "") -> str:
    a = f"{alias}." if alias else ""
    parts = [f"coalesce(CAST(length({a}{c}) AS TEXT) || ':' || {a}{c}, '-')"
             for c in ("strategy_id", "account_id", "symbol")]  # fmt: skip
    return " || ';' || ".join(parts)


def _hour_sql(ts: str) -> str:
    """SQL floor of ``ts`` to its hour in both dialects (``%`` truncates towards zero)."""
    return f"({ts} - (({ts} % {HOUR_NS}) + {HOUR_NS}) % {HOUR_NS})"


def batch_rows(events: list[Event]) -> list[list[Any]]:
    """The checkpoint rows (``COLUMNS``) of one batch: per key and hour, its fills' highest
    ``seq`` state and latest ``ts``; empty without fills that carry a position."""
    best: dict[tuple[str, int], list[Any]] = {}
    for ev in events:
        if ev.kind is not EventKind.FILL or ev.pos_after is None:
            continue
        key = key_of(ev.strategy_id, ev.account_id, ev.symbol)
        slot = (key, hour_of(ev.ts))
        row = best.get(slot)
        if row is None:
            best[slot] = [key, slot[1], ev.strategy_id, ev.account_id, ev.symbol, ev.seq, ev.ts,
                          ev.pos_after, ev.avg_cost_after, ev.realized_after, ev.fees_after,
                          ev.last_px]  # fmt: skip
            continue
        row[6] = max(row[6], ev.ts)
        if ev.seq > row[5]:
            row[5] = ev.seq
            row[7:] = [ev.pos_after, ev.avg_cost_after, ev.realized_after, ev.fees_after,
                       ev.last_px]  # fmt: skip
    return list(best.values())


def as_table(rows: list[list[Any]]) -> pa.Table:
    """``batch_rows`` as Arrow (for DuckDB's insert from a registered table)."""
    columns = list(zip(*rows, strict=True))
    return pa.Table.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip(columns, SCHEMA, strict=True)],
        schema=SCHEMA,
    )


def upsert_sql(rows: str) -> str:
    """Merges ``rows`` (a ``SELECT`` or ``VALUES`` of ``COLUMNS``, one row per key and
    hour) into the table: the state of the higher ``seq`` wins, ``ts`` is the later one."""
    newer = f"excluded.seq > {TABLE}.seq OR {TABLE}.seq IS NULL"
    sets = ", ".join(
        f"{c} = CASE WHEN {newer} THEN excluded.{c} ELSE {TABLE}.{c} END" for c in STATE
    )
    return f"""
        INSERT INTO {TABLE} ({", ".join(COLUMNS)})
        {rows}
        ON CONFLICT (key, hour) DO UPDATE SET {sets},
            seq = CASE WHEN {newer} THEN excluded.seq ELSE {TABLE}.seq END,
            ts = greatest(excluded.ts, {TABLE}.ts)
    """


def backfill_sql(sql: Sql) -> str:
    """The rows of every stored fill, merged in (the migration that creates the table; safe
    to run again)."""
    state = ", ".join(f"{sql.arg_max_row(c, 'seq')} AS {c}" for c in STATE)
    return upsert_sql(f"""
        SELECT {_key_sql()} AS key, {_hour_sql("ts")} AS hour, strategy_id, account_id,
               symbol, max(seq) AS seq, max(ts) AS ts, {state}
        FROM events WHERE kind = 'fill' AND pos_after IS NOT NULL
        GROUP BY 1, 2, strategy_id, account_id, symbol
    """)


def rebuild_statements(sql: Sql) -> list[str]:
    """The table rebuilt from the stored fills (after fills were changed in place)."""
    return [f"DELETE FROM {TABLE}", backfill_sql(sql)]


def state_before_sql(sql: Sql, flt: EventFilter, before: int | None) -> tuple[str, list[Any]]:
    """A query of the state per strategy × account × symbol after its last fill with
    ``ts < before`` (all fills when None): ``strategy_id, account_id, symbol, seq, ts``
    (latest fill time) and ``STATE``. Of ``flt`` only the symbol, strategy and account
    apply (positions span venues; the time is ``before``)."""
    keys = EventFilter(symbol=flt.symbol, strategy=flt.strategy, account=flt.account)
    cols = f"strategy_id, account_id, symbol, seq, ts, {', '.join(STATE)}"
    p = sql.p
    if before is None:
        where, params = sql.where(keys)
        parts = f"SELECT {cols} FROM {TABLE} {where}"
    else:
        hour = hour_of(before)
        where_cp, params_cp = sql.where(keys, extra=[f"hour < {p}"])
        where_ev, params_ev = sql.where(
            keys, extra=["kind = 'fill'", "pos_after IS NOT NULL", f"ts >= {p}", f"ts < {p}"]
        )
        parts = f"""
            SELECT {cols} FROM {TABLE} {where_cp}
            UNION ALL
            SELECT {cols} FROM events {where_ev}
        """
        params = [hour, *params_cp, hour, before, *params_ev]
    state = ", ".join(f"{sql.arg_max_row(c, 'seq')} AS {c}" for c in STATE)
    return (
        f"""
        SELECT strategy_id, account_id, symbol, max(seq) AS seq, max(ts) AS ts, {state}
        FROM ({parts}) cp
        GROUP BY strategy_id, account_id, symbol
    """,
        params,
    )
