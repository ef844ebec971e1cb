"""Wash trades: same owner on both sides (counterparty), inferred pairs, self-match ratio."""

from __future__ import annotations

from tests.unit.surveillance.streams import Stream, final, only, run

OWNERS = {"A1": "W", "A2": "W", "B1": "X"}


def test_counterparty_of_the_same_owner_is_a_high_alert_with_the_fill_as_evidence() -> None:
    s = Stream()
    s.fill(1.0, "o1", "A1", "buy", 100, 10.0, counterparty_account="A2")
    alerts, _ = run(s.events, only("wash_trade"), OWNERS)
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.type, a.level, a.accounts, a.symbol) == ("wash_trade", "high", ("A1", "A2"), "XYZ")
    assert a.evidence["rule"] == "counterparty"
    assert a.evidence["event_ids"] == ["e1"]
    assert a.evidence["owner"] == "W"
    assert a.evidence["parameters"]["match_window_s"] == 1.0


def test_counterparty_of_another_owner_raises_nothing() -> None:
    s = Stream()
    s.fill(1.0, "o1", "A1", "buy", 100, 10.0, counterparty_account="B1")
    s.fill(1.0, "o2", "B1", "sell", 100, 10.0, counterparty_account="A1")
    assert run(s.events, only("wash_trade"), OWNERS)[0] == []


def test_opposite_fills_of_one_owner_at_same_price_and_qty_within_1s() -> None:
    s = Stream()
    s.fill(1.0, "o1", "A1", "buy", 100, 10.0)
    s.fill(1.9, "o2", "A2", "sell", 100, 10.0)
    alerts, _ = run(s.events, only("wash_trade"), OWNERS)
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.level, a.accounts) == ("medium", ("A1", "A2"))
    assert a.evidence["rule"] == "inferred_same_price_qty"
    assert a.evidence["event_ids"] == ["e1", "e2"]
    assert abs(a.evidence["dt_ms"] - 900.0) < 1e-6


def test_near_misses_two_owners_or_too_late_or_other_qty_or_price() -> None:
    s = Stream()
    s.fill(1.0, "o1", "A1", "buy", 100, 10.0)
    s.fill(1.5, "o2", "B1", "sell", 100, 10.0)  # another owner
    s.fill(10.0, "o3", "A1", "buy", 100, 10.0)
    s.fill(11.01, "o4", "A2", "sell", 100, 10.0)  # 1.01 s later
    s.fill(20.0, "o5", "A1", "buy", 100, 10.0)
    s.fill(20.5, "o6", "A2", "sell", 99, 10.0)  # other quantity
    s.fill(30.0, "o7", "A1", "buy", 100, 10.0)
    s.fill(30.5, "o8", "A2", "sell", 100, 10.01)  # other price
    s.fill(40.0, "o9", "A1", "buy", 100, 10.0)
    s.fill(40.5, "o9", "A1", "sell", 100, 10.0)  # same order (not a cross)
    assert run(s.events, only("wash_trade"), OWNERS)[0] == []


def test_self_match_ratio_fires_at_threshold_and_not_below_and_updates_one_alert() -> None:
    def stream(other_fills: int, crossed_pairs: int) -> Stream:
        s = Stream()
        t = 0.0
        for i in range(other_fills):
            s.fill(t, f"x{i}", "A1", "buy", 10, 10.0 + i)
            t += 2.0
        for i in range(crossed_pairs):
            s.fill(t, f"b{i}", "A1", "buy", 10, 10.0)
            s.fill(t + 0.1, f"s{i}", "A2", "sell", 10, 10.0)
            t += 2.0
        return s

    # 4 unmatched fills (40) then pairs: after 7 pairs 140/180 < 0.8, after 8: 160/200 = 0.8
    alerts, _ = run(stream(4, 8).events, only("wash_trade"), OWNERS)
    assert len(final(alerts)) == 1  # pairs and ratio of one owner: one alert, updated
    last = alerts[-1]
    ratio = last.evidence["by_rule"]["self_match_ratio"]
    assert ratio["ratio"] == 0.8
    assert (ratio["self_matched_qty"], ratio["owner_qty"], ratio["owner_fills"]) == (160, 200, 20)
    assert ratio["event_ids"] == [f"e{i}" for i in range(5, 21)]  # the 16 self-matched fills
    assert last.level == "high"  # escalated from the pairs' medium
    assert last.occurrences == 9  # 8 pairs + 1 ratio finding
    assert last.evidence["by_rule"]["inferred_same_price_qty"]["event_ids"] == ["e19", "e20"]
    # 5 unmatched + 8 pairs: 160 / 210 < 0.8 → only the pair rule
    alerts, _ = run(stream(5, 8).events, only("wash_trade"), OWNERS)
    assert "self_match_ratio" not in alerts[-1].evidence.get("by_rule", {})
    assert alerts[-1].level == "medium"


def test_ratio_warm_up_needs_min_fills() -> None:
    s = Stream()
    for i in range(4):  # 8 fills < 10
        s.fill(i * 2.0, f"b{i}", "A1", "buy", 10, 10.0)
        s.fill(i * 2.0 + 0.1, f"s{i}", "A2", "sell", 10, 10.0)
    alerts, _ = run(s.events, only("wash_trade"), OWNERS)
    assert alerts[-1].occurrences == 4
    assert "self_match_ratio" not in alerts[-1].evidence["by_rule"]
