"""The production store: PostgreSQL 15+ (TimescaleDB when the extension can be created).

Same ``Store`` protocol as the DuckDB store. Layout and write path (docs/adr/0006):

- Migrations from ``storage/schema.py`` (dialect ``postgresql``) plus this store's physical
  layout (partitioning, unique keys, indexes), applied at start in one transaction under an
  advisory lock and versioned in ``schema_migrations``: safe to run twice and from several
  processes at once.
- ``events`` is a TimescaleDB hypertable (1-day chunks on ``ts``) when the extension is
  available, else natively range-partitioned by day on ``ts`` (ns) with a default
  partition; day partitions are created on demand before the rows that need them arrive.
- A batch goes in by binary ``COPY`` into temporary staging tables, then
  ``INSERT … SELECT … ON CONFLICT DO NOTHING`` into the real tables, so a redelivered event
  or reject is dropped by the store too (the unique key of a partitioned table must hold
  the partition column: events are unique on ``(event_id, ts)``; a redelivery carries the
  same ts). Events the store drops move from ``events`` to ``duplicates`` in their stream's
  counters and their marks are not stored, so ``lines = events + rejects + duplicates +
  ignored`` still holds. Everything of one batch commits in ONE transaction.
- Retention (``retention_days``): whole day partitions (or chunks) older than N days are
  dropped at start and then once a day.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import operator
import queue
import re
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Final, Literal

import msgspec
import numpy as np
import numpy.typing as npt
import psycopg
import pyarrow as pa
from psycopg import sql as pgsql
from psycopg.types.numeric import FloatLoader

from tradelog.model.alerts import AlertNotFoundError
from tradelog.model.events import COMMON_FIELDS, KIND_FIELDS, Event, EventKind
from tradelog.storage import position_checkpoints
from tradelog.storage.arrow_codec import (
    EVENT_SCHEMA,
    MARK_SCHEMA,
    ORDER_SCHEMA,
    REJECT_SCHEMA,
    ROUND_TRIP_SCHEMA,
    rows_to_events,
)
from tradelog.storage.base import CommitBatch, EventFilter, StreamPosition
from tradelog.storage.queries import alerts as alert_sql
from tradelog.storage.schema import migrations
from tradelog.storage.shared_reads import SharedReads
from tradelog.storage.sql import Sql

log = logging.getLogger(__name__)

Layout = Literal["timescaledb", "partitioned"]

DAY_NS: Final = 86_400 * 1_000_000_000
MIGRATION_LOCK: Final = 0x74726164656C6F67  # "tradelog": serialises migrations
PARTITION_LOCK: Final = 0x74726164656C6F68  # serialises partition DDL and retention
_PARTITION_NAME = re.compile(r"^events_(\d{8})$")
_FIRST_DAY: Final = 0  # 1970-01-01: days outside [first, last] stay in the default partition
_LAST_DAY: Final = (dt.date(2200, 1, 1) - dt.date(1970, 1, 1)).days

STAGED_AFTER_DUPLICATE: Final = 8
"""Commits that go through staging after one met a stored id (redeliveries come in runs)."""

_POSITION_COLUMNS: Final = (
    "source", "stream", "src_ref", "offset", "fingerprint", "dev", "inode", "lines_read",
    "events", "rejects", "duplicates", "ignored",
)  # fmt: skip
_COUNTERS: Final = ("lines_read", "events", "rejects", "duplicates", "ignored")

_JSON = msgspec.json.Encoder()


def _pg_type(t: pa.DataType) -> str:
    if pa.types.is_int64(t):
        return "int8"
    if pa.types.is_float64(t):
        return "float8"
    if pa.types.is_boolean(t):
        return "bool"
    return "text"


_EVENT_TYPES: Final = {f.name: _pg_type(f.type) for f in EVENT_SCHEMA}
EVENT_COLUMNS: Final = tuple(f.name for f in EVENT_SCHEMA)
"""Every events column the codec writes (the table has exactly these, see schema test)."""
_READ_COLUMNS: Final = tuple(c for c in EVENT_COLUMNS if c != "id_hash")


def _kind_columns(kind: EventKind) -> tuple[str, ...]:
    """Columns one kind can carry, ``attrs`` and ``id_hash`` last (written separately)."""
    return tuple(c for c in (*COMMON_FIELDS, *KIND_FIELDS[kind]) if c != "attrs")


_KIND_COLUMNS: Final = {kind: _kind_columns(kind) for kind in EventKind}
_GETTERS: Final = {kind: operator.attrgetter(*cols) for kind, cols in _KIND_COLUMNS.items()}

# Physical layout of this store, applied right after the shared migration of the same
# version (frozen like the migrations: new layout = a new entry under a new version).
_LAYOUT_AFTER: Final[dict[int, list[str]]] = {
    1: [
        "CREATE TABLE IF NOT EXISTS tradelog_meta (key TEXT PRIMARY KEY, value TEXT)",
        "ALTER TABLE events ADD CONSTRAINT events_event_id_ts_key UNIQUE (event_id, ts)",
        "CREATE INDEX IF NOT EXISTS events_ts ON events (ts)",
        "CREATE INDEX IF NOT EXISTS events_kind_ts ON events (kind, ts)",
        "CREATE INDEX IF NOT EXISTS events_symbol_ts ON events (symbol, ts)",
        "CREATE INDEX IF NOT EXISTS events_order_id ON events (order_id)",
        "CREATE INDEX IF NOT EXISTS events_root_order_id ON events (root_order_id)",
        "CREATE INDEX IF NOT EXISTS events_seq ON events (seq)",
        "ALTER TABLE rejects ADD CONSTRAINT rejects_reject_id_key UNIQUE (reject_id)",
        "CREATE INDEX IF NOT EXISTS rejects_ts_ingest ON rejects (ts_ingest)",
        "CREATE INDEX IF NOT EXISTS anomalies_ts ON anomalies (ts)",
        "CREATE INDEX IF NOT EXISTS anomalies_event_id ON anomalies (event_id)",
        "CREATE INDEX IF NOT EXISTS orders_order_id ON orders (order_id)",
        "CREATE INDEX IF NOT EXISTS orders_ts_done ON orders (ts_done)",
    ],
    2: ["CREATE INDEX IF NOT EXISTS round_trips_ts_close ON round_trips (ts_close)"],
    # order_id equals root_order_id except in cancel/replace chains, whose ids are the only
    # ones ``order_events`` looks up by order_id: a partial index holds just those (every
    # index on events costs ~1 µs of server CPU and ~100 bytes of WAL per stored event)
    4: [
        "DROP INDEX IF EXISTS events_order_id",
        "CREATE INDEX IF NOT EXISTS events_order_id_chain ON events (order_id) "
        "WHERE order_id IS DISTINCT FROM root_order_id",
        # snapshots are MBs: lz4 compresses ~4x faster than the default pglz (where built in)
        """
        DO $$ BEGIN
            ALTER TABLE state_snapshots ALTER COLUMN data SET COMPRESSION lz4;
        EXCEPTION WHEN feature_not_supported THEN NULL;
        END $$
        """,
    ],
}

# TimescaleDB only: the per-minute metrics as a real-time continuous aggregate.
_TIMESCALE_SETUP: Final = [
    """
    CREATE OR REPLACE FUNCTION tradelog_now_ns() RETURNS BIGINT LANGUAGE SQL STABLE AS
    $$ SELECT (extract(epoch FROM clock_timestamp()) * 1e9)::BIGINT $$
    """,
    "SELECT set_integer_now_func('events', 'tradelog_now_ns', replace_if_exists => TRUE)",
    """
    CREATE MATERIALIZED VIEW IF NOT EXISTS events_per_minute
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(60000000000::BIGINT, ts) AS minute_ns, kind, source, venue,
           strategy_id, symbol, count(*) AS events,
           count(latency_ms) AS with_latency, avg(latency_ms) AS latency_mean_ms,
           max(latency_ms) AS latency_max_ms, avg(slippage_bps) AS slippage_mean_bps,
           sum(last_qty) AS filled_qty, sum(last_qty * last_px) AS filled_notional
    FROM events GROUP BY 1, 2, 3, 4, 5, 6 WITH NO DATA
    """,
    """
    SELECT add_continuous_aggregate_policy('events_per_minute',
        start_offset => NULL, end_offset => 60000000000::BIGINT,
        schedule_interval => INTERVAL '1 minute', if_not_exists => TRUE)
    """,
]


def _day_name(day: int) -> str:
    return "events_" + (dt.date(1970, 1, 1) + dt.timedelta(days=day)).strftime("%Y%m%d")


def _name_day(name: str) -> int | None:
    m = _PARTITION_NAME.match(name)
    if m is None:
        return None
    d = dt.datetime.strptime(m.group(1), "%Y%m%d").date()
    return (d - dt.date(1970, 1, 1)).days


def _configure(conn: psycopg.Connection[Any]) -> None:
    """NUMERIC results as float (DuckDB gives DOUBLE for the same expressions)."""
    conn.adapters.register_loader("numeric", FloatLoader)


class _ReadPool:
    """A few autocommit, read-only connections shared by the API's worker threads."""

    def __init__(self, dsn: str, size: int) -> None:
        self._dsn = dsn
        self._size = size
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._opened = 0
        self._lock = threading.Lock()
        self._closed = False

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self._dsn, autocommit=True)
        _configure(conn)
        conn.execute("SET default_transaction_read_only = on")
        conn.execute("SET work_mem = '64MB'")  # analytics sort/hash in memory
        return conn

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        if self._closed:
            raise RuntimeError("the PostgreSQL store is closed")
        conn: psycopg.Connection[Any] | None = None
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                grow = self._opened < self._size
                if grow:
                    self._opened += 1
            if grow:
                try:
                    conn = self._connect()
                except BaseException:
                    with self._lock:
                        self._opened -= 1
                    raise
            else:
                conn = self._idle.get()
        try:
            yield conn
        finally:
            if conn.broken or conn.closed or self._closed:
                conn.close()
                with self._lock:
                    self._opened -= 1
            else:
                self._idle.put(conn)

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break


class PostgresStore(SharedReads):
    """Store on PostgreSQL (``postgresql://user@host:5432/db``); ``read_only`` for serve."""

    def __init__(
        self,
        url: str,
        read_only: bool = False,
        retention_days: int | None = None,
        read_connections: int = 4,
        use_timescale: bool | None = None,
    ) -> None:
        """``use_timescale``: None = use it when ``CREATE EXTENSION timescaledb`` works (only
        decided when the schema is first created; an existing store keeps its layout)."""
        if retention_days is not None and retention_days < 1:
            raise ValueError(f"store.retention_days must be >= 1; was {retention_days}")
        self.url = url
        self.sql = Sql("postgresql")
        self.read_only = read_only
        self.retention_days = retention_days
        self._dsn = url
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._partitions: set[int] = set()
        self._staged_commits_left = 0
        self._reads = _ReadPool(url, read_connections)
        self.layout: Layout = "partitioned"
        if read_only:
            with self._reads.connection() as conn:
                if conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,):
                    raise FileNotFoundError(f"no tradelog schema in {url}")
                self.layout = self._stored_layout(conn)
        else:
            conn = self._connect()
            self.migrate(conn, use_timescale)
            self.layout = self._stored_layout(conn)
            self._partitions = self._existing_partitions(conn)
            self._prepare_staging(conn)
            self._conn = conn
        self._retention_thread: threading.Thread | None = None
        if retention_days is not None and not read_only:
            self.apply_retention()
            self._retention_thread = threading.Thread(
                target=self._retention_loop, name="tradelog-pg-retention", daemon=True
            )
            self._retention_thread.start()

    # ------------------------------------------------------------------ connections
    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self._dsn, autocommit=True)
        _configure(conn)
        return conn

    def _writer(self) -> psycopg.Connection[Any]:
        """The write connection, reopened (with its staging tables) after a failure."""
        if self.read_only:
            raise PermissionError(f"store {self.url} is open read-only")
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                conn.close()
            conn = self._connect()
            self._prepare_staging(conn)
            self._partitions = self._existing_partitions(conn)
            self._conn = conn
        return conn

    # ------------------------------------------------------------------ schema
    @staticmethod
    def migrate(conn: psycopg.Connection[Any], use_timescale: bool | None = None) -> int:
        """Applies the missing migrations in one transaction under an advisory lock (safe
        to call twice and concurrently); returns the schema version."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATION_LOCK])
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version BIGINT PRIMARY KEY, description TEXT, applied_ns BIGINT)"
            )
            row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
            current = int(row[0]) if row else 0
            layout: Layout | None = None
            for version, description, statements in migrations("postgresql"):
                if version <= current:
                    continue
                if layout is None:
                    layout = (
                        PostgresStore._choose_layout(conn, use_timescale)
                        if current == 0
                        else PostgresStore._stored_layout(conn)
                    )
                for stmt in statements:
                    conn.execute(_physical(stmt, layout))
                for stmt in _LAYOUT_AFTER.get(version, []):
                    conn.execute(stmt)
                if version == 1:
                    conn.execute("INSERT INTO tradelog_meta VALUES ('layout', %s)", [layout])
                    if layout == "timescaledb":
                        conn.execute(
                            "SELECT create_hypertable('events', 'ts', "
                            "chunk_time_interval => %s::BIGINT)",
                            [DAY_NS],
                        )
                        for stmt in _TIMESCALE_SETUP:
                            conn.execute(stmt)
                    else:
                        conn.execute(
                            "CREATE TABLE IF NOT EXISTS events_default PARTITION OF events DEFAULT"
                        )
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                    [version, description, time.time_ns()],
                )
                current = version
            return current

    @staticmethod
    def _choose_layout(conn: psycopg.Connection[Any], use_timescale: bool | None) -> Layout:
        if use_timescale is False:
            return "partitioned"
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        if available is None:
            if use_timescale:
                raise RuntimeError("timescaledb was asked for but is not installed")
            return "partitioned"
        try:
            with conn.transaction():  # a savepoint: a failure leaves the migration going
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        except psycopg.Error as exc:
            if use_timescale:
                raise
            log.warning("timescaledb is installed but cannot be created (%s); using native "
                        "partitioning", exc)  # fmt: skip
            return "partitioned"
        return "timescaledb"

    @staticmethod
    def _stored_layout(conn: psycopg.Connection[Any]) -> Layout:
        row = conn.execute("SELECT value FROM tradelog_meta WHERE key = 'layout'").fetchone()
        return "timescaledb" if row and row[0] == "timescaledb" else "partitioned"

    def schema_version(self) -> int:
        with self._reads.connection() as conn:
            row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def table_columns(self, table: str) -> list[str]:
        with self._reads.connection() as conn:
            rows = conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s "
                "ORDER BY ordinal_position",
                [table],
            ).fetchall()
        return [r[0] for r in rows]

    @staticmethod
    def _prepare_staging(conn: psycopg.Connection[Any]) -> None:
        """Session-private staging tables (unlogged by nature, emptied at each commit)."""
        for stage, table in (
            ("_tl_events", "events"),
            ("_tl_rejects", "rejects"),
            ("_tl_marks", "anomalies"),
            ("_tl_orders", "orders"),
        ):
            conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table}) ON COMMIT DELETE ROWS"
            )

    # ------------------------------------------------------------------ partitions
    def _existing_partitions(self, conn: psycopg.Connection[Any]) -> set[int]:
        if self.layout != "partitioned":
            return set()
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'events'::regclass"
        ).fetchall()
        return {d for (name,) in rows if (d := _name_day(name)) is not None}

    def partitions(self) -> list[str]:
        """Names of the day partitions of ``events`` (native layout), oldest first."""
        with self._reads.connection() as conn:
            return sorted(_day_name(d) for d in self._existing_partitions(conn))

    def _ensure_partitions(self, conn: psycopg.Connection[Any], days: Sequence[int]) -> None:
        """Creates missing day partitions (before the rows arrive, so they never land in
        the default partition); rows of that day already in the default one move over."""
        missing = [d for d in days if d not in self._partitions and _FIRST_DAY <= d <= _LAST_DAY]
        if not missing or self.layout != "partitioned":
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK])
            existing = self._existing_partitions(conn)
            for day in missing:
                if day in existing:
                    continue
                lo, hi = day * DAY_NS, (day + 1) * DAY_NS
                name = pgsql.Identifier(_day_name(day))
                stray = conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM events_default WHERE ts >= %s AND ts < %s)",
                    [lo, hi],
                ).fetchone()
                if stray and stray[0]:
                    conn.execute(
                        "CREATE TEMP TABLE _tl_move ON COMMIT DROP AS "
                        "SELECT * FROM events_default WHERE ts >= %s AND ts < %s",
                        [lo, hi],
                    )
                    conn.execute("DELETE FROM events_default WHERE ts >= %s AND ts < %s", [lo, hi])
                conn.execute(
                    pgsql.SQL(
                        "CREATE TABLE {} PARTITION OF events FOR VALUES FROM ({}) TO ({})"
                    ).format(name, pgsql.Literal(lo), pgsql.Literal(hi))
                )
                if stray and stray[0]:
                    conn.execute("INSERT INTO events SELECT * FROM _tl_move")
                    conn.execute("DROP TABLE _tl_move")
                existing.add(day)
        self._partitions = existing

    def drop_partitions_before(self, cutoff_ns: int) -> list[str]:
        """Drops the day partitions (chunks) wholly older than ``cutoff_ns`` and deletes
        older stray rows from the default partition; returns what was dropped."""
        dropped: list[str] = []
        with self._lock:
            conn = self._writer()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK])
                if self.layout == "timescaledb":
                    rows = conn.execute(
                        "SELECT drop_chunks('events', older_than => %s::BIGINT)", [cutoff_ns]
                    ).fetchall()
                    return [str(r[0]) for r in rows]
                for day in sorted(self._existing_partitions(conn)):
                    if (day + 1) * DAY_NS <= cutoff_ns:
                        conn.execute(
                            pgsql.SQL("DROP TABLE {}").format(pgsql.Identifier(_day_name(day)))
                        )
                        dropped.append(_day_name(day))
                conn.execute("DELETE FROM events_default WHERE ts < %s", [cutoff_ns])
                self._partitions = self._existing_partitions(conn)
        if dropped:
            log.info("retention: dropped %d day partitions before %d", len(dropped), cutoff_ns)
        return dropped

    def apply_retention(self, now_ns: int | None = None) -> list[str]:
        """Drops what is older than ``retention_days`` before ``now_ns`` (default: now)."""
        if self.retention_days is None:
            return []
        now = time.time_ns() if now_ns is None else now_ns
        return self.drop_partitions_before(now - self.retention_days * DAY_NS)

    def _retention_loop(self) -> None:
        while not self._stop.wait(86_400):
            try:
                self.apply_retention()
            except Exception:
                log.exception("retention run failed; retrying tomorrow")

    # ------------------------------------------------------------------ writes
    def prepare(self, batch: CommitBatch) -> None:
        """Nothing to prepare: the COPY rows are encoded by psycopg inside ``commit``."""

    def commit(self, batch: CommitBatch) -> None:
        now = time.time_ns()
        with self._lock:
            conn = self._writer()
            try:
                if batch.events:
                    ts = np.fromiter((e.ts for e in batch.events), np.int64, len(batch.events))
                    self._ensure_partitions(conn, np.unique(ts // DAY_NS).tolist())
                direct = self._staged_commits_left == 0
                try:
                    with conn.transaction(), conn.cursor() as cur:
                        self._write(cur, batch, now, direct)
                except psycopg.errors.UniqueViolation:
                    if not direct:
                        raise
                    # a redelivered event or reject (or two copies in this batch): rolled
                    # back whole; again through staging, which drops and counts them
                    self._staged_commits_left = STAGED_AFTER_DUPLICATE
                    with conn.transaction(), conn.cursor() as cur:
                        self._write(cur, batch, now, direct=False)
                if not direct:
                    self._staged_commits_left = max(0, self._staged_commits_left - 1)
            except psycopg.OperationalError:
                conn.close()  # reopened on the next commit
                raise

    def _write(self, cur: psycopg.Cursor[Any], batch: CommitBatch, now: int, direct: bool) -> None:
        """``direct``: events and rejects are copied straight into their tables, and a
        stored or repeated id fails the transaction (``UniqueViolation``, see ``commit``);
        else through the staging tables, dropping and counting them."""
        dropped_events: list[tuple[str, str, str]] = []
        if batch.events and direct:
            self._copy_events(cur, batch, "events")
        elif batch.events:
            staged = self._copy_events(cur, batch)
            cur.execute(
                "INSERT INTO events SELECT * FROM _tl_events ON CONFLICT (event_id, ts) DO NOTHING"
            )
            if cur.rowcount != staged:
                dropped_events = self._redelivered_events(cur)
        dropped_rejects: list[tuple[str, str, str]] = []
        if batch.rejects:
            rows = [
                (*msgspec.structs.astuple(r), int(h))
                for r, h in zip(batch.rejects, batch.reject_hashes, strict=True)
            ]
            self._copy(cur, "rejects" if direct else "_tl_rejects", REJECT_SCHEMA, rows)
        if batch.rejects and not direct:
            cur.execute(
                "INSERT INTO rejects SELECT * FROM _tl_rejects ON CONFLICT (reject_id) DO NOTHING"
            )
            if cur.rowcount != len(batch.rejects):
                cur.execute(
                    """
                    SELECT s.reject_id, s.source, s.src_ref FROM (
                        SELECT reject_id, source, src_ref,
                               row_number() OVER (PARTITION BY reject_id) AS rn
                        FROM _tl_rejects) s
                    WHERE s.rn > 1 OR EXISTS (
                        SELECT 1 FROM rejects r WHERE r.reject_id = s.reject_id
                        AND r.xmin <> pg_current_xact_id()::xid)
                    """
                )
                dropped_rejects = cur.fetchall()
        if batch.marks:
            rows = [msgspec.structs.astuple(m) for m in batch.marks]
            self._copy(cur, "_tl_marks" if dropped_events else "anomalies", MARK_SCHEMA, rows)
            cols = _columns(MARK_SCHEMA)
            if dropped_events:
                cur.execute(
                    f"INSERT INTO anomalies ({cols}) SELECT {cols} FROM _tl_marks "
                    "WHERE NOT (event_id = ANY(%s))",
                    [sorted({d[0] for d in dropped_events})],
                )
        if batch.orders:
            self._write_orders(cur, batch)
        if batch.round_trips:
            rows = [msgspec.structs.astuple(t) for t in batch.round_trips]
            self._copy(cur, "round_trips", ROUND_TRIP_SCHEMA, rows)
        checkpoints = position_checkpoints.batch_rows(batch.events)
        if checkpoints:
            marks = ", ".join("%s" for _ in position_checkpoints.COLUMNS)
            cur.executemany(position_checkpoints.upsert_sql(f"VALUES ({marks})"), checkpoints)
        self._write_positions(cur, batch, now, dropped_events, dropped_rejects)
        # one pipelined executemany per statement (row order kept; neither statement reads
        # the other's table, so upserting all alerts before their history rows is the same)
        if batch.alerts:
            cur.executemany(
                alert_sql.upsert_alert_sql("%s"),
                [alert_sql.upsert_alert_params(a, now) for a in batch.alerts],
            )
            hist = [
                h for a in batch.alerts if (h := alert_sql.system_history_params(a)) is not None
            ]
            if hist:
                cur.executemany(alert_sql.system_history_sql("%s"), hist)
        if batch.profiles:
            cur.executemany(
                alert_sql.upsert_profile_sql("%s"),
                [alert_sql.upsert_profile_params(r) for r in batch.profiles],
            )
        if batch.snapshot is not None:
            partition, seq, data = batch.snapshot
            cur.execute(
                """
                INSERT INTO state_snapshots VALUES (%s, %s, %s, %s)
                ON CONFLICT ("partition") DO UPDATE SET
                    seq = excluded.seq, saved_ns = excluded.saved_ns, data = excluded.data
                """,
                [partition, seq, now, data],
            )

    @staticmethod
    def _copy_events(
        cur: psycopg.Cursor[Any], batch: CommitBatch, table: str = "_tl_events"
    ) -> int:
        """Binary COPY into ``table`` (staging or ``events``), one COPY per kind with only
        the columns the kind can carry (the others stay NULL, as in the DuckDB store)."""
        groups: dict[EventKind, list[int]] = {}
        for i, ev in enumerate(batch.events):
            groups.setdefault(ev.kind, []).append(i)
        hashes = batch.id_hashes.tolist()
        events = batch.events
        enc = _JSON.encode
        for kind, idx in groups.items():
            cols = _KIND_COLUMNS[kind]
            names = ", ".join(f'"{c}"' for c in (*cols, "attrs", "id_hash"))
            getter = _GETTERS[kind]
            with cur.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([*(_EVENT_TYPES[c] for c in cols), "text", "int8"])
                write = copy.write_row
                for i in idx:
                    ev = events[i]
                    attrs = ev.attrs
                    write((*getter(ev), None if attrs is None else enc(attrs).decode(), hashes[i]))
        return len(events)

    @staticmethod
    def _redelivered_events(cur: psycopg.Cursor[Any]) -> list[tuple[str, str, str]]:
        """(event_id, source, src_ref) of staged events the INSERT dropped: stored by an
        earlier transaction, or a second copy within this batch."""
        cur.execute(
            """
            SELECT s.event_id, s.source, s.src_ref FROM (
                SELECT event_id, ts, source, src_ref,
                       row_number() OVER (PARTITION BY event_id, ts) AS rn
                FROM _tl_events) s
            WHERE s.rn > 1 OR EXISTS (
                SELECT 1 FROM events e WHERE e.event_id = s.event_id AND e.ts = s.ts
                AND e.xmin <> pg_current_xact_id()::xid)
            """
        )
        return cur.fetchall()

    @staticmethod
    def _copy(
        cur: psycopg.Cursor[Any], table: str, schema: pa.Schema, rows: Sequence[tuple[Any, ...]]
    ) -> None:
        names = ", ".join(f'"{f.name}"' for f in schema)
        with cur.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([_pg_type(f.type) for f in schema])
            for row in rows:
                copy.write_row(row)

    def _write_orders(self, cur: psycopg.Cursor[Any], batch: CommitBatch) -> None:
        if batch.order_rewrites:
            cur.execute(
                "DELETE FROM orders WHERE order_id = ANY(%s)", [sorted(batch.order_rewrites)]
            )
        rows = [msgspec.structs.astuple(o) for o in batch.orders]
        if not batch.order_placeholders:
            self._copy(cur, "orders", ORDER_SCHEMA, rows)
            return
        self._copy(cur, "_tl_orders", ORDER_SCHEMA, rows)
        cols = _columns(ORDER_SCHEMA)
        cur.execute(
            f"""
            INSERT INTO orders ({cols}) SELECT {cols} FROM _tl_orders t
            WHERE NOT (t.order_id = ANY(%s))
               OR NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = t.order_id)
            """,
            [sorted(batch.order_placeholders)],
        )

    @staticmethod
    def _write_positions(
        cur: psycopg.Cursor[Any],
        batch: CommitBatch,
        now: int,
        dropped_events: list[tuple[str, str, str]],
        dropped_rejects: list[tuple[str, str, str]],
    ) -> None:
        positions = [msgspec.structs.replace(p) for p in batch.positions]
        by_ref = {(p.source, p.src_ref): p for p in positions}
        for dropped, counter in ((dropped_events, "events"), (dropped_rejects, "rejects")):
            for _, source, src_ref in dropped:
                p = by_ref.get((source, src_ref))
                if p is not None:  # what the store dropped was a duplicate after all
                    setattr(p, counter, getattr(p, counter) - 1)
                    p.duplicates += 1
        if not positions:
            return
        cols = ", ".join(f'"{c}"' for c in (*_POSITION_COLUMNS, "updated_ns"))
        marks = ", ".join("%s" for _ in range(len(_POSITION_COLUMNS) + 1))
        updates = ", ".join(
            [
                *(f'"{c}" = excluded."{c}"' for c in ("src_ref", "offset", "fingerprint", "dev",
                                                       "inode", "updated_ns")),
                *(f'"{c}" = source_positions."{c}" + excluded."{c}"' for c in _COUNTERS),
            ]
        )  # fmt: skip
        cur.executemany(
            f"INSERT INTO source_positions ({cols}) VALUES ({marks}) "
            f'ON CONFLICT ("source", "stream") DO UPDATE SET {updates}',
            [[*(getattr(p, c) for c in _POSITION_COLUMNS), now] for p in positions],
        )

    # ------------------------------------------------------------------ recovery
    def load_positions(self) -> list[StreamPosition]:
        cols = ", ".join(f'"{c}"' for c in _POSITION_COLUMNS)
        with self._reads.connection() as conn:
            rows = conn.execute(f"SELECT {cols} FROM source_positions").fetchall()
        return [StreamPosition(**dict(zip(_POSITION_COLUMNS, r, strict=True))) for r in rows]

    def load_id_hashes(self) -> npt.NDArray[np.int64]:
        """All id hashes by binary COPY, parsed with NumPy (fixed 14-byte tuples)."""
        out = bytearray()
        sql = (
            "COPY (SELECT id_hash FROM events WHERE id_hash IS NOT NULL UNION ALL "
            "SELECT id_hash FROM rejects WHERE id_hash IS NOT NULL) TO STDOUT (FORMAT BINARY)"
        )
        with self._reads.connection() as conn, conn.cursor() as cur, cur.copy(sql) as copy:
            for chunk in copy:
                out += chunk
        body = bytes(out[19:-2])  # 19-byte header, 2-byte trailer
        rows = np.frombuffer(body, dtype=np.dtype([("n", ">i2"), ("len", ">i4"), ("v", ">i8")]))
        return rows["v"].astype(np.int64)

    def stored_event_ids(self, event_ids: list[str], hashes: list[int] | None = None) -> set[str]:
        """Which of these event/reject ids are stored (exact; by the unique indexes)."""
        if not event_ids:
            return set()
        with self._reads.connection() as conn:
            rows = conn.execute(
                "SELECT event_id FROM events WHERE event_id = ANY(%s) "
                "UNION SELECT reject_id FROM rejects WHERE reject_id = ANY(%s)",
                [event_ids, event_ids],
            ).fetchall()
        return {r[0] for r in rows}

    def load_snapshot(self, partition: int) -> tuple[int, bytes] | None:
        with self._reads.connection() as conn:
            row = conn.execute(
                'SELECT seq, data FROM state_snapshots WHERE "partition" = %s', [partition]
            ).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def events_after(self, seq: int, limit: int) -> list[Event]:
        table = self.query(
            f"SELECT {_EVENT_SELECT} FROM events WHERE seq > %s ORDER BY seq LIMIT %s",
            [seq, limit],
        )
        return rows_to_events(table)

    def max_seq(self) -> int:
        with self._reads.connection() as conn:
            row = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ reads
    def latest_ts(self) -> int | None:
        with self._reads.connection() as conn:
            row = conn.execute("SELECT max(ts) FROM events").fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def recent(self, flt: EventFilter, limit: int) -> list[dict[str, Any]]:
        where, params = self.sql.where(flt)
        sql = f"SELECT {_READ_SELECT} FROM events {where} ORDER BY ts DESC, seq DESC LIMIT %s"
        rows: list[dict[str, Any]] = self.query(sql, [*params, limit]).to_pylist()
        return rows

    def order_events(self, order_id: str) -> list[Event]:
        """The order's timeline by any of its ids, in the priority of the DuckDB store
        (root id, then a client id of the chain, then the venue's id); each step is an
        index lookup except the rarer ``orig_order_id``/``venue_order_id`` fallbacks."""
        root: str | None = None
        with self._reads.connection() as conn:
            for cond in (
                "root_order_id = %s",
                "order_id = %s AND order_id IS DISTINCT FROM root_order_id",  # else found above
                "orig_order_id = %s",
                "venue_order_id = %s",
            ):
                row = conn.execute(
                    f"SELECT root_order_id FROM events WHERE {cond} LIMIT 1", [order_id]
                ).fetchone()
                if row is not None:
                    root = row[0]
                    break
        if root is None:
            return []
        table = self.query(
            f"SELECT {_EVENT_SELECT} FROM events WHERE root_order_id = %s ORDER BY seq", [root]
        )
        return rows_to_events(table)

    def order_row(self, order_id: str) -> dict[str, Any] | None:
        found: list[dict[str, Any]] = self.query(
            "SELECT * FROM orders WHERE order_id = %s "
            "OR %s = ANY(string_to_array(aliases, ',')) LIMIT 1",
            [order_id, order_id],
        ).to_pylist()
        return found[0] if found else None

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """Read-only SQL (``%s`` placeholders); results as Arrow."""
        with self._reads.connection() as conn, conn.cursor() as cur:
            cur.execute(sql, params or None)
            desc = cur.description or []
            rows = cur.fetchall() if desc else []
        return pa.Table.from_batches([_to_batch(rows, desc)])

    def query_batches(
        self, sql: str, params: list[Any] | None = None, rows: int = 1 << 20
    ) -> Iterator[pa.RecordBatch]:
        """Read-only SQL through a server-side cursor, ``rows`` rows at a time."""
        with (
            self._reads.connection() as conn,
            conn.transaction(),
            conn.cursor(name="tradelog_batches") as cur,
        ):
            cur.execute(sql, params or None)
            while True:
                chunk = cur.fetchmany(rows)
                if chunk:
                    yield _to_batch(chunk, cur.description or [])
                if len(chunk) < rows:
                    return

    # ------------------------------------------------------------------ alerts
    def alert_transition(
        self, alert_id: str, action: str, actor: str, note: str | None, ts: int
    ) -> dict[str, Any]:
        """A lifecycle action and its history row in one transaction (row locked)."""
        with self._lock:
            conn = self._writer()
            with conn.transaction():
                alert_sql.apply_transition(
                    conn, "%s", alert_id, action, actor, note, ts, lock="FOR UPDATE"
                )
        found = self.alert(alert_id)
        if found is None:
            raise AlertNotFoundError(alert_id)
        return found

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self._reads.close()


def _physical(stmt: str, layout: Layout) -> str:
    """The shared ``CREATE TABLE events`` made range-partitioned by day (native layout)."""
    if layout == "partitioned" and stmt.startswith("CREATE TABLE IF NOT EXISTS events ("):
        return stmt + " PARTITION BY RANGE (ts)"
    return stmt


def _columns(schema: pa.Schema) -> str:
    return ", ".join(f'"{f.name}"' for f in schema)


def _to_batch(rows: Sequence[tuple[Any, ...]], desc: Sequence[Any]) -> pa.RecordBatch:
    """Rows of a result (``desc``: its cursor description) as one Arrow batch."""
    names = [d.name for d in desc]
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    arrays = [
        pa.array(col, type=_arrow_type(d.type_code, col))
        for col, d in zip(columns, desc, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _arrow_type(type_code: int, col: Sequence[Any]) -> pa.DataType | None:
    known = _ARROW_BY_OID.get(type_code)
    if known is not None:
        return known
    return pa.null() if all(v is None for v in col) else None


_EVENT_SELECT: Final = ", ".join(f'"{c}"' for c in EVENT_COLUMNS)
_READ_SELECT: Final = ", ".join(f'"{c}"' for c in _READ_COLUMNS)

_ARROW_BY_OID: Final[dict[int, pa.DataType]] = {
    16: pa.bool_(),
    17: pa.binary(),
    20: pa.int64(),
    21: pa.int64(),
    23: pa.int64(),
    25: pa.string(),
    1043: pa.string(),
    700: pa.float64(),
    701: pa.float64(),
    1700: pa.float64(),
    1016: pa.list_(pa.int64()),
    1021: pa.list_(pa.float64()),
    1022: pa.list_(pa.float64()),
    1231: pa.list_(pa.float64()),
    1009: pa.list_(pa.string()),
}
