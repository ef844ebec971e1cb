"""Positions, PnL, equity curve and round trips from the position state the pipeline
stored on every fill (average cost; DESIGN §4).

Marks: the latest two-sided mid of the symbol at or before the time asked, else the last
public trade price, else the last fill price (``mark_source`` says which). Unrealized PnL
of an open position without any mark is null, not 0."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tradelog.storage import position_checkpoints as checkpoints
from tradelog.storage.base import EventFilter, Store

KEY: Final = ("strategy_id", "account_id", "symbol")
ROUND_TRIP_COLUMNS: Final = (
    "strategy_id", "account_id", "symbol", "side", "ts_open", "ts_close", "holding_s",
    "max_qty", "entry_avg_px", "pnl", "gross_pnl", "fees", "fills",
)  # fmt: skip
RECONCILIATION_COLUMNS: Final = (
    "ts", "strategy_id", "account_id", "symbol", "engine_position", "tradelog_position",
    "position_diff", "engine_realized_pnl", "tradelog_realized_pnl", "realized_pnl_diff",
    "engine_unrealized_pnl", "anomaly_types", "event_id",
)  # fmt: skip


def _trip_filter(store: Store, flt: EventFilter) -> tuple[str, list[Any]]:
    """Round trips are per strategy × account × symbol across venues: the venue filter
    does not apply to them (the table has no venue)."""
    return store.sql.where(replace(flt, venue=None), ts="ts_close")


def _fill_filter(
    store: Store, flt: EventFilter, end: int | None, alias: str = "", start: int | None = None
) -> tuple[str, list[Any]]:
    """Fills carrying a position in ``[start, end)`` (no venue filter: positions span
    venues)."""
    a = f"{alias}." if alias else ""
    window = EventFilter(start=start, end=end, symbol=flt.symbol, venue=None,
                         strategy=flt.strategy, account=flt.account)  # fmt: skip
    return store.sql.where(
        window, alias=alias, extra=[f"{a}kind = 'fill'", f"{a}pos_after IS NOT NULL"]
    )


def positions_at(store: Store, flt: EventFilter, end: int | None) -> list[dict[str, Any]]:
    """Per strategy × account × symbol, the state after the last fill before ``end`` (from
    the hourly checkpoints and the fills of ``end``'s own hour)."""
    state, params = checkpoints.state_before_sql(store.sql, flt, end)
    sql = f"""
        SELECT strategy_id, account_id, symbol, pos_after AS position,
               avg_cost_after AS avg_cost, realized_after AS realized_gross,
               fees_after AS fees, last_px AS last_fill_px, ts AS last_fill_ts
        FROM ({state}) s
        ORDER BY strategy_id, account_id, symbol
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


MARK_LOOKBACK_NS: Final = 600 * 10**9
"""Marks are looked up in the last 10 minutes first; only symbols without a mark there are
looked up in all earlier history (same result, without scanning every quote)."""


def _latest(
    store: Store,
    value: str,
    kind_cond: str,
    symbols: list[str],
    end: int | None,
    lo: int | None,
) -> list[dict[str, Any]]:
    s = store.sql
    p = s.p
    cond = (f" AND ts < {p}" if end is not None else "") + (f" AND ts >= {p}" if lo else "")
    params: list[Any] = [*symbols, *([end] if end is not None else []), *([lo] if lo else [])]
    rows: list[dict[str, Any]] = store.query(
        f"""
        SELECT symbol, {s.arg_max(value, "ts")} AS value, max(ts) AS ts
        FROM events WHERE {kind_cond} AND symbol IN ({", ".join(p for _ in symbols)}){cond}
        GROUP BY symbol
        """,
        params,
    ).to_pylist()
    return rows


def _latest_bounded(
    store: Store, value: str, kind_cond: str, symbols: list[str], end: int | None
) -> dict[str, dict[str, Any]]:
    top = end if end is not None else store.latest_ts()
    lo = top - MARK_LOOKBACK_NS if top is not None else None
    found = {r["symbol"]: r for r in _latest(store, value, kind_cond, symbols, end, lo)}
    rest = [sym for sym in symbols if sym not in found]
    if rest and lo is not None:
        found.update({r["symbol"]: r for r in _latest(store, value, kind_cond, rest, end, None)})
    return found


def marks_at(store: Store, symbols: list[str], end: int | None) -> dict[str, dict[str, Any]]:
    """Latest mark per symbol before ``end`` (mid, else last public trade)."""
    if not symbols:
        return {}
    mids = _latest_bounded(
        store, "(bid + ask) / 2", "kind = 'quote' AND bid IS NOT NULL AND ask IS NOT NULL",
        symbols, end,
    )  # fmt: skip
    trades = _latest_bounded(store, "price", "kind = 'market_trade'", symbols, end)
    out: dict[str, dict[str, Any]] = {}
    for r in trades.values():
        out[r["symbol"]] = {"mark": r["value"], "mark_ts": r["ts"], "mark_source": "last_trade"}
    for r in mids.values():
        out[r["symbol"]] = {"mark": r["value"], "mark_ts": r["ts"], "mark_source": "mid"}
    return out


def liquidity_split(store: Store, flt: EventFilter) -> list[dict[str, Any]]:
    """Maker vs taker in the window: volume, notional, fees and the realised PnL of the
    fills of each side (a fill's realised PnL is the change it made to its key's: the
    state before the window is each key's last fill before it, then the window's fills
    in sequence), cut to the window and venue."""
    where_all, params_all = _fill_filter(store, flt, flt.end, start=flt.start)
    window, wparams = store.sql.where(EventFilter(start=flt.start, end=flt.end, venue=flt.venue))
    cols = "strategy_id, account_id, symbol, seq, ts, venue, liquidity, last_qty, last_px, fee"
    before = ""
    bparams: list[Any] = []
    if flt.start is not None:  # carried-in state only; ts NULL keeps these rows out below
        state, bparams = checkpoints.state_before_sql(store.sql, flt, flt.start)
        before = f"""
            SELECT strategy_id, account_id, symbol, seq, CAST(NULL AS BIGINT) AS ts,
                   CAST(NULL AS VARCHAR) AS venue, CAST(NULL AS VARCHAR) AS liquidity,
                   CAST(NULL AS FLOAT8) AS last_qty, CAST(NULL AS FLOAT8) AS last_px,
                   CAST(NULL AS FLOAT8) AS fee, realized_after
            FROM ({state}) s
            UNION ALL
        """
    sql = f"""
        WITH f AS (
                SELECT ts, venue, liquidity, last_qty, last_px, fee,
                       realized_after - coalesce(lag(realized_after) OVER (
                           PARTITION BY strategy_id, account_id, symbol ORDER BY seq), 0)
                           AS realized_delta
                FROM ({before} SELECT {cols}, realized_after FROM events {where_all}) b)
        SELECT coalesce(liquidity, 'unknown') AS liquidity, count(*) AS fills,
               sum(last_qty) AS qty, sum(last_qty * last_px) AS notional,
               sum(coalesce(fee, 0)) AS fees, sum(realized_delta) AS realized_gross
        FROM f {window}
        GROUP BY 1 ORDER BY 1
    """
    rows: list[dict[str, Any]] = store.query(sql, [*bparams, *params_all, *wparams]).to_pylist()
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
        return _equity_rows_duckdb(store, flt, start, end, interval_ns)
    else:

        def first_after(ts: str) -> str:
            """The first grid time strictly after ``ts`` (the first one for earlier ts)."""
            return (f"CASE WHEN {ts} < {start} THEN {start + interval_ns}::bigint "
                    f"ELSE {start}::bigint + (({ts} - {start}) / {interval_ns} + 1) "
                    f"* {interval_ns} END")  # fmt: skip

        sql = f"""
            WITH f AS ({fills}),
                 grid AS (SELECT generate_series({start + interval_ns}::bigint,
                                                 {end + interval_ns - 1}::bigint,
                                                 {interval_ns}::bigint) AS t),
                 keys AS (SELECT sk, ak, yk, strategy_id,
                                 row_number() OVER (ORDER BY sk, ak, yk) AS kid,
                                 dense_rank() OVER (ORDER BY yk) AS yid
                          FROM (SELECT DISTINCT sk, ak, yk, strategy_id FROM f) d),
                 -- each fill and quote lands on the first grid time after it; per key
                 -- the last one there, carried forward over the grid (= DuckDB's ASOF)
                 lf AS (SELECT DISTINCT ON (kid, t) kid, t, pos_after, avg_cost_after,
                               realized_after, fees_after
                        FROM (SELECT f.*, keys.kid, {first_after("f.ts")} AS t
                              FROM f JOIN keys USING (sk, ak, yk)) x
                        ORDER BY kid, t, ts DESC),
                 ys AS (SELECT DISTINCT yk, yid FROM keys),
                 lq AS (SELECT DISTINCT ON (yid, t) yid, t, mid
                        FROM (SELECT q.*, ys.yid, {first_after("q.ts")} AS t
                              FROM ({quotes}) q JOIN ys USING (yk)) x
                        ORDER BY yid, t, ts DESC),
                 gf AS (SELECT grid.t, keys.*, lf.pos_after, lf.avg_cost_after,
                               lf.realized_after, lf.fees_after,
                               count(lf.t) OVER (PARTITION BY keys.kid ORDER BY grid.t) AS grp
                        FROM grid CROSS JOIN keys
                        LEFT JOIN lf ON lf.kid = keys.kid AND lf.t = grid.t),
                 st AS (SELECT t, kid, yid, strategy_id,
                               first_value(pos_after) OVER w AS pos_after,
                               first_value(avg_cost_after) OVER w AS avg_cost_after,
                               first_value(realized_after) OVER w AS realized_after,
                               first_value(fees_after) OVER w AS fees_after
                        FROM gf WINDOW w AS (PARTITION BY kid, grp ORDER BY t)),
                 gq AS (SELECT grid.t, ys.yid, lq.mid,
                               count(lq.t) OVER (PARTITION BY ys.yid ORDER BY grid.t) AS grp
                        FROM grid CROSS JOIN ys
                        LEFT JOIN lq ON lq.yid = ys.yid AND lq.t = grid.t),
                 mq AS (SELECT t, yid, first_value(mid) OVER (PARTITION BY yid, grp ORDER BY t)
                               AS mid FROM gq),
                 mk AS (SELECT st.*, mq.mid FROM st
                        LEFT JOIN mq ON mq.yid = st.yid AND mq.t = st.t)
            SELECT t, strategy_id,
                   sum(coalesce(realized_after, 0) - coalesce(fees_after, 0)) AS realized,
                   CASE WHEN bool_or(coalesce(pos_after, 0) <> 0 AND mid IS NULL) THEN NULL
                        ELSE sum(CASE WHEN coalesce(pos_after, 0) = 0 THEN 0
                                      ELSE pos_after * (mid - avg_cost_after) END)
                   END AS unrealized  -- an open position without a mark: null, not 0
            FROM mk GROUP BY t, strategy_id ORDER BY t, strategy_id
        """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


EQUITY_MARK_LOOKBACK_NS: Final = 600 * 10**9
"""Quotes older than this before the window are read only if a mark is missing without
them (an exact re-run): it saves the scan of all earlier quotes, never changes a result."""


def _equity_rows_duckdb(
    store: Store, flt: EventFilter, start: int, end: int, interval: int
) -> list[dict[str, Any]]:
    """The changes and marks by grid bucket from DuckDB (one query: both scans run in
    parallel), the running sums over the grid in numpy: no cross join of every strategy ×
    symbol with every grid point, no window over it. The state before ``start`` comes from
    the hourly checkpoints (not from every earlier fill)."""
    k_max = max(-(-(end - start) // interval), 1)
    lookback = max(EQUITY_MARK_LOOKBACK_NS, interval)
    where, params = _fill_filter(store, flt, end, start=start)
    state, sparams = checkpoints.state_before_sql(store.sql, flt, start)
    params = [*params, *sparams]
    table = store.query(_equity_duckdb(where, state, start, interval, k_max, lookback), params)
    rows = _equity_from_buckets(table, start, interval, k_max)
    if any(r["unrealized"] is None for r in rows):  # maybe a mark older than the lookback
        table = store.query(_equity_duckdb(where, state, start, interval, k_max, None), params)
        rows = _equity_from_buckets(table, start, interval, k_max)
    return rows


def _equity_duckdb(
    fill_where: str, state: str, start: int, interval: int, k_max: int, lookback: int | None
) -> str:
    """Rows ``part = 0``: per strategy × symbol × grid bucket k, the sums of the per-fill
    changes (in ``seq`` order within each strategy × account × symbol) of position, cost
    basis (Σ position × avg cost), net realised PnL and the count of open keys, starting
    from each key's ``state`` before the window (bucket 1). Rows ``part = 1``: per
    symbol and bucket, the last two-sided mid. Grid point k (1…K) is ``start + k ×
    interval`` and sees the fills and quotes strictly before it (earlier ones: k = 1)."""
    bucket = f"greatest((ts - {start}) // {interval} + 1, 1)"
    low = f" AND ts >= {start - lookback}" if lookback is not None else ""
    return f"""
        WITH fl AS NOT MATERIALIZED (
                SELECT strategy_id, account_id, symbol, seq, ts, pos_after AS pos,
                       coalesce(pos_after * avg_cost_after, 0) AS cost,
                       realized_after - fees_after AS rn
                FROM events {fill_where}),
             ch AS (SELECT strategy_id, account_id, symbol, seq, {bucket} AS k,
                           pos, cost, rn FROM fl
                    UNION ALL
                    SELECT strategy_id, account_id, symbol, seq, 1 AS k, pos_after AS pos,
                           coalesce(pos_after * avg_cost_after, 0) AS cost,
                           realized_after - fees_after AS rn
                    FROM ({state}) s),
             d AS (SELECT strategy_id, symbol, k,
                          pos - coalesce(lag(pos) OVER w, 0) AS dpos,
                          cost - coalesce(lag(cost) OVER w, 0) AS dcost,
                          rn - coalesce(lag(rn) OVER w, 0) AS drn,
                          (pos <> 0)::INTEGER - coalesce((lag(pos) OVER w <> 0)::INTEGER, 0)
                              AS dopen
                   FROM ch WINDOW w AS (PARTITION BY strategy_id, account_id, symbol
                                        ORDER BY seq)),
             dk AS MATERIALIZED (
                SELECT strategy_id, symbol, k, coalesce(sum(dpos), 0) AS dpos,
                       coalesce(sum(dcost), 0) AS dcost, coalesce(sum(drn), 0) AS drn,
                       coalesce(sum(dopen), 0)::DOUBLE AS dopen
                FROM d GROUP BY strategy_id, symbol, k),
             qb AS (SELECT symbol, {bucket} AS k, arg_max((bid + ask) / 2, ts) AS mid
                    FROM events
                    WHERE kind = 'quote' AND bid IS NOT NULL AND ask IS NOT NULL
                      AND ts < {start + k_max * interval}{low}
                      AND symbol IN (SELECT symbol FROM dk)
                    GROUP BY 1, 2)
        SELECT 0 AS part, strategy_id, symbol, k, dpos, dcost, drn, dopen,
               NULL::DOUBLE AS mid FROM dk
        UNION ALL
        SELECT 1, NULL, symbol, k, NULL, NULL, NULL, NULL, mid FROM qb
    """


def _equity_from_buckets(
    table: pa.Table, start: int, interval: int, k_max: int
) -> list[dict[str, Any]]:
    changes = table.filter(pc.equal(table.column("part"), 0))
    if changes.num_rows == 0:
        return []
    quotes = table.filter(pc.equal(table.column("part"), 1))
    rows, symbols = _codes(quotes.column("symbol"))
    index = {y: i for i, y in enumerate(symbols)}
    marks = np.full((len(index), k_max), np.nan)
    if index:
        k = quotes.column("k").to_numpy().astype(np.int64)
        marks[rows, k - 1] = quotes.column("mid").to_numpy(zero_copy_only=False)
        # carried forward: the column of the latest mark so far (column 0 = NaN if none)
        last = np.maximum.accumulate(np.where(np.isfinite(marks), np.arange(k_max), 0), axis=1)
        marks = np.take_along_axis(marks, last, axis=1)
    return _equity_from_changes(changes, marks, index, start, interval, k_max)


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[Any]]:
    """Dictionary codes of a column (null gets a code too) and the values they stand for."""
    encoded = pc.dictionary_encode(column.combine_chunks(), null_encoding="encode")
    return encoded.indices.to_numpy().astype(np.int64), encoded.dictionary.to_pylist()


def _equity_from_changes(
    changes: pa.Table,
    marks: np.ndarray,
    sym_row: dict[str, int],
    start: int,
    interval: int,
    k_max: int,
) -> list[dict[str, Any]]:
    """Running sums of the changes over the grid per strategy × symbol, marked, summed
    per strategy: realised = Σ net realised; unrealised = Σ over symbols with an open
    key of mark × position − cost basis, null when such a symbol has no mark yet."""
    s_codes, s_names = _codes(changes.column("strategy_id"))
    y_codes, y_names = _codes(changes.column("symbol"))
    codes, pair = np.unique(s_codes * len(y_names) + y_codes, return_inverse=True)
    pair_index = {
        (s_names[int(c) // len(y_names)], y_names[int(c) % len(y_names)]): i
        for i, c in enumerate(codes)
    }
    k = changes.column("k").to_numpy().astype(np.int64)
    keep = (k >= 1) & (k <= k_max)  # always (fills are before the end); as the grid join did
    sums = {}
    for name in ("dpos", "dcost", "drn", "dopen"):
        dense = np.zeros((len(pair_index), k_max))
        dense[pair[keep], k[keep] - 1] = changes.column(name).to_numpy(zero_copy_only=False)[keep]
        sums[name] = np.cumsum(dense, axis=1)
    nan_row = np.full(k_max, np.nan)
    mid = np.vstack([marks[sym_row[y]] if y in sym_row else nan_row for _, y in pair_index])
    is_open = sums["dopen"] > 0
    unmarked = is_open & np.isnan(mid)
    unreal = np.where(is_open & ~unmarked, mid * sums["dpos"] - sums["dcost"], 0.0)
    by_strategy: dict[str | None, list[int]] = {}
    for (strategy, _), i in pair_index.items():
        by_strategy.setdefault(strategy, []).append(i)
    names = sorted(by_strategy, key=lambda x: (x is None, x or ""))  # NULLS LAST
    realized = {n: sums["drn"][by_strategy[n]].sum(axis=0).tolist() for n in names}
    unrealized = {n: unreal[by_strategy[n]].sum(axis=0).tolist() for n in names}
    missing = {n: unmarked[by_strategy[n]].any(axis=0).tolist() for n in names}
    out: list[dict[str, Any]] = []
    for j in range(k_max):
        t = start + (j + 1) * interval
        for n in names:
            u = None if missing[n][j] else unrealized[n][j]
            out.append({"t": t, "strategy_id": n, "realized": realized[n][j], "unrealized": u})
    return out


def round_trip_summary(store: Store, flt: EventFilter) -> list[dict[str, Any]]:
    """Round trips closed in the window, overall and by strategy and symbol."""
    s = store.sql
    where, params = _trip_filter(store, flt)
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
    where, params = _trip_filter(store, flt)
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
