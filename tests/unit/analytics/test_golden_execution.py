"""Golden execution-quality test: a hand-written engine log (two venues, two strategies,
partial fills across a quote change, a flip from long to short in one fill, a replace,
cancels with and without fills, rejects with reasons, an order with no prior quote, a
one-sided quote, engine ``position`` reports) replayed through the real pipeline into a
real DuckDB store and read back through the HTTP API. Every expected number is worked out
by hand below (DESIGN §4 formulas); the tests only restate that arithmetic.

Quotes, AAPL (mid = (bid + ask) / 2):
    14:30:00.000 qx1 XNAS 99.99/100.01  mid 100.00
    14:30:00.500 qa1 ARCA 99.98/100.04  mid 100.01
    14:30:02.000 qx2 XNAS 100.02/100.04 mid 100.03
    14:30:05.500 qx3 XNAS 99.99/100.01  mid 100.00
    14:30:07.500 qa2 ARCA 100.00/100.04 mid 100.02
    14:30:08.500 qx4 XNAS 100.05/100.07 mid 100.06
    14:30:09.000 qx5 XNAS bid 100.20, no ask: one-sided, no mid; the previous mark stays
    14:30:16.800 qx6 XNAS 100.00/100.02 mid 100.01
MSFT: 14:30:10.800 qm1 ARCA 400.10/400.30 mid 400.20 (nothing before: O5 has no arrival)

Orders (S1/A1 and S2/A2; arrival mid = own venue's book if it has quotes, else any venue):
    O1 S1 buy 100 AAPL XNAS lmt, new 01.000, ack 01.004 (4 ms), arrival 100.00 (qx1)
       f1 01.500 40 @100.01 maker fee .04  slip +1 bp; mid at fill 100.00 → capture −1
       f2 03.000 60 @100.02 taker fee .12  slip +2 bp (arrival stays 100.00 across the
          quote change); mid at fill 100.03 → capture (100.03−100.02)/100.03 = +0.9997
       order slip = (40×1 + 60×2)/100 = 1.6 bp; fill latency 500 ms
       IS = (10001.6 − 10000 + .16)/10000 = 1.76 bp
    O2 S1 sell 150 XNAS, new 04.000, ack 04.010 (10 ms), arrival 100.03 (qx2)
       f3 05.000 150 @100.05 maker fee .15: sells above the mid: slip = −(100.05−100.03)
          /100.03 = −1.9994 bp, price improvement +1.9994, capture +1.9994
       position long 100 @ avg (40×100.01 + 60×100.02)/100 = 100.016 → flips to short 50
       @100.05 in this one fill: realized 100 × (100.05 − 100.016) = 3.4
       IS = (−(15007.5 − 15004.5) + .15)/15004.5 = −2.85/15004.5 = −1.89943683 bp
    O3 S1 buy 50 XNAS, new 06.000, ack 06.003 (3 ms), arrival 100.00 (qx3)
       f4 07.000 50 @99.99 maker fee .05: slip −1, capture +1; closes the short:
          realized 50 × (100.05 − 99.99) = 3.0 → flat. IS = (−0.5 + .05)/5000 = −0.9 bp
    p1 07.600 engine: S1/A1/AAPL position 0, realized 6.04 (= ours: agrees)
    O4 S1 buy 20 ARCA market, new 08.000, ack 08.002 (2 ms), arrival 100.02 (qa2: ARCA
       has quotes, so not XNAS's 100.00); f5 08.100 20 @100.04 taker fee .08:
       slip (100.04−100.02)/100.02 = +1.9996, capture −1.9996; IS = (0.4+.08)/2000.4 =
       2.39952010 bp. S1 is now long 20 @100.04.
    p2 09.500 engine: position 25 (ours 20 → position_mismatch, diff 5), realized 5.96 ok
    O5 S2 buy 10 MSFT ARCA, new 10.000, ack 10.005 (5 ms): no MSFT quote yet → arrival,
       slippage, capture and IS are null (not 0); f6 10.500 4 @400 taker fee .16;
       cancel request 11.000, cancelled 11.020 (20 ms): cancelled after a partial fill
    O6 S2 sell 5 MSFT XNAS, new 12.000, rejected 12.001 "insufficient_margin"
    p3 12.200 engine: S2/A2/MSFT position 4 (ok), realized −0.10 vs ours −0.16 →
       pnl_mismatch (diff 0.06 > tolerance 0.01)
    O7 S2 buy 1 AAPL XNAS, new 12.500, rejected 12.502 "price_band"
    O8 S2 buy 30 XNAS, new 13.000, ack 13.001 (1 ms), arrival 100.06 (qx4: the one-sided
       qx5 is no mid); replace O8r → 40 @99.95 at 13.500; cancel request O8c 14.000,
       cancelled 14.005 (5 ms): cancelled without fill, fill rate 0/40
    O9 S1 sell 10 XNAS, new 15.000, ack 15.004 (4 ms): still open
    O10 S2 sell 20 AAPL ARCA, new 16.000, ack 16.006 (6 ms), arrival 100.02 (qa2);
       f7 16.500 5 @100.06 maker fee .02: slip −(100.06−100.02)/100.02 = −3.9992;
       cancel 17.000 → 17.010 (10 ms). IS: execution −(500.3 − 500.1) = −0.2, fees .02,
       opportunity on the 15 unfilled at the ARCA mid at the end (qa2 100.02, same book as
       the arrival) = 0 → −0.18/2000.4 = −0.89982004 bp
    O12 S2 buy 1 XNAS, new 18.000, ack logged at 17.990: −10 ms is clock skew, left out
       of the statistics (still open)
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Replayer
from tradelog.api.app import create_app
from tradelog.app import open_store, plan_replay, replay
from tradelog.config import Config, SourceConfig

ENGINE = """\
{"event_id":"qx1","kind":"quote","ts":"2024-01-15T14:30:00.000Z","symbol":"AAPL","venue":"XNAS","bid":99.99,"ask":100.01}
{"event_id":"qa1","kind":"quote","ts":"2024-01-15T14:30:00.500Z","symbol":"AAPL","venue":"ARCA","bid":99.98,"ask":100.04}
{"event_id":"n1","kind":"order_new","ts":"2024-01-15T14:30:01.000Z","order_id":"O1","symbol":"AAPL","venue":"XNAS","side":"buy","qty":100,"price":100.02,"order_type":"limit","strategy_id":"S1","account_id":"A1"}
{"event_id":"a1","kind":"order_ack","ts":"2024-01-15T14:30:01.004Z","order_id":"O1"}
{"event_id":"f1","kind":"fill","ts":"2024-01-15T14:30:01.500Z","order_id":"O1","exec_id":"E1","last_qty":40,"last_px":100.01,"cum_qty":40,"leaves_qty":60,"liquidity":"maker","fee":0.04}
{"event_id":"qx2","kind":"quote","ts":"2024-01-15T14:30:02.000Z","symbol":"AAPL","venue":"XNAS","bid":100.02,"ask":100.04}
{"event_id":"f2","kind":"fill","ts":"2024-01-15T14:30:03.000Z","order_id":"O1","exec_id":"E2","last_qty":60,"last_px":100.02,"cum_qty":100,"leaves_qty":0,"liquidity":"taker","fee":0.12}
{"event_id":"n2","kind":"order_new","ts":"2024-01-15T14:30:04.000Z","order_id":"O2","symbol":"AAPL","venue":"XNAS","side":"sell","qty":150,"price":100.03,"order_type":"limit","strategy_id":"S1","account_id":"A1"}
{"event_id":"a2","kind":"order_ack","ts":"2024-01-15T14:30:04.010Z","order_id":"O2"}
{"event_id":"f3","kind":"fill","ts":"2024-01-15T14:30:05.000Z","order_id":"O2","exec_id":"E3","last_qty":150,"last_px":100.05,"cum_qty":150,"leaves_qty":0,"liquidity":"maker","fee":0.15}
{"event_id":"qx3","kind":"quote","ts":"2024-01-15T14:30:05.500Z","symbol":"AAPL","venue":"XNAS","bid":99.99,"ask":100.01}
{"event_id":"n3","kind":"order_new","ts":"2024-01-15T14:30:06.000Z","order_id":"O3","symbol":"AAPL","venue":"XNAS","side":"buy","qty":50,"price":100.00,"order_type":"limit","strategy_id":"S1","account_id":"A1"}
{"event_id":"a3","kind":"order_ack","ts":"2024-01-15T14:30:06.003Z","order_id":"O3"}
{"event_id":"f4","kind":"fill","ts":"2024-01-15T14:30:07.000Z","order_id":"O3","exec_id":"E4","last_qty":50,"last_px":99.99,"cum_qty":50,"leaves_qty":0,"liquidity":"maker","fee":0.05}
{"event_id":"qa2","kind":"quote","ts":"2024-01-15T14:30:07.500Z","symbol":"AAPL","venue":"ARCA","bid":100.00,"ask":100.04}
{"event_id":"p1","kind":"position","ts":"2024-01-15T14:30:07.600Z","symbol":"AAPL","strategy_id":"S1","account_id":"A1","position":0,"realized_pnl":6.04,"unrealized_pnl":0}
{"event_id":"n4","kind":"order_new","ts":"2024-01-15T14:30:08.000Z","order_id":"O4","symbol":"AAPL","venue":"ARCA","side":"buy","qty":20,"order_type":"market","strategy_id":"S1","account_id":"A1"}
{"event_id":"a4","kind":"order_ack","ts":"2024-01-15T14:30:08.002Z","order_id":"O4"}
{"event_id":"f5","kind":"fill","ts":"2024-01-15T14:30:08.100Z","order_id":"O4","exec_id":"E5","last_qty":20,"last_px":100.04,"cum_qty":20,"leaves_qty":0,"liquidity":"taker","fee":0.08}
{"event_id":"qx4","kind":"quote","ts":"2024-01-15T14:30:08.500Z","symbol":"AAPL","venue":"XNAS","bid":100.05,"ask":100.07}
{"event_id":"qx5","kind":"quote","ts":"2024-01-15T14:30:09.000Z","symbol":"AAPL","venue":"XNAS","bid":100.20}
{"event_id":"p2","kind":"position","ts":"2024-01-15T14:30:09.500Z","symbol":"AAPL","strategy_id":"S1","account_id":"A1","position":25,"realized_pnl":5.96,"unrealized_pnl":0.4}
{"event_id":"n5","kind":"order_new","ts":"2024-01-15T14:30:10.000Z","order_id":"O5","symbol":"MSFT","venue":"ARCA","side":"buy","qty":10,"price":400.00,"order_type":"limit","strategy_id":"S2","account_id":"A2"}
{"event_id":"a5","kind":"order_ack","ts":"2024-01-15T14:30:10.005Z","order_id":"O5"}
{"event_id":"f6","kind":"fill","ts":"2024-01-15T14:30:10.500Z","order_id":"O5","exec_id":"E6","last_qty":4,"last_px":400.00,"cum_qty":4,"leaves_qty":6,"liquidity":"taker","fee":0.16}
{"event_id":"qm1","kind":"quote","ts":"2024-01-15T14:30:10.800Z","symbol":"MSFT","venue":"ARCA","bid":400.10,"ask":400.30}
{"event_id":"c5","kind":"order_cancel_request","ts":"2024-01-15T14:30:11.000Z","order_id":"O5"}
{"event_id":"x5","kind":"order_cancelled","ts":"2024-01-15T14:30:11.020Z","order_id":"O5"}
{"event_id":"n6","kind":"order_new","ts":"2024-01-15T14:30:12.000Z","order_id":"O6","symbol":"MSFT","venue":"XNAS","side":"sell","qty":5,"price":400.10,"order_type":"limit","strategy_id":"S2","account_id":"A2"}
{"event_id":"j6","kind":"order_rejected","ts":"2024-01-15T14:30:12.001Z","order_id":"O6","reason":"insufficient_margin"}
{"event_id":"p3","kind":"position","ts":"2024-01-15T14:30:12.200Z","symbol":"MSFT","strategy_id":"S2","account_id":"A2","position":4,"realized_pnl":-0.10}
{"event_id":"n7","kind":"order_new","ts":"2024-01-15T14:30:12.500Z","order_id":"O7","symbol":"AAPL","venue":"XNAS","side":"buy","qty":1,"price":100.00,"order_type":"limit","strategy_id":"S2","account_id":"A2"}
{"event_id":"j7","kind":"order_rejected","ts":"2024-01-15T14:30:12.502Z","order_id":"O7","reason":"price_band"}
{"event_id":"n8","kind":"order_new","ts":"2024-01-15T14:30:13.000Z","order_id":"O8","symbol":"AAPL","venue":"XNAS","side":"buy","qty":30,"price":99.90,"order_type":"limit","strategy_id":"S2","account_id":"A2"}
{"event_id":"a8","kind":"order_ack","ts":"2024-01-15T14:30:13.001Z","order_id":"O8"}
{"event_id":"r8","kind":"order_replace","ts":"2024-01-15T14:30:13.500Z","order_id":"O8r","orig_order_id":"O8","qty":40,"price":99.95}
{"event_id":"c8","kind":"order_cancel_request","ts":"2024-01-15T14:30:14.000Z","order_id":"O8c","orig_order_id":"O8r"}
{"event_id":"x8","kind":"order_cancelled","ts":"2024-01-15T14:30:14.005Z","order_id":"O8c","orig_order_id":"O8r"}
{"event_id":"n9","kind":"order_new","ts":"2024-01-15T14:30:15.000Z","order_id":"O9","symbol":"AAPL","venue":"XNAS","side":"sell","qty":10,"price":100.10,"order_type":"limit","strategy_id":"S1","account_id":"A1"}
{"event_id":"a9","kind":"order_ack","ts":"2024-01-15T14:30:15.004Z","order_id":"O9"}
{"event_id":"n10","kind":"order_new","ts":"2024-01-15T14:30:16.000Z","order_id":"O10","symbol":"AAPL","venue":"ARCA","side":"sell","qty":20,"price":100.06,"order_type":"limit","strategy_id":"S2","account_id":"A2"}
{"event_id":"a10","kind":"order_ack","ts":"2024-01-15T14:30:16.006Z","order_id":"O10"}
{"event_id":"f7","kind":"fill","ts":"2024-01-15T14:30:16.500Z","order_id":"O10","exec_id":"E7","last_qty":5,"last_px":100.06,"cum_qty":5,"leaves_qty":15,"liquidity":"maker","fee":0.02}
{"event_id":"qx6","kind":"quote","ts":"2024-01-15T14:30:16.800Z","symbol":"AAPL","venue":"XNAS","bid":100.00,"ask":100.02}
{"event_id":"c10","kind":"order_cancel_request","ts":"2024-01-15T14:30:17.000Z","order_id":"O10"}
{"event_id":"x10","kind":"order_cancelled","ts":"2024-01-15T14:30:17.010Z","order_id":"O10"}
{"event_id":"n12","kind":"order_new","ts":"2024-01-15T14:30:18.000Z","order_id":"O12","symbol":"AAPL","venue":"XNAS","side":"buy","qty":1,"price":100.00,"order_type":"limit","strategy_id":"S2","account_id":"A2"}
{"event_id":"a12","kind":"order_ack","ts":"2024-01-15T14:30:17.990Z","order_id":"O12"}
"""

DAY_NS = 1_705_276_800 * 10**9  # 2024-01-15T00:00:00Z
T0 = DAY_NS + (14 * 3600 + 30 * 60) * 10**9  # 14:30:00


def at(seconds: float) -> int:
    """UTC ns of 14:30:00 + seconds."""
    return T0 + round(seconds * 1e9)


def approx(value: float) -> Any:
    return pytest.approx(value, rel=1e-9, abs=1e-9)


def bps(x: float, ref: float) -> float:
    return x / ref * 1e4


# per fill, by hand (see the module docstring)
SLIP: dict[str, float | None] = {
    "f1": bps(100.01 - 100.00, 100.00),  # +1
    "f2": bps(100.02 - 100.00, 100.00),  # +2
    "f3": -bps(100.05 - 100.03, 100.03),  # −1.9994 (a sell above the mid)
    "f4": bps(99.99 - 100.00, 100.00),  # −1
    "f5": bps(100.04 - 100.02, 100.02),  # +1.9996
    "f6": None,  # no MSFT quote before O5
    "f7": -bps(100.06 - 100.02, 100.02),  # −3.9992
}
KNOWN: dict[str, float] = {k: v for k, v in SLIP.items() if v is not None}
CAPTURE = {  # side × (mid at fill − px) / mid
    "f1": bps(100.00 - 100.01, 100.00),
    "f2": bps(100.03 - 100.02, 100.03),
    "f3": -bps(100.03 - 100.05, 100.03),
    "f4": bps(100.00 - 99.99, 100.00),
    "f5": bps(100.02 - 100.04, 100.02),
    "f6": None,
    "f7": -bps(100.02 - 100.06, 100.02),
}
# markouts: side × (mid at fill + h − px) / px, any venue; null past the last quote (16.8 s)
MARKOUT_1S = {
    "f1": bps(100.03 - 100.01, 100.01),  # 02.500 → qx2
    "f2": bps(100.03 - 100.02, 100.02),  # 04.000 → qx2
    "f3": -bps(100.00 - 100.05, 100.05),  # 06.000 → qx3
    "f4": bps(100.02 - 99.99, 99.99),  # 08.000 → qa2
    "f5": bps(100.06 - 100.04, 100.04),  # 09.100 → qx4 (qx5 is one-sided)
    "f6": None,  # 11.500: MSFT data ends at 10.800
    "f7": None,  # 17.500 > 16.800
}
MARKOUT_5S = {
    "f1": bps(100.00 - 100.01, 100.01),  # 06.500 → qx3
    "f2": bps(100.02 - 100.02, 100.02),  # 08.000 → qa2
    "f3": -bps(100.06 - 100.05, 100.05),  # 10.000 → qx4
    "f4": bps(100.06 - 99.99, 99.99),  # 12.000 → qx4
    "f5": bps(100.06 - 100.04, 100.04),  # 13.100 → qx4
    "f6": None,
    "f7": None,
}
NOTIONAL = {
    "f1": 40 * 100.01,
    "f2": 60 * 100.02,
    "f3": 150 * 100.05,
    "f4": 50 * 99.99,
    "f5": 20 * 100.04,
    "f6": 4 * 400.00,
    "f7": 5 * 100.06,
}
MAKER = ("f1", "f3", "f4", "f7")
TAKER = ("f2", "f5", "f6")
ORDER_SLIP: dict[str, float] = {
    "O1": (40 * 1 + 60 * 2) / 100,
    "O2": KNOWN["f3"],
    "O3": KNOWN["f4"],
    "O4": KNOWN["f5"],
    "O10": KNOWN["f7"],
}
SHORTFALL = {
    "O1": bps(10001.6 - 10000 + 0.16, 10000),
    "O2": bps(-(15007.5 - 15004.5) + 0.15, 15004.5),
    "O3": bps(-0.5 + 0.05, 5000),
    "O4": bps(2000.8 - 2000.4 + 0.08, 2000.4),
    "O10": bps(-(500.3 - 500.1) + 0.02 + 0.0, 2000.4),  # opportunity at the ARCA mid: 0
    "O8": 0.0,  # nothing filled, the mid did not move (100.06 → 100.06)
    "O6": 0.0,  # rejected: MSFT mid 400.20 at arrival and at the reject
    "O7": 0.0,  # rejected: AAPL XNAS mid 100.06 at arrival and at the reject
}
ARRIVAL_NOTIONAL = {
    "O1": 10000,
    "O2": 15004.5,
    "O3": 5000,
    "O4": 2000.4,
    "O10": 2000.4,
    "O8": 40 * 100.06,
    "O6": 5 * 400.20,
    "O7": 100.06,
}


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (DuckDB ``quantile_cont``, numpy's
    default, Hyndman–Fan type 7): position (n − 1) × q."""
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    d = tmp_path_factory.mktemp("golden")
    (d / "engine.jsonl").write_text(ENGINE, encoding="utf-8")
    cfg = Config()
    cfg.sources = [SourceConfig(name="engine", format="jsonl")]
    cfg.store.url = f"duckdb:///{d / 'golden.duckdb'}"
    store = open_store(cfg.store.url)
    summary = replay(cfg, plan_replay(cfg, [str(d / "engine.jsonl")], "engine"), store)
    assert (summary.events, summary.rejects) == (48, 0)
    with TestClient(create_app(store)) as c:
        yield c
    store.close()


def get(client: TestClient, path: str, **params: Any) -> dict[str, Any]:
    resp = client.get(f"/log_stream/{path}", params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def by(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {r[key]: r for r in rows}


# ---------------------------------------------------------------------------- latency

ACK_MS = {"O1": 4, "O2": 10, "O3": 3, "O4": 2, "O5": 5, "O8": 1, "O9": 4, "O10": 6}
FILL_MS = {"O1": 500, "O2": 1000, "O3": 1000, "O4": 100, "O5": 500, "O10": 500}
CANCEL_MS = {"O5": 20, "O8": 5, "O10": 10}


def test_latency_overall_percentiles_and_skew(client: TestClient) -> None:
    body = get(client, "latency_analysis")
    ack = body["ack"]["overall"]
    # non-negative acks sorted: 1 2 3 4 4 5 6 10 (O12's −10 ms is clock skew)
    assert ack["count"] == 8 and ack["negative_excluded"] == 1
    assert ack["mean_ms"] == approx(35 / 8)
    assert ack["p50_ms"] == approx(4.0)  # position 3.5 between 4 and 4
    assert ack["p90_ms"] == approx(6 + 0.3 * 4)  # position 6.3: 6 → 10
    assert ack["p95_ms"] == approx(6 + 0.65 * 4)
    assert ack["p99_ms"] == approx(6 + 0.93 * 4)
    assert ack["p999_ms"] == approx(6 + 0.993 * 4)
    assert ack["max_ms"] == 10.0
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)):
        assert ack[f"{name}_ms"] == approx(quantile(list(ACK_MS.values()), q))
    fill = body["fill"]["overall"]  # 100 500 500 500 1000 1000
    assert (fill["count"], fill["mean_ms"], fill["p50_ms"], fill["p90_ms"]) == (
        6,
        approx(600.0),
        approx(500.0),
        approx(1000.0),
    )
    cancel = body["cancel"]["overall"]  # 5 10 20
    assert cancel["count"] == 3
    assert cancel["mean_ms"] == approx(35 / 3)
    assert cancel["p50_ms"] == approx(10.0)
    assert cancel["p90_ms"] == approx(10 + 0.8 * 10)
    assert cancel["max_ms"] == 20.0


def test_latency_by_group(client: TestClient) -> None:
    ack = get(client, "latency_analysis")["ack"]
    venue = by(ack["by_venue"], "venue")
    # XNAS: O1 4, O2 10, O3 3, O8 1, O9 4 (+ O12 skew); ARCA: O4 2, O5 5, O10 6
    assert venue["XNAS"]["count"] == 5 and venue["XNAS"]["negative_excluded"] == 1
    assert venue["XNAS"]["mean_ms"] == approx(22 / 5)
    assert venue["ARCA"]["p50_ms"] == approx(5.0)
    assert venue["ARCA"]["mean_ms"] == approx(13 / 3)
    strategy = by(ack["by_strategy"], "strategy")
    assert strategy["S1"]["mean_ms"] == approx((4 + 10 + 3 + 2 + 4) / 5)
    assert strategy["S2"]["mean_ms"] == approx((5 + 1 + 6) / 3)
    kinds = by(ack["by_order_type"], "order_type")
    assert kinds["market"]["count"] == 1 and kinds["market"]["max_ms"] == 2.0
    assert by(ack["by_symbol"], "symbol")["MSFT"]["mean_ms"] == approx(5.0)
    fill_venue = by(get(client, "latency_analysis")["fill"]["by_venue"], "venue")
    assert fill_venue["XNAS"]["mean_ms"] == approx((500 + 1000 + 1000) / 3)
    assert fill_venue["ARCA"]["mean_ms"] == approx((100 + 500 + 500) / 3)


def test_latency_histogram_and_trend(client: TestClient) -> None:
    ack = get(client, "latency_analysis")["ack"]
    # buckets floor(log10(ms) × 4): 1 → 0; 2 → 1; 3, 4, 4, 5 → 1.9…2.8 → 1 or 2; …
    expected: dict[int, int] = {}
    for ms in ACK_MS.values():
        idx = {1: 0, 2: 1, 3: 1, 4: 2, 5: 2, 6: 3, 10: 4}[ms]
        expected[idx] = expected.get(idx, 0) + 1
    hist = ack["histogram"]
    assert [h["count"] for h in hist] == [expected.get(i, 0) for i in range(5)]
    assert hist[0]["lower_ms"] == approx(1.0) and hist[-1]["lower_ms"] == approx(10.0)
    (minute,) = ack["trend_per_minute"]
    assert minute["minute_ns"] == T0 and minute["count"] == 8
    assert minute["mean_ms"] == approx(35 / 8)


def test_latency_filters(client: TestClient) -> None:
    ack = get(client, "latency_analysis", strategy="S2", venue="XNAS")["ack"]["overall"]
    assert (ack["count"], ack["max_ms"], ack["negative_excluded"]) == (1, 1.0, 1)
    ack = get(client, "latency_analysis", order_type="market")["ack"]["overall"]
    assert (ack["count"], ack["mean_ms"]) == (1, 2.0)
    # a window holding only 14:30:04–14:30:07: acks of O2 (10) and O3 (3)
    ack = get(
        client, "latency_analysis", **{"from": "2024-01-15T14:30:04Z", "to": "2024-01-15T14:30:07Z"}
    )["ack"]
    assert ack["overall"]["count"] == 2 and ack["overall"]["mean_ms"] == approx(6.5)


# ---------------------------------------------------------------------------- TCA


def test_fill_level_benchmarks_and_measures(client: TestClient) -> None:
    body = get(client, "fills")
    assert "positive = cost" in body["sign_convention"]
    fills = by(body["fills"], "event_id")
    assert list(fills) == ["f1", "f2", "f3", "f4", "f5", "f6", "f7"]
    for fid, f in fills.items():
        for field, table in (
            ("slippage_bps", SLIP),
            ("spread_capture_bps", CAPTURE),
            ("markout_1s_bps", MARKOUT_1S),
            ("markout_5s_bps", MARKOUT_5S),
        ):
            exp = table[fid]
            assert f[field] == (None if exp is None else approx(exp)), (fid, field)
        exp = SLIP[fid]
        assert f["price_improvement_bps"] == (None if exp is None else approx(-exp))
        assert f["markout_30s_bps"] is None and f["markout_60s_bps"] is None  # data ends
        assert f["notional"] == approx(NOTIONAL[fid])
    # benchmarks stored next to each value: price and time
    assert (fills["f1"]["arrival_mid"], fills["f1"]["arrival_ts"]) == (approx(100.0), at(0))
    assert (fills["f2"]["arrival_mid"], fills["f2"]["arrival_ts"]) == (approx(100.0), at(0))
    assert (fills["f2"]["mid_fill"], fills["f2"]["mid_fill_ts"]) == (approx(100.03), at(2))
    assert (fills["f5"]["arrival_mid"], fills["f5"]["arrival_ts"]) == (approx(100.02), at(7.5))
    # no quote → null, never 0
    f6 = fills["f6"]
    assert (f6["arrival_mid"], f6["arrival_ts"], f6["mid_fill"]) == (None, None, None)
    assert f6["order_id"] == "O5" and f6["liquidity"] == "taker"


def test_slippage_aggregates(client: TestClient) -> None:
    body = get(client, "slippage_analysis")
    with_bm = [v for v in SLIP.values() if v is not None]
    f = body["fills"]
    assert (f["count"], f["with_benchmark"], f["without_benchmark"]) == (7, 6, 1)
    assert f["mean_bps"] == approx(mean(with_bm))
    assert f["p50_bps"] == approx(statistics.median(with_bm))
    assert f["p95_bps"] == approx(quantile(with_bm, 0.95))
    weighted = sum(KNOWN[k] * NOTIONAL[k] for k in KNOWN)
    assert f["notional_weighted_mean_bps"] == approx(weighted / sum(NOTIONAL[k] for k in KNOWN))
    assert f["price_improvement_mean_bps"] == approx(-mean(with_bm))
    captures = [v for v in CAPTURE.values() if v is not None]
    assert f["spread_capture_mean_bps"] == approx(mean(captures))
    assert f["notional"] == approx(sum(NOTIONAL.values()))
    assert f["fees"] == approx(0.04 + 0.12 + 0.15 + 0.05 + 0.08 + 0.16 + 0.02)
    # the distribution: 1-bps buckets [lower, upper)
    dist = {(d["lower_bps"], d["upper_bps"]): d["count"] for d in body["distribution"]}
    assert dist == {(-4.0, -3.0): 1, (-2.0, -1.0): 2, (1.0, 2.0): 3}  # f4 −1.0000000000005
    symbol = by(body["by_symbol"], "symbol")
    assert symbol["MSFT"]["mean_bps"] is None  # no benchmark: null, not 0
    assert (symbol["MSFT"]["count"], symbol["MSFT"]["with_benchmark"]) == (1, 0)
    venue = by(body["by_venue"], "venue")
    assert venue["ARCA"]["mean_bps"] == approx((KNOWN["f5"] + KNOWN["f7"]) / 2)
    assert venue["XNAS"]["mean_bps"] == approx(
        (KNOWN["f1"] + KNOWN["f2"] + KNOWN["f3"] + KNOWN["f4"]) / 4
    )


def test_maker_vs_taker(client: TestClient) -> None:
    body = get(client, "slippage_analysis")
    liq = by(body["by_liquidity"], "liquidity")
    maker = [KNOWN[k] for k in MAKER]
    assert liq["maker"]["count"] == 4
    assert liq["maker"]["mean_bps"] == approx(mean(maker))
    assert liq["maker"]["qty"] == 40 + 150 + 50 + 5
    assert liq["taker"]["without_benchmark"] == 1
    assert liq["taker"]["mean_bps"] == approx((KNOWN["f2"] + KNOWN["f5"]) / 2)
    marks = body["markouts"]
    maker_1s = [v for k in MAKER if (v := MARKOUT_1S[k]) is not None]
    assert marks["liquidity=maker"]["1s"]["count"] == 3
    assert marks["liquidity=maker"]["1s"]["mean_bps"] == approx(mean(maker_1s))
    overall_1s = [v for v in MARKOUT_1S.values() if v is not None]
    overall_5s = [v for v in MARKOUT_5S.values() if v is not None]
    assert marks["overall"]["1s"]["mean_bps"] == approx(mean(overall_1s))
    assert marks["overall"]["1s"]["median_bps"] == approx(statistics.median(overall_1s))
    assert marks["overall"]["5s"]["mean_bps"] == approx(mean(overall_5s))
    assert marks["overall"]["30s"] == {"count": 0, "mean_bps": None, "median_bps": None}


def test_order_level_slippage_and_implementation_shortfall(client: TestClient) -> None:
    rows = by(get(client, "orders")["orders"], "order_id")
    assert set(rows) == {"O1", "O2", "O3", "O4", "O5", "O6", "O7", "O8", "O10"}
    for oid, row in rows.items():
        exp = ORDER_SLIP.get(oid)
        assert row["slippage_bps"] == (None if exp is None else approx(exp)), oid
        exp = SHORTFALL.get(oid)
        assert row["shortfall_bps"] == (None if exp is None else approx(exp)), oid
    o10 = rows["O10"]  # end mid from the order's own venue, like its arrival
    assert (o10["mid_end"], o10["mid_end_ts"]) == (approx(100.02), at(7.5))
    assert rows["O5"]["arrival_mid"] is None and rows["O5"]["shortfall_bps"] is None
    assert rows["O1"]["execution_cost_bps"] == approx(1.6)
    s = get(client, "slippage_analysis")["orders"]
    assert (s["count"], s["with_benchmark"]) == (9, 5)
    assert s["slippage_mean_bps"] == approx(mean(list(ORDER_SLIP.values())))
    assert s["slippage_median_bps"] == approx(-1.0)
    assert s["implementation_shortfall_mean_bps"] == approx(mean(list(SHORTFALL.values())))
    assert s["implementation_shortfall_median_bps"] == approx(0.0)
    cost = sum(SHORTFALL[k] * ARRIVAL_NOTIONAL[k] for k in SHORTFALL)
    assert s["implementation_shortfall_notional_weighted_bps"] == approx(
        cost / sum(ARRIVAL_NOTIONAL.values())
    )


def test_order_view_follows_replace_and_cancel_ids(client: TestClient) -> None:
    view = get(client, "orders/O8c")
    assert (view["order_id"], view["status"], view["qty"], view["price"]) == (
        "O8",
        "cancelled",
        40.0,
        99.95,
    )
    assert view["aliases"] == ["O8r", "O8c"]
    assert (view["ack_latency_ms"], view["cancel_latency_ms"]) == (approx(1.0), approx(5.0))
    assert view["arrival_mid"] == approx(100.06)  # qx5 has no ask: not a mid
    o5 = get(client, "orders/O5")
    assert (o5["arrival_mid"], o5["slippage_bps"], o5["fill_rate"]) == (None, None, 0.4)


# ---------------------------------------------------------------------------- fill rates


def test_fill_rates(client: TestClient) -> None:
    body = get(client, "fill_rates")
    o = body["overall"]
    # terminal: O1 100/100, O2 150/150, O3 50/50, O4 20/20, O5 4/10, O6 0/5, O7 0/1,
    # O8 0/40 (after the replace), O10 5/20; O9 and O12 still open
    assert (o["orders"], o["ordered_qty"], o["filled_qty"]) == (9, 396.0, 329.0)
    assert o["fill_rate_qty"] == approx(329 / 396)
    assert o["fill_rate_count"] == approx(4 / 9)
    assert (
        o["fully_filled"],
        o["partially_filled"],
        o["cancelled_without_fill"],
        o["cancelled_after_partial"],
        o["rejected"],
        o["expired"],
    ) == (4, 2, 1, 2, 2, 0)
    assert body["rejected_by_reason"] == [
        {"reason": "insufficient_margin", "orders": 1},
        {"reason": "price_band", "orders": 1},
    ]
    assert body["still_open"] == 2
    venue = by(body["by_venue"], "venue")
    assert (venue["XNAS"]["ordered_qty"], venue["XNAS"]["filled_qty"]) == (346.0, 300.0)
    assert venue["ARCA"]["fill_rate_qty"] == approx(29 / 50)
    strategy = by(body["by_strategy"], "strategy")
    assert strategy["S1"]["fill_rate_qty"] == 1.0
    assert strategy["S2"]["fill_rate_qty"] == approx(9 / 76)
    both = get(client, "fill_rates", venue="ARCA", strategy="S2")["overall"]
    assert (both["orders"], both["filled_qty"], both["fill_rate_qty"]) == (2, 9.0, approx(0.3))


# ---------------------------------------------------------------------------- PnL

FEES = {"S1": 0.04 + 0.12 + 0.15 + 0.05 + 0.08, "S2": 0.16 + 0.02}
GROSS_S1 = 100 * (100.05 - 100.016) + 50 * (100.05 - 99.99)  # 3.4 + 3.0


def test_positions_at_a_time_with_a_one_sided_quote(client: TestClient) -> None:
    body = get(client, "positions", to="2024-01-15T14:30:09.500Z")
    (row,) = body["positions"]  # S2 has no fill yet
    assert (row["strategy"], row["account"], row["symbol"]) == ("S1", "A1", "AAPL")
    assert (row["position"], row["avg_cost"]) == (20.0, approx(100.04))
    # the latest two-sided mid is qx4 (08.500); qx5 (09.000) has no ask and leaves it
    assert (row["mark"], row["mark_ts"], row["mark_source"]) == (approx(100.06), at(8.5), "mid")
    assert row["gross_realized_pnl"] == approx(GROSS_S1)
    assert row["fees"] == approx(FEES["S1"])
    assert row["realized_pnl"] == approx(GROSS_S1 - FEES["S1"])  # 5.96
    assert row["unrealized_pnl"] == approx(20 * (100.06 - 100.04))  # 0.4
    assert row["total_pnl"] == approx(GROSS_S1 - FEES["S1"] + 0.4)


def test_pnl_overall_and_by_strategy(client: TestClient) -> None:
    body = get(client, "pnl")
    # at the end: S1 long 20 @100.04, S2 MSFT long 4 @400, S2 AAPL short 5 @100.06;
    # marks: AAPL qx6 100.01, MSFT qm1 400.20
    unreal = {"S1": 20 * (100.01 - 100.04), "S2": 4 * (400.20 - 400.0) - 5 * (100.01 - 100.06)}
    s = by(body["by_strategy"], "strategy")
    assert s["S1"]["gross_realized_pnl"] == approx(GROSS_S1)
    assert s["S1"]["realized_pnl"] == approx(GROSS_S1 - FEES["S1"])
    assert s["S1"]["unrealized_pnl"] == approx(unreal["S1"])
    assert s["S2"]["realized_pnl"] == approx(-FEES["S2"])
    assert s["S2"]["unrealized_pnl"] == approx(unreal["S2"])
    assert s["S2"]["open_positions"] == 2
    o = body["overall"]
    assert o["fees"] == approx(FEES["S1"] + FEES["S2"])
    assert o["realized_pnl"] == approx(GROSS_S1 - FEES["S1"] - FEES["S2"])
    assert o["total_pnl"] == approx(GROSS_S1 - FEES["S1"] - FEES["S2"] + sum(unreal.values()))
    assert "net of fees" in body["convention"]


def test_maker_taker_pnl_and_turnover(client: TestClient) -> None:
    body = get(client, "pnl")
    liq = by(body["by_liquidity"], "liquidity")
    assert (liq["maker"]["fills"], liq["maker"]["qty"]) == (4, 245.0)
    assert liq["maker"]["notional"] == approx(sum(NOTIONAL[k] for k in MAKER))
    assert liq["maker"]["fees"] == approx(0.04 + 0.15 + 0.05 + 0.02)
    assert liq["maker"]["realized_gross"] == approx(GROSS_S1)  # f3 and f4 closed, both maker
    assert liq["taker"]["realized_gross"] == approx(0.0)
    assert liq["taker"]["notional"] == approx(sum(NOTIONAL[k] for k in TAKER))
    # in a window the realised PnL of a fill is still its change to the carried-in state:
    # from 06.000 only f4 (maker) realises: 6.4 after it − 3.4 before the window = 3.0
    later = by(get(client, "pnl", **{"from": "2024-01-15T14:30:06Z"})["by_liquidity"], "liquidity")
    assert (later["maker"]["fills"], later["maker"]["realized_gross"]) == (2, approx(3.0))
    assert (later["taker"]["fills"], later["taker"]["realized_gross"]) == (2, approx(0.0))
    turnover = by(body["turnover_by_strategy"], "strategy_id")
    assert (turnover["S1"]["fills"], turnover["S1"]["qty"]) == (5, 320.0)
    assert turnover["S1"]["turnover"] == approx(
        sum(NOTIONAL[k] for k in ("f1", "f2", "f3", "f4", "f5"))
    )
    assert turnover["S2"]["turnover"] == approx(NOTIONAL["f6"] + NOTIONAL["f7"])


def test_round_trips_flat_to_flat_with_a_flip(client: TestClient) -> None:
    body = get(client, "round_trips")
    long_, short = body["round_trips"]
    # long: f1, f2 open; f3 closes 100 of 150 and takes 100/150 of its fee
    assert (long_["side"], long_["ts_open"], long_["ts_close"]) == ("long", at(1.5), at(5))
    assert long_["holding_s"] == approx(3.5)
    assert (long_["max_qty"], long_["entry_avg_px"], long_["fills"]) == (100.0, approx(100.016), 3)
    assert long_["gross_pnl"] == approx(3.4)
    assert long_["fees"] == approx(0.04 + 0.12 + 0.15 * 100 / 150)
    assert long_["pnl"] == approx(3.4 - 0.26)
    # short: the other 50 of f3 opens it (1/3 of the fee), f4 closes it
    assert (short["side"], short["ts_open"], short["ts_close"]) == ("short", at(5), at(7))
    assert (short["max_qty"], short["entry_avg_px"], short["fills"]) == (50.0, approx(100.05), 2)
    assert short["fees"] == approx(0.05 + 0.05)
    assert short["pnl"] == approx(3.0 - 0.10)
    summary = get(client, "pnl")["round_trips"]["overall"]
    assert (summary["count"], summary["wins"], summary["losses"]) == (2, 2, 0)
    assert summary["pnl"] == approx(3.14 + 2.9)
    assert summary["avg_holding_s"] == approx(2.75)
    assert summary["profit_factor"] is None  # no losing trip: undefined, not infinity
    # the flat book's realised PnL is the sum of its trips, and equals the cash flows
    cash = NOTIONAL["f3"] - NOTIONAL["f1"] - NOTIONAL["f2"] - NOTIONAL["f4"]
    assert summary["pnl"] == approx(cash - (0.04 + 0.12 + 0.15 + 0.05))


def test_equity_curve_on_a_one_second_grid(client: TestClient) -> None:
    body = get(
        client, "equity_curve", **{"from": "2024-01-15T14:30:00Z", "to": "2024-01-15T14:30:10Z"}
    )
    assert body["interval_s"] == 1.0
    points = body["points"]
    # a point at t is the state of [start, t): fills and quotes strictly before t
    expected = {
        1: 0.0,
        2: -0.04 + 40 * (100.01 - 100.01),  # long 40 @100.01, mark qa1 100.01
        3: -0.04 + 40 * (100.03 - 100.01),  # mark qx2
        4: -0.16 + 100 * (100.03 - 100.016),  # f2 in
        5: -0.16 + 100 * (100.03 - 100.016),
        6: 3.4 - 0.31 - 50 * (100.00 - 100.05),  # flipped short 50, mark qx3
        7: 3.4 - 0.31 - 50 * (100.00 - 100.05),
        8: 6.4 - 0.36,  # flat
        9: 6.4 - 0.44 + 20 * (100.06 - 100.04),  # long 20, mark qx4
        10: 6.4 - 0.44 + 20 * (100.06 - 100.04),  # qx5 one-sided: the mark stays
    }
    assert [p["ts"] for p in points] == [at(s) for s in expected]
    for p, value in zip(points, expected.values(), strict=True):
        assert p["total_pnl"] == approx(value), p["ts_iso"]
        assert p["by_strategy"] == {"S1": approx(value)}
    # a window that starts inside the history: the state carried in from before it
    body = get(
        client, "equity_curve", **{"from": "2024-01-15T14:30:04.5Z", "to": "2024-01-15T14:30:09.5Z"}
    )
    later = {
        5.5: 3.4 - 0.31 - 50 * (100.03 - 100.05),  # short 50, qx3 (05.500) not yet before t
        6.5: 3.4 - 0.31 - 50 * (100.00 - 100.05),
        7.5: 6.4 - 0.36,
        8.5: 6.4 - 0.44 + 20 * (100.02 - 100.04),  # mark qa2 (ARCA 07.500): any venue
        9.5: 6.4 - 0.44 + 20 * (100.06 - 100.04),
    }
    assert [p["ts"] for p in body["points"]] == [at(s) for s in later]
    for p, value in zip(body["points"], later.values(), strict=True):
        assert p["total_pnl"] == approx(value), p["ts_iso"]
    # S2 from 14:30:10 every 0.25 s: MSFT long 4 from 10.500, first MSFT quote 10.800:
    # at 10.75 the open position has no mark → null (not 0); at 11.0 it is marked
    s2 = get(client, "equity_curve", strategy="S2", interval_s=0.25,
             **{"from": "2024-01-15T14:30:10Z", "to": "2024-01-15T14:30:11Z"})  # fmt: skip
    values = [(p["ts"], p["by_strategy"]["S2"], p["total_pnl"]) for p in s2["points"]]
    marked = -0.16 + 4 * (400.20 - 400.0)
    assert values == [(at(10.25), 0.0, 0.0), (at(10.5), 0.0, 0.0), (at(10.75), None, None),
                      (at(11), approx(marked), approx(marked))]  # fmt: skip


def test_reconciliation_flags_differences_beyond_tolerance(client: TestClient) -> None:
    body = get(client, "reconciliation")
    rows = by(body["rows"], "event_id")
    assert (body["count"], body["flagged"]) == (3, 2)
    assert rows["p1"]["anomaly_types"] is None
    assert rows["p1"]["tradelog_realized_pnl"] == approx(6.04)
    p2 = rows["p2"]
    assert (p2["engine_position"], p2["tradelog_position"], p2["position_diff"]) == (25, 20, 5)
    assert p2["anomaly_types"] == "position_mismatch"
    p3 = rows["p3"]
    assert (p3["engine_realized_pnl"], p3["tradelog_realized_pnl"]) == (-0.10, approx(-0.16))
    assert p3["realized_pnl_diff"] == approx(0.06)
    assert p3["anomaly_types"] == "pnl_mismatch"
    marks = get(client, "anomalies", type=["position_mismatch", "pnl_mismatch"])["marks"]
    assert {(m["event_id"], m["type"], m["threshold"]) for m in marks} == {
        ("p2", "position_mismatch", 1e-6),
        ("p3", "pnl_mismatch", 0.01),
    }
    skew = get(client, "anomalies", type="clock_skew")["marks"]
    assert [(m["event_id"], m["value"]) for m in skew] == [("a12", -10.0)]


OLD_QUOTE = """\
{"event_id":"q0","kind":"quote","ts":"2024-01-15T14:00:00Z","symbol":"IBM","venue":"XNYS","bid":149.9,"ask":150.1}
{"event_id":"n1","kind":"order_new","ts":"2024-01-15T14:30:00Z","order_id":"B1","symbol":"IBM","venue":"XNYS","side":"buy","qty":10,"price":150.1}
{"event_id":"f1","kind":"fill","ts":"2024-01-15T14:30:00.500Z","order_id":"B1","exec_id":"X1","last_qty":10,"last_px":150.1,"leaves_qty":0}
{"event_id":"q1","kind":"quote","ts":"2024-01-15T14:30:03Z","symbol":"IBM","venue":"XNYS","bid":150.3,"ask":150.5}
{"event_id":"q2","kind":"quote","ts":"2024-01-15T14:30:10Z","symbol":"IBM","venue":"XNYS","bid":150.6,"ask":150.8}
"""


@pytest.mark.parametrize("window", [{}, {"from": "2024-01-15T14:30:00Z"}, {"minutes": 1}])
def test_markouts_use_a_quote_older_than_the_window(
    replay_into: Replayer, window: dict[str, str]
) -> None:
    """The last IBM quote before the fill is 30 minutes older than the window: +1 s
    (14:30:01.5) still marks against it (mid 150.0), +5 s against q1 (mid 150.4), +30 s
    is past the last quote (q2, 14:30:10): null. markout_1s = (150.0 − 150.1) / 150.1,
    markout_5s = (150.4 − 150.1) / 150.1."""
    _, store = replay_into({"old.jsonl": OLD_QUOTE})
    with TestClient(create_app(store)) as c:
        (fill,) = get(c, "fills", **window)["fills"]
        marks = get(c, "slippage_analysis", **window)["markouts"]["overall"]
    assert fill["arrival_mid"] == approx(150.0)
    assert fill["markout_1s_bps"] == approx(bps(150.0 - 150.1, 150.1))
    assert fill["markout_5s_bps"] == approx(bps(150.4 - 150.1, 150.1))
    assert marks["1s"]["mean_bps"] == approx(bps(150.0 - 150.1, 150.1))
    assert marks["5s"]["count"] == 1
    assert fill["markout_30s_bps"] is None and marks["30s"]["count"] == 0
    with TestClient(create_app(store)) as c:  # the mark of a position: q0, 30 minutes back
        (row,) = get(c, "positions", to="2024-01-15T14:30:02Z")["positions"]
    assert (row["mark"], row["mark_ts"]) == (approx(150.0), T0 - 30 * 60 * 10**9)
    assert row["unrealized_pnl"] == approx(10 * (150.0 - 150.1))


def test_limited_tables_keep_their_values(client: TestClient) -> None:
    """``limit`` keeps the first rows (by fill time / finish time) with the same values."""
    orders = get(client, "orders", limit=2)["orders"]
    assert [(o["order_id"], o["shortfall_bps"]) for o in orders] == [
        ("O1", approx(SHORTFALL["O1"])),
        ("O2", approx(SHORTFALL["O2"])),
    ]
    assert orders[1]["mid_end"] == approx(100.03)
    fills = get(client, "fills", limit=3, **{"from": "2024-01-15T14:30:03Z"})["fills"]
    assert [f["event_id"] for f in fills] == ["f2", "f3", "f4"]
    assert [f["markout_5s_bps"] for f in fills] == [
        approx(MARKOUT_5S["f2"]),
        approx(MARKOUT_5S["f3"]),
        approx(MARKOUT_5S["f4"]),
    ]
