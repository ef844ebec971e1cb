"""The DuckDB store: migrations, schema vs Arrow codec, atomic commits, positions,
snapshots and the dedup look-ups (real DuckDB files)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import numpy as np
import pytest

from tradelog.config import StoreConfig
from tradelog.model.events import (
    AnomalyMark,
    Event,
    EventKind,
    Liquidity,
    OrderStatus,
    Reject,
    RejectReason,
    Severity,
    Side,
)
from tradelog.model.ids import id_hash, id_hashes
from tradelog.model.orders import OrderRecord, OrderState, order_record
from tradelog.pipeline.snapshot_codec import SNAPSHOT_MAGIC, unpack_snapshot
from tradelog.pipeline.state import PartitionState
from tradelog.storage import position_checkpoints
from tradelog.storage.arrow_codec import (
    EVENT_SCHEMA,
    MARK_SCHEMA,
    ORDER_SCHEMA,
    REJECT_SCHEMA,
    ROUND_TRIP_SCHEMA,
)
from tradelog.storage.base import CommitBatch, StreamPosition
from tradelog.storage.duckdb_store import (
    SNAPSHOT_PART_BYTES,
    DuckDBStore,
)
from tradelog.storage.schema import SNAPSHOT_PARTS, create_table, current_columns, migrations

TABLES = (
    "events", "rejects", "anomalies", "orders", "round_trips", "source_positions",
    SNAPSHOT_PARTS,
)  # fmt: skip


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "sub" / "t.duckdb")


@pytest.fixture
def store(db_path: str) -> Iterator[DuckDBStore]:
    st = DuckDBStore(db_path)
    yield st
    st.close()


def ev(event_id: str, seq: int, kind: EventKind = EventKind.SYSTEM, **kw: Any) -> Event:
    fields: dict[str, Any] = {"message": "m"} if kind is EventKind.SYSTEM else {}
    fields.update(kw)
    return Event(
        event_id=event_id,
        kind=kind,
        ts=1_740_994_200_000_000_000 + seq,
        ts_ingest=1_740_994_300_000_000_000,
        source="src",
        src_ref="/logs/a.jsonl",
        src_offset=seq * 100,
        raw=f'{{"n": {seq}}}',
        seq=seq,
        **fields,
    )


def rj(reject_id: str, offset: int = 0) -> Reject:
    return Reject(
        reject_id=reject_id,
        source="src",
        src_ref="/logs/a.jsonl",
        src_offset=offset,
        reason=RejectReason.MALFORMED,
        detail="invalid JSON",
        raw="{oops",
        ts_ingest=5,
    )


def mark(event_id: str) -> AnomalyMark:
    return AnomalyMark(
        event_id=event_id,
        ts=1,
        kind=EventKind.FILL,
        type="slippage",
        severity=Severity.HIGH,
        value=61.5,
        threshold=50.0,
        symbol="AAPL",
    )


def order(order_id: str, status: OrderStatus = OrderStatus.FILLED) -> OrderRecord:
    state = OrderState(order_id)
    state.status = status
    state.symbol, state.side, state.qty, state.price = "AAPL", Side.BUY, 10.0, 100.0
    state.ts_new, state.ts_last = 1, 9
    state.filled_qty, state.notional, state.n_fills = 10.0, 1000.0, 1
    return order_record(state)


def pos(offset: int, lines: int, events: int, rejects: int = 0, dups: int = 0, ignored: int = 0,
        stream: str = "fp:1", src_ref: str = "/logs/a.jsonl") -> StreamPosition:  # fmt: skip
    return StreamPosition(
        source="src", stream=stream, src_ref=src_ref, offset=offset, fingerprint="fp", dev=1,
        inode=2, lines_read=lines, events=events, rejects=rejects, duplicates=dups,
        ignored=ignored,
    )  # fmt: skip


def batch(
    events: list[Event] = (),  # type: ignore[assignment]
    rejects: list[Reject] = (),  # type: ignore[assignment]
    **kw: Any,
) -> CommitBatch:
    events, rejects = list(events), list(rejects)
    return CommitBatch(
        events=events,
        id_hashes=id_hashes([e.event_id for e in events]),
        rejects=rejects,
        reject_hashes=id_hashes([r.reject_id for r in rejects]),
        **kw,
    )


def dump(store: DuckDBStore) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in a stable order."""
    out = {}
    for table in TABLES:
        rows = store.query(f"SELECT * FROM {table}").to_pylist()
        out[table] = sorted(rows, key=repr)
    return out


# ---- schema ------------------------------------------------------------------------


def test_migrations_are_idempotent(db_path: str) -> None:
    latest = migrations("duckdb")[-1][0]
    first = DuckDBStore(db_path)
    assert first.schema_version() == latest
    first.commit(batch([ev("E1", 1)]))
    first.close()
    second = DuckDBStore(db_path)
    try:
        assert second.schema_version() == latest
        rows = second.query("SELECT version FROM schema_migrations ORDER BY version").to_pylist()
        assert rows == [{"version": v} for v in range(1, latest + 1)]
        # data survives the second open (no table was recreated)
        assert second.stored_event_ids(["E1"]) == {"E1"}
    finally:
        second.close()
    third = DuckDBStore(db_path, read_only=True)
    try:
        assert third.schema_version() == latest
    finally:
        third.close()


def test_read_only_store_needs_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        DuckDBStore(str(tmp_path / "missing.duckdb"), read_only=True)


@pytest.mark.parametrize(
    ("table", "schema"),
    [
        ("events", EVENT_SCHEMA),
        ("rejects", REJECT_SCHEMA),
        ("anomalies", MARK_SCHEMA),
        ("orders", ORDER_SCHEMA),
        ("round_trips", ROUND_TRIP_SCHEMA),
        (position_checkpoints.TABLE, position_checkpoints.SCHEMA),
    ],
)
def test_table_columns_equal_the_arrow_codec(store: DuckDBStore, table: str, schema: Any) -> None:
    """Inserts go BY NAME, so the sets must match (migrations append new columns)."""
    assert store.table_columns(table) == current_columns()[table]
    assert sorted(current_columns()[table]) == sorted(schema.names)


def test_column_types_match_the_arrow_types(store: DuckDBStore) -> None:
    duck = {"int64": "BIGINT", "double": "DOUBLE", "string": "VARCHAR", "bool": "BOOLEAN"}
    for table, schema in (("events", EVENT_SCHEMA), ("orders", ORDER_SCHEMA),
                          ("rejects", REJECT_SCHEMA), ("anomalies", MARK_SCHEMA)):  # fmt: skip
        rows = store.query(f"DESCRIBE {table}").to_pylist()
        types = {r["column_name"]: r["column_type"] for r in rows}
        for field in schema:
            assert types[field.name] == duck[str(field.type)], (table, field.name)


# ---- commits -------------------------------------------------------------------------


def test_events_round_trip(store: DuckDBStore) -> None:
    events = [
        ev("E1", 1, attrs={"desk": "D1", "n": [1, 2]}),
        ev("E2", 2, EventKind.FILL, order_id="O1", exec_id="X1", last_qty=2.0, last_px=100.5,
           liquidity=Liquidity.MAKER, side=Side.SELL, latency_ms=-1.5, context_from_order=True,
           order_status=OrderStatus.PARTIALLY_FILLED, slippage_bps=3.25,
           anomaly_severity=Severity.HIGH, anomaly_types="slippage,overfill"),
        ev("E3", 3, EventKind.QUOTE, symbol="AAPL", bid=100.0, ask=100.5, bid_size=7.0),
    ]  # fmt: skip
    store.commit(batch(events))
    back = store.events_after(0, 10)
    assert [msgspec.structs.asdict(e) for e in back] == [msgspec.structs.asdict(e) for e in events]
    assert [e.event_id for e in store.events_after(1, 10)] == ["E2", "E3"]
    assert [e.event_id for e in store.events_after(0, 2)] == ["E1", "E2"]
    assert store.max_seq() == 3


def test_a_commit_writes_every_part(store: DuckDBStore) -> None:
    store.commit(
        batch(
            [ev("E1", 1)],
            [rj("r-1")],
            marks=[mark("E1")],
            orders=[order("O1")],
            positions=[pos(100, 2, 1, rejects=1)],
            snapshot=(0, 1, b"state"),
        )
    )
    d = dump(store)
    assert [r["event_id"] for r in d["events"]] == ["E1"]
    assert [r["reject_id"] for r in d["rejects"]] == ["r-1"]
    assert [r["type"] for r in d["anomalies"]] == ["slippage"]
    assert [(r["order_id"], r["status"]) for r in d["orders"]] == [("O1", "filled")]
    assert [r["offset"] for r in d["source_positions"]] == [100]
    assert store.load_snapshot(0) == (1, b"state")


_KIND_OF = {"BIGINT": "int", "DOUBLE": "float", "VARCHAR": "text", "BOOLEAN": "bool"}


def _fail_orders_with_a_check(store: DuckDBStore) -> None:
    """Recreates the (empty) orders table, same columns, plus a CHECK that the order id
    BOOM violates: its insert then fails inside the commit's transaction."""
    columns = tuple(
        (r["column_name"], _KIND_OF[r["column_type"]])
        for r in store.query("DESCRIBE orders").to_pylist()
    )
    ddl = create_table("duckdb", "orders", columns)
    ddl = ddl[: ddl.rindex(")")] + ",\n    CHECK (order_id <> 'BOOM')\n)"
    store._con.execute("DROP TABLE orders")
    store._con.execute(ddl)
    assert store.table_columns("orders") == ORDER_SCHEMA.names


def test_a_failing_orders_insert_leaves_nothing_of_the_batch(store: DuckDBStore) -> None:
    _fail_orders_with_a_check(store)
    store.commit(
        batch([ev("E1", 1)], [rj("r-1")], orders=[order("O1")], positions=[pos(10, 2, 1, 1)],
              snapshot=(0, 1, b"one"))
    )  # fmt: skip
    before = dump(store)

    bad = batch(
        [ev("E2", 2), ev("E3", 3)],
        [rj("r-2", 5)],
        marks=[mark("E2")],
        orders=[order("O2"), order("BOOM")],  # the second row violates the CHECK
        positions=[pos(99, 3, 2, 1), pos(7, 1, 1, stream="fp:2")],
        snapshot=(0, 3, b"two"),
    )
    with pytest.raises(Exception, match=r"(?i)constraint"):
        store.commit(bad)

    assert dump(store) == before
    assert store.stored_event_ids(["E2", "E3", "r-2"]) == set()
    assert store.load_snapshot(0) == (1, b"one")
    assert [(p.stream, p.offset, p.lines_read) for p in store.load_positions()] == [("fp:1", 10, 2)]
    assert sorted(store.load_id_hashes().tolist()) == sorted([id_hash("E1"), id_hash("r-1")])
    # the transaction was rolled back, not left open: the next commit works
    store.commit(batch([ev("E2", 2)], orders=[order("O2")], positions=[pos(50, 1, 1)]))
    assert store.stored_event_ids(["E1", "E2"]) == {"E1", "E2"}
    assert [p.lines_read for p in store.load_positions()] == [3]


def test_a_failing_position_write_after_the_inserts_leaves_nothing(store: DuckDBStore) -> None:
    store.commit(batch([ev("E1", 1)], positions=[pos(10, 1, 1)]))
    before = dump(store)
    bad = batch(
        [ev("E2", 2)],
        [rj("r-2")],
        marks=[mark("E2")],
        orders=[order("O2")],
        positions=[pos(20, 1, 1), pos(1 << 70, 1, 0, stream="fp:2")],  # beyond BIGINT
        snapshot=(0, 2, b"x"),
    )
    with pytest.raises(Exception):  # noqa: B017 - whatever DuckDB raises for the overflow
        store.commit(bad)
    assert dump(store) == before
    store.commit(batch([ev("E2", 2)]))
    assert store.max_seq() == 2


def test_positions_accumulate_counters_and_keep_the_latest_offset(store: DuckDBStore) -> None:
    store.commit(batch([ev("E1", 1)], positions=[pos(100, 5, 3, rejects=1, dups=0, ignored=1)]))
    store.commit(batch([], positions=[pos(250, 4, 0, rejects=0, dups=3, ignored=1,
                                          src_ref="/logs/a.jsonl.1")]))  # fmt: skip
    store.commit(batch([], positions=[pos(30, 2, 2, stream="fp:2")]))
    got = {p.stream: p for p in store.load_positions()}
    one = got["fp:1"]
    assert (one.offset, one.src_ref) == (250, "/logs/a.jsonl.1")
    assert (one.lines_read, one.events, one.rejects, one.duplicates, one.ignored) == (
        9, 3, 1, 3, 2,
    )  # fmt: skip
    assert (one.fingerprint, one.dev, one.inode) == ("fp", 1, 2)
    two = got["fp:2"]
    assert (two.offset, two.lines_read, two.events) == (30, 2, 2)
    stats = store.statistics()["sources"]["src"]
    assert stats["lines_read"] == 11
    assert stats["streams"] == 2
    assert stats["reconciled"]


def test_snapshot_round_trip(store: DuckDBStore) -> None:
    assert store.load_snapshot(0) is None
    data = bytes(range(256)) * 3
    store.commit(batch([], snapshot=(0, 17, data)))
    assert store.load_snapshot(0) == (17, data)
    assert store.load_snapshot(1) is None
    store.commit(batch([], snapshot=(1, 5, b"p1")))
    store.commit(batch([], snapshot=(0, 42, b"newer")))
    assert store.load_snapshot(0) == (42, b"newer")
    assert store.load_snapshot(1) == (5, b"p1")


def test_snapshot_survives_reopening(db_path: str) -> None:
    st = DuckDBStore(db_path)
    st.commit(batch([ev("E1", 1)], snapshot=(0, 1, b"\x00\xffsnap")))
    st.close()
    st = DuckDBStore(db_path)
    try:
        assert st.load_snapshot(0) == (1, b"\x00\xffsnap")
    finally:
        st.close()


def test_stored_event_ids_finds_events_and_rejects(store: DuckDBStore) -> None:
    assert store.stored_event_ids([]) == set()
    store.commit(batch([ev("E1", 1), ev("E2", 2)], [rj("r-1"), rj("r-2", 9)]))
    assert store.stored_event_ids(["E1", "r-2", "E9", "r-9"]) == {"E1", "r-2"}
    assert store.stored_event_ids(["E9"]) == set()
    # exact ids only: no prefix or case matches
    assert store.stored_event_ids(["e1", "E", "r-"]) == set()


def test_load_id_hashes_returns_event_and_reject_hashes(store: DuckDBStore) -> None:
    empty = store.load_id_hashes()
    assert empty.dtype == np.int64
    assert len(empty) == 0
    store.commit(batch([ev("E1", 1), ev("E2", 2)], [rj("r-1")]))
    store.commit(batch([ev("E3", 3)], [rj("r-2")]))
    hashes = store.load_id_hashes()
    assert hashes.dtype == np.int64
    assert sorted(hashes.tolist()) == sorted(id_hash(i) for i in ("E1", "E2", "E3", "r-1", "r-2"))


def test_order_rewrites_replace_the_stored_row(store: DuckDBStore) -> None:
    store.commit(batch([], orders=[order("O1", OrderStatus.CANCELLED)]))
    store.commit(batch([], orders=[order("O1", OrderStatus.FILLED)], order_rewrites={"O1"}))
    rows = store.query("SELECT order_id, status FROM orders").to_pylist()
    assert rows == [{"order_id": "O1", "status": "filled"}]


def test_order_placeholders_are_stored_only_if_absent(store: DuckDBStore) -> None:
    store.commit(batch([], orders=[order("O1", OrderStatus.CANCELLED)]))
    store.commit(
        batch(
            [],
            orders=[order("O1", OrderStatus.FILLED), order("O2", OrderStatus.FILLED)],
            order_placeholders={"O1", "O2"},
        )
    )
    rows = store.query("SELECT order_id, status FROM orders ORDER BY order_id").to_pylist()
    assert rows == [
        {"order_id": "O1", "status": "cancelled"},
        {"order_id": "O2", "status": "filled"},
    ]


def test_events_are_stored_in_batch_order_across_kinds(store: DuckDBStore) -> None:
    """Kinds interleaved in a batch are converted per kind but stored in the batch's order
    (seq order), which quality's streaming out-of-order and gap counts rely on."""
    kinds = [EventKind.SYSTEM, EventKind.QUOTE, EventKind.SYSTEM, EventKind.FILL,
             EventKind.QUOTE, EventKind.SYSTEM, EventKind.FILL]  # fmt: skip
    extra: dict[EventKind, dict[str, Any]] = {
        EventKind.SYSTEM: {},
        EventKind.QUOTE: {"symbol": "AAPL", "bid": 1.0, "ask": 2.0},
        EventKind.FILL: {"order_id": "O1", "last_qty": 1.0, "last_px": 1.5},
    }
    events = [ev(f"E{i}", i + 1, k, **extra[k]) for i, k in enumerate(kinds)]
    store.commit(batch(events))
    stored = store.query("SELECT event_id, seq, id_hash FROM events ORDER BY rowid").to_pylist()
    assert [r["seq"] for r in stored] == list(range(1, len(kinds) + 1))
    assert [r["id_hash"] for r in stored] == [id_hash(e.event_id) for e in events]


@pytest.mark.parametrize("limit", [StoreConfig().memory_limit, StoreConfig().replay_memory_limit])
def test_a_large_state_snapshot_is_written_and_replaced_within_the_default_limits(
    tmp_path: Path, limit: str | None
) -> None:
    """A snapshot is stored in rows of at most 1 MiB: one 64 MB BLOB took over 640 MB to
    write. A 1 M-event replay makes ~43 MB of msgpack, ~14 MB stored; 64 MB that do not
    compress stand for a state many times larger, written twice at replay's 256 MB."""
    s = DuckDBStore(str(tmp_path / "big.duckdb"), memory_limit=limit)
    rng = np.random.default_rng(7)
    try:
        for seq in (1, 2):
            data = rng.bytes(64 << 20)
            s.commit(batch(snapshot=(0, seq, data)))
            got = s.load_snapshot(0)
            assert got is not None and got[0] == seq and got[1] == data
            parts = s.query(f"SELECT count(*) AS n FROM {SNAPSHOT_PARTS}")["n"][0].as_py()
            assert parts == -(-len(data) // SNAPSHOT_PART_BYTES)  # ceil
            assert limit is not None
            current = s.query("SELECT current_setting('memory_limit') AS m")["m"][0].as_py()
            assert current == _printed_limit(limit)
    finally:
        s.close()


def _printed_limit(limit: str) -> str:
    """How DuckDB prints a memory limit it was given (e.g. 256MB → 244.1 MiB)."""
    con = duckdb.connect()
    con.execute("SET memory_limit = ?", [limit])
    row = con.execute("SELECT current_setting('memory_limit')").fetchone()
    con.close()
    return str(row[0]) if row else ""


def test_snapshots_are_stored_compressed_and_read_back_exactly(store: DuckDBStore) -> None:
    """The state writes its snapshot compressed (``pipeline/snapshot_codec.py``); the store
    keeps the bytes as they are, in parts."""
    state = PartitionState(0, max_terminal_orders=10)
    for i in range(2_000):
        order = OrderState(f"O{i:06d}")
        order.symbol, order.qty, order.filled_qty = "AAPL", 100.0 + i, 50.0
        state.orders[order.order_id] = order
    state.seq = 2_000
    data = state.snapshot()
    store.commit(batch([ev("E1", 1)], snapshot=(0, 2_000, data)))
    rows = store.query(f"SELECT data FROM {SNAPSHOT_PARTS} ORDER BY part").column("data")
    blob = b"".join(r.as_py() for r in rows)
    assert blob.startswith(SNAPSHOT_MAGIC)
    assert blob == data
    assert len(data) < len(unpack_snapshot(data)) / 4  # 2,000 similar orders compress well
    assert store.load_snapshot(0) == (2_000, data)
    restored = PartitionState(0)
    restored.restore(store.load_snapshot(0)[1])  # type: ignore[index]
    assert restored.orders.keys() == state.orders.keys()
    assert restored.orders["O001999"].qty == 2_099.0


def test_a_plain_snapshot_of_an_older_store_still_loads(store: DuckDBStore) -> None:
    """Stores written before snapshots were compressed hold the msgpack as is."""
    state = PartitionState(3)
    state.orders["O1"] = OrderState("O1")
    state.seq = 42
    plain = unpack_snapshot(state.snapshot())
    assert not plain.startswith(SNAPSHOT_MAGIC)
    store._con.execute(f"INSERT INTO {SNAPSHOT_PARTS} VALUES (3, 0, 42, 0, ?)", [plain])
    got = store.load_snapshot(3)
    assert got == (42, plain)
    restored = PartitionState(3)
    restored.restore(got[1])
    assert list(restored.orders) == ["O1"] and restored.seq == 42


def test_a_prepared_batch_stores_exactly_what_an_unprepared_one_does(tmp_path: Path) -> None:
    """``prepare`` only moves the Arrow conversion to the caller's thread."""

    def parts() -> CommitBatch:
        return batch(
            [ev("E1", 1), ev("E2", 2, EventKind.QUOTE, symbol="AAPL", bid=1.0, ask=2.0)],
            [rj("r-1")],
            marks=[mark("E1")],
            orders=[order("O1")],
            positions=[pos(100, 3, 2, rejects=1)],
            snapshot=(0, 2, b"state"),
        )

    plain, prepared = (
        DuckDBStore(str(tmp_path / "a.duckdb")),
        DuckDBStore(str(tmp_path / "b.duckdb")),
    )
    try:
        plain.commit(parts())
        second = parts()
        prepared.prepare(second)
        assert second.prepared is not None
        prepared.commit(second)
        a, b = dump(plain), dump(prepared)
        for rows in (*a.values(), *b.values()):
            for row in rows:
                row.pop("updated_ns", None)
                row.pop("saved_ns", None)
        assert a == b
        assert len(b["events"]) == 2 and len(b["rejects"]) == 1 and len(b["orders"]) == 1
    finally:
        plain.close()
        prepared.close()


def test_a_snapshot_of_a_version_6_store_moves_to_parts(tmp_path: Path) -> None:
    """Migration 7 moves the one-row snapshot of older stores into the parts table."""
    path = str(tmp_path / "v6.duckdb")
    con = duckdb.connect(path)
    con.execute(
        "CREATE TABLE schema_migrations "
        "(version BIGINT PRIMARY KEY, description VARCHAR, applied_ns BIGINT)"
    )
    for version, description, statements in migrations("duckdb")[:6]:
        for stmt in statements:
            con.execute(stmt)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", [version, description])
    data = b"TLZ1 or anything: the store keeps the bytes" * 1000
    con.execute("INSERT INTO state_snapshots VALUES (2, 77, 5, ?)", [data])
    con.close()
    s = DuckDBStore(path)
    try:
        assert s.schema_version() == migrations("duckdb")[-1][0]
        assert s.load_snapshot(2) == (77, data)
        assert s.load_snapshot(0) is None
        tables = s.query("SELECT table_name FROM information_schema.tables")["table_name"]
        assert "state_snapshots" not in tables.to_pylist()
    finally:
        s.close()
