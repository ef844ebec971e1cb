"""Collects every figure of the post-run report through the storage queries and the pure
analytics: performance (overall, per strategy, maker vs taker), trades, execution quality,
surveillance and data quality. The result is plain JSON-ready data: the HTML page, the CSV
tables and ``GET /log_stream/report`` all render this one structure."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from tradelog.analytics import performance as perf
from tradelog.analytics.stats import QUANTILES, log_histogram, summary
from tradelog.model.timefmt import ns_to_iso
from tradelog.reports import queries as rq
from tradelog.storage.base import EventFilter, Store
from tradelog.storage.queries import fills as fill_q
from tradelog.storage.queries import latency as lat
from tradelog.storage.queries import pnl as pnl_q
from tradelog.storage.queries import quality as qual
from tradelog.storage.queries import tca

NS: Final = 1_000_000_000
MAX_POINTS: Final = 5_000
"""The equity grid widens (whole seconds) to keep at most this many points."""
OVERALL: Final = "(all)"
SLIPPAGE_SIGN: Final = (
    "slippage_bps = side × (fill price − arrival mid) / arrival mid × 10^4; positive = cost "
    "(side = +1 buy, −1 sell). Markouts and spread capture: positive = good for us."
)
PNL_CONVENTION: Final = (
    "average cost per strategy × account × symbol; realized PnL net of fees; unrealized = "
    "position × (mark − avg cost), mark = latest two-sided mid, else last trade, else last fill"
)
DAILY_HEATMAP_MIN_DAYS: Final = 2
MONTHLY_HEATMAP_MIN_MONTHS: Final = 3


@dataclass(frozen=True)
class ReportParams:
    """What the report covers and the performance parameters (printed in the report)."""

    start: int | None = None
    end: int | None = None
    strategies: tuple[str, ...] = ()
    capital: float | None = None
    interval_s: float | None = None
    """Equity sampling interval; None = 1 s, widened to keep ≤ MAX_POINTS points."""
    periods_per_year: float | None = None
    """None = a 24/7 calendar: seconds in 365 days / interval."""
    max_rows: int = 200
    """Rows kept in long tables (anomaly marks, alerts, reconciliation)."""

    def __post_init__(self) -> None:
        if self.capital is not None and not (math.isfinite(self.capital) and self.capital > 0):
            raise ValueError(f"capital must be a positive number; was {self.capital}")
        if self.interval_s is not None and not self.interval_s > 0:
            raise ValueError(f"interval_s must be > 0; was {self.interval_s}")
        if self.periods_per_year is not None and not self.periods_per_year > 0:
            raise ValueError(f"periods_per_year must be > 0; was {self.periods_per_year}")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("from must be before to")


@dataclass
class _Timer:
    timings: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            self.timings[name] = round(time.perf_counter() - t0, 4)


def _iso(ns: int | None) -> str | None:
    return ns_to_iso(ns) if ns is not None else None


def build_report(store: Store, params: ReportParams, generated_ns: int) -> dict[str, Any]:
    """Every section of the report; ``timings_s`` says how long each took to collect."""
    timer = _Timer()
    strategy = params.strategies[0] if len(params.strategies) == 1 else None
    flt = EventFilter(start=params.start, end=params.end, strategy=strategy)
    first, last, n_events = timer.run("span", lambda: rq.span(store, flt))
    start = params.start if params.start is not None else first
    end = params.end if params.end is not None else (last + 1 if last is not None else None)
    report: dict[str, Any] = {
        "title": "tradelog report",
        "store": store.url,
        "generated_ns": generated_ns,
        "generated_iso": ns_to_iso(generated_ns),
        "window": {
            "from_ns": start,
            "to_ns": end,
            "from_iso": _iso(start),
            "to_iso": _iso(end),
            "events": n_events,
            "strategies": list(params.strategies) or None,
        },
        "conventions": {"slippage": SLIPPAGE_SIGN, "pnl": PNL_CONVENTION},
    }
    selected = set(params.strategies)
    report["performance"] = timer.run(
        "performance", lambda: _performance(store, flt, params, start, end, selected)
    )
    report["trades"] = timer.run("trades", lambda: _trades(store, flt, selected))
    report["execution"] = timer.run("execution", lambda: _execution(store, flt, selected))
    report["surveillance"] = timer.run("surveillance", lambda: _surveillance(store, flt, params))
    report["data_quality"] = timer.run("data_quality", lambda: _data_quality(store, flt, params))
    report["timings_s"] = timer.timings
    return report


# ------------------------------------------------------------------ performance


def _grid(params: ReportParams, start: int, end: int) -> int:
    """Interval in ns: the one asked for, else 1 s widened to whole seconds."""
    if params.interval_s is not None:
        return max(round(params.interval_s * NS), 1)
    span_s = (end - start) / NS
    return max(1, math.ceil(span_s / MAX_POINTS)) * NS


def _performance(
    store: Store,
    flt: EventFilter,
    params: ReportParams,
    start: int | None,
    end: int | None,
    selected: set[str],
) -> dict[str, Any]:
    out: dict[str, Any] = {"by_strategy": {}, "notes": []}
    if start is None or end is None:
        out["notes"].append("no events in the window")
        return out
    interval = _grid(params, start, end)
    interval_s = interval / NS
    ppy = params.periods_per_year or perf.periods_per_year_24_7(interval_s)
    out["parameters"] = {
        "capital": params.capital,
        "sampling_interval_s": interval_s,
        "periods_per_year": ppy,
        "calendar": "given" if params.periods_per_year else "24/7 (365 days)",
        "risk_free_rate": 0.0,
        "basis": "returns on equity (capital + PnL), quantstats definitions",
    }
    rows = pnl_q.equity_curve(store, flt, start - interval, end, interval)
    times_set: dict[int, int] = {}
    curves: dict[str, dict[int, float | None]] = {}
    for r in rows:
        t = int(r["t"])
        times_set.setdefault(t, len(times_set))
        name = r["strategy_id"] or ""
        if selected and name not in selected:
            continue
        total = None if r["unrealized"] is None else float(r["realized"] + r["unrealized"])
        curves.setdefault(name, {})[t] = total
    grid = np.array(sorted(times_set), dtype=np.int64)
    if grid.size == 0:
        grid = np.arange(start, end + interval, interval, dtype=np.int64)[: MAX_POINTS + 1]
    series: dict[str, np.ndarray] = {}
    for name, pts in sorted(curves.items()):
        series[name] = np.array(
            [np.nan if pts.get(int(t)) is None else pts[int(t)] for t in grid], dtype=np.float64
        )
    overall = np.sum(np.vstack(list(series.values())), axis=0) if series else np.zeros(grid.size)
    out["overall"] = _curve_perf(grid, overall, params, interval_s, ppy, out["notes"], OVERALL)
    for name, pnl in series.items():
        out["by_strategy"][name] = _curve_perf(grid, pnl, params, interval_s, ppy, [], name)
    maker_taker = pnl_q.liquidity_split(store, flt)
    for r in maker_taker:
        gross = r["realized_gross"]
        r["realized_net"] = gross - r["fees"] if gross is not None else None
    out["maker_vs_taker"] = maker_taker
    return out


def _curve_perf(
    grid: np.ndarray,
    pnl: np.ndarray,
    params: ReportParams,
    interval_s: float,
    ppy: float,
    notes: list[str],
    name: str,
) -> dict[str, Any]:
    """Trim leading points without a mark; interior gaps make return statistics undefined."""
    valid = np.isfinite(pnl)
    res: dict[str, Any] = {"name": name, "points_without_mark": int((~valid).sum())}
    if not valid.any():
        res["unavailable"] = "no point of the equity curve has a mark for every open position"
        res["series"] = {"ts": [], "pnl": [], "underwater": []}
        return res
    first = int(np.argmax(valid))
    t, p = grid[first:], pnl[first:]
    if first:
        notes.append(
            f"{name}: the first {first} grid points had an open position without a "
            "mark and are left out"
        )
    gaps = bool((~np.isfinite(p)).any())
    capital = params.capital
    equity = p + capital if capital is not None else p
    res["series"] = {
        "ts": t.tolist(),
        "pnl": [None if not math.isfinite(x) else float(x) for x in p],
    }
    if capital is None or gaps:
        why = (
            "capital not given (--capital or ?capital=): returns need a capital base"
            if capital is None
            else "the equity curve has points without a mark inside the window"
        )
        res["stats"] = None
        res["unavailable"] = why
        finite = np.isfinite(equity)
        res["drawdowns_currency"] = perf.drawdown_periods(t[finite], equity[finite])[:5]
        res["pnl"] = float(p[finite][-1] - p[finite][0]) if finite.any() else None
        res["series"]["underwater"] = []
        return res
    stats = perf.performance(
        t, equity, capital=capital, interval_s=interval_s, periods_per_year=ppy
    )
    res["stats"] = stats
    res["pnl"] = float(p[-1] - p[0])
    res["series"]["underwater"] = perf.underwater(equity).tolist()
    res["daily_returns"] = perf.period_returns(t, equity, "D")
    res["monthly_returns"] = perf.period_returns(t, equity, "M")
    res["pnl_by_hour"] = perf.pnl_by_hour(t, equity)
    return res


# ------------------------------------------------------------------ trades


def _position_rows(store: Store, flt: EventFilter, at: int | None) -> list[dict[str, Any]]:
    rows = pnl_q.positions_at(store, flt, at)
    marks = pnl_q.marks_at(store, sorted({r["symbol"] for r in rows if r["symbol"]}), at)
    out = []
    for r in rows:
        m = marks.get(r["symbol"]) or {"mark": r["last_fill_px"], "mark_source": "last_fill"}
        pos, avg = r["position"] or 0.0, r["avg_cost"]
        unreal = (
            0.0
            if pos == 0
            else (pos * (m["mark"] - avg) if m["mark"] is not None and avg is not None else None)
        )
        realized = (r["realized_gross"] or 0.0) - (r["fees"] or 0.0)
        out.append(
            {
                "strategy": r["strategy_id"],
                "account": r["account_id"],
                "symbol": r["symbol"],
                "position": pos,
                "fees": r["fees"] or 0.0,
                "realized_pnl": realized,
                "unrealized_pnl": unreal,
                "mark_source": m["mark_source"],
            }
        )
    return out


def _pnl_by_symbol(store: Store, flt: EventFilter, selected: set[str]) -> list[dict[str, Any]]:
    """Realized (net), unrealized and total PnL per symbol over the window (as of its end
    minus as of its start)."""
    end_rows = _position_rows(store, flt, flt.end)
    start_rows = _position_rows(store, flt, flt.start) if flt.start is not None else []
    agg: dict[str | None, dict[str, Any]] = {}

    def add(rows: list[dict[str, Any]], sign: float) -> None:
        for r in rows:
            if selected and r["strategy"] not in selected:
                continue
            a = agg.setdefault(
                r["symbol"],
                {
                    "symbol": r["symbol"],
                    "realized_pnl": 0.0,
                    "unrealized_pnl": 0.0,
                    "fees": 0.0,
                    "open_position": 0.0,
                },
            )
            a["realized_pnl"] += sign * r["realized_pnl"]
            a["fees"] += sign * r["fees"]
            if a["unrealized_pnl"] is not None:
                a["unrealized_pnl"] = (
                    None
                    if r["unrealized_pnl"] is None
                    else a["unrealized_pnl"] + sign * r["unrealized_pnl"]
                )
            if sign > 0:
                a["open_position"] += r["position"]

    add(end_rows, 1.0)
    add(start_rows, -1.0)
    out = []
    for a in agg.values():
        u = a["unrealized_pnl"]
        a["total_pnl"] = a["realized_pnl"] + u if u is not None else None
        out.append(a)
    out.sort(key=lambda a: -(a["total_pnl"] if a["total_pnl"] is not None else -math.inf))
    return out


def _trades(store: Store, flt: EventFilter, selected: set[str]) -> dict[str, Any]:
    arrays = rq.round_trip_arrays(store, flt)
    if selected:
        arrays = {k: v for k, v in arrays.items() if k in selected}
    allp = np.concatenate([a[0] for a in arrays.values()]) if arrays else np.empty(0)
    allh = np.concatenate([a[1] for a in arrays.values()]) if arrays else np.empty(0)
    by_symbol = [
        r
        for r in pnl_q.round_trip_summary(store, flt)
        if r["g_symbol"] == 0 and r["g_strategy_id"] == 1
    ]
    turnover = [
        r for r in pnl_q.turnover(store, flt) if not selected or r["strategy_id"] in selected
    ]
    return {
        "round_trips": perf.trade_stats(allp, allh),
        "round_trips_by_strategy": {
            str(k): perf.trade_stats(p, h) for k, (p, h) in sorted(arrays.items(), key=str)
        },
        "round_trips_by_symbol": [
            {
                "symbol": r["symbol"],
                "count": r["trips"],
                "wins": r["wins"],
                "losses": r["losses"],
                "pnl": r["pnl"],
                "expectancy": r["expectancy"],
                "avg_holding_s": r["avg_holding_s"],
            }
            for r in sorted(by_symbol, key=lambda r: -(r["trips"] or 0))
        ],
        "round_trips_note": (
            "by symbol covers all strategies in the window" if len(selected) > 1 else None
        ),
        "pnl_by_symbol": _pnl_by_symbol(store, flt, selected),
        "turnover_by_strategy": turnover,
        "volume_by_symbol": rq.volume_by_symbol(store, flt),
    }


# ------------------------------------------------------------------ execution

_LAT_GROUPS: Final = {"venue": "by_venue", "strategy_id": "by_strategy"}


def _execution(store: Store, flt: EventFilter, selected: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"slippage_sign_convention": SLIPPAGE_SIGN, "quantiles": QUANTILES}
    latency: dict[str, Any] = {}
    venues: set[str] = set()
    for name in lat.KINDS:
        latency[name] = {"overall": None, "by_venue": [], "by_strategy": []}
    for r in lat.summaries(store, flt):
        name = next(k for k, v in lat.KINDS.items() if v == r["kind"])
        row = summary(
            r["n"], r["mean"], r["q"], r["mx"], "ms", {"negative_excluded": int(r["negative"])}
        )
        grouped = [g for g in lat.GROUPS if r[f"g_{g}"] == 0]
        if not grouped:
            latency[name]["overall"] = row
        elif grouped[0] in _LAT_GROUPS:
            g = grouped[0]
            if g == "strategy_id" and selected and r[g] not in selected:
                continue
            latency[name][_LAT_GROUPS[g]].append({g.removesuffix("_id"): r[g], **row})
            if g == "venue" and r[g] is not None:
                venues.add(r[g])
    hist: dict[str, dict[str, list[dict[str, Any]]]] = {}
    by_venue = rq.latency_histograms(store, flt)
    for venue in [None, *sorted(venues)]:
        counts = by_venue.get(venue, {})
        for name, kind in lat.KINDS.items():
            buckets = log_histogram(counts.get(kind, []), "ms")
            if buckets:
                hist.setdefault(name, {})[venue or OVERALL] = buckets
    for part in latency.values():
        for key in ("by_venue", "by_strategy"):
            part[key].sort(key=lambda x: -x["count"])
    out["latency"] = latency
    out["latency_histograms"] = hist
    slip: dict[str, Any] = {"overall": None, "by_venue": [], "by_strategy": [], "by_liquidity": []}
    names = {"venue": "by_venue", "strategy_id": "by_strategy", "liquidity": "by_liquidity"}
    for r in tca.fill_summaries(store, flt):
        row = summary(r["with_benchmark"], r["mean"], r["q"], None, "bps")
        row.pop("max_bps")
        row.update(
            fills=int(r["fills"]),
            without_benchmark=int(r["fills"] - r["with_benchmark"]),
            notional=r["notional"],
            fees=r["fees"],
            notional_weighted_mean_bps=r["notional_weighted"],
            spread_capture_mean_bps=r["spread_capture"],
        )
        grouped = [g for g in tca.GROUPS if r[f"g_{g}"] == 0]
        if not grouped:
            slip["overall"] = row
        elif grouped[0] in names:
            g = grouped[0]
            if g == "strategy_id" and selected and r[g] not in selected:
                continue
            slip[names[g]].append({g.removesuffix("_id"): r[g], **row})
    out["slippage"] = slip
    out["slippage_distribution"] = [
        {
            "lower_bps": b["bucket"] * tca.DIST_WIDTH_BPS,
            "upper_bps": (b["bucket"] + 1) * tca.DIST_WIDTH_BPS,
            "count": int(b["n"]),
        }
        for b in tca.distribution(store, flt)
    ]
    out["slippage_distribution_note"] = (
        f"1 bps buckets; values beyond ±{tca.DIST_CLIP_BPS:g} bps are counted in the end buckets"
    )
    marks = []
    for r in tca.markouts(store, flt):
        mrow: dict[str, Any] = {"liquidity": OVERALL if r["g_liquidity"] == 1 else r["liquidity"]}
        for h in tca.MARKOUT_HORIZONS_S:
            mrow[f"n_{h}s"] = r[f"n_{h}s"]
            mrow[f"mean_{h}s_bps"] = r[f"mean_{h}s"]
        marks.append(mrow)
    out["markouts"] = marks
    rates: dict[str, Any] = {"overall": None, "by_venue": [], "by_strategy": []}
    for r in fill_q.rates(store, flt):
        row = _rate_row(r)
        if r["g_venue"] == 1 and r["g_strategy_id"] == 1:
            rates["overall"] = row
        elif r["g_venue"] == 0:
            rates["by_venue"].append({"venue": r["venue"], **row})
        elif not selected or r["strategy_id"] in selected:
            rates["by_strategy"].append({"strategy": r["strategy_id"], **row})
    rates["still_open"] = fill_q.still_open(store, flt)
    out["fill_rates"] = rates
    out["rejects_by_reason"] = fill_q.reject_reasons(store, flt)
    o = tca.order_summary(store, flt)
    out["orders"] = {
        "count": o.get("orders", 0),
        "slippage_mean_bps": o.get("slippage_mean"),
        "implementation_shortfall_mean_bps": o.get("shortfall_mean"),
        "implementation_shortfall_notional_weighted_bps": o.get("shortfall_weighted"),
    }
    return out


def _rate_row(r: dict[str, Any]) -> dict[str, Any]:
    ordered = r["ordered_qty"] or 0.0
    n = int(r["orders"])
    return {
        "orders": n,
        "fill_rate_qty": (r["filled_qty"] or 0.0) / ordered if ordered > 0 else None,
        "fully_filled": int(r["fully_filled"]),
        "partially_filled": int(r["partially_filled"]),
        "cancelled_without_fill": int(r["cancelled_without_fill"]),
        "cancelled_after_partial": int(r["cancelled_after_partial"]),
        "rejected": int(r["rejected"]),
        "expired": int(r["expired"]),
    }


# ------------------------------------------------------------------ surveillance, quality


def _surveillance(store: Store, flt: EventFilter, params: ReportParams) -> dict[str, Any]:
    counts = qual.anomaly_counts(store, flt, [], [])
    by_type: dict[str, dict[str, int]] = {}
    for c in counts:
        by_type.setdefault(c["type"], {})[c["severity"]] = int(c["n"])
    marks = qual.anomaly_rows(store, flt, [], [], params.max_rows)
    for m in marks:
        m["ts_iso"] = ns_to_iso(m["ts"])
    return {
        "anomalies_by_type": [
            {"type": t, **sev, "total": sum(sev.values())}
            for t, sev in sorted(by_type.items(), key=lambda kv: -sum(kv[1].values()))
        ],
        "anomalies_total": sum(int(c["n"]) for c in counts),
        "latest_marks": marks,
        "alerts": rq.alerts(store, flt, params.max_rows),
    }


def _data_quality(store: Store, flt: EventFilter, params: ReportParams) -> dict[str, Any]:
    window = EventFilter(start=flt.start, end=flt.end)
    stats = store.statistics()
    sources = []
    for name, c in stats["sources"].items():
        sources.append(
            {
                "source": name,
                **{
                    k: c[k]
                    for k in (
                        "lines_read",
                        "events",
                        "rejects",
                        "duplicates",
                        "ignored",
                        "reconciled",
                    )
                },
            }
        )
    in_window = []
    activity = qual.source_activity(store, window)
    for r in activity.sources:
        in_window.append(
            {
                "source": r["source"],
                "events": r["events"],
                "kinds": r["kinds"],
                "first_iso": _iso(r["first_ts"]),
                "last_iso": _iso(r["last_ts"]),
                "lag_mean_ms": r["lag_mean"],
                "lag_p99_ms": r["lag_q"][3] if r["lag_q"] else None,
                "out_of_order": r["out_of_order"],
            }
        )
    rejects: dict[tuple[str, str], dict[str, Any]] = {}
    for r in qual.rejects(store, window):
        e = rejects.setdefault(
            (r["source"], r["reason"]),
            {"source": r["source"], "reason": r["reason"], "count": int(r["n"]), "examples": []},
        )
        e["examples"].append(
            {
                "detail": r["detail"],
                "raw": r["raw"],
                "src_ref": r["src_ref"],
                "src_offset": r["src_offset"],
            }
        )
    gaps = [
        {
            "source": g["source"],
            "gap_s": g["gap_s"],
            "from_iso": _iso(g["gap_start_ns"]),
            "to_iso": _iso(g["gap_end_ns"]),
        }
        for g in activity.gaps
    ]
    recon = pnl_q.reconciliation(store, flt, params.max_rows)
    flagged = [r for r in recon if r["anomaly_types"] and "mismatch" in r["anomaly_types"]]
    for r in recon:
        r["ts_iso"] = ns_to_iso(r["ts"])
    return {
        "sources_all_time": sources,
        "duplicates_dropped": sum(s["duplicates"] for s in sources),
        "sources_in_window": in_window,
        "rejects": list(rejects.values()),
        "gaps": gaps,
        "reconciliation": {
            "rows": recon,
            "checked": len(recon),
            "flagged": len(flagged),
            "note": "engine-logged position events beside tradelog's own",
        },
    }
