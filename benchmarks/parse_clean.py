"""Parse + clean stage alone: N generated events (benchmarks/gen.py) as a regex text log
(benchmarks/text_log.toml), as JSON lines (fast path) and as logfmt, each read in chunks
the way ``tradelog replay`` reads a file (``sources.file_replay.read_chunks`` feeding a
``pipeline.ingest.StreamDecoder``), with no dedup, enrichment or storage after it.

Prints CPU µs per line (process time, so other jobs on the host disturb it less) and
lines/s per format; for the formats that go through a parser and the general ``Cleaner``
also the split between parsing and cleaning. Best of ``--runs``.

    python benchmarks/parse_clean.py [--lines 200000] [--runs 3] [--profile regex]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen import write  # noqa: E402
from tradelog.app import make_decoder  # noqa: E402
from tradelog.config import Config, SourceConfig, load_config  # noqa: E402
from tradelog.pipeline.batch import CleanChunk  # noqa: E402
from tradelog.pipeline.ingest import StreamDecoder, clean_items  # noqa: E402
from tradelog.sources.file_replay import identify, read_chunks  # noqa: E402

TS_INGEST = 1_741_100_000_000_000_000


def logfmt_file(jsonl: Path) -> Path:
    """The JSON-lines events rewritten as logfmt (``ts=… kind=… order_id=…``), cached."""
    out = jsonl.with_suffix(".logfmt")
    if out.exists() and out.stat().st_mtime >= jsonl.stat().st_mtime:
        return out
    with open(jsonl, encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for line in src:
            record = json.loads(line)
            dst.write(" ".join(f"{k}={v}" for k, v in record.items()) + "\n")
    return out


class Timed:
    """A decode function for ``read_chunks`` that times parser and cleaner apart."""

    def __init__(self, decoder: StreamDecoder) -> None:
        self.decoder = decoder
        self.parse_s = 0.0
        self.clean_s = 0.0
        self.events = 0
        self.rejects = 0
        self.ignored = 0

    def decode(self, data: bytes, base: int, final: bool) -> tuple[CleanChunk, int]:
        d = self.decoder
        if d.parser is None:  # fast path: parse and clean are one step
            t = time.process_time()
            chunk, consumed = d.decode(data, base, final, TS_INGEST)
            self.clean_s += time.process_time() - t
        else:
            t = time.process_time()
            items, consumed = d.parser.parse(data, base, final)
            t1 = time.process_time()
            chunk = clean_items(items, d.info, d.cleaner, base + consumed, TS_INGEST)
            self.parse_s += t1 - t
            self.clean_s += time.process_time() - t1
        self.events += len(chunk.events)
        self.rejects += len(chunk.rejects)
        self.ignored += chunk.ignored
        return chunk, consumed


def run_once(config: Config, src: SourceConfig, path: Path) -> Timed:
    timed = Timed(make_decoder(config, src, identify(str(path))))
    for _ in read_chunks(str(path), timed.decode):
        pass
    return timed


def measure(
    label: str, config: Config, src: SourceConfig, path: Path, lines: int, runs: int
) -> float:
    """Best-of-``runs`` µs per line of parse + clean (printed with the split)."""
    best: Timed | None = None
    for _ in range(runs):
        t = run_once(config, src, path)
        if best is None or t.parse_s + t.clean_s < best.parse_s + best.clean_s:
            best = t
    assert best is not None
    total = best.parse_s + best.clean_s
    us = total / lines * 1e6
    split = (
        "(one step)"
        if best.parse_s == 0.0
        else f"parse {best.parse_s / lines * 1e6:5.2f} + clean {best.clean_s / lines * 1e6:5.2f}"
    )
    print(
        f"{label:8s} {us:6.2f} µs/line = {lines / total:>9,.0f} lines/s  {split}  "
        f"[{best.events:,} events, {best.rejects:,} rejects, {best.ignored:,} ignored]"
    )
    return us


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", default=str(HERE / "data"))
    ap.add_argument("--formats", default="regex,jsonl,logfmt")
    ap.add_argument(
        "--profile", default=None, help="format to run once under cProfile (top 25 by tottime)"
    )
    a = ap.parse_args()

    jsonl = Path(a.data) / f"events_{a.lines}.jsonl"
    text = Path(a.data) / f"events_{a.lines}.log"
    if not (jsonl.exists() and text.exists()):
        print(f"generating {a.lines:,} events into {a.data} …", flush=True)
        write(a.lines, a.data)
    config = load_config(HERE / "text_log.toml", environ={})
    inputs: dict[str, tuple[SourceConfig, Path]] = {
        "regex": (config.sources[0], text),
        "jsonl": (msgspec.convert({"name": "engine_json"}, SourceConfig), jsonl),
        "logfmt": (
            msgspec.convert({"name": "engine_logfmt", "format": "logfmt"}, SourceConfig),
            logfmt_file(jsonl),
        ),
    }
    load = os.getloadavg()
    print(
        f"parse + clean, {a.lines:,} lines, best of {a.runs}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    for label in a.formats.split(","):
        src, path = inputs[label]
        measure(label, config, src, path, a.lines, a.runs)
    if a.profile:
        src, path = inputs[a.profile]
        run: Callable[[], Timed] = lambda: run_once(config, src, path)  # noqa: E731
        prof = cProfile.Profile()
        prof.runcall(run)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
