"""Price anomaly: 1-minute return beyond 15 % or robust z-score beyond 6."""

from __future__ import annotations

import itertools
import random
from statistics import median

from tests.unit.surveillance.streams import Stream, only, run


def wiggle(minutes: int, step: float = 0.001, px0: float = 100.0) -> tuple[Stream, float]:
    """One print per minute, returns uniform in ±step (seeded)."""
    rnd = random.Random(7)
    s = Stream()
    px = px0
    for m in range(minutes):
        s.trade(m * 60 + 1, 1.0, px)
        px = px * (1 + rnd.uniform(-step, step))
    return s, px


def z_move(s: Stream, z: float) -> float:
    """The price multiple whose return has robust z-score ``z`` against the stream's
    trailing returns (hand-computed the detector's way)."""
    closes = [e.price for e in s.events if e.price is not None]
    rets = [b / a - 1 for a, b in itertools.pairwise(closes)][-60:]
    med = median(rets)
    mad = median(abs(r - med) for r in rets)
    return 1 + med + z * 1.4826 * mad


def test_a_20_percent_minute_fires_with_both_rules() -> None:
    s, _px = wiggle(40)
    last = s.events[-1]
    jump = s.trade(40 * 60 + 1, 1.0, last.price * 1.2)  # type: ignore[operator]
    s.trade(41 * 60 + 1, 1.0, last.price * 1.2)  # type: ignore[operator]  # closes the minute
    alerts, _ = run(s.events, only("price_anomaly"))
    assert len(alerts) == 1
    a = alerts[0]
    assert a.type == "price_anomaly" and a.level in ("high", "critical")
    assert abs(a.evidence["return"] - 0.2) < 1e-12
    assert a.evidence["rules"] == ["return", "robust_z"]
    assert a.evidence["event_ids"] == [jump.event_id]
    assert a.window_start == jump.ts - 1_000_000_000


def test_return_rule_alone_at_16_percent_and_not_at_14() -> None:
    for move, fires in ((1.16, True), (1.14, False)):
        s, _ = wiggle(40)
        base = s.events[-1].price
        assert base is not None
        s.trade(40 * 60 + 1, 1.0, base * move)
        s.trade(41 * 60 + 1, 1.0, base * move)
        alerts, _ = run(s.events, only("price_anomaly", max_robust_z=None))
        assert bool(alerts) is fires, move


def test_robust_z_alone_fires_above_6_and_not_below() -> None:
    for z, fires in ((6.05, True), (5.95, False)):
        s, _ = wiggle(40, step=0.01)
        base = s.events[-1].price
        assert base is not None
        move = z_move(s, z)
        s.trade(40 * 60 + 1, 1.0, base * move)
        s.trade(41 * 60 + 1, 1.0, base * move)
        alerts, _ = run(s.events, only("price_anomaly", max_return=None))
        assert bool(alerts) is fires, move
        if fires:
            assert alerts[0].evidence["rules"] == ["robust_z"]
            assert abs(alerts[0].evidence["robust_z"] - 6.05) < 1e-6


def test_warm_up_no_alert_in_the_first_minutes() -> None:
    s, _ = wiggle(3)
    base = s.events[-1].price
    assert base is not None
    s.trade(3 * 60 + 1, 1.0, base * 1.5)
    s.trade(4 * 60 + 1, 1.0, base * 1.5)
    assert run(s.events, only("price_anomaly"))[0] == []


def test_flat_prices_leave_the_z_rule_silent() -> None:
    s, _ = wiggle(40, step=0.0)
    s.trade(40 * 60 + 1, 1.0, 100.5)
    s.trade(41 * 60 + 1, 1.0, 100.5)
    assert run(s.events, only("price_anomaly"))[0] == []  # 0.5 %: MAD 0, no z
