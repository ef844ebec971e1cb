"""``/log_stream/report``: the post-run report's figures as JSON (the same structure the
HTML report renders) and ``/log_stream/report.html``, the self-contained page itself, so the
dashboard can link to a report of the current run."""

from __future__ import annotations

import math
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse

from tradelog.api.deps import Ctx, Window
from tradelog.reports import html
from tradelog.reports.builder import ReportParams, build_report

router = APIRouter(prefix="/log_stream", tags=["report"])

Capital = Annotated[
    float | None,
    Query(gt=0, allow_inf_nan=False, description="Capital base of returns (E = capital + PnL)"),
]
Interval = Annotated[
    float | None,
    Query(gt=0, allow_inf_nan=False, description="Equity sampling interval (s); default 1 s"),
]
Periods = Annotated[
    float | None,
    Query(gt=0, allow_inf_nan=False, description="Periods per year; default 24/7 calendar"),
]


def _clean(v: Any) -> Any:
    """Non-finite floats become null (JSON has no NaN)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    return v


def _build(
    ctx: Ctx,
    window: Window,
    capital: float | None,
    interval_s: float | None,
    periods_per_year: float | None,
) -> dict[str, Any]:
    try:
        params = ReportParams(
            start=window.start,
            end=window.end,
            strategies=(window.strategy,) if window.strategy else (),
            capital=capital if capital is not None else ctx.report_capital,
            interval_s=interval_s,
            periods_per_year=(
                periods_per_year if periods_per_year is not None else ctx.report_periods_per_year
            ),
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    report: dict[str, Any] = build_report(ctx.store, params, time.time_ns())
    return report


@router.get("/report")
def report(
    ctx: Ctx,
    window: Window,
    capital: Capital = None,
    interval_s: Interval = None,
    periods_per_year: Periods = None,
) -> dict[str, Any]:
    """Every figure of the post-run report: performance (quantstats definitions on
    returns of capital + PnL, parameters beside them; null with a reason when a figure
    cannot be computed), trades, execution quality, surveillance and data quality."""
    data: dict[str, Any] = _clean(_build(ctx, window, capital, interval_s, periods_per_year))
    return data


@router.get("/report.html", response_class=HTMLResponse)
def report_html(
    ctx: Ctx,
    window: Window,
    capital: Capital = None,
    interval_s: Interval = None,
    periods_per_year: Periods = None,
) -> HTMLResponse:
    """The same report as one self-contained HTML page (no script, nothing fetched)."""
    page = html.render(_build(ctx, window, capital, interval_s, periods_per_year))
    return HTMLResponse(page)
