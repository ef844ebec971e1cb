"""Positions and PnL by the average-cost method (DESIGN §4), per strategy × account × symbol.

A fill in the direction of the position (or from flat) moves the average cost; a fill
against it realises ``closed × (px − avg_cost) × sign(position)``, and what is left over
opens a new position at ``px``. ``realized`` here is gross; fees are kept beside it and
the reported ``realized_pnl`` is net (gross − fees). A round trip runs from flat to flat
(a flip closes one trip and opens the next in the same fill; that fill's fee is split by
quantity between them).

>>> p = PositionState()
>>> p.apply(+1, 10, 100.0, 1.0) is None
True
>>> trip = p.apply(-1, 10, 101.0, 1.0)
>>> (p.qty, p.realized, p.fees, round(trip.pnl, 6))
(0.0, 10.0, 2.0, 8.0)
"""

from __future__ import annotations

from typing import Final

import msgspec

EPS: Final = 1e-9


class RoundTrip(msgspec.Struct, kw_only=True, gc=False):
    """A position opened from flat and brought back to flat (or flipped)."""

    strategy_id: str | None = None
    account_id: str | None = None
    symbol: str | None = None
    side: str
    """long or short"""
    ts_open: int
    ts_close: int
    max_qty: float
    entry_avg_px: float
    pnl: float
    """Realised PnL of the trip, net of the fees of its fills."""
    gross_pnl: float
    fees: float
    fills: int


class PositionState:
    """Average-cost position of one key; ``apply`` returns the round trip it closes."""

    __slots__ = (
        "avg_cost",
        "fees",
        "maker_fees",
        "maker_qty",
        "maker_realized",
        "qty",
        "realized",
        "taker_fees",
        "taker_qty",
        "taker_realized",
        "trip_fees",
        "trip_fills",
        "trip_max",
        "trip_open_ts",
        "trip_realized",
        "turnover",
    )

    def __init__(self) -> None:
        self.qty = 0.0
        self.avg_cost = 0.0
        self.realized = 0.0
        self.fees = 0.0
        self.turnover = 0.0
        self.maker_qty = 0.0
        self.taker_qty = 0.0
        self.maker_realized = 0.0
        self.taker_realized = 0.0
        self.maker_fees = 0.0
        self.taker_fees = 0.0
        self.trip_open_ts = 0
        self.trip_realized = 0.0
        self.trip_fees = 0.0
        self.trip_max = 0.0
        self.trip_fills = 0

    @property
    def realized_net(self) -> float:
        return self.realized - self.fees

    def unrealized(self, mark: float | None) -> float | None:
        """``position × (mark − avg_cost)``; None without a mark while not flat."""
        if abs(self.qty) < EPS:
            return 0.0
        if mark is None:
            return None
        return self.qty * (mark - self.avg_cost)

    def apply(
        self,
        sign: int,
        qty: float,
        px: float,
        fee: float = 0.0,
        ts: int = 0,
        liquidity: str | None = None,
    ) -> RoundTrip | None:
        """Applies a fill of ``qty`` at ``px`` (``sign`` +1 buy, −1 sell)."""
        if sign == 0 or qty <= 0:
            return None
        pos = self.qty
        self.turnover += qty * px
        if liquidity == "maker":
            self.maker_qty += qty
            self.maker_fees += fee
        elif liquidity == "taker":
            self.taker_qty += qty
            self.taker_fees += fee
        self.fees += fee
        if abs(pos) < EPS or (pos > 0) == (sign > 0):
            if abs(pos) < EPS:
                self._open_trip(ts)
            new = pos + sign * qty
            self.avg_cost = (abs(pos) * self.avg_cost + qty * px) / abs(new)
            self.qty = new
            self.trip_fees += fee
            self.trip_fills += 1
            self.trip_max = max(self.trip_max, abs(new))
            return None
        closing = min(qty, abs(pos))
        gained = closing * (px - self.avg_cost) * (1.0 if pos > 0 else -1.0)
        self.realized += gained
        self.trip_realized += gained
        if liquidity == "maker":
            self.maker_realized += gained
        elif liquidity == "taker":
            self.taker_realized += gained
        closing_fee = fee * closing / qty
        self.trip_fees += closing_fee
        self.trip_fills += 1
        rest = qty - closing
        self.qty = pos + sign * closing
        trip = None
        if abs(self.qty) < EPS:
            self.qty = 0.0
            trip = RoundTrip(
                side="long" if pos > 0 else "short",
                ts_open=self.trip_open_ts,
                ts_close=ts,
                max_qty=self.trip_max,
                entry_avg_px=self.avg_cost,
                pnl=self.trip_realized - self.trip_fees,
                gross_pnl=self.trip_realized,
                fees=self.trip_fees,
                fills=self.trip_fills,
            )
            self.avg_cost = 0.0
            if rest > EPS:  # flip: the remainder opens a new position at px
                self._open_trip(ts)
                self.qty = sign * rest
                self.avg_cost = px
                self.trip_fees = fee - closing_fee
                self.trip_fills = 1
                self.trip_max = rest
        return trip

    def _open_trip(self, ts: int) -> None:
        self.trip_open_ts = ts
        self.trip_realized = 0.0
        self.trip_fees = 0.0
        self.trip_max = 0.0
        self.trip_fills = 0
