"""``/log_stream/quality_metrics`` and ``/log_stream/anomalies``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from tradelog.analytics.stats import summary
from tradelog.api.deps import Ctx, Window
from tradelog.api.export import Format, csv_response
from tradelog.api.routes_analysis import window_info
from tradelog.model.events import Severity
from tradelog.model.timefmt import ns_to_iso
from tradelog.storage.queries import quality as q

router = APIRouter(prefix="/log_stream", tags=["quality"])


@router.get("/quality_metrics")
def quality_metrics(ctx: Ctx, window: Window) -> dict[str, Any]:
    """Per source: what was read and what became of it (all time: lines = events + rejects
    + duplicates + ignored), and in the window: events, ingest lag (read time − event time),
    out-of-order events, the largest gaps, rejects by reason with raw examples."""
    stats = ctx.store.statistics()
    sources: dict[str, Any] = {}
    for name, counts in stats["sources"].items():
        lines = counts["lines_read"]
        sources[name] = {
            "all_time": counts,
            "reject_rate": counts["rejects"] / lines if lines else None,
            "duplicate_rate": counts["duplicates"] / lines if lines else None,
        }
    activity = q.source_activity(ctx.store, window)
    for r in activity.sources:
        entry = sources.setdefault(r["source"], {"all_time": None})
        entry["window"] = {
            "events": r["events"],
            "kinds": r["kinds"],
            "first_event_iso": ns_to_iso(r["first_ts"]) if r["first_ts"] is not None else None,
            "last_event_iso": ns_to_iso(r["last_ts"]) if r["last_ts"] is not None else None,
            "ingest_lag": summary(r["events"], r["lag_mean"], r["lag_q"], r["lag_max"], "ms"),
            "out_of_order": r["out_of_order"],
        }
    for g in activity.gaps:
        entry = sources.setdefault(g["source"], {"all_time": None})
        entry.setdefault("largest_gaps", []).append(
            {
                "gap_s": g["gap_s"],
                "from_iso": ns_to_iso(g["gap_start_ns"]),
                "to_iso": ns_to_iso(g["gap_end_ns"]),
            }
        )
    rejects: dict[str, dict[str, Any]] = {}
    for r in q.rejects(ctx.store, window):
        key = f"{r['source']}:{r['reason']}"
        entry = rejects.setdefault(
            key, {"source": r["source"], "reason": r["reason"], "count": r["n"], "examples": []}
        )
        entry["examples"].append(
            {
                "detail": r["detail"],
                "raw": r["raw"],
                "src_ref": r["src_ref"],
                "src_offset": r["src_offset"],
            }
        )
    return {
        "window": window_info(window),
        "sources": sources,
        "rejects": list(rejects.values()),
        "anomalies_by_type": stats["anomalies_by_type"],
    }


@router.get("/anomalies", response_model=None)
def anomalies(
    ctx: Ctx,
    window: Window,
    type: Annotated[list[str] | None, Query(description="Mark types")] = None,
    severity: Annotated[Severity | None, Query(description="Minimum severity")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 500,
    format: Annotated[Format, Query()] = "json",
) -> dict[str, Any] | Response:
    """Anomaly marks in the window (event time), newest first, with counts by type and
    severity; each mark has its value and the threshold it crossed."""
    p = ctx.store.sql.p
    extra: list[str] = []
    params: list[Any] = []
    if type:
        extra.append(f"type IN ({', '.join(p for _ in type)})")
        params.extend(type)
    if severity is not None:
        ranks = ["low", "medium", "high", "critical"]
        allowed = ranks[ranks.index(severity.value) :]
        extra.append(f"severity IN ({', '.join(p for _ in allowed)})")
        params.extend(allowed)
    rows = q.anomaly_rows(ctx.store, window, extra, params, limit)
    if format == "csv":
        return csv_response(rows, "anomalies", q.ANOMALY_COLUMNS)
    for r in rows:
        r["ts_iso"] = ns_to_iso(r["ts"])
    counts = q.anomaly_counts(ctx.store, window, extra, params)
    return {
        "window": window_info(window),
        "counts": counts,
        "total": sum(c["n"] for c in counts),
        "marks": rows,
    }
