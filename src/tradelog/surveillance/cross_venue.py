"""Cross-venue price discrepancy: the mids of the same symbol on two venues differ by more
than ``max_diff_bps`` (relative to their mean), both quotes being at most ``max_age_s`` old,
for at least ``min_consecutive`` consecutive quote updates (one stale or crossed print is
not a finding). Warm-up: each venue needs ``min_quotes`` quotes. Once per venue pair and
second; a lasting gap updates the same open alert.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from tradelog.model.events import Event, EventKind
from tradelog.surveillance.base import (
    NS_PER_S,
    Candidate,
    Context,
    Handler,
    level_by_ratio,
    score_by_ratio,
)


class CrossVenueSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    max_diff_bps: float = 50.0
    max_age_s: float = 1.0
    min_consecutive: int = 3
    min_quotes: int = 10


class _Mid(msgspec.Struct, array_like=True, gc=False):
    ts: int
    mid: float
    event_id: str
    quotes: int


class CrossVenueState(msgspec.Struct, kw_only=True):
    mids: dict[str, _Mid] = msgspec.field(default_factory=dict)
    streak: dict[str, int] = msgspec.field(default_factory=dict)
    """``venueA|venueB`` → consecutive updates beyond the threshold."""
    emitted: dict[str, int] = msgspec.field(default_factory=dict)


class _Symbol(Protocol):
    cross_venue: CrossVenueState


class CrossVenue:
    type = "cross_venue"

    def __init__(self, settings: CrossVenueSettings | None = None) -> None:
        self.s = settings or CrossVenueSettings()
        self.params: dict[str, Any] = msgspec.structs.asdict(self.s)
        self._age = int(self.s.max_age_s * NS_PER_S)
        self._pairs: dict[str, dict[str, str]] = {}
        """venue → other venue → their ``venueA|venueB`` key (a cache)."""

    def handlers(self) -> dict[EventKind, Handler]:
        return {EventKind.QUOTE: self.on_quote}

    def on_quote(self, ev: Event, ss: _Symbol, ctx: Context) -> list[Candidate] | None:
        venue, bid, ask = ev.venue, ev.bid, ev.ask
        if venue is None or bid is None or ask is None or bid <= 0 or ask <= 0:
            return None
        st = ss.cross_venue
        mid = (bid + ask) / 2.0
        ts = ev.ts
        mids = st.mids
        me = mids.get(venue)
        if me is None:
            me = mids[venue] = _Mid(ts, mid, ev.event_id, 1)
        else:  # updated in place (same values, same position as a new entry)
            me.ts, me.mid, me.event_id, me.quotes = ts, mid, ev.event_id, me.quotes + 1
        if len(mids) < 2:
            return None
        s = self.s
        out: list[Candidate] = []
        pairs = self._pairs.get(venue)
        if pairs is None:
            pairs = self._pairs[venue] = {}
        for other, o in mids.items():
            if other == venue:
                continue
            pair = pairs.get(other)
            if pair is None:
                pair = pairs[other] = f"{min(venue, other)}|{max(venue, other)}"
            if ts - o.ts > self._age or o.ts - ts > self._age:
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
