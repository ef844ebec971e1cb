"""Replay benchmark: N generated events as JSON lines and as a regex text log, replayed end
to end (parse → clean → dedup → enrich → mark → DuckDB) by ``tradelog replay`` in a child
process, with wall time, events/s and peak RSS; then a naive one-event-at-a-time run of
the same stages (json.loads, general clean path, one commit per event) on a sample, and
the ratio between them. A CPU calibration loop is printed so runs on different hosts can
be compared.

    python benchmarks/replay.py [--events 1000000] [--naive-sample 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen import write  # noqa: E402
from tradelog.model.events import RejectReason  # noqa: E402
from tradelog.parsing.base import Record  # noqa: E402
from tradelog.pipeline.batch import CleanChunk, StreamInfo  # noqa: E402
from tradelog.pipeline.runner import Pipeline  # noqa: E402
from tradelog.stages.clean import Cleaner, CleanSettings  # noqa: E402
from tradelog.storage.duckdb_store import DuckDBStore  # noqa: E402


def calibrate() -> float:
    """Seconds for 10 M iterations of a trivial Python loop (host speed reference)."""
    t = time.perf_counter()
    x = 0
    for i in range(10_000_000):
        x += i
    return time.perf_counter() - t


def run_replay(args: list[str]) -> tuple[float, int, str]:
    """Runs ``tradelog replay`` in a child; returns (seconds, peak RSS bytes, stdout)."""
    exe = str(Path(sys.executable).with_name("tradelog"))
    t = time.perf_counter()
    proc = subprocess.Popen([exe, "replay", "-q", *args], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    if status != 0:
        raise SystemExit(f"replay failed ({status}): {out}")
    return seconds, usage.ru_maxrss * 1024, out


def naive(path: str, sample: int, store_path: str) -> float:
    """Events/s of the same stages fed one event at a time with a commit per event."""
    store = DuckDBStore(store_path)
    pipeline = Pipeline(store)
    pipeline.open()
    cleaner = Cleaner("naive", CleanSettings())
    info = StreamInfo("naive", "naive", path)
    n = 0
    t = time.perf_counter()
    offset = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if n >= sample:
                break
            fields = json.loads(line)
            end = offset + len(line.encode())
            out = cleaner.clean(Record(fields, line.rstrip("\n"), offset, end), path, "naive", 0)
            offset = end
            if out is None or getattr(out, "reason", None) in set(RejectReason):
                continue
            chunk = CleanChunk(info, [out], [], 0, end)  # type: ignore[list-item]
            store.commit(pipeline.process([chunk]))
            n += 1
    rate = n / (time.perf_counter() - t)
    store.close()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--naive-sample", type=int, default=3000)
    ap.add_argument("--data", default=str(HERE / "data"))
    a = ap.parse_args()

    jsonl = Path(a.data) / f"events_{a.events}.jsonl"
    text = Path(a.data) / f"events_{a.events}.log"
    if not (jsonl.exists() and text.exists()):
        print(f"generating {a.events:,} events into {a.data} …", flush=True)
        write(a.events, a.data)
    calib = calibrate()
    print(f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}; calibration loop 10M = {calib:.2f} s")  # fmt: skip

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, args in (
            ("jsonl", ["--format", "jsonl", str(jsonl)]),
            ("regex", ["-c", str(HERE / "text_log.toml"), str(text)]),
        ):
            store = f"duckdb:///{tmp}/{label}.duckdb"
            secs, rss, _ = run_replay([*args, "--store", store])
            rate = a.events / secs
            results[label] = rate
            print(f"{label:6s} full pipeline: {a.events:,} events in {secs:.1f} s = "
                  f"{rate:,.0f} events/s, peak RSS {rss / 2**20:.0f} MiB")  # fmt: skip
        again, _, _ = run_replay(["--format", "jsonl", str(jsonl), "--store",
                                  f"duckdb:///{tmp}/jsonl.duckdb"])  # fmt: skip
        print(f"jsonl  replay of the same file again (all duplicates): {again:.1f} s")
        rate = naive(str(jsonl), a.naive_sample, f"{tmp}/naive.duckdb")
        print(f"naive  one event at a time (sample {a.naive_sample:,}): {rate:,.0f} events/s")
        for label, r in results.items():
            print(f"ratio  {label} / naive = {r / rate:,.1f}x")


if __name__ == "__main__":
    main()
