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
    aggregates = f"""
        count(*) AS events, count(DISTINCT kind) AS kinds,
        min(ts) AS first_ts, max(ts) AS last_ts,
        avg((ts_ingest - ts) / 1e6) AS lag_mean,
        {s.quantiles("(ts_ingest - ts) / 1e6", QUANTILES)} AS lag_q,
        max((ts_ingest - ts) / 1e6) AS lag_max
    """
    sources = _sources(store, flt)
    if sources is None:
        return _by_source_sorted(store, flt, aggregates)
    sub, params = _streams(store, flt, sources, "kind, ts_ingest", None)
    sql = f"""
        SELECT source, {aggregates}, {_broken("seq <= prev_seq")} AS unordered,
               count(*) FILTER (WHERE ts < prev_ts) AS out_of_order
        FROM ({sub}) e GROUP BY source ORDER BY source
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    # stored in seq order and never going back in time: nothing is out of order. Else the
    # exact count from a running maximum (``_out_of_order``)
    redo = {r["source"]: bool(r["unordered"]) for r in rows if r["unordered"] or r["out_of_order"]}
    counts = _out_of_order(store, flt, redo) if redo else {}
    for r in rows:
        if r["source"] in counts:
            r["out_of_order"] = counts[r["source"]]
        del r["unordered"]
    return rows


def _by_source_sorted(store: Store, flt: EventFilter, aggregates: str) -> list[dict[str, Any]]:
    """``by_source`` with the out-of-order count from a window over the events sorted by
    seq (PostgreSQL, and the reference for the DuckDB path)."""
    where, params = store.sql.where(flt)
    sql = f"""
        WITH e AS (
            SELECT source, kind, ts, ts_ingest, seq,
                   ts < max(ts) OVER (PARTITION BY source ORDER BY seq
                                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                       AS out_of_order
            FROM events {where}
        )
        SELECT source, {aggregates},
               count(*) FILTER (WHERE out_of_order) AS out_of_order
        FROM e GROUP BY source ORDER BY source
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return rows


# DuckDB computes the per-source windows of this module as streaming windows (``OVER ()``:
# no sort, no partition) over each source's events in a given order: the order the table
# stores them in when that already is the order needed (the benchmark store, a store
# written in seq order), else an ORDER BY feeding the streaming window (one sort of the
# source's rows, far cheaper than DuckDB's partitioned window sort). Every such query
# also counts the rows that break the order it relies on (``_broken``): a source with any
# is computed again the next way (sorted, then the plain SQL window), so the results are
# always those of the SQL windows.


def _broken(out_of_order: str) -> str:
    """Count of rows breaking a streaming window's order (``out_of_order``: a row that
    does not come strictly after the previous one); null keys break it too."""
    return f"count(*) FILTER (WHERE seq IS NULL OR ts IS NULL OR {out_of_order})"


def _sources(store: Store, flt: EventFilter) -> list[str] | None:
    """DuckDB: the sources with events in the window. None: PostgreSQL, or a null source
    (the SQL windows then)."""
    if store.sql.dialect != "duckdb":
        return None
    where, params = store.sql.where(flt)
    found = store.query(f"SELECT DISTINCT source FROM events {where}", params)
    sources = found.column("source").to_pylist()
    if any(src is None for src in sources):
        return None
    return sorted(sources)


def _streams(
    store: Store,
    flt: EventFilter,
    sources: list[str] | dict[str, str | None],
    columns: str,
    order: str | None,
    windows: str = "",
) -> tuple[str, list[Any]]:
    """Each source's events in the window, in storage order (``order`` None) or sorted,
    with ``prev_seq``/``prev_ts`` of the previous row of the same source and ``windows``
    (more streaming window columns). ``sources`` as a dict: the order per source."""
    orders = sources if isinstance(sources, dict) else dict.fromkeys(sources, order)
    parts: list[str] = []
    params: list[Any] = []
    for src, by in orders.items():
        w, p = store.sql.where(flt, extra=["source = ?"])
        inner = f"SELECT source, ts, seq, {columns} FROM events {w}"
        if by is not None:
            inner += f" ORDER BY {by}"
        parts.append(
            f"SELECT *, lag(seq) OVER () AS prev_seq, lag(ts) OVER () AS prev_ts{windows} "
            f"FROM ({inner}) x"
        )
        params += [src, *p]
    if not parts:
        parts.append(
            f"SELECT source, ts, seq, {columns}, seq AS prev_seq, ts AS prev_ts{windows} "
            "FROM events WHERE false"
        )
    return " UNION ALL ".join(f"({part})" for part in parts), params


def _out_of_order(store: Store, flt: EventFilter, unordered: dict[str, bool]) -> dict[str, int]:
    """Out-of-order events of these sources (value: not stored in seq order): a running
    maximum of ts over the events in seq order, else the SQL window."""
    order = {src: ("seq" if bad else None) for src, bad in unordered.items()}
    sub, params = _streams(store, flt, order, "1 AS one", None,
                           ", max(ts) OVER (ROWS UNBOUNDED PRECEDING) AS ts_max")  # fmt: skip
    sql = f"""
        SELECT source, {_broken("seq <= prev_seq")} AS unordered,
               count(*) FILTER (WHERE ts < ts_max) AS out_of_order
        FROM ({sub}) e GROUP BY source
    """
    counts: dict[str, int] = {}
    left: list[str] = []
    for r in store.query(sql, params).to_pylist():
        if r["unordered"]:
            left.append(r["source"])
        else:
            counts[r["source"]] = r["out_of_order"]
    if left:
        where, wparams = store.sql.where(flt, extra=[f"source IN ({', '.join('?' for _ in left)})"])
        sql = f"""
            SELECT source, count(*) FILTER (WHERE out_of_order) AS out_of_order FROM (
                SELECT source,
                       ts < max(ts) OVER (PARTITION BY source ORDER BY seq
                                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                           AS out_of_order
                FROM events {where}) e
            GROUP BY source
        """
        for r in store.query(sql, [*left, *wparams]).to_pylist():
            counts[r["source"]] = r["out_of_order"]
    return counts


def gaps(store: Store, flt: EventFilter, top: int = 5) -> list[dict[str, Any]]:
    """The largest silences between consecutive events (event time) of each source."""
    sources: list[str] | None = _sources(store, flt)
    if sources is None:
        return _gaps_sorted(store, flt, top, None)
    rows: list[dict[str, Any]] = []
    # the previous event in (ts, seq) order, from a lag over the events stored in seq order
    # when they never go back in time, else over the events sorted by (ts, seq); the
    # largest gaps by a top-n aggregate
    for order, broken in (
        (None, "seq <= prev_seq OR ts < prev_ts"),
        ("ts, seq", "ts < prev_ts OR (ts = prev_ts AND seq <= prev_seq)"),
    ):
        if not sources:
            break
        sub, params = _streams(store, flt, sources, "1 AS one", order)
        sql = f"""
            SELECT source, {_broken(broken)} AS unordered,
                   max_by({{'gap_start_ns': prev_ts, 'gap_end_ns': ts}}, ts - prev_ts, {int(top)})
                       FILTER (WHERE prev_ts IS NOT NULL) AS top
            FROM ({sub}) e GROUP BY source
        """
        left: list[str] = []
        for r in store.query(sql, params).to_pylist():
            if r["unordered"]:
                left.append(r["source"])
                continue
            for g in r["top"] or []:
                start, end = g["gap_start_ns"], g["gap_end_ns"]
                rows.append({"source": r["source"], "gap_start_ns": start, "gap_end_ns": end,
                             "gap_s": (end - start) / 1e9})  # fmt: skip
        sources = left
    if sources:
        rows += _gaps_sorted(store, flt, top, sources)
    rows.sort(key=lambda r: (r["source"], -r["gap_s"]))
    return rows


def _gaps_sorted(
    store: Store, flt: EventFilter, top: int, sources: list[str] | None
) -> list[dict[str, Any]]:
    """``gaps`` from SQL windows over the events sorted by (ts, seq) (PostgreSQL, and the
    reference for the DuckDB path; ``sources``: only these)."""
    extra = []
    if sources is not None:
        extra.append(f"source IN ({', '.join(store.sql.p for _ in sources)})")
    where, params = store.sql.where(flt, extra=extra)
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
    rows: list[dict[str, Any]] = store.query(sql, [*(sources or []), *params]).to_pylist()
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
