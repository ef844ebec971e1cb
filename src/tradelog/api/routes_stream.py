"""``/log_stream``: statistics, recent events, orders."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from tradelog.analytics.orders import order_view
from tradelog.api.deps import Ctx, Window
from tradelog.model.events import EventKind
from tradelog.model.timefmt import ns_to_iso

router = APIRouter(prefix="/log_stream", tags=["log_stream"])


@router.get("/statistics")
def statistics(ctx: Ctx) -> dict[str, Any]:
    """Counts by source with the accounting identity
    ``lines_read = events + rejects + duplicates + ignored`` (``reconciled``), events by
    kind, rejects by reason, anomalies by type."""
    stats = ctx.store.statistics()
    for key in ("first_event_ns", "last_event_ns"):
        value = stats.get(key)
        stats[key.replace("_ns", "_iso")] = ns_to_iso(value) if value is not None else None
    totals = {"lines_read": 0, "events": 0, "rejects": 0, "duplicates": 0, "ignored": 0}
    for src in stats["sources"].values():
        for k in totals:
            totals[k] += src[k]
    totals["reconciled"] = totals["lines_read"] == (
        totals["events"] + totals["rejects"] + totals["duplicates"] + totals["ignored"]
    )
    stats["totals"] = totals
    if ctx.snapshot is not None:
        stats["live"] = ctx.snapshot()
    return stats


@router.get("/recent")
def recent(
    ctx: Ctx,
    window: Window,
    kind: Annotated[list[EventKind] | None, Query(description="Only these kinds")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> dict[str, Any]:
    """The latest events (newest first). Without a window: the last 5 minutes of event time."""
    flt = window
    if flt.start is None and flt.end is None:
        latest = ctx.store.latest_ts()
        if latest is not None:
            flt = replace(flt, start=latest + 1 - 5 * 60_000_000_000, end=latest + 1)
    if kind:
        flt = replace(flt, kinds=tuple(k.value for k in kind))
    rows = ctx.store.recent(flt, limit)
    for row in rows:
        row["ts_iso"] = ns_to_iso(row["ts"])
    return {
        "from_ns": flt.start,
        "to_ns": flt.end,
        "count": len(rows),
        "events": rows,
    }


@router.get("/orders/{order_id}")
def order(ctx: Ctx, order_id: str) -> dict[str, Any]:
    """One order: status, quantities, latencies, arrival mid, slippage and its timeline.
    Any id of the order works (client id, a replace/cancel id, the venue's id)."""
    view = order_view(ctx.store.order_events(order_id))
    if view is None:
        raise HTTPException(404, f"unknown order {order_id!r}")
    return view
