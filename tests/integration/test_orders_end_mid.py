"""The end mid an order keeps (``orders.mid_end``, the benchmark of the unfilled part's
opportunity cost) on both stores:

- the pipeline sets it as it goes (``OrderState``); migration 6 computes it from the
  stored events for orders written before the column existed. On 60 s of simulated
  trading (hundreds of orders, cancels after partial fills, quotes of several venues at
  the same times as order events, injected anomalies) both give every order the same
  value: the store is rolled back to version 5 and migrated again;
- an order whose last event has no quote gets none, not an older one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.pg import fresh_database
from tradelog.app import open_store, plan_replay, replay
from tradelog.config import load_config
from tradelog.model.events import Event, EventKind, Side
from tradelog.model.orders import OrderState
from tradelog.sources.simulator import FILES, PATTERNS, Simulator
from tradelog.storage.base import Store
from tradelog.storage.duckdb_store import DuckDBStore
from tradelog.storage.schema import SNAPSHOT_PARTS, migrations

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).parents[2] / "src" / "tradelog" / "samples" / "simulator.toml"
END_COLUMNS = ("mid_end", "mid_end_ts")


@pytest.fixture(scope="module")
def sim_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("sim")
    Simulator(inject=list(PATTERNS)).run(out, duration_s=60, rate=320, seed=5, realtime=False)
    return [str(out / name) for name in FILES.values()]


def replay_sim(url: str, files: list[str]) -> None:
    cfg = load_config(CONFIG, environ={})
    cfg.store.url = url
    store = open_store(url)
    try:
        summary = replay(cfg, plan_replay(cfg, files, None), store)
        assert summary.events > 15_000
    finally:
        store.close()


def end_mids(store: Store) -> list[dict[str, Any]]:
    return store.query(
        "SELECT order_id, ts_done, status, filled_qty, qty, mid_end, mid_end_ts FROM orders "
        "ORDER BY order_id, ts_done"
    ).to_pylist()


def duckdb_rollback(url: str) -> None:
    store = open_store(url)
    assert isinstance(store, DuckDBStore)
    try:
        for col in END_COLUMNS:
            store._con.execute(f"ALTER TABLE orders DROP COLUMN {col}")
        # migration 7 (DuckDB only): the snapshot back in its one-row table
        (snapshots_v1,) = [s for s in migrations("duckdb")[0][2] if "state_snapshots" in s]
        store._con.execute(snapshots_v1)
        for (partition,) in store._con.execute(
            f"SELECT DISTINCT partition FROM {SNAPSHOT_PARTS}"
        ).fetchall():
            seq, data = store.load_snapshot(partition) or (0, b"")
            store._con.execute(
                "INSERT INTO state_snapshots VALUES (?, ?, 0, ?)", [partition, seq, data]
            )
        store._con.execute(f"DROP TABLE {SNAPSHOT_PARTS}")
        store._con.execute("DELETE FROM schema_migrations WHERE version >= 6")
    finally:
        store.close()


def postgres_rollback(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for col in END_COLUMNS:
            conn.execute(f"ALTER TABLE orders DROP COLUMN {col}")
        conn.execute("DELETE FROM schema_migrations WHERE version >= 6")


@pytest.fixture(params=["duckdb", "postgresql"])
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, Callable[[str], None]]]:
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path / 't.duckdb'}", duckdb_rollback
    else:
        with fresh_database() as url:
            yield url, postgres_rollback


def test_migration_gives_stored_orders_the_end_mid_the_pipeline_gives(
    store_url: tuple[str, Callable[[str], None]], sim_files: list[str]
) -> None:
    url, rollback = store_url
    replay_sim(url, sim_files)
    store = open_store(url)
    try:
        live = end_mids(store)
    finally:
        store.close()
    unfilled = [r for r in live if r["qty"] is not None and r["filled_qty"] < r["qty"]]
    assert len(live) > 500 and len(unfilled) > 50
    assert sum(r["mid_end"] is not None for r in unfilled) > 0.9 * len(unfilled)
    assert all(r["mid_end_ts"] <= r["ts_done"] for r in live if r["mid_end"] is not None)
    rollback(url)
    store = open_store(url)  # migrates to the latest version again
    try:
        version = store.query("SELECT max(version) AS v FROM schema_migrations").to_pylist()
        assert version == [{"v": migrations(store.sql.dialect)[-1][0]}]
        assert end_mids(store) == live
    finally:
        store.close()


def order_event(kind: EventKind, ts: int, quote: tuple[int, float, float] | None) -> Event:
    ev = Event(event_id=f"e{ts}", kind=kind, ts=ts, ts_ingest=ts, source="t", order_id="O1",
               symbol="AAA", side=Side.BUY, qty=10.0, price=100.0)  # fmt: skip
    if quote is not None:
        ev.mkt_ts, ev.mkt_bid, ev.mkt_ask = quote
    return ev


def test_the_end_mid_is_the_last_events_quote_or_none() -> None:
    order = OrderState("O1")
    order.apply(order_event(EventKind.ORDER_NEW, 10, (9, 99.0, 101.0)))
    assert (order.mid_end, order.mid_end_ts) == (100.0, 9)
    order.apply(order_event(EventKind.ORDER_ACK, 20, (15, 100.0, 102.0)))
    assert (order.mid_end, order.mid_end_ts) == (101.0, 15)
    # an earlier event (out of order) does not move it; one at the same time with a quote
    # does (the later of two at one time), one without a quote does not
    order.apply(order_event(EventKind.ORDER_CANCEL_REQUEST, 12, (11, 90.0, 92.0)))
    order.apply(order_event(EventKind.ORDER_CANCEL_REQUEST, 20, None))
    assert (order.mid_end, order.mid_end_ts) == (101.0, 15)
    order.apply(order_event(EventKind.ORDER_CANCEL_REQUEST, 20, (18, 101.0, 103.0)))
    assert (order.mid_end, order.mid_end_ts) == (102.0, 18)
    # a later event without a quote: no end mid (the book was gone), not the older one
    order.apply(order_event(EventKind.ORDER_CANCELLED, 30, None))
    assert (order.mid_end, order.mid_end_ts) == (None, None)
