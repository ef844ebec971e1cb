"""The live dashboard: ``GET /`` (one HTML page) and ``/static`` (its JS modules, CSS and
the vendored uPlot), all shipped inside the package so nothing loads from the internet.
The page reads the same public API as any client (REST polling + ``/log_stream/live``)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC_DIR: Final = Path(__file__).parent / "static"

router = APIRouter(tags=["dashboard"])
router.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index() -> HTMLResponse:
    """The dashboard page (never cached, so an upgrade shows at the next reload)."""
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers={"cache-control": "no-cache"})
