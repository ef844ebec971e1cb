"""FastAPI application factory. State lives in ``app.state`` and reaches handlers through
``Annotated`` dependencies; nothing is module-global."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tradelog.analytics.rules import PairRule
from tradelog.api import (
    routes_alerts,
    routes_analysis,
    routes_live,
    routes_market,
    routes_quality,
    routes_report,
    routes_stream,
)
from tradelog.api.auth import BearerAuth, Token
from tradelog.api.deps import ApiContext, Ingestor
from tradelog.api.live import LiveHub
from tradelog.api.metrics import Metrics
from tradelog.dashboard.routes import router as dashboard_router
from tradelog.storage.base import Store


def create_app(
    store: Store,
    title: str = "tradelog",
    live: LiveHub | None = None,
    ingest: Ingestor | None = None,
    metrics: Metrics | None = None,
    snapshot: Callable[[], dict[str, Any]] | None = None,
    push_interval_s: float = 1.0,
    tokens: list[Token] | None = None,
    pair_rules: Sequence[PairRule] = (),
    report_capital: float | None = None,
    report_periods_per_year: float | None = None,
) -> FastAPI:
    """The API over a store (``serve``), or over the live pipeline's store (``run``)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if live is not None:
            live.attach(asyncio.get_running_loop())
            task = asyncio.create_task(_push_metrics(live, snapshot, push_interval_s))
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        lifespan=lifespan,
        title=title,
        version="0.1.0",
        description=(
            "Execution-quality analytics, PnL and surveillance over trading logs. Times are "
            "UTC; `_ns` fields are nanoseconds since the epoch, `_iso` their ISO-8601 form. "
            "Relative windows (`minutes`, `hours`) end at the latest event time in the store."
        ),
    )
    app.state.tokens = list(tokens or [])  # alert actions record the token's name
    app.state.ctx = ApiContext(
        store=store,
        live=live,
        ingest=ingest,
        metrics=metrics,
        snapshot=snapshot,
        pair_rules=tuple(pair_rules),
        report_capital=report_capital,
        report_periods_per_year=report_periods_per_year,
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "param": ".".join(str(p) for p in err["loc"][1:]) or err["loc"][0],
                "problem": err["msg"],
            }
            for err in exc.errors()
        ]
        message = "; ".join(f"{p['param']}: {p['problem']}" for p in problems)
        return JSONResponse(status_code=422, content={"error": message, "details": problems})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        content: dict[str, Any] = {"error": exc.detail}
        return JSONResponse(status_code=exc.status_code, content=content, headers=exc.headers)

    @app.get("/health", tags=["service"])
    def health() -> dict[str, Any]:
        """Liveness and the store behind the API."""
        ctx: ApiContext = app.state.ctx
        return {"status": "ok", "store": ctx.store.url, "latest_event_ns": ctx.store.latest_ts()}

    if tokens:
        app.add_middleware(BearerAuth, tokens=tokens)
    app.include_router(routes_stream.router)
    app.include_router(routes_analysis.router)
    app.include_router(routes_quality.router)
    app.include_router(routes_report.router)
    app.include_router(routes_live.router)
    app.include_router(routes_alerts.router)
    app.include_router(routes_market.router)
    app.include_router(dashboard_router)
    return app


async def _push_metrics(
    hub: LiveHub, snapshot: Callable[[], dict[str, Any]] | None, every_s: float
) -> None:
    """A metrics snapshot to every live client each ``every_s`` seconds."""
    while True:
        await asyncio.sleep(every_s)
        if hub.clients:
            body = snapshot() if snapshot is not None else {}
            hub.broadcast({"type": "metrics", "sent_ns": time.time_ns(), **body})
