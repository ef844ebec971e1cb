"""``/log_stream/bars``, ``/pairs`` and ``/book`` through HTTP over a real DuckDB store
filled by the real pipeline.

The store holds the hand-worked AAA/BBB trades and quotes of
tests/unit/storage/test_market_queries.py (14:30–14:35, 2024-01-15) and, earlier
(14:00:00–14:00:39), one or two trades per second of P and Q for pair analytics:
P's close in second i is ``p(i)`` (an earlier trade at a decoy price comes first in
some seconds), Q's is ``q(i)``; Q does not trade in seconds 5 and 17, so there are 38
common 1-second bars. The expected analytics are computed by analytics/pairs.py on those
closes — the pure maths is checked by hand in tests/unit/analytics/test_pairs.py; here we
check that the HTTP layer feeds it the right bars and reports what it says.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.unit.storage.test_market_queries import LINES, at, trade
from tradelog.analytics.pairs import analyze_pair
from tradelog.analytics.rules import PairRule
from tradelog.api.app import create_app
from tradelog.app import plan_replay, replay
from tradelog.config import Config, SourceConfig
from tradelog.model.events import Severity
from tradelog.storage.duckdb_store import DuckDBStore

PAIR_SECONDS = 40
Q_MISSING = (5, 17)


def p(i: int) -> float:
    return round(100.0 * math.exp(0.002 * i + 0.01 * math.sin(i)), 6)


def q(i: int) -> float:
    return round(50.0 * math.exp(0.0015 * i + 0.008 * math.sin(i) + 0.004 * math.cos(3 * i)), 6)


def pair_lines() -> list[str]:
    out = []
    for i in range(PAIR_SECONDS):
        t = f"2024-01-15T14:00:{i:02d}"
        if i % 3 == 0:  # a decoy earlier in the second: the close is the last trade
            out.append(trade(f"P-decoy-{i}", f"{t}.100Z", "P", "X", p(i) + 1.0, 1))
        out.append(trade(f"P-{i}", f"{t}.700Z", "P", "X", p(i), 2))
        if i not in Q_MISSING:
            out.append(trade(f"Q-{i}", f"{t}.300Z", "Q", "X", q(i), 3))
    return out


COMMON = [i for i in range(PAIR_SECONDS) if i not in Q_MISSING]
RULES = [
    PairRule(name="z_any", a="P", b="Q", timeframe="1s", window=10, expr="abs(zscore) >= 0"),
    PairRule(name="corr5", a="P", b="Q", timeframe="1s", window=5, expr="correlation < 2",
             level=Severity.HIGH),
    PairRule(name="minute", a="P", b="Q", timeframe="1m", window=10, expr="zscore > 0"),
    PairRule(name="reverse", a="Q", b="P", timeframe="1s", window=10, expr="beta > 0"),
]  # fmt: skip


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One store for the module (read-only tests): the real pipeline replays the log."""
    log = tmp_path_factory.mktemp("market_api") / "md.jsonl"
    log.write_text("\n".join(pair_lines() + LINES) + "\n", encoding="utf-8")
    cfg = Config()
    cfg.sources = [SourceConfig(name="jsonl", format="jsonl")]
    store = DuckDBStore(str(log.with_suffix(".duckdb")))
    try:
        summary = replay(cfg, plan_replay(cfg, [str(log)], "jsonl"), store)
        assert summary.events == len(pair_lines()) + len(LINES)  # no id collides
        with TestClient(create_app(store, pair_rules=RULES)) as c:
            yield c
    finally:
        store.close()


def get(client: TestClient, path: str, **params: Any) -> dict[str, Any]:
    resp = client.get(path, params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def error(client: TestClient, path: str, **params: Any) -> str:
    resp = client.get(path, params=params)
    assert resp.status_code == 422, resp.text
    message: str = resp.json()["error"]
    return message


# ---------------------------------------------------------------------------- bars


def test_bars_json(client: TestClient) -> None:
    body = get(client, "/log_stream/bars", symbol="AAA", timeframe="1s")
    assert (body["symbol"], body["timeframe"], body["timeframe_ns"]) == ("AAA", "1s", 10**9)
    assert body["count"] == 5 and body["truncated"] is False
    first = body["bars"][0]
    assert first == {
        "ts_ns": at(14, 30, 0), "ts_iso": "2024-01-15T14:30:00.000000000Z", "open": 10.0,
        "high": 12.0, "low": 10.0, "close": 11.0, "volume": 6.0, "notional": 68.0,
        "vwap": pytest.approx(68 / 6), "trades": 3,
    }  # fmt: skip
    assert [b["ts_ns"] for b in body["bars"]] == [
        at(14, 30, 0), at(14, 30, 2), at(14, 30, 59), at(14, 31, 0), at(14, 35, 0)
    ]  # fmt: skip


def test_bars_relative_window_is_widened_to_whole_bars(client: TestClient) -> None:
    """minutes=5 ends just after the latest event (14:35:00.000): it starts at
    14:30:00.000000001, so the 5-minute bar of 14:30 is taken whole (7 trades)."""
    body = get(client, "/log_stream/bars", symbol="AAA", timeframe="5m", minutes=5)
    w = body["window"]
    assert (w["from_ns"], w["to_ns"]) == (at(14, 30, 0) + 1, at(14, 35, 0) + 1)
    assert (w["bars_from_ns"], w["bars_to_ns"]) == (at(14, 30, 0), at(14, 40, 0))
    assert [(b["ts_ns"], b["trades"], b["close"]) for b in body["bars"]] == [
        (at(14, 30, 0), 7, 12.5), (at(14, 35, 0), 1, 14.0)
    ]  # fmt: skip


def test_bars_venue_and_limit(client: TestClient) -> None:
    body = get(client, "/log_stream/bars", symbol="AAA", timeframe="1m", venue="X")
    assert body["bars"][0]["volume"] == 7.0 and body["bars"][0]["close"] == 9.0
    assert body["window"]["filters"] == {"venue": "X"}
    body = get(client, "/log_stream/bars", symbol="AAA", timeframe="1s", limit=2)
    assert body["truncated"] is True
    assert [b["ts_ns"] for b in body["bars"]] == [at(14, 31, 0), at(14, 35, 0)]
    body = get(client, "/log_stream/bars", symbol="NOPE")
    assert body["bars"] == [] and body["count"] == 0


def test_bars_csv(client: TestClient) -> None:
    resp = client.get("/log_stream/bars", params={"symbol": "AAA", "timeframe": "1m",
                                                   "format": "csv"})  # fmt: skip
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert 'filename="bars_AAA_1m.csv"' in resp.headers["content-disposition"]
    lines = resp.text.splitlines()
    assert lines[0] == "ts_ns,ts_iso,open,high,low,close,volume,notional,vwap,trades"
    assert (
        lines[2]
        == f"{at(14, 31, 0)},2024-01-15T14:31:00.000000000Z,13.0,13.0,12.5,12.5,4.0,51.0,12.75,2"
    )
    assert len(lines) == 4
    empty = client.get("/log_stream/bars", params={"symbol": "NOPE", "format": "csv"})
    assert empty.text.splitlines() == [lines[0]]


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"symbol": "AAA", "timeframe": "2m"}, "timeframe"),
        ({}, "symbol"),
        ({"symbol": "AAA", "limit": 0}, "limit"),
        ({"symbol": "AAA", "format": "xml"}, "format"),
        ({"symbol": "AAA", "from": "2024-01-15T15:00:00Z", "to": "2024-01-15T14:00:00Z"},
         "from must be before to"),
        ({"symbol": "AAA", "from": "yesterday"}, "from:"),
        ({"symbol": "AAA", "minutes": 5, "from": "2024-01-15T14:00:00Z"}, "not both"),
    ],
)  # fmt: skip
def test_bars_bad_parameters(client: TestClient, params: dict[str, Any], problem: str) -> None:
    assert problem in error(client, "/log_stream/bars", **params)


# ---------------------------------------------------------------------------- pairs


def expected(window: int, seconds: list[int] = COMMON) -> Any:
    return analyze_pair([at(14, 0, i) for i in seconds], [p(i) for i in seconds],
                        [q(i) for i in seconds], window)  # fmt: skip


def test_pairs_json(client: TestClient) -> None:
    body = get(client, "/log_stream/pairs", a="P", b="Q", timeframe="1s", window=10)
    exp = expected(10)
    assert body["status"] == "ok" and body["reason"] is None
    assert (body["bars_available"], body["bars_needed"]) == (38, 11)
    assert (body["window_bars"], body["lookback_bars"], body["timeframe_ns"]) == (10, 1000, 10**9)
    h = body["hedge_ratio"]
    assert (h["beta"], h["alpha"], h["r2"], h["nobs"]) == pytest.approx(
        (exp.hedge.beta, exp.hedge.alpha, exp.hedge.r2, 38), rel=1e-12
    )
    assert body["adf"] == {**exp.adf.as_dict(), "critical_values": pytest.approx(
        exp.adf.critical_values), "statistic": pytest.approx(exp.adf.statistic),
        "pvalue": pytest.approx(exp.adf.pvalue)}  # fmt: skip
    series = body["series"]
    assert [r["ts_ns"] for r in series] == [at(14, 0, i) for i in COMMON]
    assert series[0]["ts_iso"] == "2024-01-15T14:00:00.000000000Z"
    assert [r["a_close"] for r in series] == [p(i) for i in COMMON]  # the last trade, not decoys
    assert [r["b_close"] for r in series] == [q(i) for i in COMMON]
    assert all(r["zscore"] is None for r in series[:9]) and series[9]["zscore"] is not None
    assert all(r["correlation"] is None for r in series[:10])
    assert series[-1]["zscore"] == pytest.approx(exp.zscore[-1], rel=1e-9)
    assert series[-1]["correlation"] == pytest.approx(exp.correlation[-1], rel=1e-9)
    assert body["latest"]["ts_ns"] == at(14, 0, 39)
    assert body["latest"]["zscore"] == series[-1]["zscore"]


def test_pairs_rules_each_on_its_own_timeframe_and_window(client: TestClient) -> None:
    body = get(client, "/log_stream/pairs", a="P", b="Q", timeframe="1s", window=10)
    rules = {r["name"]: r for r in body["rules"]}
    assert set(rules) == {"z_any", "corr5", "minute"}  # "reverse" is the pair Q/P
    z = rules["z_any"]
    assert z["triggered"] is True and z["status"] == "ok"
    assert z["value"] == pytest.approx(abs(body["latest"]["zscore"]))
    assert (z["threshold"], z["operator"], z["absolute"], z["level"]) == (0.0, ">=", True,
                                                                          "medium")  # fmt: skip
    assert z["evaluated_at_ns"] == at(14, 0, 39)
    c = rules["corr5"]
    assert c["triggered"] is True and c["level"] == "high" and c["window_bars"] == 5
    assert c["value"] == pytest.approx(expected(5).correlation[-1], rel=1e-9)
    m = rules["minute"]  # one common 1-minute bar: nothing computed, never triggered
    assert m["triggered"] is False and m["value"] is None
    assert m["status"] == "insufficient_data" and "needed" in m["reason"]
    reverse = get(client, "/log_stream/pairs", a="Q", b="P", timeframe="1s", window=10)
    assert [r["name"] for r in reverse["rules"]] == ["reverse"]
    assert reverse["rules"][0]["triggered"] is True  # beta of log q on log p is positive


def test_pairs_insufficient_data(client: TestClient) -> None:
    """14:00:00–14:00:08 has 8 common bars (Q misses second 5); window 10 needs 11."""
    body = get(client, "/log_stream/pairs", a="P", b="Q", timeframe="1s", window=10,
               **{"from": "2024-01-15T14:00:00Z", "to": "2024-01-15T14:00:09Z"})  # fmt: skip
    assert body["status"] == "insufficient_data"
    assert (body["bars_available"], body["bars_needed"]) == (8, 11)
    assert body["hedge_ratio"] is None and body["adf"] is None
    assert len(body["series"]) == 8
    assert all(r["spread"] is None and r["zscore"] is None and r["correlation"] is None
               for r in body["series"])  # fmt: skip
    assert body["latest"]["zscore"] is None
    # lookback: only the last N common bars are analysed
    body = get(client, "/log_stream/pairs", a="P", b="Q", timeframe="1s", window=5, lookback=12)
    assert body["bars_available"] == 12 and body["bars_needed"] == 10
    assert body["series"][0]["ts_ns"] == at(14, 0, COMMON[-12])
    assert body["hedge_ratio"]["beta"] == pytest.approx(expected(5, COMMON[-12:]).hedge.beta)


def test_pairs_csv(client: TestClient) -> None:
    resp = client.get("/log_stream/pairs", params={"a": "P", "b": "Q", "timeframe": "1s",
                                                    "window": 10, "format": "csv"})  # fmt: skip
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert list(rows[0]) == ["ts_ns", "ts_iso", "a_close", "b_close", "spread", "zscore",
                             "correlation"]  # fmt: skip
    assert len(rows) == 38
    assert rows[0]["zscore"] == "" and rows[0]["correlation"] == ""  # null, not 0
    assert float(rows[-1]["zscore"]) == pytest.approx(expected(10).zscore[-1], rel=1e-9)
    assert int(rows[-1]["ts_ns"]) == at(14, 0, 39)


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"a": "P", "b": "Q", "timeframe": "2m"}, "timeframe"),
        ({"a": "P", "b": "Q", "window": 1}, "window"),
        ({"a": "P", "b": "P"}, "a and b must differ"),
        ({"a": "P"}, "b"),
        ({"a": "P", "b": "Q", "window": 20, "lookback": 20}, "lookback must be at least"),
        ({"a": "P", "b": "Q", "lookback": 2}, "lookback"),
    ],
)
def test_pairs_bad_parameters(client: TestClient, params: dict[str, Any], problem: str) -> None:
    assert problem in error(client, "/log_stream/pairs", **params)


# ---------------------------------------------------------------------------- book


def test_book_latest_quote(client: TestClient) -> None:
    """Latest AAA quote: Y at 14:30:50, 10.8/11.0 → mid 10.9, spread 0.2, 0.2/10.9 × 1e4
    = 183.486… bps; on X: 14:30:40, 10.95/11.05 → mid 11.0, 90.909… bps."""
    body = get(client, "/log_stream/book", symbol="AAA")
    assert body["quote_venue"] == "Y" and body["ts_ns"] == at(14, 30, 50)
    assert (body["bid"], body["ask"], body["bid_size"], body["ask_size"]) == (10.8, 11.0, 1.0,
                                                                              2.0)  # fmt: skip
    assert body["mid"] == pytest.approx(10.9)
    assert body["spread"] == pytest.approx(0.2)
    assert body["spread_bps"] == pytest.approx(0.2 / 10.9 * 1e4)
    assert "reason" not in body
    by_venue = [(v["quote_venue"], v["event_id"]) for v in body["by_venue"]]
    assert by_venue == [("X", "q2"), ("Y", "q3")]
    x = get(client, "/log_stream/book", symbol="AAA", venue="X")
    assert (x["quote_venue"], x["mid"], x["event_id"]) == ("X", pytest.approx(11.0), "q2")
    assert x["spread_bps"] == pytest.approx(0.1 / 11.0 * 1e4)
    assert "by_venue" not in x


def test_book_without_quote_or_one_sided(client: TestClient) -> None:
    body = get(client, "/log_stream/book", symbol="NOPE")
    assert body["bid"] is None and body["ask"] is None and body["ts_ns"] is None
    assert body["mid"] is None and body["by_venue"] == []
    assert body["reason"] == "no quote for 'NOPE' in the store"
    assert "on venue 'Q'" in get(client, "/log_stream/book", symbol="AAA", venue="Q")["reason"]
    one = get(client, "/log_stream/book", symbol="ZZZ")
    assert (one["bid"], one["ask"], one["mid"], one["spread_bps"]) == (3.0, None, None, None)
    assert one["reason"] == "one-sided quote: no mid or spread"
    assert error(client, "/log_stream/book")


def test_openapi_lists_market_paths(client: TestClient) -> None:
    doc = json.loads(client.get("/openapi.json").text)
    for path in ("/log_stream/bars", "/log_stream/pairs", "/log_stream/book"):
        assert path in doc["paths"]
    params = {p["name"] for p in doc["paths"]["/log_stream/pairs"]["get"]["parameters"]}
    assert {"a", "b", "timeframe", "window", "lookback", "from", "to", "minutes", "hours",
            "venue", "format"} <= params  # fmt: skip
