"""Transaction cost analysis (DESIGN §4): arrival slippage per fill and per order, price
improvement, spread capture against the mid at fill time, markouts, implementation
shortfall. Sign: slippage is positive = cost; markouts and spread capture are positive =
good for us. Benchmarks (arrival mid and its time, mid at the fill) come from the events."""

from __future__ import annotations

from typing import Any, Final

from tradelog.analytics.stats import QUANTILES
from tradelog.storage.base import EventFilter, Store
from tradelog.storage.queries import fill_stats as fs
from tradelog.storage.queries import markouts as mk

MARKOUT_HORIZONS_S: Final = (1, 5, 30, 60)
GROUPS: Final = ("venue", "strategy_id", "symbol", "liquidity")
DIST_WIDTH_BPS: Final = 1.0
DIST_CLIP_BPS: Final = 50.0
NS: Final = 1_000_000_000

FILL_ROW_COLUMNS: Final = (
    "event_id", "ts", "symbol", "venue", "strategy_id", "account_id", "order_id", "exec_id",
    "side", "last_qty", "last_px", "liquidity", "fee", "notional", "arrival_mid", "arrival_ts",
    "slippage_bps", "price_improvement_bps", "mid_fill", "mid_fill_ts", "spread_capture_bps",
    *(f"markout_{h}s_bps" for h in MARKOUT_HORIZONS_S),
)  # fmt: skip
"""Columns of ``fill_rows`` (the CSV header even when no fill matches)."""
ORDER_ROW_COLUMNS: Final = (
    "order_id", "status", "symbol", "venue", "strategy_id", "account_id", "side", "order_type",
    "qty", "price", "filled_qty", "avg_px", "fill_rate", "fees", "n_fills", "maker_qty",
    "taker_qty", "ts_new", "ts_ack", "ts_first_fill", "ts_done", "ack_latency_ms",
    "fill_latency_ms", "cancel_latency_ms", "arrival_mid", "arrival_ts", "slippage_bps",
    "mid_end", "mid_end_ts", "execution_cost_bps", "shortfall_bps", "reject_reason", "aliases",
)  # fmt: skip
"""Columns of ``order_rows``."""

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


def fill_summaries(store: Store, flt: EventFilter, use_sql: bool = False) -> list[dict[str, Any]]:
    """Overall and by venue/strategy/symbol/liquidity, in one scan.

    DuckDB: computed in NumPy (``fill_stats.fill_summaries``: one grouping of the fills by
    all four keys, rolled up; the same answers) unless ``use_sql``; PostgreSQL: the
    grouping-sets query below."""
    s = store.sql
    fills, params = _fills_cte(store, flt)
    capture = "sgn * (mid_fill - last_px) / mid_fill * 1e4"
    if s.dialect == "duckdb" and not use_sql:
        return fs.fill_summaries(store, fills, params, GROUPS, QUANTILES, capture)
    groups = ", ".join(f"({g})" for g in GROUPS)
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
               sum(slippage_bps * notional)
                   / sum(CASE WHEN slippage_bps IS NOT NULL THEN notional END)
                   AS notional_weighted,
               avg(CASE WHEN mid_fill > 0 THEN {capture} END) AS spread_capture
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


MARKOUT_LOOKBACK_NS: Final = 60 * NS
"""How far before a window the quotes for its markouts are read first; a fill whose mid is
not found in that range (no quote of its symbol since) triggers an exact re-run over all
quotes, so the bound only saves time, it never changes a result."""

_QUOTES: Final = f"SELECT symbol, ts, (bid + ask) / 2 AS mid FROM events WHERE {mk.QUOTE_WHERE}"


def _bounds(flt: EventFilter) -> tuple[int, int | None] | None:
    """The quote time range a window's markouts need: from a lookback before its start to
    the longest horizon after its end (None: the whole history)."""
    if flt.start is None:
        return None
    hi = flt.end + max(MARKOUT_HORIZONS_S) * NS if flt.end is not None else None
    return flt.start - MARKOUT_LOOKBACK_NS, hi


def _markout_ctes(fills: str, bounds: tuple[int, int | None] | None, with_id: bool = True) -> str:
    """DuckDB CTEs ending in ``m``: one row per fill and horizon (``h`` in s) with the mid
    (two-sided quotes of the symbol, any venue) at ts + h, null when the data does not
    reach that far, and ``missing`` when it does but no quote was found in ``bounds`` (then
    the caller re-runs without bounds; ``with_id``: with the fill's ``event_id``, which
    aggregates do not need and the as-of join would otherwise carry through its sort).
    One as-of join for all horizons, so the quotes are sorted once."""
    fid = "f.event_id, " if with_id else ""
    mid = "fh.event_id, " if with_id else ""
    cond = last_cond = ""
    if bounds is not None:
        cond = last_cond = f" AND ts >= {int(bounds[0])}"
        if bounds[1] is not None:
            cond += f" AND ts <= {int(bounds[1])}"
    horizons = ", ".join(f"({h}::BIGINT)" for h in MARKOUT_HORIZONS_S)
    # the join key is a number per symbol (``sid``, from ``last``): the as-of join sorts
    # both sides by it, ~30 % cheaper than by the symbol's text
    return f"""
             f AS ({fills}),
             last AS (SELECT symbol, max(ts) AS ts_last,
                             row_number() OVER (ORDER BY symbol) AS sid
                      FROM ({_QUOTES}{last_cond}) x GROUP BY symbol),
             q AS (SELECT last.sid, x.ts, x.mid FROM ({_QUOTES}{cond}) x
                   JOIN last ON x.symbol = last.symbol),
             fh AS (SELECT {fid}last.sid, f.liquidity, f.sgn, f.last_px, hz.h,
                           f.ts + hz.h * {NS} AS tq, f.ts + hz.h * {NS} <= last.ts_last AS reached
                    FROM f LEFT JOIN last ON f.symbol = last.symbol
                    CROSS JOIN (VALUES {horizons}) hz(h)),
             m AS (SELECT {mid}fh.liquidity, fh.sgn, fh.last_px, fh.h,
                          CASE WHEN fh.reached THEN q.mid END AS mid,
                          coalesce(fh.reached AND q.mid IS NULL, false) AS missing
                   FROM fh ASOF LEFT JOIN q ON fh.sid = q.sid AND fh.tq >= q.ts)
    """


def _markout_sql(store: Store, fills: str, bounds: tuple[int, int | None] | None = None) -> str:
    """Fills with the mid (two-sided quotes of the symbol, any venue) at ts + h for each
    horizon (``mid_{h}s``); null when the data does not reach that far. DuckDB adds
    ``missing`` (see ``_markout_ctes``)."""
    if store.sql.dialect == "duckdb":
        pivot = ", ".join(
            f"max(mid) FILTER (WHERE h = {h}) AS mid_{h}s" for h in MARKOUT_HORIZONS_S
        )
        return f"""
            WITH {_markout_ctes(fills, bounds)},
                 w AS (SELECT event_id AS k_id, {pivot}, bool_or(missing) AS missing
                       FROM m GROUP BY event_id)
            SELECT f.*, {", ".join(f"w.mid_{h}s" for h in MARKOUT_HORIZONS_S)}, w.missing
            FROM f JOIN w ON w.k_id = f.event_id
        """
    cols: list[str] = []
    for h in MARKOUT_HORIZONS_S:
        cols.append(
            f"""CASE WHEN f.ts + {h * NS} <= (SELECT max(ts) FROM ({_QUOTES}) x
                                              WHERE x.symbol = f.symbol)
                THEN (SELECT mid FROM ({_QUOTES}) x WHERE x.symbol = f.symbol
                      AND x.ts <= f.ts + {h * NS} ORDER BY x.ts DESC LIMIT 1) END AS mid_{h}s"""
        )
    return f"WITH f AS ({fills}) SELECT f.*, {', '.join(cols)}, false AS missing FROM f"


def markouts(
    store: Store, flt: EventFilter, max_quotes: int = mk.MAX_QUOTES
) -> list[dict[str, Any]]:
    """Mean and median markout per horizon, overall and by liquidity (bps, positive = the
    price moved our way after the fill).

    DuckDB: computed in NumPy (``markouts.markout_groups``: same answers, several quotes
    of a symbol at one ts resolved to the last in seq order) unless over ``max_quotes``
    quotes are to be read, then by the SQL as-of join below, which can spill to disk."""
    s = store.sql
    fills, params = _fills_cte(store, flt)
    if s.dialect == "duckdb":
        by_h = mk.markout_groups(
            store, fills, params, MARKOUT_HORIZONS_S, NS, _bounds(flt), max_quotes
        )
        if by_h is not None:
            return _markout_rows(by_h)
    if s.dialect != "duckdb":
        base = _markout_sql(store, fills)
        parts = []
        for h in MARKOUT_HORIZONS_S:
            expr = f"sgn * (mid_{h}s - last_px) / last_px * 1e4"
            parts.append(
                f"count(mid_{h}s) AS n_{h}s, avg({expr}) AS mean_{h}s, "
                f"{s.median(expr)} AS median_{h}s"
            )
        sql = f"""
            WITH m AS ({base})
            SELECT liquidity, GROUPING(liquidity) AS g_liquidity, {", ".join(parts)}
            FROM m GROUP BY GROUPING SETS ((), (liquidity))
        """
        rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
        return rows
    # grouped by horizon too (8 groups) instead of a FILTER per horizon and measure over
    # every row, then one row per liquidity grouping as the PostgreSQL query returns
    expr = "sgn * (mid - last_px) / last_px * 1e4"
    bounds = _bounds(flt)
    while True:
        sql = f"""
            WITH {_markout_ctes(fills, bounds, with_id=False)}
            SELECT h, liquidity, GROUPING(liquidity) AS g_liquidity, count(mid) AS n,
                   avg(x) AS mean, {s.median("x")} AS median,
                   count(*) FILTER (WHERE missing) AS missing
            FROM (SELECT h, liquidity, mid, {expr} AS x, missing FROM m) m
            GROUP BY h, GROUPING SETS ((), (liquidity))
        """
        by_h = store.query(sql, params).to_pylist()
        if bounds is None or not any(r["missing"] for r in by_h):
            return _markout_rows(by_h)
        bounds = None


def _markout_rows(by_h: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows per (horizon, liquidity grouping) → one row per liquidity grouping with
    ``n_{h}s``, ``mean_{h}s``, ``median_{h}s`` and ``missing``; the overall row is there
    even without fills (count 0, no mean), the way a grand total over no rows is."""
    empty = {f"{k}_{h}s": (0 if k == "n" else None)
             for h in MARKOUT_HORIZONS_S for k in ("n", "mean", "median")}  # fmt: skip
    out: dict[tuple[int, str | None], dict[str, Any]] = {
        (1, None): {"liquidity": None, "g_liquidity": 1, **empty, "missing": 0}
    }
    for r in by_h:
        key = (int(r["g_liquidity"]), r["liquidity"])
        row = out.setdefault(
            key, {"liquidity": r["liquidity"], "g_liquidity": r["g_liquidity"], **empty,
                  "missing": 0},
        )  # fmt: skip
        h = int(r["h"])
        row[f"n_{h}s"], row[f"mean_{h}s"], row[f"median_{h}s"] = r["n"], r["mean"], r["median"]
        row["missing"] += int(r["missing"])
    return [out[k] for k in sorted(out, key=lambda k: (-k[0], k[1] is None, k[1] or ""))]


def fill_rows(store: Store, flt: EventFilter, limit: int) -> list[dict[str, Any]]:
    """Per fill, with its benchmarks and measures (for tables and CSV export)."""
    fills, params = _fills_cte(store, flt)
    fills = f"SELECT * FROM ({fills}) lim ORDER BY ts, event_id LIMIT {int(limit)}"
    marks = ", ".join(
        f"sgn * (mid_{h}s - last_px) / last_px * 1e4 AS markout_{h}s_bps"
        for h in MARKOUT_HORIZONS_S
    )
    bounds = None
    if store.sql.dialect == "duckdb":  # the quotes around the fills returned, not the window
        span = store.query(f"SELECT min(ts) AS a, max(ts) AS b FROM ({fills}) x", params)
        lo, hi = span.column("a")[0].as_py(), span.column("b")[0].as_py()
        if lo is None:
            return []
        bounds = (lo - MARKOUT_LOOKBACK_NS, hi + max(MARKOUT_HORIZONS_S) * NS)
    while True:
        sql = f"""
            WITH m AS ({_markout_sql(store, fills, bounds)})
            SELECT event_id, ts, symbol, venue, strategy_id, account_id,
                   root_order_id AS order_id, exec_id, side, last_qty, last_px, liquidity, fee,
                   notional, arrival_mid, arrival_ts, slippage_bps,
                   -slippage_bps AS price_improvement_bps, mid_fill, mkt_ts AS mid_fill_ts,
                   sgn * (mid_fill - last_px) / mid_fill * 1e4 AS spread_capture_bps, {marks},
                   missing
            FROM m ORDER BY ts, event_id LIMIT {int(limit)}
        """
        rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
        if bounds is None or not any(r["missing"] for r in rows):
            for r in rows:
                del r["missing"]
            return rows
        bounds = None


def _orders_cte(store: Store, flt: EventFilter) -> tuple[str, list[Any]]:
    """Finished orders in the window (by the time they finished) with their shortfall.

    The opportunity cost of the unfilled part uses the order's end mid, which the
    pipeline stores with the order (``OrderState.mid_end``: the market context of its last
    event, the as-of quote at ``ts_done`` from the same book as the arrival mid, i.e. the
    order's own venue when that venue has quotes, else any venue of the symbol)."""
    where, params = store.sql.where(flt, alias="o", ts="ts_done")
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
        FROM (SELECT o.*, CASE o.side WHEN 'buy' THEN 1 WHEN 'sell' THEN -1 END AS sgn
              FROM orders o {where}) b
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
        SELECT {", ".join(ORDER_ROW_COLUMNS)}
        FROM o ORDER BY ts_done, order_id LIMIT {int(limit)}
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows
