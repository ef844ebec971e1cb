"""``tradelog demo``: comes up with no configuration, its event count grows while the
simulator runs, and SIGTERM stops everything with exit code 0."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_run_crash import free_port, tradelog

pytestmark = pytest.mark.e2e


def _get(port: int, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        data: dict[str, Any] = json.loads(r.read())
        return data


def test_demo_runs_and_stops(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [tradelog(), "demo", "--port", str(port), "--data-dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _get(port, "/health")
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "demo did not come up"
                time.sleep(0.2)
        # the dashboard page itself (what `make demo` users open), not only the API
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert r.headers.get_content_type() == "text/html"
            assert "<title>tradelog · live</title>" in r.read().decode()
        seen = []
        deadline = time.monotonic() + 60
        while len(seen) < 3 or seen[-1] <= seen[0]:
            assert time.monotonic() < deadline, f"events did not grow: {seen}"
            totals = _get(port, "/log_stream/statistics")["totals"]
            assert totals["reconciled"]
            seen.append(totals["events"])
            time.sleep(1.0)
        assert (tmp_path / "mm_engine.jsonl").stat().st_size > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=90)
    assert code == 0
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    assert truth["realtime"] is True
