"""Account profiles: each account's usual behaviour, kept incrementally — order sizes (a
bounded reservoir of the latest sizes and its median), cancel ratio, order-to-trade ratio,
active hours (UTC), symbols, maker/taker mix. Detectors use them as the baseline (a size
that is normal for one account is a fat finger for another); the API serves them.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable
from typing import Any, Final

import msgspec

from tradelog.model.alerts import ProfileRow
from tradelog.model.events import Event, EventKind, Liquidity

SIZE_RESERVOIR: Final = 256
"""Latest order sizes kept per account (the median is over these)."""
MEDIAN_EVERY: Final = 16
"""The cached median is recomputed after this many new orders."""
MAX_SYMBOLS: Final = 200
NS_PER_HOUR: Final = 3_600_000_000_000
_MAKER: Final = Liquidity.MAKER
_TAKER: Final = Liquidity.TAKER


class AccountProfile(msgspec.Struct, kw_only=True):
    """One account's behaviour so far (all counts since the profile started)."""

    account_id: str
    orders: int = 0
    cancels: int = 0
    fills: int = 0
    rejects: int = 0
    replaces: int = 0
    order_qty: float = 0.0
    fill_qty: float = 0.0
    maker_qty: float = 0.0
    taker_qty: float = 0.0
    notional: float = 0.0
    sizes: list[float] = msgspec.field(default_factory=list)
    sorted_sizes: list[float] = msgspec.field(default_factory=list)
    """``sizes`` in ascending order, kept with it (its median without a sort)."""
    ring_pos: int = 0
    median_size: float | None = None
    median_at: int = 0
    hours: list[int] = msgspec.field(default_factory=lambda: [0] * 24)
    symbols: dict[str, int] = msgspec.field(default_factory=dict)
    first_ts: int | None = None
    last_ts: int | None = None

    @staticmethod
    def handlers() -> dict[EventKind, Callable[[AccountProfile, Event], None]]:
        """Event kind → the method that counts it (the order events of the account)."""
        return {
            EventKind.ORDER_NEW: AccountProfile.on_new,
            EventKind.ORDER_CANCELLED: AccountProfile.on_cancel,
            EventKind.FILL: AccountProfile.on_fill,
            EventKind.ORDER_REJECTED: AccountProfile.on_reject,
            EventKind.ORDER_REPLACE: AccountProfile.on_replace,
        }

    def on_new(self, ev: Event) -> None:
        self.orders += 1
        qty = ev.qty
        if qty is not None:
            self.order_qty += qty
            sizes, ordered = self.sizes, self.sorted_sizes
            if len(sizes) < SIZE_RESERVOIR:
                sizes.append(qty)
            else:
                del ordered[bisect_left(ordered, sizes[self.ring_pos])]
                sizes[self.ring_pos] = qty
                self.ring_pos = (self.ring_pos + 1) % SIZE_RESERVOIR
            insort(ordered, qty)
        ts = ev.ts
        self.hours[(ts // NS_PER_HOUR) % 24] += 1
        sym = ev.symbol
        if sym is not None:
            symbols = self.symbols
            n = symbols.get(sym)
            if n is not None:
                symbols[sym] = n + 1
            elif len(symbols) < MAX_SYMBOLS:
                symbols[sym] = 1
        if self.first_ts is None:
            self.first_ts = ts
        last = self.last_ts
        if last is None or ts > last:
            self.last_ts = ts

    def on_cancel(self, ev: Event) -> None:
        self.cancels += 1
        self._seen(ev.ts)

    def on_fill(self, ev: Event) -> None:
        self.fills += 1
        q = ev.last_qty or 0.0
        self.fill_qty += q
        self.notional += q * (ev.last_px or 0.0)
        liquidity = ev.liquidity
        if liquidity is _MAKER:
            self.maker_qty += q
        elif liquidity is _TAKER:
            self.taker_qty += q
        ts = ev.ts
        if self.first_ts is None:
            self.first_ts = ts
        last = self.last_ts
        if last is None or ts > last:
            self.last_ts = ts

    def on_reject(self, ev: Event) -> None:
        self.rejects += 1
        self._seen(ev.ts)

    def on_replace(self, ev: Event) -> None:
        self.replaces += 1
        self._seen(ev.ts)

    def _seen(self, ts: int) -> None:
        if self.first_ts is None:
            self.first_ts = ts
        last = self.last_ts
        if last is None or ts > last:
            self.last_ts = ts

    def median_order_size(self) -> float | None:
        """Median of the latest sizes (exact while the reservoir is small, then refreshed
        every ``MEDIAN_EVERY`` orders)."""
        if not self.sizes:
            return None
        stale = self.orders != self.median_at and (
            len(self.sizes) <= 4 * MEDIAN_EVERY or self.orders - self.median_at >= MEDIAN_EVERY
        )
        if self.median_size is None or stale:
            self.median_size = _median(self.sorted_sizes)
            self.median_at = self.orders
        return self.median_size

    @property
    def cancel_ratio(self) -> float | None:
        """Cancels per order placed; None before the first order."""
        return self.cancels / self.orders if self.orders else None

    @property
    def order_to_trade(self) -> float | None:
        """Orders placed per fill; None before the first fill (no trade to divide by)."""
        return self.orders / self.fills if self.fills else None

    def summary(self) -> dict[str, Any]:
        """The profile as served by the API."""
        traded = self.maker_qty + self.taker_qty
        return {
            "account_id": self.account_id,
            "orders": self.orders,
            "cancels": self.cancels,
            "fills": self.fills,
            "rejects": self.rejects,
            "replaces": self.replaces,
            "cancel_ratio": self.cancel_ratio,
            "order_to_trade": self.order_to_trade,
            "order_size": {
                "median": _median(self.sorted_sizes) if self.sizes else None,
                "mean": self.order_qty / self.orders if self.orders else None,
                "observations": len(self.sizes),
            },
            "fill_qty": self.fill_qty,
            "notional": self.notional,
            "maker_share": self.maker_qty / traded if traded else None,
            "taker_share": self.taker_qty / traded if traded else None,
            "active_hours_utc": list(self.hours),
            "symbols": dict(sorted(self.symbols.items(), key=lambda kv: -kv[1])),
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
        }

    def row(self, partition: int) -> ProfileRow:
        return ProfileRow(
            account_id=self.account_id,
            partition=partition,
            updated_ts=self.last_ts or 0,
            orders=self.orders,
            cancels=self.cancels,
            fills=self.fills,
            cancel_ratio=self.cancel_ratio,
            order_to_trade=self.order_to_trade,
            median_order_size=self.median_order_size(),
            profile=self.summary(),
        )


def _median(ordered: list[float]) -> float:
    """The median of a sorted, non-empty list (as ``statistics.median`` computes it).

    >>> _median([1.0, 2.0, 7.0]), _median([1.0, 2.0, 7.0, 9.0])
    (2.0, 4.5)
    """
    n = len(ordered)
    if n % 2:
        return ordered[n // 2]
    return (ordered[n // 2 - 1] + ordered[n // 2]) / 2
