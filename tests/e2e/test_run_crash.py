"""``kill -9`` of ``tradelog run`` in the middle of a stream, restart, repeat: the store
must hold every line exactly once, with no duplicates needed to get there (events and the
file position are committed in one transaction). Also: SIGTERM finishes and exits 0."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import duckdb
import pytest

pytestmark = pytest.mark.e2e

TOTAL = 4000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tradelog() -> str:
    return str(Path(sys.executable).with_name("tradelog"))


def write_config(tmp: Path) -> Path:
    cfg = tmp / "tradelog.toml"
    cfg.write_text(
        f"""
[store]
url = "duckdb:///{tmp / "store.duckdb"}"

[pipeline]
snapshot_interval_s = 0.3

[[sources]]
name = "eng"
path = "{tmp / "logs" / "engine*.log"}"
poll_interval_ms = 2
""",
        encoding="utf-8",
    )
    return cfg


def start(cfg: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [tradelog(), "run", "-c", str(cfg), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else "exited"
                raise AssertionError(err) from None
            time.sleep(0.05)
    raise AssertionError("tradelog run did not come up")


def stats(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/log_stream/statistics", timeout=5) as r:
        data: dict[str, Any] = json.loads(r.read())
        return data


def writer(path: Path, done: threading.Event) -> None:
    """Appends TOTAL lines in small bursts, sometimes splitting a line across writes."""
    rng = random.Random(3)
    with open(path, "a", encoding="utf-8") as fh:
        for i in range(TOTAL):
            ts = f"2025-03-03T14:{i // 600 % 60:02d}:{i // 10 % 60:02d}.{i:06d}Z"
            record = {"ts": ts, "kind": "system", "message": f"m{i}", "component": "w"}
            text = json.dumps(record) + "\n"
            if rng.random() < 0.05:
                cut = rng.randrange(1, len(text) - 1)
                fh.write(text[:cut])
                fh.flush()
                time.sleep(0.002)
                fh.write(text[cut:])
            else:
                fh.write(text)
            if i % 50 == 0:
                fh.flush()
                time.sleep(0.01)
        fh.flush()
    done.set()


def test_kill_9_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    cfg = write_config(tmp_path)
    log = tmp_path / "logs" / "engine.log"
    log.touch()
    done = threading.Event()
    threading.Thread(target=writer, args=(log, done), daemon=True).start()
    rng = random.Random(11)
    port = free_port()
    proc = start(cfg, port)
    kills = 0
    while not done.is_set() or kills < 3:
        time.sleep(rng.uniform(0.3, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        port = free_port()
        proc = start(cfg, port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if stats(port)["sources"].get("eng", {}).get("events") == TOTAL:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, proc.stderr.read().decode() if proc.stderr else ""
    con = duckdb.connect(str(tmp_path / "store.duckdb"), read_only=True)
    total, distinct = con.execute("SELECT count(*), count(DISTINCT message) FROM events").fetchone()  # type: ignore[misc]
    counters = con.execute(
        "SELECT sum(lines_read), sum(events), sum(rejects), sum(duplicates), sum(ignored) "
        "FROM source_positions"
    ).fetchone()
    con.close()
    assert kills >= 3
    assert (total, distinct) == (TOTAL, TOTAL)
    assert counters == (TOTAL, TOTAL, 0, 0, 0)


def test_sigterm_commits_the_batch_in_flight_and_exits_0(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    cfg = write_config(tmp_path)
    log = tmp_path / "logs" / "engine.log"
    log.write_text("".join(
        json.dumps({"ts": "2025-03-03T14:00:00Z", "kind": "system", "message": f"m{i}"}) + "\n"
        for i in range(500)
    ), encoding="utf-8")  # fmt: skip
    port = free_port()
    proc = start(cfg, port)
    deadline = time.monotonic() + 15
    while (
        time.monotonic() < deadline and stats(port)["sources"].get("eng", {}).get("events") != 500
    ):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    con = duckdb.connect(str(tmp_path / "store.duckdb"), read_only=True)
    n = con.execute("SELECT count(*) FROM events").fetchone()
    snap = con.execute("SELECT DISTINCT seq FROM state_snapshot_parts").fetchone()
    con.close()
    assert n == (500,)
    assert snap == (500,), "the last batch carries a state snapshot"
