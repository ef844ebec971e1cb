"""Simulated trading engines: a market maker, a liquidity taker and a FIX execution algo,
each on several accounts. Each engine keeps its own book of positions (average cost, net
of fees — DESIGN §4, implemented here independently of ``model.positions`` so the two can
be compared), logs what it sends and hears through its writer, and reports every fill and
finished order to the ground-truth recorder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from tradelog.sources.simulator.market import SymbolSpec
from tradelog.sources.simulator.venues import Execution, SimOrder

if TYPE_CHECKING:
    from tradelog.sources.simulator.sim import SimContext
    from tradelog.sources.simulator.writers import LineLog

NS_PER_S: Final = 1_000_000_000
SLOW_ACK_MS: Final = 250.0


@dataclass(slots=True)
class Book:
    """Average-cost position of one strategy × account × symbol."""

    qty: float = 0.0
    avg_cost: float = 0.0
    realized_gross: float = 0.0
    fees: float = 0.0
    fills: int = 0
    changed: bool = False

    @property
    def realized(self) -> float:
        """Realized PnL net of fees."""
        return self.realized_gross - self.fees

    def apply(self, sign: int, qty: float, px: float, fee: float) -> None:
        self.fees += fee
        self.fills += 1
        self.changed = True
        pos = self.qty
        if abs(pos) < 1e-9 or (pos > 0) == (sign > 0):
            new = pos + sign * qty
            self.avg_cost = (abs(pos) * self.avg_cost + qty * px) / abs(new)
            self.qty = new
            return
        closing = min(qty, abs(pos))
        self.realized_gross += closing * (px - self.avg_cost) * (1.0 if pos > 0 else -1.0)
        rest = qty - closing
        self.qty = pos + sign * closing
        if abs(self.qty) < 1e-9:
            self.qty = 0.0
            self.avg_cost = 0.0
            if rest > 1e-9:
                self.qty = sign * rest
                self.avg_cost = px


@dataclass(slots=True)
class Engine:
    """Shared plumbing of a trading engine: ids, sending, callbacks, books, log lines."""

    ctx: SimContext
    strategy_id: str
    accounts: list[str]
    log: LineLog
    id_prefix: str
    books: dict[tuple[str, str], Book] = field(default_factory=dict)
    open_orders: dict[str, SimOrder] = field(default_factory=dict)
    seq: int = 0
    sent: int = 0
    filled: int = 0
    rejects: int = 0

    # ---- sending ----------------------------------------------------------------
    def next_id(self) -> str:
        self.seq += 1
        return f"{self.id_prefix}{self.seq:07d}"

    def send(
        self,
        account: str,
        spec: SymbolSpec,
        venue: str,
        side: str,
        lots: int,
        ticks: int | None,
        tif: str,
        tags: tuple[str, ...] = (),
    ) -> SimOrder:
        """Sends a new order: logged now, the venue answers after its latency."""
        oid = self.next_id()
        t = self.ctx.sched.now
        o = SimOrder(
            oid,
            oid,
            self.strategy_id,
            account,
            spec,
            venue,
            side,
            lots,
            ticks,
            tif,
            self,
            ts_new=t,
            tags=list(tags),
        )
        o.event_id = self.log.order_new(t, o)
        self.open_orders[oid] = o
        self.sent += 1
        self.ctx.recorder.order_sent(o)
        self.ctx.venues[venue].submit(o)
        return o

    def cancel(self, o: SimOrder) -> None:
        if o.done or o.busy:
            return
        request = f"{o.order_id}-C" if self.log.own_cancel_ids else o.order_id
        self.log.cancel_request(self.ctx.sched.now, o, request)
        self.ctx.venues[o.venue].cancel(o, request)

    def replace(self, o: SimOrder, ticks: int) -> None:
        """Re-prices a working order (not before the venue acknowledged it)."""
        if o.done or o.busy or o.status == "pending":
            return
        new_id = self.next_id()
        self.log.replace_request(self.ctx.sched.now, o, new_id, ticks)
        self.ctx.venues[o.venue].replace(o, new_id, ticks)

    # ---- venue callbacks -----------------------------------------------------------
    def on_ack(self, o: SimOrder, t: int) -> None:
        self.log.order_ack(t, o)
        ms = (t - o.ts_new) / 1e6
        if ms > SLOW_ACK_MS:
            self.log.system(
                t,
                self.strategy_id,
                "warning",
                "gateway",
                f"slow ack from {o.venue}: {ms:.1f} ms for {o.order_id}",
            )

    def on_fill(self, o: SimOrder, x: Execution) -> None:
        self.log.fill(x.ts, o, x)
        spec = o.spec
        qty, px = spec.qty(x.lots), spec.px(x.ticks)
        book = self.books.setdefault((o.account_id, o.symbol), Book())
        book.apply(1 if o.is_buy else -1, qty, px, x.fee)
        self.filled += 1
        self.ctx.recorder.fill(o, x, qty, px)
        if o.status == "filled":
            self._finished(o, x.ts)

    def on_cancelled(self, o: SimOrder, t: int, request_id: str, reason: str) -> None:
        self.log.cancelled(t, o, request_id, reason)
        self._finished(o, t)

    def on_rejected(self, o: SimOrder, t: int, reason: str) -> None:
        self.log.rejected(t, o, reason)
        self.rejects += 1
        self.log.system(
            t,
            self.strategy_id,
            "warning",
            "oms",
            f"order {o.order_id} rejected by {o.venue}: {reason}",
        )
        self._finished(o, t)

    def on_expired(self, o: SimOrder, t: int, reason: str) -> None:
        self.log.expired(t, o, reason)
        self._finished(o, t)

    def on_replaced(self, o: SimOrder, old_id: str, t: int) -> None:
        self.open_orders[o.order_id] = self.open_orders.pop(old_id, o)
        self.log.replaced(t, o, old_id)

    def on_cancel_rejected(
        self, o: SimOrder, request_id: str, t: int, reason: str, replace: bool
    ) -> None:
        self.log.cancel_rejected(t, o, request_id, reason, replace)

    def _finished(self, o: SimOrder, t: int) -> None:
        self.open_orders.pop(o.order_id, None)
        self.ctx.recorder.order_done(o, t)

    # ---- reporting -----------------------------------------------------------------
    def report_positions(self, force: bool = False) -> None:
        """The engine's own position/PnL lines for the books that changed."""
        t = self.ctx.sched.now
        for (account, symbol), b in sorted(self.books.items()):
            if not (b.changed or force):
                continue
            b.changed = False
            mid = self.ctx.market.symbols[symbol].mid
            upnl = round(b.qty * (mid - b.avg_cost), 6) if b.qty else 0.0
            self.log.position(
                t, self.strategy_id, account, symbol, b.qty, round(b.realized, 6), upnl
            )

    def heartbeat(self) -> None:
        t = self.ctx.sched.now
        self.log.system(
            t,
            self.strategy_id,
            "info",
            "stats",
            f"orders_sent={self.sent} fills={self.filled} rejects={self.rejects} "
            f"open={len(self.open_orders)}",
        )

    def cancel_all(self) -> None:
        for o in list(self.open_orders.values()):
            self.cancel(o)

    def start(self) -> None:
        """Called once at the start of the simulation."""

    def tick(self) -> float:
        """One decision step; returns seconds until the next one."""
        return 1.0


@dataclass(slots=True)
class MarketMaker(Engine):
    """Quotes both sides at the touch on each of its venues, skewed by inventory; re-prices
    with cancel/replace when the touch moves, sometimes pulls a quote, and stops quoting the
    side that would grow a position beyond its limit."""

    assignments: list[tuple[str, SymbolSpec]] = field(default_factory=list)
    venues: list[str] = field(default_factory=list)
    quotes: dict[tuple[str, str, str, str], SimOrder] = field(default_factory=dict)
    interval_s: float = 0.5

    def tick(self) -> float:
        rng = self.ctx.rng
        market = self.ctx.market
        for account, spec in self.assignments:
            st = market.symbols[spec.symbol]
            book = self.books.get((account, spec.symbol))
            inv_lots = (book.qty / spec.lot) if book else 0.0
            limit = spec.base_lots * 25
            skew = round(inv_lots / (spec.base_lots * 6))
            for venue in self.venues:
                q = st.quotes.get(venue)
                if q is None:
                    continue
                for side in ("buy", "sell"):
                    key = (account, spec.symbol, venue, side)
                    target: int | None = (q.bid - skew) if side == "buy" else (q.ask - skew)
                    if (side == "buy" and inv_lots > limit) or (
                        side == "sell" and inv_lots < -limit
                    ):
                        target = None
                    o = self.quotes.get(key)
                    if o is None or o.done:
                        if target is not None and rng.random() < 0.7:
                            lots = spec.base_lots * rng.randint(1, 4)
                            self.quotes[key] = self.send(
                                account, spec, venue, side, lots, target, "gtc"
                            )
                    elif o.busy:
                        continue
                    elif target is None or rng.random() < 0.02:
                        self.cancel(o)
                    elif o.ticks != target and rng.random() < 0.6:
                        self.replace(o, target)
        return self.interval_s * rng.uniform(0.5, 1.5)


@dataclass(slots=True)
class LiquidityTaker(Engine):
    """Takes liquidity with marketable IOC orders (some market orders) on the venue with the
    best price, following short-term momentum, and trades back towards flat when a
    position grows beyond its limit."""

    symbols: list[SymbolSpec] = field(default_factory=list)
    venues: list[str] = field(default_factory=list)
    interval_s: float = 1.0

    def tick(self) -> float:
        rng = self.ctx.rng
        market = self.ctx.market
        account = rng.choice(self.accounts)
        spec = rng.choice(self.symbols)
        now = self.ctx.sched.now
        mom = market.momentum(spec.symbol, now, 2 * NS_PER_S)
        book = self.books.get((account, spec.symbol))
        pos_lots = (book.qty / spec.lot) if book else 0.0
        limit = spec.base_lots * 15
        if pos_lots > limit:
            side = "sell"
        elif pos_lots < -limit:
            side = "buy"
        else:
            side = "buy" if mom * 1e4 + rng.gauss(0.0, 1.0) > 0 else "sell"
        self.take(account, spec, side, spec.base_lots * rng.randint(1, 3))
        return rng.expovariate(1.0 / self.interval_s)

    def best_venue(self, spec: SymbolSpec, side: str) -> tuple[str, int] | None:
        quotes = self.ctx.market.symbols[spec.symbol].quotes
        best: tuple[str, int] | None = None
        for venue in self.venues:
            q = quotes.get(venue)
            if q is None:
                continue
            px = q.ask if side == "buy" else -q.bid
            if best is None or px < best[1]:
                best = (venue, px)
        return None if best is None else (best[0], abs(best[1]))

    def take(
        self,
        account: str,
        spec: SymbolSpec,
        side: str,
        lots: int,
        through_ticks: int = 2,
        tags: tuple[str, ...] = (),
    ) -> SimOrder | None:
        """A marketable IOC (15% of the time a market order) on the best venue."""
        found = self.best_venue(spec, side)
        if found is None:
            return None
        venue, touch = found
        ticks: int | None = touch + through_ticks if side == "buy" else touch - through_ticks
        if not tags and self.ctx.rng.random() < 0.15:
            ticks = None
        return self.send(account, spec, venue, side, lots, ticks, "ioc", tags)


@dataclass(slots=True)
class _Parent:
    account: str
    spec: SymbolSpec
    side: str
    lots: int
    deadline: int
    done_lots: int = 0
    child: SimOrder | None = None


@dataclass(slots=True)
class ExecutionAlgo(Engine):
    """Works client parent orders on one venue over its FIX session: one passive child at
    the near touch at a time, re-priced (cancel/replace) when the touch moves away, the
    rest cancelled when the parent's time is up."""

    symbols: list[SymbolSpec] = field(default_factory=list)
    venue: str = "XCRY"
    parents: list[_Parent] = field(default_factory=list)
    interval_s: float = 1.0
    new_parent_every_s: float = 6.0

    def tick(self) -> float:
        rng = self.ctx.rng
        now = self.ctx.sched.now
        if len(self.parents) < 3 and rng.random() < self.interval_s / self.new_parent_every_s:
            spec = rng.choice(self.symbols)
            self.parents.append(
                _Parent(
                    rng.choice(self.accounts),
                    spec,
                    rng.choice(("buy", "sell")),
                    spec.base_lots * rng.randint(8, 24),
                    now + int(rng.uniform(15, 40) * NS_PER_S),
                )
            )
        for p in list(self.parents):
            q = self.ctx.market.symbols[p.spec.symbol].quotes.get(self.venue)
            c = p.child
            if c is not None and not c.done:
                if c.busy:
                    continue
                if now >= p.deadline:
                    self.cancel(c)
                elif q is not None:
                    touch = q.bid if p.side == "buy" else q.ask
                    if c.ticks != touch:
                        self.replace(c, touch)
                continue
            if c is not None:
                p.done_lots += c.cum_lots
                p.child = None
            remaining = p.lots - p.done_lots
            if remaining <= 0 or now >= p.deadline:
                self.parents.remove(p)
                continue
            if q is None:
                continue
            touch = q.bid if p.side == "buy" else q.ask
            lots = min(remaining, p.spec.base_lots * rng.randint(2, 4))
            p.child = self.send(p.account, p.spec, self.venue, p.side, lots, touch, "day")
        return self.interval_s * rng.uniform(0.6, 1.4)
