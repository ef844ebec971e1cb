"""``tradelog run`` over HTTP: ingest (good, partly bad, oversized, retried bodies), the live
WebSocket (filters, anomaly marks, metric snapshots) and Prometheus metrics."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.e2e.test_run_crash import free_port, start

pytestmark = pytest.mark.e2e


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    (tmp_path / "logs").mkdir()
    cfg = tmp_path / "tradelog.toml"
    cfg.write_text(
        f"""
[store]
url = "duckdb:///{tmp_path / "store.duckdb"}"

[[sources]]
name = "eng"
path = "{tmp_path / "logs" / "*.log"}"
poll_interval_ms = 2

[[sources]]
name = "api"
type = "http"
max_body_bytes = 20000
""",
        encoding="utf-8",
    )
    port = free_port()
    proc = start(cfg, port)
    yield port, tmp_path
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def post(port: int, body: bytes, ctype: str = "application/json") -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/log_stream/events",
        data=body,
        method="POST",
        headers={"content-type": ctype},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        body = r.read()
        return json.loads(body) if r.headers.get_content_type() == "application/json" else body


def ev(i: int, **extra: Any) -> dict[str, Any]:
    return {"ts": f"2025-03-03T14:30:00.{i:06d}Z", "kind": "system", "message": f"m{i}", **extra}


def test_ingest_good_partly_bad_retried_and_oversized(service: tuple[int, Path]) -> None:
    port, _ = service
    status, body = post(port, json.dumps([ev(1), ev(2)]).encode())
    assert status == 200 and body["accepted"] == 2 and body["rejected"] == []

    mixed = [ev(3), {"kind": "fill", "ts": "2025-03-03T14:30:00Z"}, ev(4), "not an object"]
    status, body = post(port, json.dumps(mixed).encode())
    assert status == 200
    assert body["accepted"] == 2
    assert [(r["index"], r["reason"]) for r in body["rejected"]] == [
        (1, "missing_field"),
        (3, "malformed"),
    ]

    # the same body again: nothing new, everything recognised as a duplicate
    status, body = post(port, json.dumps(mixed).encode())
    assert status == 200 and body["accepted"] == 0 and body["duplicates"] == 4

    ndjson = b"\n".join(json.dumps(ev(i)).encode() for i in (5, 6)) + b"\n"
    status, body = post(port, ndjson, "application/x-ndjson")
    assert status == 200 and body["accepted"] == 2

    status, body = post(port, b"[{not json", "application/json")
    assert status == 400 and "invalid JSON" in body["error"]
    status, body = post(port, json.dumps([ev(i) for i in range(1000)]).encode())
    assert status == 413 and "limit" in body["error"]

    stats = get(port, "/log_stream/statistics")["sources"]["api"]
    assert stats["events"] == 6 and stats["rejects"] == 2 and stats["reconciled"]


def test_live_websocket_streams_committed_events_with_filters(service: tuple[int, Path]) -> None:
    port, tmp = service
    url = f"ws://127.0.0.1:{port}/log_stream/live"
    with connect(url + "?kind=order_new") as orders, connect(url) as everything:
        assert json.loads(orders.recv(timeout=5))["type"] == "hello"
        assert json.loads(everything.recv(timeout=5))["type"] == "hello"
        lines = [
            {"ts": "2025-03-03T14:30:00Z", "kind": "quote", "symbol": "AAPL", "bid": 100,
             "ask": 100.02},
            {"ts": "2025-03-03T14:30:01Z", "kind": "order_new", "order_id": "O1", "symbol": "AAPL",
             "side": "buy", "qty": 10, "price": 100.01},
            {"ts": "2025-03-03T14:30:01.5Z", "kind": "order_rejected", "order_id": "O1",
             "reason": "risk"},
        ]  # fmt: skip
        with open(tmp / "logs" / "a.log", "a", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(x) + "\n" for x in lines))
        got_orders = _collect(orders, "events", 1)
        assert [e["kind"] for e in got_orders] == ["order_new"]
        got_all = _collect(everything, "events", 3)
        assert [e["kind"] for e in got_all] == ["quote", "order_new", "order_rejected"]
        assert got_all[1]["order_id"] == "O1" and got_all[1]["order_status"] == "pending"
        marks = _collect(everything, "anomalies", 1, key="marks")
        assert any(m["type"] == "order_rejected" for m in marks)
        metrics = _collect(everything, "metrics", 1, key=None)
        assert metrics and "pipeline" in metrics[0]


def _collect(ws: Any, kind: str, n: int, key: str | None = "events") -> list[Any]:
    out: list[Any] = []
    deadline = time.monotonic() + 10
    while len(out) < n and time.monotonic() < deadline:
        msg = json.loads(ws.recv(timeout=5))
        if msg["type"] != kind:
            continue
        out.extend(msg[key] if key else [msg])
    return out


def test_prometheus_metrics(service: tuple[int, Path]) -> None:
    port, _ = service
    post(port, json.dumps([ev(1)]).encode())
    text = get(port, "/metrics").decode()
    assert 'tradelog_pipeline_events_total{kind="system",source="api"} 1.0' in text
    assert "tradelog_store_commit_seconds_bucket" in text
    assert "tradelog_pipeline_queue_depth" in text
