"""What every detector shares: the alert candidate it emits, the context it reads (owners,
account profiles), time constants and helpers for levels and risk scores.

Detectors are pure: they read events (UTC ns event times) and their own per-symbol state
(msgspec structs, so the whole state is a snapshot), never a clock or any I/O. Each one
says which event kinds it reads (``handlers``), so the engine dispatches an event once by
kind and a detector never sees the events it ignores. The small records kept in the
windows hold no containers: ``gc=False`` structs, which the cycle collector skips.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import msgspec

from tradelog.model.alerts import LEVEL_RANK, AlertLevel
from tradelog.model.events import Event, EventKind
from tradelog.surveillance.profiles import AccountProfile

NS_PER_S: Final = 1_000_000_000
NS_PER_MIN: Final = 60 * NS_PER_S
MAX_EVIDENCE_IDS: Final = 50
"""Evidence keeps at most this many event ids per list (the first ones)."""
LEVEL_ORDER: Final = LEVEL_RANK


class Candidate(msgspec.Struct, kw_only=True):
    """A detector's finding; the alert book turns it into a new or updated alert."""

    type: str
    level: AlertLevel
    risk_score: float
    symbol: str | None
    accounts: tuple[str, ...]
    window_start: int
    window_end: int
    evidence: dict[str, Any]
    strategy_id: str | None = None


@dataclass(slots=True)
class Context:
    """What detectors may read besides their own state."""

    owners: dict[str, str]
    """account → beneficial owner (config reference data); an account not listed is its
    own owner."""
    profiles: dict[str, AccountProfile]


Handler = Callable[[Event, Any, Context], list[Candidate] | None]
"""A detector's reaction to one event kind: (event, the symbol's ``SymbolSurveillance``,
context) → candidates or None. The detector reads its own field of the symbol state."""


class Detector(Protocol):
    def handlers(self) -> dict[EventKind, Handler]:
        """Event kind → handler, for the kinds this detector reads (with its settings)."""
        ...


def level_by_ratio(ratio: float, steps: tuple[float, float, float] = (1.0, 2.0, 4.0)) -> AlertLevel:
    """medium at the threshold (ratio 1), high at ``steps[1]``×, critical at ``steps[2]``×.

    >>> level_by_ratio(1.0), level_by_ratio(2.5), level_by_ratio(9)
    ('medium', 'high', 'critical')
    """
    if ratio >= steps[2]:
        return "critical"
    if ratio >= steps[1]:
        return "high"
    if ratio >= steps[0]:
        return "medium"
    return "low"


def score_by_ratio(ratio: float, full_at: float = 4.0) -> float:
    """Risk score in [0, 1]: 0.5 at the threshold, 1.0 at ``full_at`` × the threshold.

    >>> score_by_ratio(1.0), score_by_ratio(4.0), score_by_ratio(100.0)
    (0.5, 1.0, 1.0)
    """
    if ratio <= 0:
        return 0.0
    if ratio < 1.0:
        return round(0.5 * ratio, 4)
    return round(min(1.0, 0.5 + 0.5 * (ratio - 1.0) / (full_at - 1.0)), 4)


def add_id(ids: list[str], event_id: str) -> None:
    """Appends an evidence id while the list is below the cap."""
    if len(ids) < MAX_EVIDENCE_IDS:
        ids.append(event_id)
