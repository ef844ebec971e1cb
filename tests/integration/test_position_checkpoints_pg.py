"""Hourly position checkpoints on the real PostgreSQL (127.0.0.1:5432): written batch by
batch (a redelivered batch included) they equal a rebuild from the stored fills, and the
state before any time from them equals the state from every fill."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.integration.pg import fresh_database
from tests.unit.storage.test_position_checkpoints import (
    NS,
    T0,
    checkpoint_state,
    commit,
    cutoffs,
    fill,
    rebuilt_rows,
    reference_state,
    table_rows,
)
from tradelog.storage.postgres_store import PostgresStore


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_database() as u:
        yield u


def test_checkpoints_on_postgresql(url: str) -> None:
    fills = [
        fill(n, n + 1, T0 + ((n * 7919) % 20_000) * NS - 3 * NS, n % 6, float(n % 4) - 1)
        for n in range(60)
    ]
    store = PostgresStore(url)
    try:
        commit(store, fills, [10, 25, 26, 40])
        commit(store, fills[25:40], [])  # redelivered: dropped by the store, state the same
        for before in cutoffs(fills):
            assert checkpoint_state(store, before) == reference_state(store, before), before
        narrowed = checkpoint_state(store, T0 + 3600 * NS, symbol="AAA", account="A1")
        assert narrowed and all(r["symbol"] == "AAA" for r in narrowed)
        written = table_rows(store)
        with psycopg.connect(url, autocommit=True) as conn:
            assert rebuilt_rows(store, conn.execute) == written
    finally:
        store.close()
