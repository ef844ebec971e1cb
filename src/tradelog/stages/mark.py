"""mark: anomaly rules on single events (DESIGN §4), each configurable.

Each mark carries type, severity, value and threshold; the event gets the highest
severity and the list of types. Rules: latency above a threshold, negative latency or a
timestamp ahead of the ingest clock (clock skew), |slippage| above a threshold, order size
above a multiple of the symbol's rolling mean size (after enough observations), price far
from the mid, activity outside the venue's session or on a weekend, rejects, and the
lifecycle issues the enrich stage found (unknown order, overfill…).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

import msgspec

from tradelog.model.events import (
    SEVERITY_RANK,
    AnomalyMark,
    Event,
    EventKind,
    Severity,
)
from tradelog.model.reference import ReferenceData, VenueInfo
from tradelog.pipeline.batch import Batch
from tradelog.pipeline.state import PartitionState

DEFAULT_SEVERITY: Final[dict[str, Severity]] = {
    "high_latency": Severity.MEDIUM,
    "clock_skew": Severity.MEDIUM,
    "slippage": Severity.HIGH,
    "large_size": Severity.MEDIUM,
    "price_deviation": Severity.HIGH,
    "off_session": Severity.LOW,
    "weekend": Severity.LOW,
    "order_rejected": Severity.MEDIUM,
    "cancel_rejected": Severity.LOW,
    "unknown_order": Severity.LOW,
    "duplicate_order_new": Severity.MEDIUM,
    "event_after_terminal": Severity.LOW,
    "overfill": Severity.HIGH,
    "duplicate_exec_id": Severity.HIGH,
    "position_mismatch": Severity.HIGH,
    "pnl_mismatch": Severity.MEDIUM,
}
NS_PER_MINUTE: Final = 60_000_000_000


class MarkSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Thresholds of the anomaly rules (config ``[marks]``); ``null`` disables a rule."""

    latency_ms: float | None = 1000.0
    slippage_bps: float | None = 50.0
    size_multiple: float | None = 10.0
    size_min_observations: int = 20
    price_deviation_pct: float | None = 1.0
    future_tolerance_ms: float | None = 5000.0
    """An event time this far ahead of the ingest clock is clock skew."""
    position_tolerance: float | None = 1e-6
    """Engine-reported position vs ours (average cost); null disables reconciliation."""
    pnl_tolerance: float | None = 0.01
    """Engine-reported realised PnL vs ours (net of fees), in currency units."""
    sessions: bool = True
    weekends: bool = True
    severity: dict[str, Severity] = {}
    """Per mark type, overrides the default severity."""

    def __post_init__(self) -> None:
        unknown = set(self.severity) - set(DEFAULT_SEVERITY)
        if unknown:
            raise ValueError(
                f"marks.severity: unknown mark type(s) {sorted(unknown)}; "
                f"known: {sorted(DEFAULT_SEVERITY)}"
            )


class _SessionCalendar:
    """Minute-resolution cache of (weekend, in session) per venue."""

    def __init__(self, venues: dict[str, VenueInfo]) -> None:
        self._venues = {
            name: (info, ZoneInfo(info.time_zone), info.session_minutes())
            for name, info in venues.items()
        }
        self._utc = ZoneInfo("UTC")
        self._cache: dict[tuple[str | None, int], tuple[bool, bool]] = {}

    def check(self, venue: str | None, ts: int) -> tuple[bool, bool]:
        """(is weekend, is outside the session) for the venue's local time."""
        minute = ts // NS_PER_MINUTE
        key = (venue, minute)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        known = self._venues.get(venue) if venue is not None else None
        zone = known[1] if known else self._utc
        local = datetime.fromtimestamp(minute * 60, tz=UTC).astimezone(zone)
        if known is not None and known[0].calendar == "24/7":
            result = (False, False)
        else:
            weekend = local.weekday() >= 5
            outside = False
            if known is not None:
                open_m, close_m = known[2]
                m = local.hour * 60 + local.minute
                outside = (
                    not (open_m <= m < close_m) if open_m < close_m else (close_m <= m < open_m)
                )
            result = (weekend, outside)
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[key] = result
        return result


class Mark:
    """Stage ``mark``."""

    step_id: Final = "mark"

    def __init__(
        self, settings: MarkSettings | None = None, reference: ReferenceData | None = None
    ) -> None:
        self.settings = settings or MarkSettings()
        self.severity = {**DEFAULT_SEVERITY, **self.settings.severity}
        self.calendar = _SessionCalendar((reference or ReferenceData()).venues)

    def __call__(self, batch: Batch, state: PartitionState) -> None:
        s = self.settings
        lat_thr = s.latency_ms
        slip_thr = s.slippage_bps
        size_mult = s.size_multiple
        dev_thr = s.price_deviation_pct / 100.0 if s.price_deviation_pct is not None else None
        future_ns = int(s.future_tolerance_ms * 1e6) if s.future_tolerance_ms is not None else None
        issues = batch.issues
        out = batch.marks
        for i, ev in enumerate(batch.events):
            kind = ev.kind
            if kind is EventKind.QUOTE or kind is EventKind.MARKET_TRADE:
                if future_ns is not None and ev.ts - ev.ts_ingest > future_ns:
                    self._mark(
                        ev, out, "clock_skew", (ev.ts - ev.ts_ingest) / 1e6, s.future_tolerance_ms
                    )
                continue
            if future_ns is not None and ev.ts - ev.ts_ingest > future_ns:
                self._mark(
                    ev, out, "clock_skew", (ev.ts - ev.ts_ingest) / 1e6, s.future_tolerance_ms
                )
            lat = ev.latency_ms
            if lat is not None:
                if lat < 0:
                    self._mark(ev, out, "clock_skew", lat, 0.0)
                elif lat_thr is not None and lat > lat_thr:
                    self._mark(ev, out, "high_latency", lat, lat_thr)
            if kind is EventKind.FILL:
                slip = ev.slippage_bps
                if slip_thr is not None and slip is not None and abs(slip) > slip_thr:
                    self._mark(ev, out, "slippage", slip, slip_thr)
                if dev_thr is not None and ev.last_px is not None:
                    self._deviation(ev, ev.last_px, dev_thr, out)
                self._calendar(ev, out)
            elif kind is EventKind.ORDER_NEW:
                qty = ev.qty
                if qty is not None and ev.symbol is not None:
                    sizes = state.symbol(ev.symbol).sizes
                    mean = sizes.mean
                    if (
                        size_mult is not None
                        and mean is not None
                        and sizes.count >= s.size_min_observations
                        and qty > size_mult * mean
                    ):
                        self._mark(ev, out, "large_size", qty, size_mult * mean)
                    sizes.add(qty)
                if dev_thr is not None and ev.price is not None:
                    self._deviation(ev, ev.price, dev_thr, out)
                self._calendar(ev, out)
            elif kind is EventKind.POSITION:
                self._reconcile(ev, out)
            elif kind is EventKind.ORDER_REJECTED:
                self._mark(ev, out, "order_rejected", None, None, ev.reason)
            elif kind is EventKind.ORDER_CANCEL_REJECTED:
                self._mark(ev, out, "cancel_rejected", None, None, ev.reason)
            issue = issues.get(i)
            if issue is not None:
                self._mark(ev, out, issue, None, None)

    def _reconcile(self, ev: Event, out: list[AnomalyMark]) -> None:
        """The engine's own position/PnL against ours (enrich put ours on the event)."""
        s = self.settings
        if (
            s.position_tolerance is not None
            and ev.position is not None
            and ev.pos_after is not None
        ):
            diff = ev.position - ev.pos_after
            if abs(diff) > s.position_tolerance:
                self._mark(ev, out, "position_mismatch", diff, s.position_tolerance,
                           f"engine {ev.position} vs tradelog {ev.pos_after}")  # fmt: skip
        if (
            s.pnl_tolerance is not None
            and ev.realized_pnl is not None
            and ev.realized_after is not None
            and ev.fees_after is not None
        ):
            ours = ev.realized_after - ev.fees_after
            diff = ev.realized_pnl - ours
            if abs(diff) > s.pnl_tolerance:
                self._mark(ev, out, "pnl_mismatch", diff, s.pnl_tolerance,
                           f"engine realised {ev.realized_pnl} vs tradelog {ours:.6f}")  # fmt: skip

    def _deviation(self, ev: Event, px: float, threshold: float, out: list[AnomalyMark]) -> None:
        bid, ask = ev.mkt_bid, ev.mkt_ask
        if bid is None or ask is None:
            return
        mid = (bid + ask) / 2.0
        dev = abs(px - mid) / mid if mid > 0 else 0.0
        if dev > threshold:
            self._mark(ev, out, "price_deviation", dev * 100.0, threshold * 100.0)

    def _calendar(self, ev: Event, out: list[AnomalyMark]) -> None:
        s = self.settings
        if not (s.sessions or s.weekends):
            return
        weekend, outside = self.calendar.check(ev.venue, ev.ts)
        if s.weekends and weekend:
            self._mark(ev, out, "weekend", None, None)
        elif s.sessions and outside:
            self._mark(ev, out, "off_session", None, None)

    def _mark(
        self,
        ev: Event,
        out: list[AnomalyMark],
        type_: str,
        value: float | None,
        threshold: float | None,
        detail: str | None = None,
    ) -> None:
        severity = self.severity[type_]
        out.append(
            AnomalyMark(
                event_id=ev.event_id,
                ts=ev.ts,
                kind=ev.kind,
                type=type_,
                severity=severity,
                value=value,
                threshold=threshold,
                symbol=ev.symbol,
                venue=ev.venue,
                strategy_id=ev.strategy_id,
                account_id=ev.account_id,
                order_id=ev.root_order_id or ev.order_id,
                detail=detail,
            )
        )
        current = ev.anomaly_severity
        if current is None or SEVERITY_RANK[severity] > SEVERITY_RANK[current]:
            ev.anomaly_severity = severity
        ev.anomaly_types = type_ if ev.anomaly_types is None else f"{ev.anomaly_types},{type_}"
