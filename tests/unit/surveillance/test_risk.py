"""Risk triggers: position limit, daily loss, reject-rate spike, latency breach, user rules."""

from __future__ import annotations

import msgspec

from tests.unit.surveillance.streams import Stream, final, only, run
from tradelog.surveillance.engine import SurveillanceSettings
from tradelog.surveillance.risk import PositionLimit, RiskRule, RiskSettings


def risk(**kw: object) -> SurveillanceSettings:
    s = only(None)
    s.risk = msgspec.convert({**msgspec.structs.asdict(RiskSettings()), "enabled": True, **kw},
                             RiskSettings)  # fmt: skip
    return s


def test_position_limit_sums_accounts_of_a_strategy_and_symbol() -> None:
    s = Stream()
    s.fill(1, "o1", "A1", "buy", 60, 10.0, strategy_id="mm", pos_after=60.0)
    s.fill(2, "o2", "A2", "buy", 40, 10.0, strategy_id="mm", pos_after=40.0)  # 100: at limit
    s.fill(3, "o3", "A2", "buy", 1, 10.0, strategy_id="mm", pos_after=41.0)  # 101 > 100
    s.fill(4, "o4", "A1", "buy", 500, 10.0, strategy_id="other", pos_after=500.0)
    settings = risk(position_limits=[PositionLimit(max_abs=100.0, strategy="mm")])
    alerts, _ = run(s.events, settings, batch=1)
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.type, a.strategy_id, a.symbol, a.level) == ("risk_position_limit", "mm", "XYZ",
                                                          "high")  # fmt: skip
    assert a.evidence["position"] == 101.0 and a.evidence["limit"] == 100.0
    assert a.evidence["by_account"] == {"A1": 60.0, "A2": 41.0}
    assert a.evidence["event_ids"] == ["e3"]


def test_daily_loss_counts_realized_net_of_fees_and_unrealized_at_the_mid() -> None:
    s = Stream()
    # long 100 at 10; realized 0; the mid falls to 9.5 → unrealized −50; fee 1 → −51
    s.fill(1, "o1", "A1", "buy", 100, 10.0, strategy_id="mm", pos_after=100.0,
           avg_cost_after=10.0, realized_after=0.0, fees_after=1.0)  # fmt: skip
    s.quote(2, 9.49, 9.51)
    s.fill(3, "o2", "A1", "buy", 1, 9.5, strategy_id="mm", pos_after=101.0,
           avg_cost_after=(1000 + 9.5) / 101, realized_after=0.0, fees_after=1.0)  # fmt: skip
    settings = risk(daily_loss_limits={"mm": 50.0})
    alerts, _ = run(s.events, settings, batch=1)
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.type, a.level, a.strategy_id) == ("risk_daily_loss", "critical", "mm")
    # 101 × (9.5 − 1009.5 / 101) − 1 = 959.5 − 1009.5 − 1 = −51
    assert abs(a.evidence["daily_pnl"] - (-51.0)) < 1e-9
    # with a limit of 52 nothing fires
    assert run(s.events, risk(daily_loss_limits={"mm": 52.0}))[0] == []


def test_daily_pnl_restarts_at_the_utc_day() -> None:
    s = Stream()
    s.fill(1, "o1", "A1", "buy", 100, 10.0, strategy_id="mm", pos_after=100.0,
           avg_cost_after=10.0, realized_after=-80.0, fees_after=0.0)  # fmt: skip
    day = 86_400
    s.fill(day + 1, "o2", "A1", "buy", 1, 10.0, strategy_id="mm", pos_after=101.0,
           avg_cost_after=10.0, realized_after=-80.0, fees_after=0.0)  # fmt: skip
    alerts, _ = run(s.events, risk(daily_loss_limits={"*": 50.0}), batch=1)
    assert [a.evidence["daily_pnl"] for a in alerts] == [-80.0]  # day 2 starts at 0


def test_reject_rate_spike_after_min_orders() -> None:
    s = Stream()
    for i in range(20):
        s.order(i * 0.1, f"o{i}", "A1", "buy", 1, 10.0, strategy_id="tk")
    for i in range(9):
        s.add("order_rejected", 3 + i * 0.1, order_id=f"o{i}", strategy_id="tk", reason="risk")
    assert run(s.events, risk())[0] == []  # 9 / 20 < 0.5
    s.add("order_rejected", 4.0, order_id="o9", strategy_id="tk", reason="risk")  # 10 / 20
    alerts, _ = run(s.events, risk())
    assert len(alerts) == 1
    a = alerts[0]
    assert a.type == "risk_reject_rate" and a.evidence["reject_rate"] == 0.5
    assert a.evidence["event_ids"] == [f"e{i}" for i in range(21, 31)]


def test_latency_breach_needs_5_slow_events_in_the_window() -> None:
    s = Stream()
    for i in range(4):
        s.add("order_ack", i, order_id=f"o{i}", strategy_id="tk", latency_ms=1500.0)
    s.add("order_ack", 4, order_id="o4", strategy_id="tk", latency_ms=1000.0)  # not above
    assert run(s.events, risk())[0] == []
    s.add("order_ack", 5, order_id="o5", strategy_id="tk", latency_ms=1000.1)
    alerts, _ = run(s.events, risk())
    assert len(alerts) == 1 and alerts[0].type == "risk_latency"
    assert alerts[0].evidence["breaches"] == 5 and alerts[0].evidence["measured"] == 6
    # 70 s later the old breaches left the 60 s window
    s.add("order_ack", 75, order_id="o6", strategy_id="tk", latency_ms=2000.0)
    assert len(run(s.events, risk())[0]) == 1


def test_user_rule_on_order_notional_and_continuing_breach_updates_one_alert() -> None:
    s = Stream()
    s.order(1, "o1", "A1", "buy", 100, 10.0, strategy_id="tk")  # 1000: not > 1000
    s.order(2, "o2", "A1", "buy", 101, 10.0, strategy_id="tk")
    s.order(3, "o3", "A1", "buy", 200, 10.0, strategy_id="tk")
    rule = RiskRule(name="big_order", metric="order_notional", op=">", threshold=1000.0)
    alerts, _ = run(s.events, risk(rules=[rule]), batch=1)
    assert [a.evidence["value"] for a in alerts] == [1010.0, 2000.0]
    assert len(final(alerts)) == 1 and alerts[-1].occurrences == 2
    assert alerts[0].type == "risk_rule_big_order" and alerts[0].change == "new"
    assert alerts[1].change == "update"
    assert alerts[0].window_start == s.events[1].ts
