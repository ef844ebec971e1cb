"""Volume spike: the minute's volume ≥ 3 × the trailing mean per minute."""

from __future__ import annotations

from tests.unit.surveillance.streams import Stream, final, only, run


def history(minutes: int, per_minute: float = 10.0) -> Stream:
    s = Stream()
    for m in range(minutes):
        s.trade(m * 60 + 5, per_minute / 2, 100.0)
        s.trade(m * 60 + 35, per_minute / 2, 100.0)
    return s


def test_fires_when_the_minute_reaches_3x_the_trailing_mean() -> None:
    s = history(40)  # mean 10 per minute
    t = 40 * 60
    first = s.trade(t + 1, 20.0, 100.0)
    second = s.trade(t + 2, 10.0, 100.0)  # 30 = 3 × 10
    s.trade(t + 3, 5.0, 100.0)  # same minute: no second alert
    alerts, _ = run(s.events, only("volume_spike"), batch=1)
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.type, a.accounts, a.level) == ("volume_spike", (), "medium")
    assert a.evidence["minute_volume"] == 30.0 and a.evidence["trailing_mean_volume"] == 10.0
    assert a.evidence["ratio"] == 3.0 and a.evidence["threshold"] == 3.0
    assert a.evidence["event_ids"] == [first.event_id, second.event_id]


def test_just_below_3x_raises_nothing() -> None:
    s = history(40)
    s.trade(40 * 60 + 1, 29.99, 100.0)
    assert run(s.events, only("volume_spike"))[0] == []


def test_warm_up_needs_30_minutes_of_history() -> None:
    s = history(20)
    s.trade(20 * 60 + 1, 100.0, 100.0)
    assert run(s.events, only("volume_spike"))[0] == []


def test_a_spike_lasting_two_minutes_updates_one_alert() -> None:
    s = history(40)
    s.trade(40 * 60 + 1, 40.0, 100.0)
    s.trade(41 * 60 + 1, 60.0, 100.0)  # mean now (390 + 40) / 60… still a spike
    alerts, _ = run(s.events, only("volume_spike"), batch=1)
    assert len(alerts) == 2 and len(final(alerts)) == 1
    assert alerts[-1].occurrences == 2 and alerts[-1].change == "update"
