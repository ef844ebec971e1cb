"""The dashboard in headless Chromium (Debian's, through Playwright) over ``tradelog run``
while a writer thread appends engine log lines: the page loads clean (no console errors, no
failed requests), KPIs and tape move while data flows, a filter narrows the tape, an order's
timeline opens on click, alert actions reach the API. Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import sync_playwright

from tests.e2e.test_run_crash import free_port, tradelog
from tradelog.api.app import create_app
from tradelog.app import open_store
from tradelog.dashboard.routes import STATIC_DIR

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
T0_NS = 1_741_010_400_000_000_000  # 2025-03-03T14:00:00Z, event time of the first line
SYMBOLS = {"AAPL": 227.5, "MSFT": 401.2, "NVDA": 118.3}
VENUES = ("XNAS", "ARCX")
STRATEGIES = (("MM-1", "ACC-01"), ("TK-1", "ACC-02"))


def iso(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


@dataclass
class Market:
    """A deterministic little market: quotes, public trades and two strategies' orders with
    acks, fills (maker/taker, fees), cancels, rejects and the odd slow ack (> 1 s)."""

    seed: int = 7
    step: int = 0
    n_orders: int = 0
    rng: random.Random = field(init=False)
    mids: dict[str, float] = field(default_factory=lambda: dict(SYMBOLS))

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def lines(self, steps: int) -> list[str]:
        out: list[dict[str, Any]] = []
        for _ in range(steps):
            self.step += 1
            ts = T0_NS + self.step * 100_000_000  # 100 ms of event time per step
            for sym in SYMBOLS:
                self.mids[sym] *= 1 + self.rng.gauss(0, 0.0004)
            # NVDA follows AAPL loosely so the pair panel has something to show
            self.mids["NVDA"] = 0.6 * self.mids["NVDA"] + 0.4 * self.mids["AAPL"] * 0.52
            for sym, mid in self.mids.items():
                venue = VENUES[self.step % 2]
                half = mid * 0.0001 * (1 + self.rng.random())
                out.append({"ts": iso(ts), "kind": "quote", "symbol": sym, "venue": venue,
                            "bid": round(mid - half, 4), "ask": round(mid + half, 4),
                            "bid_size": 100 * self.rng.randint(1, 40),
                            "ask_size": 100 * self.rng.randint(1, 40)})  # fmt: skip
                out.append({"ts": iso(ts + 1000), "kind": "market_trade", "symbol": sym,
                            "venue": venue, "price": round(mid + self.rng.gauss(0, half), 4),
                            "qty": 10 * self.rng.randint(1, 50),
                            "side": self.rng.choice(("buy", "sell"))})  # fmt: skip
            if self.step % 2 == 0:
                out.extend(self._order(ts + 5000))
        out.sort(key=lambda e: e["ts"])
        return [json.dumps(e) for e in out]

    def _order(self, ts: int) -> list[dict[str, Any]]:
        self.n_orders += 1
        r = self.rng
        oid = f"ORD-{self.n_orders:06d}"
        strategy, account = STRATEGIES[self.n_orders % 2]
        sym = r.choice(list(SYMBOLS))
        venue = r.choice(VENUES)
        side = r.choice(("buy", "sell"))
        mid = self.mids[sym]
        qty = 100 * r.randint(1, 10)
        px = round(mid * (1 + (0.0002 if side == "buy" else -0.0002)), 2)
        base = {"order_id": oid, "strategy_id": strategy, "account_id": account,
                "symbol": sym, "venue": venue}  # fmt: skip
        ev = [{"ts": iso(ts), "kind": "order_new", **base, "side": side, "qty": qty,
               "price": px, "order_type": "limit", "tif": "day"}]  # fmt: skip
        if r.random() < 0.04:
            ev.append({"ts": iso(ts + 400_000), "kind": "order_rejected", **base,
                       "reason": r.choice(("risk_limit", "price_band"))})  # fmt: skip
            return ev
        ack_ns = int(r.lognormvariate(12.5, 0.6)) if r.random() > 0.03 else 1_250_000_000
        t = ts + ack_ns
        ev.append({"ts": iso(t), "kind": "order_ack", **base})
        if r.random() < 0.65:
            liq = "maker" if strategy == "MM-1" else "taker"
            rate = 0.00002 if liq == "maker" else 0.00005
            slip = r.gauss(0.00015 if liq == "taker" else -0.00005, 0.0002)
            fill_px = round(mid * (1 + (slip if side == "buy" else -slip)), 2)
            parts = [qty] if r.random() < 0.7 else [qty // 2, qty - qty // 2]
            cum = 0
            for i, q in enumerate(parts):
                cum += q
                t += int(r.lognormvariate(14, 0.5))
                ev.append({"ts": iso(t), "kind": "fill", **base,
                           "exec_id": f"X{self.n_orders:06d}-{i}", "last_qty": q,
                           "last_px": fill_px, "cum_qty": cum, "leaves_qty": qty - cum,
                           "liquidity": liq, "fee": round(q * fill_px * rate, 4)})  # fmt: skip
        else:
            t += int(r.lognormvariate(17, 0.4))
            ev.append({"ts": iso(t), "kind": "order_cancel_request", **base})
            t += int(r.lognormvariate(12.8, 0.5))
            ev.append({"ts": iso(t), "kind": "order_cancelled", **base})
        return ev


class Writer(threading.Thread):
    """Appends ``steps`` market steps to the log every ``every_s`` seconds until stopped."""

    def __init__(self, path: Path, steps: int = 10, every_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.path, self.steps, self.every_s = path, steps, every_s
        self.market = Market()
        self.stop_event = threading.Event()
        self.lines = 0

    def run(self) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            while not self.stop_event.is_set():
                batch = self.market.lines(self.steps)
                fh.write("\n".join(batch) + "\n")
                fh.flush()
                self.lines += len(batch)
                self.stop_event.wait(self.every_s)


def api(port: int, path: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def has_route(port: int, path: str, method: str = "get") -> bool:
    paths = api(port, "/openapi.json")["paths"]
    return method in paths.get(path, {})


def _start(cfg: Path, port: int, errlog: Path) -> subprocess.Popen[bytes]:
    """``tradelog run`` with stderr to a file (a pipe nobody reads could block the server)."""
    with open(errlog, "wb") as err:
        proc = subprocess.Popen(
            [tradelog(), "run", "-c", str(cfg), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(errlog.read_text(errors="replace")) from None
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("tradelog run did not come up in 60 s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Writer]]:
    tmp = tmp_path_factory.mktemp("dash")
    (tmp / "logs").mkdir()
    log = tmp / "logs" / "engine.log"
    log.touch()
    cfg = tmp / "tradelog.toml"
    cfg.write_text(
        f"""
[store]
url = "duckdb:///{tmp / "store.duckdb"}"

[[sources]]
name = "engine"
format = "jsonl"
path = "{tmp / "logs" / "*.log"}"
poll_interval_ms = 20
""",
        encoding="utf-8",
    )
    port = free_port()
    errlog = tmp / "server.stderr"
    proc = _start(cfg, port, errlog)
    writer = Writer(log)
    writer.start()
    try:
        yield port, writer
        server_errors = [ln for ln in errlog.read_text(errors="replace").splitlines()
                         if "Traceback" in ln or " 500 " in ln]  # fmt: skip
        assert server_errors == [], errlog.read_text(errors="replace")[-3000:]
    finally:
        writer.stop_event.set()
        writer.join(5)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Debian chromium is missing: apt-get install -y chromium (make test does it)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


class PageWatch:
    """A page with its console errors and failed requests recorded."""

    def __init__(self, browser: Any, width: int, height: int) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))
        self.page.on(
            "response",
            lambda r: r.status >= 400 and self.failed.append(f"{r.url}: HTTP {r.status}"),
        )

    def close(self) -> None:
        self.context.close()


def kpi(page: Any, name: str) -> str:
    return str(page.get_attribute(f'#p-kpis .tile[data-kpi="{name}"]', "data-raw") or "")


def wait_for(cond: Any, timeout_s: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_dashboard_live(server: tuple[int, Writer], browser: Any) -> None:
    port, writer = server
    ARTIFACTS.mkdir(exist_ok=True)
    w = PageWatch(browser, 1366, 900)
    page = w.page
    try:
        page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
        page.wait_for_selector("body[data-ready='1']", timeout=10_000)

        # the tape fills from the WebSocket; KPIs get values from the API
        page.wait_for_selector("#tape-body tr", timeout=15_000)
        wait_for(lambda: kpi(page, "orders") != "" and kpi(page, "p99") != "", what="KPIs")
        wait_for(lambda: kpi(page, "eps") != "", what="events/s")
        first_orders = int(float(kpi(page, "orders")))
        first_top = page.inner_text("#tape-body tr:first-child")
        wait_for(
            lambda: int(float(kpi(page, "orders") or 0)) > first_orders,
            what="the orders KPI to grow",
        )
        wait_for(
            lambda: page.inner_text("#tape-body tr:first-child") != first_top,
            what="new rows on the tape",
        )
        assert float(kpi(page, "eps")) > 0
        stats = api(port, "/log_stream/statistics")
        assert stats["totals"]["events"] > 0 and stats["totals"]["reconciled"]

        # a kind filter narrows the tape to fills only
        all_kinds = set(
            page.eval_on_selector_all("#tape-body tr", "rs => rs.map(r => r.dataset.kind)")
        )
        assert len(all_kinds) > 1, all_kinds
        page.select_option("#tape-kind", "fill")
        wait_for(lambda: page.locator("#tape-body tr").count() > 0, what="fill rows")
        kinds = set(page.eval_on_selector_all("#tape-body tr", "rs => rs.map(r => r.dataset.kind)"))
        assert kinds == {"fill"}
        page.select_option("#tape-kind", "")

        # pause freezes the tape while events keep arriving
        page.click("#tape-pause")
        frozen = page.inner_text("#tape-body tr:first-child")
        time.sleep(1.0)
        assert page.inner_text("#tape-body tr:first-child") == frozen

        # clicking an order id (on the paused tape) opens its lifecycle timeline
        cell = page.locator("#tape-body td.oid").first
        order_id = cell.inner_text()
        cell.click()
        page.click("#tape-pause")
        page.wait_for_selector("#order-timeline li", timeout=10_000)
        expected = api(port, f"/log_stream/orders/{order_id}")
        shown = page.eval_on_selector_all("#order-timeline li", "ls => ls.map(l => l.dataset.kind)")
        assert shown[0] == "order_new" == expected["timeline"][0]["kind"]
        assert len(shown) >= 2
        assert page.get_attribute("#p-order", "data-order") == expected["order_id"]

        # the charts and tables are drawn
        for sel in ("#p-lathist canvas", "#p-equity canvas", "#p-ohlcv canvas", "#p-pairs canvas"):
            page.wait_for_selector(sel, timeout=15_000)
        page.wait_for_selector("#p-positions tbody tr", timeout=10_000)
        time.sleep(2.5)  # let every panel refresh once more before the picture
        page.screenshot(path=str(ARTIFACTS / "dashboard-1366x900.png"), full_page=True)

        if has_route(port, "/log_stream/alerts/{alert_id}/{action}", "post"):
            _acknowledge_an_alert(page, port)

        assert w.failed == [], w.failed
        assert w.errors == [], w.errors
    finally:
        w.close()
    assert writer.lines > 0


def _acknowledge_an_alert(page: Any, port: int) -> None:
    wait_for(
        lambda: page.locator("#p-alerts button[data-act='acknowledge']").count() > 0,
        timeout_s=30,
        what="an active alert",
    )
    alert_id = page.get_attribute("#p-alerts button[data-act='acknowledge']", "data-id")
    assert _alert_status(port, str(alert_id)) == "active"
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click(f"#p-alerts button[data-act='acknowledge'][data-id='{alert_id}']")
    assert posted.value.status == 200, posted.value.text()
    wait_for(
        lambda: _alert_status(port, str(alert_id)) == "acknowledged",
        what="the alert to be acknowledged in the API",
    )
    # the row shows the new status, its handling history opens under it naming the dashboard
    page.wait_for_selector(
        f"#p-alerts tr.alert-row[data-id='{alert_id}'][data-status='acknowledged']", timeout=10_000
    )
    wait_for(
        lambda: "dashboard" in " ".join(page.locator("#p-alerts tr.history").all_inner_texts()),
        what="the alert's history in the page",
    )


def _alert_status(port: int, alert_id: str) -> str | None:
    try:
        data = api(port, f"/log_stream/alerts/{alert_id}")
    except urllib.error.HTTPError:
        return None
    alert = data.get("alert", data)
    return str(alert.get("status"))


def test_dashboard_large_monitor(server: tuple[int, Writer], browser: Any) -> None:
    port, _ = server
    ARTIFACTS.mkdir(exist_ok=True)
    w = PageWatch(browser, 2560, 1440)
    page = w.page
    try:
        page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
        page.wait_for_selector("#tape-body tr", timeout=15_000)
        wait_for(lambda: kpi(page, "pnl") != "", what="the PnL KPI")
        # the grid uses 24 columns here: tape and order drill-down share the first row
        tape = page.locator("#p-tape").bounding_box()
        lat = page.locator("#p-lathist").bounding_box()
        assert tape is not None and lat is not None
        assert abs(tape["y"] - lat["y"]) < 2 and lat["x"] > tape["x"] + tape["width"]
        time.sleep(3)
        page.screenshot(path=str(ARTIFACTS / "dashboard-2560x1440.png"), full_page=True)
        assert w.failed == [], w.failed
        assert w.errors == [], w.errors
    finally:
        w.close()


def test_page_assets_and_endpoints_are_served(tmp_path: Path) -> None:
    """Without a browser: the page and every asset it names are served from the package,
    uPlot ships with its licence, and every endpoint the page's JavaScript calls exists."""
    store = open_store(f"duckdb:///{tmp_path / 'empty.duckdb'}")
    try:
        app = create_app(store)
        client = TestClient(app)
        page = client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
        assert "/static/js/main.js" in assets and len(assets) >= 4
        for path in assets:
            assert client.get(path).status_code == 200, path
        assert "MIT" in (STATIC_DIR / "vendor" / "uplot" / "LICENSE").read_text()
        assert client.get("/static/../routes.py").status_code == 404
        assert client.get("/static/nope.js").status_code == 404

        modules = sorted((STATIC_DIR / "js").glob("*.js"))
        for mod in modules:  # every imported module exists
            for name in re.findall(r'from "\./([\w.]+)"', mod.read_text()):
                assert (STATIC_DIR / "js" / name).is_file(), (mod.name, name)
        js = "\n".join(m.read_text() for m in modules)
        used = set(re.findall(r'"(/log_stream/[\w/{}]+)"', js))
        paths = set(app.openapi()["paths"])
        with client.websocket_connect("/log_stream/live") as ws:  # not in OpenAPI
            assert ws.receive_json()["type"] == "error"  # a store-only app: no live pipeline
            paths.add("/log_stream/live")
        assert {"/log_stream/statistics", "/log_stream/live", "/log_stream/pairs"} <= used
        assert used <= paths, used - paths
    finally:
        store.close()
