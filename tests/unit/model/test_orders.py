"""The order lifecycle state machine (model/orders.py: OrderState.apply)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tradelog.model.events import Event, EventKind, Liquidity, OrderStatus, Side
from tradelog.model.orders import (
    DUPLICATE_EXEC,
    DUPLICATE_NEW,
    EVENT_AFTER_TERMINAL,
    OVERFILL,
    OrderState,
    latency_ms,
    order_record,
    side_sign,
)

MS = 1_000_000
_ids = itertools.count()


def ev(kind: str, t_ms: float, **fields: Any) -> Event:
    """An order event of O1 at ``t_ms`` milliseconds."""
    fields.setdefault("order_id", "O1")
    return Event(
        event_id=f"e{next(_ids)}",
        kind=EventKind(kind),
        ts=int(t_ms * MS),
        ts_ingest=0,
        source="test",
        **fields,
    )


def new(t_ms: float = 0, qty: float = 10, price: float = 100.0, **kw: Any) -> Event:
    return ev("order_new", t_ms, symbol="X", side=Side.BUY, qty=qty, price=price, **kw)


def fill(t_ms: float, qty: float, px: float = 100.0, **kw: Any) -> Event:
    return ev("fill", t_ms, last_qty=qty, last_px=px, **kw)


def run(*events: Event) -> tuple[OrderState, list[str | None]]:
    order = OrderState("O1")
    issues = []
    for e in events:
        order.absorb_context(e)
        issues.append(order.apply(e))
    return order, issues


# ---- transitions -------------------------------------------------------------


def test_new_is_pending_with_its_terms() -> None:
    order, issues = run(new(0, qty=10, price=101.5, tif="day"))
    assert issues == [None]
    assert order.status is OrderStatus.PENDING
    assert (order.qty, order.price, order.tif, order.ts_new) == (10, 101.5, "day", 0)
    assert not order.is_terminal
    assert order.fill_rate == 0.0
    assert order.avg_px is None


def test_ack_moves_pending_to_acked() -> None:
    order, issues = run(new(0), ev("order_ack", 3))
    assert issues == [None, None]
    assert order.status is OrderStatus.ACKED
    assert order.ts_ack == 3 * MS


def test_partial_then_full_fill() -> None:
    order, issues = run(new(0), ev("order_ack", 1), fill(5, 4, 100.0), fill(9, 6, 101.0))
    assert issues == [None] * 4
    assert order.status is OrderStatus.FILLED
    assert order.filled_qty == 10
    assert order.n_fills == 2
    assert order.notional == pytest.approx(4 * 100.0 + 6 * 101.0)
    assert order.avg_px == pytest.approx(100.6)
    assert order.fill_rate == 1.0
    assert order.is_terminal


def test_partial_fill_status() -> None:
    order, issues = run(new(0), ev("order_ack", 1), fill(5, 4))
    assert issues == [None, None, None]
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.fill_rate == pytest.approx(0.4)


def test_fill_without_ack_goes_straight_to_partial() -> None:
    order, _ = run(new(0), fill(5, 4))
    assert order.status is OrderStatus.PARTIALLY_FILLED
    # a late ack neither demotes the order nor is an issue
    order.absorb_context(ev("order_ack", 6))
    assert order.apply(ev("order_ack", 6)) is None
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.ack_latency_ms == 6.0


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("order_cancelled", OrderStatus.CANCELLED),
        ("order_rejected", OrderStatus.REJECTED),
        ("order_expired", OrderStatus.EXPIRED),
    ],
)
def test_terminal_from_pending_acked_and_partial(kind: str, status: OrderStatus) -> None:
    for prefix in ([new(0)], [new(0), ev("order_ack", 1)], [new(0), fill(2, 3)]):
        order, issues = run(*prefix, ev(kind, 10, reason="r"))
        assert issues[-1] is None
        assert order.status is status
        assert order.is_terminal


def test_rejected_keeps_the_reason() -> None:
    order, _ = run(new(0), ev("order_rejected", 1, reason="insufficient margin"))
    assert order.reject_reason == "insufficient margin"
    assert order_record(order).reject_reason == "insufficient margin"


def test_cancel_after_partial_keeps_the_fills() -> None:
    order, _ = run(
        new(0),
        fill(2, 3),
        ev("order_cancel_request", 4),
        ev("order_cancelled", 7),
    )
    assert order.status is OrderStatus.CANCELLED
    assert order.filled_qty == 3
    assert order.fill_rate == pytest.approx(0.3)
    assert order.ts_cancelled == 7 * MS


def test_duplicate_new_is_an_issue_and_changes_nothing() -> None:
    order, issues = run(new(0, qty=10, price=100), new(5, qty=99, price=1))
    assert issues == [None, DUPLICATE_NEW]
    assert (order.qty, order.price, order.ts_new) == (10, 100, 0)


# ---- latencies ---------------------------------------------------------------


def test_latencies_in_milliseconds() -> None:
    order, _ = run(
        new(1000),
        ev("order_ack", 1002.5),
        fill(1010, 4),
        fill(1020, 2),  # not the first fill: no new latency
        ev("order_cancel_request", 1100),
        ev("order_cancelled", 1107.25),
    )
    assert order.ack_latency_ms == pytest.approx(2.5)
    assert order.fill_latency_ms == pytest.approx(10.0)
    assert order.cancel_latency_ms == pytest.approx(7.25)
    assert order.ts_first_fill == 1010 * MS
    rec = order_record(order)
    assert (rec.ack_latency_ms, rec.fill_latency_ms, rec.cancel_latency_ms) == (
        pytest.approx(2.5),
        pytest.approx(10.0),
        pytest.approx(7.25),
    )


def test_negative_latencies_are_kept_not_clamped() -> None:
    order, issues = run(
        new(1000),
        ev("order_ack", 995),
        fill(990, 1),
        ev("order_cancel_request", 1200),
        ev("order_cancelled", 1150),
    )
    assert issues == [None] * 5
    assert order.ack_latency_ms == pytest.approx(-5.0)
    assert order.fill_latency_ms == pytest.approx(-10.0)
    assert order.cancel_latency_ms == pytest.approx(-50.0)


def test_ack_seen_before_new_gets_its_latency_when_new_arrives() -> None:
    order, issues = run(ev("order_ack", 12), new(10))
    assert issues == [None, None]
    assert order.ack_latency_ms == pytest.approx(2.0)
    assert order.status is OrderStatus.ACKED


def test_no_latency_without_a_start() -> None:
    order, _ = run(ev("order_ack", 5), fill(6, 1), ev("order_cancelled", 9))
    assert order.ack_latency_ms is None
    assert order.fill_latency_ms is None
    assert order.cancel_latency_ms is None  # cancelled without a cancel request


def test_latency_helper() -> None:
    assert latency_ms(None, 5) is None
    assert latency_ms(1_000_000, 500_000) == -0.5
    assert side_sign(Side.BUY) == 1
    assert side_sign(Side.SELL) == -1
    assert side_sign(None) == 0


def test_cancel_rejected_clears_the_request_so_a_later_cancel_times_from_the_new_one() -> None:
    order, issues = run(
        new(0),
        ev("order_cancel_request", 10),
        ev("order_cancel_rejected", 12, reason="too late"),
        ev("order_cancel_request", 50),
        ev("order_cancelled", 53),
    )
    assert issues == [None] * 5
    assert order.cancel_latency_ms == pytest.approx(3.0)


# ---- completion ----------------------------------------------------------------


def test_fill_completes_by_quantity() -> None:
    order, _ = run(new(0, qty=10), fill(1, 10))
    assert order.status is OrderStatus.FILLED


def test_fill_completes_by_quantity_within_epsilon() -> None:
    order, issues = run(new(0, qty=0.3), fill(1, 0.1), fill(2, 0.2))  # 0.1 + 0.2 > 0.3
    assert order.status is OrderStatus.FILLED
    assert issues[-1] is None  # float noise is not an overfill


def test_fill_completes_by_leaves_qty_zero() -> None:
    # the venue says nothing is left although less than qty was filled (e.g. reduced)
    order, issues = run(new(0, qty=10), fill(1, 4, leaves_qty=0.0, cum_qty=4.0))
    assert issues == [None, None]
    assert order.status is OrderStatus.FILLED
    assert order.filled_qty == 4
    assert order.fill_rate == pytest.approx(0.4)


def test_leaves_qty_positive_does_not_complete() -> None:
    order, _ = run(new(0, qty=10), fill(1, 4, leaves_qty=6.0))
    assert order.status is OrderStatus.PARTIALLY_FILLED


def test_fill_of_unknown_order_completes_by_leaves_only() -> None:
    order, _ = run(fill(1, 4))
    assert order.status is OrderStatus.PARTIALLY_FILLED
    order2, _ = run(fill(1, 4, leaves_qty=0.0))
    assert order2.status is OrderStatus.FILLED


def test_overfill_is_an_issue_and_counted() -> None:
    order, issues = run(new(0, qty=10), fill(1, 6), fill(2, 6))
    assert issues == [None, None, OVERFILL]
    assert order.status is OrderStatus.FILLED
    assert order.filled_qty == 12
    assert order.fill_rate == pytest.approx(1.2)


def test_fill_after_filled_is_an_overfill() -> None:
    order, issues = run(new(0, qty=10), fill(1, 10), fill(2, 1))
    assert issues[-1] == OVERFILL
    assert order.filled_qty == 11


def test_duplicate_exec_id_is_not_counted() -> None:
    order, issues = run(
        new(0, qty=10),
        fill(1, 4, 100.0, exec_id="X1", fee=0.5, liquidity=Liquidity.MAKER),
        fill(2, 4, 100.0, exec_id="X1", fee=0.5, liquidity=Liquidity.MAKER),
    )
    assert issues == [None, None, DUPLICATE_EXEC]
    assert order.filled_qty == 4
    assert order.n_fills == 1
    assert order.notional == 400.0
    assert order.fees == 0.5
    assert order.maker_qty == 4
    assert order.status is OrderStatus.PARTIALLY_FILLED


def test_distinct_exec_ids_and_fills_without_exec_id_all_count() -> None:
    order, issues = run(
        new(0, qty=10),
        fill(1, 2, exec_id="X1"),
        fill(2, 2, exec_id="X2"),
        fill(3, 2),
        fill(4, 2),
    )
    assert issues == [None] * 5
    assert order.filled_qty == 8
    assert order.n_fills == 4


def test_fees_and_liquidity_split() -> None:
    order, _ = run(
        new(0, qty=10),
        fill(1, 3, fee=0.25, liquidity=Liquidity.MAKER),
        fill(2, 5, fee=-0.1, liquidity=Liquidity.TAKER),
        fill(3, 2),
    )
    assert order.fees == pytest.approx(0.15)
    assert (order.maker_qty, order.taker_qty) == (3, 5)


# ---- replace ---------------------------------------------------------------


def test_replace_changes_qty_and_price_not_status() -> None:
    order, issues = run(
        new(0, qty=10, price=100), ev("order_ack", 1), ev("order_replace", 2, qty=8, price=99)
    )
    assert issues == [None] * 3
    assert (order.qty, order.price) == (8, 99)
    assert order.status is OrderStatus.ACKED


def test_replace_of_only_the_price_keeps_the_qty() -> None:
    order, _ = run(new(0, qty=10, price=100), ev("order_replace", 2, price=99))
    assert (order.qty, order.price) == (10, 99)


def test_replace_down_to_the_filled_qty_completes_the_order() -> None:
    order, _ = run(new(0, qty=10), fill(1, 6), ev("order_replace", 2, qty=6))
    assert order.status is OrderStatus.FILLED
    assert order.fill_rate == 1.0


def test_replace_then_cancel_reject_reverts_qty_and_price() -> None:
    order, issues = run(
        new(0, qty=10, price=100),
        ev("order_ack", 1),
        ev("order_replace", 2, qty=8, price=99),
        ev("order_cancel_rejected", 3, reason="too late to replace"),
    )
    assert issues == [None] * 4
    assert (order.qty, order.price) == (10, 100)
    assert order.pending_replace is None
    assert order.status is OrderStatus.ACKED
    # a second cancel reject has nothing left to revert
    order.apply(ev("order_cancel_rejected", 4))
    assert (order.qty, order.price) == (10, 100)


def test_two_replaces_then_reject_reverts_only_the_last() -> None:
    order, _ = run(
        new(0, qty=10, price=100),
        ev("order_replace", 2, qty=8, price=99),
        ev("order_replace", 3, qty=6, price=98),
        ev("order_cancel_rejected", 4),
    )
    assert (order.qty, order.price) == (8, 99)


def test_cancel_reject_without_replace_changes_nothing() -> None:
    order, issues = run(new(0, qty=10, price=100), ev("order_cancel_rejected", 3))
    assert issues == [None, None]
    assert (order.qty, order.price) == (10, 100)
    assert order.status is OrderStatus.PENDING


# ---- after the end ---------------------------------------------------------------


@pytest.mark.parametrize(
    "late",
    [
        lambda: ev("order_ack", 20),
        lambda: ev("order_cancelled", 20),
        lambda: ev("order_rejected", 20, reason="x"),
        lambda: ev("order_expired", 20),
        lambda: ev("order_replace", 20, qty=3, price=1),
    ],
)
@pytest.mark.parametrize(
    "ending",
    [
        lambda: [fill(5, 10)],
        lambda: [ev("order_cancelled", 5)],
        lambda: [ev("order_rejected", 5, reason="r")],
        lambda: [ev("order_expired", 5)],
    ],
)
def test_event_after_terminal_is_an_issue_and_changes_nothing(late: Any, ending: Any) -> None:
    order, _ = run(new(0, qty=10, price=100), *ending())
    status, qty, price = order.status, order.qty, order.price
    ts_cancelled, reason = order.ts_cancelled, order.reject_reason
    late_event = late()
    assert order.apply(late_event) == EVENT_AFTER_TERMINAL
    assert order.status is status
    assert (order.qty, order.price) == (qty, price)
    assert order.ts_cancelled == ts_cancelled
    assert order.reject_reason == reason
    assert order.ts_last == 20 * MS


def test_fill_racing_a_cancel_stands_and_completes_the_order() -> None:
    order, issues = run(
        new(0, qty=10),
        fill(1, 4),
        ev("order_cancel_request", 2),
        ev("order_cancelled", 3),
        fill(4, 6),  # executed before the cancel reached the book
    )
    assert issues == [None, None, None, None, EVENT_AFTER_TERMINAL]
    assert order.filled_qty == 10
    assert order.status is OrderStatus.FILLED
    assert order.cancel_latency_ms == pytest.approx(1.0)


def test_partial_fill_racing_a_cancel_stays_cancelled_but_counts() -> None:
    order, issues = run(new(0, qty=10), ev("order_cancelled", 3), fill(4, 2, 100.0, fee=0.1))
    assert issues[-1] == EVENT_AFTER_TERMINAL
    assert order.status is OrderStatus.CANCELLED
    assert order.filled_qty == 2
    assert order.fees == pytest.approx(0.1)
    assert order.fill_latency_ms == pytest.approx(4.0)


def test_ts_last_is_the_latest_event_time_even_out_of_order() -> None:
    order, _ = run(new(0), ev("order_ack", 9), ev("order_cancelled", 5))
    assert order.ts_last == 9 * MS
    assert order_record(order).ts_done == 9 * MS


# ---- the stored row -------------------------------------------------------------


def test_order_record_mirrors_the_state() -> None:
    order, _ = run(
        new(0, qty=10, price=100, venue="XNAS", account_id="A1", strategy_id="S1", tif="ioc"),
        ev("order_ack", 1, venue_order_id="V9"),
        fill(2, 4, 100.0, liquidity=Liquidity.TAKER, fee=0.2),
        fill(3, 6, 102.0, liquidity=Liquidity.MAKER),
    )
    order.aliases.extend(["O1b", "O1c"])
    rec = order_record(order)
    assert rec.order_id == "O1"
    assert rec.status is OrderStatus.FILLED
    assert (rec.symbol, rec.venue, rec.side) == ("X", "XNAS", Side.BUY)
    assert (rec.account_id, rec.strategy_id, rec.venue_order_id) == ("A1", "S1", "V9")
    assert rec.aliases == "O1b,O1c"
    assert (rec.ts_new, rec.ts_ack, rec.ts_first_fill, rec.ts_done) == (0, MS, 2 * MS, 3 * MS)
    assert rec.filled_qty == 10
    assert rec.avg_px == pytest.approx(101.2)
    assert rec.notional == pytest.approx(1012.0)
    assert rec.fees == pytest.approx(0.2)
    assert rec.n_fills == 2
    assert (rec.maker_qty, rec.taker_qty) == (6, 4)
    assert rec.fill_rate == 1.0
    assert rec.slippage_bps is None  # no fill had a slippage


def test_absorb_context_fills_gaps_only() -> None:
    order = OrderState("O1")
    order.absorb_context(ev("fill", 1, symbol="X", venue="V1", last_qty=1, last_px=1))
    order.absorb_context(new(0, venue="V2", account_id="A"))
    assert (order.symbol, order.venue, order.account_id) == ("X", "V1", "A")
