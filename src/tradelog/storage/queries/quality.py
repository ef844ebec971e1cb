"""Data quality and anomaly marks: what each source delivered, how late, with which gaps
and rejects; and the anomaly marks of a window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from tradelog.analytics.stats import QUANTILES
from tradelog.storage.base import EventFilter, Store
from tradelog.storage.queries import source_stats
from tradelog.storage.sql import Sql

ANOMALY_COLUMNS: Final = (
    "ts", "event_id", "kind", "type", "severity", "value", "threshold", "symbol", "venue",
    "strategy_id", "account_id", "order_id", "detail",
)  # fmt: skip
"""Columns of ``anomaly_rows`` (the CSV header even when nothing matches)."""


@dataclass(frozen=True, slots=True)
class SourceActivity:
    """What each source delivered in a window."""

    sources: list[dict[str, Any]]
    """Per source: events, kinds, first/last event time, ingest lag (ts_ingest − ts)
    mean/quantiles/max in ms, out-of-order events (earlier than an event of the same
    source before it in seq order)."""
    gaps: list[dict[str, Any]]
    """Per source, the ``top`` largest silences between consecutive events (event time),
    largest first; of equal ones the earliest first."""


def _aggregates(s: Sql) -> str:
    return f"""
        count(*) AS events, count(DISTINCT kind) AS kinds,
        min(ts) AS first_ts, max(ts) AS last_ts,
        avg((ts_ingest - ts) / 1e6) AS lag_mean,
        {s.quantiles("(ts_ingest - ts) / 1e6", QUANTILES)} AS lag_q,
        max((ts_ingest - ts) / 1e6) AS lag_max
    """


def source_activity(store: Store, flt: EventFilter, top: int = 5) -> SourceActivity:
    """Per source in the window: the ``sources`` rows and the largest ``gaps``.

    DuckDB reads the window's events once, in storage order, into NumPy
    (``source_stats``); a source with a null ``ts``, ``seq`` or ``ts_ingest`` gets one
    streaming window over its events instead (``_stream_activity``). A source stored out
    of seq order, or with an event earlier than the one before it, gets its out-of-order
    count and gaps computed again as ``_out_of_order`` and ``_gaps`` say. PostgreSQL (and a
    null source) uses the SQL windows."""
    kinds = _kinds(store, flt)
    if kinds is None:
        return SourceActivity(
            _by_source_sorted(store, flt, _aggregates(store.sql)),
            _gaps_sorted(store, flt, top, None),
        )
    names = sorted(kinds)
    where, params = store.sql.where(flt)
    batches = store.query_batches(
        "SELECT (list_position(?::VARCHAR[], source) - 1)::SMALLINT AS code, ts, seq, "
        f"ts_ingest FROM events {where}",
        [names, *params],
        source_stats.BATCH_ROWS,
    )
    stats = source_stats.source_stats(batches, names, QUANTILES, top)
    rows, gap_rows = stats.rows, stats.gaps
    redo = stats.redo
    if stats.nulls:
        more = _stream_activity(store, flt, stats.nulls, top)
        rows, gap_rows, redo = rows + more.sources, gap_rows + more.gaps, redo | more.redo
    counts = _out_of_order(store, flt, redo) if redo else {}
    for r in rows:
        r["kinds"] = kinds[r["source"]]
        if r["source"] in redo:
            r["out_of_order"] = counts[r["source"]]
    if redo:
        gap_rows += _gaps(store, flt, top, sorted(redo))
    rows.sort(key=lambda r: str(r["source"]))
    gap_rows.sort(key=lambda g: (g["source"], -g["gap_s"], g["gap_end_ns"]))
    return SourceActivity(rows, gap_rows)


@dataclass(frozen=True, slots=True)
class _Streamed:
    sources: list[dict[str, Any]]
    gaps: list[dict[str, Any]]
    redo: dict[str, bool]
    """Sources whose out-of-order count and gaps are still to compute (value: not
    stored in seq order)."""


def _stream_activity(store: Store, flt: EventFilter, sources: list[str], top: int) -> _Streamed:
    """``source_activity`` of these sources from one streaming window over each one's
    events in storage order (DuckDB): right for a source stored in seq order that never
    goes back in time, the others are returned in ``redo``."""
    sub, params = _streams(store, flt, sources, "kind, ts_ingest", None)
    sql = f"""
        SELECT source, {_aggregates(store.sql)}, {_broken("seq <= prev_seq")} AS unordered,
               count(*) FILTER (WHERE ts < prev_ts) AS out_of_order,
               {_top_gaps(top)} AS top
        FROM ({sub}) e GROUP BY source ORDER BY source
    """
    rows: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    redo = {r["source"]: bool(r["unordered"]) for r in rows if r["unordered"] or r["out_of_order"]}
    gap_rows: list[dict[str, Any]] = []
    for r in rows:
        if r["source"] not in redo:
            gap_rows += _gap_rows(r["source"], r["top"])
        del r["unordered"], r["top"], r["kinds"]
    return _Streamed(rows, gap_rows, redo)


def _by_source_sorted(store: Store, flt: EventFilter, aggregates: str) -> list[dict[str, Any]]:
    """``SourceActivity.sources`` with the out-of-order count from a window over the
    events sorted by seq (PostgreSQL, and the reference for the DuckDB path)."""
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


def _kinds(store: Store, flt: EventFilter) -> dict[str, int] | None:
    """DuckDB: the sources with events in the window and their count of distinct kinds.
    None: PostgreSQL, or a null source (the SQL windows then)."""
    if store.sql.dialect != "duckdb":
        return None
    where, params = store.sql.where(flt)
    found = store.query(
        f"SELECT source, count(DISTINCT kind) AS kinds FROM events {where} GROUP BY source",
        params,
    ).to_pylist()
    if any(r["source"] is None for r in found):
        return None
    return {r["source"]: int(r["kinds"]) for r in found}


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


def _top_gaps(top: int) -> str:
    """The ``top`` largest gaps to the previous row of a stream, as a list; of equal gaps
    the earliest first."""
    return (f"max_by({{'gap_start_ns': prev_ts, 'gap_end_ns': ts}}, [ts - prev_ts, -ts], "
            f"{int(top)}) FILTER (WHERE prev_ts IS NOT NULL AND ts IS NOT NULL)")  # fmt: skip


def _gap_rows(source: str, top: list[dict[str, int]] | None) -> list[dict[str, Any]]:
    return [
        {"source": source, "gap_start_ns": g["gap_start_ns"], "gap_end_ns": g["gap_end_ns"],
         "gap_s": (g["gap_end_ns"] - g["gap_start_ns"]) / 1e9}
        for g in top or []
    ]  # fmt: skip


def _gaps(store: Store, flt: EventFilter, top: int, sources: list[str]) -> list[dict[str, Any]]:
    """The largest gaps of sources whose storage order is not their (ts, seq) order: from
    a lag over the events sorted by (ts, seq), else (null seq or ts) the SQL window."""
    sub, params = _streams(store, flt, sources, "1 AS one", "ts, seq")
    sql = f"""
        SELECT source, {_broken("ts < prev_ts OR (ts = prev_ts AND seq <= prev_seq)")}
                   AS unordered, {_top_gaps(top)} AS top
        FROM ({sub}) e GROUP BY source
    """
    rows: list[dict[str, Any]] = []
    left: list[str] = []
    for r in store.query(sql, params).to_pylist():
        if r["unordered"]:
            left.append(r["source"])
        else:
            rows += _gap_rows(r["source"], r["top"])
    if left:
        rows += _gaps_sorted(store, flt, top, left)
    return rows


def _gaps_sorted(
    store: Store, flt: EventFilter, top: int, sources: list[str] | None
) -> list[dict[str, Any]]:
    """``SourceActivity.gaps`` from SQL windows over the events sorted by (ts, seq)
    (PostgreSQL, and the reference for the DuckDB path; ``sources``: only these). Events
    without a time have no gap."""
    extra = ["ts IS NOT NULL"]
    if sources is not None:
        extra.append(f"source IN ({', '.join(store.sql.p for _ in sources)})")
    where, params = store.sql.where(flt, extra=extra)
    sql = f"""
        WITH e AS (
            SELECT source, ts, lag(ts) OVER (PARTITION BY source ORDER BY ts, seq) AS prev
            FROM events {where}
        ), r AS (
            SELECT source, prev AS gap_start_ns, ts AS gap_end_ns, (ts - prev) / 1e9 AS gap_s,
                   row_number() OVER (PARTITION BY source ORDER BY ts - prev DESC, ts)
                       AS rn
            FROM e WHERE prev IS NOT NULL
        )
        SELECT source, gap_start_ns, gap_end_ns, gap_s FROM r WHERE rn <= {int(top)}
        ORDER BY source, gap_s DESC, gap_end_ns
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
