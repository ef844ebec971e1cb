"""Golden tests: one small hand-written input per format, replayed through the whole
pipeline into a real DuckDB store, with every expected number worked out by hand.

All times are on Monday 2024-01-15 (UTC), so the weekend rule never fires, and every
price stays within 1 % of the mid and every slippage within 50 bps, so the only anomaly
marks are the ones a scenario asks for.

Formulas (DESIGN §4):
    ack_latency_ms    = ack.ts − new.ts
    fill_latency_ms   = first fill.ts − new.ts
    cancel_latency_ms = cancelled.ts − cancel_request.ts
    arrival_mid       = mid of the last two-sided quote at or before new.ts (order's venue
                        if that venue has quotes, else any venue); none → null
    slippage_bps      = side × (last_px − arrival_mid) / arrival_mid × 1e4 (+1 buy, −1 sell)
    order slippage    = Σ last_qty × slippage_bps / Σ last_qty
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Replayer
from tests.unit.parsing.test_fix import fix_message
from tradelog.storage.duckdb_store import DuckDBStore

DAY_NS = 1_705_276_800 * 10**9  # 2024-01-15T00:00:00Z


def at(second: int, frac_ns: int = 0, *, minute: int = 30, hour: int = 14) -> int:
    """UTC ns of hour:minute:second.frac on 2024-01-15 (default 14:30)."""
    return DAY_NS + (hour * 3600 + minute * 60 + second) * 10**9 + frac_ns


def rows(store: DuckDBStore, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = store.query(sql, params).to_pylist()
    return result


def one(store: DuckDBStore, sql: str, params: list[Any] | None = None) -> dict[str, Any]:
    found = rows(store, sql, params)
    assert len(found) == 1, found
    return found[0]


def order(store: DuckDBStore, order_id: str) -> dict[str, Any]:
    row = store.order_row(order_id)
    assert row is not None, f"no orders row for {order_id}"
    return row


def assert_accounting(
    store: DuckDBStore,
    source: str,
    *,
    lines_read: int,
    events: int,
    rejects: int,
    duplicates: int,
    ignored: int,
) -> None:
    """Per-source counters, the identity lines = events + rejects + duplicates + ignored,
    and the stored tables agreeing with the counters."""
    src = store.statistics()["sources"][source]
    assert (src["lines_read"], src["events"], src["rejects"], src["duplicates"]) == (
        lines_read,
        events,
        rejects,
        duplicates,
    )
    assert src["ignored"] == ignored
    assert lines_read == events + rejects + duplicates + ignored  # the scenario's own sum
    assert src["reconciled"] is True
    stored = one(
        store,
        "SELECT (SELECT count(*) FROM events WHERE source = $1) AS ev, "
        "(SELECT count(*) FROM rejects WHERE source = $1) AS rj",
        [source],
    )
    assert (stored["ev"], stored["rj"]) == (events, rejects)


# ===========================================================================
# JSON lines
#
# Quotes: XNAS 100.00/100.02 (mid 100.01) at :00.000, ARCA 99.98/100.00 (mid 99.99) at
# :00.100, XNAS 100.04/100.06 (mid 100.05) at :01.500.
#
# O1 buy 300 XNAS — partial fills across a quote change; O2 sell 50 ARCA — price
# improvement; O3 buy 10 MSFT — no quote at all; O4 — cancelled; O5 — rejected;
# O6 — ack stamped 2 ms before its order_new (clock skew), left open; OX — a fill for an
# order never seen; then a blank line, an exact copy of the f1 line, a truncated line and
# an order with a negative quantity.

JSONL = """\
{"event_id":"q1","kind":"quote","ts":"2024-01-15T14:30:00.000Z","symbol":"AAPL","venue":"XNAS","bid":100.00,"ask":100.02}
{"event_id":"q2","kind":"quote","ts":"2024-01-15T14:30:00.100Z","symbol":"AAPL","venue":"ARCA","bid":99.98,"ask":100.00}
{"event_id":"n1","kind":"order_new","ts":"2024-01-15T14:30:01.000Z","order_id":"O1","symbol":"AAPL","venue":"XNAS","side":"buy","qty":300,"price":100.05,"order_type":"limit","strategy_id":"S1","account_id":"A1"}
{"event_id":"a1","kind":"order_ack","ts":"2024-01-15T14:30:01.0025Z","order_id":"O1"}
{"event_id":"f1","kind":"fill","ts":"2024-01-15T14:30:01.010Z","order_id":"O1","exec_id":"E1","last_qty":100,"last_px":100.02,"cum_qty":100,"leaves_qty":200,"liquidity":"taker"}
{"event_id":"q3","kind":"quote","ts":"2024-01-15T14:30:01.500Z","symbol":"AAPL","venue":"XNAS","bid":100.04,"ask":100.06}
{"event_id":"f2","kind":"fill","ts":"2024-01-15T14:30:02.000Z","order_id":"O1","exec_id":"E2","last_qty":200,"last_px":100.05,"cum_qty":300,"leaves_qty":0,"liquidity":"maker"}
{"event_id":"n2","kind":"order_new","ts":"2024-01-15T14:30:02.500Z","order_id":"O2","symbol":"AAPL","venue":"ARCA","side":"sell","qty":50,"price":99.97,"order_type":"limit","strategy_id":"S1","account_id":"A1"}
{"event_id":"a2","kind":"order_ack","ts":"2024-01-15T14:30:02.501Z","order_id":"O2"}
{"event_id":"f3","kind":"fill","ts":"2024-01-15T14:30:02.600Z","order_id":"O2","exec_id":"E3","last_qty":50,"last_px":100.00,"cum_qty":50,"leaves_qty":0}
{"event_id":"n3","kind":"order_new","ts":"2024-01-15T14:30:03.000Z","order_id":"O3","symbol":"MSFT","venue":"XNAS","side":"buy","qty":10,"price":400.00,"order_type":"limit","strategy_id":"S1","account_id":"A1"}
{"event_id":"f4","kind":"fill","ts":"2024-01-15T14:30:03.050Z","order_id":"O3","exec_id":"E4","last_qty":10,"last_px":400.00,"cum_qty":10,"leaves_qty":0}
{"event_id":"n4","kind":"order_new","ts":"2024-01-15T14:30:04.000Z","order_id":"O4","symbol":"AAPL","venue":"XNAS","side":"buy","qty":100,"price":99.90,"order_type":"limit","strategy_id":"S1","account_id":"A1"}
{"event_id":"a4","kind":"order_ack","ts":"2024-01-15T14:30:04.001Z","order_id":"O4"}
{"event_id":"c4","kind":"order_cancel_request","ts":"2024-01-15T14:30:05.000Z","order_id":"O4"}
{"event_id":"x4","kind":"order_cancelled","ts":"2024-01-15T14:30:05.0075Z","order_id":"O4"}
{"event_id":"n5","kind":"order_new","ts":"2024-01-15T14:30:06.000Z","order_id":"O5","symbol":"AAPL","venue":"XNAS","side":"sell","qty":100,"price":100.10,"order_type":"limit","strategy_id":"S1","account_id":"A1"}
{"event_id":"r5","kind":"order_rejected","ts":"2024-01-15T14:30:06.003Z","order_id":"O5","reason":"insufficient margin"}
{"event_id":"n6","kind":"order_new","ts":"2024-01-15T14:30:07.000Z","order_id":"O6","symbol":"AAPL","venue":"XNAS","side":"buy","qty":20,"price":100.05,"order_type":"limit","strategy_id":"S1","account_id":"A1"}
{"event_id":"a6","kind":"order_ack","ts":"2024-01-15T14:30:06.998Z","order_id":"O6"}
{"event_id":"f9","kind":"fill","ts":"2024-01-15T14:30:08.000Z","order_id":"OX","symbol":"AAPL","exec_id":"E9","last_qty":5,"last_px":100.00}

{"event_id":"f1","kind":"fill","ts":"2024-01-15T14:30:01.010Z","order_id":"O1","exec_id":"E1","last_qty":100,"last_px":100.02,"cum_qty":100,"leaves_qty":200,"liquidity":"taker"}
{"event_id":"bad","kind":"fill","ts":"2024-01-15T14:30:09
{"event_id":"n7","kind":"order_new","ts":"2024-01-15T14:30:09.000Z","order_id":"O7","symbol":"AAPL","venue":"XNAS","side":"buy","qty":-5,"price":100.00}
"""  # noqa: E501
JSONL_LINES = JSONL.splitlines()

# O1: arrival = XNAS q1 mid (100.00 + 100.02) / 2 = 100.01 — the later ARCA quote (mid
#     99.99) is on another venue and the XNAS q3 (mid 100.05) comes after the order.
O1_MID = 100.01
O1_SLIP_F1 = (100.02 - 100.01) / 100.01 * 1e4  # +0.99990001 bps (buy above the mid: cost)
O1_SLIP_F2 = (100.05 - 100.01) / 100.01 * 1e4  # +3.99960004 bps
# quantity-weighted: (100 × 0.99990001 + 200 × 3.99960004) / 300 = 899.910009 / 300
O1_SLIP = 2.99970003
# avg px (100 × 100.02 + 200 × 100.05) / 300 = (10002 + 20010) / 300 = 100.04
# O2: sell on ARCA; arrival = ARCA q2 mid 99.99 (not the newer XNAS mid 100.05);
#     −1 × (100.00 − 99.99) / 99.99 × 1e4 = −1.00010001 bps (sold above the mid: improvement)
O2_SLIP = -1.00010001


@pytest.fixture
def jsonl_store(replay_into: Replayer) -> DuckDBStore:
    _, store = replay_into({"engine.jsonl": JSONL}, fmt="jsonl")
    return store


def test_jsonl_accounting(replay_into: Replayer) -> None:
    summary, store = replay_into({"engine.jsonl": JSONL}, fmt="jsonl")
    # 25 lines: 21 distinct events (3 quotes, 6 new, 4 acks, 1 cancel request, 1 cancelled,
    # 1 rejected, 5 fills), the blank line (ignored), the copy of f1 (duplicate), the
    # truncated line and the negative quantity (2 rejects).
    assert len(JSONL_LINES) == 25
    assert_accounting(store, "jsonl", lines_read=25, events=21, rejects=2, duplicates=1, ignored=1)
    assert (summary.records, summary.events, summary.rejects) == (25, 21, 2)
    assert (summary.duplicates, summary.ignored) == (1, 1)
    stats = store.statistics()
    assert stats["events_by_kind"] == {
        "fill": 5,
        "order_ack": 4,
        "order_cancel_request": 1,
        "order_cancelled": 1,
        "order_new": 6,
        "order_rejected": 1,
        "quote": 3,
    }
    assert stats["rejects_by_reason"] == {"invalid_quantity": 1, "malformed": 1}
    assert stats["first_event_ns"] == at(0)
    assert stats["last_event_ns"] == at(8)


def test_jsonl_orders_table_has_one_row_per_terminal_order(jsonl_store: DuckDBStore) -> None:
    # O6 (acked) and OX (a partial fill of an unknown order) never end: no row
    got = rows(jsonl_store, "SELECT order_id, status FROM orders ORDER BY order_id")
    assert got == [
        {"order_id": "O1", "status": "filled"},
        {"order_id": "O2", "status": "filled"},
        {"order_id": "O3", "status": "filled"},
        {"order_id": "O4", "status": "cancelled"},
        {"order_id": "O5", "status": "rejected"},
    ]
    assert jsonl_store.statistics()["finished_orders"] == 5


def test_jsonl_partial_fills_across_a_quote_change(jsonl_store: DuckDBStore) -> None:
    o1 = order(jsonl_store, "O1")
    assert (o1["side"], o1["qty"], o1["price"], o1["venue"]) == ("buy", 300.0, 100.05, "XNAS")
    assert (o1["strategy_id"], o1["account_id"], o1["order_type"]) == ("S1", "A1", "limit")
    assert (o1["filled_qty"], o1["n_fills"], o1["fill_rate"]) == (300.0, 2, 1.0)
    assert o1["avg_px"] == pytest.approx(100.04)
    assert o1["notional"] == pytest.approx(30012.0)
    assert (o1["maker_qty"], o1["taker_qty"]) == (200.0, 100.0)
    assert o1["ack_latency_ms"] == pytest.approx(2.5)  # 01.0025 − 01.000
    assert o1["fill_latency_ms"] == pytest.approx(10.0)  # 01.010 − 01.000
    assert o1["cancel_latency_ms"] is None
    assert (o1["ts_new"], o1["ts_ack"], o1["ts_first_fill"], o1["ts_done"]) == (
        at(1),
        at(1, 2_500_000),
        at(1, 10_000_000),
        at(2),
    )
    assert o1["arrival_mid"] == pytest.approx(O1_MID)
    assert o1["arrival_ts"] == at(0)  # q1, the XNAS quote
    assert o1["slippage_bps"] == pytest.approx(O1_SLIP)

    fills = rows(
        jsonl_store,
        "SELECT event_id, order_status, latency_ms, arrival_mid, slippage_bps, mkt_bid, mkt_ask "
        "FROM events WHERE root_order_id = 'O1' AND kind = 'fill' ORDER BY seq",
    )
    assert [f["event_id"] for f in fills] == ["f1", "f2"]
    f1, f2 = fills
    assert f1["order_status"] == "partially_filled"
    assert f2["order_status"] == "filled"
    assert f1["latency_ms"] == pytest.approx(10.0)  # the first fill completes fill latency
    assert f2["latency_ms"] is None
    assert f1["slippage_bps"] == pytest.approx(O1_SLIP_F1)
    assert f2["slippage_bps"] == pytest.approx(O1_SLIP_F2)
    # the arrival benchmark stays put while the market context follows the quotes
    assert f1["arrival_mid"] == f2["arrival_mid"] == pytest.approx(O1_MID)
    assert (f1["mkt_bid"], f1["mkt_ask"]) == (100.00, 100.02)
    assert (f2["mkt_bid"], f2["mkt_ask"]) == (100.04, 100.06)
    ack = one(jsonl_store, "SELECT latency_ms, order_status FROM events WHERE event_id = 'a1'")
    assert ack == {"latency_ms": pytest.approx(2.5), "order_status": "acked"}


def test_jsonl_sell_with_price_improvement(jsonl_store: DuckDBStore) -> None:
    o2 = order(jsonl_store, "O2")
    assert (o2["side"], o2["venue"], o2["status"], o2["filled_qty"]) == (
        "sell",
        "ARCA",
        "filled",
        50.0,
    )
    assert o2["arrival_mid"] == pytest.approx(99.99)
    assert o2["arrival_ts"] == at(0, 100_000_000)  # q2, the ARCA quote
    assert o2["slippage_bps"] == pytest.approx(O2_SLIP)
    assert o2["slippage_bps"] < 0
    assert o2["avg_px"] == pytest.approx(100.0)
    assert o2["ack_latency_ms"] == pytest.approx(1.0)  # 02.501 − 02.500
    assert o2["fill_latency_ms"] == pytest.approx(100.0)  # 02.600 − 02.500
    f3 = one(jsonl_store, "SELECT slippage_bps, arrival_mid FROM events WHERE event_id = 'f3'")
    assert f3["slippage_bps"] == pytest.approx(O2_SLIP)
    assert f3["arrival_mid"] == pytest.approx(99.99)


def test_jsonl_order_without_any_quote_has_null_arrival_and_slippage(
    jsonl_store: DuckDBStore,
) -> None:
    o3 = order(jsonl_store, "O3")
    assert (o3["symbol"], o3["status"], o3["filled_qty"]) == ("MSFT", "filled", 10.0)
    assert o3["arrival_mid"] is None
    assert o3["arrival_ts"] is None
    assert o3["slippage_bps"] is None  # null, never 0
    assert o3["ack_latency_ms"] is None  # never acked
    assert o3["fill_latency_ms"] == pytest.approx(50.0)  # 03.050 − 03.000
    # null in the stored events too (SQL NULL, not 0.0)
    assert one(
        jsonl_store,
        "SELECT count(*) AS n FROM events WHERE root_order_id = 'O3' "
        "AND arrival_mid IS NULL AND slippage_bps IS NULL",
    ) == {"n": 2}
    assert one(
        jsonl_store, "SELECT count(*) AS n FROM orders WHERE order_id = 'O3' AND slippage_bps = 0"
    ) == {"n": 0}


def test_jsonl_cancel_latency(jsonl_store: DuckDBStore) -> None:
    o4 = order(jsonl_store, "O4")
    assert o4["status"] == "cancelled"
    assert (o4["filled_qty"], o4["fill_rate"], o4["avg_px"], o4["n_fills"]) == (0.0, 0.0, None, 0)
    assert o4["cancel_latency_ms"] == pytest.approx(7.5)  # 05.0075 − 05.000
    assert o4["ack_latency_ms"] == pytest.approx(1.0)
    assert o4["slippage_bps"] is None  # no fill, no slippage
    assert o4["arrival_mid"] == pytest.approx(100.05)  # XNAS q3 was in force at 04.000
    assert o4["ts_done"] == at(5, 7_500_000)
    x4 = one(jsonl_store, "SELECT latency_ms, order_status FROM events WHERE event_id = 'x4'")
    assert x4 == {"latency_ms": pytest.approx(7.5), "order_status": "cancelled"}
    c4 = one(jsonl_store, "SELECT latency_ms FROM events WHERE event_id = 'c4'")
    assert c4["latency_ms"] is None


def test_jsonl_reject(jsonl_store: DuckDBStore) -> None:
    o5 = order(jsonl_store, "O5")
    assert (o5["status"], o5["reject_reason"], o5["filled_qty"]) == (
        "rejected",
        "insufficient margin",
        0.0,
    )
    mark = one(jsonl_store, "SELECT * FROM anomalies WHERE type = 'order_rejected'")
    assert (mark["event_id"], mark["order_id"], mark["severity"], mark["detail"]) == (
        "r5",
        "O5",
        "medium",
        "insufficient margin",
    )
    # the reject event got the order's context
    r5 = one(jsonl_store, "SELECT symbol, venue, strategy_id FROM events WHERE event_id = 'r5'")
    assert r5 == {"symbol": "AAPL", "venue": "XNAS", "strategy_id": "S1"}


def test_jsonl_ack_before_new_is_clock_skew_kept_negative(jsonl_store: DuckDBStore) -> None:
    a6 = one(
        jsonl_store,
        "SELECT latency_ms, anomaly_types, anomaly_severity FROM events WHERE event_id = 'a6'",
    )
    # ack 06.998 − new 07.000 = −2 ms: kept negative, never clamped to 0
    assert a6 == {
        "latency_ms": pytest.approx(-2.0),
        "anomaly_types": "clock_skew",
        "anomaly_severity": "medium",
    }
    mark = one(jsonl_store, "SELECT * FROM anomalies WHERE type = 'clock_skew'")
    assert (mark["event_id"], mark["order_id"], mark["value"], mark["threshold"]) == (
        "a6",
        "O6",
        pytest.approx(-2.0),
        0.0,
    )
    assert jsonl_store.order_row("O6") is None  # acked, not finished


def test_jsonl_fill_for_unknown_order_is_kept_and_marked(jsonl_store: DuckDBStore) -> None:
    f9 = one(
        jsonl_store,
        "SELECT root_order_id, last_qty, last_px, anomaly_types, slippage_bps "
        "FROM events WHERE event_id = 'f9'",
    )
    assert f9 == {
        "root_order_id": "OX",
        "last_qty": 5.0,
        "last_px": 100.0,
        "anomaly_types": "unknown_order",
        "slippage_bps": None,  # no order_new, no arrival mid
    }
    mark = one(jsonl_store, "SELECT * FROM anomalies WHERE type = 'unknown_order'")
    assert (mark["event_id"], mark["order_id"], mark["severity"]) == ("f9", "OX", "low")
    # exactly the three marks the scenario asks for, nothing else
    assert jsonl_store.statistics()["anomalies_by_type"] == {
        "clock_skew": 1,
        "order_rejected": 1,
        "unknown_order": 1,
    }


def test_jsonl_duplicate_line_is_stored_once(jsonl_store: DuckDBStore) -> None:
    assert one(jsonl_store, "SELECT count(*) AS n FROM events WHERE event_id = 'f1'") == {"n": 1}
    # and the execution was not counted twice
    assert order(jsonl_store, "O1")["filled_qty"] == 300.0
    assert jsonl_store.statistics()["sources"]["jsonl"]["duplicates"] == 1


def test_jsonl_bad_lines_are_rejects_with_reason_and_raw_text(jsonl_store: DuckDBStore) -> None:
    got = rows(
        jsonl_store, "SELECT reason, field, raw, src_offset FROM rejects ORDER BY src_offset"
    )
    offsets = [sum(len(line) + 1 for line in JSONL_LINES[:i]) for i in (23, 24)]
    assert got == [
        {"reason": "malformed", "field": None, "raw": JSONL_LINES[23], "src_offset": offsets[0]},
        {
            "reason": "invalid_quantity",
            "field": "qty",
            "raw": JSONL_LINES[24],
            "src_offset": offsets[1],
        },
    ]
    # a negative quantity is never "fixed" into an order
    assert one(jsonl_store, "SELECT count(*) AS n FROM events WHERE order_id = 'O7'") == {"n": 0}


def test_jsonl_raw_text_and_ns_timestamps_are_kept(jsonl_store: DuckDBStore) -> None:
    a1 = one(jsonl_store, "SELECT ts, raw, source FROM events WHERE event_id = 'a1'")
    assert a1 == {"ts": at(1, 2_500_000), "raw": JSONL_LINES[3], "source": "jsonl"}


# ===========================================================================
# logfmt and CSV: the O1, O2, O4 and O5 part of the JSON scenario (same quotes, same
# times, same prices) in other clothes must give the very same orders rows.

LOGFMT = """\
ts=2024-01-15T14:30:00.000Z kind=quote symbol=AAPL venue=XNAS bid=100.00 ask=100.02
ts=2024-01-15T14:30:00.100Z kind=quote symbol=AAPL venue=ARCA bid=99.98 ask=100.00
ts=2024-01-15T14:30:01.000Z kind=order_new order_id=O1 symbol=AAPL venue=XNAS side=buy qty=300 price=100.05 order_type=limit strategy=S1 account=A1
ts=2024-01-15T14:30:01.0025Z kind=order_ack order_id=O1
ts=2024-01-15T14:30:01.010Z kind=fill order_id=O1 exec_id=E1 last_qty=100 last_px=100.02 cum_qty=100 leaves_qty=200 liquidity=taker
ts=2024-01-15T14:30:01.500Z kind=quote symbol=AAPL venue=XNAS bid=100.04 ask=100.06
ts=2024-01-15T14:30:02.000Z kind=fill order_id=O1 exec_id=E2 last_qty=200 last_px=100.05 cum_qty=300 leaves_qty=0 liquidity=maker
ts=2024-01-15T14:30:02.500Z kind=order_new order_id=O2 symbol=AAPL venue=ARCA side=sell qty=50 price=99.97 order_type=limit strategy=S1 account=A1
ts=2024-01-15T14:30:02.501Z kind=order_ack order_id=O2
ts=2024-01-15T14:30:02.600Z kind=fill order_id=O2 exec_id=E3 last_qty=50 last_px=100.00 cum_qty=50 leaves_qty=0
ts=2024-01-15T14:30:04.000Z kind=order_new order_id=O4 symbol=AAPL venue=XNAS side=buy qty=100 price=99.90 order_type=limit strategy=S1 account=A1
ts=2024-01-15T14:30:04.001Z kind=order_ack order_id=O4
ts=2024-01-15T14:30:05.000Z kind=order_cancel_request order_id=O4
ts=2024-01-15T14:30:05.0075Z kind=order_cancelled order_id=O4
ts=2024-01-15T14:30:06.000Z kind=order_new order_id=O5 symbol=AAPL venue=XNAS side=sell qty=100 price=100.10 order_type=limit strategy=S1 account=A1
ts=2024-01-15T14:30:06.003Z kind=order_rejected order_id=O5 reason="insufficient margin"
"""  # noqa: E501

# epoch microseconds: 14:30:00 on 2024-01-15 = 1_705_329_000 s
CSV = """\
time,type,id,instrument,mkt,dir,size,limit,otype,strategy,account,exec,fill_qty,fill_px,cum,leaves,liq,bid,ask,why
1705329000000000,quote,,AAPL,XNAS,,,,,,,,,,,,,100.00,100.02,
1705329000100000,quote,,AAPL,ARCA,,,,,,,,,,,,,99.98,100.00,
1705329001000000,order_new,O1,AAPL,XNAS,BOT,300,100.05,limit,S1,A1,,,,,,,,,
1705329001002500,order_ack,O1,,,,,,,,,,,,,,,,,
1705329001010000,fill,O1,,,,,,,,,E1,100,100.02,100,200,taker,,,
1705329001500000,quote,,AAPL,XNAS,,,,,,,,,,,,,100.04,100.06,
1705329002000000,fill,O1,,,,,,,,,E2,200,100.05,300,0,maker,,,
1705329002500000,order_new,O2,AAPL,ARCA,SLD,50,99.97,limit,S1,A1,,,,,,,,,
1705329002501000,order_ack,O2,,,,,,,,,,,,,,,,,
1705329002600000,fill,O2,,,,,,,,,E3,50,100.00,50,0,,,,
1705329004000000,order_new,O4,AAPL,XNAS,BOT,100,99.90,limit,S1,A1,,,,,,,,,
1705329004001000,order_ack,O4,,,,,,,,,,,,,,,,,
1705329005000000,order_cancel_request,O4,,,,,,,,,,,,,,,,,
1705329005007500,order_cancelled,O4,,,,,,,,,,,,,,,,,
1705329006000000,order_new,O5,AAPL,XNAS,SLD,100,100.10,limit,S1,A1,,,,,,,,,
1705329006003000,order_rejected,O5,,,,,,,,,,,,,,,,,"insufficient margin"
"""

# `strategy` and `account` are built-in aliases; everything else is renamed by config.
CSV_CONFIG = """
[[sources]]
name = "csv_engine"
format = "csv"
time_format = "epoch_us"

[sources.fields]
time = "ts"
type = "kind"
id = "order_id"
instrument = "symbol"
mkt = "venue"
dir = "side"
size = "qty"
limit = "price"
otype = "order_type"
exec = "exec_id"
fill_qty = "last_qty"
fill_px = "last_px"
cum = "cum_qty"
leaves = "leaves_qty"
liq = "liquidity"
why = "reason"

[sources.values.side]
BOT = "buy"
SLD = "sell"
"""

SHARED_ORDERS = "SELECT * FROM orders WHERE order_id IN ('O1', 'O2', 'O4', 'O5') ORDER BY order_id"


def _check_shared_orders(got: list[dict[str, Any]]) -> None:
    """The hand-computed numbers of O1, O2, O4, O5 (see the JSON section)."""
    by_id = {r["order_id"]: r for r in got}
    assert list(by_id) == ["O1", "O2", "O4", "O5"]
    assert [by_id[o]["status"] for o in by_id] == ["filled", "filled", "cancelled", "rejected"]
    assert by_id["O1"]["slippage_bps"] == pytest.approx(O1_SLIP)
    assert by_id["O1"]["avg_px"] == pytest.approx(100.04)
    assert by_id["O1"]["ack_latency_ms"] == pytest.approx(2.5)
    assert by_id["O2"]["slippage_bps"] == pytest.approx(O2_SLIP)
    assert by_id["O4"]["cancel_latency_ms"] == pytest.approx(7.5)
    assert by_id["O5"]["reject_reason"] == "insufficient margin"
    assert (by_id["O1"]["strategy_id"], by_id["O1"]["account_id"]) == ("S1", "A1")


def test_logfmt_gives_the_same_orders_as_jsonl(replay_into: Replayer) -> None:
    _, jstore = replay_into({"engine.jsonl": JSONL}, fmt="jsonl", store_name="j")
    expected = rows(jstore, SHARED_ORDERS)
    _check_shared_orders(expected)
    _, store = replay_into({"engine.log": LOGFMT}, fmt="logfmt", store_name="l")
    got = rows(store, "SELECT * FROM orders ORDER BY order_id")
    _check_shared_orders(got)
    assert got == expected  # every column, every value
    assert_accounting(store, "logfmt", lines_read=16, events=16, rejects=0, duplicates=0, ignored=0)


def test_csv_with_header_and_renames_gives_the_same_orders_as_jsonl(
    replay_into: Replayer,
) -> None:
    _, jstore = replay_into({"engine.jsonl": JSONL}, fmt="jsonl", store_name="j")
    expected = rows(jstore, SHARED_ORDERS)
    _, store = replay_into({"engine.csv": CSV}, config_text=CSV_CONFIG, store_name="c")
    got = rows(store, "SELECT * FROM orders ORDER BY order_id")
    _check_shared_orders(got)
    assert got == expected
    # 17 lines: the header (ignored) and 16 records
    assert_accounting(
        store, "csv_engine", lines_read=17, events=16, rejects=0, duplicates=0, ignored=1
    )
    # the value map and the renames reached the events
    n1 = one(
        store,
        "SELECT side, qty, price, venue, order_type FROM events WHERE order_id = 'O1' "
        "AND kind = 'order_new'",
    )
    assert n1 == {
        "side": "buy",
        "qty": 300.0,
        "price": 100.05,
        "venue": "XNAS",
        "order_type": "limit",
    }


# ===========================================================================
# FIX: a QuickFIX C++ style session log (``YYYYMMDD-HH:MM:SS.sss : 8=FIX…|``). Messages
# are written field by field below; ``fix_message`` adds BodyLength(9) and CheckSum(10).


def _hdr(seq: int, sender: str, target: str, sending: str) -> list[tuple[int | str, object]]:
    return [(34, seq), (49, sender), (52, f"20240115-{sending}"), (56, target)]


def _er(seq: int, t: str, *fields: tuple[int | str, object]) -> list[tuple[int | str, object]]:
    """ExecutionReport from the venue with TransactTime(60) = SendingTime(52) = t."""
    return [(35, "8"), *_hdr(seq, "VENUE", "CLIENT", t), *fields, (60, f"20240115-{t}")]


def _new(seq: int, t: str, *fields: tuple[int | str, object]) -> list[tuple[int | str, object]]:
    """An order message from the client with TransactTime(60) = t."""
    return [*_hdr(seq, "CLIENT", "VENUE", t), *fields, (60, f"20240115-{t}")]


def _line(t: str, fields: list[tuple[int | str, object]]) -> str:
    return f"20240115-{t} : {fix_message(fields)}"


FIX_MESSAGES: list[tuple[str, list[tuple[int | str, object]]]] = [
    # session: logon both ways (ignored)
    ("14:30:00.000", [(35, "A"), *_hdr(1, "CLIENT", "VENUE", "14:30:00.000"), (98, 0), (108, 30)]),
    ("14:30:00.010", [(35, "A"), *_hdr(1, "VENUE", "CLIENT", "14:30:00.010"), (98, 0), (108, 30)]),
    # market data snapshot AAPL 50.24 / 50.26 → mid 50.25
    ("14:30:00.500", [(35, "W"), *_hdr(2, "VENUE", "CLIENT", "14:30:00.500"), (55, "AAPL"),
                      (268, 2), (269, 0), (270, "50.24"), (271, 500),
                      (269, 1), (270, "50.26"), (271, 300)]),
    # ORD1 buy 100 AAPL @ 50.25 limit day
    ("14:30:01.000", [(35, "D"), *_new(2, "14:30:01.000", (1, "ACC1"), (11, "ORD1"), (38, 100),
                      (40, 2), (44, "50.25"), (54, 1), (55, "AAPL"), (59, 0))]),
    ("14:30:01.004", _er(3, "14:30:01.004", (11, "ORD1"), (17, "EX1"), (37, "V1"), (39, 0),
                         (54, 1), (55, "AAPL"), (14, 0), (151, 100), (150, 0))),
    # two partial fills then the fill; 851: 1 = maker (added), 2 = taker (removed)
    ("14:30:01.050", _er(4, "14:30:01.050", (11, "ORD1"), (17, "EX2"), (30, "XNAS"),
                         (31, "50.25"), (32, 30), (14, 30), (151, 70), (37, "V1"), (39, 1),
                         (54, 1), (55, "AAPL"), (150, "F"), (851, 1))),
    ("14:30:01.100", _er(5, "14:30:01.100", (11, "ORD1"), (17, "EX3"), (30, "XNAS"),
                         (31, "50.26"), (32, 30), (14, 60), (151, 40), (37, "V1"), (39, 1),
                         (54, 1), (55, "AAPL"), (150, "F"), (851, 2))),
    ("14:30:01.200", _er(6, "14:30:01.200", (11, "ORD1"), (17, "EX4"), (30, "XNAS"),
                         (31, "50.25"), (32, 40), (14, 100), (151, 0), (37, "V1"), (39, 2),
                         (54, 1), (55, "AAPL"), (150, "F"), (851, 2))),
    # heartbeat (ignored)
    ("14:30:01.500", [(35, "0"), *_hdr(3, "CLIENT", "VENUE", "14:30:01.500")]),
    # PossDup resend of EX3 (43=Y): same ExecID, same event id → a duplicate, not a 4th fill
    ("14:30:01.700", _er(5, "14:30:01.100", (43, "Y"), (122, "20240115-14:30:01.100"),
                         (11, "ORD1"), (17, "EX3"), (30, "XNAS"), (31, "50.26"), (32, 30),
                         (14, 60), (151, 40), (37, "V1"), (39, 1), (54, 1), (55, "AAPL"),
                         (150, "F"), (851, 2))),
    # cancel chain: ORD2 sell 200 MSFT, F with 11=CXL2 41=ORD2, then 150=4 on CXL2
    ("14:30:02.000", [(35, "D"), *_new(4, "14:30:02.000", (1, "ACC1"), (11, "ORD2"), (38, 200),
                      (40, 2), (44, "400.00"), (54, 2), (55, "MSFT"), (59, 0))]),
    ("14:30:02.002", _er(7, "14:30:02.002", (11, "ORD2"), (17, "EX5"), (37, "V2"), (39, 0),
                         (54, 2), (55, "MSFT"), (14, 0), (151, 200), (150, 0))),
    ("14:30:03.000", [(35, "F"), *_new(5, "14:30:03.000", (11, "CXL2"), (41, "ORD2"), (54, 2),
                      (55, "MSFT"), (38, 200))]),
    ("14:30:03.007", _er(8, "14:30:03.0065", (11, "CXL2"), (41, "ORD2"), (17, "EX6"), (37, "V2"),
                         (39, 4), (54, 2), (55, "MSFT"), (14, 0), (151, 0), (150, 4))),
    # replace chain: ORD3 buy 100 IBM @ 150.00 → G 11=RPL3 41=ORD3 qty 150 @ 150.10 → 150=5
    ("14:30:04.000", [(35, "D"), *_new(6, "14:30:04.000", (1, "ACC1"), (11, "ORD3"), (38, 100),
                      (40, 2), (44, "150.00"), (54, 1), (55, "IBM"), (59, 0))]),
    ("14:30:04.001", _er(9, "14:30:04.001", (11, "ORD3"), (17, "EX7"), (37, "V3"), (39, 0),
                         (54, 1), (55, "IBM"), (14, 0), (151, 100), (150, 0))),
    ("14:30:04.200", [(35, "G"), *_new(7, "14:30:04.200", (11, "RPL3"), (41, "ORD3"), (38, 150),
                      (40, 2), (44, "150.10"), (54, 1), (55, "IBM"))]),
    ("14:30:04.202", _er(10, "14:30:04.202", (11, "RPL3"), (41, "ORD3"), (17, "EX8"), (37, "V3"),
                         (38, 150), (44, "150.10"), (39, 0), (54, 1), (55, "IBM"), (14, 0),
                         (151, 150), (150, 5))),
    # the fill names only the replacement id RPL3
    ("14:30:04.500", _er(11, "14:30:04.500", (11, "RPL3"), (17, "EX9"), (30, "XNAS"),
                         (31, "150.10"), (32, 150), (14, 150), (151, 0), (37, "V3"), (39, 2),
                         (54, 1), (55, "IBM"), (150, "F"), (851, 2))),
    # reject: ORD4, OrdRejReason(103)=3 and no Text(58)
    ("14:30:06.000", [(35, "D"), *_new(8, "14:30:06.000", (1, "ACC1"), (11, "ORD4"), (38, 10),
                      (40, 2), (44, "50.00"), (54, 1), (55, "AAPL"), (59, 0))]),
    ("14:30:06.001", _er(12, "14:30:06.001", (11, "ORD4"), (17, "EX10"), (39, 8), (54, 1),
                         (55, "AAPL"), (14, 0), (151, 0), (150, 8), (103, 3))),
]  # fmt: skip
# a damaged ack: the right fields, but a CheckSum(10) one too high
_GOOD = _line(
    "14:30:07.000",
    _er(13, "14:30:07.000", (11, "ORD9"), (17, "EX11"), (39, 0), (54, 1), (55, "AAPL"), (150, 0)),
)
_SUM = int(_GOOD[-4:-1])
FIX_CORRUPT = f"{_GOOD[:-4]}{(_SUM + 1) % 256:03d}|"
FIX_LOGOUT = _line("14:30:08.000", [(35, "5"), *_hdr(14, "VENUE", "CLIENT", "14:30:08.000")])
FIX_LOG = "\n".join([*(_line(t, m) for t, m in FIX_MESSAGES), FIX_CORRUPT, FIX_LOGOUT]) + "\n"


@pytest.fixture
def fix_store(replay_into: Replayer) -> DuckDBStore:
    _, store = replay_into({"venue.fix.log": FIX_LOG}, fmt="fix")
    return store


def test_fix_accounting(fix_store: DuckDBStore) -> None:
    # 23 lines: 2 logons + 1 heartbeat + 1 logout ignored, 1 bad checksum, 1 PossDup
    # resend (duplicate), 17 events
    # (1 quote, 4 new, 3 acks, 4 fills, 1 cancel request, 1 cancelled, 2 replaces, 1 rejected)
    assert_accounting(
        fix_store, "fix", lines_read=23, events=17, rejects=1, duplicates=1, ignored=4
    )
    assert fix_store.statistics()["events_by_kind"] == {
        "fill": 4,
        "order_ack": 3,
        "order_cancel_request": 1,
        "order_cancelled": 1,
        "order_new": 4,
        "order_rejected": 1,
        "order_replace": 2,
        "quote": 1,
    }


def test_fix_orders_one_row_per_root_order(fix_store: DuckDBStore) -> None:
    got = rows(fix_store, "SELECT order_id, status, aliases FROM orders ORDER BY order_id")
    assert got == [
        {"order_id": "ORD1", "status": "filled", "aliases": None},
        {"order_id": "ORD2", "status": "cancelled", "aliases": "CXL2"},
        {"order_id": "ORD3", "status": "filled", "aliases": "RPL3"},
        {"order_id": "ORD4", "status": "rejected", "aliases": None},
    ]


def test_fix_partial_fills_with_maker_taker(fix_store: DuckDBStore) -> None:
    o = order(fix_store, "ORD1")
    assert (o["symbol"], o["side"], o["qty"], o["price"], o["tif"], o["order_type"]) == (
        "AAPL",
        "buy",
        100.0,
        50.25,
        "day",
        "limit",
    )
    assert (o["account_id"], o["venue_order_id"], o["venue"]) == ("ACC1", "V1", "XNAS")
    assert (o["filled_qty"], o["n_fills"], o["fill_rate"]) == (100.0, 3, 1.0)
    # (30 × 50.25 + 30 × 50.26 + 40 × 50.25) / 100 = (1507.5 + 1507.8 + 2010) / 100
    assert o["avg_px"] == pytest.approx(50.253)
    assert (o["maker_qty"], o["taker_qty"]) == (30.0, 70.0)  # EX2 maker; EX3, EX4 taker
    assert o["ack_latency_ms"] == pytest.approx(4.0)  # 01.004 − 01.000
    assert o["fill_latency_ms"] == pytest.approx(50.0)  # 01.050 − 01.000
    # arrival = W snapshot mid (50.24 + 50.26) / 2 = 50.25 at 00.500 (SendingTime)
    assert o["arrival_mid"] == pytest.approx(50.25)
    assert o["arrival_ts"] == at(0, 500_000_000)
    # fills: 0, (50.26 − 50.25) / 50.25 × 1e4 = 1.99004975, 0 → 30 × 1.99004975 / 100
    assert o["slippage_bps"] == pytest.approx(0.597014925)
    fills = rows(
        fix_store,
        "SELECT event_id, liquidity, slippage_bps, order_status, cum_qty, leaves_qty "
        "FROM events WHERE kind = 'fill' AND root_order_id = 'ORD1' ORDER BY seq",
    )
    assert fills == [
        {"event_id": "fix:VENUE:CLIENT:EX2", "liquidity": "maker", "slippage_bps": 0.0,
         "order_status": "partially_filled", "cum_qty": 30.0, "leaves_qty": 70.0},
        {"event_id": "fix:VENUE:CLIENT:EX3", "liquidity": "taker",
         "slippage_bps": pytest.approx(1.99004975), "order_status": "partially_filled",
         "cum_qty": 60.0, "leaves_qty": 40.0},
        {"event_id": "fix:VENUE:CLIENT:EX4", "liquidity": "taker", "slippage_bps": 0.0,
         "order_status": "filled", "cum_qty": 100.0, "leaves_qty": 0.0},
    ]  # fmt: skip


def test_fix_cancel_chain_is_one_order(fix_store: DuckDBStore) -> None:
    o = order(fix_store, "ORD2")
    assert (o["status"], o["symbol"], o["side"], o["qty"], o["filled_qty"]) == (
        "cancelled",
        "MSFT",
        "sell",
        200.0,
        0.0,
    )
    assert o["aliases"] == "CXL2"
    assert o["ack_latency_ms"] == pytest.approx(2.0)  # 02.002 − 02.000
    assert o["cancel_latency_ms"] == pytest.approx(6.5)  # 03.0065 − 03.000
    assert o["ts_done"] == at(3, 6_500_000)
    assert fix_store.order_row("CXL2") == o  # the cancel id finds the same row
    assert one(fix_store, "SELECT count(*) AS n FROM orders WHERE order_id = 'CXL2'") == {"n": 0}
    chain = rows(
        fix_store,
        "SELECT kind, order_id, orig_order_id, latency_ms FROM events "
        "WHERE root_order_id = 'ORD2' ORDER BY seq",
    )
    assert chain == [
        {"kind": "order_new", "order_id": "ORD2", "orig_order_id": None, "latency_ms": None},
        {"kind": "order_ack", "order_id": "ORD2", "orig_order_id": None,
         "latency_ms": pytest.approx(2.0)},
        {"kind": "order_cancel_request", "order_id": "CXL2", "orig_order_id": "ORD2",
         "latency_ms": None},
        {"kind": "order_cancelled", "order_id": "CXL2", "orig_order_id": "ORD2",
         "latency_ms": pytest.approx(6.5)},
    ]  # fmt: skip


def test_fix_replace_chain_is_one_order(fix_store: DuckDBStore) -> None:
    o = order(fix_store, "ORD3")
    assert (o["status"], o["aliases"], o["qty"], o["price"]) == ("filled", "RPL3", 150.0, 150.10)
    assert (o["filled_qty"], o["avg_px"], o["fill_rate"]) == (150.0, pytest.approx(150.10), 1.0)
    assert o["ack_latency_ms"] == pytest.approx(1.0)  # 04.001 − 04.000
    assert o["fill_latency_ms"] == pytest.approx(500.0)  # 04.500 − 04.000
    assert o["arrival_mid"] is None  # no IBM quote
    assert o["slippage_bps"] is None
    assert fix_store.order_row("RPL3") == o
    kinds = rows(fix_store, "SELECT kind FROM events WHERE root_order_id = 'ORD3' ORDER BY seq")
    assert [k["kind"] for k in kinds] == [
        "order_new",
        "order_ack",
        "order_replace",
        "order_replace",
        "fill",
    ]


def test_fix_reject_and_corrupt_message(fix_store: DuckDBStore) -> None:
    o = order(fix_store, "ORD4")
    assert o["status"] == "rejected"
    assert o["reject_reason"] == "order exceeds limit (OrdRejReason(103)=3)"
    assert o["arrival_mid"] == pytest.approx(50.25)
    rej = one(fix_store, "SELECT reason, raw, detail FROM rejects")
    assert rej["reason"] == "bad_checksum"
    assert rej["raw"] == FIX_CORRUPT  # verbatim, log prefix included
    assert f"found '{(_SUM + 1) % 256:03d}'" in rej["detail"]
    # the damaged ack did not become an event, nor an order
    assert one(fix_store, "SELECT count(*) AS n FROM events WHERE order_id = 'ORD9'") == {"n": 0}
    assert fix_store.statistics()["anomalies_by_type"] == {"order_rejected": 1}


# ===========================================================================
# regex: an engine's text log nobody wrote a parser for. Time-only stamps with
# nanoseconds, the date from config, ``[time]`` starting every record (one line holds
# two records), order ids composed from two groups.

REGEX_CONFIG = r"""
[[sources]]
name = "engine_txt"
format = "regex"

[sources.regex]
date = "2024-01-15"
record_start = '\[\d{2}:\d{2}:\d{2}\.\d{9}\]'

[[sources.regex.rules]]
name = "heartbeat"
pattern = '^\[[^\]]+\] HB\b'
skip = true

[[sources.regex.rules]]
name = "quote"
pattern = '^\[(?P<ts>[^\]]+)\] QTE (?P<symbol>\w+) (?P<bid>[\d.]+)/(?P<ask>[\d.]+)'
kind = "quote"
time_format = "%H:%M:%S.%f"

[[sources.regex.rules]]
name = "order"
pattern = '^\[(?P<ts>[^\]]+)\] ORD (?P<verb>NEW|ACK|CXL|CXLD) (?P<client>\w+)/(?P<oid>\d+)(?: (?P<side>BUY|SELL) (?P<qty>\d+) (?P<symbol>\w+) @(?P<price>[\d.]+))?'
kind_from = "verb"
kind_map = { NEW = "order_new", ACK = "order_ack", CXL = "order_cancel_request", CXLD = "order_cancelled" }
values = { side = { BUY = "buy", SELL = "sell" } }
fields = { order_id = "{client}-{oid}" }
time_format = "%H:%M:%S.%f"

[[sources.regex.rules]]
name = "fill"
pattern = '^\[(?P<ts>[^\]]+)\] FIL (?P<client>\w+)/(?P<oid>\d+) (?P<last_qty>\d+)@(?P<last_px>[\d.]+)'
kind = "fill"
fields = { order_id = "{client}-{oid}" }
time_format = "%H:%M:%S.%f"
"""  # noqa: E501

REGEX_LOG = """\
[14:30:00.000000000] QTE ES 4800.25/4800.50
[14:30:00.500000000] HB
[14:30:01.123456789] ORD NEW ACME/17 BUY 5 ES @4800.50
[14:30:01.123556789] ORD ACK ACME/17[14:30:01.200000001] FIL ACME/17 2@4800.50
[14:30:01.250000000] QTE ES 4800.50/4800.75
[14:30:01.300000123] FIL ACME/17 3@4800.75
[14:30:02.000000000] ORD NEW ACME/18 SELL 4 ES @4801.00
[14:30:02.000250000] ORD ACK ACME/18
[14:30:03.000000000] ORD CXL ACME/18
[14:30:03.004000500] ORD CXLD ACME/18
[14:30:04.000000000] something the engine never logged before
"""


@pytest.fixture
def regex_store(replay_into: Replayer) -> DuckDBStore:
    _, store = replay_into({"engine.log": REGEX_LOG}, config_text=REGEX_CONFIG)
    return store


def test_regex_accounting(regex_store: DuckDBStore) -> None:
    # 11 lines but 12 records (line 4 holds two): 10 events, the heartbeat (skip rule,
    # ignored) and the unknown line (no_rule_matched reject)
    assert_accounting(
        regex_store, "engine_txt", lines_read=12, events=10, rejects=1, duplicates=0, ignored=1
    )
    rej = one(regex_store, "SELECT reason, raw FROM rejects")
    assert rej == {
        "reason": "no_rule_matched",
        "raw": "[14:30:04.000000000] something the engine never logged before",
    }


def test_regex_glued_records_and_ns_timestamps(regex_store: DuckDBStore) -> None:
    got = rows(
        regex_store,
        "SELECT kind, ts, order_id, raw FROM events WHERE root_order_id = 'ACME-17' ORDER BY seq",
    )
    assert got == [
        {"kind": "order_new", "ts": at(1, 123_456_789), "order_id": "ACME-17",
         "raw": "[14:30:01.123456789] ORD NEW ACME/17 BUY 5 ES @4800.50"},
        {"kind": "order_ack", "ts": at(1, 123_556_789), "order_id": "ACME-17",
         "raw": "[14:30:01.123556789] ORD ACK ACME/17"},
        {"kind": "fill", "ts": at(1, 200_000_001), "order_id": "ACME-17",
         "raw": "[14:30:01.200000001] FIL ACME/17 2@4800.50"},
        {"kind": "fill", "ts": at(1, 300_000_123), "order_id": "ACME-17",
         "raw": "[14:30:01.300000123] FIL ACME/17 3@4800.75"},
    ]  # fmt: skip


def test_regex_orders_and_latencies(regex_store: DuckDBStore) -> None:
    o17 = order(regex_store, "ACME-17")
    assert (o17["status"], o17["symbol"], o17["side"], o17["qty"], o17["price"]) == (
        "filled",
        "ES",
        "buy",
        5.0,
        4800.50,
    )
    # ack: 01.123556789 − 01.123456789 = 100_000 ns = 0.1 ms
    assert o17["ack_latency_ms"] == pytest.approx(0.1)
    # first fill: 01.200000001 − 01.123456789 = 0.076543212 s
    assert o17["fill_latency_ms"] == pytest.approx(76.543212)
    # (2 × 4800.50 + 3 × 4800.75) / 5 = (9601 + 14402.25) / 5
    assert o17["avg_px"] == pytest.approx(4800.65)
    # arrival mid (4800.25 + 4800.50) / 2 = 4800.375; fills 0.125 / 4800.375 × 1e4 =
    # 0.26039632 and 0.375 / 4800.375 × 1e4 = 0.78118897 bps; (2 × a + 3 × b) / 5
    assert o17["arrival_mid"] == pytest.approx(4800.375)
    assert o17["slippage_bps"] == pytest.approx((2 * 0.26039632 + 3 * 0.78118897) / 5)
    assert o17["ts_done"] == at(1, 300_000_123)

    o18 = order(regex_store, "ACME-18")
    assert (o18["status"], o18["side"], o18["qty"], o18["filled_qty"]) == (
        "cancelled",
        "sell",
        4.0,
        0.0,
    )
    assert o18["ack_latency_ms"] == pytest.approx(0.25)  # 250 µs
    assert o18["cancel_latency_ms"] == pytest.approx(4.0005)  # 03.004000500 − 03.000
    assert o18["arrival_mid"] == pytest.approx(4800.625)  # the 01.250 quote
    # the pieces of the composite id stay available in attrs
    attrs = one(
        regex_store, "SELECT attrs FROM events WHERE kind = 'order_new' AND order_id = 'ACME-18'"
    )["attrs"]
    assert '"client":"ACME"' in attrs and '"oid":"18"' in attrs


# ===========================================================================
# Replaying the same files again stores nothing new.


@pytest.mark.parametrize(
    ("files", "fmt", "config", "source", "distinct"),
    [
        # 22 event lines (one of them the duplicate f1) + 2 rejects; 1 blank line
        ({"engine.jsonl": JSONL}, "jsonl", None, "jsonl", (21, 2, 5, 24, 1)),
        # 18 event messages (one of them the PossDup resend) + 1 reject; 4 session messages
        ({"venue.fix.log": FIX_LOG}, "fix", None, "fix", (17, 1, 4, 19, 4)),
        # derived event ids (no event_id in the lines): 16 events
        ({"engine.log": LOGFMT}, "logfmt", None, "logfmt", (16, 0, 4, 16, 0)),
        # 16 events; the header line is ignored each time
        ({"engine.csv": CSV}, None, CSV_CONFIG, "csv_engine", (16, 0, 4, 16, 1)),
        # 10 events + 1 reject; 1 heartbeat
        ({"engine.log": REGEX_LOG}, None, REGEX_CONFIG, "engine_txt", (10, 1, 2, 11, 1)),
    ],
    ids=["jsonl", "fix", "logfmt", "csv", "regex"],
)
def test_replaying_again_stores_nothing_new(
    replay_into: Replayer,
    files: dict[str, str],
    fmt: str | None,
    config: str | None,
    source: str,
    distinct: tuple[int, int, int, int, int],
) -> None:
    n_events, n_rejects, n_orders, n_records, n_ignored = distinct

    def counts(store: DuckDBStore) -> tuple[int, int, int, int]:
        c = one(
            store,
            "SELECT (SELECT count(*) FROM events) AS e, (SELECT count(*) FROM rejects) AS r, "
            "(SELECT count(*) FROM orders) AS o, (SELECT count(*) FROM anomalies) AS a",
        )
        return c["e"], c["r"], c["o"], c["a"]

    _, store = replay_into(files, fmt=fmt, config_text=config)
    first = counts(store)
    assert first[:3] == (n_events, n_rejects, n_orders)
    before = store.statistics()["sources"][source]

    summary, store = replay_into(files, fmt=fmt, config_text=config)
    assert counts(store) == first
    assert (summary.events, summary.rejects) == (0, 0)
    assert summary.duplicates == n_records
    after = store.statistics()["sources"][source]
    assert after["lines_read"] == 2 * before["lines_read"]
    assert after["events"] == before["events"] == n_events
    assert after["rejects"] == before["rejects"] == n_rejects
    assert after["duplicates"] == before["duplicates"] + n_records
    assert after["ignored"] == before["ignored"] + n_ignored
    assert after["reconciled"] is True


def test_a_renamed_copy_is_the_same_stream(replay_into: Replayer) -> None:
    # ids derived from positions hash the file's content fingerprint, not its name
    _, store = replay_into({"engine.log": LOGFMT}, fmt="logfmt")
    summary, store = replay_into({"renamed/engine-old.log": LOGFMT}, fmt="logfmt")
    assert (summary.events, summary.duplicates) == (0, 16)
    assert one(store, "SELECT count(*) AS n FROM events") == {"n": 16}
    src = store.statistics()["sources"]["logfmt"]
    assert (src["lines_read"], src["events"], src["duplicates"], src["streams"]) == (32, 16, 16, 1)


# ===========================================================================
# Several files are merged by event time: quotes in one file, orders in another.

MERGE_QUOTES = """\
{"kind":"quote","ts":"2024-01-15T14:30:00Z","symbol":"AAPL","venue":"XNAS","bid":100.00,"ask":100.02}
{"kind":"quote","ts":"2024-01-15T14:30:02Z","symbol":"AAPL","venue":"XNAS","bid":100.04,"ask":100.06}

{"kind":"quote","ts":"2024-01-15T14:30:03Z","symbol":"AAPL","venue":"XNAS","bid":100.07,"ask":100.05}
{"kind":"quote","ts":"2024-01-15T14:30:04Z","symbol":"AAPL","venue":"XNAS","bid":100.10,"ask":100.12}
"""
MERGE_ORDERS = """\
{"kind":"order_new","ts":"2024-01-15T14:30:01Z","order_id":"M1","symbol":"AAPL","venue":"XNAS","side":"buy","qty":10,"price":100.05}
{"kind":"fill","ts":"2024-01-15T14:30:03Z","order_id":"M1","exec_id":"X1","last_qty":10,"last_px":100.05,"leaves_qty":0}
{"kind":"order_new","ts":"2024-01-15T14:30:03.5Z","order_id":"M2","symbol":"AAPL","venue":"XNAS","side":"sell","qty":10,"price":100.00}
{"kind":"fill","ts":"2024-01-15T14:30:05Z","order_id":"M2","exec_id":"X2","last_qty":10,"last_px":100.08,"leaves_qty":0}
"""


def test_files_are_merged_by_event_time(replay_into: Replayer) -> None:
    # the orders file comes first on the command line: read file by file, its orders
    # would find no quote at all
    summary, store = replay_into({"orders.jsonl": MERGE_ORDERS, "quotes.jsonl": MERGE_QUOTES})
    assert summary.files == 2
    got = rows(
        store,
        "SELECT order_id, arrival_mid, arrival_ts, slippage_bps FROM orders ORDER BY order_id",
    )
    assert got == [
        # M1 at 01: quote of 00, mid 100.01; (100.05 − 100.01) / 100.01 × 1e4
        {"order_id": "M1", "arrival_mid": pytest.approx(100.01), "arrival_ts": at(0),
         "slippage_bps": pytest.approx(3.99960004)},
        # M2 at 03.5: quote of 02, mid 100.05; −1 × (100.08 − 100.05) / 100.05 × 1e4
        {"order_id": "M2", "arrival_mid": pytest.approx(100.05), "arrival_ts": at(2),
         "slippage_bps": pytest.approx(-2.99850075)},
    ]  # fmt: skip
    # events are sequenced in time order across the two files
    seq = rows(store, "SELECT kind, ts, mkt_bid FROM events ORDER BY seq")
    assert [r["ts"] for r in seq] == sorted(r["ts"] for r in seq)
    assert [r["kind"] for r in seq] == [
        "quote",
        "order_new",
        "quote",
        "fill",
        "order_new",
        "quote",
        "fill",
    ]
    # the fill of M2 at 05 sees the quote of 04 as its market context
    assert seq[-1]["mkt_bid"] == 100.10
    # the crossed quote at 03 (bid > ask) is a reject, not a quote: M2 at 03.5 still
    # benchmarks against the quote of 02; the blank line is ignored
    assert_accounting(store, "jsonl", lines_read=9, events=7, rejects=1, duplicates=0, ignored=1)
    assert one(store, "SELECT reason, field FROM rejects") == {
        "reason": "invalid_price",
        "field": "bid",
    }
    assert store.statistics()["sources"]["jsonl"]["streams"] == 2
