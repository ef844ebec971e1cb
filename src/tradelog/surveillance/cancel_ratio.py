"""Excessive cancel ratio and order-to-trade ratio, per account and symbol over a sliding
window (minute buckets). Two alert types: ``cancel_ratio`` (cancels / orders ≥ 0.9) and
``order_to_trade`` (orders / fills > 15; with no fill at all, the ratio is undefined and the
rule fires when the orders alone exceed the threshold). Warm-up: ``min_orders`` orders of the
account in the window. At most one candidate per account, type and minute.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import msgspec

from tradelog.model.events import Event, EventKind
from tradelog.surveillance.base import (
    NS_PER_MIN,
    NS_PER_S,
    Candidate,
    Context,
    Handler,
    add_id,
    level_by_ratio,
    score_by_ratio,
)

_NEW: Final = EventKind.ORDER_NEW
_CANCELLED: Final = EventKind.ORDER_CANCELLED
_FILL: Final = EventKind.FILL


class CancelRatioSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    window_s: float = 300.0
    cancel_ratio: float | None = 0.9
    order_to_trade: float | None = 15.0
    min_orders: int = 50


class _Bucket(msgspec.Struct, array_like=True, gc=False):
    minute: int
    orders: int = 0
    cancels: int = 0
    fills: int = 0


class _Account(msgspec.Struct, kw_only=True):
    buckets: list[_Bucket] = msgspec.field(default_factory=list)
    cancel_ids: list[str] = msgspec.field(default_factory=list)
    emitted: dict[str, int] = msgspec.field(default_factory=dict)


class CancelRatioState(msgspec.Struct, kw_only=True):
    accounts: dict[str, _Account] = msgspec.field(default_factory=dict)


class _Symbol(Protocol):
    cancel_ratio: CancelRatioState


def _window(buckets: list[_Bucket], orders: int, cancels: int, fills: int) -> dict[str, int]:
    return {"start": buckets[0].minute * NS_PER_MIN, "orders": orders, "cancels": cancels,
            "fills": fills}  # fmt: skip


class CancelRatio:
    types = ("cancel_ratio", "order_to_trade")

    def __init__(self, settings: CancelRatioSettings | None = None) -> None:
        self.s = settings or CancelRatioSettings()
        self.params: dict[str, Any] = msgspec.structs.asdict(self.s)
        self._minutes = max(1, int(self.s.window_s * NS_PER_S) // NS_PER_MIN)

    def handlers(self) -> dict[EventKind, Handler]:
        return {_NEW: self.on_event, _CANCELLED: self.on_event, _FILL: self.on_event}

    def on_event(self, ev: Event, ss: _Symbol, ctx: Context) -> list[Candidate] | None:
        """Orders, cancels and fills of an account."""
        account = ev.account_id
        if account is None:
            return None
        st = ss.cancel_ratio
        acc = st.accounts.get(account)
        if acc is None:
            acc = st.accounts[account] = _Account()
        minute = ev.ts // NS_PER_MIN
        buckets = acc.buckets
        if buckets and buckets[-1].minute >= minute:
            b = buckets[-1]
        else:
            b = _Bucket(minute)
            buckets.append(b)
            cutoff = minute - self._minutes
            while buckets and buckets[0].minute <= cutoff:
                buckets.pop(0)
            acc.cancel_ids.clear()
        kind = ev.kind
        if kind is _NEW:
            b.orders += 1
        elif kind is _CANCELLED:
            b.cancels += 1
            add_id(acc.cancel_ids, ev.event_id)
        else:
            b.fills += 1
            return None  # fills only lower both ratios
        orders = cancels = fills = 0
        for x in buckets:
            orders += x.orders
            cancels += x.cancels
            fills += x.fills
        s = self.s
        if orders < s.min_orders:
            return None
        out: list[Candidate] = []
        if s.cancel_ratio is not None and kind is _CANCELLED:
            ratio = cancels / orders
            if ratio >= s.cancel_ratio and acc.emitted.get("cancel_ratio") != minute:
                acc.emitted["cancel_ratio"] = minute
                excess = (ratio - s.cancel_ratio) / max(1e-9, 1 - s.cancel_ratio)
                out.append(
                    self._candidate(
                        ev,
                        account,
                        "cancel_ratio",
                        _window(buckets, orders, cancels, fills),
                        acc,
                        ratio,
                        s.cancel_ratio,
                        1.0 + min(excess, 1.0) * 3,
                    )
                )
        if s.order_to_trade is not None and kind is _NEW:
            otr = orders / fills if fills else None
            measured = otr if otr is not None else float(orders)
            if measured > s.order_to_trade and acc.emitted.get("order_to_trade") != minute:
                acc.emitted["order_to_trade"] = minute
                out.append(
                    self._candidate(
                        ev,
                        account,
                        "order_to_trade",
                        _window(buckets, orders, cancels, fills),
                        acc,
                        otr,
                        s.order_to_trade,
                        measured / s.order_to_trade,
                    )
                )
        return out or None

    def _candidate(
        self,
        ev: Event,
        account: str,
        type_: str,
        window: dict[str, int],
        acc: _Account,
        value: float | None,
        threshold: float,
        severity_ratio: float,
    ) -> Candidate:
        return Candidate(
            type=type_,
            level=level_by_ratio(severity_ratio),
            risk_score=score_by_ratio(severity_ratio),
            symbol=ev.symbol,
            accounts=(account,),
            window_start=window["start"],
            window_end=ev.ts,
            evidence={
                "event_ids": [*acc.cancel_ids, ev.event_id]
                if type_ == "cancel_ratio"
                else [ev.event_id],
                "value": value,
                "value_note": None
                if value is not None
                else "no fill in the window: "
                "order-to-trade ratio undefined; orders alone exceed the threshold",
                "orders": window["orders"],
                "cancels": window["cancels"],
                "fills": window["fills"],
                "threshold": threshold,
                "parameters": self.params,
            },
        )
