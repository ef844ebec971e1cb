"""Concentrated trading: one account's share of a symbol's fill volume over the window
(``window_s``, minute buckets) at or above ``max_share`` (60 %). Warm-up: at least
``min_fills`` fills and ``min_accounts`` distinct accounts in the window (with one or two
accounts a majority share is arithmetic, not a finding). Once per account and minute.
"""

from __future__ import annotations

from typing import Any

import msgspec

from tradelog.model.events import Event
from tradelog.surveillance.base import (
    NS_PER_MIN,
    NS_PER_S,
    Candidate,
    Context,
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


class Concentration:
    type = "concentration"

    def __init__(self, settings: ConcentrationSettings | None = None) -> None:
        self.s = settings or ConcentrationSettings()
        self.params: dict[str, Any] = msgspec.structs.asdict(self.s)
        self._minutes = max(1, int(self.s.window_s * NS_PER_S) // NS_PER_MIN)

    def observe(self, ev: Event, st: ConcentrationState, ctx: Context) -> list[Candidate] | None:
        account, qty = ev.account_id, ev.last_qty
        if account is None or qty is None:
            return None
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
        b.qty[account] = b.qty.get(account, 0.0) + qty
        add_id(b.ids.setdefault(account, []), ev.event_id)
        s = self.s
        if st.emitted.get(account) == minute:
            return None
        fills = sum(x.fills for x in buckets)
        if fills < s.min_fills:
            return None
        per: dict[str, float] = {}
        for x in buckets:
            for a, q in x.qty.items():
                per[a] = per.get(a, 0.0) + q
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
