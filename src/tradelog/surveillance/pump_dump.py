"""Pump and dump: the price rises at least ``min_rise`` (15 %) from its low within
``rise_window_s`` (10 min) on volume at least ``volume_multiple`` (3) × the trailing mean
per-minute volume, then falls at least ``min_fall`` (10 %) from the peak within
``dump_window_s``. The evidence names the accounts that bought early (buy fills at or
below the middle of the rise) and sold into the rise (sell fills at or above the middle);
accounts doing both are the alert's accounts (level high; none: medium).

Warm-up: ``min_history_minutes`` of trading before the rise starts, and a trailing mean
volume above zero.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any, Final, Protocol

import msgspec

from tradelog.model.events import Event, EventKind, Side
from tradelog.surveillance.base import (
    MAX_EVIDENCE_IDS,
    NS_PER_MIN,
    NS_PER_S,
    Candidate,
    Context,
    Handler,
)
from tradelog.surveillance.volume_spike import TradeKind, trade_kinds

MAX_TRADES = 50_000
_FILL: Final = EventKind.FILL
_BUY: Final = Side.BUY
_SIDES: Final = ("sell", "buy")


class PumpDumpSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    min_rise: float = 0.15
    rise_window_s: float = 600.0
    volume_multiple: float = 3.0
    min_fall: float = 0.10
    dump_window_s: float = 1800.0
    trailing_minutes: int = 60
    min_history_minutes: int = 30
    kinds: list[TradeKind] = msgspec.field(default_factory=lambda: ["fill", "market_trade"])


class _Trade(msgspec.Struct, array_like=True, gc=False):
    ts: int
    px: float
    qty: float
    account: str | None
    side: str | None
    event_id: str
    is_fill: bool


def _ts(t: _Trade) -> int:
    return t.ts


class PumpDumpState(msgspec.Struct, kw_only=True):
    first_minute: int | None = None
    minute: int | None = None
    volume: float = 0.0
    history: dict[int, float] = msgspec.field(default_factory=dict)
    trades: list[_Trade] = msgspec.field(default_factory=list)
    lows: list[tuple[int, float]] = msgspec.field(default_factory=list)
    """Monotonic queue (time, price) for the sliding minimum over the rise window."""
    pumped: bool = False
    low_ts: int = 0
    low_px: float = 0.0
    peak_ts: int = 0
    peak_px: float = 0.0
    volume_ratio: float = 0.0
    trailing_mean: float = 0.0


class _Symbol(Protocol):
    pump_dump: PumpDumpState


class PumpDump:
    type = "pump_dump"

    def __init__(self, settings: PumpDumpSettings | None = None) -> None:
        self.s = settings or PumpDumpSettings()
        self.params: dict[str, Any] = msgspec.structs.asdict(self.s)
        self._rise = int(self.s.rise_window_s * NS_PER_S)
        self._dump = int(self.s.dump_window_s * NS_PER_S)

    def handlers(self) -> dict[EventKind, Handler]:
        return dict.fromkeys(trade_kinds(self.s.kinds), self.on_trade)

    def on_trade(self, ev: Event, ss: _Symbol, ctx: Context) -> list[Candidate] | None:
        """Fills and public trades (those of ``kinds``)."""
        is_fill = ev.kind is _FILL
        if is_fill:
            px, qty = ev.last_px, ev.last_qty
        else:
            px, qty = ev.price, ev.qty
        if px is None or qty is None or px <= 0:
            return None
        st = ss.pump_dump
        ts = ev.ts
        minute = ts // NS_PER_MIN
        if st.first_minute is None:
            st.first_minute = minute
        if st.minute is None or minute > st.minute:
            if st.minute is not None:
                st.history[st.minute] = st.history.get(st.minute, 0.0) + st.volume
            st.minute = minute
            st.volume = 0.0
            lo = minute - self.s.trailing_minutes - self.s.rise_window_s // 60 - 1
            for m in [m for m in st.history if m < lo]:
                del st.history[m]
        st.volume += qty
        trades = st.trades
        side = ev.side
        trades.append(
            _Trade(ts, px, qty, ev.account_id, None if side is None else _SIDES[side is _BUY],
                   ev.event_id, is_fill)
        )  # fmt: skip
        horizon = ts - self._rise - self._dump
        if trades[0].ts < horizon:
            del trades[: bisect_left(trades, horizon, key=_ts)]
        if len(trades) > MAX_TRADES:
            del trades[: len(trades) - MAX_TRADES]
        lows = st.lows
        while lows and lows[-1][1] >= px:
            lows.pop()
        lows.append((ts, px))
        if lows[0][0] < ts - self._rise:
            rise_start = ts - self._rise
            while lows and lows[0][0] < rise_start:
                lows.pop(0)
        s = self.s
        if not st.pumped:
            low_ts, low_px = lows[0]
            if low_px <= 0 or px / low_px - 1.0 < s.min_rise:
                return None
            low_minute = low_ts // NS_PER_MIN
            if low_minute - st.first_minute < s.min_history_minutes:
                return None
            trailing = [v for m, v in st.history.items()
                        if low_minute - s.trailing_minutes <= m < low_minute]  # fmt: skip
            span = min(s.trailing_minutes, low_minute - st.first_minute)
            mean = sum(trailing) / span if span > 0 else 0.0
            if mean <= 0:
                return None
            rise_vol = sum(t.qty for t in trades if t.ts >= low_ts)
            minutes = max(1, minute - low_minute + 1)
            ratio = rise_vol / minutes / mean
            if ratio < s.volume_multiple:
                return None
            st.pumped = True
            st.low_ts, st.low_px = low_ts, low_px
            st.peak_ts, st.peak_px = ts, px
            st.volume_ratio, st.trailing_mean = ratio, mean
            return None
        if px > st.peak_px:
            st.peak_ts, st.peak_px = ts, px
            return None
        if ts - st.peak_ts > self._dump:
            st.pumped = False
            return None
        if px > st.peak_px * (1.0 - s.min_fall):
            return None
        st.pumped = False
        st.lows = [(ts, px)]  # the next rise is measured from here
        return [self._candidate(ev, st, px)]

    def _candidate(self, ev: Event, st: PumpDumpState, px: float) -> Candidate:
        s = self.s
        middle = st.low_px + 0.5 * (st.peak_px - st.low_px)
        early: dict[str, float] = {}
        sold: dict[str, float] = {}
        buy_ids: list[str] = []
        sell_ids: list[str] = []
        for t in st.trades:
            if not t.is_fill or t.account is None or t.ts < st.low_ts:
                continue
            if t.side == "buy" and t.px <= middle and t.ts <= st.peak_ts:
                early[t.account] = early.get(t.account, 0.0) + t.qty
                if len(buy_ids) < MAX_EVIDENCE_IDS:
                    buy_ids.append(t.event_id)
            elif t.side == "sell" and t.px >= middle:
                sold[t.account] = sold.get(t.account, 0.0) + t.qty
                if len(sell_ids) < MAX_EVIDENCE_IDS:
                    sell_ids.append(t.event_id)
        named = tuple(sorted(set(early) & set(sold)))
        rise = st.peak_px / st.low_px - 1.0
        fall = 1.0 - px / st.peak_px
        return Candidate(
            type=self.type,
            level="high" if named else "medium",
            risk_score=round(min(1.0, (0.75 if named else 0.55) + 0.5 * (rise - s.min_rise)), 4),
            symbol=ev.symbol,
            accounts=named,
            window_start=st.low_ts,
            window_end=ev.ts,
            evidence={
                "event_ids": [*buy_ids, *sell_ids, ev.event_id],
                "low_px": st.low_px,
                "low_ts": st.low_ts,
                "peak_px": st.peak_px,
                "peak_ts": st.peak_ts,
                "trigger_px": px,
                "rise": rise,
                "fall": fall,
                "volume_ratio": st.volume_ratio,
                "trailing_mean_volume": st.trailing_mean,
                "bought_early": early,
                "sold_into_rise": sold,
                "accounts_both": list(named),
                "thresholds": {"min_rise": s.min_rise, "min_fall": s.min_fall,
                               "volume_multiple": s.volume_multiple},
                "parameters": self.params,
            },
        )  # fmt: skip
