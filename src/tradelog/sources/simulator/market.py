"""The simulated market: mid prices as correlated random walks with volatility regimes,
top-of-book quotes per venue, depth levels for sweeps, and public trade prints.

Prices are kept in integer ticks and quantities in integer lots, so every number written
to a log is exact (``px = ticks × tick`` rounded to the tick's decimals) and re-reads to the
same float. All randomness comes from the ``random.Random`` passed in.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Final

REGIMES: Final[tuple[tuple[str, float], ...]] = (("calm", 1.0), ("normal", 2.0), ("volatile", 5.0))
"""Volatility regimes and their multiplier of a symbol's base volatility."""
_SWITCH: Final = ((0.9985, 0.0015, 0.0), (0.002, 0.996, 0.002), (0.0, 0.01, 0.99))
"""Per-tick regime transition probabilities (rows: from calm, normal, volatile)."""


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """A listed instrument: start price, tick, lot and typical sizes."""

    symbol: str
    price: float
    tick: float
    lot: float
    base_lots: int
    """Typical order size in lots."""
    vol_bps: float
    """Volatility of the mid per √second in the calm regime (basis points)."""
    beta: float
    """Loading on the common market factor (correlation between symbols)."""
    spread_bps: float

    @property
    def price_decimals(self) -> int:
        return max(0, -math.floor(math.log10(self.tick) + 1e-9))

    @property
    def qty_decimals(self) -> int:
        return max(0, -math.floor(math.log10(self.lot) + 1e-9))

    def px(self, ticks: int) -> float:
        """The exact price of a tick count, as written in logs."""
        return float(f"{ticks * self.tick:.{self.price_decimals}f}")

    def qty(self, lots: int) -> float:
        return float(f"{lots * self.lot:.{self.qty_decimals}f}")


DEFAULT_SYMBOLS: Final[tuple[SymbolSpec, ...]] = (
    SymbolSpec("BTC-USD", 64_000.0, 0.5, 0.001, 50, 1.6, 0.9, 1.5),
    SymbolSpec("ETH-USD", 3_200.0, 0.05, 0.01, 40, 2.0, 0.85, 2.0),
    SymbolSpec("SOL-USD", 150.0, 0.01, 0.1, 30, 3.0, 0.7, 4.0),
    SymbolSpec("XRP-USD", 0.6, 0.0001, 10.0, 50, 3.5, 0.6, 6.0),
)


@dataclass(slots=True)
class Quote:
    """Top of book of one symbol on one venue (prices in ticks, sizes in lots)."""

    bid: int
    ask: int
    bid_lots: int
    ask_lots: int


@dataclass(slots=True)
class Print:
    """A public trade: the aggressor side is ``buy`` when it lifted the ask."""

    symbol: str
    venue: str
    ticks: int
    lots: int
    side: str


@dataclass(slots=True)
class SymbolState:
    spec: SymbolSpec
    log_mid: float
    regime: int = 0
    drift_per_s: float = 0.0
    """Injected drift of the log mid (pump and dump)."""
    trade_boost: float = 1.0
    """Injected multiplier of the public trade rate (volume spike, pump)."""
    buy_bias: float = 0.5
    """Probability that a public print is buyer-initiated."""
    thin_book: bool = False
    """Injected liquidity drought: shallow, widely spaced depth (slippage burst)."""
    quotes: dict[str, Quote] = field(default_factory=dict)
    history: list[tuple[int, float]] = field(default_factory=list)
    """(time ns, mid) samples, most recent last, bounded."""

    @property
    def mid(self) -> float:
        return math.exp(self.log_mid)


class Market:
    """All symbols on all venues; ``step`` advances the mids by ``dt`` seconds."""

    HISTORY: Final = 200

    def __init__(
        self,
        rng: random.Random,
        symbols: tuple[SymbolSpec, ...],
        venues: tuple[str, ...],
        venue_spread: dict[str, float],
    ) -> None:
        self.rng = rng
        self.venues = venues
        self.venue_spread = venue_spread
        self.symbols: dict[str, SymbolState] = {
            s.symbol: SymbolState(s, math.log(s.price)) for s in symbols
        }

    def step(self, now: int, dt: float) -> None:
        """Moves every mid one step (common factor + own noise + injected drift)."""
        rng = self.rng
        common = rng.gauss(0.0, 1.0)
        sq = math.sqrt(dt)
        for st in self.symbols.values():
            row = _SWITCH[st.regime]
            u = rng.random()
            st.regime = 0 if u < row[0] else (1 if u < row[0] + row[1] else 2)
            spec = st.spec
            sigma = spec.vol_bps / 1e4 * REGIMES[st.regime][1]
            shock = spec.beta * common + math.sqrt(1.0 - spec.beta**2) * rng.gauss(0.0, 1.0)
            st.log_mid += sigma * sq * shock + st.drift_per_s * dt
            st.history.append((now, st.mid))
            if len(st.history) > self.HISTORY:
                del st.history[: len(st.history) - self.HISTORY]

    def quote(self, symbol: str, venue: str) -> Quote:
        """A fresh top of book for a venue around the current mid."""
        st = self.symbols[symbol]
        spec = st.spec
        rng = self.rng
        mult = REGIMES[st.regime][1] ** 0.5 * self.venue_spread[venue]
        half = max(0.5, st.mid * spec.spread_bps / 2e4 * mult / spec.tick)
        bid = math.floor(st.mid / spec.tick - half + rng.random() * 0.5)
        ask = max(bid + 1, math.ceil(st.mid / spec.tick + half - rng.random() * 0.5))
        scale = 0.2 if st.thin_book else 1.0
        q = Quote(
            bid,
            ask,
            max(1, int(spec.base_lots * rng.uniform(0.5, 6.0) * scale)),
            max(1, int(spec.base_lots * rng.uniform(0.5, 6.0) * scale)),
        )
        st.quotes[venue] = q
        return q

    def depth(self, symbol: str, venue: str, buy: bool, levels: int = 6) -> list[tuple[int, int]]:
        """Displayed levels (ticks, lots) on the side an incoming order of that direction
        takes from: asks for a buy, bids for a sell. Thin books are shallow and gappy."""
        st = self.symbols[symbol]
        q = st.quotes.get(venue) or self.quote(symbol, venue)
        rng = self.rng
        gap = 8 if st.thin_book else 1
        scale = 0.15 if st.thin_book else 1.0
        out = [(q.ask, q.ask_lots) if buy else (q.bid, q.bid_lots)]
        price = out[0][0]
        for _ in range(levels - 1):
            price = price + gap * rng.randint(1, 2) if buy else price - gap * rng.randint(1, 2)
            lots = max(1, int(st.spec.base_lots * rng.uniform(1.0, 8.0) * scale))
            out.append((price, lots))
        return out

    def prints(self, venue: str, dt: float, rate_per_s: float) -> list[Print]:
        """Public trades on a venue during ``dt`` (Poisson, boosted by injections)."""
        rng = self.rng
        out: list[Print] = []
        for symbol, st in self.symbols.items():
            q = st.quotes.get(venue)
            if q is None:
                continue
            lam = rate_per_s * dt * st.trade_boost
            n = _poisson(rng, lam)
            for _ in range(n):
                buy = rng.random() < st.buy_bias
                lots = max(1, int(rng.expovariate(1.0) * st.spec.base_lots * 0.8))
                out.append(
                    Print(symbol, venue, q.ask if buy else q.bid, lots, "buy" if buy else "sell")
                )
        return out

    def momentum(self, symbol: str, now: int, lookback_ns: int) -> float:
        """Log return of the mid over the lookback (0 without history)."""
        hist = self.symbols[symbol].history
        if not hist:
            return 0.0
        ref = hist[0][1]
        for ts, mid in reversed(hist):
            if ts <= now - lookback_ns:
                ref = mid
                break
        return math.log(hist[-1][1] / ref)


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method (small means only)."""
    if lam <= 0:
        return 0
    limit = math.exp(-lam)
    k = 0
    p = rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
