"""Surveillance alerts and account profiles.

``GET /log_stream/alerts`` (filters, window by overlap), ``/alerts/summary`` (by level, type,
risk band, status), ``/alerts/export`` (compliance export with evidence and handling history,
CSV or JSON), ``/alerts/{id}`` (with its evidence events and history), ``POST
/alerts/{id}/acknowledge|resolve|dismiss`` (body ``{"actor"?, "note"}``; with tokens on the
admin role is needed — the auth middleware guards every POST — and the actor is the token's
name), ``GET /log_stream/profiles/{account}``.
"""

from __future__ import annotations

import csv
import hmac
import io
import json
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field

from tradelog.api.auth import Token
from tradelog.api.deps import Ctx, Window
from tradelog.api.routes_analysis import window_info
from tradelog.model.alerts import (
    LEVELS,
    AlertNotFoundError,
    IllegalTransitionError,
    risk_band,
)
from tradelog.model.timefmt import ns_to_iso
from tradelog.storage.base import AlertFilter, EventFilter

router = APIRouter(prefix="/log_stream", tags=["surveillance"])

Status = Literal["active", "acknowledged", "resolved", "dismissed"]
Level = Literal["low", "medium", "high", "critical"]
Action = Literal["acknowledge", "resolve", "dismiss"]
EXPORT_LIMIT = 1_000_000
EXPORT_COLUMNS = (
    "alert_id", "type", "level", "risk_score", "status", "symbol", "accounts", "strategy_id",
    "window_start", "window_start_iso", "window_end", "window_end_iso", "first_seen_ts",
    "last_seen_ts", "occurrences", "evidence", "history",
)  # fmt: skip


class TransitionBody(BaseModel):
    note: str = Field(min_length=1, max_length=10_000, description="Why (kept in the history)")
    actor: str | None = Field(
        default=None, max_length=200, description="Who (ignored when tokens are on)"
    )


def _filter(
    window: EventFilter,
    status: str | None,
    type_: str | None,
    level: str | None,
) -> AlertFilter:
    return AlertFilter(
        status=status,
        type=type_,
        level=level,
        symbol=window.symbol,
        account=window.account,
        strategy=window.strategy,
        start=window.start,
        end=window.end,
    )


def _decorate(row: dict[str, Any]) -> dict[str, Any]:
    row["risk_band"] = risk_band(float(row["risk_score"]))
    for key in ("window_start", "window_end", "first_seen_ts", "last_seen_ts"):
        value = row.get(key)
        row[f"{key}_iso"] = ns_to_iso(value) if value is not None else None
    return row


@router.get("/alerts")
def list_alerts(
    ctx: Ctx,
    window: Window,
    status: Annotated[Status | None, Query()] = None,
    type: Annotated[str | None, Query(description="Alert type, e.g. wash_trade")] = None,
    level: Annotated[Level | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 500,
) -> dict[str, Any]:
    """Alerts whose window overlaps the time window, newest activity first."""
    rows = ctx.store.alerts(_filter(window, status, type, level), limit)
    return {
        "window": window_info(window),
        "total": len(rows),
        "alerts": [_decorate(r) for r in rows],
    }


@router.get("/alerts/summary")
def alerts_summary(
    ctx: Ctx,
    window: Window,
    status: Annotated[Status | None, Query()] = None,
) -> dict[str, Any]:
    """Counts by level, type, risk band (score < 0.25 low, < 0.5 medium, < 0.75 high, else
    critical) and status."""
    rows = ctx.store.alerts(_filter(window, status, None, None), EXPORT_LIMIT)
    by_level: dict[str, int] = dict.fromkeys(LEVELS, 0)
    by_band: dict[str, int] = dict.fromkeys(LEVELS, 0)
    by_type: dict[str, int] = {}
    by_status: dict[str, int] = {}
    for r in rows:
        by_level[r["level"]] = by_level.get(r["level"], 0) + 1
        band = risk_band(float(r["risk_score"]))
        by_band[band] += 1
        by_type[r["type"]] = by_type.get(r["type"], 0) + 1
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    return {
        "window": window_info(window),
        "total": len(rows),
        "by_level": by_level,
        "by_type": dict(sorted(by_type.items())),
        "by_risk_band": by_band,
        "by_status": by_status,
    }


@router.get("/alerts/export", response_model=None)
def export_alerts(
    ctx: Ctx,
    window: Window,
    format: Annotated[Literal["csv", "json"], Query()] = "json",
    status: Annotated[Status | None, Query()] = None,
) -> Response | dict[str, Any]:
    """Compliance export: the alerts of the period with their evidence and full handling
    history (who, when, action, from → to, note)."""
    rows = ctx.store.alerts(_filter(window, status, None, None), EXPORT_LIMIT)
    hist = ctx.store.alert_history([r["alert_id"] for r in rows])
    for r in rows:
        _decorate(r)
        r["history"] = hist.get(r["alert_id"], [])
    if format == "json":
        return {"window": window_info(window), "total": len(rows), "alerts": rows}
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS, extrasaction="ignore",
                            lineterminator="\n")  # fmt: skip
    writer.writeheader()
    for r in rows:
        flat = dict(r)
        flat["accounts"] = ",".join(r["accounts"])
        flat["evidence"] = json.dumps(r["evidence"], sort_keys=True)
        flat["history"] = json.dumps(r["history"])
        writer.writerow({k: ("" if v is None else v) for k, v in flat.items()})
    return Response(
        buf.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="alerts.csv"'},
    )


@router.get("/alerts/{alert_id}")
def get_alert(ctx: Ctx, alert_id: Annotated[str, Path()]) -> dict[str, Any]:
    """One alert, its handling history and the stored events its evidence names."""
    found = ctx.store.alert(alert_id)
    if found is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    ids = [str(i) for i in found["evidence"].get("event_ids", [])]
    events = ctx.store.events_by_ids(ids)
    present = {e["event_id"] for e in events}
    found = _decorate(found)
    found["evidence_events"] = events
    found["evidence_events_missing"] = [i for i in ids if i not in present]
    return found


def _actor(request: Request, body: TransitionBody) -> str:
    """The token's name when tokens are on (the middleware already checked the role);
    otherwise the actor the body names."""
    tokens: list[Token] = getattr(request.app.state, "tokens", None) or []
    header = request.headers.get("authorization", "")
    if tokens and header.lower().startswith("bearer "):
        given = header[7:].strip().encode()
        for t in tokens:
            if hmac.compare_digest(t.token.encode(), given):
                return t.name or f"{t.role}-token"
    return body.actor or "anonymous"


@router.post("/alerts/{alert_id}/{action}")
def transition(
    ctx: Ctx,
    request: Request,
    alert_id: Annotated[str, Path()],
    action: Annotated[Action, Path()],
    body: TransitionBody,
) -> dict[str, Any]:
    """active → acknowledged → resolved | dismissed (active may be resolved or dismissed
    directly); 404 for an unknown alert, 409 for a transition its status does not allow."""
    try:
        found = ctx.store.alert_transition(
            alert_id, action, _actor(request, body), body.note, time.time_ns()
        )
    except AlertNotFoundError:
        raise HTTPException(404, f"no alert {alert_id!r}") from None
    except IllegalTransitionError as exc:
        raise HTTPException(409, str(exc)) from None
    return _decorate(found)


@router.get("/profiles/{account}")
def profile(ctx: Ctx, account: Annotated[str, Path()]) -> dict[str, Any]:
    """An account's usual behaviour as the surveillance baseline sees it (one profile per
    partition that saw the account)."""
    rows = ctx.store.account_profiles(account)
    if not rows:
        raise HTTPException(404, f"no profile for account {account!r}")
    for r in rows:
        r["updated_iso"] = ns_to_iso(r["updated_ts"]) if r.get("updated_ts") else None
    return {"account_id": account, "partitions": rows, "profile": rows[0]["profile"]
            if len(rows) == 1 else None,
            "profile_note": None if len(rows) == 1 else
            "the account trades in several partitions: see each partition's profile"}  # fmt: skip
