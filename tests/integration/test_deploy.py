"""The Grafana and Prometheus files of deploy/ against the real thing: dashboards parse,
panel ids are unique, datasource uids match the provisioning file, every PromQL name is a
metric a running tradelog exports (scraped from a live service built here), every SQL
panel runs on a real PostgreSQL with the migrated schema and data, ``promtool`` accepts
the config and the rules, and a real Prometheus scrapes the running service.

Grafana itself is not installable here; Prometheus is (Debian ``prometheus``, installed
by scripts/services.sh). Without ``promtool`` the Prometheus tests skip with the reason.
"""

from __future__ import annotations

import json
import re
import runpy
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
import yaml

from tradelog import app as core
from tradelog import service as svc
from tradelog.api.app import create_app
from tradelog.config import Config, SourceConfig

from .pg import fresh_database

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARDS = sorted((DEPLOY / "grafana/dashboards").glob("*.json"))
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None or PROMETHEUS is None,
    reason="Debian prometheus is not installed (scripts/services.sh installs it with apt)",
)
METRIC_RE = re.compile(r"\btradelog_[A-Za-z0-9_]+")
GRAFANA_MACROS = {
    "$__unixEpochNanoFrom()": "0",
    "$__unixEpochNanoTo()": "9223372036854775807",
}
"""The only Grafana macros the SQL panels use, with the values of an unbounded range."""


def input_lines() -> str:
    """Generated engine log + a huge order (a size anomaly) + unreadable lines (rejects)."""
    gen = runpy.run_path(str(ROOT / "benchmarks/gen.py"))
    evs = list(gen["events"](2000, 11))
    lines = [gen["jsonl_line"](i, ev) for i, ev in enumerate(evs)]
    last = evs[-1].ts
    lines.append(
        f'{{"ts":"{gen["iso"](last + 1)}","kind":"order_new","event_id":"BIG1",'
        '"order_id":"BIG-1","strategy_id":"MM-1","account_id":"ACC-01","symbol":"AAPL",'
        '"venue":"XNAS","side":"BUY","price":50.0,"qty":10000000}\n'
    )
    lines += ["not json\n", '{"kind":"fill"}\n']
    return "".join(lines)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A running ``tradelog run``-style service that has ingested the input: yields
    (base URL, the /metrics text)."""
    tmp = tmp_path_factory.mktemp("live")
    text = input_lines()
    (tmp / "engine.jsonl").write_text(text, encoding="utf-8")
    cfg = Config()
    cfg.sources = [SourceConfig(name="eng", path=str(tmp / "engine*.jsonl"))]
    cfg.store.url = f"duckdb:///{tmp / 'store.duckdb'}"
    service = svc.build_live(cfg, core.open_store(cfg.store.url))
    app = create_app(
        service.store, live=service.hub, metrics=service.metrics, snapshot=service.snapshot
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    service.start()
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        expected = text.count("\n")
        deadline = time.monotonic() + 60
        while service.pipeline.stats.records < expected or service.committer.pending:
            assert time.monotonic() < deadline, "the live service did not ingest the input"
            time.sleep(0.05)
        while not server.started:
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.05)
        body = httpx.get(f"{base}/metrics", timeout=10).text
        yield base, body
    finally:
        server.should_exit = True
        thread.join(10)
        service.stop()


def exported_names(metrics_text: str) -> set[str]:
    """Series names in a Prometheus text exposition (``x_bucket``, ``x_total``…)."""
    names: set[str] = set()
    for line in metrics_text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def load_dashboards() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, json.loads(p.read_text(encoding="utf-8"))) for p in DASHBOARDS]


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in dashboard["panels"]:
        yield p
        yield from p.get("panels", [])  # rows


def targets(kind: str) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(dashboard file, panel, target) of every target on a datasource of ``kind``."""
    for path, dash in load_dashboards():
        for panel in panels(dash):
            for t in panel.get("targets", []):
                ds = t.get("datasource") or panel.get("datasource")
                if ds["type"] == kind:
                    yield path.name, panel, t


def provisioned() -> dict[str, str]:
    """uid → type of the provisioned datasources."""
    files = sorted((DEPLOY / "grafana/provisioning/datasources").glob("*.yaml"))
    assert files
    out: dict[str, str] = {}
    for f in files:
        for ds in yaml.safe_load(f.read_text(encoding="utf-8"))["datasources"]:
            assert ds["uid"] not in out, f"{f.name}: uid {ds['uid']} provisioned twice"
            out[ds["uid"]] = ds["type"]
    return out


# ---------------------------------------------------------------------------- Grafana


def test_dashboards_parse_with_unique_panel_ids_and_provisioned_datasources() -> None:
    assert {p.name for p in DASHBOARDS} == {"tradelog-metrics.json", "tradelog-analytics.json"}
    sources = provisioned()
    uids = set()
    for path, dash in load_dashboards():
        assert dash["uid"] not in uids, f"{path.name}: dashboard uid reused"
        uids.add(dash["uid"])
        ids = [p["id"] for p in panels(dash)]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        assert ids, f"{path.name}: no panels"
        for panel in panels(dash):
            for ref in [panel.get("datasource"), *(t.get("datasource") for t in panel["targets"])]:
                assert ref is not None, f"{path.name} panel {panel['id']}: no datasource"
                assert sources.get(ref["uid"]) == ref["type"], (
                    f"{path.name} panel {panel['id']}: datasource {ref} is not provisioned"
                )
            assert panel["targets"], f"{path.name} panel {panel['id']}: no query"


def test_dashboard_provider_points_at_a_folder() -> None:
    files = sorted((DEPLOY / "grafana/provisioning/dashboards").glob("*.yaml"))
    providers = [p for f in files for p in yaml.safe_load(f.read_text())["providers"]]
    assert providers and all(p["type"] == "file" and p["options"]["path"] for p in providers)


def test_every_promql_name_is_exported_by_a_running_tradelog(
    live_metrics: tuple[str, str],
) -> None:
    exported = exported_names(live_metrics[1])
    alerts = yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text(encoding="utf-8"))
    exprs = [(f"{f} {p['title']}", t["expr"]) for f, p, t in targets("prometheus")]
    exprs += [(r["alert"], r["expr"]) for g in alerts["groups"] for r in g["rules"]]
    assert len(exprs) > 15
    used: set[str] = set()
    for where, expr in exprs:
        names = set(METRIC_RE.findall(expr))
        missing = names - exported
        assert not missing, f"{where}: {sorted(missing)} not in a live /metrics scrape"
        used |= names
    # the dashboards cover every metric family the app exports
    suffix = re.compile(r"_(bucket|sum|count|created|total)$")
    families = {suffix.sub("", n) for n in exported if n.startswith("tradelog_")}
    uncovered = families - {suffix.sub("", n) for n in used}
    assert not uncovered, f"exported but on no dashboard or alert: {sorted(uncovered)}"


def test_every_sql_panel_runs_on_postgresql(tmp_path: Path) -> None:
    (tmp_path / "engine.jsonl").write_text(input_lines(), encoding="utf-8")
    cfg = Config()
    cfg.sources = [SourceConfig(name="eng", format="jsonl")]
    queries = list(targets("grafana-postgresql-datasource"))
    assert len(queries) >= 10
    with fresh_database() as url:
        store = core.open_store(url)
        try:
            core.replay(cfg, core.plan_replay(cfg, [str(tmp_path / "engine.jsonl")], None), store)
        finally:
            store.close()
        with psycopg.connect(url) as conn:
            for name, panel, target in queries:
                sql = target["rawSql"]
                for macro, value in GRAFANA_MACROS.items():
                    sql = sql.replace(macro, value)
                assert "$__" not in sql, f"{name} {panel['title']}: unknown Grafana macro"
                try:
                    rows = conn.execute(sql).fetchall()  # type: ignore[arg-type]
                except psycopg.Error as exc:
                    raise AssertionError(f"{name} {panel['title']}: {exc}") from exc
                conn.rollback()
                assert rows, f"{name} {panel['title']}: no rows over the whole data"
                if target.get("format") == "time_series":
                    assert all(r[0] is not None for r in rows), panel["title"]
            # one value by hand: the accounting panel balances (2 rejects, nothing lost)
            acct = next(t for _, p, t in queries if p["title"] == "Line accounting per source")
            (row,) = conn.execute(acct["rawSql"]).fetchall()
            assert row[0] == "eng" and row[3] == 2 and row[6] == 0


# ---------------------------------------------------------------------------- Prometheus


@needs_promtool
def test_promtool_accepts_the_config_and_the_rules() -> None:
    assert PROMTOOL is not None
    for args in (
        ["check", "config", str(DEPLOY / "prometheus/prometheus.yml")],
        ["check", "rules", str(DEPLOY / "prometheus/alerts.yml")],
    ):
        done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_prometheus_scrapes_the_running_service(
    live_metrics: tuple[str, str], tmp_path: Path
) -> None:
    """A real Prometheus (free port, temp data dir) with the deploy config's job names and
    rules scrapes the live /metrics; ``promtool query instant`` then sees tradelog_ series
    and the rules loaded."""
    assert PROMTOOL is not None and PROMETHEUS is not None
    base = live_metrics[0]
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text(encoding="utf-8"))
    target = base.removeprefix("http://")
    for job in config["scrape_configs"]:
        job["scrape_interval"] = "1s"
        job["static_configs"] = [{"targets": [target], "labels": {"role": "test"}}]
    config["rule_files"] = [str(DEPLOY / "prometheus/alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    prom = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        count = 0.0
        while time.monotonic() < deadline:
            done = subprocess.run(
                [PROMTOOL, "query", "instant", url,
                 'count({__name__=~"tradelog_.+", job="tradelog-workers"})'],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            m = re.search(r"=> ([0-9.e+]+) @", done.stdout)
            if m:
                count = float(m.group(1))
                break
            time.sleep(0.5)
        assert count >= 10, f"no tradelog_ series scraped: {done.stdout}{done.stderr}"
        # each job scrapes on its own schedule: wait for the first scrape of this one too
        while True:
            events = subprocess.run(
                [PROMTOOL, "query", "instant", url,
                 'sum(tradelog_pipeline_events_total{job="tradelog-run"})'],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            m = re.search(r"=> ([0-9.e+]+) @", events.stdout)
            if m is not None or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        assert m is not None and float(m.group(1)) == 2001.0, events.stdout + events.stderr
        rules = httpx.get(f"{url}/api/v1/rules", timeout=10).json()
        names = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
        assert {"TradelogNoEvents", "TradelogRejectRateHigh"} <= names
    finally:
        prom.terminate()
        prom.wait(timeout=30)
