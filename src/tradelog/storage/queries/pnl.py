"""Positions, PnL, equity curve and round trips from the position state the pipeline
stored on every fill (average cost; DESIGN §4).

Marks: the latest two-sided mid of the symbol at or before the time asked, else the last
public trade price, else the last fill price (``mark_source`` says which). Unrealized PnL
of an open position without any mark is null, not 0."""

from __future__ import annotations

from typing import Any, Final

from tradelog.storage.base import EventFilter, Store

KEY: Final = ("strategy_id", "account_id", "symbol")


def _fill_filter(
    store: Store, flt: EventFilter, end: int | None, alias: str = ""
) -> tuple[str, list[Any]]:
    a = f"{alias}." if alias else ""
    window = EventFilter(end=end, symbol=flt.symbol, venue=None, strategy=flt.strategy,
                         account=flt.account)  # fmt: skip
    return store.sql.where(
        window, alias=alias, extra=[f"{a}kind = 'fill'", f"{a}pos_after IS NOT NULL"]
    )


def positions_at(store: Store, flt: EventFilter, end: int | None) -> list[dict[str, Any]]:
    """Per strategy × account × symbol, the state after the last fill before ``end``."""
    s = store.sql
    where, params = _fill_filter(store, flt, end)
    sql = f"""
        SELECT strategy_id, account_id, symbol,
               {s.arg_max("pos_after", "seq")} AS position,
               {s.arg_max("avg_cost_after", "seq")} AS avg_cost,
               {s.arg_max("realized_after", "seq")} AS realized_gross,
               {s.arg_max("fees_after", "seq")} AS fees,
               {s.arg_max("last_px", "seq")} AS last_fill_px,
               max(ts) AS last_fill_ts
        FROM events {where}
        GROUP BY strategy_id, account_id, symbol
        ORDER BY strategy_id, account_id, symbol
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


def marks_at(store: Store, symbols: list[str], end: int | None) -> dict[str, dict[str, Any]]:
    """Latest mark per symbol at or before ``end`` (mid, else last public trade)."""
    if not symbols:
        return {}
    s = store.sql
    p = s.p
    in_list = ", ".join(p for _ in symbols)
    cond = f" AND ts < {p}" if end is not None else ""
    params: list[Any] = [*symbols, *([end] if end is not None else [])]
    mids = store.query(
        f"""
        SELECT symbol, {s.arg_max("(bid + ask) / 2", "ts")} AS mid, max(ts) AS ts
        FROM events WHERE kind = 'quote' AND bid IS NOT NULL AND ask IS NOT NULL
          AND symbol IN ({in_list}){cond}
        GROUP BY symbol
        """,
        params,
    ).to_pylist()
    trades = store.query(
        f"""
        SELECT symbol, {s.arg_max("price", "ts")} AS price, max(ts) AS ts
        FROM events WHERE kind = 'market_trade' AND symbol IN ({in_list}){cond}
        GROUP BY symbol
        """,
        params,
    ).to_pylist()
    out: dict[str, dict[str, Any]] = {}
    for r in trades:
        out[r["symbol"]] = {"mark": r["price"], "mark_ts": r["ts"], "mark_source": "last_trade"}
    for r in mids:
        out[r["symbol"]] = {"mark": r["mid"], "mark_ts": r["ts"], "mark_source": "mid"}
    return out


def liquidity_split(store: Store, flt: EventFilter) -> list[dict[str, Any]]:
    """Maker vs taker in the window: volume, notional, fees and the realised PnL of the
    fills of each side (a fill's realised PnL is the change it made to its key's)."""
    where_all, params_all = _fill_filter(store, EventFilter(
        symbol=flt.symbol, strategy=flt.strategy, account=flt.account), None)  # fmt: skip
    window, wparams = store.sql.where(EventFilter(start=flt.start, end=flt.end))
    sql = f"""
        WITH f AS (
            SELECT ts, liquidity, last_qty, last_px, fee,
                   realized_after - coalesce(lag(realized_after) OVER (
                       PARTITION BY strategy_id, account_id, symbol ORDER BY seq), 0)
                       AS realized_delta
            FROM events {where_all}
        )
        SELECT coalesce(liquidity, 'unknown') AS liquidity, count(*) AS fills,
               sum(last_qty) AS qty, sum(last_qty * last_px) AS notional,
               sum(coalesce(fee, 0)) AS fees, sum(realized_delta) AS realized_gross
        FROM f {window}
        GROUP BY 1 ORDER BY 1
    """
    rows: list[dict[str, Any]] = store.query(sql, [*params_all, *wparams]).to_pylist()
    return rows


def turnover(store: Store, flt: EventFilter) -> list[dict[str, Any]]:
    where, params = store.sql.where(flt, extra=["kind = 'fill'", "pos_after IS NOT NULL"])
    sql = f"""
        SELECT strategy_id, count(*) AS fills, sum(last_qty) AS qty,
               sum(last_qty * last_px) AS turnover
        FROM events {where} GROUP BY strategy_id ORDER BY strategy_id
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


def equity_curve(
    store: Store, flt: EventFilter, start: int, end: int, interval_ns: int
) -> list[dict[str, Any]]:
    """Total PnL (realised net + unrealised) per strategy at each grid time
    ``start + k × interval`` (k ≥ 1) up to ``end``; null where an open position has no mark."""
    s = store.sql
    where, params = _fill_filter(store, flt, end)
    fills = f"""
        SELECT coalesce(strategy_id, '') AS sk, coalesce(account_id, '') AS ak,
               coalesce(symbol, '') AS yk, strategy_id, ts, pos_after, avg_cost_after,
               realized_after, fees_after
        FROM events {where}
    """
    quotes = """
        SELECT symbol AS yk, ts, (bid + ask) / 2 AS mid FROM events
        WHERE kind = 'quote' AND bid IS NOT NULL AND ask IS NOT NULL
    """
    if s.dialect == "duckdb":
        sql = f"""
            WITH f AS ({fills}), q AS ({quotes}),
                 grid AS (SELECT unnest(range({start + interval_ns}, {end + interval_ns},
                                              {interval_ns})) AS t),
                 keys AS (SELECT DISTINCT sk, ak, yk, strategy_id FROM f),
                 gk AS (SELECT grid.t, keys.* FROM grid CROSS JOIN keys),
                 st AS (SELECT gk.t, gk.sk, gk.yk, gk.strategy_id, f.pos_after,
                               f.avg_cost_after, f.realized_after, f.fees_after
                        FROM gk ASOF LEFT JOIN f
                        ON gk.sk = f.sk AND gk.ak = f.ak AND gk.yk = f.yk AND gk.t > f.ts),
                 mk AS (SELECT st.*, q.mid FROM st ASOF LEFT JOIN q
                        ON st.yk = q.yk AND st.t > q.ts)
            SELECT t, strategy_id,
                   sum(coalesce(realized_after, 0) - coalesce(fees_after, 0)) AS realized,
                   sum(CASE WHEN coalesce(pos_after, 0) = 0 THEN 0
                            ELSE pos_after * (mid - avg_cost_after) END) AS unrealized
            FROM mk GROUP BY t, strategy_id ORDER BY t, strategy_id
        """
    else:
        sql = f"""
            WITH f AS ({fills}),
                 grid AS (SELECT generate_series({start + interval_ns}::bigint, {end}::bigint,
                                                 {interval_ns}::bigint) AS t),
                 keys AS (SELECT DISTINCT sk, ak, yk, strategy_id FROM f),
                 st AS (SELECT grid.t, keys.sk, keys.yk, keys.strategy_id, l.*
                        FROM grid CROSS JOIN keys
                        LEFT JOIN LATERAL (
                            SELECT pos_after, avg_cost_after, realized_after, fees_after
                            FROM f WHERE f.sk = keys.sk AND f.ak = keys.ak AND f.yk = keys.yk
                              AND f.ts < grid.t ORDER BY f.ts DESC LIMIT 1) l ON TRUE),
                 mk AS (SELECT st.*, (SELECT mid FROM ({quotes}) q WHERE q.yk = st.yk
                                      AND q.ts < st.t ORDER BY q.ts DESC LIMIT 1) AS mid
                        FROM st)
            SELECT t, strategy_id,
                   sum(coalesce(realized_after, 0) - coalesce(fees_after, 0)) AS realized,
                   sum(CASE WHEN coalesce(pos_after, 0) = 0 THEN 0
                            ELSE pos_after * (mid - avg_cost_after) END) AS unrealized
            FROM mk GROUP BY t, strategy_id ORDER BY t, strategy_id
        """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


def round_trip_summary(store: Store, flt: EventFilter) -> list[dict[str, Any]]:
    """Round trips closed in the window, overall and by strategy and symbol."""
    s = store.sql
    where, params = store.sql.where(flt, ts="ts_close")
    sql = f"""
        SELECT strategy_id, symbol, GROUPING(strategy_id) AS g_strategy_id,
               GROUPING(symbol) AS g_symbol,
               count(*) AS trips,
               count(*) FILTER (WHERE pnl > 0) AS wins,
               count(*) FILTER (WHERE pnl < 0) AS losses,
               avg(pnl) FILTER (WHERE pnl > 0) AS avg_win,
               avg(pnl) FILTER (WHERE pnl < 0) AS avg_loss,
               sum(pnl) FILTER (WHERE pnl > 0) AS gross_wins,
               sum(pnl) FILTER (WHERE pnl < 0) AS gross_losses,
               sum(pnl) AS pnl, avg(pnl) AS expectancy,
               avg(ts_close - ts_open) / 1e9 AS avg_holding_s,
               {s.median("(ts_close - ts_open) / 1e9")} AS median_holding_s
        FROM round_trips {where}
        GROUP BY GROUPING SETS ((), (strategy_id), (symbol))
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


def round_trip_rows(store: Store, flt: EventFilter, limit: int) -> list[dict[str, Any]]:
    where, params = store.sql.where(flt, ts="ts_close")
    sql = f"""
        SELECT strategy_id, account_id, symbol, side, ts_open, ts_close,
               (ts_close - ts_open) / 1e9 AS holding_s, max_qty, entry_avg_px, pnl, gross_pnl,
               fees, fills
        FROM round_trips {where} ORDER BY ts_close LIMIT {int(limit)}
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


def reconciliation(store: Store, flt: EventFilter, limit: int) -> list[dict[str, Any]]:
    """Engine-reported positions/PnL beside ours at the same moment."""
    where, params = store.sql.where(flt, extra=["kind = 'position'"])
    sql = f"""
        SELECT ts, strategy_id, account_id, symbol, position AS engine_position,
               pos_after AS tradelog_position, position - pos_after AS position_diff,
               realized_pnl AS engine_realized_pnl,
               realized_after - fees_after AS tradelog_realized_pnl,
               realized_pnl - (realized_after - fees_after) AS realized_pnl_diff,
               unrealized_pnl AS engine_unrealized_pnl, anomaly_types, event_id
        FROM events {where} ORDER BY ts DESC LIMIT {int(limit)}
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows
