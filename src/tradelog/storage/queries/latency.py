"""Latency analysis (DESIGN §4): ack, first-fill and cancel latency from the events that
completed them, with negative values (clock skew) left out of the statistics and counted.

``analysis`` answers the ``/latency_analysis`` route: on DuckDB in NumPy from one fetch
(``latency_stats``), on PostgreSQL with the three queries below, which stay the reference
(the property test compares the two on DuckDB)."""

from __future__ import annotations

from typing import Any, Final

from tradelog.analytics.stats import LOG_BUCKETS_PER_DECADE, QUANTILES
from tradelog.storage.base import EventFilter, Store
from tradelog.storage.queries import latency_stats

KINDS: Final = {"ack": "order_ack", "fill": "fill", "cancel": "order_cancelled"}
GROUPS: Final = ("venue", "strategy_id", "symbol", "order_type")
MINUTE_NS: Final = 60_000_000_000
TREND_QUANTILES: Final = (0.5, 0.99)
BUCKET: Final = (
    "CASE WHEN latency_ms > 0 "
    f"THEN CAST(floor(log10(latency_ms) * {LOG_BUCKETS_PER_DECADE}) AS BIGINT) END"
)
"""The histogram bucket of ``latency_ms`` (null: zero or negative)."""

Rows = list[dict[str, Any]]


def _base(store: Store, flt: EventFilter, order_type: str | None) -> tuple[str, list[Any]]:
    kinds = ", ".join(f"'{k}'" for k in KINDS.values())
    extra = [f"kind IN ({kinds})", "latency_ms IS NOT NULL"]
    where, params = store.sql.where(flt, extra=extra)
    if order_type is not None:
        where += f" AND order_type = {store.sql.p}"
        params.append(order_type)
    return where, params


def analysis(
    store: Store, flt: EventFilter, order_type: str | None = None
) -> tuple[Rows, Rows, Rows]:
    """``(summaries, histogram, trend)``, the rows of the three functions below."""
    if store.sql.dialect == "duckdb":
        where, params = _base(store, flt, order_type)
        got = latency_stats.analysis(
            store, where, params, kinds=list(KINDS.values()), groups=GROUPS,
            quantiles=QUANTILES, trend_quantiles=TREND_QUANTILES, minute_ns=MINUTE_NS,
            bucket=BUCKET,
        )  # fmt: skip
        if got is not None:
            return got
    return (
        summaries(store, flt, order_type),
        histogram(store, flt, order_type),
        trend(store, flt, order_type),
    )


def summaries(
    store: Store, flt: EventFilter, order_type: str | None = None
) -> list[dict[str, Any]]:
    """One scan: per kind, overall and by venue/strategy/symbol/order type. Negative
    latencies become nulls, which the aggregates skip (cheaper than a FILTER on each)."""
    s = store.sql
    where, params = _base(store, flt, order_type)
    groups = ", ".join(f"({g})" for g in GROUPS)
    sql = f"""
        SELECT kind,
               {", ".join(f"{g}" for g in GROUPS)},
               {", ".join(f"GROUPING({g}) AS g_{g}" for g in GROUPS)},
               count(ok) AS n,
               count(*) - count(ok) AS negative,
               avg(ok) AS mean,
               {s.quantiles("ok", QUANTILES)} AS q,
               max(ok) AS mx
        FROM (SELECT kind, {", ".join(GROUPS)},
                     CASE WHEN latency_ms >= 0 THEN latency_ms END AS ok
              FROM events {where}) e
        GROUP BY kind, GROUPING SETS ((), {groups})
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


def histogram(
    store: Store, flt: EventFilter, order_type: str | None = None
) -> list[dict[str, Any]]:
    """Counts per kind and log-spaced bucket (None = exactly zero), non-negative only."""
    where, params = _base(store, flt, order_type)
    sql = f"""
        SELECT kind, {BUCKET} AS bucket, count(*) AS n
        FROM events {where} AND latency_ms >= 0
        GROUP BY 1, 2 ORDER BY 1, 2
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


def trend(store: Store, flt: EventFilter, order_type: str | None = None) -> list[dict[str, Any]]:
    """Per kind and minute of event time: count, mean, p50, p99."""
    s = store.sql
    where, params = _base(store, flt, order_type)
    sql = f"""
        SELECT kind, {s.bucket("ts", MINUTE_NS)} AS minute_ns, count(*) AS n,
               avg(latency_ms) AS mean, {s.quantiles("latency_ms", TREND_QUANTILES)} AS q
        FROM events {where} AND latency_ms >= 0
        GROUP BY 1, 2 ORDER BY 1, 2
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows
