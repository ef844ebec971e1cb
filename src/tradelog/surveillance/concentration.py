"""Concentrated trading: one account's share of a symbol's fill volume over the window
(``window_s``, minute buckets) at or above ``max_share`` (60 %). Warm-up: at least
``min_fills`` fills and ``min_accounts`` distinct accounts in the window (with one or two
accounts a majority share is arithmetic, not a finding). Once per account and minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

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


class ConcentrationSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    window_s: float = 300.0
    max_share: float = 0.6
    min_fills: int = 20
    min_accounts: int = 3


class _Bucket(msgspec.Struct, kw_only=True):
    minute: int
    fills: int = 0
    qty: dict[str, float] = msgspec.field(default_factory=dict)
    ids: dict[str, list[str]] = msgspec.field(default_factory=dict)


class ConcentrationState(msgspec.Struct, kw_only=True):
    buckets: list[_Bucket] = msgspec.field(default_factory=list)
    emitted: dict[str, int] = msgspec.field(default_factory=dict)


class _Symbol(Protocol):
    concentration: ConcentrationState


class Concentration:
    type = "concentration"

    def __init__(self, settings: ConcentrationSettings | None = None) -> None:
        self.s = settings or ConcentrationSettings()
        self.params: dict[str, Any] = msgspec.structs.asdict(self.s)
        self._minutes = max(1, int(self.s.window_s * NS_PER_S) // NS_PER_MIN)
        self._closed: dict[str, _Closed] = {}
        """symbol → the window's closed buckets summed (a cache: they no longer change)."""

    def handlers(self) -> dict[EventKind, Handler]:
        return {EventKind.FILL: self.on_fill}

    def on_fill(self, ev: Event, ss: _Symbol, ctx: Context) -> list[Candidate] | None:
        account, qty = ev.account_id, ev.last_qty
        if account is None or qty is None:
            return None
        st = ss.concentration
        minute = ev.ts // NS_PER_MIN
        buckets = st.buckets
        if buckets and buckets[-1].minute >= minute:
            b = buckets[-1]
        else:
            b = _Bucket(minute=minute)
            buckets.append(b)
            cutoff = minute - self._minutes
            while buckets and buckets[0].minute <= cutoff:
                buckets.pop(0)
        b.fills += 1
        by_account = b.qty
        by_account[account] = by_account.get(account, 0.0) + qty
        mine = b.ids.get(account)
        if mine is None:
            b.ids[account] = [ev.event_id]
        else:
            add_id(mine, ev.event_id)
        s = self.s
        if st.emitted.get(account) == minute:
            return None
        if len(buckets) == 1:
            fills, per = b.fills, by_account  # the same sums (0.0 + q is q): no copy
        else:
            fills, per = self._window(ev.symbol or "", st)
        if fills < s.min_fills:
            return None
        total = sum(per.values())
        if len(per) < s.min_accounts or total <= 0:
            return None
        share = per[account] / total
        if share < s.max_share:
            return None
        st.emitted[account] = minute
        rel = 1.0 + 3.0 * (share - s.max_share) / max(1e-9, 1.0 - s.max_share)
        ids: list[str] = []
        for x in buckets:
            for i in x.ids.get(account, []):
                add_id(ids, i)
        top = sorted(per.items(), key=lambda kv: -kv[1])[:5]
        return [
            Candidate(
                type=self.type,
                level=level_by_ratio(rel),
                risk_score=score_by_ratio(rel),
                symbol=ev.symbol,
                accounts=(account,),
                window_start=buckets[0].minute * NS_PER_MIN,
                window_end=ev.ts,
                evidence={
                    "event_ids": ids,
                    "share": share,
                    "account_qty": per[account],
                    "symbol_qty": total,
                    "fills": fills,
                    "accounts_in_window": len(per),
                    "top_accounts": [{"account": a, "share": q / total} for a, q in top],
                    "threshold": s.max_share,
                    "parameters": self.params,
                },
            )
        ]

    def _window(self, symbol: str, st: ConcentrationState) -> tuple[int, dict[str, float]]:
        """Fills and quantity per account over the window's buckets, summed in bucket
        order (closed buckets from the cache, then the current one)."""
        buckets = st.buckets
        closed = self._closed.get(symbol)
        if (
            closed is None or closed.state is not st or closed.first is not buckets[0]
            or closed.last is not buckets[-2]
        ):  # fmt: skip
            fills = 0
            per: dict[str, float] = {}
            for x in buckets[:-1]:
                fills += x.fills
                for a, q in x.qty.items():
                    per[a] = per.get(a, 0.0) + q
            closed = self._closed[symbol] = _Closed(st, buckets[0], buckets[-2], fills, per)
        current = buckets[-1]
        per = dict(closed.per)
        for a, q in current.qty.items():
            per[a] = per.get(a, 0.0) + q
        return closed.fills + current.fills, per


@dataclass(slots=True)
class _Closed:
    """The closed buckets from ``first`` to ``last`` of one symbol's state, summed."""

    state: ConcentrationState
    first: _Bucket
    last: _Bucket
    fills: int
    per: dict[str, float]
