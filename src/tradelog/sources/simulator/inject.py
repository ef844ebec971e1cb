"""Optional injected patterns, each recorded in ``ground_truth.json`` with its times,
symbols, venues, accounts and the orders / event ids it produced, so detectors and
anomaly rules can be scored against what really happened.

- ``latency_spike``: one venue answers 1.2–2.5 s late for a few seconds.
- ``fat_finger``: one order of ~40× the usual size with a limit far through the touch.
- ``slippage_burst``: one symbol's depth goes thin and gappy while the taker keeps taking.
- ``spoofing``: large resting orders layered behind the bid, a small sell into the other
  side, then the large orders cancelled unfilled — three rounds.
- ``wash_trades``: two accounts of one owner trade with each other, same price and size.
- ``pump_and_dump``: a symbol driven up ~20% on heavy buying then down ~15%; one account
  buys early and sells into the rise.
- ``volume_spike``: one symbol's public trading rate ×10 for a while.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import msgspec

from tradelog.model.timefmt import ns_to_iso
from tradelog.sources.simulator.venues import SimOrder

if TYPE_CHECKING:
    from tradelog.sources.simulator.sim import SimContext

NS_PER_S: Final = 1_000_000_000
PATTERNS: Final[tuple[str, ...]] = (
    "latency_spike",
    "fat_finger",
    "spoofing",
    "wash_trades",
    "slippage_burst",
    "volume_spike",
    "pump_and_dump",
)


class Injection(msgspec.Struct, kw_only=True):
    """One injected pattern as it happened."""

    type: str
    start: str = ""
    end: str = ""
    start_ns: int = 0
    end_ns: int = 0
    symbols: list[str] = []
    venues: list[str] = []
    accounts: list[str] = []
    order_ids: list[str] = []
    event_ids: list[str] = []
    detail: dict[str, Any] = {}

    def window(self, start: int, end: int) -> None:
        self.start_ns, self.end_ns = start, end
        self.start, self.end = ns_to_iso(start), ns_to_iso(end)

    def add(self, o: SimOrder | None) -> None:
        if o is None:
            return
        self.order_ids.append(o.root_id)
        if o.event_id is not None:
            self.event_ids.append(o.event_id)
        if o.account_id not in self.accounts:
            self.accounts.append(o.account_id)


def parse_patterns(text: str) -> list[str]:
    """``"all"``, ``""``/``"none"`` or a comma list of pattern names; raises ValueError."""
    text = text.strip()
    if text in ("", "none"):
        return []
    if text == "all":
        return list(PATTERNS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PATTERNS]
    if unknown:
        raise ValueError(f"unknown pattern(s) {', '.join(unknown)}; expected {', '.join(PATTERNS)}")
    return names


def schedule(ctx: SimContext, name: str, t0: int, span_ns: int) -> Injection:
    """Schedules one pattern starting at ``t0`` within ``span_ns``; returns its record,
    completed as the simulation runs."""
    inj = Injection(type=name)
    inj.window(t0, t0 + span_ns)
    fn: Callable[[SimContext, Injection, int, int], None] = _PATTERNS[name]
    ctx.sched.at(t0, lambda: fn(ctx, inj, t0, span_ns))
    return inj


def _latency_spike(ctx: SimContext, inj: Injection, t0: int, span: int) -> None:
    venue = ctx.venues[ctx.rng.choice(sorted(ctx.venues))]
    dur = min(span * 4 // 10, 8 * NS_PER_S)
    venue.injected_until = t0 + dur
    venue.injected_ms = ctx.rng.uniform(1200.0, 2500.0)
    inj.window(t0, t0 + dur)
    inj.venues.append(venue.spec.name)
    inj.detail["extra_latency_ms"] = round(venue.injected_ms, 1)

    def watch(o: SimOrder) -> None:
        if o.venue == venue.spec.name and ctx.sched.now < t0 + dur:
            inj.add(o)

    ctx.recorder_watchers.append(watch)


def _fat_finger(ctx: SimContext, inj: Injection, t0: int, span: int) -> None:
    tk = ctx.taker
    spec = ctx.rng.choice(tk.symbols)
    side = ctx.rng.choice(("buy", "sell"))
    through = max(3, int(spec.price * 0.015 / spec.tick))
    lots = spec.base_lots * 40
    o = tk.take(tk.accounts[0], spec, side, lots, through_ticks=through, tags=("fat_finger",))
    inj.add(o)
    inj.symbols.append(spec.symbol)
    inj.detail.update(qty=spec.qty(lots), usual_qty=spec.qty(spec.base_lots * 2), side=side)
    inj.window(t0, t0)


def _slippage_burst(ctx: SimContext, inj: Injection, t0: int, span: int) -> None:
    tk = ctx.taker
    spec = ctx.rng.choice(tk.symbols)
    st = ctx.market.symbols[spec.symbol]
    dur = min(span // 2, 10 * NS_PER_S)
    st.thin_book = True
    inj.window(t0, t0 + dur)
    inj.symbols.append(spec.symbol)
    for i in range(4):

        def take(i: int = i) -> None:
            side = "buy" if i % 2 == 0 else "sell"
            inj.add(
                tk.take(
                    tk.accounts[i % len(tk.accounts)],
                    spec,
                    side,
                    spec.base_lots * 6,
                    40,
                    ("slippage_burst",),
                )
            )

        ctx.sched.at(t0 + (i + 1) * dur // 5, take)

    def end() -> None:
        st.thin_book = False

    ctx.sched.at(t0 + dur, end)


def _spoofing(ctx: SimContext, inj: Injection, t0: int, span: int) -> None:
    sp = ctx.spoofer
    account = sp.accounts[-1]
    spec = ctx.rng.choice(sp.symbols)
    gap = max(1, min(span // 4, 4 * NS_PER_S))
    inj.symbols.append(spec.symbol)
    inj.window(t0, t0 + 3 * gap)
    inj.detail["layer_qty"] = spec.qty(spec.base_lots * 15)
    for r in range(3):

        def layer() -> None:
            found = sp.best_venue(spec, "sell")
            if found is None:
                return
            venue, bid = found
            layers = [
                sp.send(
                    account,
                    spec,
                    venue,
                    "buy",
                    spec.base_lots * 15,
                    bid - k,
                    "gtc",
                    ("spoof_layer",),
                )
                for k in (5, 6, 7)
            ]
            for o in layers:
                inj.add(o)

            def bait() -> None:
                inj.add(sp.take(account, spec, "sell", spec.base_lots, 1, ("spoof_bait",)))

            def pull() -> None:
                for o in layers:
                    sp.cancel(o)

            ctx.sched.after(300_000_000, bait)
            ctx.sched.after(1_200_000_000, pull)

        ctx.sched.at(t0 + r * gap, layer)


def _wash_trades(ctx: SimContext, inj: Injection, t0: int, span: int) -> None:
    tk = ctx.taker
    seller, buyer = tk.accounts[0], tk.accounts[1]
    spec = ctx.rng.choice(tk.symbols)
    venue = ctx.rng.choice(tk.venues)
    gap = max(1, min(span // 4, 1_500_000_000))
    inj.symbols.append(spec.symbol)
    inj.venues.append(venue)
    inj.window(t0, t0 + 3 * gap + NS_PER_S)
    inj.detail["owner_accounts"] = [seller, buyer]
    for r in range(3):

        def cross() -> None:
            q = ctx.market.symbols[spec.symbol].quotes.get(venue)
            if q is None:
                return
            ticks = q.ask - 1 if q.ask - 1 > q.bid else q.ask
            lots = spec.base_lots * 2
            rest = tk.send(seller, spec, venue, "sell", lots, ticks, "gtc", ("wash",))
            inj.add(rest)

            def hit() -> None:
                inj.add(tk.send(buyer, spec, venue, "buy", lots, ticks, "ioc", ("wash",)))

            def tidy() -> None:
                tk.cancel(rest)

            ctx.sched.after(150_000_000, hit)
            ctx.sched.after(NS_PER_S, tidy)

        ctx.sched.at(t0 + r * gap, cross)


def _pump_and_dump(ctx: SimContext, inj: Injection, t0: int, span: int) -> None:
    sp = ctx.spoofer
    account = sp.accounts[-1]
    spec = ctx.rng.choice(sp.symbols)
    st = ctx.market.symbols[spec.symbol]
    pump = max(NS_PER_S, min(span * 45 // 100, 90 * NS_PER_S))
    dump = max(NS_PER_S, min(span * 35 // 100, 60 * NS_PER_S))
    st.drift_per_s = math.log(1.20) / (pump / NS_PER_S)
    st.trade_boost, st.buy_bias = 5.0, 0.8
    inj.symbols.append(spec.symbol)
    inj.window(t0, t0 + pump + dump)
    inj.detail.update(
        pump_s=pump / NS_PER_S, dump_s=dump / NS_PER_S, start_mid=st.mid, up=0.20, down=0.15
    )
    lots = spec.base_lots * 6
    for i in range(3):
        ctx.sched.at(
            t0 + i * pump // 10,
            lambda: inj.add(sp.take(account, spec, "buy", lots, 3, ("pump_buy",))),
        )
        ctx.sched.at(
            t0 + pump * (7 + i) // 10,
            lambda: inj.add(sp.take(account, spec, "sell", lots, 3, ("dump_sell",))),
        )

    def turn() -> None:
        st.drift_per_s = math.log(0.85) / (dump / NS_PER_S)
        st.buy_bias = 0.2
        inj.detail["peak_mid"] = st.mid

    def end() -> None:
        st.drift_per_s, st.trade_boost, st.buy_bias = 0.0, 1.0, 0.5
        inj.detail["end_mid"] = st.mid

    ctx.sched.at(t0 + pump, turn)
    ctx.sched.at(t0 + pump + dump, end)


def _volume_spike(ctx: SimContext, inj: Injection, t0: int, span: int) -> None:
    spec = ctx.rng.choice(ctx.taker.symbols)
    st = ctx.market.symbols[spec.symbol]
    dur = max(NS_PER_S, min(span // 2, 60 * NS_PER_S))
    st.trade_boost = 10.0
    inj.symbols.append(spec.symbol)
    inj.window(t0, t0 + dur)
    inj.detail["trade_rate_multiplier"] = 10.0

    def end() -> None:
        st.trade_boost = 1.0

    ctx.sched.at(t0 + dur, end)


_PATTERNS: Final[dict[str, Callable[[SimContext, Injection, int, int], None]]] = {
    "latency_spike": _latency_spike,
    "fat_finger": _fat_finger,
    "spoofing": _spoofing,
    "wash_trades": _wash_trades,
    "slippage_burst": _slippage_burst,
    "volume_spike": _volume_spike,
    "pump_and_dump": _pump_and_dump,
}
