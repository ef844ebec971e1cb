"""Golden parity: every emission (alerts and profile rows) of the engine on labelled streams
with late events, risk limits and rules, small batches and a snapshot restore midway, is
the same as the engine's before its per-kind dispatch rewrite (the digest and counts below
were computed with that version, commit a014246). A change of any detector's output shows
here; if it is intended, recompute the figures and say why in the commit."""

from __future__ import annotations

import hashlib
import random

import msgspec

from tests.unit.surveillance.test_precision_recall import OWNERS, labelled
from tradelog.model.events import Event, EventKind
from tradelog.surveillance.engine import Surveillance, SurveillanceSettings, SurveillanceState
from tradelog.surveillance.risk import PositionLimit, RiskRule, RiskSettings

DIGEST = "7e173ca55838e173dbe5abb7f2297478ae725ef89c36902598396ade77ab9d11"
COUNTS = {
    "cancel_ratio": 1, "concentration": 2, "cross_venue": 2, "order_to_trade": 3,
    "price_anomaly": 6, "pump_dump": 1, "risk_daily_loss": 1295, "risk_latency": 2001,
    "risk_position_limit": 268, "risk_reject_rate": 2, "risk_rule_lat": 4858,
    "risk_rule_pnl": 6116, "risk_rule_pos": 1853, "risk_rule_rr": 902, "spoofing": 3,
    "volume_spike": 5, "wash_trade": 3,
}  # fmt: skip


def settings() -> SurveillanceSettings:
    s = SurveillanceSettings()
    s.risk = RiskSettings(
        position_limits=[PositionLimit(max_abs=500.0)],
        daily_loss_limits={"*": 50.0},
        latency_ms=5.0,
        latency_min_breaches=2,
        reject_min_orders=2,
        rules=[
            RiskRule(name="big", metric="order_qty", threshold=300.0),
            RiskRule(name="pos", metric="position", threshold=200.0),
            RiskRule(name="lat", metric="latency_ms", op=">=", threshold=3.0),
            RiskRule(name="pnl", metric="daily_pnl", op="<", threshold=-10.0),
            RiskRule(name="rr", metric="reject_rate", threshold=0.1),
        ],
    )
    return s


def stream(seed: int) -> list[Event]:
    """The labelled streams with enrichment (positions, PnL, latencies), some rejects and
    one event in twenty swapped with its next but one (late events)."""
    events, _ = labelled(seed)
    rnd = random.Random(seed)
    out: list[Event] = []
    pos: dict[tuple[str | None, str | None], float] = {}
    for e in events:
        extra: dict[str, object] = {}
        if rnd.random() < 0.5:
            extra["latency_ms"] = rnd.choice([0.5, 1.0, 4.0, 8.0, -1.0])
        if e.kind is EventKind.FILL and e.last_qty is not None:
            k = (e.account_id, e.symbol)
            pos[k] = pos.get(k, 0.0) + (e.last_qty if e.side == "buy" else -e.last_qty)
            extra.update(pos_after=pos[k], avg_cost_after=e.last_px, fees_after=1.0,
                         realized_after=rnd.uniform(-100, 50),
                         strategy_id=rnd.choice(["A", "B"]))  # fmt: skip
        if e.kind is EventKind.ORDER_NEW and rnd.random() < 0.1:
            extra["kind"] = EventKind.ORDER_REJECTED
        out.append(msgspec.structs.replace(e, **extra))
    for _ in range(len(out) // 20):
        i = rnd.randrange(len(out) - 3)
        out[i], out[i + 2] = out[i + 2], out[i]
    return out


def emissions(seed: int, batch: int) -> tuple[str, dict[str, int]]:
    events = stream(seed)
    engine = Surveillance(settings(), OWNERS)
    state = SurveillanceState()
    digest = hashlib.sha256()
    counts: dict[str, int] = {}
    for n, i in enumerate(range(0, len(events), batch)):
        alerts, profiles = engine.process(events[i : i + batch], state)
        digest.update(msgspec.json.encode((alerts, profiles)))
        for a in alerts:
            counts[a.type] = counts.get(a.type, 0) + 1
        if n == 7:
            state = SurveillanceState.from_bytes(state.to_bytes())
    return digest.hexdigest(), dict(sorted(counts.items()))


def test_emissions_are_those_of_the_engine_before_the_rewrite() -> None:
    digest, counts = emissions(2, 97)
    assert counts == COUNTS
    assert digest == DIGEST
