"""Query benchmark (DESIGN §7): every analysis endpoint over a DuckDB store of N events,
through HTTP (FastAPI TestClient), over the whole range and over the last hour.
Bars: < 1 s over 10 M events, < 100 ms over the last hour.

The store is generated inside DuckDB with ``INSERT … SELECT`` from ``range()`` (seconds,
not the hours a replay would take) and cached under /tmp keyed by size and generator
version. It holds one trading day (2024-01-15 UTC) of 20 symbols on 4 venues, 6
strategies, 12 accounts: ~45 % quotes (1 % one-sided), 5 % public trades, and orders with
realistic lifecycles (60 % filled, 20 % partially filled then cancelled, 10 % cancelled
unfilled, 10 % rejected), acks/fills/cancels with latencies, arrival mids, slippage, market
context, positions after each fill, engine ``position`` reports, finished-order rows,
round trips, anomaly marks and some rejects. Values are synthetic but shaped like the
pipeline's output (same columns, same kinds, same nulls); the benchmark measures speed,
the golden tests measure correctness.

    python benchmarks/query.py [--events 10000000] [--runs 3] [--rebuild]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
from fastapi.testclient import TestClient

from tradelog.api.app import create_app
from tradelog.app import open_store
from tradelog.config import StoreConfig
from tradelog.storage import position_checkpoints
from tradelog.storage.duckdb_store import DuckDBStore
from tradelog.storage.schema import orders_end_mid_sql
from tradelog.storage.sql import Sql

GENERATOR_VERSION = 4  # 3: hourly position checkpoints; 4: orders keep their end mid
T0 = 1_705_276_800 * 10**9  # 2024-01-15T00:00:00Z
DAY = 86_400 * 10**9
SYMBOLS, VENUES, STRATEGIES = 20, 4, 6
FULL_BAR_MS, HOUR_BAR_MS = 1000.0, 100.0


def _h(expr: str, salt: int) -> str:
    """A deterministic pseudo-random non-negative integer from ``expr``."""
    return f"(hash({expr} * 1000003 + {salt}) % 1000000000)::BIGINT"


def build(path: Path, n_events: int) -> None:
    """A store with about ``n_events`` events (schema from the real migrations), written
    under a temporary name and renamed when complete, so a cached file is always whole."""
    final = path
    path = path.with_name(f"{path.name}.building-{os.getpid()}")
    path.unlink(missing_ok=True)
    DuckDBStore(str(path)).close()  # creates the tables through the migrations
    con = duckdb.connect(str(path))
    con.execute("SET memory_limit = '2GB'")
    con.execute(f"SET temp_directory = '{path.parent / 'duckdb_tmp'}'")
    con.execute("SET preserve_insertion_order = true")
    con.execute("SET enable_progress_bar = false")
    n_quotes = int(n_events * 0.45)
    n_trades = int(n_events * 0.05)
    n_orders = int(n_events * 0.5 / 3.4)  # 3.4 events per order on average
    n_pos = max(n_orders // 1000, 1)
    syms = "['" + "','".join(f"SYM{i:02d}" for i in range(SYMBOLS)) + "']"
    venues = "['XNAS','ARCA','BATS','IEXG']"
    base = "(50.0 + 10.0 * s)"
    mid = f"({base} * (1 + 0.002 * sin(ts / 6e11 + s)))"
    t = time.perf_counter()
    # quotes: per symbol round robin, venue rotating; 1 % one-sided (ask missing)
    con.execute(f"""
        CREATE TEMP TABLE q AS
        SELECT i, i % {SYMBOLS} AS s, (i // {SYMBOLS}) % {VENUES} AS v,
               {T0} + (i * ({DAY} // {n_quotes}))::BIGINT + {_h("i", 1)} % 1000 AS ts
        FROM range({n_quotes}) r(i)
    """)
    con.execute(f"""
        CREATE TEMP TABLE o AS
        WITH b AS (
            SELECT o, {T0} + (o * ({DAY} // {n_orders}))::BIGINT + 500000 AS ts,
                   {_h("o", 2)} % {SYMBOLS} AS s, {_h("o", 3)} % {VENUES} AS v,
                   o % {STRATEGIES} AS st, (o % {STRATEGIES}) * 2 + {_h("o", 4)} % 2 AS ac,
                   CASE WHEN {_h("o", 5)} % 2 = 0 THEN 1 ELSE -1 END AS sgn,
                   (1 + {_h("o", 6)} % 50) * 10.0 AS qty, o % 10 AS c,
                   CASE WHEN {_h("o", 7)} % 5 = 0 THEN 'market' ELSE 'limit' END AS otype,
                   0.2 + ({_h("o", 8)} % 1000) / 100.0
                       + CASE WHEN {_h("o", 9)} % 1000 = 999 THEN 1500 ELSE 0 END AS ack_ms,
                   5 + ({_h("o", 10)} % 5000) / 10.0 AS fill_ms,
                   1 + ({_h("o", 11)} % 100) / 10.0 AS cxl_ms,
                   ({_h("o", 12)} % 20) - 8 AS slip,
                   CASE WHEN {_h("o", 13)} % 3 = 0 THEN 'taker' ELSE 'maker' END AS liq
            FROM range({n_orders}) r(o)
        )
        SELECT *, {mid} AS mid,
               CASE WHEN c < 6 THEN qty WHEN c < 8 THEN qty / 2 ELSE 0 END AS fqty
        FROM b
    """)
    con.execute("""
        CREATE TEMP TABLE f AS
        SELECT o.*, ts + (fill_ms * 1e6)::BIGINT AS fts,
               mid * (1 + sgn * slip / 1e4) AS px
        FROM o WHERE fqty > 0
    """)
    con.execute("""
        CREATE TEMP TABLE fp AS
        SELECT o, sum(sgn * fqty) OVER w AS pos_after, px AS avg_cost_after,
               sum(fqty * px * 1e-4 * ((o % 7) - 3)) OVER w AS realized_after,
               sum(fqty * px * 1e-4) OVER w AS fees_after
        FROM f WINDOW w AS (PARTITION BY st, ac, s ORDER BY fts
                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    """)
    common = "'engine' AS source, 'engine.jsonl' AS src_ref, {sym} AS symbol, {ven} AS venue"
    order_ctx = (
        f"{syms}[s + 1] AS symbol, {venues}[v + 1] AS venue, 'S' || st AS strategy_id, "
        "'A' || lpad(ac::VARCHAR, 2, '0') AS account_id, 'O' || o AS order_id, "
        "'O' || o AS root_order_id, CASE sgn WHEN 1 THEN 'buy' ELSE 'sell' END AS side, "
        "otype AS order_type"
    )
    spread = f"({base} * 0.0002)"
    branches = {
        "quote": f"""
            SELECT 'q' || i AS event_id, 'quote' AS kind, ts,
                   {common.format(sym=f"{syms}[s + 1]", ven=f"{venues}[v + 1]")},
                   {mid} - {spread} / 2 AS bid,
                   CASE WHEN i % 100 <> 7 THEN {mid} + {spread} / 2 END AS ask,
                   100.0 + i % 900 AS bid_size, 100.0 + i % 700 AS ask_size
            FROM q""",
        "market_trade": f"""
            SELECT 't' || i AS event_id, 'market_trade' AS kind,
                   {T0} + (i * ({DAY} // {n_trades}))::BIGINT + 777 AS ts,
                   {common.format(sym=f"{syms}[(i % {SYMBOLS}) + 1]", ven=f"{venues}[1]")},
                   ({base.replace("s", f"(i % {SYMBOLS})")}) AS price,
                   1.0 + i % 300 AS qty
            FROM range({n_trades}) r(i)""",
        "order_new": f"""
            SELECT 'n' || o AS event_id, 'order_new' AS kind, ts, 'engine' AS source,
                   'engine.jsonl' AS src_ref, {order_ctx}, qty,
                   CASE WHEN otype = 'limit' THEN round(mid, 2) END AS price,
                   mid AS arrival_mid, ts - 250000 AS arrival_ts,
                   mid - {spread} / 2 AS mkt_bid, mid + {spread} / 2 AS mkt_ask,
                   ts - 250000 AS mkt_ts, 'pending' AS order_status
            FROM o""",
        "order_ack": f"""
            SELECT 'a' || o AS event_id, 'order_ack' AS kind,
                   ts + (ack_ms * 1e6)::BIGINT AS ts, 'engine' AS source,
                   'engine.jsonl' AS src_ref, {order_ctx}, ack_ms AS latency_ms,
                   'acked' AS order_status
            FROM o WHERE c <> 9""",
        "fill": f"""
            SELECT 'f' || f.o AS event_id, 'fill' AS kind, fts AS ts, 'engine' AS source,
                   'engine.jsonl' AS src_ref, {order_ctx}, 'E' || f.o AS exec_id,
                   fqty AS last_qty, px AS last_px, fqty AS cum_qty, qty - fqty AS leaves_qty,
                   liq AS liquidity, fqty * px * 1e-4 AS fee, fill_ms AS latency_ms,
                   mid AS arrival_mid, ts - 250000 AS arrival_ts, slip::DOUBLE AS slippage_bps,
                   mid - {spread} / 2 AS mkt_bid, mid + {spread} / 2 AS mkt_ask,
                   fts - 100000 AS mkt_ts,
                   CASE WHEN c < 6 THEN 'filled' ELSE 'partially_filled' END AS order_status,
                   fp.pos_after, fp.avg_cost_after, fp.realized_after, fp.fees_after
            FROM f JOIN fp USING (o)""",
        "order_cancel_request": f"""
            SELECT 'c' || o AS event_id, 'order_cancel_request' AS kind,
                   ts + 800000000 AS ts, 'engine' AS source, 'engine.jsonl' AS src_ref,
                   {order_ctx}
            FROM o WHERE c BETWEEN 6 AND 8""",
        "order_cancelled": f"""
            SELECT 'x' || o AS event_id, 'order_cancelled' AS kind,
                   ts + 800000000 + (cxl_ms * 1e6)::BIGINT AS ts, 'engine' AS source,
                   'engine.jsonl' AS src_ref, {order_ctx}, cxl_ms AS latency_ms,
                   'cancelled' AS order_status
            FROM o WHERE c BETWEEN 6 AND 8""",
        "order_rejected": f"""
            SELECT 'j' || o AS event_id, 'order_rejected' AS kind, ts + 300000 AS ts,
                   'engine' AS source, 'engine.jsonl' AS src_ref, {order_ctx},
                   ['price_band','insufficient_margin','throttled'][o % 3 + 1] AS reason,
                   'rejected' AS order_status, 'order_rejected' AS anomaly_types,
                   'medium' AS anomaly_severity
            FROM o WHERE c = 9""",
        "position": f"""
            SELECT 'p' || i AS event_id, 'position' AS kind,
                   {T0} + (i * ({DAY} // {n_pos}))::BIGINT + 999 AS ts, 'engine' AS source,
                   'engine.jsonl' AS src_ref, {syms}[i % {SYMBOLS} + 1] AS symbol,
                   'S' || (i % {STRATEGIES}) AS strategy_id,
                   'A' || lpad(((i % {STRATEGIES}) * 2)::VARCHAR, 2, '0') AS account_id,
                   (i % 11 - 5) * 10.0 AS position, (i % 13) * 1.5 AS realized_pnl,
                   0.0 AS unrealized_pnl, (i % 11 - 5) * 10.0 AS pos_after,
                   (i % 13) * 1.5 AS realized_after, 0.0 AS fees_after,
                   CASE WHEN i % 50 = 0 THEN 'position_mismatch' END AS anomaly_types
            FROM range({n_pos}) r(i)""",
    }
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE events)").fetchall())
    selects = []
    for sql in branches.values():
        cols = _aliases(sql)
        body = ", ".join(c if c in cols else f"NULL::{types[c]} AS {c}" for c in types
                         if c not in ("seq", "ts_ingest", "id_hash"))  # fmt: skip
        selects.append(f"SELECT {body} FROM ({sql}) x")  # filtered by time per chunk
    names = [c for c in types if c not in ("seq", "ts_ingest", "id_hash")]
    # hour by hour in time order: small sorts, and the table ends up physically sorted by
    # ts like the pipeline writes it (zone maps then prune time windows)
    seq = 0
    hour = 3600 * 10**9
    for k in range(25):
        lo, hi = T0 + k * hour, (T0 + (k + 1) * hour if k < 24 else 2**62)
        chunk = " UNION ALL ".join(f"{sel} WHERE ts >= {lo} AND ts < {hi}" for sel in selects)
        con.execute(f"""
            INSERT INTO events ({", ".join(names)}, seq, ts_ingest, id_hash)
            SELECT *, {seq} + row_number() OVER (ORDER BY ts, event_id) AS seq,
                   ts + 2000000 AS ts_ingest, (hash(event_id) >> 1)::BIGINT AS id_hash
            FROM ({chunk}) u
            ORDER BY ts, event_id
        """)
        row = con.execute("SELECT max(seq) FROM events").fetchone()
        seq = int(row[0]) if row and row[0] is not None else 0
    con.execute(f"""
        INSERT INTO orders (order_id, status, symbol, venue, side, qty, price, order_type,
            account_id, strategy_id, ts_new, ts_ack, ts_first_fill, ts_done, filled_qty,
            avg_px, fill_rate, notional, fees, n_fills, maker_qty, taker_qty,
            ack_latency_ms, fill_latency_ms, cancel_latency_ms, arrival_mid, arrival_ts,
            slippage_bps, reject_reason)
        SELECT 'O' || o.o, CASE WHEN c < 6 THEN 'filled' WHEN c < 9 THEN 'cancelled'
                              ELSE 'rejected' END,
               {syms}[o.s + 1], {venues}[o.v + 1], CASE o.sgn WHEN 1 THEN 'buy' ELSE 'sell' END,
               o.qty, round(o.mid, 2), o.otype, 'A' || lpad(o.ac::VARCHAR, 2, '0'), 'S' || o.st,
               o.ts, CASE WHEN c <> 9 THEN o.ts + (o.ack_ms * 1e6)::BIGINT END, f.fts,
               CASE WHEN c < 6 THEN f.fts WHEN c < 9
                    THEN o.ts + 800000000 + (o.cxl_ms * 1e6)::BIGINT ELSE o.ts + 300000 END,
               o.fqty, f.px, o.fqty / o.qty, coalesce(o.fqty * f.px, 0),
               coalesce(o.fqty * f.px * 1e-4, 0), (o.fqty > 0)::INT,
               CASE WHEN o.liq = 'maker' THEN o.fqty ELSE 0 END,
               CASE WHEN o.liq = 'taker' THEN o.fqty ELSE 0 END,
               CASE WHEN c <> 9 THEN o.ack_ms END, CASE WHEN o.fqty > 0 THEN o.fill_ms END,
               CASE WHEN c BETWEEN 6 AND 8 THEN o.cxl_ms END, o.mid, o.ts - 250000,
               CASE WHEN o.fqty > 0 THEN o.slip::DOUBLE END,
               CASE WHEN c = 9 THEN ['price_band','insufficient_margin','throttled'][o.o % 3 + 1]
               END
        FROM o LEFT JOIN (SELECT o AS fo, fts, px FROM f) f ON f.fo = o.o
    """)
    con.execute(f"""
        INSERT INTO round_trips
        SELECT 'S' || (i % {STRATEGIES}), 'A' || lpad(((i % {STRATEGIES}) * 2)::VARCHAR, 2, '0'),
               {syms}[i % {SYMBOLS} + 1], CASE WHEN i % 2 = 0 THEN 'long' ELSE 'short' END,
               {T0} + (i * ({DAY} // {max(n_orders // 4, 1)}))::BIGINT,
               {T0} + (i * ({DAY} // {max(n_orders // 4, 1)}))::BIGINT + 30000000000 + i % 97,
               10.0 * (1 + i % 20), 100.0, (i % 17) - 8.0, (i % 17) - 7.5, 0.5, 2 + i % 3
        FROM range({max(n_orders // 4, 1)}) r(i)
    """)
    con.execute("""
        INSERT INTO anomalies
        SELECT event_id, ts, kind,
               CASE WHEN kind = 'order_rejected' THEN 'order_rejected'
                    WHEN kind = 'position' THEN 'position_mismatch' ELSE 'high_latency' END,
               CASE WHEN kind = 'position' THEN 'high' ELSE 'medium' END,
               latency_ms, 1000.0, symbol, venue, strategy_id, account_id, order_id, NULL
        FROM events
        WHERE kind = 'order_rejected' OR (kind = 'position' AND anomaly_types IS NOT NULL)
           OR latency_ms > 1000
    """)
    con.execute("""
        INSERT INTO rejects
        SELECT 'r' || i, 'engine', 'engine.jsonl', i * 1000,
               ['malformed','missing_field','bad_timestamp'][i % 3 + 1], 'synthetic', '{oops',
               1705276800000000000 + i * 1000000000, NULL, i
        FROM range(3000) r(i)
    """)
    con.execute(position_checkpoints.backfill_sql(Sql("duckdb")))  # as migration 5 does
    con.execute(orders_end_mid_sql(Sql("duckdb")))  # as migration 6 does
    total = con.execute("SELECT count(*) FROM events").fetchone()
    n = int(total[0]) if total else 0
    con.execute(f"""
        INSERT INTO source_positions VALUES ('engine', 'engine.jsonl', 'engine.jsonl', 0, '',
            0, 0, {n + 3000}, {n}, 3000, 0, 0, {T0 + DAY})
    """)
    con.execute("CHECKPOINT")
    con.close()
    path.rename(final)
    print(f"built {n:,} events in {time.perf_counter() - t:.1f} s → {final}", flush=True)


def _aliases(select_sql: str) -> set[str]:
    """The output names of a generated SELECT (every column is ``… AS name`` or a bare
    ``fp.name``)."""
    names: set[str] = set()
    body = select_sql.split("SELECT", 1)[1].rsplit("FROM", 1)[0]
    depth, part, parts = 0, "", []
    for ch in body:
        depth += ch in "(["
        depth -= ch in ")]"
        if ch == "," and depth == 0:
            parts.append(part)
            part = ""
        else:
            part += ch
    parts.append(part)
    for p in parts:
        token = p.strip().split()[-1]
        names.add(token.split(".")[-1])
    return names


def endpoints(latest_symbol: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("/log_stream/latency_analysis", {}),
        ("/log_stream/slippage_analysis", {}),
        ("/log_stream/fill_rates", {}),
        ("/log_stream/pnl", {}),
        ("/log_stream/positions", {}),
        ("/log_stream/equity_curve", {}),
        ("/log_stream/round_trips", {"limit": 1000}),
        ("/log_stream/reconciliation", {"limit": 1000}),
        ("/log_stream/fills", {"limit": 1000}),
        ("/log_stream/orders", {"limit": 1000}),
        ("/log_stream/quality_metrics", {}),
        ("/log_stream/anomalies", {}),
        ("/log_stream/recent", {}),
        ("/log_stream/bars", {"symbol": latest_symbol, "timeframe": "1m"}),
        ("/log_stream/pairs", {"a": "SYM01", "b": "SYM02", "timeframe": "1m"}),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated path fragments to time")
    ap.add_argument("--memory-limit", default=None,
                    help="DuckDB memory_limit (default: StoreConfig's, as `serve`)")  # fmt: skip
    args = ap.parse_args()
    path = Path(f"/tmp/tradelog-bench/query-{args.events}-v{GENERATOR_VERSION}.duckdb")
    path.parent.mkdir(parents=True, exist_ok=True)
    if args.rebuild and path.exists():
        path.unlink()
    if not path.exists():
        build(path, args.events)
    url = f"duckdb:///{path}"
    settings = (
        StoreConfig() if args.memory_limit is None else StoreConfig(memory_limit=args.memory_limit)
    )
    store = open_store(url, read_only=True, settings=settings)  # as `tradelog serve`
    n = store.query("SELECT count(*) AS n FROM events").column("n")[0].as_py()
    print(f"store {path} ({path.stat().st_size / 2**20:,.0f} MiB): {n:,} events; DuckDB "
          f"{duckdb.__version__}, memory_limit {settings.memory_limit}, "
          f"{os.cpu_count()} CPUs, {platform.python_version()}")  # fmt: skip
    only = [o for o in args.only.split(",") if o]
    rows = []
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        for route, params in endpoints("SYM00"):
            if only and not any(o in route for o in only):
                continue
            result = [route.removeprefix("/log_stream/")]
            for window in ({}, {"hours": 1}):
                timings = []
                cold = 0.0
                for k in range(args.runs + 1):
                    t = time.perf_counter()
                    resp = client.get(route, params={**params, **window})
                    ms = (time.perf_counter() - t) * 1e3
                    if resp.status_code != 200:
                        print(f"  {route} {window}: HTTP {resp.status_code} {resp.text[:200]}")
                        break
                    if k == 0:
                        cold = ms
                    else:
                        timings.append(ms)
                med = statistics.median(timings) if timings else float("nan")
                result += [cold, med]
            rows.append(result)
            print(f"  {result[0]:<20} full {result[2]:8.1f} ms   last hour {result[4]:7.1f} ms",
                  flush=True)  # fmt: skip
    store.close()
    print()
    print(f"| endpoint | full range: first | full range: median of {args.runs} | "
          f"last hour: first | last hour: median of {args.runs} | bars met |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, c_full, full, c_hour, hour in rows:
        ok = full < FULL_BAR_MS and hour < HOUR_BAR_MS
        print(f"| {name} | {c_full:,.0f} ms | {full:,.0f} ms | {c_hour:,.1f} ms | "
              f"{hour:,.1f} ms | {'yes' if ok else 'NO'} |")  # fmt: skip
    print(
        f"\nbars: full range < {FULL_BAR_MS:.0f} ms, last hour < {HOUR_BAR_MS:.0f} ms "
        "(median of the warm runs; 'first' is the first request after opening the store)"
    )


if __name__ == "__main__":
    sys.exit(main())
