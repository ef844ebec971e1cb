"""The whole engine: background random trading raises nothing; detector state survives a
partition snapshot and restore exactly; the alert lifecycle rules."""

from __future__ import annotations

import msgspec
import pytest

from tests.unit.surveillance.streams import Stream, run
from tests.unit.surveillance.streams import background as streams_background
from tradelog.model.alerts import TRANSITIONS, alert_id, next_status, risk_band
from tradelog.model.events import Event
from tradelog.pipeline.snapshot_codec import unpack_snapshot
from tradelog.pipeline.state import PartitionState
from tradelog.surveillance.engine import Surveillance, SurveillanceSettings, SurveillanceState

OWNERS = {"A1": "W1", "A2": "W2", "A3": "W3", "A4": "W4", "A5": "W5"}


def background(seed: int) -> list[Event]:
    return streams_background(seed).events


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_background_random_trading_raises_nothing(seed: int) -> None:
    alerts, state = run(background(seed), SurveillanceSettings(), OWNERS, batch=500)
    assert alerts == []
    assert state.profiles["A1"].orders > 0  # the profiles were kept meanwhile


def test_state_survives_snapshot_and_restore_exactly() -> None:
    """Half the stream, partition snapshot, a new state restored from it, the other half:
    the same alerts as one uninterrupted run."""
    s = Stream()
    for i in range(20):
        s.order(i * 0.1, f"w{i}", "S", "buy", 10, 99.0)
    for k in range(4):
        t = 5.0 + 3.0 * k
        s.order(t, f"big{k}", "S", "sell", 100, 101.0)
        s.fill(t + 1.2, f"b{k}", "S", "buy", 10, 100.0)
        s.cancel(t + 2.0, f"big{k}", "S")
    events = s.events
    settings = SurveillanceSettings()
    whole, _ = run(events, settings, batch=1)
    cut = 26  # after the first spoof pattern
    first, st = run(events[:cut], settings, batch=1)
    part = PartitionState()
    part.surveillance = st
    restored = PartitionState()
    restored.restore(part.snapshot())
    assert restored.surveillance == st
    second, _ = run(events[cut:], settings, state=restored.surveillance, batch=1)
    assert [(a.alert_id, a.level, a.occurrences) for a in first + second] == [
        (a.alert_id, a.level, a.occurrences) for a in whole
    ]
    assert whole[-1].level == "critical"


def test_a_version_1_state_loads_and_continues_like_the_original() -> None:
    """Version 1 had no ``SpoofingState.unordered``: reading it derives the field from the
    fill lists, and the run continues as if never interrupted."""
    s = Stream()
    for i in range(20):
        s.order(i * 0.1, f"w{i}", "S", "buy", 10, 99.0)
    s.fill(3.0, "b1", "S", "buy", 10, 100.0)
    s.fill(2.5, "b2", "S", "buy", 10, 100.0)  # late: S's fills are out of time order
    s.fill(3.1, "b3", "T", "buy", 10, 100.0)
    s.order(4.0, "big", "S", "sell", 100, 101.0)
    s.fill(4.5, "b4", "S", "buy", 10, 100.0)
    s.cancel(5.0, "big", "S")
    settings = SurveillanceSettings()
    whole, _ = run(s.events, settings, batch=1)
    cut = 23
    _, st = run(s.events[:cut], settings, batch=1)
    old = msgspec.to_builtins(st)
    old["version"] = 1
    for sym in old["symbols"].values():
        del sym["spoofing"]["unordered"]
    restored = SurveillanceState.from_bytes(msgspec.msgpack.encode(old))
    assert restored.version == 2
    assert restored == st
    assert restored.symbols["XYZ"].spoofing.unordered == ["S"]
    second, _ = run(s.events[cut:], settings, state=restored, batch=1)
    assert [msgspec.to_builtins(a) for a in second] == [
        msgspec.to_builtins(a) for a in whole[len(whole) - len(second) :]
    ]
    assert [a.type for a in second] == ["spoofing"]
    with pytest.raises(ValueError, match="version 7"):
        SurveillanceState.from_bytes(msgspec.msgpack.encode({**old, "version": 7}))


def test_snapshot_without_surveillance_restores_an_empty_state() -> None:
    """Snapshots written before surveillance existed still load."""
    part = PartitionState()
    payload = msgspec.msgpack.decode(unpack_snapshot(part.snapshot()))
    del payload["surveillance"]
    restored = PartitionState()
    restored.surveillance.last_ts = 5
    restored.restore(msgspec.msgpack.encode(payload))
    assert restored.surveillance == SurveillanceState()


def test_lifecycle_transitions() -> None:
    assert next_status("active", "acknowledge") == "acknowledged"
    assert next_status("acknowledged", "resolve") == "resolved"
    assert next_status("acknowledged", "dismiss") == "dismissed"
    assert next_status("active", "dismiss") == "dismissed"
    for status in ("resolved", "dismissed"):
        for action in ("acknowledge", "resolve", "dismiss"):
            assert next_status(status, action) is None
    assert next_status("acknowledged", "acknowledge") is None
    assert len(TRANSITIONS) == 5
    assert [risk_band(x) for x in (0.0, 0.25, 0.5, 0.75, 1.0)] == [
        "low", "medium", "high", "critical", "critical"
    ]  # fmt: skip


def test_alert_id_is_deterministic_and_distinguishes_its_parts() -> None:
    a = alert_id("spoofing", "XYZ", ("S",), 1)
    assert a == alert_id("spoofing", "XYZ", ("S",), 1)
    assert len({a, alert_id("spoofing", "XYZ", ("S",), 2), alert_id("spoofing", "XY", ("S",), 1),
                alert_id("spoofing", "XYZ", ("T",), 1), alert_id("wash_trade", "XYZ", ("S",), 1),
                alert_id("spoofing", "XYZ", ("S",), 1, "mm")}) == 6  # fmt: skip


def test_a_quiet_pattern_opens_a_new_alert_after_idle_time() -> None:
    s = Stream()
    s.fill(1.0, "o1", "A1", "buy", 100, 10.0, counterparty_account="A1")
    s.fill(2.0, "o2", "A1", "buy", 100, 10.0, counterparty_account="A1")  # continues
    s.fill(2000.0, "o3", "A1", "buy", 100, 10.0, counterparty_account="A1")  # > 900 s later
    engine = Surveillance(SurveillanceSettings())
    st = SurveillanceState()
    out = []
    for ev in s.events:
        out.extend(engine.process([ev], st)[0])
    out = [a for a in out if a.type == "wash_trade"]
    assert [a.occurrences for a in out] == [1, 2, 1]
    assert out[0].alert_id == out[1].alert_id != out[2].alert_id
    assert [a.change for a in out] == ["new", "update", "new"]
