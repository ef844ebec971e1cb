"""Price anomaly: a one-minute return (close to close of consecutive trading minutes)
beyond ``max_return`` (15 %), or a robust z-score of that return against the trailing
returns beyond ``max_robust_z`` (6): ``z = (r − median) / (1.4826 · MAD)``.

A minute is judged when it closes (the first print of a later minute), so the intraminute
path does not inflate the statistic. Warm-up: ``min_minutes`` closed minutes before any
alert; the z rule also needs ``min_returns`` trailing returns and a MAD above zero (a flat
series has no scale: the z rule then stays silent and the evidence says so).
"""

from __future__ import annotations

from statistics import median
from typing import Any, Final, Protocol

import msgspec

from tradelog.model.alerts import AlertLevel
from tradelog.model.events import Event, EventKind
from tradelog.surveillance.base import (
    LEVEL_ORDER,
    NS_PER_MIN,
    Candidate,
    Context,
    Handler,
    level_by_ratio,
    score_by_ratio,
)
from tradelog.surveillance.volume_spike import TradeKind, trade_kinds

MAD_SCALE = 1.4826
_FILL: Final = EventKind.FILL


class PriceAnomalySettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    max_return: float | None = 0.15
    max_robust_z: float | None = 6.0
    trailing_returns: int = 60
    min_returns: int = 30
    min_minutes: int = 5
    kinds: list[TradeKind] = msgspec.field(default_factory=lambda: ["fill", "market_trade"])


class PriceAnomalyState(msgspec.Struct, kw_only=True):
    minute: int | None = None
    open_px: float | None = None
    close: float | None = None
    first_id: str | None = None
    last_id: str | None = None
    prev_close: float | None = None
    closed_minutes: int = 0
    returns: list[float] = msgspec.field(default_factory=list)


class _Symbol(Protocol):
    price_anomaly: PriceAnomalyState


class PriceAnomaly:
    type = "price_anomaly"

    def __init__(self, settings: PriceAnomalySettings | None = None) -> None:
        self.s = settings or PriceAnomalySettings()
        self.params: dict[str, Any] = msgspec.structs.asdict(self.s)

    def handlers(self) -> dict[EventKind, Handler]:
        return dict.fromkeys(trade_kinds(self.s.kinds), self.on_trade)

    def on_trade(self, ev: Event, ss: _Symbol, ctx: Context) -> list[Candidate] | None:
        """Fills and public trades (those of ``kinds``)."""
        if ev.kind is _FILL:
            px = ev.last_px
            if px is None or ev.last_qty is None or px <= 0:
                return None
        else:
            px = ev.price
            if px is None or ev.qty is None or px <= 0:
                return None
        st = ss.price_anomaly
        minute = ev.ts // NS_PER_MIN
        out: list[Candidate] | None = None
        if st.minute is None or minute > st.minute:
            if st.minute is not None:
                out = self._close(ev, st)
            st.minute = minute
            st.open_px = px
            st.first_id = ev.event_id
        elif minute < st.minute:
            return None  # a late print of a minute already judged
        st.close = px
        st.last_id = ev.event_id
        return out

    def _close(self, ev: Event, st: PriceAnomalyState) -> list[Candidate] | None:
        """Judges the minute that just closed, then adds its return to the history."""
        close, prev = st.close, st.prev_close
        st.prev_close = close
        st.closed_minutes += 1
        if close is None or prev is None or prev <= 0:
            return None
        r = close / prev - 1.0
        s = self.s
        history = st.returns
        candidate: Candidate | None = None
        if st.closed_minutes > s.min_minutes:
            z: float | None = None
            med = mad = None
            if len(history) >= s.min_returns:
                med = median(history)
                mad = median(abs(x - med) for x in history)
                if mad > 0:
                    z = (r - med) / (MAD_SCALE * mad)
            rules: list[str] = []
            level: AlertLevel = "low"
            rel = 0.0
            if s.max_return is not None and abs(r) > s.max_return:
                rules.append("return")
                rel = max(rel, abs(r) / s.max_return)
            if s.max_robust_z is not None and z is not None and abs(z) > s.max_robust_z:
                rules.append("robust_z")
                rel = max(rel, abs(z) / s.max_robust_z)
            if rules:
                level = level_by_ratio(rel)
                if "return" in rules and LEVEL_ORDER[level] < LEVEL_ORDER["high"]:
                    level = "high"  # a 15 % minute is never routine
                assert st.minute is not None
                ids = [i for i in (st.first_id, st.last_id) if i is not None]
                candidate = Candidate(
                    type=self.type,
                    level=level,
                    risk_score=score_by_ratio(rel),
                    symbol=ev.symbol,
                    accounts=(),
                    window_start=st.minute * NS_PER_MIN,
                    window_end=(st.minute + 1) * NS_PER_MIN,
                    evidence={
                        "event_ids": list(dict.fromkeys(ids)),
                        "rules": rules,
                        "minute_start": st.minute * NS_PER_MIN,
                        "prev_close": prev,
                        "close": close,
                        "return": r,
                        "robust_z": z,
                        "robust_z_note": None if z is not None else (
                            f"needs {s.min_returns} trailing returns with MAD > 0"
                        ),
                        "median_return": med,
                        "mad": mad,
                        "thresholds": {"max_return": s.max_return,
                                       "max_robust_z": s.max_robust_z},
                        "parameters": self.params,
                    },
                )  # fmt: skip
        history.append(r)
        if len(history) > s.trailing_returns:
            del history[: len(history) - s.trailing_returns]
        return [candidate] if candidate is not None else None
