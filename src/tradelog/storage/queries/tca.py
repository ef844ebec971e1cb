"""Transaction cost analysis (DESIGN §4): arrival slippage per fill and per order, price
improvement, spread capture against the mid at fill time, markouts, implementation
shortfall. Sign: slippage is positive = cost; markouts and spread capture are positive =
good for us. Benchmarks (arrival mid and its time, mid at the fill) come from the events."""

from __future__ import annotations

from typing import Any, Final

from tradelog.analytics.stats import QUANTILES
from tradelog.storage.base import EventFilter, Store

MARKOUT_HORIZONS_S: Final = (1, 5, 30, 60)
GROUPS: Final = ("venue", "strategy_id", "symbol", "liquidity")
DIST_WIDTH_BPS: Final = 1.0
DIST_CLIP_BPS: Final = 50.0
NS: Final = 1_000_000_000

_FILL_COLUMNS: Final = """
    e.event_id, e.ts, e.symbol, e.venue, e.strategy_id, e.account_id, e.root_order_id,
    e.exec_id, e.side, e.last_qty, e.last_px, e.liquidity, e.fee, e.arrival_mid, e.arrival_ts,
    e.mkt_bid, e.mkt_ask, e.mkt_ts, e.slippage_bps,
    CASE e.side WHEN 'buy' THEN 1 WHEN 'sell' THEN -1 END AS sgn,
    e.last_qty * e.last_px AS notional,
    CASE WHEN e.mkt_bid IS NOT NULL AND e.mkt_ask IS NOT NULL
         THEN (e.mkt_bid + e.mkt_ask) / 2 END AS mid_fill
"""


def _fills_cte(store: Store, flt: EventFilter) -> tuple[str, list[Any]]:
    where, params = store.sql.where(flt, alias="e", extra=["e.kind = 'fill'"])
    return f"SELECT {_FILL_COLUMNS} FROM events e {where}", params


def fill_summaries(store: Store, flt: EventFilter) -> list[dict[str, Any]]:
    """Overall and by venue/strategy/symbol/liquidity, in one scan."""
    s = store.sql
    fills, params = _fills_cte(store, flt)
    groups = ", ".join(f"({g})" for g in GROUPS)
    capture = "sgn * (mid_fill - last_px) / mid_fill * 1e4"
    sql = f"""
        WITH f AS ({fills})
        SELECT {", ".join(GROUPS)},
               {", ".join(f"GROUPING({g}) AS g_{g}" for g in GROUPS)},
               count(*) AS fills,
               count(slippage_bps) AS with_benchmark,
               sum(notional) AS notional,
               sum(last_qty) AS qty,
               sum(fee) AS fees,
               avg(slippage_bps) AS mean,
               {s.quantiles("slippage_bps", QUANTILES)} AS q,
               sum(slippage_bps * notional) / sum(notional) FILTER (WHERE slippage_bps IS NOT NULL)
                   AS notional_weighted,
               avg({capture}) FILTER (WHERE mid_fill > 0) AS spread_capture
        FROM f
        GROUP BY GROUPING SETS ((), {groups})
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


def distribution(store: Store, flt: EventFilter) -> list[dict[str, Any]]:
    """Fill slippage in 1-bps buckets, clipped to ±50 bps (the tails land in the ends)."""
    s = store.sql
    fills, params = _fills_cte(store, flt)
    clip = DIST_CLIP_BPS
    sql = f"""
        WITH f AS ({fills})
        SELECT CAST(floor(greatest(least(slippage_bps, {clip}), {-clip - DIST_WIDTH_BPS})
                          / {DIST_WIDTH_BPS}) AS BIGINT) AS bucket,
               count(*) AS n
        FROM f WHERE slippage_bps IS NOT NULL
        GROUP BY 1 ORDER BY 1
    """
    del s
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


def _markout_sql(store: Store, fills: str) -> str:
    """Fills with the mid (two-sided quotes of the symbol, any venue) at ts + h for each
    horizon; null when the data does not reach that far."""
    quotes = (
        "SELECT symbol, ts, (bid + ask) / 2 AS mid FROM events "
        "WHERE kind = 'quote' AND bid IS NOT NULL AND ask IS NOT NULL"
    )
    if store.sql.dialect == "duckdb":
        joins = []
        cols = []
        for h in MARKOUT_HORIZONS_S:
            joins.append(
                f"ASOF LEFT JOIN q AS q{h} ON f.symbol = q{h}.symbol AND f.ts + {h * NS} >= q{h}.ts"
            )
            cols.append(f"CASE WHEN f.ts + {h * NS} <= last.ts_last THEN q{h}.mid END AS mid_{h}s")
        return f"""
            WITH f AS ({fills}), q AS ({quotes}),
                 last AS (SELECT symbol, max(ts) AS ts_last FROM q GROUP BY symbol)
            SELECT f.*, {", ".join(cols)}
            FROM f LEFT JOIN last ON f.symbol = last.symbol {" ".join(joins)}
        """
    cols = []
    for h in MARKOUT_HORIZONS_S:
        cols.append(
            f"""CASE WHEN f.ts + {h * NS} <= (SELECT max(ts) FROM ({quotes}) x
                                              WHERE x.symbol = f.symbol)
                THEN (SELECT mid FROM ({quotes}) x WHERE x.symbol = f.symbol
                      AND x.ts <= f.ts + {h * NS} ORDER BY x.ts DESC LIMIT 1) END AS mid_{h}s"""
        )
    return f"WITH f AS ({fills}) SELECT f.*, {', '.join(cols)} FROM f"


def markouts(store: Store, flt: EventFilter) -> list[dict[str, Any]]:
    """Mean and median markout per horizon, overall and by liquidity (bps, positive = the
    price moved our way after the fill)."""
    s = store.sql
    fills, params = _fills_cte(store, flt)
    base = _markout_sql(store, fills)
    parts = []
    for h in MARKOUT_HORIZONS_S:
        expr = f"sgn * (mid_{h}s - last_px) / last_px * 1e4"
        parts.append(
            f"count(mid_{h}s) AS n_{h}s, avg({expr}) AS mean_{h}s, {s.median(expr)} AS median_{h}s"
        )
    sql = f"""
        WITH m AS ({base})
        SELECT liquidity, GROUPING(liquidity) AS g_liquidity, {", ".join(parts)}
        FROM m GROUP BY GROUPING SETS ((), (liquidity))
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


def fill_rows(store: Store, flt: EventFilter, limit: int) -> list[dict[str, Any]]:
    """Per fill, with its benchmarks and measures (for tables and CSV export)."""
    fills, params = _fills_cte(store, flt)
    fills = f"SELECT * FROM ({fills}) lim ORDER BY ts, event_id LIMIT {int(limit)}"
    base = _markout_sql(store, fills)
    marks = ", ".join(
        f"sgn * (mid_{h}s - last_px) / last_px * 1e4 AS markout_{h}s_bps"
        for h in MARKOUT_HORIZONS_S
    )
    sql = f"""
        WITH m AS ({base})
        SELECT event_id, ts, symbol, venue, strategy_id, account_id, root_order_id AS order_id,
               exec_id, side, last_qty, last_px, liquidity, fee, notional,
               arrival_mid, arrival_ts, slippage_bps, -slippage_bps AS price_improvement_bps,
               mid_fill, mkt_ts AS mid_fill_ts,
               sgn * (mid_fill - last_px) / mid_fill * 1e4 AS spread_capture_bps, {marks}
        FROM m ORDER BY ts, event_id LIMIT {int(limit)}
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


def _orders_cte(store: Store, flt: EventFilter) -> tuple[str, list[Any]]:
    """Finished orders in the window (by the time they finished) with the mid at that
    time (two-sided quotes of the symbol) for the opportunity cost of the unfilled part."""
    where, params = store.sql.where(flt, alias="o", ts="ts_done")
    quotes = (
        "SELECT symbol, ts, (bid + ask) / 2 AS mid FROM events "
        "WHERE kind = 'quote' AND bid IS NOT NULL AND ask IS NOT NULL"
    )
    if store.sql.dialect == "duckdb":
        body = f"""
            SELECT o.*, q.mid AS mid_end, q.ts AS mid_end_ts
            FROM (SELECT * FROM orders o {where}) o
            ASOF LEFT JOIN ({quotes}) q ON o.symbol = q.symbol AND o.ts_done >= q.ts
        """
    else:
        body = f"""
            SELECT o.*, (SELECT mid FROM ({quotes}) x WHERE x.symbol = o.symbol
                         AND x.ts <= o.ts_done ORDER BY x.ts DESC LIMIT 1) AS mid_end,
                        (SELECT ts FROM ({quotes}) x WHERE x.symbol = o.symbol
                         AND x.ts <= o.ts_done ORDER BY x.ts DESC LIMIT 1) AS mid_end_ts
            FROM orders o {where}
        """
    shortfall = """
        CASE WHEN arrival_mid > 0 AND qty > 0 AND sgn IS NOT NULL THEN
            (sgn * (notional - arrival_mid * filled_qty) + fees
             + CASE WHEN qty > filled_qty AND mid_end IS NOT NULL
                    THEN sgn * (mid_end - arrival_mid) * (qty - filled_qty) ELSE 0 END)
            / (arrival_mid * qty) * 1e4 END
    """
    sql = f"""
        SELECT b.*, {shortfall} AS shortfall_bps,
               CASE WHEN arrival_mid > 0 AND filled_qty > 0
                    THEN sgn * (notional - arrival_mid * filled_qty) / (arrival_mid * filled_qty)
                         * 1e4 END AS execution_cost_bps
        FROM (SELECT x.*, CASE side WHEN 'buy' THEN 1 WHEN 'sell' THEN -1 END AS sgn
              FROM ({body}) x) b
    """
    return sql, params


def order_summary(store: Store, flt: EventFilter) -> dict[str, Any]:
    s = store.sql
    orders, params = _orders_cte(store, flt)
    sql = f"""
        WITH o AS ({orders})
        SELECT count(*) AS orders,
               count(slippage_bps) AS with_benchmark,
               avg(slippage_bps) AS slippage_mean,
               {s.median("slippage_bps")} AS slippage_median,
               avg(shortfall_bps) AS shortfall_mean,
               {s.median("shortfall_bps")} AS shortfall_median,
               sum(shortfall_bps * arrival_mid * qty) / sum(arrival_mid * qty)
                   FILTER (WHERE shortfall_bps IS NOT NULL) AS shortfall_weighted
        FROM o
    """
    rows = store.query(sql, params).to_pylist()
    return dict(rows[0]) if rows else {}


def order_rows(store: Store, flt: EventFilter, limit: int) -> list[dict[str, Any]]:
    orders, params = _orders_cte(store, flt)
    sql = f"""
        WITH o AS ({orders})
        SELECT order_id, status, symbol, venue, strategy_id, account_id, side, order_type,
               qty, price, filled_qty, avg_px, fill_rate, fees, n_fills, maker_qty, taker_qty,
               ts_new, ts_ack, ts_first_fill, ts_done, ack_latency_ms, fill_latency_ms,
               cancel_latency_ms, arrival_mid, arrival_ts, slippage_bps, mid_end, mid_end_ts,
               execution_cost_bps, shortfall_bps, reject_reason, aliases
        FROM o ORDER BY ts_done, order_id LIMIT {int(limit)}
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows
