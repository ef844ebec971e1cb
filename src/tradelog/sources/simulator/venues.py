"""Simulated venues: latency (queueing, random spikes, injected slowdowns), acks, rejects
with reasons, matching of incoming orders against our own resting orders and the public
depth (partial fills over several levels), maker fills when the market trades through a
resting order, cancels, cancel/replace, and fees (maker rebate, taker fee)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Final, Protocol

from tradelog.sources.simulator.clock import Scheduler
from tradelog.sources.simulator.market import Market, Print, Quote, SymbolSpec

NS_PER_MS: Final = 1_000_000
REJECT_REASONS: Final = (
    "insufficient balance",
    "rate limit exceeded",
    "post-only order would cross",
    "instrument in auction",
)
COLLAR: Final = 0.05
"""Limit prices further than this from the mid are rejected (``price outside collar``)."""


@dataclass(frozen=True, slots=True)
class VenueSpec:
    """A venue's latency profile, fees (bps of notional; negative = rebate) and session."""

    name: str
    time_zone: str
    base_latency_ms: float
    jitter: float
    """σ of the log-normal latency multiplier."""
    service_ms: float
    """Matching engine time per message: bursts queue behind each other."""
    spike_prob: float
    """Probability per message that a latency spike episode starts."""
    maker_fee_bps: float
    taker_fee_bps: float
    spread_mult: float
    reject_prob: float


DEFAULT_VENUES: Final[tuple[VenueSpec, ...]] = (
    VenueSpec("XCRY", "UTC", 0.9, 0.35, 0.05, 0.002, -1.0, 2.5, 1.0, 0.008),
    VenueSpec("YCRY", "Asia/Singapore", 2.6, 0.5, 0.12, 0.004, -0.5, 3.0, 1.25, 0.015),
    VenueSpec("ZCRY", "America/New_York", 1.6, 0.45, 0.08, 0.003, -0.8, 2.0, 1.1, 0.01),
)


@dataclass(slots=True, eq=False)
class SimOrder:
    """An order as the venue and its engine see it (prices in ticks, sizes in lots)."""

    root_id: str
    order_id: str
    strategy_id: str
    account_id: str
    spec: SymbolSpec
    venue: str
    side: str
    lots: int
    ticks: int | None
    """Limit price; None for a market order."""
    tif: str
    owner: OrderOwner
    ts_new: int = 0
    event_id: str | None = None
    cum_lots: int = 0
    status: str = "pending"
    venue_order_id: str = ""
    busy: bool = False
    """A cancel or replace is in flight."""
    tags: list[str] = field(default_factory=list)

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    @property
    def leaves(self) -> int:
        return self.lots - self.cum_lots

    @property
    def order_type(self) -> str:
        return "market" if self.ticks is None else "limit"

    @property
    def is_buy(self) -> bool:
        return self.side == "buy"

    @property
    def done(self) -> bool:
        return self.status in ("filled", "cancelled", "rejected", "expired")


@dataclass(frozen=True, slots=True)
class Execution:
    """One fill of one order."""

    ts: int
    exec_id: str
    lots: int
    ticks: int
    liquidity: str
    fee: float
    counterparty: str | None


class OrderOwner(Protocol):
    """The engine that sent an order hears back through these (at the venue's time)."""

    def on_ack(self, o: SimOrder, t: int) -> None: ...
    def on_fill(self, o: SimOrder, x: Execution) -> None: ...
    def on_cancelled(self, o: SimOrder, t: int, request_id: str, reason: str) -> None: ...
    def on_rejected(self, o: SimOrder, t: int, reason: str) -> None: ...
    def on_expired(self, o: SimOrder, t: int, reason: str) -> None: ...
    def on_replaced(self, o: SimOrder, old_id: str, t: int) -> None: ...
    def on_cancel_rejected(
        self, o: SimOrder, request_id: str, t: int, reason: str, replace: bool
    ) -> None: ...


class Venue:
    """One venue: its latency state, our resting orders per symbol, and the matching."""

    def __init__(
        self, spec: VenueSpec, rng: random.Random, market: Market, sched: Scheduler, tag: str = ""
    ) -> None:
        self.spec = spec
        self.tag = tag
        self.rng = rng
        self.market = market
        self.sched = sched
        self.resting: dict[str, list[SimOrder]] = {}
        self._free_at = 0
        self._last_answer = 0
        self._spike_until = 0
        self._spike_ms = 0.0
        self.injected_until = 0
        self.injected_ms = 0.0
        self._exec_seq = 0
        self._order_seq = 0

    # ---- latency -------------------------------------------------------------
    def delay(self) -> int:
        """Round trip of one message now: queue wait + service + log-normal network time,
        plus a spike episode (random or injected) when one is on."""
        now = self.sched.now
        s = self.spec
        rng = self.rng
        service = int(s.service_ms * NS_PER_MS)
        self._free_at = max(now, self._free_at) + service
        wait = self._free_at - now
        ms = s.base_latency_ms * rng.lognormvariate(0.0, s.jitter)
        if now >= self._spike_until and rng.random() < s.spike_prob:
            self._spike_until = now + int(rng.uniform(100, 600) * NS_PER_MS)
            self._spike_ms = rng.uniform(20, 400)
        if now < self._spike_until:
            ms += self._spike_ms * rng.uniform(0.5, 1.0)
        if now < self.injected_until:
            ms += self.injected_ms * rng.uniform(0.8, 1.2)
        # one session: messages are answered in the order they were sent
        arrive = max(now + wait + int(ms * NS_PER_MS), self._last_answer)
        self._last_answer = arrive
        return arrive - now

    # ---- requests ------------------------------------------------------------
    def submit(self, o: SimOrder) -> None:
        self.sched.after(self.delay(), lambda: self._new(o))

    def cancel(self, o: SimOrder, request_id: str) -> None:
        o.busy = True
        self.sched.after(self.delay(), lambda: self._cancel(o, request_id))

    def replace(self, o: SimOrder, new_id: str, ticks: int) -> None:
        o.busy = True
        self.sched.after(self.delay(), lambda: self._replace(o, new_id, ticks))

    # ---- processing ----------------------------------------------------------
    def _new(self, o: SimOrder) -> None:
        t = self.sched.now
        st = self.market.symbols[o.symbol]
        if o.ticks is not None and abs(o.ticks * o.spec.tick / st.mid - 1.0) > COLLAR:
            o.status = "rejected"
            o.owner.on_rejected(o, t, "price outside collar")
            return
        if self.rng.random() < self.spec.reject_prob:
            o.status = "rejected"
            o.owner.on_rejected(o, t, self.rng.choice(REJECT_REASONS))
            return
        self._order_seq += 1
        o.venue_order_id = f"{self.spec.name}-{self.tag}{self._order_seq:08d}"
        o.status = "live"
        o.owner.on_ack(o, t)
        self._take(o, t)
        if o.leaves <= 0:
            return
        if o.tif == "ioc" or o.ticks is None:
            o.status = "expired"
            o.owner.on_expired(o, t, "IOC remainder")
        else:
            self.resting.setdefault(o.symbol, []).append(o)

    def _cancel(self, o: SimOrder, request_id: str) -> None:
        t = self.sched.now
        o.busy = False
        if o.done:
            o.owner.on_cancel_rejected(o, request_id, t, "too late to cancel", replace=False)
            return
        self._unrest(o)
        o.status = "cancelled"
        o.owner.on_cancelled(o, t, request_id, "cancelled on request")

    def _replace(self, o: SimOrder, new_id: str, ticks: int) -> None:
        t = self.sched.now
        o.busy = False
        if o.done:
            o.owner.on_cancel_rejected(o, new_id, t, "too late to replace", replace=True)
            return
        old = o.order_id
        o.order_id = new_id
        o.ticks = ticks
        o.owner.on_replaced(o, old, t)
        self._unrest(o)
        self._take(o, t)
        if o.leaves > 0:
            self.resting.setdefault(o.symbol, []).append(o)

    def _unrest(self, o: SimOrder) -> None:
        book = self.resting.get(o.symbol)
        if book is not None and o in book:
            book.remove(o)

    # ---- matching ------------------------------------------------------------
    def _fee(self, o: SimOrder, lots: int, ticks: int, maker: bool) -> float:
        bps = self.spec.maker_fee_bps if maker else self.spec.taker_fee_bps
        return round(o.spec.qty(lots) * o.spec.px(ticks) * bps / 1e4, 6)

    def _fill(
        self, o: SimOrder, lots: int, ticks: int, maker: bool, t: int, cp: str | None
    ) -> None:
        self._exec_seq += 1
        o.cum_lots += lots
        if o.leaves <= 0:
            o.status = "filled"
            self._unrest(o)
        x = Execution(
            t,
            f"{self.spec.name}-{self.tag}E{self._exec_seq:09d}",
            lots,
            ticks,
            "maker" if maker else "taker",
            self._fee(o, lots, ticks, maker),
            cp,
        )
        o.owner.on_fill(o, x)

    def _take(self, o: SimOrder, t: int) -> None:
        """An incoming (or re-priced) order takes from our own resting orders first, then
        from the public depth, level by level, while its limit allows."""
        buy = o.is_buy

        def crosses(ticks: int) -> bool:
            if o.ticks is None:
                return True
            return ticks <= o.ticks if buy else ticks >= o.ticks

        for r in sorted(
            (
                r
                for r in self.resting.get(o.symbol, [])
                # self-trade prevention: never against the same account
                if r.is_buy != buy and r.account_id != o.account_id and r.leaves > 0
            ),
            key=lambda r: (r.ticks or 0) if buy else -(r.ticks or 0),
        ):
            if o.leaves <= 0 or r.ticks is None or not crosses(r.ticks):
                break
            lots = min(o.leaves, r.leaves)
            self._fill(r, lots, r.ticks, True, t, o.account_id)
            self._fill(o, lots, r.ticks, False, t, r.account_id)
        if o.leaves <= 0:
            return
        q = self.market.symbols[o.symbol].quotes.get(self.spec.name)
        if q is None or not crosses(q.ask if buy else q.bid):
            return
        for ticks, lots in self.market.depth(o.symbol, self.spec.name, buy):
            if o.leaves <= 0 or not crosses(ticks):
                break
            self._fill(o, min(o.leaves, lots), ticks, False, t, None)

    def on_quote(self, symbol: str, q: Quote) -> None:
        """The market moved through a resting order: it is filled (maker) at its price."""
        t = self.sched.now
        for r in list(self.resting.get(symbol, [])):
            if r.ticks is None or r.leaves <= 0:
                continue
            if (r.is_buy and r.ticks >= q.ask) or (not r.is_buy and r.ticks <= q.bid):
                lots = r.leaves if self.rng.random() < 0.6 else max(1, r.leaves // 2)
                self._fill(r, lots, r.ticks, True, t, None)

    def on_print(self, p: Print) -> None:
        """A public aggressor at or through a resting order's price trades with it."""
        t = self.sched.now
        remaining = max(1, math.ceil(p.lots * 0.5))
        for r in list(self.resting.get(p.symbol, [])):
            if remaining <= 0:
                break
            if r.ticks is None or r.leaves <= 0 or r.is_buy == (p.side == "buy"):
                continue
            if (p.side == "buy" and r.ticks <= p.ticks) or (
                p.side == "sell" and r.ticks >= p.ticks
            ):
                lots = min(r.leaves, remaining)
                remaining -= lots
                self._fill(r, lots, r.ticks, True, t, None)
