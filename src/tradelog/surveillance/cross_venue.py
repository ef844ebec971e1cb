"""Cross-venue price discrepancy: the mids of the same symbol on two venues differ by more
than ``max_diff_bps`` (relative to their mean), both quotes being at most ``max_age_s`` old,
for at least ``min_consecutive`` consecutive quote updates (one stale or crossed print is
not a finding). Warm-up: each venue needs ``min_quotes`` quotes. Once per venue pair and
second; a lasting gap updates the same open alert.
"""

from __future__ import annotations

from typing import Any

import msgspec

from tradelog.model.events import Event
from tradelog.surveillance.base import (
    NS_PER_S,
    Candidate,
    Context,
    level_by_ratio,
    score_by_ratio,
)


class CrossVenueSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    max_diff_bps: float = 50.0
    max_age_s: float = 1.0
    min_consecutive: int = 3
    min_quotes: int = 10


class _Mid(msgspec.Struct, array_like=True):
    ts: int
    mid: float
    event_id: str
    quotes: int


class CrossVenueState(msgspec.Struct, kw_only=True):
    mids: dict[str, _Mid] = msgspec.field(default_factory=dict)
    streak: dict[str, int] = msgspec.field(default_factory=dict)
    """``venueA|venueB`` → consecutive updates beyond the threshold."""
    emitted: dict[str, int] = msgspec.field(default_factory=dict)


class CrossVenue:
    type = "cross_venue"

    def __init__(self, settings: CrossVenueSettings | None = None) -> None:
        self.s = settings or CrossVenueSettings()
        self.params: dict[str, Any] = msgspec.structs.asdict(self.s)
        self._age = int(self.s.max_age_s * NS_PER_S)

    def observe(self, ev: Event, st: CrossVenueState, ctx: Context) -> list[Candidate] | None:
        venue, bid, ask = ev.venue, ev.bid, ev.ask
        if venue is None or bid is None or ask is None or bid <= 0 or ask <= 0:
            return None
        mid = (bid + ask) / 2.0
        prev = st.mids.get(venue)
        me = st.mids[venue] = _Mid(ev.ts, mid, ev.event_id, (prev.quotes if prev else 0) + 1)
        if len(st.mids) < 2:
            return None
        s = self.s
        out: list[Candidate] = []
        for other, o in st.mids.items():
            if other == venue:
                continue
            pair = f"{min(venue, other)}|{max(venue, other)}"
            if ev.ts - o.ts > self._age or o.ts - ev.ts > self._age:
                st.streak.pop(pair, None)
                continue
            diff = abs(mid - o.mid) / ((mid + o.mid) / 2.0) * 1e4
            if diff <= s.max_diff_bps:
                st.streak.pop(pair, None)
                continue
            n = st.streak[pair] = st.streak.get(pair, 0) + 1
            if n < s.min_consecutive or me.quotes < s.min_quotes or o.quotes < s.min_quotes:
                continue
            second = ev.ts // NS_PER_S
            if st.emitted.get(pair) == second:
                continue
            st.emitted[pair] = second
            rel = diff / s.max_diff_bps
            out.append(
                Candidate(
                    type=self.type,
                    level=level_by_ratio(rel),
                    risk_score=score_by_ratio(rel),
                    symbol=ev.symbol,
                    accounts=(),
                    window_start=min(ev.ts, o.ts),
                    window_end=ev.ts,
                    evidence={
                        "event_ids": [o.event_id, ev.event_id],
                        "venues": {venue: mid, other: o.mid},
                        "diff_bps": diff,
                        "consecutive": n,
                        "threshold_bps": s.max_diff_bps,
                        "parameters": self.params,
                    },
                )
            )
        return out or None
