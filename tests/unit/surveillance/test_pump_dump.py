"""Pump and dump: ≥ 15 % rise within 10 min on ≥ 3 × volume, then ≥ 10 % fall; the
evidence names who bought early and sold into the rise."""

from __future__ import annotations

from tests.unit.surveillance.streams import Stream, only, run


def base(minutes: int = 40) -> Stream:
    """Quiet trading at 100: 10 per minute."""
    s = Stream()
    for m in range(minutes):
        s.trade(m * 60 + 10, 10.0, 100.0)
    return s


def pump(s: Stream, t: float, top: float = 120.0, heavy: bool = True) -> float:
    """P1 and P2 buy early at 100–104, the price is walked up to ``top`` by public prints,
    P1 sells into the rise; returns the time of the peak."""
    q = 40.0 if heavy else 2.0
    s.fill(t, "p1b", "P1", "buy", q, 100.0)
    s.fill(t + 5, "p2b", "P2", "buy", q, 104.0)
    n = 8
    for i in range(1, n + 1):
        s.trade(t + 10 + i * 20, q, 104.0 + (top - 104.0) * i / n)
    s.fill(t + 200, "p1s", "P1", "sell", q, top - 1.0)
    s.fill(t + 210, "u1s", "U1", "sell", q, top - 2.0)  # sells high, never bought early
    return t + 10 + n * 20


def test_rise_on_volume_then_fall_names_early_buyers_who_sold_into_the_rise() -> None:
    s = base()
    t = 40 * 60
    peak = pump(s, t)
    s.trade(t + 300, 10.0, 110.0)  # 8.3 % below the peak: not yet
    dump = s.trade(t + 320, 10.0, 108.0)  # 10 % below 120
    alerts, _ = run(s.events, only("pump_dump"))
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.type, a.level, a.accounts) == ("pump_dump", "high", ("P1",))
    ev = a.evidence
    assert ev["low_px"] == 100.0 and ev["peak_px"] == 120.0
    assert abs(ev["rise"] - 0.2) < 1e-12 and abs(ev["fall"] - 0.1) < 1e-12
    assert ev["bought_early"] == {"P1": 40.0, "P2": 40.0}
    assert ev["sold_into_rise"] == {"P1": 40.0, "U1": 40.0}
    assert ev["event_ids"][-1] == dump.event_id
    assert ev["peak_ts"] - ev["low_ts"] == round((peak - t) * 1e9)


def test_no_fall_or_too_small_a_fall_raises_nothing() -> None:
    s = base()
    pump(s, 40 * 60)
    s.trade(40 * 60 + 320, 10.0, 108.5)  # 9.6 % below the peak
    assert run(s.events, only("pump_dump"))[0] == []


def test_rise_on_ordinary_volume_raises_nothing() -> None:
    s = base()
    pump(s, 40 * 60, heavy=False)
    s.trade(40 * 60 + 320, 1.0, 100.0)
    assert run(s.events, only("pump_dump"))[0] == []


def test_rise_below_15_percent_raises_nothing() -> None:
    s = base()
    pump(s, 40 * 60, top=114.9)
    s.trade(40 * 60 + 320, 10.0, 100.0)
    assert run(s.events, only("pump_dump"))[0] == []


def test_warm_up_needs_history_before_the_rise() -> None:
    s = base(10)
    pump(s, 10 * 60)
    s.trade(10 * 60 + 320, 10.0, 100.0)
    assert run(s.events, only("pump_dump"))[0] == []
