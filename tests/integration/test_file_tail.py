"""File following with real files: growth, rotation, truncation, partial lines, restarts.

Each test drives a real ``LiveService`` (pipeline, committer, tailer, DuckDB store) with
its live loop in a thread, changes files the way writers and logrotate do, and checks
what was stored: every line exactly once.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradelog.app import open_store
from tradelog.config import Config, SourceConfig
from tradelog.service import LiveService, build_live

pytestmark = pytest.mark.integration


def line(i: int, tag: str = "") -> str:
    ev = {"ts": f"2025-03-03T14:30:{i % 60:02d}.{i:06d}Z", "kind": "system",
          "message": f"{tag}line {i}", "component": "t"}  # fmt: skip
    return json.dumps(ev) + "\n"


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()


class Harness:
    def __init__(self, tmp: Path, start_at: str = "beginning") -> None:
        self.tmp = tmp
        self.logs = tmp / "logs"
        self.logs.mkdir(exist_ok=True)
        self.start_at = start_at
        self.service: LiveService | None = None

    def config(self) -> Config:
        cfg = Config()
        cfg.sources = [
            SourceConfig(
                name="eng",
                path=str(self.logs / "app*.log"),
                start_at=self.start_at,  # type: ignore[arg-type]
                rotate_wait_s=0.2,
            )
        ]
        cfg.store.url = f"duckdb:///{self.tmp / 'store.duckdb'}"
        cfg.pipeline.snapshot_interval_s = 0.5
        return cfg

    def start(self) -> LiveService:
        cfg = self.config()
        self.service = build_live(cfg, open_store(cfg.store.url))
        self.service.start()
        return self.service

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    def messages(self) -> list[str]:
        assert self.service is not None
        rows = self.service.store.query(  # type: ignore[attr-defined]
            "SELECT message FROM events ORDER BY seq"
        ).column("message")
        return [str(m) for m in rows.to_pylist()]

    def wait_for(self, n: int, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.messages()
            if len(got) >= n:
                time.sleep(0.2)  # anything extra would show up now
                return self.messages()
            time.sleep(0.02)
        return self.messages()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.stop()


def expect(prefix: str, rng: range) -> list[str]:
    return [f"{prefix}line {i}" for i in rng]


def test_append_while_running(harness: Harness) -> None:
    log = harness.logs / "app.log"
    append(log, "".join(line(i) for i in range(5)))
    harness.start()
    assert harness.wait_for(5) == expect("", range(5))
    append(log, "".join(line(i) for i in range(5, 12)))
    assert harness.wait_for(12) == expect("", range(12))


def test_partial_line_is_held_until_its_newline(harness: Harness) -> None:
    log = harness.logs / "app.log"
    full = line(1)
    append(log, line(0) + full[:25])
    harness.start()
    assert harness.wait_for(1) == expect("", range(1))
    time.sleep(0.2)
    assert harness.messages() == expect("", range(1)), "a partial line must not be read"
    append(log, full[25:])
    assert harness.wait_for(2) == expect("", range(2))
    stats = harness.service.store.statistics()  # type: ignore[union-attr]
    assert stats["sources"]["eng"]["rejects"] == 0


def test_new_file_matching_the_glob(harness: Harness) -> None:
    append(harness.logs / "app-1.log", line(0, "a"))
    harness.start()
    assert harness.wait_for(1) == ["aline 0"]
    append(harness.logs / "app-2.log", line(1, "b"))
    append(harness.logs / "other.log", line(2, "x"))  # does not match app*.log
    assert sorted(harness.wait_for(2)) == ["aline 0", "bline 1"]


def test_rename_rotation_drains_the_old_file_then_the_new(harness: Harness) -> None:
    log = harness.logs / "app.log"
    append(log, "".join(line(i, "old") for i in range(3)))
    harness.start()
    assert harness.wait_for(3) == expect("old", range(3))
    # the writer appends, then logrotate renames and the writer reopens a new file
    append(log, "".join(line(i, "old") for i in range(3, 6)))
    os.rename(log, harness.logs / "rotated.1")  # no longer matches the glob
    append(log, "".join(line(i, "new") for i in range(4)))
    got = harness.wait_for(10)
    assert got == expect("old", range(6)) + expect("new", range(4))
    time.sleep(0.5)  # the drained file is closed after rotate_wait
    svc = harness.service
    assert svc is not None
    assert svc.tailers[0].stats.rotations == 1
    assert len(svc.tailers[0].files) == 1


def test_copytruncate_is_detected_and_recorded(harness: Harness) -> None:
    log = harness.logs / "app.log"
    append(log, "".join(line(i, "a") for i in range(4)))
    harness.start()
    assert harness.wait_for(4) == expect("a", range(4))
    shutil.copy(log, harness.logs / "copy.1")
    with open(log, "r+b") as fh:
        fh.truncate(0)
    append(log, line(0, "b"))
    got = harness.wait_for(5)
    assert got == [*expect("a", range(4)), "bline 0"]
    svc = harness.service
    assert svc is not None
    assert svc.tailers[0].stats.truncations == 1
    streams = {p.stream for p in svc.store.load_positions()}
    assert len(streams) == 2 and any("#g1" in s for s in streams)


def test_deleted_and_recreated(harness: Harness) -> None:
    log = harness.logs / "app.log"
    append(log, line(0, "a"))
    harness.start()
    assert harness.wait_for(1) == ["aline 0"]
    os.remove(log)
    append(log, line(1, "b"))
    assert harness.wait_for(2) == ["aline 0", "bline 1"]


def test_briefly_unreadable_path_is_retried(harness: Harness) -> None:
    """A path that cannot be opened (here: a directory where the log will be) is skipped
    and retried; nothing is lost once it becomes a readable file."""
    path = harness.logs / "app.log"
    path.mkdir()
    harness.start()
    time.sleep(0.2)
    path.rmdir()
    append(path, line(0))
    assert harness.wait_for(1) == ["line 0"]


def test_restart_resumes_exactly_where_it_committed(harness: Harness) -> None:
    log = harness.logs / "app.log"
    append(log, "".join(line(i) for i in range(6)))
    harness.start()
    assert harness.wait_for(6) == expect("", range(6))
    harness.stop()
    append(log, "".join(line(i) for i in range(6, 9)))
    harness.start()
    got = harness.wait_for(9)
    assert got == expect("", range(9))
    stats = harness.service.store.statistics()["sources"]["eng"]  # type: ignore[union-attr]
    assert stats["lines_read"] == 9 and stats["duplicates"] == 0 and stats["reconciled"]


def test_start_at_end_skips_existing_content(tmp_path: Path) -> None:
    h = Harness(tmp_path, start_at="end")
    log = h.logs / "app.log"
    append(log, "".join(line(i, "old") for i in range(3)))
    h.start()
    try:
        time.sleep(0.3)
        assert h.messages() == []
        append(log, line(0, "new"))
        assert h.wait_for(1) == ["newline 0"]
    finally:
        h.stop()


def test_short_first_line_gets_a_stable_identity(harness: Harness) -> None:
    """A file whose first line is shorter than the fingerprint size keeps the same stream
    key when it grows, so a restart resumes instead of re-reading."""
    log = harness.logs / "app.log"
    append(log, line(0))
    harness.start()
    assert harness.wait_for(1) == ["line 0"]
    append(log, "".join(line(i) for i in range(1, 40)))
    harness.wait_for(40)
    harness.stop()
    harness.start()
    time.sleep(0.3)
    stats = harness.service.store.statistics()["sources"]["eng"]  # type: ignore[union-attr]
    assert stats["lines_read"] == 40 and stats["events"] == 40 and stats["duplicates"] == 0
