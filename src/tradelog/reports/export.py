"""The tables behind the report as CSV files (one per table, header row, UTF-8), and the
same HTML printed to PDF by headless Chromium."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Final

from tradelog.reports.builder import OVERALL

CHROMIUM_ARGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-pdf-header-footer",
)


def tables(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every table of the report as flat rows, by file name (without ``.csv``)."""
    out: dict[str, list[dict[str, Any]]] = {}
    p = report["performance"]
    if "overall" in p:
        curves = {OVERALL: p["overall"], **p["by_strategy"]}
        metrics = []
        for name, c in curves.items():
            stats = c.get("stats")
            row: dict[str, Any] = {"strategy": name, "pnl": c.get("pnl"), **(p["parameters"])}
            if stats:
                row.update(stats["metrics"])
                row["unavailable"] = (
                    json.dumps(stats["unavailable"]) if stats["unavailable"] else ""
                )
            else:
                row["unavailable"] = c.get("unavailable", "")
            metrics.append(row)
        out["performance"] = metrics
        ov = p["overall"]
        s = ov["series"]
        out["equity_curve"] = [
            {"ts_ns": t, "pnl": v, "underwater": s["underwater"][i] if s["underwater"] else None}
            for i, (t, v) in enumerate(zip(s["ts"], s["pnl"], strict=True))
        ]
        out["drawdowns"] = (ov.get("stats") or {}).get("drawdowns") or ov.get(
            "drawdowns_currency", []
        )
        out["daily_returns"] = ov.get("daily_returns", [])
        out["monthly_returns"] = ov.get("monthly_returns", [])
        out["pnl_by_hour"] = ov.get("pnl_by_hour", [])
        out["maker_vs_taker"] = p["maker_vs_taker"]
    t = report["trades"]
    trips = [{"strategy": OVERALL, **_flat(t["round_trips"])}]
    trips += [{"strategy": k, **_flat(v)} for k, v in t["round_trips_by_strategy"].items()]
    out["round_trips"] = trips
    out["round_trips_by_symbol"] = t["round_trips_by_symbol"]
    out["pnl_by_symbol"] = t["pnl_by_symbol"]
    out["turnover_by_strategy"] = t["turnover_by_strategy"]
    out["volume_by_symbol"] = t["volume_by_symbol"]
    e = report["execution"]
    lat = []
    for kind, part in e["latency"].items():
        if part["overall"]:
            lat.append({"latency": kind, "group": "overall", "value": OVERALL, **part["overall"]})
        for g in ("venue", "strategy"):
            for r in part[f"by_{g}"]:
                lat.append(
                    {
                        "latency": kind,
                        "group": g,
                        "value": r[g],
                        **{k: v for k, v in r.items() if k != g},
                    }
                )
    out["latency"] = lat
    out["latency_histograms"] = [
        {"latency": kind, "venue": venue, **b}
        for kind, by_venue in e["latency_histograms"].items()
        for venue, buckets in by_venue.items()
        for b in buckets
    ]
    slip = []
    if e["slippage"]["overall"]:
        slip.append({"group": "overall", "value": OVERALL, **e["slippage"]["overall"]})
    for g in ("venue", "strategy", "liquidity"):
        for r in e["slippage"][f"by_{g}"]:
            slip.append({"group": g, "value": r[g], **{k: v for k, v in r.items() if k != g}})
    out["slippage"] = slip
    out["slippage_distribution"] = e["slippage_distribution"]
    out["markouts"] = e["markouts"]
    rates = e["fill_rates"]
    fr = [{"group": "overall", "value": OVERALL, **rates["overall"]}] if rates["overall"] else []
    fr += [{"group": "venue", "value": r["venue"], **r} for r in rates["by_venue"]]
    fr += [{"group": "strategy", "value": r["strategy"], **r} for r in rates["by_strategy"]]
    out["fill_rates"] = fr
    out["order_rejects_by_reason"] = e["rejects_by_reason"]
    s = report["surveillance"]
    out["anomalies_by_type"] = s["anomalies_by_type"]
    out["anomaly_marks"] = s["latest_marks"]
    if s["alerts"]["available"]:
        out["alerts"] = s["alerts"]["alerts"]
        if s["alerts"].get("history"):
            out["alert_history"] = s["alerts"]["history"]
    q = report["data_quality"]
    out["sources_all_time"] = q["sources_all_time"]
    out["sources_in_window"] = q["sources_in_window"]
    out["rejects"] = [
        {"source": r["source"], "reason": r["reason"], "count": r["count"], **ex}
        for r in q["rejects"]
        for ex in r["examples"]
    ]
    out["gaps"] = q["gaps"]
    out["reconciliation"] = q["reconciliation"]["rows"]
    return out


def _flat(t: dict[str, Any]) -> dict[str, Any]:
    h = t["holding_time"]
    row = {k: v for k, v in t.items() if k not in ("holding_time", "unavailable")}
    for k in ("mean_s", "p50_s", "p90_s", "p99_s", "max_s"):
        row[f"holding_{k}"] = h.get(k)
    return row


def _cell(v: Any) -> Any:
    if isinstance(v, list | dict):
        return json.dumps(v, default=str)
    return "" if v is None else v


def write_csv(report: dict[str, Any], folder: str | os.PathLike[str]) -> list[Path]:
    """One CSV per table (empty tables get a file with no rows only if columns are known:
    they are skipped); returns the files written."""
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in tables(report).items():
        if not rows:
            continue
        cols = list(dict.fromkeys(k for r in rows for k in r))
        path = d / f"{name}.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            for r in rows:
                w.writerow({c: _cell(r.get(c)) for c in cols})
        written.append(path)
    return written


def find_chromium() -> str | None:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(
    html_path: str | os.PathLike[str], pdf_path: str | os.PathLike[str], timeout_s: float = 120
) -> Path:
    """Prints the HTML file with headless Chromium; raises RuntimeError naming the problem."""
    exe = find_chromium()
    if exe is None:
        raise RuntimeError("PDF needs Chromium (apt-get install -y chromium); none found")
    src = Path(html_path).resolve()
    dst = Path(pdf_path).resolve()
    cmd = [exe, *CHROMIUM_ARGS, f"--print-to-pdf={dst}", src.as_uri()]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"chromium did not finish printing within {timeout_s:g} s") from None
    if res.returncode != 0 or not dst.exists() or dst.stat().st_size == 0:
        tail = (res.stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"chromium failed to print the PDF (exit {res.returncode}): {tail[0]}")
    return dst
