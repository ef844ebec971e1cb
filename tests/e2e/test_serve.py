"""``tradelog serve`` over a store written by an older version: it is migrated on open, so
the alert endpoints work and alerts can be handled."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from tests.e2e.test_run_crash import free_port, tradelog
from tests.e2e.test_run_http_live import get
from tradelog.storage.duckdb_store import DuckDBStore
from tradelog.storage.schema import migrations

pytestmark = pytest.mark.e2e


def old_store(path: Path) -> None:
    """A store as schema version 2 left it: no alert tables (3), no position checkpoints (5),
    no end mid on orders (6), its snapshot in one row (7)."""
    DuckDBStore(str(path)).close()
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE alerts")
    con.execute("DROP TABLE alert_history")
    con.execute("DROP TABLE account_profiles")
    con.execute("DROP TABLE position_checkpoints")
    con.execute("ALTER TABLE orders DROP COLUMN mid_end")
    con.execute("ALTER TABLE orders DROP COLUMN mid_end_ts")
    con.execute("DROP TABLE state_snapshot_parts")  # 7
    (snapshots_v1,) = [s for s in migrations("duckdb")[0][2] if "state_snapshots" in s]
    con.execute(snapshots_v1)
    con.execute("DELETE FROM schema_migrations WHERE version >= 3")
    con.close()


def test_serve_migrates_an_old_store(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    old_store(db)
    port = free_port()
    proc = subprocess.Popen(
        [tradelog(), "serve", "--store", f"duckdb:///{db}", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.1)
        body = get(port, "/log_stream/alerts")
        assert body["alerts"] == []
        assert get(port, "/log_stream/alerts/summary")["total"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    con = duckdb.connect(str(db), read_only=True)
    latest = max(v for v, _, _ in migrations("duckdb"))
    assert con.execute("SELECT max(version) FROM schema_migrations").fetchone() == (latest,)
