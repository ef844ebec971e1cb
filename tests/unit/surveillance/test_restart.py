"""Crash and restart with surveillance on: a pipeline that dies after some commits (its
last snapshot older than its last commit) is reopened on the same store — snapshot
restored, the events stored after it replayed through enrich → mark → surveil — and
continues; the stored alerts and profiles equal those of one uninterrupted run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.unit.surveillance.streams import Stream
from tradelog.model.events import Event
from tradelog.model.reference import ReferenceData
from tradelog.pipeline.batch import CleanChunk, StreamInfo
from tradelog.pipeline.runner import Pipeline, PipelineSettings
from tradelog.storage.duckdb_store import DuckDBStore
from tradelog.surveillance.engine import SurveillanceSettings

INFO = StreamInfo("t", "s", "s")


def stream() -> list[Event]:
    s = Stream()
    for i in range(20):
        s.order(i * 0.1, f"w{i}", "S", "buy", 10.0, 99.0)  # floats, as clean makes them
    for k in range(4):
        t = 5.0 + 3.0 * k
        s.order(t, f"big{k}", "S", "sell", 100.0, 101.0)
        s.order(t + 1.0, f"b{k}", "S", "buy", 10.0, 100.0)
        s.fill(t + 1.2, f"b{k}", "S", "buy", 10.0, 100.0, exec_id=f"x{k}", cum_qty=10.0,
               leaves_qty=0.0)  # fmt: skip
        s.cancel(t + 2.0, f"big{k}", "S")
    return s.events


def chunks(events: list[Event], size: int = 3) -> list[CleanChunk]:
    return [CleanChunk(INFO, events[i : i + size], [], 0, i + size)
            for i in range(0, len(events), size)]  # fmt: skip


def pipeline(store: DuckDBStore) -> Pipeline:
    p = Pipeline(store, PipelineSettings(snapshot_interval_s=1e9), ReferenceData(),
                 surveillance=SurveillanceSettings())  # fmt: skip
    p.open()
    return p


def stored(store: DuckDBStore) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    alerts = store.query(
        "SELECT alert_id, type, level, occurrences, window_start, window_end, evidence, status "
        "FROM alerts ORDER BY alert_id"
    ).to_pylist()
    profiles = store.query(
        "SELECT account_id, orders, cancels, fills, profile FROM account_profiles "
        "ORDER BY account_id"
    ).to_pylist()
    return alerts, profiles


def test_restart_after_a_crash_gives_the_alerts_of_one_run(tmp_path: Path) -> None:
    parts = chunks(stream())
    whole = DuckDBStore(str(tmp_path / "whole.duckdb"))
    p = pipeline(whole)
    for c in parts:
        whole.commit(p.process([c]))
    expected = stored(whole)
    assert expected[0] and expected[0][0]["level"] == "critical"
    assert expected[0][0]["occurrences"] == 4

    path = str(tmp_path / "crash.duckdb")
    store = DuckDBStore(path)
    p = pipeline(store)
    assert len(parts) == 12  # 36 events in batches of 3
    cut = 8  # snapshot with batch 2 (6 events); batches 3..8 (the first spoof) without one
    for i, c in enumerate(parts[:cut]):
        store.commit(p.process([c], force_snapshot=(i == 1)))
    store.close()  # crash: the state after batch 8 is lost, only the store remains
    store = DuckDBStore(path)
    assert store.load_snapshot(0) is not None and store.load_snapshot(0)[0] == 6  # type: ignore[index]
    p = pipeline(store)  # restore the snapshot of batch 2, replay batches 3..8
    for c in parts[cut:]:
        store.commit(p.process([c]))
    assert stored(store) == expected
    store.close()
    whole.close()
