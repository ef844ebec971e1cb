"""Hourly position checkpoints (real DuckDB files):

- written batch by batch, they equal a rebuild from the stored fills;
- the state before any time read from them equals the state read from every fill (the
  query they replace), for fills committed out of time order, batches that split an
  hour, late fills into hours already checkpointed, fills on hour boundaries, keys with
  null parts and a flat position (null average cost);
- the migration that creates the table fills it from the fills already stored;
- a read-only store older than the code is refused with the way out.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradelog.model.events import Event, EventKind, Side
from tradelog.model.ids import id_hashes
from tradelog.storage import position_checkpoints as cp
from tradelog.storage.base import CommitBatch, EventFilter, Store
from tradelog.storage.duckdb_store import DuckDBStore, StoreOutdatedError
from tradelog.storage.queries import pnl
from tradelog.storage.schema import SNAPSHOT_PARTS, migrations

NS = 1_000_000_000
H = cp.HOUR_NS
T0 = 1_705_276_800 * NS  # an hour boundary
KEYS: tuple[tuple[str | None, str | None, str | None], ...] = (
    ("S1", "A1", "AAA"), ("S1", "A2", "AAA"), ("S2", "A1", "BBB"), (None, "A1", "AAA"),
    ("S1", None, None), ("1:x", ";", "AAA"),
)  # fmt: skip


def fill(n: int, seq: int, ts: int, key: int, pos: float) -> Event:
    strategy, account, symbol = KEYS[key]
    return Event(
        event_id=f"f{n}", kind=EventKind.FILL, ts=ts, ts_ingest=ts, source="t", seq=seq,
        strategy_id=strategy, account_id=account, symbol=symbol, side=Side.BUY,
        last_qty=1.0, last_px=100.0 + n, pos_after=pos,
        avg_cost_after=None if pos == 0 else 100.0 + seq, realized_after=0.5 * seq,
        fees_after=0.01 * seq,
    )  # fmt: skip


def commit(store: Store, fills: Sequence[Event], cuts: Sequence[int]) -> None:
    """``fills`` in seq order, committed in batches ending at each cut."""
    bounds = sorted({0, *(c for c in cuts if 0 < c < len(fills)), len(fills)})
    for lo, hi in itertools.pairwise(bounds):
        part = list(fills[lo:hi])
        store.commit(CommitBatch(events=part, id_hashes=id_hashes([e.event_id for e in part])))


def reference_state(store: Store, before: int | None) -> list[dict[str, Any]]:
    """The state after each key's last fill with ``ts < before``, from every fill."""
    s = store.sql
    cond = f" AND ts < {s.p}" if before is not None else ""
    state = ", ".join(f"{s.arg_max_row(c, 'seq')} AS {c}" for c in cp.STATE)
    sql = f"""
        SELECT strategy_id, account_id, symbol, max(seq) AS seq, max(ts) AS ts, {state}
        FROM events WHERE kind = 'fill' AND pos_after IS NOT NULL{cond}
        GROUP BY strategy_id, account_id, symbol
    """
    rows = store.query(sql, [before] if before is not None else []).to_pylist()
    return sorted(rows, key=repr)


def checkpoint_state(store: Store, before: int | None, **flt: str) -> list[dict[str, Any]]:
    sql, params = cp.state_before_sql(store.sql, EventFilter(**flt), before)
    return sorted(store.query(sql, params).to_pylist(), key=repr)


def table_rows(store: Store) -> list[dict[str, Any]]:
    return sorted(store.query(f"SELECT * FROM {cp.TABLE}").to_pylist(), key=repr)


def rebuilt_rows(store: Store, run: Any) -> list[dict[str, Any]]:
    for stmt in cp.rebuild_statements(store.sql):
        run(stmt)
    return table_rows(store)


def cutoffs(fills: Sequence[Event]) -> list[int | None]:
    times = {e.ts for e in fills} | {e.ts + 1 for e in fills}
    hours = {cp.hour_of(e.ts) + k * H for e in fills for k in (0, 1)}
    return [None, T0 - H, *sorted(times | hours)]


def check_store(store: DuckDBStore, fills: Sequence[Event]) -> None:
    for before in cutoffs(fills):
        assert checkpoint_state(store, before) == reference_state(store, before), before
    written = table_rows(store)
    assert written == rebuilt_rows(store, store._con.execute)


FILL_SPECS = st.lists(
    st.tuples(
        st.integers(-2, 5 * 3600),  # seconds from T0 (a few in the hour before)
        st.sampled_from([0, 1, 2, 3, 4, 5]),
        st.sampled_from([0.0, 1.0, -2.0, 3.0]),
        st.booleans(),  # on an exact hour boundary
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=FILL_SPECS, cuts=st.lists(st.integers(0, 40), max_size=6))
def test_checkpoints_give_the_state_of_every_fill(
    specs: list[tuple[int, int, float, bool]], cuts: list[int]
) -> None:
    fills = [
        fill(n, n + 1, T0 + (cp.hour_of(s * NS) if edge else s * NS), key, pos)
        for n, (s, key, pos, edge) in enumerate(specs)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        store = DuckDBStore(str(Path(tmp) / "t.duckdb"))
        try:
            commit(store, fills, cuts)
            check_store(store, fills)
        finally:
            store.close()


def test_late_fill_into_a_checkpointed_hour_wins_only_by_seq(tmp_path: Path) -> None:
    """Hour 0 is checkpointed by fill 1; a later batch brings fill 3 with an earlier time
    in hour 0 (a higher seq: it is the newer state) and fill 2 is in hour 1."""
    store = DuckDBStore(str(tmp_path / "t.duckdb"))
    try:
        fills = [fill(1, 1, T0 + 50 * NS, 0, 1.0), fill(2, 2, T0 + H + 5 * NS, 0, 2.0),
                 fill(3, 3, T0 + 10 * NS, 0, 3.0)]  # fmt: skip
        commit(store, fills, [1, 2])
        rows = table_rows(store)
        assert [(r["hour"], r["seq"], r["ts"], r["pos_after"]) for r in rows] == [
            (T0, 3, T0 + 50 * NS, 3.0), (T0 + H, 2, T0 + H + 5 * NS, 2.0)
        ]  # fmt: skip
        # before hour 1: fill 3 (highest seq with ts < T0 + H), latest fill time fill 1's
        [state] = checkpoint_state(store, T0 + H)
        assert (state["seq"], state["ts"], state["pos_after"]) == (3, T0 + 50 * NS, 3.0)
        check_store(store, fills)
    finally:
        store.close()


def test_filters_apply_to_checkpoints_and_fills(tmp_path: Path) -> None:
    store = DuckDBStore(str(tmp_path / "t.duckdb"))
    try:
        fills = [fill(n, n + 1, T0 + n * 900 * NS, n % 3, float(n) if n != 9 else 0.0)
                 for n in range(12)]  # fmt: skip
        commit(store, fills, [4, 8])
        got = checkpoint_state(store, T0 + 7 * 900 * NS + 1, symbol="AAA", account="A1")
        want = [r for r in reference_state(store, T0 + 7 * 900 * NS + 1)
                if r["symbol"] == "AAA" and r["account_id"] == "A1"]  # fmt: skip
        assert got == want and len(got) == 1
        rows = pnl.positions_at(store, EventFilter(strategy="S1"), T0 + 3 * 900 * NS + 1)
        assert [(r["account_id"], r["position"], r["avg_cost"]) for r in rows] == [
            ("A1", 3.0, 104.0), ("A2", 1.0, 102.0)
        ]  # fmt: skip
        # flat after fill 9: no average cost (the state at its last fill), not fill 6's
        rows = pnl.positions_at(store, EventFilter(strategy="S1"), T0 + 9 * 900 * NS + 1)
        assert [(r["account_id"], r["position"], r["avg_cost"]) for r in rows] == [
            ("A1", 0.0, None), ("A2", 7.0, 108.0)
        ]  # fmt: skip
    finally:
        store.close()


def test_migration_fills_the_table_from_stored_fills(tmp_path: Path) -> None:
    path = str(tmp_path / "t.duckdb")
    fills = [fill(n, n + 1, T0 + n * 1000 * NS, n % 4, float(n % 3)) for n in range(20)]
    store = DuckDBStore(path)
    try:
        commit(store, fills, [7, 13])
        written = table_rows(store)
        store._con.execute(f"DROP TABLE {cp.TABLE}")
        for col in ("mid_end", "mid_end_ts"):  # migration 6
            store._con.execute(f"ALTER TABLE orders DROP COLUMN {col}")
        store._con.execute(f"DROP TABLE {SNAPSHOT_PARTS}")  # migration 7
        (snapshots_v1,) = [s for s in migrations("duckdb")[0][2] if "state_snapshots" in s]
        store._con.execute(snapshots_v1)
        store._con.execute("DELETE FROM schema_migrations WHERE version >= 5")
    finally:
        store.close()
    latest = migrations("duckdb")[-1][0]
    with pytest.raises(
        StoreOutdatedError, match=rf"schema version 4.*needs {latest}.*open it once"
    ):
        DuckDBStore(path, read_only=True)
    store = DuckDBStore(path)  # migrates
    try:
        assert store.schema_version() == latest
        assert table_rows(store) == written
    finally:
        store.close()


def test_key_text_is_unambiguous() -> None:
    assert cp.key_of("a;b", "c", None) != cp.key_of("a", "b;c", None)
    assert cp.key_of(None, "x", "y") != cp.key_of("-", "x", "y")
    assert cp.key_of("", None, "1:") == "0:;-;2:1:"
    assert cp.hour_of(-1) == -H and cp.hour_of(0) == 0 and cp.hour_of(H - 1) == 0
