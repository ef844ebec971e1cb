"""Surveillance benchmark: the cost of the ``surveil`` stage.

1. The full pipeline (parse → clean → dedup → enrich → mark → [surveil] → DuckDB) replays
   the same generated JSON lines twice in this process, with surveillance off and on
   (all detectors and the risk triggers at their defaults): events/s and the ratio
   (the bar: with surveillance ≥ 80 % of without).
2. The detectors alone over the enriched events read back from the store, in batches of
   4096: µs per event with everything on, with none (the loop and the account profiles),
   then with one detector at a time; wall clock and CPU time of this process (the CPU
   figure is the steadier one on a shared machine), best of ``--repeat`` runs. Then the
   size and encode/decode times of the surveillance state snapshot after all events.

    python benchmarks/surveil.py [--events 200000] [--repeat 3] [--pipeline-repeat 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import msgspec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen import write  # noqa: E402
from replay import calibrate  # noqa: E402
from tradelog.app import plan_replay, replay  # noqa: E402
from tradelog.cli import tune_gc  # noqa: E402
from tradelog.config import Config, SourceConfig, SurveillanceConfig  # noqa: E402
from tradelog.model.events import Event  # noqa: E402
from tradelog.storage.duckdb_store import DuckDBStore  # noqa: E402
from tradelog.surveillance.engine import (  # noqa: E402
    Surveillance,
    SurveillanceSettings,
    SurveillanceState,
)

DETECTORS = ("wash_trade", "spoofing", "cancel_ratio", "pump_dump", "volume_spike",
             "price_anomaly", "concentration", "cross_venue", "risk")  # fmt: skip
BATCH = 4096


def run_pipeline(path: str, store_path: str, surveil: bool) -> tuple[float, int]:
    cfg = Config(sources=[SourceConfig(name="bench", format="jsonl")])
    cfg.surveillance = SurveillanceConfig(enabled=surveil)
    # one state snapshot per run (the last): with the 30 s default the slower run crosses
    # the interval more often in a short run, and a snapshot (all open orders) costs ~1 s;
    # in a long run both pay the same share of their time for them, so it is left out
    cfg.pipeline.snapshot_interval_s = 1e9
    store = DuckDBStore(store_path)
    try:
        summary = replay(cfg, plan_replay(cfg, [path], "bench"), store)
    finally:
        store.close()
    return summary.seconds, summary.records


def only(name: str | None) -> SurveillanceSettings:
    s = SurveillanceSettings()
    for det in DETECTORS:
        if name is not None and det != name:
            setattr(s, det, msgspec.structs.replace(getattr(s, det), enabled=False))
    return s


class Cost(NamedTuple):
    wall_us: float
    """Per event, best of the runs."""
    cpu_us: float
    alerts: int
    state: SurveillanceState


def detector_cost(events: list[Event], settings: SurveillanceSettings, repeat: int) -> Cost:
    best: Cost | None = None
    for _ in range(repeat):
        engine = Surveillance(settings)
        state = SurveillanceState()
        alerts = 0
        t, c = time.perf_counter(), time.process_time()
        for i in range(0, len(events), BATCH):
            found, _ = engine.process(events[i : i + BATCH], state)
            alerts += len(found)
        wall = (time.perf_counter() - t) / len(events) * 1e6
        cpu = (time.process_time() - c) / len(events) * 1e6
        if best is None:
            best = Cost(wall, cpu, alerts, state)
        else:
            best = best._replace(wall_us=min(best.wall_us, wall), cpu_us=min(best.cpu_us, cpu))
    assert best is not None
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--data", default=str(HERE / "data"))
    ap.add_argument("--repeat", type=int, default=3, help="runs of each detector timing")
    ap.add_argument(
        "--pipeline-repeat", type=int, default=1, help="pipeline runs off and on (alternated)"
    )
    a = ap.parse_args()
    tune_gc()  # as `tradelog replay` / `run` do: the pipeline runs in this process
    jsonl = Path(a.data) / f"events_{a.events}.jsonl"
    if not jsonl.exists():
        print(f"generating {a.events:,} events into {a.data} …", flush=True)
        write(a.events, a.data)
    print(f"calibration loop 10M = {calibrate():.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        off_s = on_s = float("inf")
        for k in range(a.pipeline_repeat):  # alternated, best of each (a shared machine)
            off_one, n = run_pipeline(str(jsonl), f"{tmp}/off{k}.duckdb", surveil=False)
            on_one, _ = run_pipeline(str(jsonl), f"{tmp}/on{k}.duckdb", surveil=True)
            off_s, on_s = min(off_s, off_one), min(on_s, on_one)
        off, on = n / off_s, n / on_s
        print(f"pipeline without surveillance: {off:12,.0f} events/s ({n:,} in {off_s:.2f} s)")
        print(f"pipeline with surveillance:    {on:12,.0f} events/s ({n:,} in {on_s:.2f} s)")
        print(f"ratio with / without: {on / off:.2f} (bar: >= 0.80)")
        store = DuckDBStore(f"{tmp}/on0.duckdb", read_only=True)
        events = store.events_after(0, n + 1)
        print(f"stored alerts: {store.query('SELECT count(*) AS n FROM alerts').column('n')[0]}")
        store.close()
    print(f"load average before the detector timings: {os.getloadavg()[0]:.2f}")
    print("detectors (µs/event, best of runs)     wall     cpu")
    every = detector_cost(events, only(None), a.repeat)
    print(f"  all on ({every.alerts} alert emissions) {every.wall_us:10.2f} {every.cpu_us:7.2f}")
    for name in (None, *DETECTORS):
        one = detector_cost(events, only(name or "none"), a.repeat)
        label = name or "none (loop + profiles)"
        print(f"  {label:31s} {one.wall_us:8.2f} {one.cpu_us:7.2f}")
    encode_ms = decode_ms = float("inf")
    for _ in range(a.repeat):
        t = time.perf_counter()
        snapshot = every.state.to_bytes()
        encode_ms = min(encode_ms, (time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        SurveillanceState.from_bytes(snapshot)
        decode_ms = min(decode_ms, (time.perf_counter() - t) * 1e3)
    print(f"state snapshot after all events: {len(snapshot) / 1e6:.2f} MB, "
          f"encode {encode_ms:.1f} ms, decode {decode_ms:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
