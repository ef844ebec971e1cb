"""The tape's rows are built positionally from ``LIVE_FIELDS``: the struct must have exactly
those fields in that order and encode to the same JSON object as the named fields."""

from __future__ import annotations

import msgspec

from tradelog.api.live import LIVE_FIELDS, LiveRow, event_row
from tradelog.model.events import Event, EventKind, Liquidity, OrderStatus, Side


def test_live_row_fields_are_the_live_fields_in_order() -> None:
    assert LiveRow.__struct_fields__ == LIVE_FIELDS


def test_a_row_encodes_as_the_named_fields_of_the_event() -> None:
    ev = Event(
        event_id="F1", kind=EventKind.FILL, ts=1_741_012_200_000_000_001, ts_ingest=2, source="s",
        symbol="AAPL", venue="XNAS", account_id="A", strategy_id="S", order_id="O1",
        root_order_id="O1", side=Side.SELL, qty=10.0, price=101.5, last_qty=4.0, last_px=101.25,
        liquidity=Liquidity.TAKER, fee=0.01, order_status=OrderStatus.PARTIALLY_FILLED,
        latency_ms=1.5, slippage_bps=-2.0, seq=7, message=None,
    )  # fmt: skip
    expected = {name: getattr(ev, name) for name in LIVE_FIELDS}
    got = msgspec.json.decode(msgspec.json.encode(event_row(ev)))
    assert got == msgspec.json.decode(msgspec.json.encode(expected))
    assert got["side"] == "sell" and got["order_status"] == "partially_filled"
