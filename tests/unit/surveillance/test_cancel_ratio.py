"""Cancel ratio (≥ 0.9) and order-to-trade ratio (> 15), with a min-orders warm-up."""

from __future__ import annotations

from tests.unit.surveillance.streams import Stream, final, only, run


def orders_then_cancels(n_orders: int, n_cancels: int, n_fills: int = 0) -> Stream:
    s = Stream()
    for i in range(n_orders):
        s.order(i * 0.5, f"o{i}", "M", "buy", 10, 100.0)
    t = n_orders * 0.5
    for i in range(n_fills):
        s.fill(t + i * 0.1, f"o{i}", "M", "buy", 10, 100.0)
    for i in range(n_cancels):
        s.cancel(t + 5 + i * 0.1, f"o{n_fills + i}", "M")
    return s


def test_cancel_ratio_fires_at_threshold_with_cancel_ids_as_evidence() -> None:
    s = orders_then_cancels(50, 45)  # 45 / 50 = 0.9 reached at the 45th cancel
    alerts, _ = run(s.events, only("cancel_ratio", order_to_trade=None), batch=1)
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.type, a.accounts, a.level) == ("cancel_ratio", ("M",), "medium")
    assert a.evidence["value"] == 0.9 and a.evidence["threshold"] == 0.9
    assert (a.evidence["orders"], a.evidence["cancels"]) == (50, 45)
    assert a.evidence["event_ids"][-1] == "e95"  # the 45th cancel
    assert s.events[94].kind == "order_cancelled"


def test_cancel_ratio_below_threshold_or_before_warm_up_raises_nothing() -> None:
    assert (
        run(orders_then_cancels(50, 44).events, only("cancel_ratio", order_to_trade=None))[0] == []
    )
    # 49 orders all cancelled: ratio 1.0 but fewer than min_orders (50)
    assert (
        run(orders_then_cancels(49, 49).events, only("cancel_ratio", order_to_trade=None))[0] == []
    )


def test_order_to_trade_above_15_fires_and_at_15_does_not() -> None:
    # 4 fills, then orders: 61 / 4 = 15.25 > 15 fires at the 61st order; 60 / 4 = 15 does not
    def stream(fills: int, orders: int) -> Stream:
        s = Stream()
        for i in range(fills):
            s.fill(i * 0.1, f"f{i}", "M", "buy", 10, 100.0)
        for i in range(orders):
            s.order(1 + i * 0.5, f"o{i}", "M", "buy", 10, 100.0)
        return s

    alerts, _ = run(stream(4, 61).events, only("cancel_ratio", cancel_ratio=None))
    got = final(alerts)
    assert len(got) == 1
    a = next(iter(got.values()))
    assert a.type == "order_to_trade"
    assert a.evidence["value"] == 61 / 4 and a.evidence["threshold"] == 15.0
    assert run(stream(4, 60).events, only("cancel_ratio", cancel_ratio=None))[0] == []


def test_order_to_trade_without_any_fill_reports_an_undefined_ratio() -> None:
    s = Stream()
    for i in range(50):
        s.order(i * 0.5, f"o{i}", "M", "buy", 10, 100.0)
    alerts, _ = run(s.events, only("cancel_ratio", cancel_ratio=None))
    assert alerts and alerts[0].evidence["value"] is None
    assert "undefined" in alerts[0].evidence["value_note"]
    assert alerts[0].evidence["fills"] == 0
