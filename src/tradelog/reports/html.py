"""Renders the report data (reports/builder.py) as one self-contained HTML page: embedded
CSS, inline SVG charts, no script and nothing fetched from the network; readable on screen
and printable (sections break cleanly, colours kept)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape
from typing import Any, Final

from tradelog.model.timefmt import ns_to_iso
from tradelog.reports import charts
from tradelog.reports.builder import DAILY_HEATMAP_MIN_DAYS, MONTHLY_HEATMAP_MIN_MONTHS, OVERALL

Fmt = Callable[[Any], str]
DASH: Final = "—"

CSS: Final = """
:root{--fg:#1b1f24;--mut:#5b6470;--line:#d9dee5;--bg:#fff;--hd:#f3f5f8;--acc:#1f5fa8}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg);margin:0 auto;max-width:1100px;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;padding-bottom:4px;
border-bottom:2px solid var(--acc)}h3{font-size:15px;margin:20px 0 6px}
.meta{color:var(--mut)}.note{color:var(--mut);font-size:12.5px;margin:4px 0}
table{border-collapse:collapse;margin:6px 0 12px;font-size:12.5px;width:auto;max-width:100%}
th,td{border:1px solid var(--line);padding:3px 7px;text-align:right;vertical-align:top}
th{background:var(--hd);font-weight:600}td.t,th.t{text-align:left}
td.na{color:var(--mut)}.tw{overflow-x:auto;max-width:100%}
code,pre{font:12px ui-monospace,Menlo,Consolas,monospace}
pre{white-space:pre-wrap;word-break:break-all;margin:0;max-width:560px}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:8px;margin:12px 0}
.kpi{border:1px solid var(--line);border-radius:6px;padding:8px 10px;background:var(--hd)}
.kpi b{display:block;font-size:18px}.kpi span{color:var(--mut);font-size:12px}
nav a{margin-right:12px;color:var(--acc);text-decoration:none}
svg.chart{display:block;max-width:760px;margin:6px 0 14px;background:#fff}
svg .ct{font-size:13px;font-weight:600;fill:#1b1f24}svg .cn{font-size:12px;fill:#5b6470}
svg .cy{font-size:10.5px;text-anchor:end;fill:#5b6470}svg .cx{font-size:10.5px;
text-anchor:middle;fill:#5b6470}svg .cl{font-size:10.5px;text-anchor:end;fill:#5b6470}
svg .cz{font-size:10.5px;fill:#1b1f24}svg .cg{stroke:#e7ebf0;stroke-width:1}
svg .ca{stroke:#9aa4b1;stroke-width:1}
section{break-inside:auto}h2,h3{break-after:avoid}table,svg{break-inside:avoid}
@media print{body{max-width:none;padding:0;font-size:11px}nav{display:none}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}h2{break-before:page}}
"""


# ------------------------------------------------------------------ formatting


def num(v: Any) -> str:
    if v is None:
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return DASH
        a = abs(v)
        if a >= 1e5:
            return f"{v:,.0f}"
        if a >= 100:
            return f"{v:,.2f}"
        if a == 0:
            return "0"
        return f"{v:.4g}"
    return escape(str(v))


def pct(v: Any) -> str:
    return DASH if v is None else f"{v * 100:.3g}%"


def money(v: Any) -> str:
    return DASH if v is None else f"{v:,.2f}"


def iso(v: Any) -> str:
    return DASH if v is None else escape(ns_to_iso(int(v))[:23].replace("T", " "))


def dur(v: Any) -> str:
    if v is None:
        return DASH
    s = float(v)
    if s < 1:
        return f"{s * 1000:.3g} ms"
    if s < 120:
        return f"{s:.3g} s"
    if s < 7200:
        return f"{s / 60:.3g} min"
    if s < 2 * 86400:
        return f"{s / 3600:.3g} h"
    return f"{s / 86400:.3g} d"


def text(v: Any) -> str:
    return DASH if v is None else escape(str(v))


def raw(v: Any) -> str:
    return DASH if v is None else f"<pre>{escape(str(v))}</pre>"


Col = tuple[str, str, Fmt]


def table(rows: Sequence[dict[str, Any]], cols: Sequence[Col], empty: str = "none") -> str:
    if not rows:
        return f'<p class="note">{escape(empty)}</p>'
    head = "".join(
        f'<th class="{"t" if f in (text, raw, iso) else ""}">{escape(h)}</th>' for _, h, f in cols
    )
    body = []
    for r in rows:
        cells = []
        for key, _, f in cols:
            v = r.get(key)
            cls = "t" if f in (text, raw, iso) else ""
            if v is None:
                cls += " na"
            cells.append(f'<td class="{cls.strip()}">{f(v)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="tw"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _note(s: str | None) -> str:
    return f'<p class="note">{escape(s)}</p>' if s else ""


# ------------------------------------------------------------------ sections

METRICS: Final[list[tuple[str, str, Fmt]]] = [
    ("total_return", "Total return", pct),
    ("annualized_return", "Annualised return (CAGR)", pct),
    ("volatility", "Volatility (ann.)", pct),
    ("sharpe", "Sharpe", num),
    ("sortino", "Sortino", num),
    ("max_drawdown", "Max drawdown", pct),
    ("calmar", "Calmar", num),
    ("var", "VaR 95% (one period, normal)", pct),
    ("cvar", "CVaR 95% (one period, normal)", pct),
    ("tail_ratio", "Tail ratio", num),
    ("win_rate", "Win rate (periods)", pct),
    ("profit_factor", "Profit factor (periods)", num),
    ("payoff_ratio", "Payoff ratio", num),
    ("best_period", "Best period", pct),
    ("worst_period", "Worst period", pct),
]


def _performance(p: dict[str, Any]) -> str:
    out = ['<section id="performance"><h2>Performance</h2>']
    if "overall" not in p:
        return out[0] + "".join(_note(n) for n in p["notes"]) + "</section>"
    prm = p["parameters"]
    out.append(
        table(
            [prm],
            [
                ("capital", "Capital", money),
                ("sampling_interval_s", "Sampling interval (s)", num),
                ("periods_per_year", "periods_per_year", num),
                ("calendar", "Calendar", text),
                ("risk_free_rate", "Risk-free rate", num),
                ("basis", "Basis", text),
            ],
        )
    )
    curves = {OVERALL: p["overall"], **p["by_strategy"]}
    rows = []
    for key, label, f in METRICS:
        row: dict[str, Any] = {"metric": label}
        for name, c in curves.items():
            stats = c.get("stats")
            v = stats["metrics"][key] if stats else None
            why = (stats["unavailable"].get(key) if stats else c.get("unavailable")) or ""
            row[name] = f(v) if v is not None else f'<span title="{escape(why)}">{DASH}</span>'
        rows.append(row)
    pnl_row: dict[str, Any] = {"metric": "PnL in the window"}
    for name, c in curves.items():
        pnl_row[name] = money(c.get("pnl"))
    rows.insert(0, pnl_row)
    ident: Fmt = str  # cells are formatted above
    out.append(table(rows, [("metric", "", text)] + [(n, n or "(none)", ident) for n in curves]))
    reasons = {
        f"{name}: {k}": why
        for name, c in curves.items()
        for k, why in ((c.get("stats") or {}).get("unavailable") or {}).items()
    }
    for name, c in curves.items():
        if c.get("stats") is None and c.get("unavailable"):
            reasons[f"{name}: all return statistics"] = c["unavailable"]
    if reasons:
        out.append("<h3>Figures that could not be computed</h3>")
        out.append(
            table(
                [{"what": k, "why": v} for k, v in reasons.items()],
                [("what", "figure", text), ("why", "reason", text)],
            )
        )
    for n in p["notes"]:
        out.append(_note(n))
    ov = p["overall"]
    ts = ov["series"]["ts"]
    series = {OVERALL: ov["series"]["pnl"]}
    if len(p["by_strategy"]) > 1:
        for name, c in p["by_strategy"].items():
            if c["series"]["ts"] == ts:
                series[name or "(none)"] = c["series"]["pnl"]
    out.append(
        charts.line_chart("equity", "Equity curve (total PnL, fees included)", ts, series, "PnL")
    )
    out.append(
        charts.line_chart(
            "underwater",
            "Drawdown (underwater, fraction of peak equity)",
            ts,
            {"drawdown": ov["series"]["underwater"]},
            "drawdown",
            fill_to_zero=True,
            y_as_percent=True,
        )
        if ov["series"]["underwater"]
        else charts.line_chart(
            "underwater",
            "Drawdown in currency (no capital given)",
            ts,
            {"drawdown": _dd_currency(ov["series"]["pnl"])},
            "PnL",
            fill_to_zero=True,
        )
    )
    dds = (ov.get("stats") or {}).get("drawdowns") or ov.get("drawdowns_currency") or []
    out.append("<h3>Worst drawdowns</h3>")
    out.append(
        table(
            dds,
            [
                ("start_ns", "Start (peak)", iso),
                ("valley_ns", "Valley", iso),
                ("recovery_ns", "Recovery", iso),
                ("depth", "Depth", pct),
                ("depth_currency", "Depth (currency)", money),
                ("duration_s", "Duration", dur),
                ("ongoing", "Ongoing", num),
            ],
            "no drawdown",
        )
    )
    out.append(_heatmaps(ov))
    hours = ov.get("pnl_by_hour") or []
    out.append(
        charts.bar_chart(
            "pnl_by_hour",
            "PnL by hour of day (UTC)",
            [f"{h['hour']:02d}" for h in hours],
            [h["pnl"] for h in hours],
            "PnL",
        )
        if hours
        else charts.bar_chart("pnl_by_hour", "PnL by hour of day (UTC)", [], [])
    )
    out.append("<h3>Maker vs taker</h3>")
    out.append(
        table(
            p["maker_vs_taker"],
            [
                ("liquidity", "Liquidity", text),
                ("fills", "Fills", num),
                ("qty", "Qty", num),
                ("notional", "Notional", money),
                ("fees", "Fees", money),
                ("realized_gross", "Realized (gross)", money),
                ("realized_net", "Realized (net)", money),
            ],
        )
    )
    out.append(
        _note(
            "Maker vs taker: the realized PnL each side's fills produced (a fill's "
            "realized PnL is the change it made to its position's realized PnL)."
        )
    )
    out.append("</section>")
    return "".join(out)


def _dd_currency(pnl: list[float | None]) -> list[float | None]:
    peak = -math.inf
    out: list[float | None] = []
    for v in pnl:
        if v is None:
            out.append(None)
            continue
        peak = max(peak, v)
        out.append(v - peak)
    return out


def _heatmaps(ov: dict[str, Any]) -> str:
    monthly = ov.get("monthly_returns") or []
    daily = ov.get("daily_returns") or []
    if len(monthly) >= MONTHLY_HEATMAP_MIN_MONTHS:
        cells = [(m["period"][:4], m["period"][5:7], m["return"]) for m in monthly]
        return charts.heatmap("returns_heatmap", "Monthly returns", cells)
    if len(daily) >= DAILY_HEATMAP_MIN_DAYS:
        cells = [(d["period"][:7], d["period"][8:10], d["return"]) for d in daily]
        return charts.heatmap("returns_heatmap", "Daily returns (UTC days)", cells)
    return _note(
        f"Returns heatmap: the window covers {len(daily)} day(s); a daily heatmap "
        f"needs {DAILY_HEATMAP_MIN_DAYS} or more."
    )


TRADE_COLS: Final[list[Col]] = [
    ("name", "", text),
    ("count", "Round trips", num),
    ("win_rate", "Win rate", pct),
    ("avg_win", "Avg win", money),
    ("avg_loss", "Avg loss", money),
    ("profit_factor", "Profit factor", num),
    ("expectancy", "Expectancy", money),
    ("total_pnl", "PnL", money),
    ("hold_p50", "Holding p50", dur),
    ("hold_p90", "Holding p90", dur),
    ("hold_max", "Holding max", dur),
]


def _trip_row(name: str, t: dict[str, Any]) -> dict[str, Any]:
    h = t["holding_time"]
    return {
        "name": name,
        **t,
        "hold_p50": h.get("p50_s"),
        "hold_p90": h.get("p90_s"),
        "hold_max": h.get("max_s"),
    }


def _trades(t: dict[str, Any]) -> str:
    out = [
        '<section id="trades"><h2>Trades</h2><h3>Round trips (flat → flat per strategy × '
        "account × symbol)</h3>"
    ]
    rows = [_trip_row(OVERALL, t["round_trips"])]
    rows += [_trip_row(k, v) for k, v in t["round_trips_by_strategy"].items()]
    out.append(table(rows, TRADE_COLS))
    hist = t["round_trips"]["holding_time"]["histogram"]
    out.append(
        table(
            hist,
            [
                ("lower_s", "Holding from", dur),
                ("upper_s", "to", dur),
                ("count", "Round trips", num),
            ],
            "no round trip",
        )
    )
    out.append("<h3>Round trips by symbol</h3>")
    out.append(
        table(
            t["round_trips_by_symbol"],
            [
                ("symbol", "Symbol", text),
                ("count", "Count", num),
                ("wins", "Wins", num),
                ("losses", "Losses", num),
                ("pnl", "PnL", money),
                ("expectancy", "Expectancy", money),
                ("avg_holding_s", "Avg holding", dur),
            ],
        )
    )
    out.append(_note(t.get("round_trips_note")))
    out.append("<h3>PnL by symbol</h3>")
    out.append(
        table(
            t["pnl_by_symbol"],
            [
                ("symbol", "Symbol", text),
                ("realized_pnl", "Realized (net)", money),
                ("unrealized_pnl", "Unrealized", money),
                ("total_pnl", "Total", money),
                ("fees", "Fees", money),
                ("open_position", "Open position", num),
            ],
        )
    )
    out.append("<h3>Turnover by strategy</h3>")
    out.append(
        table(
            t["turnover_by_strategy"],
            [
                ("strategy_id", "Strategy", text),
                ("fills", "Fills", num),
                ("qty", "Qty", num),
                ("turnover", "Turnover (notional)", money),
            ],
        )
    )
    out.append("<h3>Volume by symbol</h3>")
    out.append(
        table(
            t["volume_by_symbol"],
            [
                ("symbol", "Symbol", text),
                ("fills", "Fills", num),
                ("qty", "Qty", num),
                ("buy_qty", "Bought", num),
                ("sell_qty", "Sold", num),
                ("notional", "Notional", money),
                ("fees", "Fees", money),
            ],
        )
    )
    out.append("</section>")
    return "".join(out)


LAT_COLS: Final[list[Col]] = [
    ("count", "Count", num),
    ("mean_ms", "Mean", num),
    ("p50_ms", "p50", num),
    ("p90_ms", "p90", num),
    ("p95_ms", "p95", num),
    ("p99_ms", "p99", num),
    ("p999_ms", "p99.9", num),
    ("max_ms", "Max", num),
    ("negative_excluded", "Negative (excluded)", num),
]
SLIP_COLS: Final[list[Col]] = [
    ("fills", "Fills", num),
    ("count", "With benchmark", num),
    ("mean_bps", "Mean", num),
    ("p50_bps", "Median", num),
    ("p95_bps", "p95", num),
    ("notional_weighted_mean_bps", "Notional-weighted", num),
    ("spread_capture_mean_bps", "Spread capture", num),
    ("notional", "Notional", money),
]
RATE_COLS: Final[list[Col]] = [
    ("orders", "Orders", num),
    ("fill_rate_qty", "Fill rate (qty)", pct),
    ("fully_filled", "Filled", num),
    ("partially_filled", "Partial", num),
    ("cancelled_without_fill", "Cancelled, no fill", num),
    ("cancelled_after_partial", "Cancelled after partial", num),
    ("rejected", "Rejected", num),
    ("expired", "Expired", num),
]


def _execution(e: dict[str, Any]) -> str:
    out = ['<section id="execution"><h2>Execution quality</h2><h3>Latency (ms)</h3>']
    rows = []
    for kind, part in e["latency"].items():
        if part["overall"]:
            rows.append({"kind": kind, "group": OVERALL, **part["overall"]})
        for r in part["by_venue"]:
            rows.append({"kind": kind, "group": f"venue {r['venue']}", **r})
        for r in part["by_strategy"]:
            rows.append({"kind": kind, "group": f"strategy {r['strategy']}", **r})
    out.append(
        table(
            rows,
            [("kind", "Latency", text), ("group", "", text), *LAT_COLS],
            "no latency measured in the window",
        )
    )
    out.append(
        _note(
            "ack = ack − new; fill = first fill − new; cancel = cancelled − cancel "
            "request. Negative values are clock skew: counted, left out."
        )
    )
    hists = e["latency_histograms"]
    kind = max(
        hists, key=lambda k: sum(b["count"] for b in hists[k].get(OVERALL, [])), default=None
    )
    if kind is None:
        out.append(charts.histogram("latency", "Latency histogram", [], "ms"))
    else:
        for venue, buckets in hists[kind].items():
            out.append(
                charts.histogram(
                    "latency",
                    f"{kind} latency, {'all venues' if venue == OVERALL else venue} "
                    "(log-spaced buckets, ms)",
                    [(b["lower_ms"], b["upper_ms"], b["count"]) for b in buckets],
                    "ms",
                )
            )
    out.append("<h3>Slippage (bps)</h3>")
    out.append(f"<p><b>Sign convention:</b> {escape(e['slippage_sign_convention'])}</p>")
    srows = []
    if e["slippage"]["overall"]:
        srows.append({"group": OVERALL, **e["slippage"]["overall"]})
    for key, label in (
        ("by_venue", "venue"),
        ("by_strategy", "strategy"),
        ("by_liquidity", "liquidity"),
    ):
        for r in e["slippage"][key]:
            srows.append({"group": f"{label} {r[label]}", **r})
    out.append(table(srows, [("group", "", text), *SLIP_COLS], "no fills in the window"))
    dist = e["slippage_distribution"]
    out.append(
        charts.histogram(
            "slippage",
            "Slippage distribution per fill (bps, positive = cost)",
            [(b["lower_bps"], b["upper_bps"], b["count"]) for b in dist],
            "bps",
        )
    )
    out.append(_note(e["slippage_distribution_note"]))
    out.append("<h3>Markouts (bps, positive = price moved our way)</h3>")
    mcols: list[Col] = [("liquidity", "Liquidity", text)]
    for h in (1, 5, 30, 60):
        mcols += [(f"mean_{h}s_bps", f"+{h}s mean", num), (f"n_{h}s", f"+{h}s n", num)]
    out.append(table(e["markouts"], mcols))
    out.append("<h3>Fill rates</h3>")
    rates = e["fill_rates"]
    rrows = (
        ([{"group": OVERALL, **rates["overall"]}] if rates["overall"] else [])
        + [{"group": f"venue {r['venue']}", **r} for r in rates["by_venue"]]
        + [{"group": f"strategy {r['strategy']}", **r} for r in rates["by_strategy"]]
    )
    out.append(table(rrows, [("group", "", text), *RATE_COLS], "no finished order"))
    out.append(
        _note(
            f"Orders still open (submitted in the window): {rates['still_open']:,}. "
            "Fill rate = Σ filled / Σ ordered over orders finished in the window."
        )
    )
    out.append("<h3>Rejected orders by reason</h3>")
    out.append(
        table(
            e["rejects_by_reason"],
            [("reason", "Reason", text), ("orders", "Orders", num)],
            "no rejected order",
        )
    )
    o = e["orders"]
    out.append(
        table(
            [o],
            [
                ("count", "Finished orders", num),
                ("slippage_mean_bps", "Order slippage mean (bps)", num),
                ("implementation_shortfall_mean_bps", "Shortfall mean (bps)", num),
                (
                    "implementation_shortfall_notional_weighted_bps",
                    "Shortfall notional-weighted (bps)",
                    num,
                ),
            ],
        )
    )
    out.append("</section>")
    return "".join(out)


def _surveillance(s: dict[str, Any]) -> str:
    out = ['<section id="surveillance"><h2>Surveillance</h2><h3>Anomaly marks by type</h3>']
    out.append(
        table(
            s["anomalies_by_type"],
            [
                ("type", "Type", text),
                ("low", "Low", num),
                ("medium", "Medium", num),
                ("high", "High", num),
                ("critical", "Critical", num),
                ("total", "Total", num),
            ],
            "no anomaly marks in the window",
        )
    )
    out.append(f"<h3>Latest marks ({len(s['latest_marks'])} of {s['anomalies_total']:,})</h3>")
    out.append(
        table(
            s["latest_marks"][:50],
            [
                ("ts", "Time", iso),
                ("type", "Type", text),
                ("severity", "Severity", text),
                ("value", "Value", num),
                ("threshold", "Threshold", num),
                ("symbol", "Symbol", text),
                ("venue", "Venue", text),
                ("strategy_id", "Strategy", text),
                ("order_id", "Order", text),
            ],
            "none",
        )
    )
    a = s["alerts"]
    out.append("<h3>Alerts</h3>")
    if not a["available"]:
        out.append(_note(a["note"]))
    else:
        for col in ("status", "type", "level"):
            if f"by_{col}" in a:
                out.append(table(a[f"by_{col}"], [("value", col, text), ("n", "Alerts", num)]))
        cols = [c for c in a["columns"] if c not in ("evidence", "params", "raw")][:12]
        out.append(table(a["alerts"][:25], [(c, c, _cell) for c in cols], "no alert in window"))
        if a.get("history") is None:
            out.append(_note(a.get("history_note")))
        else:
            out.append("<h3>Alert handling history</h3>")
            hist = a["history"][:25]
            hcols = list(hist[0]) if hist else []
            out.append(table(hist, [(c, c, _cell) for c in hcols], "no handling recorded"))
    out.append("</section>")
    return "".join(out)


def _cell(v: Any) -> str:
    if isinstance(v, int) and v > 10**17:  # nanosecond timestamps
        return iso(v)
    return num(v)


def _quality(q: dict[str, Any]) -> str:
    out = ['<section id="quality"><h2>Data quality</h2><h3>Events by source (all time)</h3>']
    out.append(
        table(
            q["sources_all_time"],
            [
                ("source", "Source", text),
                ("lines_read", "Lines read", num),
                ("events", "Events", num),
                ("rejects", "Rejects", num),
                ("duplicates", "Duplicates dropped", num),
                ("ignored", "Ignored", num),
                ("reconciled", "lines = events+rejects+dup+ignored", num),
            ],
            "no source positions in this store",
        )
    )
    out.append("<h3>In the window</h3>")
    out.append(
        table(
            q["sources_in_window"],
            [
                ("source", "Source", text),
                ("events", "Events", num),
                ("kinds", "Kinds", num),
                ("first_iso", "First", text),
                ("last_iso", "Last", text),
                ("lag_mean_ms", "Ingest lag mean (ms)", num),
                ("lag_p99_ms", "p99 (ms)", num),
                ("out_of_order", "Out of order", num),
            ],
        )
    )
    out.append("<h3>Rejects by reason (with examples)</h3>")
    rows = [
        {
            "source": r["source"],
            "reason": r["reason"],
            "count": r["count"],
            "example": r["examples"][0]["raw"] if r["examples"] else None,
            "detail": r["examples"][0]["detail"] if r["examples"] else None,
        }
        for r in q["rejects"]
    ]
    out.append(
        table(
            rows,
            [
                ("source", "Source", text),
                ("reason", "Reason", text),
                ("count", "Count", num),
                ("detail", "Detail", text),
                ("example", "Example (raw)", raw),
            ],
            "no rejects",
        )
    )
    out.append("<h3>Largest gaps in the stream (event time)</h3>")
    out.append(
        table(
            q["gaps"],
            [
                ("source", "Source", text),
                ("gap_s", "Gap", dur),
                ("from_iso", "From", text),
                ("to_iso", "To", text),
            ],
        )
    )
    rec = q["reconciliation"]
    out.append(
        f"<h3>Reconciliation against engine-logged positions ({rec['checked']} checked, "
        f"{rec['flagged']} flagged)</h3>"
    )
    out.append(
        table(
            rec["rows"][:50],
            [
                ("ts", "Time", iso),
                ("strategy_id", "Strategy", text),
                ("symbol", "Symbol", text),
                ("engine_position", "Engine pos", num),
                ("tradelog_position", "Our pos", num),
                ("position_diff", "Diff", num),
                ("engine_realized_pnl", "Engine realized", money),
                ("tradelog_realized_pnl", "Our realized", money),
                ("realized_pnl_diff", "Diff", money),
                ("anomaly_types", "Flags", text),
            ],
            "no position events logged by the engine in the window",
        )
    )
    out.append("</section>")
    return "".join(out)


def _kpis(r: dict[str, Any]) -> str:
    p = r["performance"].get("overall") or {}
    m = (p.get("stats") or {}).get("metrics") or {}
    e = r["execution"]
    fills = (e["slippage"]["overall"] or {}).get("fills")
    ack = e["latency"]["ack"]["overall"] or {}
    items = [
        ("PnL", money(p.get("pnl"))),
        ("Sharpe", num(m.get("sharpe"))),
        ("Max drawdown", pct(m.get("max_drawdown"))),
        ("Round trips", num(r["trades"]["round_trips"]["count"])),
        ("Trade win rate", pct(r["trades"]["round_trips"]["win_rate"])),
        ("Fills", num(fills)),
        ("Fill rate", pct((e["fill_rates"]["overall"] or {}).get("fill_rate_qty"))),
        ("Ack p99 (ms)", num(ack.get("p99_ms"))),
        ("Slippage mean (bps)", num((e["slippage"]["overall"] or {}).get("mean_bps"))),
        ("Anomaly marks", num(r["surveillance"]["anomalies_total"])),
    ]
    return (
        '<div class="kpis">'
        + "".join(f'<div class="kpi"><b>{v}</b><span>{escape(k)}</span></div>' for k, v in items)
        + "</div>"
    )


def render(report: dict[str, Any]) -> str:
    """The whole page."""
    w = report["window"]
    strategies = ", ".join(w["strategies"]) if w["strategies"] else "all"
    timings = [{"section": k, "seconds": v} for k, v in report["timings_s"].items()]
    return "".join(
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(report['title'])} {escape(str(w['from_iso']))}</title>",
            f"<style>{CSS}</style></head><body>",
            f"<h1>{escape(report['title'])}</h1>",
            f'<p class="meta">{escape(str(w["from_iso"]))} → {escape(str(w["to_iso"]))} · '
            f"{w['events']:,} events · strategies: {escape(strategies)} · store "
            f"<code>{escape(report['store'])}</code> · "
            f"generated {escape(report['generated_iso'])}</p>",
            '<nav><a href="#performance">Performance</a><a href="#trades">Trades</a>'
            '<a href="#execution">Execution</a><a href="#surveillance">Surveillance</a>'
            '<a href="#quality">Data quality</a><a href="#appendix">Definitions</a></nav>',
            _kpis(report),
            _performance(report["performance"]),
            _trades(report["trades"]),
            _execution(report["execution"]),
            _surveillance(report["surveillance"]),
            _quality(report["data_quality"]),
            '<section id="appendix"><h2>Definitions</h2>',
            _note(report["conventions"]["pnl"]),
            _note(report["conventions"]["slippage"]),
            _note(
                "Return statistics use quantstats' definitions with rf = 0 and periods = "
                "periods_per_year on r_t = ΔE_t / E_{t−1}, E = capital + PnL; VaR and CVaR are "
                "parametric (normal) one-period figures. Drawdown start is the peak before the "
                "fall; duration runs from the peak to the recovery (or to the end, ongoing). "
                "Trade statistics come from round trips. See docs/reports.md."
            ),
            table(timings, [("section", "Section", text), ("seconds", "Collected in (s)", num)]),
            "</section></body></html>",
        ]
    )
