"""Account profiles: each account's usual behaviour, kept incrementally — order sizes (a
bounded reservoir of the latest sizes and its median), cancel ratio, order-to-trade ratio,
active hours (UTC), symbols, maker/taker mix. Detectors use them as the baseline (a size
that is normal for one account is a fat finger for another); the API serves them.
"""

from __future__ import annotations

from statistics import median
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
    ring_pos: int = 0
    median_size: float | None = None
    median_at: int = 0
    hours: list[int] = msgspec.field(default_factory=lambda: [0] * 24)
    symbols: dict[str, int] = msgspec.field(default_factory=dict)
    first_ts: int | None = None
    last_ts: int | None = None

    def observe(self, ev: Event) -> None:
        """Counts one order event of this account."""
        kind = ev.kind
        if kind is EventKind.ORDER_NEW:
            self.orders += 1
            qty = ev.qty
            if qty is not None:
                self.order_qty += qty
                if len(self.sizes) < SIZE_RESERVOIR:
                    self.sizes.append(qty)
                else:
                    self.sizes[self.ring_pos] = qty
                    self.ring_pos = (self.ring_pos + 1) % SIZE_RESERVOIR
            self.hours[(ev.ts // NS_PER_HOUR) % 24] += 1
            sym = ev.symbol
            if sym is not None and (sym in self.symbols or len(self.symbols) < MAX_SYMBOLS):
                self.symbols[sym] = self.symbols.get(sym, 0) + 1
        elif kind is EventKind.ORDER_CANCELLED:
            self.cancels += 1
        elif kind is EventKind.FILL:
            self.fills += 1
            q = ev.last_qty or 0.0
            self.fill_qty += q
            self.notional += q * (ev.last_px or 0.0)
            if ev.liquidity is Liquidity.MAKER:
                self.maker_qty += q
            elif ev.liquidity is Liquidity.TAKER:
                self.taker_qty += q
        elif kind is EventKind.ORDER_REJECTED:
            self.rejects += 1
        elif kind is EventKind.ORDER_REPLACE:
            self.replaces += 1
        else:
            return
        if self.first_ts is None:
            self.first_ts = ev.ts
        if self.last_ts is None or ev.ts > self.last_ts:
            self.last_ts = ev.ts

    def median_order_size(self) -> float | None:
        """Median of the latest sizes (exact while the reservoir is small, then refreshed
        every ``MEDIAN_EVERY`` orders)."""
        if not self.sizes:
            return None
        stale = self.orders != self.median_at and (
            len(self.sizes) <= 4 * MEDIAN_EVERY or self.orders - self.median_at >= MEDIAN_EVERY
        )
        if self.median_size is None or stale:
            self.median_size = float(median(self.sizes))
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
                "median": float(median(self.sizes)) if self.sizes else None,
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
