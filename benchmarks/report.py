"""Report benchmark: ``build_report`` + HTML (+ CSV) over a DuckDB store of N events
(default 10 M; bar: the whole report in under 30 s), with the time of every section.

The store comes from benchmarks/query.py's generator (one trading day, 20 symbols, 4
venues, 6 strategies, realistic order lifecycles; cached under /tmp/tradelog-bench).

    python benchmarks/report.py [--events 10000000] [--capital 10000000] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from query import GENERATOR_VERSION, build
from tradelog.app import open_store
from tradelog.config import StoreConfig
from tradelog.reports import export, html
from tradelog.reports.builder import ReportParams, build_report

BAR_S = 30.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--capital", type=float, default=10_000_000.0)
    ap.add_argument("--out", default="", help="where to write report.html and csv/")
    args = ap.parse_args()
    path = Path(f"/tmp/tradelog-bench/query-{args.events}-v{GENERATOR_VERSION}.duckdb")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        t = time.perf_counter()
        build(path, args.events)
        print(f"generated {path} in {time.perf_counter() - t:.1f} s")
    store = open_store(f"duckdb:///{path}", read_only=True, settings=StoreConfig())
    n = store.query("SELECT count(*) AS n FROM events").column("n")[0].as_py()
    print(f"store {path} ({path.stat().st_size / 2**20:,.0f} MiB): {n:,} events; DuckDB "
          f"{duckdb.__version__}, memory_limit {StoreConfig().memory_limit}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")  # fmt: skip
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="tradelog-report-"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = build_report(store, ReportParams(capital=args.capital), time.time_ns())
    t1 = time.perf_counter()
    page = html.render(data)
    (out / "report.html").write_text(page, encoding="utf-8")
    t2 = time.perf_counter()
    files = export.write_csv(data, out / "csv")
    t3 = time.perf_counter()
    store.close()
    print("| section | seconds |")
    print("| --- | ---: |")
    for name, secs in data["timings_s"].items():
        print(f"| {name} | {secs:.2f} |")
    print(f"| collect (all sections) | {t1 - t0:.2f} |")
    print(f"| render HTML ({len(page) / 1024:,.0f} KiB) | {t2 - t1:.2f} |")
    print(f"| CSV ({len(files)} files) | {t3 - t2:.2f} |")
    total = t3 - t0
    print(f"| **total** | **{total:.2f}** |")
    perf = data["performance"].get("parameters", {})
    print(f"equity grid: {perf.get('sampling_interval_s')} s, periods_per_year "
          f"{perf.get('periods_per_year'):,.0f}; written to {out}")  # fmt: skip
    print(f"bar (< {BAR_S:.0f} s): {'met' if total < BAR_S else 'NOT met'}")


if __name__ == "__main__":
    main()
