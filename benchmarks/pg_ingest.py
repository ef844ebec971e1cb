"""PostgreSQL ingest benchmark: N generated events (benchmarks/gen.py, JSON lines) replayed
through the whole pipeline into a fresh PostgreSQL database (created, then dropped), then
the binary COPY alone (the same events, re-read from the store, copied into the staging
table in 16 Ki-row batches inside transactions that are rolled back).

    python benchmarks/pg_ingest.py [--events 200000] [--admin postgresql://127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
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
from tradelog.storage.base import CommitBatch  # noqa: E402
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
                copy_only(store)
            finally:
                store.close()
    finally:
        with psycopg.connect(a.admin, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def copy_only(store: PostgresStore) -> None:
    """Rows/s of the binary COPY into the staging table alone (no INSERT, no indexes)."""
    seq, rows, spent = 0, 0, 0.0
    conn = store._writer()
    while True:
        events = store.events_after(seq, PAGE)
        if not events:
            break
        seq = events[-1].seq or seq
        hashes = np.array([id_hash(e.event_id) for e in events], dtype=np.int64)
        batch = CommitBatch(events=events, id_hashes=hashes)
        try:
            with conn.transaction(force_rollback=True), conn.cursor() as cur:
                t = time.perf_counter()
                store._copy_events(cur, batch)
                spent += time.perf_counter() - t
        except psycopg.Rollback:
            pass
        rows += len(events)
    print(f"binary COPY only: {rows} rows in {spent:.2f} s = {rows / spent:,.0f} rows/s")


if __name__ == "__main__":
    main()
