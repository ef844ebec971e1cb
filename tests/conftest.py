"""Shared fixtures: run the real pipeline (replay) on files into a real DuckDB store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tradelog.app import ReplaySummary, open_store, plan_replay, replay
from tradelog.config import Config, SourceConfig, load_config
from tradelog.storage.duckdb_store import DuckDBStore

Replayer = Callable[..., tuple[ReplaySummary, DuckDBStore]]


@pytest.fixture
def replay_into(tmp_path: Path) -> Iterator[Replayer]:
    """``replay_into(files, fmt="jsonl" | config_text=..., store_name="t")`` writes the
    files (name → text or bytes) under tmp_path, replays them through the whole pipeline
    into a DuckDB file and returns (summary, open store). Calling it again with the same
    store_name replays into the same store."""
    opened: list[DuckDBStore] = []

    def run(
        files: dict[str, str | bytes],
        fmt: str | None = "jsonl",
        config_text: str | None = None,
        store_name: str = "t",
        source: str | None = None,
    ) -> tuple[ReplaySummary, DuckDBStore]:
        for st in opened:
            st.close()
        opened.clear()
        paths = []
        for name, content in files.items():
            p = tmp_path / name
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                p.write_text(content, encoding="utf-8")
            else:
                p.write_bytes(content)
            paths.append(str(p))
        if config_text is not None:
            cfg_path = tmp_path / "tradelog.toml"
            cfg_path.write_text(config_text, encoding="utf-8")
            cfg = load_config(cfg_path, environ={})
        else:
            cfg = Config()
            assert fmt is not None
            cfg.sources = [SourceConfig(name=fmt, format=fmt)]  # type: ignore[arg-type]
            source = fmt
        cfg.store.url = f"duckdb:///{tmp_path / (store_name + '.duckdb')}"
        plan = plan_replay(cfg, paths, source)
        store = open_store(cfg.store.url)
        summary = replay(cfg, plan, store)
        assert isinstance(store, DuckDBStore)
        opened.append(store)
        return summary, store

    yield run
    for st in opened:
        st.close()
