"""NATS ingest benchmark: events/s from a JetStream stream through ``NatsSource`` and the
full live pipeline (decode → clean → dedup → enrich → mark) into DuckDB, acked after
each commit, for several numbers of records per message.

For each setting: a fresh memory stream is filled with the benchmark's JSON lines (N per
message, published with bounded concurrency; that rate is printed too), then a source with
a new durable consumer reads it into a new DuckDB file; the clock runs from the source's
start until every record is committed and every message acked.

    python benchmarks/nats_ingest.py [--events 100000] [--per-message 1,10,100]
        [--fetch-batch 256] [--url nats://127.0.0.1:4222]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import nats

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen import write  # noqa: E402
from tradelog.config import Config, SourceConfig  # noqa: E402
from tradelog.pipeline.ingest import StreamDecoder  # noqa: E402
from tradelog.pipeline.live import LiveRunner  # noqa: E402
from tradelog.pipeline.runner import Committer, Pipeline, run_batches  # noqa: E402
from tradelog.sources.nats_jetstream import (  # noqa: E402
    NatsSource,
    ensure_stream,
    nats_stream_info,
)
from tradelog.sources.settings import NatsSourceSettings  # noqa: E402
from tradelog.stages.clean import Cleaner  # noqa: E402
from tradelog.stages.clean_jsonl import FastJsonl  # noqa: E402
from tradelog.storage.duckdb_store import DuckDBStore  # noqa: E402

PUBLISH_GROUP = 200


def load_lines(events: int) -> list[bytes]:
    """The first ``events`` lines of the benchmark data (generated if missing)."""
    path = HERE / "data" / f"events_{events}.jsonl"
    if not path.exists():
        larger = sorted(HERE.glob("data/events_*.jsonl"), key=lambda p: p.stat().st_size)
        usable = [p for p in larger if int(p.stem.split("_")[1]) >= events]
        if usable:
            path = usable[0]
        else:
            write(events, str(path.parent))
    with open(path, "rb") as fh:
        lines = [line for _, line in zip(range(events), fh, strict=False)]
    return lines


async def fill(url: str, settings: NatsSourceSettings, payloads: list[bytes]) -> float:
    """Creates the stream and publishes the payloads; returns the seconds it took."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_stream(js, settings.stream, settings.stream_subjects, "memory", 0.0, -1)
        started = time.perf_counter()
        for i in range(0, len(payloads), PUBLISH_GROUP):
            group = payloads[i : i + PUBLISH_GROUP]
            await asyncio.gather(*(js.publish(settings.subject, p) for p in group))
        return time.perf_counter() - started
    finally:
        await nc.close()


async def consumer_state(url: str, stream: str, durable: str) -> tuple[int, int]:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().consumer_info(stream, durable)
        return int(info.num_pending or 0), int(info.num_ack_pending or 0)
    finally:
        await nc.close()


async def drop_stream(url: str, stream: str) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


def decoder_factory(settings: NatsSourceSettings) -> Any:
    src = SourceConfig(name="bench", format="jsonl")
    info = nats_stream_info("bench", settings)

    def make() -> StreamDecoder:
        cleaner = Cleaner(src.name, src, Config().normalize)
        return StreamDecoder(info, cleaner, None, FastJsonl(cleaner, src.max_record_bytes))

    return make


def baseline(lines: list[bytes]) -> float:
    """Seconds for the same records through the same pipeline and store without NATS
    (decoded in chunks of 100 lines, committed in live-sized batches)."""
    settings = NatsSourceSettings(stream="BASELINE", subject="baseline")
    decoder = decoder_factory(settings)()
    with tempfile.TemporaryDirectory() as tmp:
        store = DuckDBStore(str(Path(tmp) / "baseline.duckdb"))
        pipeline = Pipeline(store)
        pipeline.open()
        committer = Committer(store)
        started = time.perf_counter()
        chunks = (
            decoder.decode(b"".join(lines[i : i + 100]), i << 24, True)[0]
            for i in range(0, len(lines), 100)
        )
        run_batches(pipeline, committer, chunks)
        seconds = time.perf_counter() - started
        committer.close()
        store.close()
    return seconds


def run_one(url: str, lines: list[bytes], per_message: int, fetch_batch: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    settings = NatsSourceSettings(
        url=url,
        stream=f"TLBENCH_{tag}",
        subject=f"tlbench.{tag}",
        durable=f"bench_{tag}",
        storage="memory",
        fetch_batch=fetch_batch,
    )
    payloads = [b"".join(lines[i : i + per_message]) for i in range(0, len(lines), per_message)]
    publish_s = asyncio.run(fill(url, settings, payloads))
    with tempfile.TemporaryDirectory() as tmp:
        store = DuckDBStore(str(Path(tmp) / "bench.duckdb"))
        pipeline = Pipeline(store)
        pipeline.open()
        committer = Committer(store)
        runner = LiveRunner(pipeline, committer, [])
        thread = threading.Thread(target=runner.run, daemon=True)
        thread.start()
        source = NatsSource("bench", settings, runner, decoder_factory(settings))
        started = time.perf_counter()
        source.start()
        total = len(lines)
        while source.state()["acked_msgs"] < len(payloads):
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        source.stop()
        runner.stop()
        thread.join()
        committer.close()
        pending = asyncio.run(consumer_state(url, settings.stream, settings.durable))
        stored = pipeline.stats.events + pipeline.stats.rejects
        batches = pipeline.stats.batches
        store.close()
    asyncio.run(drop_stream(url, settings.stream))
    return {
        "per_message": per_message,
        "messages": len(payloads),
        "records": total,
        "stored": stored,
        "publish_s": publish_s,
        "seconds": seconds,
        "pending": pending,
        "batches": batches,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--per-message", default="1,10,100")
    ap.add_argument("--fetch-batch", type=int, default=256)
    ap.add_argument("--url", default="nats://127.0.0.1:4222")
    args = ap.parse_args()
    lines = load_lines(args.events)
    print(f"{len(lines)} records, fetch batch {args.fetch_batch}, {args.url}")
    base = baseline(lines)
    print(f"without NATS (same pipeline and store): {base:.2f}s, {len(lines) / base:,.0f} events/s")
    print(
        f"{'rec/msg':>8} {'messages':>9} {'publish msg/s':>14} {'ingest s':>9} "
        f"{'events/s':>10} {'vs base':>8} {'msgs/s':>9} {'commits':>8} {'stored':>8} "
        f"{'pending':>8}"
    )
    for n in (int(x) for x in args.per_message.split(",")):
        r = run_one(args.url, lines, n, args.fetch_batch)
        print(
            f"{r['per_message']:>8} {r['messages']:>9} {r['messages'] / r['publish_s']:>14,.0f} "
            f"{r['seconds']:>9.2f} {r['records'] / r['seconds']:>10,.0f} "
            f"{base / r['seconds']:>8.2f} "
            f"{r['messages'] / r['seconds']:>9,.0f} {r['batches']:>8} {r['stored']:>8} "
            f"{'/'.join(map(str, r['pending'])):>8}"
        )


if __name__ == "__main__":
    main()
