"""One API test suite over both stores: the real pipeline replays a fixture log once and
every batch it commits goes to a DuckDB file AND to a fresh PostgreSQL database (the same
CommitBatch objects, so read times and sequence numbers are identical); then every GET
endpoint registered in the API answers the same JSON from both (floats to 1e-9 relative).

The fixture: the hand-computed scenario of tests/unit/api (13 lines: 11 events, a duplicate,
a malformed line) on 2024-01-15, plus 3,000 events of benchmarks/gen.py on 2025-03-03 with
two engine ``position`` lines (reconciliation), so the events span two day partitions.
"""

from __future__ import annotations

import json
import math
import runpy
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.pg import fresh_database
from tests.unit.api.test_api import ENGINE
from tradelog.api.app import create_app
from tradelog.app import plan_replay, replay
from tradelog.config import Config, SourceConfig
from tradelog.storage.base import CommitBatch, Store
from tradelog.storage.duckdb_store import DuckDBStore
from tradelog.storage.postgres_store import PostgresStore

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GEN_EVENTS = 3000
REL = 1e-9
IGNORED_KEYS = frozenset({"last_commit_ns", "store", "timings_s", "generated_iso", "generated_ns"})
"""Wall-clock commit time of each store's own transaction; /health's store URL; the
report's own computation and generation times."""
UNORDERED = frozenset(
    {
        "by_venue",
        "by_strategy",
        "by_symbol",
        "by_order_type",
        "by_liquidity",
        "marks",
        "alerts",
        "markouts",
    }
)
"""Lists the API orders only partly (groups by count, marks by time and event id): ties
come in the order each engine happens to produce, so they are compared as multisets."""


def canonical(item: Any) -> str:
    """A sort key equal for equal items (floats rounded well inside the tolerance)."""

    def norm(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: norm(v) for k, v in sorted(x.items()) if k not in IGNORED_KEYS}
        if isinstance(x, list):
            return [norm(v) for v in x]
        if isinstance(x, float) and not isinstance(x, bool):
            return f"{x:.6g}"
        if isinstance(x, int) and not isinstance(x, bool):
            return f"{float(x):.6g}"
        return x

    return json.dumps(norm(item), sort_keys=True)


def load_gen() -> SimpleNamespace:
    """benchmarks/gen.py (not a package) as a namespace of its functions."""
    return SimpleNamespace(**runpy.run_path(str(ROOT / "benchmarks/gen.py")))


def gen_log() -> str:
    gen = load_gen()
    lines = [gen.jsonl_line(i, ev) for i, ev in enumerate(gen.events(GEN_EVENTS, 3))]
    last = gen.START_NS + 3_600 * 10**9
    for i, (pos, pnl) in enumerate(((300.0, 12.5), (-100.0, -3.25))):
        lines.append(
            f'{{"event_id":"P{i}","kind":"position","ts":"{gen.iso(last + i * 10**9)}",'
            f'"symbol":"AAPL","strategy_id":"MM-1","account_id":"ACC-00",'
            f'"position":{pos},"realized_pnl":{pnl},"unrealized_pnl":0.0}}\n'
        )
    return "".join(lines)


class TeeStore:
    """Reads from DuckDB (the pipeline's recovery reads); commits to both stores."""

    def __init__(self, duck: DuckDBStore, pg: PostgresStore) -> None:
        self.duck = duck
        self.pg = pg
        self.url = duck.url
        self.sql = duck.sql

    def commit(self, batch: CommitBatch) -> None:
        self.pg.commit(batch)
        self.duck.commit(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.duck, name)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Store]]:
    tmp = tmp_path_factory.mktemp("parity")
    engine = tmp / "engine.jsonl"
    engine.write_text(ENGINE, encoding="utf-8")
    generated = tmp / "gen.jsonl"
    generated.write_text(gen_log(), encoding="utf-8")
    cfg = Config()
    cfg.sources = [SourceConfig(name="jsonl", format="jsonl")]
    cfg.pipeline.replay_batch_events = 700  # several batches, several commits
    with fresh_database() as url:
        duck = DuckDBStore(str(tmp / "t.duckdb"))
        pg = PostgresStore(url)
        try:
            tee = TeeStore(duck, pg)
            summary = replay(cfg, plan_replay(cfg, [str(engine), str(generated)], "jsonl"), tee)  # type: ignore[arg-type]
            assert summary.events > GEN_EVENTS
            yield duck, pg
        finally:
            duck.close()
            pg.close()


@pytest.fixture(scope="module")
def clients(stores: tuple[Store, Store]) -> Iterator[tuple[TestClient, TestClient]]:
    duck, pg = stores
    with TestClient(create_app(duck)) as d, TestClient(create_app(pg)) as p:
        yield d, p


def same(a: Any, b: Any, path: str = "$") -> None:
    """Equal JSON, floats to ``REL`` relative (ints and floats compare by value)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys_a = set(a) - IGNORED_KEYS
        keys_b = set(b) - IGNORED_KEYS
        assert keys_a == keys_b, f"{path}: keys differ {keys_a ^ keys_b}"
        for k in keys_a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: {len(a)} vs {len(b)} items"
        key = path.rsplit(".", 1)[-1]
        if key in UNORDERED or key.endswith(tuple(f"_{k}" for k in UNORDERED)):
            a, b = sorted(a, key=canonical), sorted(b, key=canonical)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, bool) or isinstance(b, bool):
        assert a is b, f"{path}: {a!r} vs {b!r}"
    elif isinstance(a, int | float) and isinstance(b, int | float):
        assert math.isclose(a, b, rel_tol=REL, abs_tol=1e-12), f"{path}: {a!r} vs {b!r}"
    else:
        assert a == b, f"{path}: {a!r} vs {b!r}"


GEN_DAY = "2025-03-03"
WINDOW = {"from": f"{GEN_DAY}T13:30:00Z", "to": f"{GEN_DAY}T13:31:00Z"}
REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("/log_stream/statistics", {}),
    ("/log_stream/recent", {}),
    ("/log_stream/recent", {"minutes": 10**7, "limit": 10_000}),
    ("/log_stream/recent", {"kind": ["fill", "quote"], "hours": 1, "venue": "XNAS"}),
    ("/log_stream/latency_analysis", {}),
    ("/log_stream/latency_analysis", {"hours": 24}),
    ("/log_stream/latency_analysis", {**WINDOW, "venue": "BATS", "order_type": "limit"}),
    ("/log_stream/slippage_analysis", {}),
    ("/log_stream/slippage_analysis", {**WINDOW, "strategy": "MM-1"}),
    ("/log_stream/fills", {}),
    ("/log_stream/orders", {"symbol": "AAPL"}),
    ("/log_stream/fill_rates", {}),
    ("/log_stream/fill_rates", {"hours": 1, "account": "ACC-01"}),
    ("/log_stream/positions", {}),
    ("/log_stream/positions", {"to": f"{GEN_DAY}T13:30:30Z"}),
    ("/log_stream/pnl", {}),
    ("/log_stream/pnl", WINDOW),
    ("/log_stream/equity_curve", {**WINDOW, "interval_s": 5, "strategy": "TK-1"}),
    ("/log_stream/round_trips", {}),
    ("/log_stream/reconciliation", {}),
    ("/log_stream/quality_metrics", {}),
    ("/log_stream/quality_metrics", {"hours": 10**5}),
    ("/log_stream/anomalies", {}),
    ("/log_stream/anomalies", {"hours": 10**5, "severity": "medium"}),
    ("/log_stream/orders/O1", {}),
    ("/log_stream/orders/O1r", {}),
    ("/log_stream/orders/V-1", {}),
    ("/log_stream/orders/O2c", {}),
    ("/log_stream/orders/ORD-000000007", {}),
    ("/log_stream/orders/no-such-order", {}),
    ("/log_stream/positions", {"format": "csv"}),
]


def get_routes(client: TestClient) -> list[str]:
    """Every GET route of the API's OpenAPI schema without path parameters (a new
    endpoint joins the comparison by itself)."""
    schema = client.get("/openapi.json").json()
    paths = [p for p, ops in schema["paths"].items() if "get" in ops and "{" not in p]
    # the HTML report renders /log_stream/report (compared) and names the store URL
    return sorted(set(paths) - {"/metrics", "/log_stream/report.html"})


def compare(clients: tuple[TestClient, TestClient], path: str, params: dict[str, Any]) -> Any:
    d, p = clients
    rd, rp = d.get(path, params=params), p.get(path, params=params)
    assert rd.status_code == rp.status_code, (path, rd.text, rp.text)
    if rd.headers.get("content-type", "").startswith("application/json"):
        same(rd.json(), rp.json(), path)
        return rd.json()
    assert rd.text == rp.text, path
    return rd.text


@pytest.mark.parametrize(("path", "params"), REQUESTS, ids=[f"{p}{q}" for p, q in REQUESTS])
def test_endpoint_answers_the_same_on_both_stores(
    clients: tuple[TestClient, TestClient], path: str, params: dict[str, Any]
) -> None:
    compare(clients, path, params)


def test_every_registered_get_endpoint_answers_the_same(
    clients: tuple[TestClient, TestClient],
) -> None:
    paths = get_routes(clients[0])
    assert "/log_stream/latency_analysis" in paths and "/health" in paths
    for path in paths:
        compare(clients, path, {})


def test_the_comparison_has_substance(clients: tuple[TestClient, TestClient]) -> None:
    """The answers compared above carry real figures (not two empty payloads)."""
    stats = compare(clients, "/log_stream/statistics", {})
    assert stats["totals"]["reconciled"] is True
    assert stats["totals"]["duplicates"] == 1 and stats["totals"]["rejects"] == 1
    lat = compare(clients, "/log_stream/latency_analysis", {"hours": 10**5})
    assert lat["ack"]["overall"]["count"] > 100
    assert lat["ack"]["overall"]["p99_ms"] is not None
    slip = compare(clients, "/log_stream/slippage_analysis", {"hours": 10**5})
    assert slip["fills"]["with_benchmark"] > 100
    pnl = compare(clients, "/log_stream/pnl", {})
    assert pnl["round_trips"]["overall"]["count"] > 10
    rec = compare(clients, "/log_stream/reconciliation", {})
    assert rec["count"] == 2
    order = compare(clients, "/log_stream/orders/O1r", {})
    assert order["slippage_bps"] == pytest.approx(1.99980002)
    assert [e["event_id"] for e in order["timeline"]] == ["n1", "a1", "r1", "f1"]


def test_the_stores_hold_the_same_rows(stores: tuple[Store, Store]) -> None:
    duck, pg = stores
    for table, key in (
        ("events", "seq"),
        ("orders", "order_id"),
        ("anomalies", "event_id, type"),
        ("rejects", "reject_id"),
        ("round_trips", "strategy_id, account_id, symbol, ts_open"),
    ):
        sql = f"SELECT * FROM {table} ORDER BY {key}"
        same(duck.query(sql).to_pylist(), pg.query(sql).to_pylist(), table)
