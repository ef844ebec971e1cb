"""The surveillance engine: runs every detector, the account profiles and the risk
triggers over a batch of enriched events, and turns candidates into alerts.

``SurveillanceSettings`` groups every detector's settings (config ``[surveillance]``);
``SurveillanceState`` is all the history they need (per symbol, per account, open alerts),
a msgspec struct so it is part of the partition snapshot (``to_bytes``/``from_bytes``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec

from tradelog.model.alerts import LEVEL_RANK, Alert, ProfileRow
from tradelog.model.events import Event, EventKind
from tradelog.surveillance.alerts import AlertBook, AlertBookSettings, AlertBookState
from tradelog.surveillance.base import Candidate, Context, Detector, Handler
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
from tradelog.surveillance.risk import Risk, RiskHandler, RiskSettings, RiskState
from tradelog.surveillance.spoofing import (
    Spoofing,
    SpoofingSettings,
    SpoofingState,
    unordered_accounts,
)
from tradelog.surveillance.volume_spike import VolumeSpike, VolumeSpikeSettings, VolumeSpikeState
from tradelog.surveillance.wash_trade import WashTrade, WashTradeSettings, WashTradeState

_Count = Callable[[AccountProfile, Event], None]
_Dispatch = tuple[RiskHandler | None, tuple[Handler, ...], _Count | None]
STATE_VERSION: Final = 2
"""2: ``SpoofingState.unordered`` and ``AccountProfile.sorted_sizes`` (derived from the fill
lists and the sizes when a version 1 is read)."""


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
        if state.version == 1:
            for ss in state.symbols.values():
                ss.spoofing.unordered = unordered_accounts(ss.spoofing)
            for profile in state.profiles.values():
                profile.sorted_sizes = sorted(profile.sizes)
            state.version = STATE_VERSION
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
        # the order in which the detectors see an event (and so the order of candidates)
        order: list[Detector | None] = [
            self.wash, self.spoof, self.cancels, self.conc, self.volume, self.price, self.pump,
            self.cross,
        ]  # fmt: skip
        on_kind: dict[EventKind, tuple[Handler, ...]] = {}
        for det in order:
            if det is not None:
                for kind, handler in det.handlers().items():
                    on_kind[kind] = (*on_kind.get(kind, ()), handler)
        risk_on = self.risk.handlers() if self.risk is not None else {}
        profile_on = AccountProfile.handlers()
        self._dispatch: dict[EventKind, _Dispatch] = {
            kind: (risk_on.get(kind), on_kind.get(kind, ()), profile_on.get(kind))
            for kind in EventKind
        }
        """Event kind → (the risk handler, the detectors' handlers in order, the profile
        counter): who reads an event of that kind."""

    def process(
        self, events: list[Event], state: SurveillanceState, partition: int = 0
    ) -> tuple[list[Alert], list[ProfileRow]]:
        profiles = state.profiles
        ctx = Context(self.owners, profiles)
        found: list[Candidate] = []
        touched: set[str] = set()
        symbols = state.symbols
        risk_state = state.risk
        dispatch = self._dispatch
        last_ts = state.last_ts
        for ev in events:
            if ev.ts > last_ts:  # noqa: PLR1730 (a comparison costs less than a call)
                last_ts = ev.ts
            risk, handlers, count = dispatch[ev.kind]
            if risk is not None:
                got = risk(ev, risk_state)
                if got:
                    found.extend(got)
            sym = ev.symbol
            if sym is None:
                continue
            ss = symbols.get(sym)
            if ss is None:
                ss = symbols[sym] = SymbolSurveillance()
            for handler in handlers:
                got = handler(ev, ss, ctx)
                if got:
                    found.extend(got)
            if count is not None:
                account = ev.account_id
                if account is not None:
                    profile = profiles.get(account)
                    if profile is None:
                        profile = profiles[account] = AccountProfile(account_id=account)
                    count(profile, ev)
                    touched.add(account)
        state.last_ts = last_ts
        alerts = self._alerts(found, state)
        rows = [profiles[a].row(partition) for a in sorted(touched)]
        if events:
            self.book.expire(state.book, state.last_ts)
        return alerts, rows

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
