"""Bearer-token access (api/auth.py) through HTTP and WebSocket over a real store.

Policy: no tokens configured → everything open (the server binds 127.0.0.1 by default).
With tokens: ``/health`` and the OpenAPI pages stay open; every other path (``/metrics``
included) needs a token; ``read`` may GET and open the live WebSocket; only ``admin`` may
send a state-changing request (POST/PUT/PATCH/DELETE, e.g. ``POST /log_stream/events``).
Refusals are JSON: 401 for a missing or unknown token, 403 for a read token on a write."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.conftest import Replayer
from tradelog.api.app import create_app
from tradelog.api.auth import Token, parse_env_tokens
from tradelog.api.deps import IngestResult
from tradelog.api.metrics import Metrics
from tradelog.config import load_config
from tradelog.storage.duckdb_store import DuckDBStore

ENGINE = (
    '{"event_id":"q1","kind":"quote","ts":"2024-01-15T14:29:00Z","symbol":"AAPL",'
    '"venue":"XNAS","bid":100.00,"ask":100.02}\n'
)
READ, ADMIN = "r-3a9+/=tok", "adm-77Q"


class RecordingIngestor:
    """The ingest side of POST /log_stream/events: counts the bodies that reach it."""

    max_body_bytes = 1 << 20

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def ingest(
        self, body: bytes, content_type: str, fmt: str | None, source: str | None
    ) -> IngestResult:
        self.bodies.append(body)
        return IngestResult(200, {"accepted": body.count(b"\n")})


@pytest.fixture
def store(replay_into: Replayer) -> DuckDBStore:
    return replay_into({"engine.jsonl": ENGINE})[1]


def make(store: DuckDBStore, tokens: list[Token] | None) -> tuple[TestClient, RecordingIngestor]:
    ingest = RecordingIngestor()
    app = create_app(store, ingest=ingest, metrics=Metrics(), tokens=tokens)
    return TestClient(app), ingest


@pytest.fixture
def secured(store: DuckDBStore) -> Iterator[tuple[TestClient, RecordingIngestor]]:
    client, ingest = make(store, [Token(token=READ), Token(token=ADMIN, role="admin")])
    with client:
        yield client, ingest


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post_events(client: TestClient, headers: dict[str, str] | None = None) -> Any:
    return client.post("/log_stream/events", content=ENGINE, headers=headers or {})


def test_without_tokens_everything_is_open(store: DuckDBStore) -> None:
    client, ingest = make(store, None)
    with client:
        assert client.get("/log_stream/statistics").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert post_events(client).status_code == 200
        with client.websocket_connect("/log_stream/live") as ws:
            assert ws.receive_json()["type"] == "error"  # no live hub here, but admitted
    assert len(ingest.bodies) == 1


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong"), {"Authorization": READ}, {"Authorization": f"Basic {READ}"},
     bearer("")],
)  # fmt: skip
def test_missing_or_unknown_token_is_a_json_401(
    secured: tuple[TestClient, RecordingIngestor], headers: dict[str, str]
) -> None:
    client, ingest = secured
    for resp in (client.get("/log_stream/pnl", headers=headers), post_events(client, headers)):
        assert resp.status_code == 401
        assert resp.headers["content-type"] == "application/json"
        assert resp.headers["www-authenticate"] == "Bearer"
        assert resp.json() == {"error": "missing or unknown bearer token"}
    assert ingest.bodies == []


def test_read_token_reads_but_cannot_write(secured: tuple[TestClient, RecordingIngestor]) -> None:
    client, ingest = secured
    for path in ("/log_stream/statistics", "/log_stream/pnl", "/log_stream/orders/nope"):
        resp = client.get(path, headers=bearer(READ))
        assert resp.status_code in (200, 404), path  # 404: an unknown order, past auth
    assert client.get("/log_stream/orders/nope", headers=bearer(READ)).json()["error"]
    resp = post_events(client, bearer(READ))
    assert resp.status_code == 403
    assert resp.json() == {"error": "this request needs the admin role"}
    assert ingest.bodies == []


def test_admin_token_reads_and_writes(secured: tuple[TestClient, RecordingIngestor]) -> None:
    client, ingest = secured
    assert client.get("/log_stream/statistics", headers=bearer(ADMIN)).status_code == 200
    resp = post_events(client, {"authorization": f"bearer {ADMIN}"})  # scheme: any case
    assert resp.status_code == 200
    assert resp.json() == {"accepted": 1}
    assert ingest.bodies == [ENGINE.encode()]


def test_health_and_openapi_stay_open_metrics_needs_a_token(
    secured: tuple[TestClient, RecordingIngestor],
) -> None:
    client, _ = secured
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200
    assert client.get("/metrics").status_code == 401
    resp = client.get("/metrics", headers=bearer(READ))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")


def test_dashboard_page_and_assets_load_without_a_token_but_data_does_not(
    secured: tuple[TestClient, RecordingIngestor],
) -> None:
    client, _ = secured
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert client.get("/static/css/dashboard.css").status_code == 200
    assert client.get("/static/../log_stream/statistics").status_code != 200
    assert client.get("/log_stream/statistics").status_code == 401
    assert client.post("/", content=b"x").status_code == 401  # only GET/HEAD are open


def test_websocket_needs_a_token_header_or_query(
    secured: tuple[TestClient, RecordingIngestor],
) -> None:
    client, _ = secured
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/log_stream/live") as ws,
    ):
        ws.receive_json()
    assert refused.value.code == 1008
    # a browser passes it in the query (percent-encoded: the token holds + / =)
    with client.websocket_connect("/log_stream/live?token=r-3a9%2B%2F%3Dtok") as ws:
        assert ws.receive_json()["type"] == "error"  # admitted; no live hub behind it
    with client.websocket_connect("/log_stream/live", headers=bearer(READ)) as ws:
        assert ws.receive_json()["type"] == "error"


def test_tokens_from_the_environment_join_the_config(tmp_path: Path, store: DuckDBStore) -> None:
    cfg_path = tmp_path / "tradelog.toml"
    cfg_path.write_text('[[auth.tokens]]\ntoken = "from-file"\nrole = "read"\n', "utf-8")
    cfg = load_config(cfg_path, environ={})
    tokens = cfg.all_tokens({"TRADELOG_AUTH_TOKENS": "admin:env-admin, read:env-read"})
    assert [(t.token, t.role) for t in tokens] == [
        ("from-file", "read"), ("env-admin", "admin"), ("env-read", "read")]  # fmt: skip
    assert cfg.all_tokens({}) == cfg.auth.tokens
    client, ingest = make(store, tokens)
    with client:
        assert client.get("/log_stream/pnl", headers=bearer("from-file")).status_code == 200
        assert post_events(client, bearer("env-read")).status_code == 403
        assert post_events(client, bearer("env-admin")).status_code == 200
    assert len(ingest.bodies) == 1


@pytest.mark.parametrize("text", ["read", "owner:abc", "admin:", ":abc"])
def test_bad_env_tokens_are_refused_with_a_message(text: str) -> None:
    with pytest.raises(ValueError, match="read:TOKEN or admin:TOKEN"):
        parse_env_tokens(text)
