"""Alerts API over a real DuckDB store filled by the real pipeline (replay with
surveillance on): list, filters, one alert with its evidence events and history, the
lifecycle (append-only history, 404, 409), summary, compliance export (CSV, JSON),
persistence and detector state across a restart, profiles, the admin role and actor.

Scenario: accounts A1 and A2 both belong to owner W. O1 (A1 buys 100 @ 10) fills against
A2 and O2 (A2 sells 100 @ 10) against A1: a wash trade of one owner, seen on both fills.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Replayer
from tradelog.api.app import create_app
from tradelog.api.auth import Token
from tradelog.api.routes_alerts import EXPORT_COLUMNS

CONFIG = """
[[sources]]
name = "engine"
format = "jsonl"

[reference.accounts.A1]
owner = "W"
[reference.accounts.A2]
owner = "W"
[reference.accounts.B1]
owner = "X"
"""

DAY1 = """\
{"event_id":"n1","kind":"order_new","ts":"2024-01-15T14:30:00Z","order_id":"O1","symbol":"XYZ","side":"buy","qty":100,"price":10,"account_id":"A1","strategy_id":"S1"}
{"event_id":"f1","kind":"fill","ts":"2024-01-15T14:30:01Z","order_id":"O1","exec_id":"E1","last_qty":100,"last_px":10,"cum_qty":100,"leaves_qty":0,"counterparty_account":"A2"}
{"event_id":"n2","kind":"order_new","ts":"2024-01-15T14:30:00Z","order_id":"O2","symbol":"XYZ","side":"sell","qty":100,"price":10,"account_id":"A2","strategy_id":"S1"}
{"event_id":"f2","kind":"fill","ts":"2024-01-15T14:30:01Z","order_id":"O2","exec_id":"E2","last_qty":100,"last_px":10,"cum_qty":100,"leaves_qty":0,"counterparty_account":"A1"}
{"event_id":"n3","kind":"order_new","ts":"2024-01-15T14:30:02Z","order_id":"O3","symbol":"XYZ","side":"buy","qty":5,"price":10,"account_id":"B1","strategy_id":"S2"}
{"event_id":"f3","kind":"fill","ts":"2024-01-15T14:30:03Z","order_id":"O3","exec_id":"E3","last_qty":5,"last_px":10,"cum_qty":5,"leaves_qty":0,"counterparty_account":"A1"}
"""
LATER = """\
{"event_id":"n4","kind":"order_new","ts":"2024-01-15T14:35:00Z","order_id":"O4","symbol":"XYZ","side":"buy","qty":50,"price":10,"account_id":"A1","strategy_id":"S1"}
{"event_id":"f4","kind":"fill","ts":"2024-01-15T14:35:01Z","order_id":"O4","exec_id":"E4","last_qty":50,"last_px":10,"cum_qty":50,"leaves_qty":0,"counterparty_account":"A2"}
"""


def only_alert(client: TestClient) -> dict[str, Any]:
    body = client.get("/log_stream/alerts").json()
    assert body["total"] == 1, body
    alert: dict[str, Any] = body["alerts"][0]
    return alert


def test_alert_lifecycle_export_and_restart(replay_into: Replayer) -> None:
    _, store = replay_into({"day1.jsonl": DAY1}, config_text=CONFIG)
    client = TestClient(create_app(store))
    a = only_alert(client)
    assert (a["type"], a["level"], a["status"], a["accounts"]) == (
        "wash_trade", "high", "active", ["A1", "A2"]
    )  # fmt: skip
    assert a["occurrences"] == 2 and a["evidence"]["event_ids"] == ["f1", "f2"]
    assert a["risk_band"] == "critical"  # score 0.75
    aid = a["alert_id"]

    # filters
    assert client.get("/log_stream/alerts?account=A2").json()["total"] == 1
    assert client.get("/log_stream/alerts?account=B1").json()["total"] == 0
    assert client.get("/log_stream/alerts?type=spoofing").json()["total"] == 0
    assert client.get("/log_stream/alerts?level=high&status=active").json()["total"] == 1
    assert client.get("/log_stream/alerts?to=2024-01-15T14:30:00Z").json()["total"] == 0
    assert client.get("/log_stream/alerts?hours=1").json()["total"] == 1

    # one alert: evidence events from the store, history
    one = client.get(f"/log_stream/alerts/{aid}").json()
    assert [e["event_id"] for e in one["evidence_events"]] == ["f1", "f2"]
    assert one["evidence_events"][0]["owner_id"] == "W"
    assert one["evidence_events_missing"] == []
    assert [(h["actor"], h["action"], h["to_status"]) for h in one["history"]] == [
        ("system", "open", "active")
    ]
    assert client.get("/log_stream/alerts/al-nope").status_code == 404

    # lifecycle
    r = client.post(
        f"/log_stream/alerts/{aid}/acknowledge", json={"actor": "ann", "note": "looking"}
    )
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    r = client.post(f"/log_stream/alerts/{aid}/acknowledge", json={"note": "again"})
    assert r.status_code == 409 and "acknowledged" in r.json()["error"]
    assert client.post(f"/log_stream/alerts/{aid}/resolve", json={}).status_code == 422
    assert client.post("/log_stream/alerts/al-nope/resolve", json={"note": "x"}).status_code == 404
    assert client.post(f"/log_stream/alerts/{aid}/escalate", json={"note": "x"}).status_code == 422

    # summary
    summary = client.get("/log_stream/alerts/summary").json()
    assert summary["by_level"] == {"low": 0, "medium": 0, "high": 1, "critical": 0}
    assert summary["by_type"] == {"wash_trade": 1}
    assert summary["by_risk_band"]["critical"] == 1
    assert summary["by_status"] == {"acknowledged": 1}

    # restart: reopen the store, replay a later file: state restored from the snapshot,
    # the continuing pattern updates the same alert; the person's status stays
    _, store = replay_into({"later.jsonl": LATER}, config_text=CONFIG)
    client = TestClient(create_app(store))
    a = only_alert(client)
    assert a["alert_id"] == aid and a["status"] == "acknowledged"
    assert a["occurrences"] == 3 and a["evidence"]["event_ids"] == ["f1", "f2", "f4"]

    r = client.post(f"/log_stream/alerts/{aid}/resolve", json={"actor": "bob", "note": "ok: desk"})
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    assert client.post(f"/log_stream/alerts/{aid}/dismiss", json={"note": "x"}).status_code == 409

    # compliance export
    exported = client.get("/log_stream/alerts/export?from=2024-01-15T00:00:00Z&format=json").json()
    assert exported["total"] == 1
    hist = exported["alerts"][0]["history"]
    assert [
        (h["actor"], h["action"], h["from_status"], h["to_status"], h["note"]) for h in hist
    ] == [
        ("system", "open", None, "active", "detected: level high"),
        ("ann", "acknowledge", "active", "acknowledged", "looking"),
        ("bob", "resolve", "acknowledged", "resolved", "ok: desk"),
    ]
    text = client.get("/log_stream/alerts/export?format=csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1 and rows[0]["alert_id"] == aid and rows[0]["status"] == "resolved"
    assert rows[0]["accounts"] == "A1,A2"
    assert json.loads(rows[0]["evidence"])["event_ids"] == ["f1", "f2", "f4"]
    assert [h["action"] for h in json.loads(rows[0]["history"])] == [
        "open", "acknowledge", "resolve"
    ]  # fmt: skip
    empty = client.get("/log_stream/alerts/export?to=2024-01-01T00:00:00Z&format=csv").text
    assert empty.splitlines() == [",".join(EXPORT_COLUMNS)]

    # profiles
    prof = client.get("/log_stream/profiles/A1").json()
    assert prof["profile"]["orders"] == 2 and prof["profile"]["fills"] == 2
    assert prof["profile"]["order_size"]["median"] == 75.0
    assert client.get("/log_stream/profiles/nobody").status_code == 404

    # the history survives closing and reopening the store
    _, store = replay_into({"empty.jsonl": ""}, config_text=CONFIG)
    again = store.alert(aid)
    assert again is not None and again["status"] == "resolved"
    assert [h["action"] for h in again["history"]] == ["open", "acknowledge", "resolve"]


def test_admin_role_is_needed_and_the_actor_is_the_token_name(replay_into: Replayer) -> None:
    _, store = replay_into({"day1.jsonl": DAY1}, config_text=CONFIG)
    tokens = [Token(token="rrr", role="read", name="reader"),
              Token(token="aaa", role="admin", name="alice")]  # fmt: skip
    client = TestClient(create_app(store, tokens=tokens))
    read = {"Authorization": "Bearer rrr"}
    admin = {"Authorization": "Bearer aaa"}
    aid = client.get("/log_stream/alerts", headers=read).json()["alerts"][0]["alert_id"]
    body = {"actor": "mallory", "note": "seen"}
    assert client.post(f"/log_stream/alerts/{aid}/acknowledge", json=body).status_code == 401
    r = client.post(f"/log_stream/alerts/{aid}/acknowledge", json=body, headers=read)
    assert r.status_code == 403
    r = client.post(f"/log_stream/alerts/{aid}/acknowledge", json=body, headers=admin)
    assert r.status_code == 200
    assert r.json()["history"][-1]["actor"] == "alice"
