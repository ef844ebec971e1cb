"""REST API over a real DuckDB store filled by the real pipeline (``replay_into``).

Scenario (2024-01-15, UTC), expected values worked out by hand:

    14:20:00.000  quote IBM XNAS 149.90/150.10        (10 min before the end: outside the
                                                       default 5-minute window)
    14:29:00.000  quote AAPL XNAS 100.00/100.02       mid 100.01
    14:29:30.000  quote MSFT ARCA 399.90/400.10       mid 400.00
    14:30:00.000  O1  new buy 100 AAPL XNAS @100.02, strategy S1, account A1
    14:30:00.004  O1  ack (venue id V-1)              ack latency 4 ms
    14:30:00.200  O1r replace of O1: qty 150 @100.03
    14:30:00.500  O1r fill 150 @100.03                fill latency 500 ms
                  slippage +1 × (100.03 − 100.01) / 100.01 × 1e4 = 1.99980002 bps
    14:30:03.000  O2  new sell 10 MSFT ARCA @400.00, strategy S2, account A2
    14:30:03.002  O2  ack                             ack latency 2 ms
    14:30:04.000  O2c cancel request for O2
    14:30:04.010  O2c cancelled                       cancel latency 10 ms

plus a copy of the AAPL quote line (same event_id: a duplicate) and a line that is not
JSON (a malformed reject): 13 lines = 11 events + 1 reject + 1 duplicate.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Replayer
from tradelog.api.app import create_app
from tradelog.model.timefmt import ns_to_iso

DAY_NS = 1_705_276_800 * 10**9  # 2024-01-15T00:00:00Z


def at(hour: int, minute: int, second: int, ms: int = 0) -> int:
    return DAY_NS + (hour * 3600 + minute * 60 + second) * 10**9 + ms * 10**6


LATEST = at(14, 30, 4, 10)

ENGINE = """\
{"event_id":"old","kind":"quote","ts":"2024-01-15T14:20:00Z","symbol":"IBM","venue":"XNAS","bid":149.90,"ask":150.10}
{"event_id":"q1","kind":"quote","ts":"2024-01-15T14:29:00Z","symbol":"AAPL","venue":"XNAS","bid":100.00,"ask":100.02}
{"event_id":"q2","kind":"quote","ts":"2024-01-15T14:29:30Z","symbol":"MSFT","venue":"ARCA","bid":399.90,"ask":400.10}
{"event_id":"n1","kind":"order_new","ts":"2024-01-15T14:30:00.000Z","order_id":"O1","symbol":"AAPL","venue":"XNAS","side":"buy","qty":100,"price":100.02,"order_type":"limit","strategy_id":"S1","account_id":"A1"}
{"event_id":"a1","kind":"order_ack","ts":"2024-01-15T14:30:00.004Z","order_id":"O1","venue_order_id":"V-1"}
{"event_id":"r1","kind":"order_replace","ts":"2024-01-15T14:30:00.200Z","order_id":"O1r","orig_order_id":"O1","qty":150,"price":100.03}
{"event_id":"f1","kind":"fill","ts":"2024-01-15T14:30:00.500Z","order_id":"O1r","exec_id":"E1","last_qty":150,"last_px":100.03,"cum_qty":150,"leaves_qty":0}
{"event_id":"n2","kind":"order_new","ts":"2024-01-15T14:30:03.000Z","order_id":"O2","symbol":"MSFT","venue":"ARCA","side":"sell","qty":10,"price":400.00,"order_type":"limit","strategy_id":"S2","account_id":"A2"}
{"event_id":"a2","kind":"order_ack","ts":"2024-01-15T14:30:03.002Z","order_id":"O2"}
{"event_id":"c2","kind":"order_cancel_request","ts":"2024-01-15T14:30:04.000Z","order_id":"O2c","orig_order_id":"O2"}
{"event_id":"x2","kind":"order_cancelled","ts":"2024-01-15T14:30:04.010Z","order_id":"O2c","orig_order_id":"O2"}
{"event_id":"q1","kind":"quote","ts":"2024-01-15T14:29:00Z","symbol":"AAPL","venue":"XNAS","bid":100.00,"ask":100.02}
this is not json
"""
O1_SLIP = 1.99980002  # (100.03 − 100.01) / 100.01 × 1e4


@pytest.fixture
def client(replay_into: Replayer) -> Iterator[TestClient]:
    _, store = replay_into({"engine.jsonl": ENGINE}, fmt="jsonl")
    with TestClient(create_app(store)) as c:
        yield c


def get(client: TestClient, path: str, **params: Any) -> dict[str, Any]:
    resp = client.get(path, params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [e["event_id"] for e in body["events"]]


# ---------------------------------------------------------------------------


def test_health(client: TestClient) -> None:
    body = get(client, "/health")
    assert body["status"] == "ok"
    assert body["store"].startswith("duckdb:///")
    assert body["latest_event_ns"] == LATEST


def test_statistics_totals_and_per_source_identity(client: TestClient) -> None:
    body = get(client, "/log_stream/statistics")
    src = body["sources"]["jsonl"]
    assert (src["lines_read"], src["events"], src["rejects"], src["duplicates"]) == (13, 11, 1, 1)
    assert src["ignored"] == 0
    assert src["reconciled"] is True
    assert body["totals"] == {
        "lines_read": 13,
        "events": 11,
        "rejects": 1,
        "duplicates": 1,
        "ignored": 0,
        "reconciled": True,
    }
    assert body["events_total"] == 11
    assert body["events_by_kind"] == {
        "fill": 1,
        "order_ack": 2,
        "order_cancel_request": 1,
        "order_cancelled": 1,
        "order_new": 2,
        "order_replace": 1,
        "quote": 3,
    }
    assert body["rejects_by_reason"] == {"malformed": 1}
    assert body["finished_orders"] == 2
    assert body["first_event_ns"] == at(14, 20, 0)
    assert body["last_event_ns"] == LATEST
    assert body["first_event_iso"] == "2024-01-15T14:20:00.000000000Z"
    assert body["last_event_iso"] == "2024-01-15T14:30:04.010000000Z"


# ---- /log_stream/recent ----------------------------------------------------

NEWEST_FIRST = ["x2", "c2", "a2", "n2", "f1", "r1", "a1", "n1", "q2", "q1"]


def test_recent_default_window_is_last_five_minutes_newest_first(client: TestClient) -> None:
    body = get(client, "/log_stream/recent")
    # window ends just after the latest event (14:30:04.010) and starts 5 min before
    assert body["to_ns"] == LATEST + 1
    assert body["from_ns"] == LATEST + 1 - 5 * 60 * 10**9
    assert ids(body) == NEWEST_FIRST  # "old" (14:20) is outside
    assert body["count"] == 10
    ts = [e["ts"] for e in body["events"]]
    assert ts == sorted(ts, reverse=True)
    first = body["events"][0]
    assert first["ts_iso"] == ns_to_iso(LATEST)
    assert first["kind"] == "order_cancelled"
    assert "id_hash" not in first


def test_recent_minutes_widens_or_narrows_the_window(client: TestClient) -> None:
    assert ids(get(client, "/log_stream/recent", minutes=15)) == [*NEWEST_FIRST, "old"]
    # the last 2 seconds: 14:30:02.010 onwards
    assert ids(get(client, "/log_stream/recent", minutes=2 / 60)) == ["x2", "c2", "a2", "n2"]


def test_recent_from_to(client: TestClient) -> None:
    body = get(
        client,
        "/log_stream/recent",
        **{"from": "2024-01-15T14:30:00Z", "to": "2024-01-15T14:30:00.500Z"},
    )
    assert ids(body) == ["r1", "a1", "n1"]  # from inclusive, to exclusive (f1 at .500)
    assert (body["from_ns"], body["to_ns"]) == (at(14, 30, 0), at(14, 30, 0, 500))
    # an offset is honoured: 15:30+01:00 is 14:30Z
    body = get(
        client,
        "/log_stream/recent",
        **{"from": "2024-01-15T15:30:03+01:00", "to": "2024-01-15T15:30:04+01:00"},
    )
    assert ids(body) == ["a2", "n2"]


def test_recent_minutes_before_an_explicit_to(client: TestClient) -> None:
    # to stays exclusive with a relative window: x2 at exactly 04.010 is left out
    body = get(client, "/log_stream/recent", to="2024-01-15T14:30:04.010Z", minutes=1)
    assert (body["from_ns"], body["to_ns"]) == (LATEST - 60 * 10**9, LATEST)
    assert ids(body) == ["c2", "a2", "n2", "f1", "r1", "a1", "n1", "q2"]


@pytest.mark.parametrize("params", [{"minutes": 1e30}, {"minutes": 1e300}, {"hours": 1e307}])
def test_recent_absurdly_long_window_means_everything(
    client: TestClient, params: dict[str, Any]
) -> None:
    body = get(client, "/log_stream/recent", **params)
    assert ids(body) == [*NEWEST_FIRST, "old"]
    assert body["to_ns"] == LATEST + 1


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"symbol": "MSFT"}, ["x2", "c2", "a2", "n2", "q2"]),  # acks/cancels get the order's
        ({"venue": "ARCA"}, ["x2", "c2", "a2", "n2", "q2"]),  # context from enrichment
        ({"strategy": "S1"}, ["f1", "r1", "a1", "n1"]),
        ({"strategy": "S2", "kind": "order_ack"}, ["a2"]),
        ({"kind": "fill"}, ["f1"]),
        ({"kind": ["order_new", "order_cancelled"]}, ["x2", "n2", "n1"]),
        ({"symbol": "AAPL", "venue": "XNAS", "minutes": 15}, ["f1", "r1", "a1", "n1", "q1"]),
        ({"symbol": "NOPE"}, []),
    ],
)
def test_recent_filters(client: TestClient, params: dict[str, Any], expected: list[str]) -> None:
    body = get(client, "/log_stream/recent", **params)
    assert ids(body) == expected
    assert body["count"] == len(expected)


def test_recent_limit_keeps_the_newest(client: TestClient) -> None:
    assert ids(get(client, "/log_stream/recent", limit=3)) == ["x2", "c2", "a2"]
    assert ids(get(client, "/log_stream/recent", limit=1, kind="quote", minutes=15)) == ["q2"]


# ---- /log_stream/orders/{id} ----------------------------------------------


def test_order_view_of_a_replaced_and_filled_order(client: TestClient) -> None:
    body = get(client, "/log_stream/orders/O1")
    assert {k: body[k] for k in ("order_id", "status", "symbol", "side", "qty")} == {
        "order_id": "O1",
        "status": "filled",
        "symbol": "AAPL",
        "side": "buy",
        "qty": 150.0,  # after the replace
    }
    assert (body["filled_qty"], body["avg_px"], body["fill_rate"]) == (150.0, 100.03, 1.0)
    assert body["ack_latency_ms"] == pytest.approx(4.0)
    assert body["fill_latency_ms"] == pytest.approx(500.0)
    assert body["cancel_latency_ms"] is None
    assert body["arrival_mid"] == pytest.approx(100.01)
    assert body["slippage_bps"] == pytest.approx(O1_SLIP)
    assert "positive = cost" in body["slippage_convention"]
    assert body["aliases"] == ["O1r"]
    timeline = body["timeline"]
    assert [t["event_id"] for t in timeline] == ["n1", "a1", "r1", "f1"]
    seqs = [t["seq"] for t in timeline]
    assert seqs == sorted(seqs)
    assert [t["kind"] for t in timeline] == ["order_new", "order_ack", "order_replace", "fill"]
    assert timeline[1]["latency_ms"] == pytest.approx(4.0)
    assert timeline[3]["slippage_bps"] == pytest.approx(O1_SLIP)
    assert timeline[3]["ts_iso"] == "2024-01-15T14:30:00.500000000Z"


def test_order_view_of_a_cancelled_order(client: TestClient) -> None:
    body = get(client, "/log_stream/orders/O2")
    assert (body["order_id"], body["status"], body["side"], body["qty"]) == (
        "O2",
        "cancelled",
        "sell",
        10.0,
    )
    assert (body["filled_qty"], body["avg_px"], body["fill_rate"]) == (0.0, None, 0.0)
    assert body["ack_latency_ms"] == pytest.approx(2.0)
    assert body["fill_latency_ms"] is None
    assert body["cancel_latency_ms"] == pytest.approx(10.0)
    assert body["arrival_mid"] == pytest.approx(400.0)
    assert body["slippage_bps"] is None
    assert [t["event_id"] for t in body["timeline"]] == ["n2", "a2", "c2", "x2"]


@pytest.mark.parametrize(("alias", "root"), [("O1r", "O1"), ("O2c", "O2"), ("V-1", "O1")])
def test_order_view_by_any_of_its_ids(client: TestClient, alias: str, root: str) -> None:
    by_alias = get(client, f"/log_stream/orders/{alias}")
    assert by_alias == get(client, f"/log_stream/orders/{root}")
    assert by_alias["order_id"] == root


@pytest.mark.parametrize("order_id", ["O1", "O2"])
def test_order_view_agrees_with_the_stored_orders_row(replay_into: Replayer, order_id: str) -> None:
    _, store = replay_into({"engine.jsonl": ENGINE}, fmt="jsonl")
    row = store.order_row(order_id)
    assert row is not None
    with TestClient(create_app(store)) as c:
        view = get(c, f"/log_stream/orders/{order_id}")
    for key in (
        "status", "symbol", "venue", "side", "qty", "price", "filled_qty", "avg_px",
        "fill_rate", "n_fills", "ack_latency_ms", "fill_latency_ms", "cancel_latency_ms",
        "arrival_mid", "arrival_ts", "slippage_bps", "strategy_id", "account_id",
    ):  # fmt: skip
        assert view[key] == (pytest.approx(row[key]) if isinstance(row[key], float) else row[key])
    assert ",".join(view["aliases"]) == row["aliases"]


def test_unknown_order_is_a_json_404(client: TestClient) -> None:
    resp = client.get("/log_stream/orders/NOPE")
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/json")
    assert "NOPE" in resp.json()["error"]


# ---- bad parameters ---------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"minutes": -1}, "minutes"),
        ({"minutes": 0}, "minutes"),
        ({"minutes": "abc"}, "minutes"),
        ({"minutes": "inf"}, "minutes"),
        ({"hours": "nan"}, "hours"),
        ({"limit": 0}, "limit"),
        ({"kind": "trade_bust"}, "kind"),
        ({"from": "notadate"}, "from"),
        ({"to": "2024-13-45T00:00:00Z"}, "to"),
        ({"from": "2024-01-15T14:31:00Z", "to": "2024-01-15T14:30:00Z"}, "before"),
        ({"from": "2024-01-15T14:30:00Z", "to": "2024-01-15T14:30:00Z"}, "before"),
        ({"from": "2024-01-15T14:30:00Z", "minutes": 5}, "not both"),
        ({"minutes": 5, "hours": 1}, "not both"),
    ],
)
def test_bad_params_are_422_with_a_message(
    client: TestClient, params: dict[str, Any], says: str
) -> None:
    resp = client.get("/log_stream/recent", params=params)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert isinstance(error, str)
    assert says in error


# ---- OpenAPI ---------------------------------------------------------------


def test_openapi_lists_the_paths(client: TestClient) -> None:
    doc = get(client, "/openapi.json")
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path in (
        "/health",
        "/log_stream/statistics",
        "/log_stream/recent",
        "/log_stream/orders/{order_id}",
    ):
        assert "get" in paths[path], path
    params = {p["name"] for p in paths["/log_stream/recent"]["get"]["parameters"]}
    assert {"from", "to", "minutes", "symbol", "venue", "strategy", "kind", "limit"} <= params
    assert client.get("/docs").status_code == 200
