"""PostgreSQL store specifics on the real server, each test in its own fresh database:
migrations (twice, concurrently), store-side dedup of a redelivered batch, a process that
dies between COPY and COMMIT, day partitions and retention, and restart recovery through
the real pipeline (the store of a crashed-and-restarted run equals an uninterrupted one)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pytest

from tests.integration.pg import fresh_database
from tests.integration.test_store_parity import same
from tests.unit.pipeline import test_recovery as rec
from tradelog.model.events import (
    AnomalyMark,
    Event,
    EventKind,
    Reject,
    RejectReason,
    Severity,
    Side,
)
from tradelog.model.ids import id_hash
from tradelog.pipeline.runner import Pipeline, PipelineSettings
from tradelog.storage import position_checkpoints
from tradelog.storage.base import CommitBatch, StreamPosition
from tradelog.storage.duckdb_store import DuckDBStore
from tradelog.storage.postgres_store import (
    DAY_NS,
    EVENT_COLUMNS,
    STAGED_AFTER_DUPLICATE,
    PostgresStore,
)
from tradelog.storage.schema import current_columns, migrations

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DAY0 = 19_737  # 2024-01-15 as days since the epoch


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_database() as u:
        yield u


def quote(i: int, day: int = DAY0) -> Event:
    return Event(event_id=f"q{day}-{i}", kind=EventKind.QUOTE, ts=day * DAY_NS + i * 10**9,
                 ts_ingest=day * DAY_NS + i * 10**9 + 5, source="s", src_ref="f.log",
                 src_offset=i * 10, raw=f"line {i}", symbol="AAPL", venue="XNAS",
                 bid=100.0 + i, ask=100.5 + i, seq=i + 1 + day * 1000)  # fmt: skip


def batch_of(events: list[Event], lines: int | None = None) -> CommitBatch:
    n = len(events)
    return CommitBatch(
        events=events,
        id_hashes=np.array([id_hash(e.event_id) for e in events], dtype=np.int64),
        marks=[AnomalyMark(event_id=e.event_id, ts=e.ts, kind=e.kind, type="wide_spread",
                           severity=Severity.LOW, value=0.5, threshold=0.1) for e in events[:2]],
        positions=[StreamPosition(source="s", stream="fp:f", src_ref="f.log", offset=n * 10,
                                  lines_read=n if lines is None else lines, events=n)],
        snapshot=(0, n, b"state"),
    )  # fmt: skip


def count(store: PostgresStore, table: str) -> int:
    return int(store.query(f"SELECT count(*) AS n FROM {table}").to_pylist()[0]["n"])


# ---- migrations ---------------------------------------------------------------------------


def test_migrations_create_the_schema_and_a_second_run_changes_nothing(url: str) -> None:
    latest = migrations("postgresql")[-1][0]
    store = PostgresStore(url)
    try:
        assert store.schema_version() == latest
        assert store.layout == "partitioned"  # timescaledb is not installed on this server
        for table, cols in current_columns().items():
            assert store.table_columns(table) == cols, table
        assert sorted(store.table_columns("events")) == sorted(EVENT_COLUMNS)
    finally:
        store.close()
    again = PostgresStore(url)
    try:
        assert again.schema_version() == latest
        rows = again.query("SELECT version FROM schema_migrations ORDER BY version").to_pylist()
        assert [r["version"] for r in rows] == [v for v, _, _ in migrations("postgresql")]
        with psycopg.connect(url, autocommit=True) as conn:
            assert PostgresStore.migrate(conn) == latest
    finally:
        again.close()


def test_concurrent_migrations_from_two_connections(url: str) -> None:
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                barrier.wait()
                results.append(PostgresStore.migrate(conn))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    latest = migrations("postgresql")[-1][0]
    assert results == [latest, latest]
    store = PostgresStore(url)
    try:
        assert count(store, "schema_migrations") == len(migrations("postgresql"))
        store.commit(batch_of([quote(i) for i in range(3)]))
        assert count(store, "events") == 3
    finally:
        store.close()


# ---- store-side dedup ----------------------------------------------------------------------


def test_a_redelivered_batch_is_dropped_and_counted_as_duplicates(url: str) -> None:
    store = PostgresStore(url)
    try:
        events = [quote(i) for i in range(5)]
        store.commit(batch_of(events))
        # the same events again (as a worker that took over a partition would resend them),
        # with two new ones
        store.commit(batch_of([quote(i) for i in range(7)]))
        assert count(store, "events") == 7
        assert count(store, "anomalies") == 2  # the redelivered events' marks are not kept
        (pos,) = store.load_positions()
        assert (pos.lines_read, pos.events, pos.duplicates) == (12, 7, 5)
        stats = store.statistics()["sources"]["s"]
        assert stats["reconciled"] is True
        assert store.stored_event_ids([e.event_id for e in events] + ["nope"]) == {
            e.event_id for e in events
        }
        assert sorted(store.load_id_hashes().tolist()) == sorted(
            id_hash(quote(i).event_id) for i in range(7)
        )
        assert store.load_snapshot(0) == (7, b"state")
    finally:
        store.close()


def reject(i: int) -> Reject:
    return Reject(reject_id=f"r{i}", source="s", src_ref="f.log", src_offset=i, raw=f"bad {i}",
                  reason=RejectReason.MALFORMED, detail="not json", ts_ingest=i)  # fmt: skip


def with_rejects(batch: CommitBatch, rejects: list[Reject]) -> CommitBatch:
    batch.rejects = rejects
    batch.reject_hashes = np.array([id_hash(r.reject_id) for r in rejects], dtype=np.int64)
    batch.positions[0].lines_read += len(rejects)
    batch.positions[0].rejects = len(rejects)
    return batch


def stored_rows(store: PostgresStore) -> dict[str, list[dict[str, Any]]]:
    pos_cols = ", ".join(f'"{c}"' for c in (*StreamPosition.__struct_fields__,))
    return {
        "events": store.query("SELECT * FROM events ORDER BY event_id").to_pylist(),
        "rejects": store.query("SELECT * FROM rejects ORDER BY reject_id").to_pylist(),
        "anomalies": store.query("SELECT * FROM anomalies ORDER BY event_id").to_pylist(),
        "positions": store.query(f"SELECT {pos_cols} FROM source_positions").to_pylist(),
    }


def test_direct_copy_stores_what_the_staging_path_stores(url: str, tmp_path: Path) -> None:
    """Batches copied straight into the tables (no stored id met) and the same batches
    forced through staging + ON CONFLICT leave identical rows."""
    results = []
    for forced_staging in (False, True):
        with fresh_database() as other:
            store = PostgresStore(other)
            try:
                for b in range(3):
                    if forced_staging:
                        store._staged_commits_left = 10**6
                    events = [quote(i) for i in range(b * 4, b * 4 + 4)]
                    store.commit(with_rejects(batch_of(events), [reject(b * 2), reject(b * 2 + 1)]))
                assert (store._staged_commits_left > 0) is forced_staging
                results.append(stored_rows(store))
            finally:
                store.close()
    assert results[0] == results[1]
    assert len(results[0]["events"]) == 12 and len(results[0]["rejects"]) == 6


def test_a_stored_or_repeated_id_falls_back_to_staging_for_some_commits(url: str) -> None:
    store = PostgresStore(url)
    try:
        store.commit(with_rejects(batch_of([quote(i) for i in range(3)]), [reject(0)]))
        assert store._staged_commits_left == 0  # straight in
        # q0 twice in one batch, q1 and r0 stored already, q3 and r1 new
        again = [quote(0), quote(0), quote(1), quote(3)]
        store.commit(with_rejects(batch_of(again), [reject(0), reject(1)]))
        assert store._staged_commits_left == STAGED_AFTER_DUPLICATE
        assert count(store, "events") == 4 and count(store, "rejects") == 2
        (pos,) = store.load_positions()
        # 3 + 1 + 4 + 2 lines; the dropped ones (q0 twice, q1, r0) are duplicates
        assert (pos.lines_read, pos.events, pos.rejects, pos.duplicates) == (10, 4, 2, 4)
        assert store.statistics()["sources"]["s"]["reconciled"] is True
        for i in range(STAGED_AFTER_DUPLICATE):
            store.commit(batch_of([quote(100 + i)]))
        assert store._staged_commits_left == 0  # back to direct copies
        store.commit(batch_of([quote(200)]))
        assert count(store, "events") == 4 + STAGED_AFTER_DUPLICATE + 1
    finally:
        store.close()


def test_the_version_4_layout_applies_to_a_version_3_store(url: str) -> None:
    store = PostgresStore(url)
    try:
        store.commit(batch_of([quote(i) for i in range(3)]))
    finally:
        store.close()
    with psycopg.connect(url, autocommit=True) as conn:  # back to how version 3 left it
        conn.execute("DROP INDEX events_order_id_chain")
        conn.execute("CREATE INDEX events_order_id ON events (order_id)")
        conn.execute("ALTER TABLE state_snapshots ALTER COLUMN data SET COMPRESSION pglz")
        conn.execute(f"DROP TABLE {position_checkpoints.TABLE}")
        for col in ("mid_end", "mid_end_ts"):  # version 6
            conn.execute(f"ALTER TABLE orders DROP COLUMN {col}")
        conn.execute("DELETE FROM schema_migrations WHERE version >= 4")
    store = PostgresStore(url)
    try:
        assert store.schema_version() == migrations("postgresql")[-1][0]
        indexes = {
            r["indexname"]: r["indexdef"]
            for r in store.query("SELECT indexname, indexdef FROM pg_indexes").to_pylist()
        }
        assert "events_order_id" not in indexes
        assert "WHERE (order_id IS DISTINCT FROM root_order_id)" in indexes["events_order_id_chain"]
        compression = store.query(
            "SELECT attcompression AS c FROM pg_attribute "
            "WHERE attrelid = 'state_snapshots'::regclass AND attname = 'data'"
        ).to_pylist()[0]["c"]
        assert compression in ("l", "")  # lz4, or the default where lz4 is not built in
        assert count(store, "events") == 3
        store.commit(batch_of([quote(i) for i in range(3, 5)]))
        assert count(store, "events") == 5
        assert store.load_snapshot(0) == (2, b"state")
    finally:
        store.close()


def test_order_timeline_by_a_chain_id_uses_the_partial_index(url: str) -> None:
    def ev(i: int, kind: EventKind, order_id: str, **kw: Any) -> Event:
        return Event(event_id=f"o{i}", kind=kind, ts=DAY0 * DAY_NS + i, ts_ingest=DAY0 * DAY_NS,
                     source="s", src_ref="f.log", src_offset=i, raw="", symbol="AAPL",
                     order_id=order_id, root_order_id="A1", seq=i + 1, **kw)  # fmt: skip

    events = [
        ev(0, EventKind.ORDER_NEW, "A1", qty=10.0, price=1.0, side=Side.BUY),
        ev(1, EventKind.ORDER_REPLACE, "A2", orig_order_id="A1", qty=5.0, price=1.0),
        ev(2, EventKind.ORDER_ACK, "A2", venue_order_id="V9"),
    ]
    store = PostgresStore(url)
    try:
        store.commit(batch_of(events))
        for lookup in ("A1", "A2", "V9"):
            assert [e.event_id for e in store.order_events(lookup)] == ["o0", "o1", "o2"], lookup
        assert store.order_events("nope") == []
        with psycopg.connect(url) as conn:
            conn.execute("SET enable_seqscan = off")
            plan = conn.execute(
                "EXPLAIN SELECT root_order_id FROM events "
                "WHERE order_id = 'A2' AND order_id IS DISTINCT FROM root_order_id LIMIT 1"
            ).fetchall()
        # the partitions' copies of the partial index (the full one is gone, see above)
        assert "Index Cond: (order_id = 'A2'::text)" in " ".join(r[0] for r in plan)
    finally:
        store.close()


CRASH_SCRIPT = """
import os, sys
sys.path.insert(0, {root!r})
from tests.integration.test_postgres_store import batch_of, quote
from tradelog.storage.postgres_store import PostgresStore

class DiesBeforeCommit(PostgresStore):
    @staticmethod
    def _write_positions(cur, batch, now, dropped_events, dropped_rejects):
        cur.execute("SELECT count(*) FROM events")
        assert cur.fetchone()[0] == 4  # COPY and INSERT are done, in the open transaction
        os._exit(9)

store = DiesBeforeCommit({url!r})
store.commit(batch_of([quote(i) for i in range(4)]))
"""


def test_a_process_dying_between_copy_and_commit_leaves_nothing(url: str) -> None:
    script = textwrap.dedent(CRASH_SCRIPT.format(root=str(ROOT), url=url))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, timeout=120,
                          check=False)  # fmt: skip
    assert done.returncode == 9
    store = PostgresStore(url)
    try:
        for table in ("events", "anomalies", "source_positions", "state_snapshots"):
            assert count(store, table) == 0, table
        store.commit(batch_of([quote(i) for i in range(4)]))  # nothing left locked
        assert count(store, "events") == 4
        assert store.load_positions()[0].events == 4
    finally:
        store.close()


# ---- partitions and retention --------------------------------------------------------------


def test_day_partitions_are_created_on_demand_and_retention_drops_old_ones(url: str) -> None:
    store = PostgresStore(url)
    try:
        days = [DAY0, DAY0 + 1, DAY0 + 3]
        store.commit(batch_of([quote(i, d) for d in days for i in range(3)]))
        assert store.partitions() == ["events_20240115", "events_20240116", "events_20240118"]
        default = store.query("SELECT count(*) AS n FROM events_default").to_pylist()[0]["n"]
        assert default == 0
        # rows of a far-off time (no day partition is made for them) land in the default one
        odd = quote(0, day=-5)
        store.commit(batch_of([odd]))
        assert count(store, "events_default") == 1

        # a cutoff inside the second day keeps it (not wholly older)
        dropped = store.drop_partitions_before((DAY0 + 1) * DAY_NS + 3600 * 10**9)
        assert dropped == ["events_20240115"]
        assert store.partitions() == ["events_20240116", "events_20240118"]
        assert count(store, "events") == 6
        assert count(store, "events_default") == 0  # older than the cutoff
    finally:
        store.close()
    # retention on open: everything here is years older than one day
    kept = PostgresStore(url, retention_days=1)
    try:
        assert kept.partitions() == []
        assert count(kept, "events") == 0
        assert kept.apply_retention(now_ns=0) == []
    finally:
        kept.close()


def test_retention_days_must_be_positive(url: str) -> None:
    with pytest.raises(ValueError, match="retention_days"):
        PostgresStore(url, retention_days=0)


# ---- restart recovery through the pipeline -------------------------------------------------


def open_pg(url: str) -> tuple[Pipeline, PostgresStore]:
    store = PostgresStore(url)
    pipeline = Pipeline(store, PipelineSettings(**rec.SETTINGS), reference=rec.REFERENCE)  # type: ignore[arg-type]
    pipeline.open()
    return pipeline, store


def dump(store: PostgresStore | DuckDBStore) -> dict[str, list[dict[str, Any]]]:
    q = store.query
    pos_cols = ", ".join(f'"{c}"' for c in StreamPosition.__struct_fields__)
    return {
        "events": q("SELECT * FROM events ORDER BY seq").to_pylist(),
        "orders": q("SELECT * FROM orders ORDER BY order_id").to_pylist(),
        "anomalies": q("SELECT * FROM anomalies ORDER BY event_id, type").to_pylist(),
        "rejects": q("SELECT * FROM rejects ORDER BY reject_id").to_pylist(),
        "round_trips": q(
            "SELECT * FROM round_trips ORDER BY strategy_id, account_id, symbol, ts_open"
        ).to_pylist(),
        "positions": q(f"SELECT {pos_cols} FROM source_positions ORDER BY stream").to_pylist(),
    }


@pytest.mark.parametrize(("crash_after", "snapshot_at"), [(rec.N_BATCHES // 2, 2), (1, -1)])
def test_restart_on_postgres_continues_exactly_once(
    url: str, tmp_path: Path, crash_after: int, snapshot_at: int
) -> None:
    base = DuckDBStore(str(tmp_path / "base.duckdb"))
    base_pipeline = Pipeline(base, PipelineSettings(**rec.SETTINGS), reference=rec.REFERENCE)  # type: ignore[arg-type]
    base_pipeline.open()
    rec.feed(base_pipeline, base, rec.build_batches())  # type: ignore[arg-type]
    want = dump(base)
    base.close()

    pipeline, store = open_pg(url)
    rec.feed(pipeline, store, rec.build_batches()[:crash_after], snapshot_at=snapshot_at)  # type: ignore[arg-type]
    seq = pipeline.state.seq
    store.close()  # no final snapshot: what a killed process leaves
    pipeline, store = open_pg(url)
    try:
        assert pipeline.state.seq == seq == store.max_seq()
        # everything is fed again from the start: the committed part is all duplicates
        rec.feed(pipeline, store, rec.build_batches())  # type: ignore[arg-type]
        got = dump(store)
        for table in ("events", "orders", "anomalies", "rejects", "round_trips"):
            same(got[table], want[table], table)
        (pos,) = got["positions"]
        (base_pos,) = want["positions"]
        assert (pos["events"], pos["rejects"]) == (base_pos["events"], base_pos["rejects"])
        assert pos["lines_read"] == (
            pos["events"] + pos["rejects"] + pos["duplicates"] + pos["ignored"]
        )
    finally:
        store.close()


# ---- reads --------------------------------------------------------------------------------


def test_query_batches_yield_the_query_rows_in_batches(url: str) -> None:
    """A server-side cursor, ``rows`` at a time: the batches make up the query's table (as
    DuckDB's do), an empty result gives no batch."""
    sql = "SELECT i, i::text AS t, i / 4.0 AS x FROM generate_series(1, 25) AS i ORDER BY i"
    store = PostgresStore(url)
    duck = DuckDBStore(":memory:")
    try:
        batches = list(store.query_batches(sql, None, rows=10))
        assert [b.num_rows for b in batches] == [10, 10, 5]
        assert pa.Table.from_batches(batches).equals(store.query(sql))
        assert [
            b.num_rows for b in duck.query_batches(sql.replace("::text", "::varchar"), None, 10)
        ] == [10, 10, 5]
        assert list(store.query_batches("SELECT 1 AS one WHERE false")) == []
        exact = list(store.query_batches("SELECT i FROM generate_series(1, 20) AS i", rows=10))
        assert [b.num_rows for b in exact] == [10, 10]
    finally:
        store.close()
        duck.close()
