"""Reference data from config: venues (trading sessions, time zone), accounts and their
beneficial owners, strategies."""

from __future__ import annotations

from datetime import time
from typing import Literal

import msgspec


class VenueInfo(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A venue's session in its own time zone (``calendar = "24/7"`` for crypto)."""

    time_zone: str = "UTC"
    open: str = "00:00"
    close: str = "24:00"
    calendar: Literal["weekdays", "24/7"] = "weekdays"

    def session_minutes(self) -> tuple[int, int]:
        """(open, close) as minutes after local midnight; close may be 1440."""
        return _minutes(self.open, "open"), _minutes(self.close, "close")


def _minutes(text: str, what: str) -> int:
    if text == "24:00":
        return 1440
    try:
        t = time.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"venue {what} must be HH:MM; was {text!r}") from exc
    return t.hour * 60 + t.minute


class AccountInfo(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    owner: str | None = None
    """Beneficial owner: accounts with the same owner are one party for surveillance."""
    description: str | None = None


class StrategyInfo(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    description: str | None = None
    capital: float | None = None


class ReferenceData(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    venues: dict[str, VenueInfo] = {}
    accounts: dict[str, AccountInfo] = {}
    strategies: dict[str, StrategyInfo] = {}

    def owners(self) -> dict[str, str]:
        """account → owner, with accounts that name no owner being their own owner."""
        return {acc: (info.owner or acc) for acc, info in self.accounts.items()}
