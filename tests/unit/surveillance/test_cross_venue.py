"""Cross-venue discrepancy: mids of one symbol on two venues differ beyond 50 bps."""

from __future__ import annotations

from tests.unit.surveillance.streams import Stream, final, only, run


def synced(n: int = 10) -> Stream:
    s = Stream()
    for i in range(n):
        s.quote(i * 0.1, 99.99, 100.01, venue="V1")
        s.quote(i * 0.1 + 0.01, 99.99, 100.01, venue="V2")
    return s


def gap(s: Stream, t: float, bps: float, n: int = 3, stale_s: float = 0.0) -> None:
    mid = 100.0 * (1 + bps / 1e4)
    for i in range(n):
        s.quote(t + i * 0.1, 99.99, 100.01, venue="V1")
        s.quote(t + i * 0.1 + 0.01 + stale_s, mid - 0.01, mid + 0.01, venue="V2")


def test_three_consecutive_updates_beyond_50_bps_fire() -> None:
    s = synced()
    gap(s, 2.0, 60.0)
    alerts, _ = run(s.events, only("cross_venue"), batch=1)
    assert len(final(alerts)) == 1
    a = alerts[0]
    assert (a.type, a.symbol, a.accounts) == ("cross_venue", "XYZ", ())
    # diff relative to the mean of the two mids
    expected = abs(100.6 - 100.0) / 100.3 * 1e4
    assert abs(a.evidence["diff_bps"] - expected) < 1e-9
    assert a.evidence["consecutive"] == 3
    # updates beyond: e22 (V2), e23 (V1), e24 (V2) → the third fires with the two quotes
    assert a.evidence["event_ids"] == ["e23", "e24"]


def test_at_40_bps_or_for_two_updates_only_nothing() -> None:
    s = synced()
    gap(s, 2.0, 40.0)
    assert run(s.events, only("cross_venue"))[0] == []
    s = synced()
    s.quote(2.0, 100.59, 100.61, venue="V2")  # 1st update beyond
    s.quote(2.1, 99.99, 100.01, venue="V1")  # 2nd
    s.quote(2.2, 99.99, 100.01, venue="V2")  # back in line: the streak ends
    s.quote(2.3, 100.59, 100.61, venue="V2")  # 1st again
    s.quote(2.4, 99.99, 100.01, venue="V1")  # 2nd
    assert run(s.events, only("cross_venue"))[0] == []


def test_stale_other_venue_is_not_compared() -> None:
    s = Stream()
    for i in range(12):
        s.quote(i * 0.1, 99.99, 100.01, venue="V1")
    for i in range(12):
        s.quote(5.0 + i * 0.1, 100.59, 100.61, venue="V2")  # V1 last quoted > 1 s before
    assert run(s.events, only("cross_venue"))[0] == []


def test_warm_up_needs_10_quotes_per_venue() -> None:
    s = synced(5)
    gap(s, 2.0, 60.0, n=4)  # V2 has 9 quotes
    assert run(s.events, only("cross_venue"))[0] == []
