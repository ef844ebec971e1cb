"""The alert book: turns detector candidates into alerts, so that the same pattern
continuing updates its open alert instead of opening new ones.

Alerts are keyed by (type, symbol, accounts, strategy). A candidate whose pattern was last seen at
most ``idle_s`` of event time ago updates that alert (window end, occurrences, the highest
level and risk score, the latest evidence plus the union of event ids; the first
occurrence's evidence is kept under ``first_occurrence``, and for detectors with several
rules the latest evidence of each rule under ``by_rule``); otherwise it opens a new alert
whose id is derived from type, symbol, accounts and window start (so a replay after a
restart gives the same ids). The record and its lifecycle live in ``model.alerts``.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from tradelog.model.alerts import LEVEL_RANK, Alert, AlertChange, alert_id
from tradelog.surveillance.base import NS_PER_S, Candidate

MAX_ALERT_IDS: Final = 200
"""Event ids kept in an alert's evidence (union over its occurrences)."""
MAX_OPEN: Final = 10_000
_MERGED: Final = frozenset({"first_occurrence", "occurrences", "by_rule", "parameters"})


class AlertBookSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    idle_s: float = 900.0
    """A pattern quiet for longer than this (event time) opens a new alert next time."""


class AlertBookState(msgspec.Struct, kw_only=True):
    open: dict[str, Alert] = msgspec.field(default_factory=dict)


def _key(c: Candidate) -> str:
    return f"{c.type}\x1f{c.symbol or ''}\x1f{','.join(c.accounts)}\x1f{c.strategy_id or ''}"


class AlertBook:
    def __init__(self, settings: AlertBookSettings | None = None) -> None:
        self.s = settings or AlertBookSettings()
        self._idle = int(self.s.idle_s * NS_PER_S)

    def apply(self, c: Candidate, state: AlertBookState) -> Alert:
        """The new or updated alert for a candidate."""
        key = _key(c)
        current = state.open.get(key)
        if current is not None and c.window_end - current.last_seen_ts <= self._idle:
            return self._update(current, c)
        alert = Alert(
            alert_id=alert_id(c.type, c.symbol, c.accounts, c.window_start, c.strategy_id),
            type=c.type,
            level=c.level,
            risk_score=c.risk_score,
            symbol=c.symbol,
            accounts=c.accounts,
            window_start=c.window_start,
            window_end=c.window_end,
            evidence=dict(c.evidence),
            strategy_id=c.strategy_id,
            first_seen_ts=c.window_end,
            last_seen_ts=c.window_end,
        )
        state.open[key] = alert
        if len(state.open) > MAX_OPEN:
            self.expire(state, c.window_end)
        return alert

    def _update(self, a: Alert, c: Candidate) -> Alert:
        change: AlertChange = "update"
        if LEVEL_RANK[c.level] > LEVEL_RANK[a.level]:
            a.level = c.level
            change = "escalate"
        a.risk_score = max(a.risk_score, c.risk_score)
        a.window_start = min(a.window_start, c.window_start)
        a.window_end = max(a.window_end, c.window_end)
        a.last_seen_ts = max(a.last_seen_ts, c.window_end)
        a.occurrences += 1
        ids: list[str] = list(a.evidence.get("event_ids", []))
        seen = set(ids)
        for i in c.evidence.get("event_ids", []):
            if i not in seen and len(ids) < MAX_ALERT_IDS:
                ids.append(i)
                seen.add(i)
        first: Any = a.evidence.get("first_occurrence")
        if first is None:
            first = {k: v for k, v in a.evidence.items() if k not in _MERGED}
        by_rule: dict[str, Any] = dict(a.evidence.get("by_rule") or {})
        # the first emission's evidence is still the candidate's own (no by_rule yet)
        for ev in (c.evidence,) if "by_rule" in a.evidence else (a.evidence, c.evidence):
            rule = ev.get("rule")
            if isinstance(rule, str):
                by_rule[rule] = {k: v for k, v in ev.items() if k not in _MERGED}
        a.evidence = {**c.evidence, "event_ids": ids, "first_occurrence": first,
                      "occurrences": a.occurrences}  # fmt: skip
        if by_rule:
            a.evidence["by_rule"] = by_rule
        a.change = change
        return a

    def expire(self, state: AlertBookState, now_ts: int) -> None:
        """Forgets open alerts whose pattern has been quiet longer than ``idle_s``."""
        stale = [k for k, a in state.open.items() if now_ts - a.last_seen_ts > self._idle]
        for k in stale:
            del state.open[k]
        if len(state.open) > MAX_OPEN:  # still too many: forget the quietest
            by_age = sorted(state.open, key=lambda k: state.open[k].last_seen_ts)
            for k in by_age[: len(state.open) - MAX_OPEN]:
                del state.open[k]
