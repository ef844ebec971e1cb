"""Scale-out on the real NATS JetStream (127.0.0.1:4222) and PostgreSQL (127.0.0.1:5432):
``collect`` → partitions → ``process`` workers give the same stored results as one
``replay`` of the same file, survive ``kill -9`` of a worker without loss or duplicates,
and a re-sent batch is dropped by JetStream.

Every test has its own stream, subject prefix and durable names (uuid) and deletes its
stream at the end; PostgreSQL tests use a fresh database each. The input is the
benchmark generator's engine log (acks, cancels and fills carry no symbol: the collector
routes them by their order) plus lines that become rejects.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import runpy
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import nats
import psycopg
import pytest

from tradelog import app as core
from tradelog import service
from tradelog.config import Config, load_config
from tradelog.model.events import Event, EventKind, Reject, RejectReason, Side
from tradelog.pipeline.batch import CleanChunk, StreamInfo
from tradelog.pipeline.partitioned import PartitionPipeline, seq_range
from tradelog.sources.partitioned import (
    NO_SYMBOL,
    Collector,
    EnvelopeDecoder,
    Piece,
    Processor,
    SymbolRouter,
    ensure_partition_stream,
    load_checkpoint,
    partition_of,
    piece_array,
)
from tradelog.sources.settings import ScaleoutSettings
from tradelog.storage.base import Store

from .pg import fresh_database

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NATS_URL = "nats://127.0.0.1:4222"
BAD_LINES = ('{"kind":"fill","ts":"2025-03-03T13:30:00Z"', "not json at all")


def write_input(path: Path, events: int, seed: int = 5) -> int:
    """The generator's JSON lines with two unreadable lines in the middle; returns lines."""
    gen = runpy.run_path(str(ROOT / "benchmarks/gen.py"))
    lines = [gen["jsonl_line"](i, ev) for i, ev in enumerate(gen["events"](events, seed))]
    mid = len(lines) // 2
    lines[mid:mid] = [b + "\n" for b in BAD_LINES]
    path.write_text("".join(lines), encoding="utf-8")
    return len(lines)


def write_config(tmp: Path, tag: str, store_url: str, batch_events: int = 200) -> Path:
    cfg = tmp / f"{tag}.toml"
    cfg.write_text(
        f"""
[store]
url = "{store_url}"

[pipeline]
batch_events = {batch_events}

[[sources]]
name = "eng"
format = "jsonl"
path = "in.jsonl"

[scaleout]
url = "{NATS_URL}"
stream = "TLSO_{tag}"
subject_prefix = "tlso.{tag}"
durable = "w{tag}"
partitions = 4
batch_events = 150
checkpoint = "{tag}.ckpt"
ack_wait_s = 60
""",
        encoding="utf-8",
    )
    return cfg


@contextlib.contextmanager
def scaleout_stream(tag: str) -> Iterator[str]:
    """The test's stream name; deleted afterwards."""
    name = f"TLSO_{tag}"
    try:
        yield name
    finally:

        async def delete() -> None:
            nc = await nats.connect(NATS_URL)
            try:
                with contextlib.suppress(Exception):
                    await nc.jetstream().delete_stream(name)
            finally:
                await nc.close()

        asyncio.run(delete())


def reference(cfg_path: Path, url: str, input_path: Path) -> None:
    """What one ``tradelog replay`` of the file stores."""
    cfg = load_config(cfg_path, environ={})
    cfg.store.url = url
    store = core.open_store(url, settings=cfg.store)
    try:
        core.replay(cfg, core.plan_replay(cfg, [str(input_path)], None), store)
    finally:
        store.close()


def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    table = store.query(sql)
    cols = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return list(zip(*cols, strict=True))


RESULT_QUERIES = {
    "events by kind": "SELECT kind, count(*) FROM events GROUP BY kind ORDER BY kind",
    "events": (
        "SELECT event_id, kind, symbol, order_id, root_order_id, order_status, latency_ms, "
        "mkt_bid, mkt_ask, arrival_mid, slippage_bps, pos_after, avg_cost_after, "
        "realized_after, fees_after, anomaly_types, owner_id, src_offset, ts_ingest > 0 "
        "FROM events ORDER BY event_id"
    ),
    "orders": (
        "SELECT order_id, status, symbol, side, qty, filled_qty, avg_px, fill_rate, fees, "
        "n_fills, ack_latency_ms, fill_latency_ms, cancel_latency_ms, arrival_mid, "
        "slippage_bps, maker_qty, taker_qty FROM orders ORDER BY order_id"
    ),
    "round trips (PnL)": (
        "SELECT strategy_id, account_id, symbol, side, ts_open, ts_close, pnl, gross_pnl, "
        "fees, fills FROM round_trips ORDER BY strategy_id, account_id, symbol, ts_open"
    ),
    "anomalies": "SELECT event_id, type, severity, value FROM anomalies ORDER BY event_id, type",
    "alerts": (
        "SELECT type, level, symbol, accounts, strategy_id, window_start, window_end, "
        "occurrences, risk_score, status FROM alerts "
        "ORDER BY type, symbol, window_start, accounts, strategy_id"
    ),
    # reject ids derive from the stream key, which replay (file_replay) and tailing
    # (file_tail) fingerprint differently: compare what was rejected, where and why
    "rejects": "SELECT src_offset, reason, raw FROM rejects ORDER BY src_offset",
    "counters": (
        "SELECT source, sum(lines_read) - sum(duplicates), sum(events), sum(rejects), "
        "sum(ignored) FROM source_positions GROUP BY source ORDER BY source"
    ),
}


def results(url: str) -> dict[str, list[tuple[Any, ...]]]:
    store = core.open_store(url, read_only=True)
    try:
        return {name: rows(store, sql) for name, sql in RESULT_QUERIES.items()}
    finally:
        store.close()


def assert_same(got: dict[str, list[tuple[Any, ...]]], want: dict[str, Any]) -> None:
    for name in RESULT_QUERIES:
        assert len(got[name]) == len(want[name]), name
        for a, b in zip(got[name], want[name], strict=True):
            assert a == b, f"{name}: {a} != {b}"


def count_events(url: str) -> int:
    store = core.open_store(url, read_only=True)
    try:
        return int(rows(store, "SELECT count(*) FROM events")[0][0])
    finally:
        store.close()


def wait_for(url: str, expected: int, procs: list[subprocess.Popen[bytes]], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if count_events(url) >= expected:
            return
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"a worker exited early with {p.returncode}")
        time.sleep(0.1)
    raise AssertionError(f"only {count_events(url)} of {expected} events stored in time")


def launch(*args: str, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tradelog", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def ready(proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    """Waits until a ``tradelog process`` subprocess has started its consumers."""
    assert proc.stderr is not None
    seen = b""
    while b"tradelog process:" not in seen:
        line = proc.stderr.readline()
        if not line:
            proc.wait(timeout=10)
            raise AssertionError(f"worker failed to start ({proc.returncode}): {seen.decode()}")
        seen += line
    return proc


def worker(
    cfg: Path, partitions: str, cwd: Path, metrics_port: int | None = None
) -> subprocess.Popen[bytes]:
    extra = ["--metrics-port", str(metrics_port)] if metrics_port is not None else []
    return launch("process", "-c", str(cfg), "--partitions", partitions, *extra, cwd=cwd)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()


def expected_events(total_lines: int) -> int:
    return total_lines - len(BAD_LINES)


# ---------------------------------------------------------------------------- tests


def test_collect_and_two_workers_on_postgres_match_one_replay(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:10]
    lines = write_input(tmp_path / "in.jsonl", 6000)
    with fresh_database() as ref_url, fresh_database() as url, scaleout_stream(tag):
        cfg = write_config(tmp_path, tag, url)
        reference(cfg, ref_url, tmp_path / "in.jsonl")
        # the collector and both workers start together (each is its own process)
        collect = launch("collect", "-c", str(cfg), "--idle-exit", "1", cwd=tmp_path)
        port = free_port()
        workers = [
            ready(worker(cfg, "0-1", tmp_path, metrics_port=port)),
            ready(worker(cfg, "2-3", tmp_path)),
        ]
        _, err = collect.communicate(timeout=180)
        assert collect.returncode == 0, err.decode()
        try:
            wait_for(url, expected_events(lines), workers, 120)
            scrape = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        finally:
            for w in workers:
                stop(w)
        # the worker's /metrics counts the events of its own partitions only
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in scrape.splitlines()
            if line.startswith("tradelog_pipeline_events_total{")
        )
        assert 'tradelog_scaleout_in_flight_records{partition="1"}' in scrape
        got, want = results(url), results(ref_url)
        store = core.open_store(url, read_only=True)
        try:
            mine = rows(store, f"SELECT count(*) FROM events WHERE seq < {seq_range(2)[0]}")
        finally:
            store.close()
        assert counted == mine[0][0] > 0
        assert sum(n for _, n in want["events by kind"]) == expected_events(lines)
        assert len(want["rejects"]) == len(BAD_LINES)
        assert want["orders"] and want["round trips (PnL)"]
        assert_same(got, want)
        # each partition numbered its events in its own seq range, and only its symbols
        store = core.open_store(url, read_only=True)
        try:
            by_part = rows(store, "SELECT seq, symbol FROM events")
        finally:
            store.close()
        for seq, symbol in by_part:
            k = seq >> 40
            low, high = seq_range(k)
            assert low < seq < high
            if symbol is not None:
                assert partition_of(symbol, 4) == k, (symbol, k)
        assert len({seq >> 40 for seq, _ in by_part}) > 1


def test_kill_9_of_a_worker_mid_stream_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """Partitions 0-1 run in a subprocess that is killed with SIGKILL mid-stream and
    restarted; partitions 2-3 run in this process all along."""
    tag = uuid.uuid4().hex[:10]
    lines = write_input(tmp_path / "in.jsonl", 12000)
    victim_seq = seq_range(2)[0]
    count_victim = f"SELECT count(*) FROM events WHERE seq < {victim_seq}"
    with fresh_database() as ref_url, fresh_database() as url, scaleout_stream(tag):
        cfg_path = write_config(tmp_path, tag, url, batch_events=32)
        reference(cfg_path, ref_url, tmp_path / "in.jsonl")
        cfg = load_config(cfg_path, environ={})
        stats = asyncio.run(service.build_collector(cfg).run(threading.Event(), idle_exit_s=0.3))
        assert stats.records == lines
        victim = ready(worker(cfg_path, "0-1", tmp_path))
        store = core.open_store(url, settings=cfg.store)
        other, _ = service.build_processor(cfg, store, [2, 3])
        try:
            other.start()
            stored = 0
            deadline = time.monotonic() + 120
            while stored == 0 and time.monotonic() < deadline:
                stored = int(rows(store, count_victim)[0][0])
                time.sleep(0.005)
            victim.kill()  # SIGKILL: no drain, no ack, no final snapshot
            victim.wait()
            at_kill = int(rows(store, count_victim)[0][0])
            total_victim = sum(
                1 for sym in symbols(tmp_path / "in.jsonl") if partition_of(sym, 4) < 2
            )
            assert 0 < at_kill < total_victim, "the kill was not mid-stream"
            restarted = ready(worker(cfg_path, "0-1", tmp_path))
            try:
                wait_for(url, expected_events(lines), [restarted], 180)
            finally:
                stop(restarted)
        finally:
            other.stop()
            store.close()
            if victim.poll() is None:
                victim.kill()
        got, want = results(url), results(ref_url)
        assert_same(got, want)
        store = core.open_store(url, read_only=True)
        try:
            n, distinct = rows(store, "SELECT count(*), count(DISTINCT event_id) FROM events")[0]
        finally:
            store.close()
        assert n == distinct == expected_events(lines)


def symbols(path: Path) -> list[str]:
    """The routing symbol of every event line (order events inherit their order's)."""
    by_order: dict[str, str] = {}
    out: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = msgspec.json.decode(line)
        except msgspec.DecodeError:
            continue
        sym = rec.get("symbol") or by_order.get(rec.get("order_id", ""), "")
        if rec.get("order_id") and sym:
            by_order[rec["order_id"]] = sym
        out.append(sym)
    return out


def test_threads_sharing_one_duckdb_store_match_one_replay(tmp_path: Path) -> None:
    """DuckDB is one process's file: two processors run as threads over one store."""
    tag = uuid.uuid4().hex[:10]
    lines = write_input(tmp_path / "in.jsonl", 3000)
    ref_url = f"duckdb:///{tmp_path / 'ref.duckdb'}"
    url = f"duckdb:///{tmp_path / 'so.duckdb'}"
    with scaleout_stream(tag):
        cfg_path = write_config(tmp_path, tag, url)
        reference(cfg_path, ref_url, tmp_path / "in.jsonl")
        cfg = load_config(cfg_path, environ={})
        collector = service.build_collector(cfg)
        stats = asyncio.run(collector.run(threading.Event(), idle_exit_s=0.3))
        assert stats.records == lines and stats.unrouted == 0
        store = core.open_store(url, settings=cfg.store)
        try:
            a, _ = service.build_processor(cfg, store, [0, 1])
            b, _ = service.build_processor(cfg, store, [2, 3])
            a.start()
            b.start()
            deadline = time.monotonic() + 60
            want = expected_events(lines)
            while time.monotonic() < deadline:
                done = sum(w.pipeline.stats.events for p in (a, b) for w in p.workers)
                if done >= want:
                    break
                time.sleep(0.05)
            a.stop()
            b.stop()
        finally:
            store.close()
        assert_same(results(url), results(ref_url))


def test_a_resent_batch_is_dropped_by_jetstream(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:10]
    lines = write_input(tmp_path / "in.jsonl", 1000)
    with scaleout_stream(tag) as stream:
        cfg: Config = load_config(write_config(tmp_path, tag, "duckdb:///x.duckdb"), environ={})

        async def scenario() -> tuple[int, int, int, list[Piece]]:
            collector: Collector = service.build_collector(cfg)
            reads = collector.read(10**9, 0.0)
            msgs = collector.encode(reads)
            nc = await nats.connect(NATS_URL)
            try:
                js = nc.jetstream()
                await ensure_partition_stream(js, cfg.scaleout)
                stop = asyncio.Event()
                assert await collector.publish(js, msgs, stop)
                first = (await js.stream_info(stream)).state.messages
                assert await collector.publish(js, msgs, stop)  # the same batch again
                second = (await js.stream_info(stream)).state.messages
                sub = await js.pull_subscribe(f"{cfg.scaleout.subject_prefix}.>", stream=stream)
                fetched = await sub.fetch(len(msgs) + 5, timeout=2)
                pieces = [msgspec.msgpack.decode(m.data, type=Piece) for m in fetched]
                return first, second, collector.stats.duplicates, pieces
            finally:
                await nc.close()

        first, second, duplicates, pieces = asyncio.run(scenario())
        assert first == second > 1
        assert duplicates == first
        assert sum(len(p.events) + len(p.rejects) + p.ignored for p in pieces) == lines
        for p in pieces:
            assert all(partition_of(ev.symbol, 4) == p.partition for ev in p.events if ev.symbol)
            assert len(p.events) <= cfg.scaleout.batch_events


def test_collector_checkpoint_follows_the_acks(tmp_path: Path) -> None:
    """A restarted collector resumes at its checkpoint and publishes nothing again."""
    tag = uuid.uuid4().hex[:10]
    lines = write_input(tmp_path / "in.jsonl", 500)
    with scaleout_stream(tag):
        cfg = load_config(write_config(tmp_path, tag, "duckdb:///x.duckdb"), environ={})
        first = asyncio.run(service.build_collector(cfg).run(threading.Event(), idle_exit_s=0.2))
        ckpt = load_checkpoint(cfg.scaleout.checkpoint)
        size = os.path.getsize(tmp_path / "in.jsonl")
        assert [row[1] for row in ckpt.positions["eng"]] == [size]
        assert ckpt.routes  # order id → symbol, for symbol-less events after a restart
        again = asyncio.run(service.build_collector(cfg).run(threading.Event(), idle_exit_s=0.2))
        assert first.records == lines
        assert again.records == 0 and again.messages == 0


def test_processor_rejects_partitions_it_cannot_own(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, "x", "duckdb:///x.duckdb"), environ={})
    with pytest.raises(ValueError, match="not below"):
        Processor(object(), cfg.scaleout, [4], core.pipeline_settings(cfg))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- parts, no NATS


def ev(i: int, kind: str, **fields: Any) -> Event:
    return Event(event_id=f"E{i}", kind=EventKind(kind), ts=1_000 + i, ts_ingest=5, source="s",
                 **fields)  # fmt: skip


def test_router_sends_symbol_less_events_to_their_orders_partition() -> None:
    router = SymbolRouter(limit=3)
    assert router.key(ev(1, "order_new", order_id="O1", symbol="AAPL")) == "AAPL"
    assert router.key(ev(2, "order_ack", order_id="O1")) == "AAPL"
    assert router.key(ev(3, "order_replace", order_id="O2", orig_order_id="O1")) == "AAPL"
    assert router.key(ev(4, "fill", order_id="O2")) == "AAPL"  # learnt through the chain
    assert router.key(ev(5, "order_ack", order_id="NOPE")) == NO_SYMBOL
    assert router.key(ev(6, "system")) == NO_SYMBOL
    assert router.unrouted == 1  # only the order event counts; a system event has no order
    router.key(ev(7, "order_new", order_id="O3", symbol="MSFT"))
    router.key(ev(8, "order_new", order_id="O4", symbol="MSFT"))
    assert list(router.routes) == ["O2", "O3", "O4"]  # bounded: O1 evicted first
    assert router.key(ev(9, "order_ack", order_id="O1")) == NO_SYMBOL


def test_envelope_round_trip_and_malformed_messages() -> None:
    settings = ScaleoutSettings(stream="S", subject_prefix="t.x")
    events = [ev(1, "order_new", order_id="O1", symbol="AAPL", qty=5.0, side=Side.BUY,
                 attrs={"k": [1, 2]}), ev(2, "order_ack", order_id="O1")]  # fmt: skip
    reject = Reject(reject_id="r-1", source="s", src_ref="f", src_offset=7,
                    reason=RejectReason.MALFORMED, detail="d", raw="x", ts_ingest=5)  # fmt: skip
    data = msgspec.msgpack.encode(piece_array("s", "fp:a", "f", 1, 100, 250, events, [reject], 3))
    dec = EnvelopeDecoder("scaleout-p1", settings, 1)
    chunk, used = dec.decode(data, 0, True, 9)
    assert used == len(data)
    assert (chunk.stream.source, chunk.stream.stream, chunk.end) == ("s", "fp:a@p1", 250)
    assert [msgspec.structs.asdict(e) for e in chunk.events] == [
        msgspec.structs.asdict(e) for e in events
    ]
    assert msgspec.structs.asdict(chunk.rejects[0]) == msgspec.structs.asdict(reject)
    assert chunk.ignored == 3 and chunk.records == 6
    for bad in (
        b"\x93garbage",
        msgspec.msgpack.encode(piece_array("s", "a", "f", 2, 0, 1, [], [], 0)),
    ):
        bad_chunk, used = dec.decode(bad, 77 << 24, True, 9)
        assert used == len(bad) and not bad_chunk.events
        (rj,) = bad_chunk.rejects
        assert rj.reason is RejectReason.MALFORMED and rj.src_offset == 77 << 24
        assert rj.reject_id == dec.decode(bad, 77 << 24, True, 10)[0].rejects[0].reject_id


def test_partition_pipelines_share_a_store_and_recover_only_their_range(tmp_path: Path) -> None:
    """Two partitions commit into one DuckDB store; partition 1 restarts without a fresh
    snapshot and catches up from its own stored events only, to the same state."""
    store = core.open_store(f"duckdb:///{tmp_path / 's.duckdb'}")
    try:
        pipes = {k: PartitionPipeline(store, partition=k) for k in (0, 1)}
        for p in pipes.values():
            p.open()
        info = StreamInfo("s", "fp:a", "f")
        n = 0
        for round_ in range(3):
            for k, sym in ((0, "AAA"), (1, "BBB")):
                batch = []
                for j in range(4):
                    n += 1
                    oid = f"{sym}-{round_}-{j}"
                    batch += [ev(n, "quote", symbol=sym, bid=9.0 + j, ask=11.0 + j)]
                    n += 1
                    batch += [ev(n, "order_new", order_id=oid, symbol=sym, qty=1.0,
                                 price=10.0, side=Side.BUY)]  # fmt: skip
                    n += 1
                    batch += [ev(n, "order_ack", order_id=oid)]
                chunk = CleanChunk(info, batch, [], 0, n)
                store.commit(pipes[k].process([chunk], force_snapshot=round_ == 0))
        low1 = seq_range(1)[0]
        assert pipes[0].state.seq == 36 and pipes[1].state.seq == low1 + 36
        again = PartitionPipeline(store, partition=1)
        again.open()
        assert again.state.seq == pipes[1].state.seq
        assert again.state.snapshot() == pipes[1].state.snapshot()
        assert set(again.state.symbols) == {"BBB"}
        fresh = PartitionPipeline(store, partition=2)
        fresh.open()
        assert fresh.state.seq == seq_range(2)[0] and not fresh.state.orders
    finally:
        store.close()


def test_workers_ride_out_lost_store_connections(tmp_path: Path) -> None:
    """PostgreSQL drops the workers' connections again and again during ingestion
    (``pg_terminate_backend``): commits are retried on a new connection, nothing is lost
    or doubled. (Stopping the shared server would break other tests; a terminated backend
    is the same failure seen from the client.)"""
    tag = uuid.uuid4().hex[:10]
    lines = write_input(tmp_path / "in.jsonl", 6000)
    with fresh_database() as ref_url, fresh_database() as url, scaleout_stream(tag):
        cfg_path = write_config(tmp_path, tag, url, batch_events=64)
        reference(cfg_path, ref_url, tmp_path / "in.jsonl")
        cfg = load_config(cfg_path, environ={})
        cfg.scaleout.fetch_batch = 2  # many small commits, so terminations hit some
        asyncio.run(service.build_collector(cfg).run(threading.Event(), idle_exit_s=0.3))
        db = url.rsplit("/", 1)[1]
        store = core.open_store(url, settings=cfg.store)
        processor, _ = service.build_processor(cfg, store, [0, 1, 2, 3])
        terminated = 0
        try:
            processor.start()
            with psycopg.connect(url, autocommit=True) as admin:
                deadline = time.monotonic() + 120

                def stored() -> int:
                    row = admin.execute("SELECT count(*) FROM events").fetchone()
                    return int(row[0]) if row else 0

                while stored() < expected_events(lines):
                    assert time.monotonic() < deadline, "ingestion did not finish"
                    assert processor.failed() is None
                    if processor.commits.retries < 3:
                        row = admin.execute(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = %s AND pid <> pg_backend_pid()",
                            [db],
                        ).fetchone()
                        terminated += int(row[0]) if row else 0
                    time.sleep(0.05)
        finally:
            processor.stop()
            store.close()
        assert terminated > 0 and processor.commits.retries > 0
        assert_same(results(url), results(ref_url))
