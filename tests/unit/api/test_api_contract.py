"""The analysis API's contract through HTTP, over the golden store of
``tests/unit/analytics/test_golden_execution.py`` (latest event 14:30:18.000):
every analysis takes ``from``/``to`` (ISO-8601, offsets honoured) or ``minutes``/``hours``
(ending just after the latest event), and the filters ``venue``, ``strategy``, ``symbol``,
``account``; bad parameters are a JSON 422; tabular endpoints export CSV with a header.
``tests/unit/api/test_api.py`` covers ``/recent``, ``/statistics`` and ``/orders/{id}``."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.unit.analytics.test_golden_execution import ENGINE, at
from tradelog.api.app import create_app
from tradelog.api.export import json_response
from tradelog.app import open_store, plan_replay, replay
from tradelog.config import Config, SourceConfig

LATEST = at(18)
MINUTE = 60 * 10**9
ANALYSES = [
    "latency_analysis", "slippage_analysis", "fills", "orders", "fill_rates", "positions",
    "pnl", "round_trips", "equity_curve", "reconciliation", "quality_metrics", "anomalies",
]  # fmt: skip
CSV = ["fills", "orders", "positions", "round_trips", "reconciliation", "anomalies"]
TABLE_KEY = {
    "fills": "fills", "orders": "orders", "positions": "positions",
    "round_trips": "round_trips", "reconciliation": "rows", "anomalies": "marks",
}  # fmt: skip


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    d: Path = tmp_path_factory.mktemp("contract")
    (d / "engine.jsonl").write_text(ENGINE, encoding="utf-8")
    cfg = Config()
    cfg.sources = [SourceConfig(name="engine", format="jsonl")]
    cfg.store.url = f"duckdb:///{d / 'contract.duckdb'}"
    store = open_store(cfg.store.url)
    replay(cfg, plan_replay(cfg, [str(d / "engine.jsonl")], "engine"), store)
    with TestClient(create_app(store)) as c:
        yield c
    store.close()


def get(client: TestClient, path: str, **params: Any) -> dict[str, Any]:
    resp = client.get(f"/log_stream/{path}", params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


# ---------------------------------------------------------------------------- windows


@pytest.mark.parametrize("path", ANALYSES)
def test_from_to_with_an_offset(client: TestClient, path: str) -> None:
    body = get(client, path, **{"from": "2024-01-15T15:30:05+01:00",
                                "to": "2024-01-15T09:30:12.5-05:00"})  # fmt: skip
    w = body["window"]
    assert (w["from_ns"], w["to_ns"]) == (at(5), at(12.5))
    assert (w["from_iso"], w["to_iso"]) == (
        "2024-01-15T14:30:05.000000000Z", "2024-01-15T14:30:12.500000000Z")  # fmt: skip


@pytest.mark.parametrize("path", ANALYSES)
@pytest.mark.parametrize(
    ("params", "length_ns"), [({"minutes": 0.1}, 6 * 10**9), ({"hours": 2}, 120 * MINUTE)]
)
def test_relative_windows_end_at_the_latest_event(
    client: TestClient, path: str, params: dict[str, float], length_ns: int
) -> None:
    w = get(client, path, **params)["window"]
    assert (w["from_ns"], w["to_ns"]) == (LATEST + 1 - length_ns, LATEST + 1)


@pytest.mark.parametrize("path", ANALYSES)
def test_filters_are_taken_and_echoed(client: TestClient, path: str) -> None:
    flt = {"venue": "XNAS", "strategy": "S1", "symbol": "AAPL", "account": "A1"}
    assert get(client, path, **flt)["window"]["filters"] == flt


def _ids(key: str, field: str) -> Callable[[dict[str, Any]], list[Any]]:
    return lambda body: [r[field] for r in body[key]]


FILTERED: list[tuple[str, dict[str, Any], Callable[[dict[str, Any]], Any], Any]] = [
    ("fills", {"symbol": "MSFT"}, _ids("fills", "event_id"), ["f6"]),
    ("fills", {"venue": "ARCA"}, _ids("fills", "event_id"), ["f5", "f6", "f7"]),
    ("fills", {"minutes": 2 / 60}, _ids("fills", "event_id"), ["f7"]),  # from 16.000…001
    ("fills", {"from": "2024-01-15T14:30:03Z", "to": "2024-01-15T14:30:07Z"},
     _ids("fills", "event_id"), ["f2", "f3"]),  # to is exclusive (f4 at 07.000)
    ("orders", {"strategy": "S1"}, _ids("orders", "order_id"), ["O1", "O2", "O3", "O4"]),
    ("orders", {"account": "A2"}, _ids("orders", "order_id"), ["O5", "O6", "O7", "O8", "O10"]),
    ("fill_rates", {"venue": "ARCA"}, lambda b: b["overall"]["orders"], 3),
    ("fill_rates", {"strategy": "S2", "symbol": "MSFT"}, lambda b: b["overall"]["orders"], 2),
    ("positions", {"account": "A2"}, lambda b: [p["symbol"] for p in b["positions"]],
     ["AAPL", "MSFT"]),
    ("pnl", {"strategy": "S2"}, lambda b: [s["strategy"] for s in b["by_strategy"]], ["S2"]),
    # venue: turnover of XNAS fills only (f1–f4 of S1); positions stay across venues
    ("pnl", {"venue": "XNAS"}, lambda b: [(t["strategy_id"], t["fills"])
                                          for t in b["turnover_by_strategy"]], [("S1", 4)]),
    ("pnl", {"venue": "ARCA"}, lambda b: {r["liquidity"]: r["fills"] for r in b["by_liquidity"]},
     {"maker": 1, "taker": 2}),
    ("round_trips", {"venue": "XNAS"}, lambda b: b["count"], 2),
    ("round_trips", {"strategy": "S2"}, lambda b: b["count"], 0),
    ("equity_curve", {"strategy": "S2", "from": "2024-01-15T14:30:10Z"},
     lambda b: sorted({k for p in b["points"] for k in p["by_strategy"]}), ["S2"]),
    ("reconciliation", {"symbol": "MSFT"}, _ids("rows", "event_id"), ["p3"]),
    ("anomalies", {"strategy": "S2"}, _ids("marks", "event_id"), ["a12", "j7", "p3", "j6"]),
    ("latency_analysis", {"venue": "ARCA"}, lambda b: b["ack"]["overall"]["count"], 3),
    ("slippage_analysis", {"account": "A1"}, lambda b: b["fills"]["count"], 5),
    ("quality_metrics", {"symbol": "MSFT"},
     lambda b: b["sources"]["engine"]["window"]["events"], 9),
]  # fmt: skip


@pytest.mark.parametrize(("path", "params", "extract", "expected"), FILTERED)
def test_filters_and_windows_select_the_right_rows(
    client: TestClient,
    path: str,
    params: dict[str, Any],
    extract: Callable[[dict[str, Any]], Any],
    expected: Any,
) -> None:
    assert extract(get(client, path, **params)) == expected


# ---------------------------------------------------------------------------- errors

BAD = [
    ({"from": "2024-01-15T14:31:00Z", "to": "2024-01-15T14:30:00Z"}, "before"),
    ({"from": "2024-01-15T14:30:00Z", "minutes": 5}, "not both"),
    ({"from": "2024-01-15T14:30:00Z", "hours": 1}, "not both"),
    ({"minutes": 5, "hours": 1}, "not both"),
    ({"from": "15/01/2024 14:30"}, "from"),
    ({"to": "2024-01-15T25:00:00Z"}, "to"),
    ({"hours": -1}, "hours"),
    ({"minutes": "soon"}, "minutes"),
]


@pytest.mark.parametrize("path", ANALYSES)
@pytest.mark.parametrize(("params", "says"), BAD)
def test_bad_parameters_are_a_json_422(
    client: TestClient, path: str, params: dict[str, Any], says: str
) -> None:
    resp = client.get(f"/log_stream/{path}", params=params)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/json"
    error = resp.json()["error"]
    assert isinstance(error, str) and says in error


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        ("fills", {"format": "xml"}, "format"),
        ("orders", {"limit": 0}, "limit"),
        ("equity_curve", {"interval_s": 0}, "interval_s"),
        ("anomalies", {"severity": "apocalyptic"}, "severity"),
        ("latency_analysis", {"minutes": "nan"}, "minutes"),
    ],
)
def test_endpoint_specific_bad_parameters(
    client: TestClient, path: str, params: dict[str, Any], says: str
) -> None:
    resp = client.get(f"/log_stream/{path}", params=params)
    assert resp.status_code == 422
    assert says in resp.json()["error"]


# ---------------------------------------------------------------------------- CSV


def read_csv(resp: Any) -> tuple[list[str], list[dict[str, str]]]:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    reader = csv.DictReader(io.StringIO(resp.text))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


@pytest.mark.parametrize("path", CSV)
def test_csv_has_the_json_columns_and_rows(client: TestClient, path: str) -> None:
    as_json = get(client, path)[TABLE_KEY[path]]
    header, rows = read_csv(client.get(f"/log_stream/{path}", params={"format": "csv"}))
    assert as_json, path  # the golden store has rows for every table
    columns = [k for k in as_json[0] if k != "ts_iso"]  # JSON-only convenience field
    assert header == columns
    assert len(rows) == len(as_json)
    for got, want in zip(rows, as_json, strict=True):
        assert got == {k: "" if want[k] is None else str(want[k]) for k in columns}


@pytest.mark.parametrize("path", CSV)
def test_an_empty_csv_still_has_its_header(client: TestClient, path: str) -> None:
    full, _ = read_csv(client.get(f"/log_stream/{path}", params={"format": "csv"}))
    header, rows = read_csv(
        client.get(f"/log_stream/{path}", params={"format": "csv", "symbol": "NOPE"})
    )
    assert (header, rows) == (full, [])


# ---------------------------------------------------------------------------- OpenAPI


def test_openapi_documents_every_analysis_with_window_and_filters(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for path in ANALYSES:
        op = doc["paths"][f"/log_stream/{path}"]["get"]
        names = {p["name"] for p in op["parameters"]}
        assert {"from", "to", "minutes", "hours", "venue", "strategy", "symbol", "account"} <= (
            names
        ), path
        assert op.get("description"), path
    for path in CSV:
        names = {p["name"] for p in doc["paths"][f"/log_stream/{path}"]["get"]["parameters"]}
        assert "format" in names


def test_json_response_encodes_as_the_default_path() -> None:
    """The tables encoded by ``json_response`` (msgspec) read back as FastAPI's default
    encoding would give them; a float that is not a number becomes null."""
    payload = {"rows": [{"a": 1, "b": 0.1 + 0.2, "c": None, "d": "é", "e": [1.5, -2e-7]}],
               "n": 2**62, "nan": float("nan")}  # fmt: skip
    body = json.loads(json_response(payload).body)
    assert body == {**payload, "nan": None}
