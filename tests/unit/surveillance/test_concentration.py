"""Concentrated trading: one account ≥ 60 % of the symbol's fill volume in the window."""

from __future__ import annotations

from tests.unit.surveillance.streams import Stream, only, run


def stream(big: float, others: tuple[str, ...] = ("B", "C")) -> Stream:
    """20 fills: ``A`` trades ``big`` in 10 fills, each other account shares the rest."""
    s = Stream()
    rest = 100.0 - big
    for i in range(10):
        for j, acc in enumerate(others):
            s.fill(i * 2.0 + j * 0.1, f"{acc}{i}", acc, "buy", rest / 10 / len(others), 10.0)
        s.fill(i * 2.0 + 1.0, f"A{i}", "A", "sell", big / 10, 10.0)
    return s


def test_one_account_at_60_percent_fires_with_its_fills_as_evidence() -> None:
    s = stream(60.0)
    alerts, _ = run(s.events, only("concentration"))
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.type, a.accounts, a.level) == ("concentration", ("A",), "medium")
    assert abs(a.evidence["share"] - 0.6) < 1e-12
    # the share is 60 % from the start; it fires once the warm-up (20 fills) is met: at the
    # 21st fill (7 rounds of B, C, A): A 7 × 6 = 42 of 70
    assert a.evidence["accounts_in_window"] == 3 and a.evidence["fills"] == 21
    assert (a.evidence["account_qty"], a.evidence["symbol_qty"]) == (42.0, 70.0)
    assert a.evidence["event_ids"] == [e.event_id for e in s.events if e.account_id == "A"][:7]


def test_below_60_percent_raises_nothing() -> None:
    assert run(stream(59.0).events, only("concentration"))[0] == []


def test_two_accounts_only_is_below_the_warm_up() -> None:
    assert run(stream(80.0, others=("B",)).events, only("concentration"))[0] == []


def test_too_few_fills_is_below_the_warm_up() -> None:
    s = stream(90.0)
    assert run(s.events[:15], only("concentration"))[0] == []  # 15 fills < 20
