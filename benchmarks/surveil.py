"""Surveillance benchmark: the cost of the ``surveil`` stage.

1. The full pipeline (parse → clean → dedup → enrich → mark → [surveil] → DuckDB) replays
   the same generated JSON lines twice in this process, with surveillance off and on
   (all detectors and the risk triggers at their defaults): events/s and the ratio
   (the bar: with surveillance ≥ 80 % of without).
2. The detectors alone over the enriched events read back from the store, in batches of
   4096: µs per event with everything on, then with one detector at a time.

    python benchmarks/surveil.py [--events 200000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import msgspec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen import write  # noqa: E402
from replay import calibrate  # noqa: E402
from tradelog.app import plan_replay, replay  # noqa: E402
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


def detector_cost(events: list[Event], settings: SurveillanceSettings) -> tuple[float, int]:
    engine = Surveillance(settings)
    state = SurveillanceState()
    alerts = 0
    t = time.perf_counter()
    for i in range(0, len(events), BATCH):
        found, _ = engine.process(events[i : i + BATCH], state)
        alerts += len(found)
    return (time.perf_counter() - t) / len(events) * 1e6, alerts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--data", default=str(HERE / "data"))
    a = ap.parse_args()
    jsonl = Path(a.data) / f"events_{a.events}.jsonl"
    if not jsonl.exists():
        print(f"generating {a.events:,} events into {a.data} …", flush=True)
        write(a.events, a.data)
    print(f"calibration loop 10M = {calibrate():.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        off_s, n = run_pipeline(str(jsonl), f"{tmp}/off.duckdb", surveil=False)
        on_s, _ = run_pipeline(str(jsonl), f"{tmp}/on.duckdb", surveil=True)
        off, on = n / off_s, n / on_s
        print(f"pipeline without surveillance: {off:12,.0f} events/s ({n:,} in {off_s:.2f} s)")
        print(f"pipeline with surveillance:    {on:12,.0f} events/s ({n:,} in {on_s:.2f} s)")
        print(f"ratio with / without: {on / off:.2f} (bar: >= 0.80)")
        store = DuckDBStore(f"{tmp}/on.duckdb", read_only=True)
        events = store.events_after(0, n + 1)
        print(f"stored alerts: {store.query('SELECT count(*) AS n FROM alerts').column('n')[0]}")
        store.close()
    us, alerts = detector_cost(events, only(None))
    print(f"detectors, all on: {us:.2f} µs/event ({alerts} alert emissions)")
    for name in DETECTORS:
        us_one, _ = detector_cost(events, only(name))
        print(f"  {name:14s} {us_one:6.2f} µs/event (with profiles and the loop)")


if __name__ == "__main__":
    main()
