"""The live loop hands each processed batch to its ``processed`` listeners (the live tape
in ``processed`` push mode) before the store commit, and the commit still happens; in
``committed`` mode the tape is a committer listener and sees only committed batches."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradelog.model.events import Event, EventKind
from tradelog.pipeline.batch import CleanChunk, StreamInfo
from tradelog.pipeline.live import LiveRunner, Submission
from tradelog.pipeline.runner import Committer, Pipeline
from tradelog.storage.base import CommitBatch
from tradelog.storage.duckdb_store import DuckDBStore

T = 1_741_012_200 * 10**9


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    s = DuckDBStore(str(tmp_path / "live.duckdb"))
    yield s
    s.close()


def chunk(n: int) -> CleanChunk:
    events = [
        Event(event_id=f"e{i}", kind=EventKind.SYSTEM, ts=T + i, ts_ingest=T, source="t")
        for i in range(n)
    ]
    return CleanChunk(StreamInfo("t", "s", "ref"), events, [], 0, n)


def stored(store: DuckDBStore) -> int:
    return int(store.query("SELECT count(*) AS n FROM events").column("n")[0].as_py())


def wait_for(cond: threading.Event, what: str) -> None:
    assert cond.wait(10), f"timed out waiting for {what}"


def test_processed_listeners_see_a_batch_before_its_commit(store: DuckDBStore) -> None:
    committer = Committer(store)
    runner = LiveRunner(Pipeline(store), committer, [])
    seen: list[CommitBatch] = []
    pushed = threading.Event()
    committed = threading.Event()

    def on_processed(batch: CommitBatch) -> None:
        seen.append(batch)
        pushed.set()

    runner.processed.append(on_processed)
    committer.listeners.append(lambda _b: committed.set())
    thread = threading.Thread(target=runner.run)
    with store._lock:  # the store is busy: the committer cannot commit yet
        thread.start()
        assert runner.submit(Submission([chunk(5)]))
        wait_for(pushed, "the processed listener")
        time.sleep(0.05)
        assert not committed.is_set()
        assert [e.event_id for e in seen[0].events] == [f"e{i}" for i in range(5)]
        assert [e.seq for e in seen[0].events] == [1, 2, 3, 4, 5]
    wait_for(committed, "the commit")
    assert stored(store) == 5
    runner.stop()
    thread.join(10)
    committer.close()


def test_a_failing_processed_listener_does_not_stop_the_pipeline(store: DuckDBStore) -> None:
    committer = Committer(store)
    runner = LiveRunner(Pipeline(store), committer, [])
    committed = threading.Event()

    def broken(_batch: CommitBatch) -> None:
        raise RuntimeError("a slow client went away")

    runner.processed.append(broken)
    committer.listeners.append(lambda _b: committed.set())
    thread = threading.Thread(target=runner.run)
    thread.start()
    assert runner.submit(Submission([chunk(3)]))
    wait_for(committed, "the commit")
    runner.stop()
    thread.join(10)
    committer.close()
    assert stored(store) == 3
