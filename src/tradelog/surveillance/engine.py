"""The surveillance engine: runs every detector, the account profiles and the risk
triggers over a batch of enriched events, and turns candidates into alerts.

``SurveillanceSettings`` groups every detector's settings (config ``[surveillance]``);
``SurveillanceState`` is all the history they need (per symbol, per account, open alerts),
a msgspec struct so it is part of the partition snapshot (``to_bytes``/``from_bytes``).
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import msgspec

from tradelog.model.alerts import LEVEL_RANK, Alert, ProfileRow
from tradelog.model.events import Event, EventKind
from tradelog.surveillance.alerts import AlertBook, AlertBookSettings, AlertBookState
from tradelog.surveillance.base import Candidate, Context
from tradelog.surveillance.cancel_ratio import CancelRatio, CancelRatioSettings, CancelRatioState
from tradelog.surveillance.concentration import (
    Concentration,
    ConcentrationSettings,
    ConcentrationState,
)
from tradelog.surveillance.cross_venue import CrossVenue, CrossVenueSettings, CrossVenueState
from tradelog.surveillance.price_anomaly import (
    PriceAnomaly,
    PriceAnomalySettings,
    PriceAnomalyState,
)
from tradelog.surveillance.profiles import AccountProfile
from tradelog.surveillance.pump_dump import PumpDump, PumpDumpSettings, PumpDumpState
from tradelog.surveillance.risk import Risk, RiskSettings, RiskState
from tradelog.surveillance.spoofing import Spoofing, SpoofingSettings, SpoofingState
from tradelog.surveillance.volume_spike import VolumeSpike, VolumeSpikeSettings, VolumeSpikeState
from tradelog.surveillance.wash_trade import WashTrade, WashTradeSettings, WashTradeState

STATE_VERSION: Final = 1
_FILL: Final = EventKind.FILL
_TRADE: Final = EventKind.MARKET_TRADE
_QUOTE: Final = EventKind.QUOTE
_NEW: Final = EventKind.ORDER_NEW
_CANCELLED: Final = EventKind.ORDER_CANCELLED
_PROFILE_KINDS: Final = frozenset(
    {_NEW, _CANCELLED, _FILL, EventKind.ORDER_REJECTED, EventKind.ORDER_REPLACE}
)


class _Detector(Protocol):
    def observe(self, ev: Event, st: Any, ctx: Context) -> list[Candidate] | None: ...


class SurveillanceSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Every detector's parameters (DESIGN §4 defaults); ``enabled = false`` turns one off."""

    enabled: bool = True
    wash_trade: WashTradeSettings = msgspec.field(default_factory=WashTradeSettings)
    spoofing: SpoofingSettings = msgspec.field(default_factory=SpoofingSettings)
    cancel_ratio: CancelRatioSettings = msgspec.field(default_factory=CancelRatioSettings)
    pump_dump: PumpDumpSettings = msgspec.field(default_factory=PumpDumpSettings)
    volume_spike: VolumeSpikeSettings = msgspec.field(default_factory=VolumeSpikeSettings)
    price_anomaly: PriceAnomalySettings = msgspec.field(default_factory=PriceAnomalySettings)
    concentration: ConcentrationSettings = msgspec.field(default_factory=ConcentrationSettings)
    cross_venue: CrossVenueSettings = msgspec.field(default_factory=CrossVenueSettings)
    risk: RiskSettings = msgspec.field(default_factory=RiskSettings)
    alerts: AlertBookSettings = msgspec.field(default_factory=AlertBookSettings)


class SymbolSurveillance(msgspec.Struct, kw_only=True):
    """One symbol's detector state."""

    wash_trade: WashTradeState = msgspec.field(default_factory=WashTradeState)
    spoofing: SpoofingState = msgspec.field(default_factory=SpoofingState)
    cancel_ratio: CancelRatioState = msgspec.field(default_factory=CancelRatioState)
    pump_dump: PumpDumpState = msgspec.field(default_factory=PumpDumpState)
    volume_spike: VolumeSpikeState = msgspec.field(default_factory=VolumeSpikeState)
    price_anomaly: PriceAnomalyState = msgspec.field(default_factory=PriceAnomalyState)
    concentration: ConcentrationState = msgspec.field(default_factory=ConcentrationState)
    cross_venue: CrossVenueState = msgspec.field(default_factory=CrossVenueState)


class SurveillanceState(msgspec.Struct, kw_only=True):
    """All surveillance history of one partition (part of its snapshot)."""

    version: int = STATE_VERSION
    symbols: dict[str, SymbolSurveillance] = msgspec.field(default_factory=dict)
    profiles: dict[str, AccountProfile] = msgspec.field(default_factory=dict)
    risk: RiskState = msgspec.field(default_factory=RiskState)
    book: AlertBookState = msgspec.field(default_factory=AlertBookState)
    last_ts: int = 0

    def to_bytes(self) -> bytes:
        return msgspec.msgpack.encode(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> SurveillanceState:
        state = msgspec.msgpack.decode(data, type=cls)
        if state.version != STATE_VERSION:
            raise ValueError(f"unknown surveillance state version {state.version}")
        return state


class Surveillance:
    """Runs the detectors; ``process`` returns the alerts (new or updated) and the profiles
    of the accounts active in the batch."""

    def __init__(
        self, settings: SurveillanceSettings | None = None, owners: dict[str, str] | None = None
    ) -> None:
        s = self.settings = settings or SurveillanceSettings()
        self.owners = dict(owners or {})
        self.wash = WashTrade(s.wash_trade) if s.wash_trade.enabled else None
        self.spoof = Spoofing(s.spoofing) if s.spoofing.enabled else None
        self.cancels = CancelRatio(s.cancel_ratio) if s.cancel_ratio.enabled else None
        self.pump = PumpDump(s.pump_dump) if s.pump_dump.enabled else None
        self.volume = VolumeSpike(s.volume_spike) if s.volume_spike.enabled else None
        self.price = PriceAnomaly(s.price_anomaly) if s.price_anomaly.enabled else None
        self.conc = Concentration(s.concentration) if s.concentration.enabled else None
        self.cross = CrossVenue(s.cross_venue) if s.cross_venue.enabled else None
        self.risk = Risk(s.risk) if s.risk.enabled else None
        self.book = AlertBook(s.alerts)
        fill: list[tuple[_Detector | None, str]] = [
            (self.wash, "wash_trade"), (self.spoof, "spoofing"), (self.cancels, "cancel_ratio"),
            (self.conc, "concentration"), (self.volume, "volume_spike"),
            (self.price, "price_anomaly"), (self.pump, "pump_dump"),
        ]  # fmt: skip
        trade: list[tuple[_Detector | None, str]] = [
            (self.volume, "volume_spike"), (self.price, "price_anomaly"), (self.pump, "pump_dump"),
        ]  # fmt: skip
        self._on_fill = [(d, n) for d, n in fill if d is not None]
        self._on_trade = [(d, n) for d, n in trade if d is not None]

    def process(
        self, events: list[Event], state: SurveillanceState, partition: int = 0
    ) -> tuple[list[Alert], list[ProfileRow]]:
        ctx = Context(self.owners, state.profiles)
        found: list[Candidate] = []
        touched: set[str] = set()
        symbols = state.symbols
        for ev in events:
            kind = ev.kind
            state.last_ts = max(state.last_ts, ev.ts)
            if self.risk is not None and kind is not _TRADE:
                got = self.risk.observe(ev, state.risk)
                if got:
                    found.extend(got)
            sym = ev.symbol
            if sym is None:
                continue
            ss = symbols.get(sym)
            if ss is None:
                ss = symbols[sym] = SymbolSurveillance()
            if kind is _FILL:
                for det, name in self._on_fill:
                    got = det.observe(ev, getattr(ss, name), ctx)
                    if got:
                        found.extend(got)
            elif kind is _TRADE:
                for det, name in self._on_trade:
                    got = det.observe(ev, getattr(ss, name), ctx)
                    if got:
                        found.extend(got)
            elif kind is _QUOTE:
                if self.spoof is not None:
                    self.spoof.observe(ev, ss.spoofing, ctx)
                if self.cross is not None:
                    got = self.cross.observe(ev, ss.cross_venue, ctx)
                    if got:
                        found.extend(got)
            elif kind is _NEW or kind is _CANCELLED:
                if self.spoof is not None:
                    got = self.spoof.observe(ev, ss.spoofing, ctx)
                    if got:
                        found.extend(got)
                if self.cancels is not None:
                    got = self.cancels.observe(ev, ss.cancel_ratio, ctx)
                    if got:
                        found.extend(got)
            if kind in _PROFILE_KINDS and ev.account_id is not None:
                profile = state.profiles.get(ev.account_id)
                if profile is None:
                    profile = state.profiles[ev.account_id] = AccountProfile(
                        account_id=ev.account_id
                    )
                profile.observe(ev)
                touched.add(ev.account_id)
        alerts = self._alerts(found, state)
        profiles = [state.profiles[a].row(partition) for a in sorted(touched)]
        if events:
            self.book.expire(state.book, state.last_ts)
        return alerts, profiles

    def _alerts(self, found: list[Candidate], state: SurveillanceState) -> list[Alert]:
        """One copy per alert touched in the batch (the committer writes copies while the
        book keeps changing); ``change`` is the strongest of the batch's changes."""
        out: dict[str, Alert] = {}
        for c in found:
            alert = self.book.apply(c, state.book)
            prev = out.get(alert.alert_id)
            copy = msgspec.structs.replace(alert)
            if prev is not None:
                if prev.change == "new":
                    copy.change = "new"
                elif prev.change == "escalate" or LEVEL_RANK[copy.level] > LEVEL_RANK[prev.level]:
                    copy.change = "escalate"
            out[alert.alert_id] = copy
        return list(out.values())
