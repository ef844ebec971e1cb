"""PostgreSQL ingest benchmark: N generated events (benchmarks/gen.py, JSON lines) replayed
through the whole pipeline into a fresh PostgreSQL database (created, then dropped); then
the binary COPY alone (the same events, re-read from the store, copied into the staging
table in 16 Ki-row batches inside transactions that are rolled back); then the store's
commit alone (the same events in 16 Ki-event batches committed into a second fresh
database: direct COPY into the indexed day partition, positions, one transaction each),
with the CPU seconds of the client thread and of the server backend per event.

    python benchmarks/pg_ingest.py [--events 200000] [--admin postgresql://127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen import write  # noqa: E402
from tradelog.app import plan_replay, replay  # noqa: E402
from tradelog.config import Config, SourceConfig  # noqa: E402
from tradelog.model.ids import id_hash  # noqa: E402
from tradelog.storage.base import CommitBatch, StreamPosition  # noqa: E402
from tradelog.storage.postgres_store import PostgresStore  # noqa: E402

PAGE = 16_384


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--admin", default="postgresql://127.0.0.1:5432/test")
    a = ap.parse_args()
    name = f"tradelog_bench_{uuid.uuid4().hex[:12]}"
    base = a.admin.rsplit("/", 1)[0]
    with psycopg.connect(a.admin, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            jsonl, _ = write(a.events, tmp)
            cfg = Config()
            cfg.sources = [SourceConfig(name="jsonl", format="jsonl")]
            store = PostgresStore(f"{base}/{name}")
            try:
                summary = replay(cfg, plan_replay(cfg, [jsonl], "jsonl"), store)
                rate = summary.events / summary.seconds
                print(f"pipeline → PostgreSQL: {summary.events} events in {summary.seconds:.2f} s "
                      f"= {rate:,.0f} events/s (layout {store.layout}, "
                      f"{len(store.partitions())} day partitions)")  # fmt: skip
                batches = copy_only(store)
            finally:
                store.close()
        with psycopg.connect(a.admin, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}_c")
        commit_only(f"{base}/{name}_c", batches)
    finally:
        with psycopg.connect(a.admin, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"DROP DATABASE IF EXISTS {name}_c WITH (FORCE)")


def copy_only(store: PostgresStore) -> list[CommitBatch]:
    """Rows/s of the binary COPY into the staging table alone (no INSERT, no indexes);
    returns the batches it copied."""
    seq, rows, spent = 0, 0, 0.0
    batches: list[CommitBatch] = []
    conn = store._writer()
    while True:
        events = store.events_after(seq, PAGE)
        if not events:
            break
        seq = events[-1].seq or seq
        hashes = np.array([id_hash(e.event_id) for e in events], dtype=np.int64)
        batch = CommitBatch(events=events, id_hashes=hashes)
        batches.append(batch)
        try:
            with conn.transaction(force_rollback=True), conn.cursor() as cur:
                t = time.perf_counter()
                store._copy_events(cur, batch)
                spent += time.perf_counter() - t
        except psycopg.Rollback:
            pass
        rows += len(events)
    print(f"binary COPY only: {rows} rows in {spent:.2f} s = {rows / spent:,.0f} rows/s")
    return batches


def backend_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a local server backend (None when not readable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def commit_only(url: str, batches: list[CommitBatch]) -> None:
    """Events/s of ``PostgresStore.commit`` alone into a fresh, fully indexed store."""
    store = PostgresStore(url)
    try:
        n = sum(len(b.events) for b in batches)
        for i, b in enumerate(batches):
            b.positions = [StreamPosition(source="bench", stream="s", src_ref="f",
                                          offset=i + 1, lines_read=len(b.events),
                                          events=len(b.events))]  # fmt: skip
        pid = store._writer().info.backend_pid
        server0 = backend_cpu_s(pid)
        t, cpu = time.perf_counter(), time.thread_time()
        for b in batches:
            store.commit(b)
        wall, client = time.perf_counter() - t, time.thread_time() - cpu
        server1 = backend_cpu_s(pid)
        server = (
            f"{(server1 - server0) / n * 1e6:.1f} µs"
            if server0 is not None and server1 is not None
            else "unknown (not a local server)"
        )
        print(
            f"store commit only: {n} events in {wall:.2f} s = {n / wall:,.0f} events/s "
            f"(CPU per event: client {client / n * 1e6:.1f} µs, server backend {server})"
        )
    finally:
        store.close()


if __name__ == "__main__":
    main()
