"""Data quality and anomaly marks: what each source delivered, how late, with which gaps
and rejects; and the anomaly marks of a window."""

from __future__ import annotations

from typing import Any, Final

from tradelog.analytics.stats import QUANTILES
from tradelog.storage.base import EventFilter, Store

ANOMALY_COLUMNS: Final = (
    "ts", "event_id", "kind", "type", "severity", "value", "threshold", "symbol", "venue",
    "strategy_id", "account_id", "order_id", "detail",
)  # fmt: skip
"""Columns of ``anomaly_rows`` (the CSV header even when nothing matches)."""


def by_source(store: Store, flt: EventFilter) -> list[dict[str, Any]]:
    """Per source in the window: events, kinds, ingest lag (ts_ingest − ts) quantiles in ms,
    out-of-order events (earlier than the previous event of the same source)."""
    s = store.sql
    where, params = s.where(flt)
    sql = f"""
        WITH e AS (
            SELECT source, kind, ts, ts_ingest, seq,
                   ts < max(ts) OVER (PARTITION BY source ORDER BY seq
                                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                       AS out_of_order
            FROM events {where}
        )
        SELECT source, count(*) AS events, count(DISTINCT kind) AS kinds,
               min(ts) AS first_ts, max(ts) AS last_ts,
               avg((ts_ingest - ts) / 1e6) AS lag_mean,
               {s.quantiles("(ts_ingest - ts) / 1e6", QUANTILES)} AS lag_q,
               max((ts_ingest - ts) / 1e6) AS lag_max,
               count(*) FILTER (WHERE out_of_order) AS out_of_order
        FROM e GROUP BY source ORDER BY source
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


def gaps(store: Store, flt: EventFilter, top: int = 5) -> list[dict[str, Any]]:
    """The largest silences between consecutive events (event time) of each source."""
    where, params = store.sql.where(flt)
    sql = f"""
        WITH e AS (
            SELECT source, ts, lag(ts) OVER (PARTITION BY source ORDER BY ts, seq) AS prev
            FROM events {where}
        ), r AS (
            SELECT source, prev AS gap_start_ns, ts AS gap_end_ns, (ts - prev) / 1e9 AS gap_s,
                   row_number() OVER (PARTITION BY source ORDER BY ts - prev DESC) AS rn
            FROM e WHERE prev IS NOT NULL
        )
        SELECT source, gap_start_ns, gap_end_ns, gap_s FROM r WHERE rn <= {int(top)}
        ORDER BY source, gap_s DESC
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


def rejects(store: Store, flt: EventFilter, examples: int = 3) -> list[dict[str, Any]]:
    """Rejects read in the window (by read time) by source and reason, with the latest
    raw examples of each."""
    window = EventFilter(start=flt.start, end=flt.end)
    where, params = store.sql.where(window, ts="ts_ingest")
    sql = f"""
        WITH r AS (
            SELECT source, reason, detail, raw, src_ref, src_offset, ts_ingest,
                   row_number() OVER (PARTITION BY source, reason ORDER BY ts_ingest DESC,
                                      src_offset DESC) AS rn,
                   count(*) OVER (PARTITION BY source, reason) AS n
            FROM rejects {where}
        )
        SELECT source, reason, n, detail, raw, src_ref, src_offset FROM r
        WHERE rn <= {int(examples)} ORDER BY source, n DESC, reason, src_offset
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


def anomaly_counts(
    store: Store, flt: EventFilter, where_extra: list[str], extra_params: list[Any]
) -> list[dict[str, Any]]:
    where, params = store.sql.where(flt, extra=where_extra)
    sql = f"""
        SELECT type, severity, count(*) AS n FROM anomalies {where}
        GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2
    """
    rows: list[dict[str, Any]] = store.query(sql, [*extra_params, *params]).to_pylist()
    return rows


def anomaly_rows(
    store: Store, flt: EventFilter, where_extra: list[str], extra_params: list[Any], limit: int
) -> list[dict[str, Any]]:
    where, params = store.sql.where(flt, extra=where_extra)
    sql = f"""
        SELECT {", ".join(ANOMALY_COLUMNS)}
        FROM anomalies {where} ORDER BY ts DESC, event_id LIMIT {int(limit)}
    """
    rows: list[dict[str, Any]] = store.query(sql, [*extra_params, *params]).to_pylist()
    return rows
