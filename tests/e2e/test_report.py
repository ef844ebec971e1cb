"""``tradelog report`` end to end: a generated engine log through the real pipeline into a
DuckDB store, the report written by the console script, then opened from disk in headless
Chromium with every network request refused: every chart must have rendered, the console
must be clean, and nothing may have been fetched. CSV and PDF outputs are checked too."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tradelog.api.app import create_app
from tradelog.storage.duckdb_store import DuckDBStore

pytestmark = pytest.mark.e2e

TRADELOG = Path(sys.executable).parent / "tradelog"
NS = 1_000_000_000
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHARTS = ("equity", "underwater", "latency", "slippage", "pnl_by_hour", "returns_heatmap")


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TRADELOG), *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def generate_log(path: Path, days: int = 3, seed: int = 7) -> int:
    """A deterministic engine log (JSON lines) over ``days`` days: quotes every 10 minutes
    for three symbols, and two strategies trading them (new, ack, fill or cancel), so the
    report has an equity curve with drawdowns, round trips, latency and slippage."""
    rng = random.Random(seed)
    t0 = 1_740_960_000 * NS  # 2025-03-03 00:00:00 UTC
    mids = {"AAPL": 200.0, "MSFT": 400.0, "NVDA": 120.0}
    pos: dict[tuple[str, str], int] = {}
    lines: list[str] = []
    n = 0

    def emit(ts: int, **f: object) -> None:
        nonlocal n
        n += 1
        f = {"ts": iso(ts), "event_id": f"G{n:07d}", **f}
        lines.append(json.dumps(f) + "\n")

    for step in range(days * 144):
        ts = t0 + step * 600 * NS
        for k, sym in enumerate(mids):
            mids[sym] *= 1 + rng.gauss(0, 0.002)
            half = round(mids[sym] * 0.0002, 4)
            emit(
                ts + k * NS,
                kind="quote",
                symbol=sym,
                venue="XNAS",
                bid=round(mids[sym] - half, 4),
                ask=round(mids[sym] + half, 4),
                bid_size=500,
                ask_size=500,
            )
        for j, strat in enumerate(("MM-1", "TK-1")):
            sym = rng.choice(list(mids))
            held = pos.get((strat, sym), 0)
            side = "sell" if held > 0 else "buy"
            qty = 100
            oid = f"{strat}-{step}"
            t = ts + (10 + j) * NS
            px = round(mids[sym], 2)
            common = {
                "order_id": oid,
                "strategy_id": strat,
                "account_id": "ACC-1",
                "symbol": sym,
                "venue": rng.choice(("XNAS", "ARCX")),
                "side": side,
            }
            emit(t, kind="order_new", qty=qty, price=px, **common)
            emit(t + rng.randint(200_000, 3_000_000), kind="order_ack", order_id=oid)
            if rng.random() < 0.8:
                last_px = round(px * (1 + rng.gauss(0, 0.0003)), 2)
                emit(
                    t + rng.randint(4_000_000, 40_000_000),
                    kind="fill",
                    order_id=oid,
                    exec_id=f"X{oid}",
                    last_qty=qty,
                    last_px=last_px,
                    cum_qty=qty,
                    leaves_qty=0,
                    liquidity=rng.choice(("maker", "taker")),
                    fee=round(qty * last_px * 0.00002, 4),
                )
                pos[(strat, sym)] = held + (qty if side == "buy" else -qty)
            else:
                emit(t + 50_000_000, kind="order_cancel_request", order_id=oid)
                emit(t + 52_000_000, kind="order_cancelled", order_id=oid)
    lines.sort(key=lambda line: json.loads(line)["ts"])
    path.write_text("".join(lines), encoding="utf-8")
    return n


def iso(ns: int) -> str:
    s, frac = divmod(ns, NS)
    return datetime.fromtimestamp(s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("report")
    url = f"duckdb:///{d}/s.duckdb"
    generate_log(d / "engine.jsonl")
    res = _run("replay", "-q", "--format", "jsonl", "--store", url, str(d / "engine.jsonl"), cwd=d)
    assert res.returncode == 0, res.stderr
    res = _run(
        "report",
        "--store",
        url,
        "--capital",
        "100000",
        "-o",
        str(d / "report.html"),
        "--csv",
        str(d / "csv"),
        "--pdf",
        str(d / "report.pdf"),
        cwd=d,
    )
    assert res.returncode == 0, res.stderr
    return d


def test_html_is_self_contained(built: Path) -> None:
    html = (built / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html
    for needle in ("http://", "https://", "//cdn", "@import", "url("):
        for line in html.splitlines():
            if needle in line:
                assert "http://www.w3.org/2000/svg" in line, line[:200]
    for section in ("performance", "trades", "execution", "surveillance", "quality"):
        assert f'id="{section}"' in html
    assert "positive = cost" in html
    assert "periods_per_year" in html


def test_csv_and_pdf(built: Path) -> None:
    assert (built / "report.pdf").read_bytes()[:4] == b"%PDF"
    folder = built / "csv"
    for name in (
        "performance",
        "equity_curve",
        "latency",
        "slippage",
        "fill_rates",
        "round_trips",
        "sources_all_time",
    ):
        with (folder / f"{name}.csv").open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert rows, name
    with (folder / "performance.csv").open(encoding="utf-8") as fh:
        perf = {r["strategy"]: r for r in csv.DictReader(fh)}
    assert float(perf["(all)"]["capital"]) == 100000.0
    assert perf["(all)"]["sharpe"] != ""
    with (folder / "sources_all_time.csv").open(encoding="utf-8") as fh:
        sources = list(csv.DictReader(fh))
    assert {r["source"] for r in sources} == {"jsonl"}
    assert all(r["reconciled"] == "True" for r in sources)


def test_opens_offline_in_chromium(built: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("no /usr/bin/chromium")
    requested: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})

            def route(r: object) -> None:
                req = r.request  # type: ignore[attr-defined]
                if req.url.startswith("file://"):
                    r.continue_()  # type: ignore[attr-defined]
                else:
                    requested.append(req.url)
                    r.abort()  # type: ignore[attr-defined]

            page.route("**/*", route)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto((built / "report.html").as_uri(), wait_until="load")
            for name in CHARTS:
                charts = page.locator(f'svg.chart[data-chart="{name}"]')
                assert charts.count() >= 1, name
                first = charts.first
                drawn = first.locator("polyline, polygon, rect").count()
                assert drawn > 0, f"chart {name} has no marks"
                box = first.bounding_box()
                assert box is not None and box["width"] > 100 and box["height"] > 50, name
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()
    assert requested == []
    assert errors == []


def test_api_serves_the_same_figures(built: Path) -> None:
    store = DuckDBStore(str(built / "s.duckdb"), read_only=True)
    try:
        with TestClient(create_app(store)) as client:
            resp = client.get("/log_stream/report", params={"capital": 100000})
            assert resp.status_code == 200, resp.text
            body = resp.json()
            page = client.get("/log_stream/report.html", params={"strategy": "MM-1"})
            bad = client.get("/log_stream/report", params={"capital": -1})
    finally:
        store.close()
    with (built / "csv" / "performance.csv").open(encoding="utf-8") as fh:
        cli_perf = {r["strategy"]: r for r in csv.DictReader(fh)}
    metrics = body["performance"]["overall"]["stats"]["metrics"]
    for key in ("sharpe", "sortino", "max_drawdown", "calmar", "var", "cvar"):
        assert metrics[key] == pytest.approx(float(cli_perf["(all)"][key]), rel=1e-12), key
    assert body["performance"]["parameters"]["capital"] == 100000
    assert set(body) >= {"performance", "trades", "execution", "surveillance", "data_quality"}
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "strategies: MM-1" in page.text and 'data-chart="equity"' in page.text
    assert bad.status_code == 422
