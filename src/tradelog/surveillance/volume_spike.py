"""Volume spike: a symbol's volume in the current minute at least ``multiple`` (3) × the
mean per-minute volume of the trailing ``trailing_minutes`` (60; minutes without trades
count as zero; while the history is shorter, the mean is over the minutes seen).
Warm-up: ``min_history_minutes`` of history since the symbol's first trade and a trailing
mean above zero. Counted prints: fills and public trades (``kinds``).
Fires while the minute is still running (as soon as the threshold is crossed), once per
minute; a spike lasting several minutes updates the same open alert.
"""

from __future__ import annotations

from typing import Any, Final, Literal, Protocol

import msgspec

from tradelog.model.events import Event, EventKind
from tradelog.surveillance.base import (
    MAX_EVIDENCE_IDS,
    NS_PER_MIN,
    Candidate,
    Context,
    Handler,
    level_by_ratio,
    score_by_ratio,
)

TradeKind = Literal["fill", "market_trade"]


_FILL: Final = EventKind.FILL


def trade_kinds(kinds: list[TradeKind]) -> list[EventKind]:
    """The event kinds of the counted prints (fills and/or public trades).

    >>> trade_kinds(["market_trade", "fill", "fill"])
    [<EventKind.MARKET_TRADE: 'market_trade'>, <EventKind.FILL: 'fill'>]
    """
    return [EventKind(k) for k in dict.fromkeys(kinds)]


class VolumeSpikeSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    multiple: float = 3.0
    trailing_minutes: int = 60
    min_history_minutes: int = 30
    kinds: list[TradeKind] = msgspec.field(default_factory=lambda: ["fill", "market_trade"])


class VolumeSpikeState(msgspec.Struct, kw_only=True):
    first_minute: int | None = None
    minute: int | None = None
    volume: float = 0.0
    trades: int = 0
    ids: list[str] = msgspec.field(default_factory=list)
    history: dict[int, float] = msgspec.field(default_factory=dict)
    """minute → volume of recent closed minutes."""
    trailing_mean: float | None = None
    emitted: int | None = None


class _Symbol(Protocol):
    volume_spike: VolumeSpikeState


class VolumeSpike:
    type = "volume_spike"

    def __init__(self, settings: VolumeSpikeSettings | None = None) -> None:
        self.s = settings or VolumeSpikeSettings()
        self.params: dict[str, Any] = msgspec.structs.asdict(self.s)

    def handlers(self) -> dict[EventKind, Handler]:
        return dict.fromkeys(trade_kinds(self.s.kinds), self.on_trade)

    def on_trade(self, ev: Event, ss: _Symbol, ctx: Context) -> list[Candidate] | None:
        """Fills and public trades (those of ``kinds``)."""
        if ev.kind is _FILL:
            qty = ev.last_qty
            if ev.last_px is None or qty is None:
                return None
        else:
            qty = ev.qty
            if ev.price is None or qty is None:
                return None
        st = ss.volume_spike
        minute = ev.ts // NS_PER_MIN
        if st.first_minute is None:
            st.first_minute = minute
        if st.minute is None or minute > st.minute:
            self._roll(st, minute)
        elif minute < st.minute:
            st.history[minute] = st.history.get(minute, 0.0) + qty  # late print
            return None
        st.volume += qty
        st.trades += 1
        if len(st.ids) < MAX_EVIDENCE_IDS:
            st.ids.append(ev.event_id)
        s = self.s
        mean = st.trailing_mean
        if (
            mean is None
            or mean <= 0
            or minute - st.first_minute < s.min_history_minutes
            or st.emitted == minute
        ):
            return None
        ratio = st.volume / mean
        if ratio < s.multiple:
            return None
        st.emitted = minute
        rel = ratio / s.multiple
        return [
            Candidate(
                type=self.type,
                level=level_by_ratio(rel),
                risk_score=score_by_ratio(rel),
                symbol=ev.symbol,
                accounts=(),
                window_start=minute * NS_PER_MIN,
                window_end=ev.ts,
                evidence={
                    "event_ids": list(st.ids),
                    "minute_start": minute * NS_PER_MIN,
                    "minute_volume": st.volume,
                    "minute_trades": st.trades,
                    "trailing_mean_volume": mean,
                    "ratio": ratio,
                    "threshold": s.multiple,
                    "parameters": self.params,
                },
            )
        ]

    def _roll(self, st: VolumeSpikeState, minute: int) -> None:
        if st.minute is not None:
            st.history[st.minute] = st.history.get(st.minute, 0.0) + st.volume
        st.minute = minute
        st.volume = 0.0
        st.trades = 0
        st.ids = []
        n = self.s.trailing_minutes
        lo = minute - n
        for m in [m for m in st.history if m < lo]:
            del st.history[m]
        assert st.first_minute is not None
        span = min(n, minute - st.first_minute)  # minutes of history (before the first: none)
        total = sum(v for m, v in st.history.items() if m >= lo)
        st.trailing_mean = total / span if span > 0 else None
