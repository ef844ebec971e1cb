"""Live endpoints: WebSocket ``/log_stream/live``, ``POST /log_stream/events`` (ingest)
and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.websockets import WebSocketDisconnect

from tradelog.api.deps import Ctx
from tradelog.api.live import MAX_DROPS_BEFORE_DISCONNECT, Client, LiveFilter

router = APIRouter(tags=["live"])


def _csv_set(values: list[str] | None) -> frozenset[str]:
    out: set[str] = set()
    for v in values or []:
        out.update(x for x in v.split(",") if x)
    return frozenset(out)


@router.websocket("/log_stream/live")
async def live(
    websocket: WebSocket,
    kind: Annotated[list[str] | None, Query()] = None,
    symbol: Annotated[list[str] | None, Query()] = None,
    strategy: Annotated[list[str] | None, Query()] = None,
) -> None:
    """Committed events (filterable by kind, symbol, strategy; repeat or comma-separate),
    anomaly marks and a metrics snapshot every second, as JSON text messages."""
    hub = websocket.app.state.ctx.live
    await websocket.accept()
    if hub is None:
        await websocket.send_json({"type": "error", "error": "no live pipeline behind this API"})
        await websocket.close()
        return
    client = Client(LiveFilter(_csv_set(kind), _csv_set(symbol), _csv_set(strategy)))
    hub.clients.add(client)
    await websocket.send_json({"type": "hello", "filters": {
        "kind": sorted(client.flt.kinds), "symbol": sorted(client.flt.symbols),
        "strategy": sorted(client.flt.strategies)}})  # fmt: skip

    async def drain_incoming() -> None:
        while True:
            await websocket.receive_text()

    reader = asyncio.create_task(drain_incoming())
    try:
        while not reader.done():
            try:
                data = await asyncio.wait_for(client.queue.get(), timeout=1.0)
            except TimeoutError:
                continue
            if client.dropped > MAX_DROPS_BEFORE_DISCONNECT:
                await websocket.close(code=1008, reason="client too slow")
                break
            await websocket.send_text(data.decode())
            client.sent += 1
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.clients.discard(client)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await reader


@router.post("/log_stream/events", tags=["ingest"])
async def ingest(
    request: Request,
    ctx: Ctx,
    fmt: Annotated[str | None, Query(alias="format", description="Source format override")] = None,
    source: Annotated[str | None, Query(description="Name of an http source in the config")] = None,
) -> JSONResponse:
    """Ingest a JSON array or NDJSON (or any configured format). Answers after the batch
    is committed: accepted count, duplicates, and per-record errors by index. 400 for an
    unreadable body, 413 beyond the configured size, 503 (Retry-After) when the pipeline
    is saturated."""
    if ctx.ingest is None:
        raise HTTPException(404, "ingest is not enabled (no http source in the config)")
    limit = ctx.ingest.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
    body = bytearray()
    async for part in request.stream():
        body.extend(part)
        if len(body) > limit:
            raise HTTPException(413, f"body exceeds the limit of {limit} bytes")
    result = await ctx.ingest.ingest(
        bytes(body), request.headers.get("content-type", ""), fmt, source
    )
    headers = {"Retry-After": "1"} if result.status == 503 else None
    return JSONResponse(status_code=result.status, content=result.payload, headers=headers)


@router.get("/metrics", tags=["service"])
def metrics(ctx: Ctx) -> Response:
    """Prometheus text exposition."""
    if ctx.metrics is None:
        raise HTTPException(404, "metrics are not enabled")
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
