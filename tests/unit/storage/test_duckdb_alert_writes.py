"""The DuckDB store writes a batch's alerts, their system history and the account
profiles with one statement per table: the result must be what row-by-row upserts give
(the last version of an alert or profile in a batch wins; status is never touched by
detection; a re-committed batch adds no history)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradelog.model.alerts import Alert, ProfileRow
from tradelog.storage.base import CommitBatch
from tradelog.storage.duckdb_store import DuckDBStore

T = 1_700_000_000 * 10**9


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    s = DuckDBStore(str(tmp_path / "a.duckdb"))
    yield s
    s.close()


def alert(alert_id: str, level: str, change: str, seen: int, occ: int = 1) -> Alert:
    return Alert(
        alert_id=alert_id, type="wash_trade", level=level, risk_score=0.5 + occ / 10,  # type: ignore[arg-type]
        symbol="AAPL", accounts=("A1", "A2"), window_start=T, window_end=T + seen,
        evidence={"event_ids": [f"e{occ}"], "n": occ}, first_seen_ts=T, last_seen_ts=T + seen,
        occurrences=occ, change=change,  # type: ignore[arg-type]
    )  # fmt: skip


def profile(account: str, orders: int) -> ProfileRow:
    return ProfileRow(
        account_id=account, partition=0, updated_ts=T + orders, orders=orders, cancels=1,
        fills=2, cancel_ratio=None, order_to_trade=orders / 2, median_order_size=None,
        profile={"orders": orders},
    )  # fmt: skip


def commit(store: DuckDBStore, alerts: list[Alert], profiles: list[ProfileRow]) -> None:
    store.commit(CommitBatch(events=[], id_hashes=np.empty(0, np.int64), alerts=alerts,
                             profiles=profiles))  # fmt: skip


def rows(store: DuckDBStore, sql: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = store.query(sql).to_pylist()
    return out


def test_last_version_in_a_batch_wins_and_history_has_one_row_per_change(
    store: DuckDBStore,
) -> None:
    commit(
        store,
        [alert("a1", "medium", "new", 5), alert("a1", "medium", "update", 9, occ=2),
         alert("a1", "high", "escalate", 12, occ=3), alert("a2", "low", "new", 7)],
        [profile("A1", 3), profile("A2", 1), profile("A1", 4)],
    )  # fmt: skip
    got = rows(store, "SELECT alert_id, level, occurrences, last_seen_ts, status, evidence "
                      "FROM alerts ORDER BY alert_id")  # fmt: skip
    assert got == [
        {"alert_id": "a1", "level": "high", "occurrences": 3, "last_seen_ts": T + 12,
         "status": "active", "evidence": '{"event_ids":["e3"],"n":3}'},
        {"alert_id": "a2", "level": "low", "occurrences": 1, "last_seen_ts": T + 7,
         "status": "active", "evidence": '{"event_ids":["e1"],"n":1}'},
    ]  # fmt: skip
    hist = rows(store, "SELECT alert_id, ts, actor, action, from_status, to_status, note "
                       "FROM alert_history ORDER BY alert_id, ts")  # fmt: skip
    assert hist == [
        {"alert_id": "a1", "ts": T + 5, "actor": "system", "action": "open",
         "from_status": None, "to_status": "active", "note": "detected: level medium"},
        {"alert_id": "a1", "ts": T + 12, "actor": "system", "action": "escalate",
         "from_status": "active", "to_status": "active", "note": "level raised to high"},
        {"alert_id": "a2", "ts": T + 7, "actor": "system", "action": "open",
         "from_status": None, "to_status": "active", "note": "detected: level low"},
    ]  # fmt: skip
    profs = rows(store, "SELECT account_id, orders, profile FROM account_profiles "
                        "ORDER BY account_id")  # fmt: skip
    assert profs == [
        {"account_id": "A1", "orders": 4, "profile": '{"orders":4}'},
        {"account_id": "A2", "orders": 1, "profile": '{"orders":1}'},
    ]


def test_detection_keeps_a_persons_status_and_a_replayed_batch_adds_no_history(
    store: DuckDBStore,
) -> None:
    first = [alert("a1", "medium", "new", 5)]
    commit(store, first, [])
    store.alert_transition("a1", "acknowledge", "jane", "looking", T + 100)
    commit(store, first, [])  # the same batch again (replay after a crash)
    commit(store, [alert("a1", "medium", "update", 50, occ=2)], [profile("A1", 1)])
    got = rows(store, "SELECT status, occurrences FROM alerts")
    assert got == [{"status": "acknowledged", "occurrences": 2}]
    actions = rows(store, "SELECT actor, action FROM alert_history ORDER BY ts")
    assert actions == [{"actor": "system", "action": "open"},
                       {"actor": "jane", "action": "acknowledge"}]  # fmt: skip
