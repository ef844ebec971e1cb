"""A small store made by the real pipeline from the benchmark generator's events, for the
tests that check each query path against its former form or a Python reference."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

from tradelog.app import plan_replay, replay
from tradelog.config import Config, SourceConfig
from tradelog.storage.duckdb_store import DuckDBStore

ROOT = Path(__file__).resolve().parents[3]


def generated_log(n: int = 3000, seed: int = 5) -> str:
    """``n`` events of ``benchmarks/gen.py`` as JSON lines (deterministic for a seed)."""
    gen = SimpleNamespace(**runpy.run_path(str(ROOT / "benchmarks/gen.py")))
    return "".join(gen.jsonl_line(i, ev) for i, ev in enumerate(gen.events(n, seed)))


def replay_generated(folder: Path, store_path: Path, seed: int) -> None:
    """Replays ``generated_log(seed=seed)`` through ``tradelog replay``'s code into a new
    store."""
    log = folder / "gen.jsonl"
    log.write_text(generated_log(seed=seed), encoding="utf-8")
    cfg = Config()
    cfg.sources = [SourceConfig(name="jsonl", format="jsonl")]
    store = DuckDBStore(str(store_path))
    try:
        replay(cfg, plan_replay(cfg, [str(log)], "jsonl"), store)
    finally:
        store.close()
