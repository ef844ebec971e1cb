"""Scale-out benchmark: events/s through ``tradelog collect`` → JetStream partitions →
``tradelog process`` workers (separate processes) → PostgreSQL.

Per run: a fresh stream (file storage) and a fresh database. Phase 1 times the collector
alone (file → parse/clean → msgpack batches → JetStream, checkpointed). Phase 2 starts the
workers (each owns an equal share of the partitions) on the filled stream and times from
the moment all of them are consuming until every event is committed. Figures are printed;
nothing is asserted.

    python benchmarks/scale.py [--events 200000] [--workers 1,2] [--partitions 4]
        [--pg postgresql://127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import nats
import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen import write  # noqa: E402
from tradelog import app as core  # noqa: E402
from tradelog import service  # noqa: E402
from tradelog.config import load_config  # noqa: E402


def data_file(events: int) -> Path:
    path = HERE / "data" / f"events_{events}.jsonl"
    if not path.exists():
        write(events, str(path.parent))
    return path


def config(tmp: Path, data: Path, stream: str, url: str, partitions: int) -> Path:
    cfg = tmp / "scaleout.toml"
    cfg.write_text(
        f"""
[store]
url = "{url}"

[[sources]]
name = "bench"
format = "jsonl"
path = "{data}"

[scaleout]
stream = "{stream}"
subject_prefix = "bench.{stream.lower()}"
durable = "bench{stream.lower()}"
partitions = {partitions}
checkpoint = "{tmp / "collector.ckpt"}"
""",
        encoding="utf-8",
    )
    return cfg


def shares(partitions: int, workers: int) -> list[str]:
    per = partitions // workers
    return [f"{i * per}-{(i + 1) * per - 1}" for i in range(workers)]


def worker(cfg_path: Path, share: str) -> subprocess.Popen[bytes]:
    args = ["process", "-c", str(cfg_path), "--partitions", share]
    return subprocess.Popen(
        [sys.executable, "-m", "tradelog", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def committed(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(sum(events), 0) FROM source_positions").fetchone()
        return int(row[0]) if row else 0


async def drop_stream(stream: str) -> None:
    nc = await nats.connect("nats://127.0.0.1:4222")
    try:
        await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


def run(events: int, workers: int, partitions: int, admin: str) -> None:
    data = data_file(events)
    stream = f"BENCH_{uuid.uuid4().hex[:8].upper()}"
    db = f"tradelog_bench_{uuid.uuid4().hex[:8]}"
    base = admin.rsplit("/", 1)[0]
    url = f"{base}/{db}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}")
    try:
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            cfg_path = config(tmp, data, stream, url, partitions)
            core.open_store(url).close()  # migrate before the clock runs
            cfg = load_config(cfg_path, environ={})
            collector = service.build_collector(cfg)
            t0 = time.perf_counter()
            stats = asyncio.run(collector.run(threading.Event(), idle_exit_s=0.05))
            collect_s = time.perf_counter() - t0 - 0.05
            print(
                f"collect: {stats.records:,} records in {collect_s:.2f} s = "
                f"{stats.records / collect_s:,.0f} records/s ({stats.messages:,} messages, "
                f"{stats.bytes_published / 1e6:.1f} MB)"
            )
            procs = [worker(cfg_path, share) for share in shares(partitions, workers)]
            for p in procs:
                assert p.stderr is not None
                while b"tradelog process:" not in p.stderr.readline():
                    if p.poll() is not None:
                        raise SystemExit(f"worker exited with {p.returncode}")
            t1 = time.perf_counter()
            while committed(url) < stats.events:
                time.sleep(0.05)
            process_s = time.perf_counter() - t1
            print(
                f"process: {workers} worker(s), {partitions} partitions: {stats.events:,} events "
                f"in {process_s:.2f} s = {stats.events / process_s:,.0f} events/s into PostgreSQL"
            )
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=120)
    finally:
        asyncio.run(drop_stream(stream))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--pg", default="postgresql://127.0.0.1:5432/test")
    args = ap.parse_args()
    for w in (int(x) for x in args.workers.split(",")):
        run(args.events, w, args.partitions, args.pg)


if __name__ == "__main__":
    main()
