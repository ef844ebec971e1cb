"""Live latency benchmark: a writer process appends events to a log file at a fixed rate
while ``tradelog run`` follows it; a WebSocket client on ``/log_stream/live`` measures the
time from a line being written (its write time is in the line) to the event arriving.

Prints p50/p90/p99/max latency per rate, the p50 by part (tail, pipeline, push) and per
10-second window, and whether the lag grew during the run (the last window's median vs the
first's), then the highest rate sustained without growing lag (every event received).

    python benchmarks/live.py [--rates 5000,20000,50000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

BURST_S = 0.005
WINDOW_NS = 10 * 10**9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write(path: str, rate: int, seconds: float) -> None:
    """Appends ``rate`` events/s for ``seconds`` in bursts every 5 ms."""
    per_burst = max(1, round(rate * BURST_S))
    total = int(rate * seconds)
    n = 0
    start = time.perf_counter()
    with open(path, "a", encoding="utf-8") as fh:
        while True:
            elapsed = time.perf_counter() - start
            if n >= total:
                break
            due = min(total, int(elapsed * rate) + per_burst)
            lines = []
            while n < due:
                now = time.time_ns()
                lines.append(
                    f'{{"ts":"2025-03-03T14:30:00.000000001Z","kind":"system",'
                    f'"component":"bench","message":"{now}","event_id":"b{n}"}}\n'
                )
                n += 1
            fh.write("".join(lines))
            fh.flush()
            time.sleep(max(0.0, BURST_S - (time.perf_counter() - start - elapsed)))


def lag_growing(medians: list[float]) -> bool:
    """The lag grows when the median latency of the last 10-second window is more than 3×
    that of the first and above the 20 ms p50 bar (a run that keeps up has a flat median,
    whatever its tail; one that falls behind has a median that climbs without bound)."""
    if len(medians) < 2:
        return False
    return medians[-1] > 3 * medians[0] and medians[-1] > 20.0


def measure(rate: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "engine.log"
        log.touch()
        cfg = Path(tmp) / "t.toml"
        cfg.write_text(
            f'[store]\nurl = "duckdb:///{tmp}/s.duckdb"\n[pipeline]\nbatch_events = 4096\n'
            f'[[sources]]\nname = "bench"\npath = "{log}"\npoll_interval_ms = 1\n'
            "[marks]\nfuture_tolerance_ms = 1e12\nweekends = false\n",
            encoding="utf-8",
        )
        port = free_port()
        exe = str(Path(sys.executable).with_name("tradelog"))
        proc = subprocess.Popen(
            [exe, "run", "-c", str(cfg), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.05)
            lat: list[float] = []
            windows: dict[int, list[float]] = {}
            """Latencies by the 10-second window of the run they were written in."""
            parts: dict[str, list[float]] = {"tail": [], "pipeline": [], "push": []}
            writer = mp.Process(target=write, args=(str(log), rate, seconds))
            with connect(f"ws://127.0.0.1:{port}/log_stream/live?kind=system",
                         max_size=None) as ws:  # fmt: skip
                ws.recv(timeout=5)  # hello
                writer.start()
                expected = int(rate * seconds)
                deadline = time.monotonic() + seconds + 30
                got = 0
                origin = 0  # write time of the first event
                while got < expected and time.monotonic() < deadline:
                    try:
                        msg = json.loads(ws.recv(timeout=5))
                    except TimeoutError:
                        break
                    if msg["type"] != "events":
                        continue
                    now = time.time_ns()
                    sent = int(msg["sent_ns"])
                    for ev in msg["events"]:
                        written = int(ev["message"])
                        lat.append((now - written) / 1e6)
                        parts["tail"].append((ev["ts_ingest"] - written) / 1e6)
                        parts["pipeline"].append((sent - ev["ts_ingest"]) / 1e6)
                        parts["push"].append((now - sent) / 1e6)
                    got += len(msg["events"])
                    for ev in msg["events"]:
                        written = int(ev["message"])
                        origin = origin or written
                        windows.setdefault((written - origin) // WINDOW_NS, []).append(
                            (now - written) / 1e6
                        )
            writer.join()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    lat.sort()
    if not lat:
        return {"rate": rate, "received": 0}
    q = statistics.quantiles(lat, n=100)
    medians = [statistics.median(windows[k]) for k in sorted(windows)]
    return {
        "rate": rate,
        "received": len(lat),
        "expected": int(rate * seconds),
        "p50_ms": q[49],
        "p90_ms": q[89],
        "p99_ms": q[98],
        "max_ms": lat[-1],
        "window_p50_ms": medians,
        "lag_growing": lag_growing(medians),
        **{f"{k}_p50_ms": statistics.median(v) for k, v in parts.items() if v},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rates", default="5000,20000,50000,100000")
    ap.add_argument("--seconds", type=float, default=20.0)
    a = ap.parse_args()
    print(f"host: {os.cpu_count()} CPUs; {a.seconds:.0f} s per rate")
    best = 0
    for rate in (int(r) for r in a.rates.split(",")):
        r = measure(rate, a.seconds)
        ok = r.get("received", 0) >= r.get("expected", 1) and not r.get("lag_growing")
        if ok:
            best = max(best, rate)
        nan = float("nan")
        print(
            f"rate {rate:>7,}/s: received {r.get('received', 0):,}/{r.get('expected', 0):,} "
            f"p50 {r.get('p50_ms', nan):.1f} ms  p90 {r.get('p90_ms', nan):.1f} ms  "
            f"p99 {r.get('p99_ms', nan):.1f} ms  max {r.get('max_ms', nan):.0f} ms  "
            f"lag {'GROWING' if r.get('lag_growing') else 'stable'}",
            flush=True,
        )
        print(
            f"    p50 by part: written→read {r.get('tail_p50_ms', nan):.1f} ms, "
            f"read→pushed (pipeline + commit) {r.get('pipeline_p50_ms', nan):.1f} ms, "
            f"pushed→received {r.get('push_p50_ms', nan):.1f} ms",
            flush=True,
        )
        windows = ", ".join(f"{m:.1f}" for m in r.get("window_p50_ms", []))
        print(f"    p50 per 10 s window (ms): {windows}", flush=True)
    print(f"highest rate sustained without lag growth: {best:,} events/s")


if __name__ == "__main__":
    main()
