"""The few reads the report needs beyond ``storage/queries``: round-trip arrays for the
trade statistics, volume by symbol, the event span, and the alerts tables when the store
has them (read defensively: their columns are discovered, not assumed)."""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from tradelog.analytics.stats import LOG_BUCKETS_PER_DECADE
from tradelog.storage.base import EventFilter, Store
from tradelog.storage.queries import latency as lat

ALERT_TIME_COLUMNS: Final = ("ts_last", "updated_ns", "ts_end", "ts", "ts_start", "created_ns")
ALERT_HISTORY_TABLES: Final = ("alert_history", "alert_events", "alert_actions")


def span(store: Store, flt: EventFilter) -> tuple[int | None, int | None, int]:
    """(first ts, last ts, events) in the window."""
    where, params = store.sql.where(flt)
    row = store.query(
        f"SELECT min(ts) AS a, max(ts) AS b, count(*) AS n FROM events {where}", params
    ).to_pylist()[0]
    a, b = row["a"], row["b"]
    return (int(a) if a is not None else None, int(b) if b is not None else None, int(row["n"]))


def round_trip_arrays(
    store: Store, flt: EventFilter
) -> dict[str | None, tuple[np.ndarray, np.ndarray]]:
    """PnL (net of fees) and holding time (s) of the round trips closed in the window, per
    strategy; columns straight from Arrow (no per-row Python objects)."""
    where, params = store.sql.where(flt, ts="ts_close")
    table = store.query(
        f"""SELECT strategy_id, pnl, (ts_close - ts_open) / 1e9 AS holding_s
            FROM round_trips {where} ORDER BY strategy_id, ts_close""",
        params,
    )
    strategies = table.column("strategy_id").to_pylist()
    pnl = table.column("pnl").to_numpy(zero_copy_only=False).astype(np.float64)
    hold = table.column("holding_s").to_numpy(zero_copy_only=False).astype(np.float64)
    out: dict[str | None, tuple[np.ndarray, np.ndarray]] = {}
    start = 0
    for i in range(1, len(strategies) + 1):
        if i == len(strategies) or strategies[i] != strategies[start]:
            out[strategies[start]] = (pnl[start:i], hold[start:i])
            start = i
    return out


def latency_histograms(
    store: Store, flt: EventFilter
) -> dict[str | None, dict[str, list[tuple[int | None, int]]]]:
    """``latency.histogram`` overall (key None) and for every venue, from one scan
    grouped by venue instead of one scan per venue: counts add up, so the overall
    histogram is the sum over the venues (NULL venue included). Same buckets:
    log-spaced, None = exactly zero, non-negative latencies only."""
    kinds = ", ".join(f"'{k}'" for k in lat.KINDS.values())
    where, params = store.sql.where(flt, extra=[f"kind IN ({kinds})", "latency_ms >= 0"])
    sql = f"""
        SELECT kind, venue,
               CASE WHEN latency_ms > 0
                    THEN CAST(floor(log10(latency_ms) * {LOG_BUCKETS_PER_DECADE}) AS BIGINT)
               END AS bucket,
               count(*) AS n
        FROM events {where}
        GROUP BY 1, 2, 3
    """
    out: dict[str | None, dict[str, list[tuple[int | None, int]]]] = {None: {}}
    overall: dict[tuple[str, int | None], int] = {}
    for r in store.query(sql, params).to_pylist():
        kind, bucket, n = str(r["kind"]), r["bucket"], int(r["n"])
        overall[(kind, bucket)] = overall.get((kind, bucket), 0) + n
        if r["venue"] is not None:
            out.setdefault(r["venue"], {}).setdefault(kind, []).append((bucket, n))
    for (kind, bucket), n in overall.items():
        out[None].setdefault(kind, []).append((bucket, n))
    return out


def volume_by_symbol(store: Store, flt: EventFilter) -> list[dict[str, Any]]:
    """Our fills per symbol: count, quantity, notional (turnover), fees, buy and sell qty."""
    where, params = store.sql.where(flt, extra=["kind = 'fill'"])
    sql = f"""
        SELECT symbol, count(*) AS fills, sum(last_qty) AS qty,
               sum(last_qty * last_px) AS notional, sum(coalesce(fee, 0)) AS fees,
               sum(last_qty) FILTER (WHERE side = 'buy') AS buy_qty,
               sum(last_qty) FILTER (WHERE side = 'sell') AS sell_qty
        FROM events {where} GROUP BY symbol ORDER BY notional DESC NULLS LAST
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


def _tables(store: Store) -> set[str]:
    rows = store.query("SELECT table_name FROM information_schema.tables").to_pylist()
    return {str(r["table_name"]) for r in rows}


def _columns(store: Store, table: str) -> list[str]:
    p = store.sql.p
    rows = store.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = "
        f"{p} ORDER BY ordinal_position",
        [table],
    ).to_pylist()
    return [str(r["column_name"]) for r in rows]


def alerts(store: Store, flt: EventFilter, limit: int = 500) -> dict[str, Any]:
    """Alerts and their handling history if this store has the tables; otherwise a note."""
    tables = _tables(store)
    if "alerts" not in tables:
        return {"available": False, "note": "no alerts table in this store"}
    cols = _columns(store, "alerts")
    tcol = next((c for c in ALERT_TIME_COLUMNS if c in cols), None)
    where, params = "", list[Any]()
    if tcol is not None:
        where, params = store.sql.where(EventFilter(start=flt.start, end=flt.end), ts=tcol)
    order = f"ORDER BY {tcol} DESC" if tcol else ""
    rows = store.query(f"SELECT * FROM alerts {where} {order} LIMIT {int(limit)}", params)
    out: dict[str, Any] = {
        "available": True,
        "time_column": tcol,
        "columns": cols,
        "alerts": rows.to_pylist(),
    }
    for col in ("status", "type", "level"):
        if col in cols:
            counts = store.query(
                f"SELECT {col} AS value, count(*) AS n FROM alerts {where} "
                "GROUP BY 1 ORDER BY 2 DESC",
                params,
            ).to_pylist()
            out[f"by_{col}"] = counts
    history = next((t for t in ALERT_HISTORY_TABLES if t in tables), None)
    if history is None:
        out["history"] = None
        out["history_note"] = "no alert history table in this store"
    else:
        hcols = _columns(store, history)
        hcol = next((c for c in (*ALERT_TIME_COLUMNS, "at_ns") if c in hcols), None)
        horder = f"ORDER BY {hcol} DESC" if hcol else ""
        out["history_table"] = history
        out["history"] = store.query(
            f"SELECT * FROM {history} {horder} LIMIT {int(limit)}"
        ).to_pylist()
    return out
