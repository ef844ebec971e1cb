"""Hand-built event streams for the detector tests: a clock, ids and event builders."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tradelog.model.alerts import Alert
from tradelog.model.events import Event, EventKind, Liquidity, Side
from tradelog.surveillance.engine import Surveillance, SurveillanceSettings, SurveillanceState

NS = 1_000_000_000
T0 = 1_741_012_200 * NS  # 2025-03-03 14:30:00Z
DETECTORS = ("wash_trade", "spoofing", "cancel_ratio", "pump_dump", "volume_spike",
             "price_anomaly", "concentration", "cross_venue")  # fmt: skip


def only(name: str | None, **overrides: Any) -> SurveillanceSettings:
    """Settings with every detector but ``name`` (and risk unless named) switched off;
    ``overrides`` replace fields of that detector's settings."""
    s = SurveillanceSettings()
    for det in (*DETECTORS, "risk"):
        sub = getattr(s, det)
        if det == name:
            setattr(s, det, msgspec.structs.replace(sub, **overrides))
        else:
            setattr(s, det, msgspec.structs.replace(sub, enabled=False))
    return s


@dataclass
class Stream:
    """Builds events with ids ``e1, e2, …`` at ``T0 + t`` seconds."""

    symbol: str = "XYZ"
    events: list[Event] = field(default_factory=list)
    n: int = 0
    prefix: str = ""
    """Event ids are ``<prefix>e<n>`` (streams merged into one need distinct prefixes)."""

    def add(self, kind: str, t: float, **fields: Any) -> Event:
        self.n += 1
        fields.setdefault("symbol", self.symbol)
        ev = Event(event_id=f"{self.prefix}e{self.n}", kind=EventKind(kind), ts=T0 + round(t * NS),
                   ts_ingest=T0 + round(t * NS), source="test", **fields)  # fmt: skip
        self.events.append(ev)
        return ev

    def order(self, t: float, oid: str, account: str, side: str, qty: float, px: float,
              **kw: Any) -> Event:  # fmt: skip
        return self.add("order_new", t, order_id=oid, root_order_id=oid, account_id=account,
                        side=Side(side), qty=qty, price=px, **kw)  # fmt: skip

    def cancel(self, t: float, oid: str, account: str, cum: float = 0.0) -> Event:
        return self.add("order_cancelled", t, order_id=oid, root_order_id=oid,
                        account_id=account, cum_qty=cum)  # fmt: skip

    def fill(self, t: float, oid: str, account: str, side: str, qty: float, px: float,
             **kw: Any) -> Event:  # fmt: skip
        kw.setdefault("liquidity", Liquidity.TAKER)
        return self.add("fill", t, order_id=oid, root_order_id=oid, account_id=account,
                        side=Side(side), last_qty=qty, last_px=px, **kw)  # fmt: skip

    def trade(self, t: float, qty: float, px: float, side: str = "buy") -> Event:
        return self.add("market_trade", t, qty=qty, price=px, side=Side(side), venue="V1")

    def quote(self, t: float, bid: float, ask: float, venue: str = "V1",
              bid_size: float = 100.0, ask_size: float = 100.0) -> Event:  # fmt: skip
        return self.add("quote", t, venue=venue, bid=bid, ask=ask, bid_size=bid_size,
                        ask_size=ask_size)  # fmt: skip


def run(
    events: list[Event],
    settings: SurveillanceSettings,
    owners: dict[str, str] | None = None,
    state: SurveillanceState | None = None,
    batch: int = 7,
) -> tuple[list[Alert], SurveillanceState]:
    """Every emission (new/updated alerts) of the stream fed in small batches."""
    engine = Surveillance(settings, owners)
    st = state if state is not None else SurveillanceState()
    out: list[Alert] = []
    for i in range(0, len(events), batch):
        alerts, _ = engine.process(events[i : i + batch], st)
        out.extend(alerts)
    return out, st


def final(alerts: list[Alert]) -> dict[str, Alert]:
    """The last emitted version of each alert id."""
    return {a.alert_id: a for a in alerts}


BACKGROUND_ACCOUNTS = ("A1", "A2", "A3", "A4", "A5")


def background(seed: int, minutes: int = 90, symbol: str = "XYZ", rate: float = 1.0) -> Stream:
    """Ordinary trading: 5 independent accounts, a random walk with 0.05 % steps, two venues
    quoting the same book, orders of 1–20 mostly filled, some cancelled, public prints;
    ``rate`` steps per second on average."""
    rnd = random.Random(seed)
    s = Stream(symbol=symbol, prefix=f"{symbol}-" if symbol != "XYZ" else "")
    px = 100.0
    n = 0
    t = 0.0
    while t < minutes * 60:
        t += rnd.expovariate(rate)
        px *= 1 + rnd.gauss(0, 0.0005)
        for venue in ("V1", "V2"):
            size = float(rnd.randint(50, 500))
            s.quote(t, round(px - 0.01, 4), round(px + 0.01, 4), venue=venue, bid_size=size,
                    ask_size=size)  # fmt: skip
        s.trade(t, float(rnd.randint(1, 20)), round(px, 4), rnd.choice(["buy", "sell"]))
        acc = rnd.choice(BACKGROUND_ACCOUNTS)
        side = rnd.choice(["buy", "sell"])
        qty = float(rnd.randint(1, 20))
        n += 1
        oid = f"{symbol}-o{n}"
        s.order(t, oid, acc, side, qty, round(px, 4), strategy_id="s" + acc[-1])
        if rnd.random() < 0.7:
            s.fill(t + 0.2, oid, acc, side, qty, round(px + rnd.uniform(-0.01, 0.01), 4),
                   leaves_qty=0.0, strategy_id="s" + acc[-1])  # fmt: skip
        else:
            s.cancel(t + 0.5, oid, acc)
    return s
