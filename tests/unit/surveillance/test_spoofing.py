"""Spoofing / layering: large resting orders cancelled unfilled while filled on the other
side; market making with many cancels but no opposite trade raises nothing."""

from __future__ import annotations

from tests.unit.surveillance.streams import Stream, final, only, run


def warm(s: Stream, account: str = "S", n: int = 20, t0: float = 0.0) -> float:
    """``n`` ordinary orders of 10 (the account's median size becomes 10)."""
    for i in range(n):
        s.order(t0 + i * 0.1, f"w{account}{i}", account, "buy", 10, 99.0)
    return t0 + n * 0.1


def spoof(s: Stream, t: float, k: int, account: str = "S", qty: float = 100.0,
          partial: float = 0.0) -> None:  # fmt: skip
    """A large sell rests, the account buys on the other side, the sell is cancelled."""
    s.order(t, f"big{k}", account, "sell", qty, 101.0)
    if partial:
        s.fill(t + 0.5, f"big{k}", account, "sell", partial, 101.0, leaves_qty=qty - partial)
    s.order(t + 1.0, f"buy{k}", account, "buy", 10, 100.0)
    s.fill(t + 1.2, f"buy{k}", account, "buy", 10, 100.0, leaves_qty=0.0)
    s.cancel(t + 2.0, f"big{k}", account, cum=partial)


def test_large_order_cancelled_unfilled_while_filled_on_the_other_side() -> None:
    s = Stream()
    t = warm(s)  # e1..e20
    spoof(s, t + 1.0, 0)  # e21 big sell, e22 buy order, e23 buy fill, e24 cancel
    alerts, _ = run(s.events, only("spoofing"))
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.type, a.level, a.accounts) == ("spoofing", "medium", ("S",))
    assert a.evidence["event_ids"] == ["e21", "e24", "e23"]
    order = a.evidence["spoof_orders"][0]
    assert order["qty"] == 100.0 and order["account_median_size"] == 10.0
    assert order["size_vs_median"] == 10.0 and order["fill_ratio"] == 0.0
    assert a.evidence["thresholds"]["size_multiple"] == 10.0


def test_repeats_raise_the_level_on_the_same_alert() -> None:
    s = Stream()
    t = warm(s)
    for k in range(4):
        spoof(s, t + 1.0 + 3.0 * k, k)
    alerts, _ = run(s.events, only("spoofing"), batch=1)
    assert [a.level for a in alerts] == ["medium", "high", "high", "critical"]
    assert len(final(alerts)) == 1
    assert alerts[-1].occurrences == 4
    assert alerts[-1].evidence["repeats_in_window"] == 4


def test_below_size_multiple_or_with_fills_or_no_opposite_trade_raises_nothing() -> None:
    s = Stream()
    t = warm(s)
    spoof(s, t + 1.0, 0, qty=99.0)  # 9.9 × median: not large
    spoof(s, t + 30.0, 1, partial=5.0)  # 5 % filled: not "unfilled"
    # a market maker: large quotes both sides, all cancelled, never trades
    for k in range(10):
        s.order(t + 60.0 + k, f"mm{k}a", "S", "sell", 150, 101.0)
        s.order(t + 60.0 + k, f"mm{k}b", "S", "buy", 150, 99.0)
        s.cancel(t + 60.5 + k, f"mm{k}a", "S")
        s.cancel(t + 60.5 + k, f"mm{k}b", "S")
    assert run(s.events, only("spoofing"))[0] == []


def test_warm_up_without_profile_or_book_sizes_raises_nothing() -> None:
    s = Stream()
    t = warm(s, n=19)  # one order short of the profile warm-up, and no quotes
    spoof(s, t + 1.0, 0)
    assert run(s.events, only("spoofing"))[0] == []


def test_top_of_book_size_makes_an_order_large_without_profile_history() -> None:
    s = Stream()
    s.quote(0.0, 99.9, 100.1, bid_size=500.0, ask_size=80.0)  # e1
    spoof(s, 1.0, 0)  # 100 ≥ 1 × ask size 80
    alerts, _ = run(s.events, only("spoofing"))
    assert len(alerts) == 1
    assert alerts[0].evidence["spoof_orders"][0]["top_of_book_size"] == 80.0
    assert alerts[0].evidence["spoof_orders"][0]["account_median_size"] is None


def test_outside_the_lookback_raises_nothing() -> None:
    s = Stream()
    t = warm(s)
    s.order(t + 1.0, "big", "S", "sell", 100, 101.0)
    s.fill(t + 1.2, "b", "S", "buy", 10, 100.0)
    s.cancel(t + 17.0, "big", "S")  # rested 16 s > 15 s lookback
    assert run(s.events, only("spoofing"))[0] == []


def test_a_late_fill_does_not_hide_the_opposite_fills_before_it() -> None:
    """The opposite fills are searched from the order's placement on: by bisection while an
    account's fills arrive in time order, in full once one came late."""
    s = Stream()
    t = warm(s)  # e1..e20
    s.order(t + 1.0, "big", "S", "sell", 100, 101.0)  # e21
    s.fill(t + 2.0, "b1", "S", "buy", 10, 100.0)  # e22: opposite, while big rests
    s.fill(0.5, "late", "S", "buy", 10, 100.0)  # e23: arrives late, before big was placed
    s.cancel(t + 3.0, "big", "S")  # e24
    alerts, state = run(s.events, only("spoofing"), batch=1)
    assert state.symbols["XYZ"].spoofing.unordered == ["S"]
    assert len(alerts) == 1
    assert alerts[0].evidence["event_ids"] == ["e21", "e24", "e22"]
    assert [f["event_id"] for f in alerts[0].evidence["opposite_fills"]] == ["e22"]


def test_fills_in_time_order_again_after_the_window_empties() -> None:
    s = Stream()
    t = warm(s)
    s.fill(t + 1.0, "b1", "S", "buy", 10, 100.0)
    s.fill(t + 0.5, "b2", "S", "buy", 10, 100.0)  # late
    _, state = run(s.events, only("spoofing"))
    assert state.symbols["XYZ"].spoofing.unordered == ["S"]
    s.fill(t + 60.0, "b3", "S", "buy", 10, 100.0)  # the lookback (15 s) evicts the others
    _, state = run(s.events[-1:], only("spoofing"), state=state)
    assert state.symbols["XYZ"].spoofing.unordered == []
