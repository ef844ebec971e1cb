"""The surveillance alert record, its lifecycle, and the stored account profile row.

These are data shared by the detectors (``surveillance``), the stores and the API, so they
live in ``model`` (storage may depend on nothing else). Lifecycle (DESIGN §4):
``active → acknowledged → resolved | dismissed``; ``active`` may also be resolved or
dismissed directly. Every change is appended to the alert's history with who, when, why.

>>> next_status("active", "acknowledge")
'acknowledged'
>>> next_status("resolved", "acknowledge") is None
True
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec
import xxhash

AlertStatus = Literal["active", "acknowledged", "resolved", "dismissed"]
AlertAction = Literal["acknowledge", "resolve", "dismiss"]
AlertLevel = Literal["low", "medium", "high", "critical"]
AlertChange = Literal["new", "update", "escalate"]

LEVELS: Final[tuple[AlertLevel, ...]] = ("low", "medium", "high", "critical")
LEVEL_RANK: Final[dict[str, int]] = {"low": 1, "medium": 2, "high": 3, "critical": 4}
OPEN_STATUSES: Final = frozenset({"active", "acknowledged"})
TRANSITIONS: Final[dict[tuple[str, str], AlertStatus]] = {
    ("active", "acknowledge"): "acknowledged",
    ("active", "resolve"): "resolved",
    ("active", "dismiss"): "dismissed",
    ("acknowledged", "resolve"): "resolved",
    ("acknowledged", "dismiss"): "dismissed",
}
"""(from status, action) → to status; anything else is an illegal transition."""
RISK_BANDS: Final[tuple[tuple[str, float], ...]] = (
    ("low", 0.25), ("medium", 0.5), ("high", 0.75), ("critical", 1.01),
)  # fmt: skip
"""Risk score bands: a score below the bound falls in the band."""


def next_status(status: str, action: str) -> AlertStatus | None:
    """The status an action leads to, or None when the transition is not allowed."""
    return TRANSITIONS.get((status, action))


def risk_band(score: float) -> str:
    """The band of a risk score.

    >>> risk_band(0.1), risk_band(0.5), risk_band(1.0)
    ('low', 'high', 'critical')
    """
    for name, bound in RISK_BANDS:
        if score < bound:
            return name
    return "critical"


def alert_id(
    type_: str,
    symbol: str | None,
    accounts: tuple[str, ...],
    window_start: int,
    strategy: str | None = None,
) -> str:
    """Deterministic id: the same pattern start gives the same id after a restart."""
    key = f"{type_}\x1f{symbol or ''}\x1f{','.join(accounts)}\x1f{window_start}"
    if strategy is not None:
        key += f"\x1f{strategy}"
    return "al-" + xxhash.xxh3_64_hexdigest(key.encode("utf-8", "surrogatepass"))


class AlertNotFoundError(KeyError):
    """No alert with this id."""


class IllegalTransitionError(ValueError):
    """The action is not allowed from the alert's current status."""


class Alert(msgspec.Struct, kw_only=True):
    """One alert as detected (the store keeps status and history beside it)."""

    alert_id: str
    type: str
    level: AlertLevel
    risk_score: float
    symbol: str | None
    accounts: tuple[str, ...]
    window_start: int
    window_end: int
    evidence: dict[str, Any]
    """event_ids, measured values, thresholds and the detector's parameters."""
    strategy_id: str | None = None
    status: AlertStatus = "active"
    first_seen_ts: int = 0
    last_seen_ts: int = 0
    occurrences: int = 1
    change: AlertChange = "new"
    """What this emission is: a new alert, an update of an open one, or an escalation."""


class AlertHistoryEntry(msgspec.Struct, kw_only=True):
    """One append-only line of an alert's handling history."""

    alert_id: str
    ts: int
    actor: str
    action: str
    from_status: str | None
    to_status: str
    note: str | None = None


class ProfileRow(msgspec.Struct, kw_only=True):
    """An account's profile as stored (``profile`` holds the full JSON)."""

    account_id: str
    partition: int
    updated_ts: int
    orders: int
    cancels: int
    fills: int
    cancel_ratio: float | None
    order_to_trade: float | None
    median_order_size: float | None
    profile: dict[str, Any]


def alert_columns(alert: Alert) -> dict[str, Any]:
    """The stored columns of an alert (evidence and accounts as JSON text)."""
    return {
        "alert_id": alert.alert_id,
        "type": alert.type,
        "level": alert.level,
        "risk_score": alert.risk_score,
        "symbol": alert.symbol,
        "accounts": ",".join(alert.accounts),
        "strategy_id": alert.strategy_id,
        "window_start": alert.window_start,
        "window_end": alert.window_end,
        "first_seen_ts": alert.first_seen_ts,
        "last_seen_ts": alert.last_seen_ts,
        "occurrences": alert.occurrences,
        "evidence": msgspec.json.encode(alert.evidence).decode(),
    }
