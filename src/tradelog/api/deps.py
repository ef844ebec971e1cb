"""Request-scoped access to the application context, and the common query parameters
(time window and filters) every analysis takes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends, HTTPException, Query, Request

from tradelog.analytics.rules import PairRule
from tradelog.api.live import LiveHub
from tradelog.api.metrics import Metrics
from tradelog.model.timefmt import parse_iso_ns
from tradelog.storage.base import EventFilter, Store

NS_PER_MINUTE = 60_000_000_000
MIN_NS = -(2**63)


@dataclass
class IngestResult:
    status: int
    payload: dict[str, Any]


class Ingestor(Protocol):
    """What ``POST /log_stream/events`` hands the body to (wired by the composition root)."""

    max_body_bytes: int

    async def ingest(
        self, body: bytes, content_type: str, fmt: str | None, source: str | None
    ) -> IngestResult: ...


@dataclass
class ApiContext:
    store: Store
    live: LiveHub | None = None
    ingest: Ingestor | None = None
    metrics: Metrics | None = None
    snapshot: Callable[[], dict[str, Any]] | None = None
    """Live state for /statistics and the metrics push (sources, queues, connections)."""
    pair_rules: Sequence[PairRule] = ()
    """Configured rule alerts on pair analytics (``/log_stream/pairs``)."""
    report_capital: float | None = None
    """Default capital base of ``/log_stream/report`` (config ``report.capital``)."""
    report_periods_per_year: float | None = None


def get_ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(get_ctx)]


def _parse_time(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_iso_ns(value)
    except ValueError as exc:
        raise HTTPException(422, f"{name}: {exc}") from None


def window_filter(
    ctx: Ctx,
    from_: Annotated[
        str | None, Query(alias="from", description="ISO-8601 start (inclusive), UTC if no offset")
    ] = None,
    to: Annotated[str | None, Query(description="ISO-8601 end (exclusive)")] = None,
    minutes: Annotated[
        float | None,
        Query(gt=0, allow_inf_nan=False, description="Window length ending at the latest event"),
    ] = None,
    hours: Annotated[
        float | None, Query(gt=0, allow_inf_nan=False, description="Window length in hours")
    ] = None,
    symbol: Annotated[str | None, Query()] = None,
    venue: Annotated[str | None, Query()] = None,
    strategy: Annotated[str | None, Query()] = None,
    account: Annotated[str | None, Query()] = None,
) -> EventFilter:
    """``from``/``to`` or a relative window (``minutes``/``hours``) ending at the latest
    event time in the store (so replayed history answers like live data), plus filters."""
    start = _parse_time("from", from_)
    end = _parse_time("to", to)
    if (minutes is not None or hours is not None) and start is not None:
        raise HTTPException(422, "give either from/to or minutes/hours, not both")
    if minutes is not None and hours is not None:
        raise HTTPException(422, "give minutes or hours, not both")
    length = minutes if minutes is not None else (hours * 60 if hours is not None else None)
    if length is not None:
        if end is None:  # ends just after the latest event; an explicit `to` stays exclusive
            latest = ctx.store.latest_ts()
            if latest is not None:
                end = latest + 1
        if end is not None:
            span = length * NS_PER_MINUTE  # may overflow to inf for absurd lengths
            # a window longer than the representable past means "everything"
            start = MIN_NS if span >= end - MIN_NS else end - int(span)
    if start is not None and end is not None and start >= end:
        raise HTTPException(422, "from must be before to")
    return EventFilter(
        start=start, end=end, symbol=symbol, venue=venue, strategy=strategy, account=account
    )


Window = Annotated[EventFilter, Depends(window_filter)]
