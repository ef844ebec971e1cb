"""Spoofing / layering: large orders resting on one side, cancelled (nearly) unfilled,
while the same account is filled on the other side, all within the lookback (15 s): the
opposite fill must come while the large order rests (between its placement and cancel).

"Large" (DESIGN §4): at least ``size_multiple`` (10) × the account's median order size (from
its profile, once it has ``min_profile_orders`` orders: the warm-up), or at least
``book_multiple`` (1) × the displayed top-of-book size on the order's side. An order that can
be judged by neither (no profile history, no quote sizes) is never called large.
"Unfilled": fill ratio below ``max_fill_ratio`` (5 %). Repeats of the pattern by one account
within ``repeat_window_s`` raise the level: 1 → medium, 2–3 → high, 4+ → critical.
Legitimate market making (many cancels, no trade on the other side) raises nothing here.
"""

from __future__ import annotations

from bisect import bisect_left
from operator import attrgetter
from typing import Any, Final, Protocol

import msgspec

from tradelog.model.alerts import AlertLevel
from tradelog.model.events import Event, EventKind, Side
from tradelog.surveillance.base import NS_PER_S, Candidate, Context, Handler

MAX_LARGE_ORDERS = 10_000
_SELL: Final = Side.SELL


def _side(side: Side) -> str:
    return "sell" if side is _SELL else "buy"


class SpoofingSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    lookback_s: float = 15.0
    size_multiple: float = 10.0
    book_multiple: float | None = 1.0
    """Null: only the median rule decides what is large."""
    min_profile_orders: int = 20
    max_fill_ratio: float = 0.05
    repeat_window_s: float = 600.0


class _Large(msgspec.Struct, array_like=True, gc=False):
    ts: int
    account: str
    side: str
    qty: float
    price: float | None
    event_id: str
    median: float | None
    book_size: float | None
    filled: float = 0.0


class _AcctFill(msgspec.Struct, array_like=True, gc=False):
    ts: int
    side: str
    qty: float
    event_id: str


class _SpoofCancel(msgspec.Struct, array_like=True, gc=False):
    order: str
    ts_new: int
    ts_cancel: int
    side: str
    qty: float
    fill_ratio: float
    new_id: str
    cancel_id: str
    median: float | None
    book_size: float | None


_fill_ts: Final = attrgetter("ts")


class SpoofingState(msgspec.Struct, kw_only=True):
    bid_size: float | None = None
    ask_size: float | None = None
    large: dict[str, _Large] = msgspec.field(default_factory=dict)
    fills: dict[str, list[_AcctFill]] = msgspec.field(default_factory=dict)
    """Account → its fills of the lookback, in arrival order."""
    unordered: list[str] = msgspec.field(default_factory=list)
    """Accounts whose fill list is not in time order (a late fill): searched in full."""
    patterns: dict[str, list[int]] = msgspec.field(default_factory=dict)


def unordered_accounts(st: SpoofingState) -> list[str]:
    """The accounts whose fill list is not in time order (to restore ``unordered``)."""
    return [
        a for a, fills in st.fills.items()
        if any(fills[i].ts > fills[i + 1].ts for i in range(len(fills) - 1))
    ]  # fmt: skip


class _Symbol(Protocol):
    spoofing: SpoofingState


class Spoofing:
    type = "spoofing"

    def __init__(self, settings: SpoofingSettings | None = None) -> None:
        self.s = settings or SpoofingSettings()
        self.params: dict[str, Any] = msgspec.structs.asdict(self.s)
        self._lookback = int(self.s.lookback_s * NS_PER_S)
        self._repeat = int(self.s.repeat_window_s * NS_PER_S)

    def handlers(self) -> dict[EventKind, Handler]:
        return {
            EventKind.QUOTE: self.on_quote,
            EventKind.ORDER_NEW: self.on_new,
            EventKind.FILL: self.on_fill,
            EventKind.ORDER_CANCELLED: self.on_cancel,
        }

    def on_quote(self, ev: Event, ss: _Symbol, ctx: Context) -> None:
        st = ss.spoofing
        if ev.bid_size is not None:
            st.bid_size = ev.bid_size
        if ev.ask_size is not None:
            st.ask_size = ev.ask_size

    def on_new(self, ev: Event, ss: _Symbol, ctx: Context) -> None:
        account, qty, side = ev.account_id, ev.qty, ev.side
        if account is None or qty is None or side is None:
            return
        order = ev.root_order_id or ev.order_id
        if order is None:
            return
        st = ss.spoofing
        s = self.s
        profile = ctx.profiles.get(account)
        median = None
        if profile is not None and profile.orders >= s.min_profile_orders:
            median = profile.median_order_size()
        book = st.ask_size if side is _SELL else st.bid_size
        large = (median is not None and median > 0 and qty >= s.size_multiple * median) or (
            s.book_multiple is not None and book is not None and book > 0
            and qty >= s.book_multiple * book
        )  # fmt: skip
        if not large:
            return
        st.large[order] = _Large(
            ev.ts, account, _side(side), qty, ev.price, ev.event_id, median, book
        )
        if len(st.large) > MAX_LARGE_ORDERS:
            del st.large[next(iter(st.large))]

    def on_fill(self, ev: Event, ss: _Symbol, ctx: Context) -> None:
        account, side, qty = ev.account_id, ev.side, ev.last_qty
        if account is None or side is None or qty is None:
            return
        st = ss.spoofing
        large = st.large
        if large:
            order = ev.root_order_id or ev.order_id
            if order is not None:
                big = large.get(order)
                if big is not None:
                    big.filled += qty
                    if ev.leaves_qty == 0:
                        del large[order]
        ts = ev.ts
        fills = st.fills.get(account)
        if fills is None:
            fills = st.fills[account] = []
        elif fills and fills[0].ts < ts - self._lookback:
            cutoff = ts - self._lookback
            while fills and fills[0].ts < cutoff:
                fills.pop(0)
            if not fills and account in st.unordered:
                st.unordered.remove(account)
        if fills and fills[-1].ts > ts and account not in st.unordered:
            st.unordered.append(account)
        fills.append(_AcctFill(ts, _side(side), qty, ev.event_id))

    def on_cancel(self, ev: Event, ss: _Symbol, ctx: Context) -> list[Candidate] | None:
        account = ev.account_id
        if account is None:
            return None
        order = ev.root_order_id or ev.order_id
        if order is None:
            return None
        st = ss.spoofing
        big = st.large.pop(order, None)
        if big is None:
            return None
        filled = big.filled
        if ev.cum_qty is not None:
            filled = max(filled, ev.cum_qty)
        ratio = filled / big.qty
        if ratio >= self.s.max_fill_ratio or ev.ts - big.ts > self._lookback:
            return None
        spoof = _SpoofCancel(
            order, big.ts, ev.ts, big.side, big.qty, ratio, big.event_id, ev.event_id,
            big.median, big.book_size,
        )  # fmt: skip
        since = max(big.ts, ev.ts - self._lookback)
        fills = st.fills.get(account, [])
        if account not in st.unordered:  # in time order: the window is a suffix
            fills = fills[bisect_left(fills, since, key=_fill_ts) :]
        opposite = [f for f in fills if f.side != big.side and f.ts >= since]
        if opposite:
            return [self._candidate(ev, st, account, [spoof], opposite)]
        return None

    def _candidate(
        self,
        ev: Event,
        st: SpoofingState,
        account: str,
        spoofs: list[_SpoofCancel],
        fills: list[_AcctFill],
    ) -> Candidate:
        times = st.patterns.setdefault(account, [])
        cutoff = ev.ts - self._repeat
        while times and times[0] < cutoff:
            times.pop(0)
        times.extend(ev.ts for _ in spoofs)
        n = len(times)
        level: AlertLevel = "critical" if n >= 4 else "high" if n >= 2 else "medium"
        start = min(*(c.ts_new for c in spoofs), *(f.ts for f in fills))
        ids = [i for c in spoofs for i in (c.new_id, c.cancel_id)] + [f.event_id for f in fills]
        return Candidate(
            type=self.type,
            level=level,
            risk_score=round(min(1.0, 0.55 + 0.1 * (n - 1)), 4),
            symbol=ev.symbol,
            accounts=(account,),
            window_start=start,
            window_end=ev.ts,
            evidence={
                "event_ids": ids,
                "spoof_orders": [
                    {
                        "order_id": c.order,
                        "side": c.side,
                        "qty": c.qty,
                        "fill_ratio": c.fill_ratio,
                        "rested_ms": (c.ts_cancel - c.ts_new) / 1e6,
                        "account_median_size": c.median,
                        "size_vs_median": c.qty / c.median if c.median else None,
                        "top_of_book_size": c.book_size,
                    }
                    for c in spoofs
                ],
                "opposite_fills": [
                    {"event_id": f.event_id, "side": f.side, "qty": f.qty} for f in fills
                ],
                "repeats_in_window": n,
                "thresholds": {
                    "size_multiple": self.s.size_multiple,
                    "book_multiple": self.s.book_multiple,
                    "max_fill_ratio": self.s.max_fill_ratio,
                    "lookback_s": self.s.lookback_s,
                },
                "parameters": self.params,
            },
        )
