"""JetStream in and out, against the real NATS server at 127.0.0.1:4222.

Each test uses its own stream, subjects and durable (uuid) and deletes its streams at the
end. The source tests run a real pipeline, committer and live loop (in a thread) into a
DuckDB file and check what was stored and what the consumer still holds: every record
exactly once, nothing pending or unacked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import nats
import numpy as np
import pytest
from nats.aio.msg import Msg
from nats.js.api import ConsumerInfo

from tradelog.config import Config, SourceConfig
from tradelog.pipeline.ingest import StreamDecoder
from tradelog.pipeline.live import LiveRunner
from tradelog.pipeline.runner import Committer, Pipeline
from tradelog.sources.nats_jetstream import (
    NatsSink,
    NatsSource,
    ensure_stream,
    nats_stream_info,
)
from tradelog.sources.settings import NatsSinkSettings, NatsSourceSettings
from tradelog.stages.clean import Cleaner
from tradelog.stages.clean_jsonl import FastJsonl
from tradelog.storage.base import CommitBatch
from tradelog.storage.duckdb_store import DuckDBStore

pytestmark = pytest.mark.integration

URL = "nats://127.0.0.1:4222"
SOURCE = "nq"


def line(i: int, tag: str) -> bytes:
    ev = {"ts": f"2025-03-03T14:30:{i % 60:02d}.{i:06d}Z", "kind": "system",
          "message": f"{tag} {i}", "component": "t"}  # fmt: skip
    return json.dumps(ev).encode() + b"\n"


def nats_run(work: Callable[[Any], Any]) -> Any:
    """Runs ``await work(nc)`` on a fresh connection (the test's own client)."""

    async def main() -> Any:
        nc = await nats.connect(URL)
        try:
            return await work(nc)
        finally:
            await nc.close()

    return asyncio.run(main())


def publish(subject: str, payloads: list[bytes]) -> None:
    async def work(nc: Any) -> None:
        js = nc.jetstream()
        for data in payloads:
            await js.publish(subject, data)

    nats_run(work)


def consumer_info(stream: str, durable: str) -> ConsumerInfo:
    async def work(nc: Any) -> ConsumerInfo:
        info: ConsumerInfo = await nc.jetstream().consumer_info(stream, durable)
        return info

    return nats_run(work)


def stream_messages(stream: str) -> int:
    async def work(nc: Any) -> int:
        info = await nc.jetstream().stream_info(stream)
        return int(info.state.messages)

    return nats_run(work)


def ensure_stream_exists(settings: NatsSourceSettings) -> None:
    """Creates the source's stream the way the source would (to publish a backlog first)."""

    async def work(nc: Any) -> None:
        js = nc.jetstream()
        await ensure_stream(
            js, settings.stream, settings.stream_subjects, settings.storage, 0.0, -1
        )

    nats_run(work)


def wait_until(check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")


class Names:
    """Unique stream/subject/durable names of one test; the streams are deleted after."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:10]
        self.stream = f"TLT_{tag}"
        self.subject = f"tlt.{tag}.in"
        self.durable = f"d_{tag}"
        self.sink_stream = f"TLT_SINK_{tag}"
        self.prefix = f"tlt.{tag}.out"

    def source_settings(self, **overrides: Any) -> NatsSourceSettings:
        base: dict[str, Any] = {
            "url": URL,
            "stream": self.stream,
            "subject": self.subject,
            "durable": self.durable,
            "storage": "memory",
            "fetch_batch": 8,
            "fetch_wait_s": 0.2,
            "ack_wait_s": 1.0,
            "drain_timeout_s": 2.0,
        }
        base.update(overrides)
        return NatsSourceSettings(**base)

    def delete(self) -> None:
        async def work(nc: Any) -> None:
            js = nc.jetstream()
            for name in (self.stream, self.sink_stream):
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    await js.delete_stream(name)

        nats_run(work)


@pytest.fixture
def names() -> Iterator[Names]:
    n = Names()
    yield n
    n.delete()


def make_decoder_factory(settings: NatsSourceSettings) -> Callable[[], StreamDecoder]:
    """What the composition root builds for a jsonl ``nats`` source."""
    src = SourceConfig(name=SOURCE, format="jsonl")
    info = nats_stream_info(SOURCE, settings)

    def make() -> StreamDecoder:
        cleaner = Cleaner(src.name, src, Config().normalize)
        return StreamDecoder(info, cleaner, None, FastJsonl(cleaner, src.max_record_bytes))

    return make


class Live:
    """A real store, pipeline, committer and live loop (in a thread)."""

    def __init__(self, path: Path) -> None:
        self.store = DuckDBStore(str(path))
        self.pipeline = Pipeline(self.store)
        self.pipeline.open()
        self.committer = Committer(self.store)
        self.runner = LiveRunner(self.pipeline, self.committer, [])
        self.error: BaseException | None = None
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.runner.run()
        except BaseException as exc:  # a failed store ends the loop; the test checks it
            self.error = exc

    def count(self, sql: str) -> int:
        return int(self.store.query(sql).column(0)[0].as_py())

    def stored(self) -> int:
        return self.count("SELECT count(*) FROM events") + self.count(
            "SELECT count(*) FROM rejects"
        )

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.runner.stop()
        self.thread.join(10)
        with contextlib.suppress(RuntimeError):  # the store failure a test provoked
            self.committer.close()
        with contextlib.suppress(duckdb.ConnectionException):  # a test closed it already
            self.store.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Callable[[], Live]]:
    opened: list[Live] = []

    def open_live() -> Live:
        lv = Live(tmp_path / "store.duckdb")
        opened.append(lv)
        return lv

    yield open_live
    for lv in opened:
        lv.close()


def settled(stream: str, durable: str) -> bool:
    info = consumer_info(stream, durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


def test_ndjson_messages_become_events_and_rejects_then_are_acked(
    names: Names, live: Callable[[], Live]
) -> None:
    settings = names.source_settings()
    payloads = []
    for m in range(20):
        body = b"".join(line(m * 10 + i, "ev") for i in range(9))
        body += b'{"kind": "fill", "ts": "2025-03-03T14:30:00Z"}\n' if m % 2 else b"not json\n"
        payloads.append(body)
    lv = live()
    source = NatsSource(SOURCE, settings, lv.runner, make_decoder_factory(settings))
    source.start()
    try:
        wait_until(lambda: source.state()["bound"], what="consumer bound")
        publish(names.subject, payloads)
        wait_until(lambda: lv.stored() == 200, what="200 records stored")
        wait_until(lambda: settled(names.stream, names.durable), what="consumer settled")
    finally:
        assert source.stop()
    assert lv.count("SELECT count(DISTINCT event_id) FROM events") == 180
    assert lv.count("SELECT count(*) FROM events WHERE source = 'nq'") == 180
    assert lv.count("SELECT count(*) FROM rejects") == 20
    assert lv.count("SELECT count(*) FROM rejects WHERE reason = 'malformed'") == 10
    state = source.state()
    assert state["fetched_msgs"] == 20 and state["acked_msgs"] == 20
    assert state["records"] == 200 and state["in_flight_msgs"] == 0
    assert state["state"] == "stopped"
    stats = lv.store.statistics()["sources"][SOURCE]
    assert stats["lines_read"] == 200 and stats["reconciled"]
    lv.close()


def test_consumer_crash_before_acks_redelivers_and_store_keeps_each_record_once(
    names: Names, live: Callable[[], Live]
) -> None:
    settings = names.source_settings(fetch_batch=4)
    payloads = [b"".join(line(m * 5 + i, "crash") for i in range(5)) for m in range(12)]
    lv = live()
    first = NatsSource(SOURCE, settings, lv.runner, make_decoder_factory(settings))
    crashed = threading.Event()

    def crash_after_first_commit(_batch: object) -> None:
        # runs in the committer thread after the commit, before the batch's acks
        if not crashed.is_set():
            crashed.set()
            first.abort()

    lv.committer.listeners.append(crash_after_first_commit)
    ensure_stream_exists(settings)
    publish(names.subject, payloads)
    first.start()
    wait_until(crashed.is_set, what="first commit")
    stored_before = lv.stored()
    assert stored_before > 0
    assert first.state()["acked_msgs"] == 0
    assert consumer_info(names.stream, names.durable).num_ack_pending > 0

    second = NatsSource(SOURCE, settings, lv.runner, make_decoder_factory(settings))
    second.start()
    try:
        wait_until(lambda: lv.stored() >= 60, what="60 records")
        wait_until(lambda: settled(names.stream, names.durable), what="consumer settled")
    finally:
        assert second.stop()
    assert second.state()["redelivered_msgs"] > 0
    assert lv.count("SELECT count(*) FROM events") == 60
    assert lv.count("SELECT count(DISTINCT event_id) FROM events") == 60
    assert lv.pipeline.stats.duplicates >= stored_before  # redelivered, already committed
    assert lv.store.statistics()["sources"][SOURCE]["reconciled"]
    lv.close()


def test_failed_commit_naks_and_a_restarted_reader_stores_everything_once(
    names: Names, live: Callable[[], Live], tmp_path: Path
) -> None:
    settings = names.source_settings(fetch_batch=4)
    payloads = [b"".join(line(m * 5 + i, "fail") for i in range(5)) for m in range(6)]
    broken = live()
    broken.store.close()  # every commit now fails in the real store
    first = NatsSource(SOURCE, settings, broken.runner, make_decoder_factory(settings))
    first.start()
    wait_until(lambda: first.state()["bound"], what="consumer bound")
    publish(names.subject, payloads)
    wait_until(lambda: first.state()["commit_failures"] > 0, what="a failed commit")
    assert first.state()["naked_msgs"] > 0
    first.stop()
    broken.runner.stop()
    broken.thread.join(10)
    assert broken.error is not None

    lv = live()  # the same DuckDB file, reopened: a restarted process
    second = NatsSource(SOURCE, settings, lv.runner, make_decoder_factory(settings))
    second.start()
    try:
        wait_until(lambda: lv.stored() >= 30, what="30 records")
        wait_until(lambda: settled(names.stream, names.durable), what="consumer settled")
    finally:
        assert second.stop()
    assert lv.count("SELECT count(*) FROM events") == 30
    assert lv.count("SELECT count(DISTINCT event_id) FROM events") == 30
    lv.close()


def test_unparseable_message_is_a_reject_and_is_not_redelivered(
    names: Names, live: Callable[[], Live]
) -> None:
    settings = names.source_settings(ack_wait_s=0.5)
    lv = live()
    source = NatsSource(SOURCE, settings, lv.runner, make_decoder_factory(settings))
    source.start()
    try:
        wait_until(lambda: source.state()["bound"], what="consumer bound")
        publish(names.subject, [b"\xff\xfe binary \x00 garbage", b"{not json at all", b""])
        wait_until(lambda: lv.stored() == 2, what="2 rejects")
        wait_until(lambda: settled(names.stream, names.durable), what="consumer settled")
        time.sleep(1.0)  # twice the ack wait: a redelivery would show now
        info = consumer_info(names.stream, names.durable)
        assert info.num_pending == 0 and info.num_ack_pending == 0
        assert info.num_redelivered == 0
    finally:
        assert source.stop()
    assert lv.count("SELECT count(*) FROM rejects") == 2
    assert lv.count("SELECT count(*) FROM events") == 0
    reasons = lv.store.query("SELECT reason FROM rejects ORDER BY reason").column(0).to_pylist()
    assert set(reasons) <= {"encoding", "malformed"}
    state = source.state()
    assert state["redelivered_msgs"] == 0 and state["acked_msgs"] == 3
    lv.close()


def test_sink_publishes_committed_events_once_with_msg_id(
    names: Names, live: Callable[[], Live]
) -> None:
    settings = NatsSinkSettings(
        url=URL, stream=names.sink_stream, subject_prefix=names.prefix, storage="memory"
    )
    sink = NatsSink(settings, name="test")
    sink.start()
    wait_until(lambda: sink.state()["ready"], what="sink ready")
    lv = live()
    lv.committer.listeners.append(sink.publish)
    decoder = make_decoder_factory(names.source_settings())()
    chunk, _ = decoder.decode(b"".join(line(i, "sink") for i in range(25)), 0, True)
    batch = lv.pipeline.process([chunk])

    def commit() -> None:
        lv.committer.submit(batch)
        lv.committer.flush()

    async def commit_and_receive() -> list[Msg]:
        nc = await nats.connect(URL)
        try:
            sub = await nc.subscribe(f"{names.prefix}.>")
            await nc.flush()
            await asyncio.to_thread(commit)
            return [await sub.next_msg(timeout=5) for _ in range(25)]
        finally:
            await nc.close()

    got = asyncio.run(commit_and_receive())
    ids = [ev.event_id for ev in batch.events]
    assert len(ids) == 25
    assert [m.headers["Nats-Msg-Id"] for m in got] == ids
    assert {m.subject for m in got} == {f"{names.prefix}.system"}
    first = msgspec.json.decode(got[0].data)
    assert first["event_id"] == ids[0] and first["kind"] == "system"
    assert first["message"] == "sink 0" and first["seq"] == batch.events[0].seq
    assert "raw" not in first

    sink.publish(batch)  # the same batch again: JetStream drops it by Nats-Msg-Id
    wait_until(lambda: sink.state()["duplicates"] == 25, what="second publish acked")
    assert stream_messages(names.sink_stream) == 25
    state = sink.state()
    assert state["published"] == 50 and state["failed"] == 0 and state["dropped"] == 0
    assert sink.stop()
    with_raw = NatsSink(msgspec.structs.replace(settings, include_raw=True))
    assert msgspec.json.decode(with_raw.payload(batch.events[0]))["raw"].startswith('{"ts"')
    lv.close()


def test_unreachable_server_backs_off_drops_sink_overflow_and_stops_promptly(
    live: Callable[[], Live],
) -> None:
    down = "nats://127.0.0.1:1"  # nothing listens there
    lv = live()
    settings = NatsSourceSettings(url=down, stream="TLT_DOWN", subject="tlt.down")
    source = NatsSource(SOURCE, settings, lv.runner, make_decoder_factory(settings))
    sink = NatsSink(NatsSinkSettings(url=down, max_pending=1), name="down")
    source.start()
    sink.start()
    wait_until(lambda: source.state()["errors"] >= 2, what="connection attempts")
    assert source.state()["state"] in ("connecting", "disconnected")
    assert not source.state()["bound"]
    chunk, _ = make_decoder_factory(settings)().decode(line(1, "x") + line(2, "y"), 0, True)
    batch = CommitBatch(events=chunk.events, id_hashes=np.empty(0, np.int64))
    for _ in range(3):
        sink.publish(batch)  # the committer's call: never blocks
    assert sink.state()["dropped"] == 4 and sink.state()["pending_batches"] == 1
    started = time.monotonic()
    assert source.stop() and sink.stop(timeout=0.5)
    assert time.monotonic() - started < 3
    assert source.state()["state"] == "stopped"
    assert sink.state()["dropped"] == 6 and sink.state()["published"] == 0
