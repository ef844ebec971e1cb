"""The embedded store: one DuckDB file.

Writes come from one thread (the pipeline's committer) through ``commit``; reads use their
own cursors, so the API can query while the pipeline writes. Every batch is one
transaction: events, rejects, marks, orders, source positions and the state snapshot.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from tradelog.model.events import Event
from tradelog.model.ids import id_hash
from tradelog.storage import position_checkpoints
from tradelog.storage.arrow_codec import (
    EVENT_SCHEMA,
    MARK_SCHEMA,
    ORDER_SCHEMA,
    REJECT_SCHEMA,
    ROUND_TRIP_SCHEMA,
    events_to_arrow,
    rows_to_events,
    structs_to_arrow,
)
from tradelog.storage.base import CommitBatch, EventFilter, StreamPosition
from tradelog.storage.queries import alerts as alert_sql
from tradelog.storage.schema import SNAPSHOT_PARTS, migrations
from tradelog.storage.shared_reads import SharedReads
from tradelog.storage.sql import Sql

_POSITION_COLUMNS = (
    "source", "stream", "src_ref", "offset", "fingerprint", "dev", "inode", "lines_read",
    "events", "rejects", "duplicates", "ignored",
)  # fmt: skip


class StoreOutdatedError(RuntimeError):
    """A read-only store whose schema is older than the code's."""


SNAPSHOT_PART_BYTES: Final = 1 << 20
"""A stored snapshot is cut into rows of at most this size: DuckDB needed over 640 MB to
write one 64 MB BLOB, and the compressed snapshot of a 10 M-event replay is ~19 MB (the
limit had to be raised for that commit, +150 MB of peak RSS at the end of the replay)."""


def snapshot_parts(partition: int, seq: int, saved_ns: int, blob: bytes) -> pa.Table:
    """The rows of ``SNAPSHOT_PARTS`` holding one stored snapshot, in order."""
    step = SNAPSHOT_PART_BYTES
    # bytes slices, not memoryview slices: an Arrow binary array built from memoryviews
    # kept their memory alive after the insert (+19 MB per 19 MB snapshot, measured)
    pieces = [blob[i : i + step] for i in range(0, len(blob), step)] or [b""]
    n = len(pieces)
    return pa.table(
        {
            "partition": pa.array([partition] * n, pa.int64()),
            "part": pa.array(range(n), pa.int64()),
            "seq": pa.array([seq] * n, pa.int64()),
            "saved_ns": pa.array([saved_ns] * n, pa.int64()),
            "data": pa.array(pieces, pa.binary()),
        }
    )


@dataclass(slots=True)
class _ArrowBatch:
    """A commit batch as the Arrow tables DuckDB inserts (None: nothing for that table)."""

    events: pa.Table | None
    rejects: pa.Table | None
    marks: pa.Table | None
    orders: pa.Table | None
    trips: pa.Table | None
    checkpoints: pa.Table | None


def _arrow_tables(batch: CommitBatch) -> _ArrowBatch:
    """Converts a batch once."""
    checkpoint_rows = position_checkpoints.batch_rows(batch.events)
    return _ArrowBatch(
        events=events_to_arrow(batch.events, batch.id_hashes) if batch.events else None,
        rejects=(
            structs_to_arrow(batch.rejects, REJECT_SCHEMA, batch.reject_hashes)
            if batch.rejects
            else None
        ),
        marks=structs_to_arrow(batch.marks, MARK_SCHEMA) if batch.marks else None,
        orders=structs_to_arrow(batch.orders, ORDER_SCHEMA) if batch.orders else None,
        trips=(
            structs_to_arrow(batch.round_trips, ROUND_TRIP_SCHEMA) if batch.round_trips else None
        ),
        checkpoints=(position_checkpoints.as_table(checkpoint_rows) if checkpoint_rows else None),
    )


class DuckDBStore(SharedReads):
    """Store on a DuckDB file (``duckdb:///path``); ``read_only`` for ``serve``/``report``."""

    def __init__(
        self,
        path: str,
        read_only: bool = False,
        url: str | None = None,
        memory_limit: str | None = "2GB",
        threads: int | None = None,
    ) -> None:
        self.url = url or f"duckdb:///{path}"
        self.path = path
        if not read_only:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        elif not os.path.exists(path):
            raise FileNotFoundError(f"no store at {path}")
        self._con = duckdb.connect(path, read_only=read_only)
        self.sql = Sql("duckdb")
        self._lock = threading.Lock()
        self._known_streams: set[tuple[str, str]] | None = None
        self._pending_streams: set[tuple[str, str]] = set()
        self.read_only = read_only
        if memory_limit:
            self._con.execute("SET memory_limit = ?", [memory_limit])
        if threads:
            self._con.execute(f"SET threads = {int(threads)}")
        if not read_only:
            # write-ahead log folded into the file every 128 MB: the rows between two
            # checkpoints stay in memory (256 MB: +115 MB peak in a 1 M-event replay, no
            # faster; 64 MB: slower and no smaller, docs/benchmarks.md)
            self._con.execute("SET checkpoint_threshold = '128MB'")
            self._con.execute("SET preserve_insertion_order = false")
            self._migrate()
        else:
            self._check_schema()

    # ------------------------------------------------------------------ schema
    def _migrate(self) -> None:
        con = self._con
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version BIGINT PRIMARY KEY, description VARCHAR, applied_ns BIGINT)"
        )
        row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        current = int(row[0]) if row else 0
        for version, description, statements in migrations("duckdb"):
            if version <= current:
                continue
            con.execute("BEGIN")
            try:
                for stmt in statements:
                    con.execute(stmt)
                con.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    [version, description, time.time_ns()],
                )
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise

    def _check_schema(self) -> None:
        """A read-only store cannot be migrated: one older than this code is refused with
        the way out, instead of failing later on a missing table or column."""
        latest = migrations("duckdb")[-1][0]
        try:
            found = self.schema_version()
        except duckdb.CatalogException:  # not a tradelog store at all
            found = 0
        if found < latest:
            self._con.close()
            raise StoreOutdatedError(
                f"store {self.path} has schema version {found}, this tradelog needs "
                f"{latest}: open it once for writing (e.g. `tradelog serve --store "
                f"{self.url}` while no other process holds it) to apply the migrations"
            )

    def schema_version(self) -> int:
        row = self._cursor().execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def table_columns(self, table: str) -> list[str]:
        rows = self._cursor().execute(f"DESCRIBE {table}").fetchall()
        return [r[0] for r in rows]

    # ------------------------------------------------------------------ writes
    def prepare(self, batch: CommitBatch) -> None:
        """The batch's Arrow tables, built on the caller's thread: the conversion holds the
        GIL (~5 µs per event), the DuckDB insert mostly does not, so a producer that
        prepares lets the committer's insert overlap its next batch (replay: +23-39 %)."""
        if batch.prepared is None:
            batch.prepared = _arrow_tables(batch)

    def commit(self, batch: CommitBatch) -> None:
        prepared = batch.prepared
        if not isinstance(prepared, _ArrowBatch):  # kept: a retried batch is not re-packed
            prepared = batch.prepared = _arrow_tables(batch)
        events, rejects, marks = prepared.events, prepared.rejects, prepared.marks
        orders, trips, checkpoints = prepared.orders, prepared.trips, prepared.checkpoints
        now = time.time_ns()
        with self._lock:
            con = self._con
            con.execute("BEGIN")
            try:
                if events is not None:
                    con.register("_tl_events", events)
                    con.execute("INSERT INTO events BY NAME SELECT * FROM _tl_events")
                    con.unregister("_tl_events")
                if checkpoints is not None:
                    con.register("_tl_checkpoints", checkpoints)
                    con.execute(
                        position_checkpoints.upsert_sql(
                            f"SELECT {', '.join(checkpoints.column_names)} FROM _tl_checkpoints"
                        )
                    )
                    con.unregister("_tl_checkpoints")
                if rejects is not None:
                    con.register("_tl_rejects", rejects)
                    con.execute("INSERT INTO rejects BY NAME SELECT * FROM _tl_rejects")
                    con.unregister("_tl_rejects")
                if marks is not None:
                    con.register("_tl_marks", marks)
                    con.execute("INSERT INTO anomalies BY NAME SELECT * FROM _tl_marks")
                    con.unregister("_tl_marks")
                if orders is not None:
                    self._write_orders(con, orders, batch)
                if trips is not None:
                    con.register("_tl_trips", trips)
                    con.execute("INSERT INTO round_trips BY NAME SELECT * FROM _tl_trips")
                    con.unregister("_tl_trips")
                self._write_positions(con, batch, now)
                if batch.snapshot is not None:
                    partition, seq, data = batch.snapshot
                    con.execute(f"DELETE FROM {SNAPSHOT_PARTS} WHERE partition = ?", [partition])
                    con.register("_tl_snapshot", snapshot_parts(partition, seq, now, data))
                    con.execute(f"INSERT INTO {SNAPSHOT_PARTS} BY NAME SELECT * FROM _tl_snapshot")
                    con.unregister("_tl_snapshot")
                if batch.alerts or batch.profiles:
                    self._write_alerts(con, batch, now)
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                self._pending_streams.clear()
                raise
            if self._known_streams is not None:
                self._known_streams |= self._pending_streams
            self._pending_streams.clear()

    def _write_positions(
        self, con: duckdb.DuckDBPyConnection, batch: CommitBatch, now: int
    ) -> None:
        """Streams seen before are updated in place (cheaper than an upsert on this small
        keyed table); new ones are inserted."""
        if self._known_streams is None:
            rows = con.execute("SELECT source, stream FROM source_positions").fetchall()
            self._known_streams = {(r[0], r[1]) for r in rows}
        for p in batch.positions:
            key = (p.source, p.stream)
            if key in self._known_streams:
                con.execute(
                    """
                    UPDATE source_positions SET
                        src_ref = ?, "offset" = ?, fingerprint = ?, dev = ?, inode = ?,
                        lines_read = lines_read + ?, events = events + ?, rejects = rejects + ?,
                        duplicates = duplicates + ?, ignored = ignored + ?, updated_ns = ?
                    WHERE source = ? AND stream = ?
                    """,
                    [
                        p.src_ref, p.offset, p.fingerprint, p.dev, p.inode, p.lines_read,
                        p.events, p.rejects, p.duplicates, p.ignored, now, p.source, p.stream,
                    ],
                )  # fmt: skip
            else:
                con.execute(
                    "INSERT INTO source_positions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [*(getattr(p, c) for c in _POSITION_COLUMNS), now],
                )
                self._pending_streams.add(key)

    @staticmethod
    def _write_alerts(con: duckdb.DuckDBPyConnection, batch: CommitBatch, now: int) -> None:
        """Alerts upserted (status kept), their system history rows, profiles upserted:
        one statement per table per batch (a DuckDB statement costs ~1 ms, a batch may
        carry dozens of alerts and profiles). Within a batch the last version of an
        alert or profile wins, as it would with row-by-row upserts."""
        if batch.alerts:
            latest = {a.alert_id: a for a in batch.alerts}
            rows = [alert_sql.upsert_alert_params(a, now) for a in latest.values()]
            cols = (*alert_sql.ALERT_COLUMNS, "status", "created_ns", "updated_ns")
            con.register("_tl_alerts", _columns_table(cols, rows))
            con.execute(alert_sql.upsert_alerts_select_sql("_tl_alerts"))
            con.unregister("_tl_alerts")
            hist = [h for a in batch.alerts if (h := alert_sql.system_history_row(a)) is not None]
            if hist:
                con.register("_tl_hist", _columns_table(alert_sql.HISTORY_COLUMNS, hist))
                con.execute(alert_sql.system_history_select_sql("_tl_hist"))
                con.unregister("_tl_hist")
        if batch.profiles:
            latest_p = {(r.account_id, r.partition): r for r in batch.profiles}
            prows = [alert_sql.upsert_profile_params(r) for r in latest_p.values()]
            con.register("_tl_profiles", _columns_table(alert_sql.PROFILE_COLUMNS, prows))
            con.execute(alert_sql.upsert_profiles_select_sql("_tl_profiles"))
            con.unregister("_tl_profiles")

    def alert_transition(
        self, alert_id: str, action: str, actor: str, note: str | None, ts: int
    ) -> dict[str, Any]:
        with self._lock:
            con = self._con
            con.execute("BEGIN")
            try:
                alert_sql.apply_transition(con, "?", alert_id, action, actor, note, ts)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        found = self.alert(alert_id)
        assert found is not None
        return found

    @staticmethod
    def _write_orders(con: duckdb.DuckDBPyConnection, orders: pa.Table, batch: CommitBatch) -> None:
        if batch.order_rewrites:
            con.execute(
                "DELETE FROM orders WHERE order_id IN (SELECT unnest(?))",
                [sorted(batch.order_rewrites)],
            )
        con.register("_tl_orders", orders)
        if batch.order_placeholders:
            con.execute(
                """
                INSERT INTO orders BY NAME SELECT * FROM _tl_orders
                WHERE order_id NOT IN (SELECT unnest($1))
                   OR order_id NOT IN (SELECT order_id FROM orders)
                """,
                [sorted(batch.order_placeholders)],
            )
        else:
            con.execute("INSERT INTO orders BY NAME SELECT * FROM _tl_orders")
        con.unregister("_tl_orders")

    # ------------------------------------------------------------------ recovery
    def load_positions(self) -> list[StreamPosition]:
        cols = ", ".join(f'"{c}"' for c in _POSITION_COLUMNS)
        rows = self._cursor().execute(f"SELECT {cols} FROM source_positions").fetchall()
        return [StreamPosition(**dict(zip(_POSITION_COLUMNS, r, strict=True))) for r in rows]

    def load_id_hashes(self) -> npt.NDArray[np.int64]:
        result = (
            self._cursor()
            .execute("SELECT id_hash FROM events UNION ALL SELECT id_hash FROM rejects")
            .fetchnumpy()
        )
        return np.asarray(result["id_hash"], dtype=np.int64)

    def stored_event_ids(self, event_ids: list[str], hashes: list[int] | None = None) -> set[str]:
        """Which of these event/reject ids are stored (exact); with their id hashes the
        lookup joins on the integer column first, which is several times cheaper."""
        if not event_ids:
            return set()
        if hashes is None:
            hashes = [id_hash(i) for i in event_ids]
        rows = (
            self._cursor()
            .execute(
                """
                WITH q AS (SELECT unnest($1) AS h, unnest($2) AS id)
                SELECT e.event_id FROM events e
                SEMI JOIN q ON e.id_hash = q.h AND e.event_id = q.id
                UNION
                SELECT r.reject_id FROM rejects r
                SEMI JOIN q ON r.id_hash = q.h AND r.reject_id = q.id
                """,
                [hashes, event_ids],
            )
            .fetchall()
        )
        return {r[0] for r in rows}

    def load_snapshot(self, partition: int) -> tuple[int, bytes] | None:
        rows = (
            self._cursor()
            .execute(
                f"SELECT seq, data FROM {SNAPSHOT_PARTS} WHERE partition = ? ORDER BY part",
                [partition],
            )
            .fetchall()
        )
        if not rows:
            return None
        if len({r[0] for r in rows}) != 1:  # parts are replaced in one transaction
            raise RuntimeError(f"state snapshot of partition {partition} mixes seq values")
        return int(rows[0][0]), b"".join(bytes(r[1]) for r in rows)

    def events_after(self, seq: int, limit: int) -> list[Event]:
        table = (
            self._cursor()
            .sql("SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", params=[seq, limit])
            .to_arrow_table()
        )
        return rows_to_events(_as_table(table))

    def max_seq(self) -> int:
        row = self._cursor().execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ reads
    def _cursor(self) -> duckdb.DuckDBPyConnection:
        return self._con.cursor()

    def latest_ts(self) -> int | None:
        row = self._cursor().execute("SELECT max(ts) FROM events").fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def recent(self, flt: EventFilter, limit: int) -> list[dict[str, Any]]:
        where, params = _where(flt)
        sql = f"SELECT * EXCLUDE (id_hash) FROM events {where} ORDER BY ts DESC, seq DESC LIMIT ?"
        table = _as_table(self._cursor().sql(sql, params=[*params, limit]).to_arrow_table())
        rows: list[dict[str, Any]] = table.to_pylist()
        return rows

    def order_events(self, order_id: str) -> list[Event]:
        table = (
            self._cursor()
            .sql(
                """
                SELECT * FROM events WHERE root_order_id = (
                    SELECT root_order_id FROM events
                    WHERE root_order_id = $1 OR order_id = $1 OR orig_order_id = $1
                       OR venue_order_id = $1
                    ORDER BY (root_order_id = $1) DESC,
                             (order_id = $1 OR orig_order_id = $1) DESC
                    LIMIT 1)
                ORDER BY seq
                """,
                params=[order_id],
            )
            .to_arrow_table()
        )
        return rows_to_events(_as_table(table))

    def order_row(self, order_id: str) -> dict[str, Any] | None:
        rows = (
            self._cursor()
            .sql(
                """
                SELECT * FROM orders
                WHERE order_id = $1 OR list_contains(string_split(aliases, ','), $1)
                LIMIT 1
                """,
                params=[order_id],
            )
            .to_arrow_table()
        )
        found: list[dict[str, Any]] = _as_table(rows).to_pylist()
        return found[0] if found else None

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """Read-only SQL for analytics (results as Arrow)."""
        return _as_table(self._cursor().sql(sql, params=params or []).to_arrow_table())

    def query_batches(
        self, sql: str, params: list[Any] | None = None, rows: int = 1 << 20
    ) -> Iterator[pa.RecordBatch]:
        reader = self._cursor().sql(sql, params=params or []).to_arrow_reader(rows)
        yield from reader

    def close(self) -> None:
        with self._lock:
            if not self.read_only:
                self._con.execute("CHECKPOINT")
            self._con.close()


def _as_table(result: Any) -> pa.Table:
    """Typed view of a DuckDB Arrow result."""
    if not isinstance(result, pa.Table):
        raise TypeError(f"expected an Arrow table from DuckDB; got {type(result).__name__}")
    return result


def _where(flt: EventFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if flt.start is not None:
        clauses.append("ts >= ?")
        params.append(flt.start)
    if flt.end is not None:
        clauses.append("ts < ?")
        params.append(flt.end)
    for col, value in (
        ("symbol", flt.symbol),
        ("venue", flt.venue),
        ("strategy_id", flt.strategy),
        ("account_id", flt.account),
    ):
        if value is not None:
            clauses.append(f"{col} = ?")
            params.append(value)
    if flt.kinds:
        clauses.append("kind IN (SELECT unnest(?))")
        params.append(list(flt.kinds))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


__all__ = ["EVENT_SCHEMA", "DuckDBStore"]


def _columns_table(names: tuple[str, ...], rows: list[list[Any]]) -> pa.Table:
    """Rows (lists in ``names`` order) → an Arrow table; types are inferred and cast by
    the INSERT into the typed table (an all-null column is NULL-typed, which casts)."""
    return pa.Table.from_arrays(
        [pa.array(list(col)) for col in zip(*rows, strict=True)], names=list(names)
    )
