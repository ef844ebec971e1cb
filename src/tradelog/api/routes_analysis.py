"""``/log_stream`` analyses: latency, slippage/TCA, fill rates, PnL, positions, equity.

Every analysis takes ``from``/``to`` or ``minutes``/``hours`` (ending at the latest event
time in the store) and the filters ``venue``, ``strategy``, ``symbol``, ``account``.
Field names carry their units (``_ms``, ``_bps``, ``_ns``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from tradelog.analytics.stats import QUANTILES, log_histogram, summary
from tradelog.api.deps import ApiContext, Ctx, Window
from tradelog.api.export import Format, csv_response, json_response
from tradelog.model.timefmt import ns_to_iso, ns_to_iso_many
from tradelog.storage.base import EventFilter
from tradelog.storage.queries import fills as fill_q
from tradelog.storage.queries import latency as lat
from tradelog.storage.queries import pnl as pnl_q
from tradelog.storage.queries import tca

router = APIRouter(prefix="/log_stream", tags=["analysis"])

GROUP_NAMES = {"venue": "by_venue", "strategy_id": "by_strategy", "symbol": "by_symbol",
               "order_type": "by_order_type"}  # fmt: skip


def window_info(flt: EventFilter) -> dict[str, Any]:
    return {
        "from_ns": flt.start,
        "to_ns": flt.end,
        "from_iso": ns_to_iso(flt.start) if flt.start is not None else None,
        "to_iso": ns_to_iso(flt.end) if flt.end is not None else None,
        "filters": {
            "symbol": flt.symbol,
            "venue": flt.venue,
            "strategy": flt.strategy,
            "account": flt.account,
        },
    }


@router.get("/latency_analysis")
def latency_analysis(
    ctx: Ctx,
    window: Window,
    order_type: Annotated[str | None, Query(description="Only this order type")] = None,
) -> dict[str, Any]:
    """Ack (ack − new), first-fill (first fill − new) and cancel (cancelled − cancel
    request) latency in ms: count, mean, p50/p90/p95/p99/p99.9, max; a log-spaced
    histogram; by venue, strategy, symbol and order type; and a per-minute trend. Negative
    latencies are clock skew: counted in ``negative_excluded``, left out of the figures."""
    rows, histogram, trend = lat.analysis(ctx.store, window, order_type)
    out: dict[str, Any] = {"window": window_info(window), "unit": "ms", "quantiles": QUANTILES}
    for name, kind in lat.KINDS.items():
        part: dict[str, Any] = {"overall": summary(0, None, None, None, "ms",
                                                   {"negative_excluded": 0})}  # fmt: skip
        for key in GROUP_NAMES.values():
            part[key] = []
        for r in rows:
            if r["kind"] != kind:
                continue
            row = summary(r["n"], r["mean"], r["q"], r["mx"], "ms",
                          {"negative_excluded": int(r["negative"])})  # fmt: skip
            grouped = [g for g in lat.GROUPS if r[f"g_{g}"] == 0]
            if not grouped:
                part["overall"] = row
            else:
                g = grouped[0]
                part[GROUP_NAMES[g]].append({g.removesuffix("_id"): r[g], **row})
        for key in GROUP_NAMES.values():
            part[key].sort(key=lambda x: -x["count"])
        part["histogram"] = log_histogram(
            [(h["bucket"], h["n"]) for h in histogram if h["kind"] == kind],
            "ms",
        )  # fmt: skip
        part["trend_per_minute"] = [
            {
                "minute_ns": t["minute_ns"],
                "minute_iso": ns_to_iso(t["minute_ns"]),
                "count": t["n"],
                "mean_ms": t["mean"],
                "p50_ms": t["q"][0],
                "p99_ms": t["q"][1],
            }
            for t in trend
            if t["kind"] == kind
        ]
        out[name] = part
    return out


# ---------------------------------------------------------------------------- TCA

SLIPPAGE_SIGN = (
    "slippage_bps = side × (fill price − arrival mid) / arrival mid × 10^4, positive = cost; "
    "price_improvement_bps = −slippage_bps; spread_capture_bps = side × (mid at fill − fill "
    "price) / mid × 10^4 and markouts = side × (mid at fill time + h − fill price) / fill price "
    "× 10^4 are positive = good for us"
)
TCA_GROUPS = {"venue": "by_venue", "strategy_id": "by_strategy", "symbol": "by_symbol",
              "liquidity": "by_liquidity"}  # fmt: skip


def _slip_row(r: dict[str, Any]) -> dict[str, Any]:
    row = summary(r["with_benchmark"], r["mean"], r["q"], None, "bps")
    row.pop("max_bps")
    row["count"] = int(r["fills"])
    row["with_benchmark"] = int(r["with_benchmark"])
    row["without_benchmark"] = int(r["fills"]) - int(r["with_benchmark"])
    row["notional"] = r["notional"]
    row["qty"] = r["qty"]
    row["fees"] = r["fees"]
    row["notional_weighted_mean_bps"] = r["notional_weighted"]
    row["price_improvement_mean_bps"] = -r["mean"] if r["mean"] is not None else None
    row["spread_capture_mean_bps"] = r["spread_capture"]
    return row


@router.get("/slippage_analysis")
def slippage_analysis(ctx: Ctx, window: Window) -> dict[str, Any]:
    """Arrival slippage per fill (mean, median/p95 and more, notional-weighted mean,
    distribution), by venue, strategy, symbol and maker vs taker; markouts at +1/5/30/60 s;
    order level: quantity-weighted slippage and implementation shortfall (execution +
    fees + opportunity cost of the unfilled part at the last mid). Fills with no quote
    before their order have no benchmark: counted, never treated as 0."""
    rows = tca.fill_summaries(ctx.store, window)
    out: dict[str, Any] = {"window": window_info(window), "sign_convention": SLIPPAGE_SIGN}
    for key in TCA_GROUPS.values():
        out[key] = []
    out["fills"] = _slip_row({"fills": 0, "with_benchmark": 0, "mean": None, "q": None,
                              "notional": 0.0, "qty": 0.0, "fees": 0.0,
                              "notional_weighted": None, "spread_capture": None})  # fmt: skip
    for r in rows:
        grouped = [g for g in tca.GROUPS if r[f"g_{g}"] == 0]
        if not grouped:
            out["fills"] = _slip_row(r)
        else:
            g = grouped[0]
            out[TCA_GROUPS[g]].append({g.removesuffix("_id"): r[g], **_slip_row(r)})
    for key in TCA_GROUPS.values():
        out[key].sort(key=lambda x: -x["count"])
    out["distribution"] = [
        {"lower_bps": b["bucket"] * tca.DIST_WIDTH_BPS,
         "upper_bps": (b["bucket"] + 1) * tca.DIST_WIDTH_BPS, "count": b["n"],
         "tail": b["bucket"] * tca.DIST_WIDTH_BPS >= tca.DIST_CLIP_BPS
         or b["bucket"] * tca.DIST_WIDTH_BPS < -tca.DIST_CLIP_BPS}
        for b in tca.distribution(ctx.store, window)
    ]  # fmt: skip
    marks: dict[str, Any] = {}
    for r in tca.markouts(ctx.store, window):
        key = "overall" if r["g_liquidity"] == 1 else f"liquidity={r['liquidity']}"
        marks[key] = {
            f"{h}s": {"count": r[f"n_{h}s"], "mean_bps": r[f"mean_{h}s"],
                      "median_bps": r[f"median_{h}s"]}
            for h in tca.MARKOUT_HORIZONS_S
        }  # fmt: skip
    out["markouts"] = marks
    o = tca.order_summary(ctx.store, window)
    out["orders"] = {
        "count": o.get("orders", 0),
        "with_benchmark": o.get("with_benchmark", 0),
        "slippage_mean_bps": o.get("slippage_mean"),
        "slippage_median_bps": o.get("slippage_median"),
        "implementation_shortfall_mean_bps": o.get("shortfall_mean"),
        "implementation_shortfall_median_bps": o.get("shortfall_median"),
        "implementation_shortfall_notional_weighted_bps": o.get("shortfall_weighted"),
    }
    return out


@router.get("/fills", response_model=None)
def fills(
    ctx: Ctx,
    window: Window,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 10_000,
    format: Annotated[Format, Query()] = "json",
) -> dict[str, Any] | Response:
    """Every fill with its benchmarks (arrival mid and time, mid at the fill and its time)
    and measures (slippage, price improvement, spread capture, markouts)."""
    rows = tca.fill_rows(ctx.store, window, limit)
    if format == "csv":
        return csv_response(rows, "fills", tca.FILL_ROW_COLUMNS)
    return json_response({"window": window_info(window), "sign_convention": SLIPPAGE_SIGN,
                          "count": len(rows), "fills": rows})  # fmt: skip


@router.get("/orders", response_model=None)
def orders(
    ctx: Ctx,
    window: Window,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 10_000,
    format: Annotated[Format, Query()] = "json",
) -> dict[str, Any] | Response:
    """Finished orders (by the time they finished) with fill rate, latencies, arrival mid,
    slippage and implementation shortfall."""
    rows = tca.order_rows(ctx.store, window, limit)
    if format == "csv":
        return csv_response(rows, "orders", tca.ORDER_ROW_COLUMNS)
    return json_response({"window": window_info(window), "sign_convention": SLIPPAGE_SIGN,
                          "count": len(rows), "orders": rows})  # fmt: skip


# ---------------------------------------------------------------------------- fill rates


def _rate_row(r: dict[str, Any]) -> dict[str, Any]:
    ordered = r["ordered_qty"] or 0.0
    orders_n = int(r["orders"])
    return {
        "orders": orders_n,
        "ordered_qty": ordered,
        "filled_qty": r["filled_qty"] or 0.0,
        "fill_rate_qty": (r["filled_qty"] or 0.0) / ordered if ordered > 0 else None,
        "fill_rate_count": int(r["fully_filled"]) / orders_n if orders_n else None,
        "fully_filled": int(r["fully_filled"]),
        "partially_filled": int(r["partially_filled"]),
        "cancelled_without_fill": int(r["cancelled_without_fill"]),
        "cancelled_after_partial": int(r["cancelled_after_partial"]),
        "rejected": int(r["rejected"]),
        "expired": int(r["expired"]),
        "without_quantity": int(r["without_quantity"]),
    }


@router.get("/fill_rates")
def fill_rates(ctx: Ctx, window: Window) -> dict[str, Any]:
    """Σ filled / Σ ordered over orders that reached a terminal state in the window (and the
    share fully filled), with the breakdown by outcome, rejects by reason, orders still
    open, by venue and by strategy."""
    out: dict[str, Any] = {"window": window_info(window), "by_venue": [], "by_strategy": []}
    out["overall"] = _rate_row({"orders": 0, "ordered_qty": 0.0, "filled_qty": 0.0,
                                "fully_filled": 0, "partially_filled": 0,
                                "cancelled_without_fill": 0, "cancelled_after_partial": 0,
                                "rejected": 0, "expired": 0, "without_quantity": 0})  # fmt: skip
    for r in fill_q.rates(ctx.store, window):
        if r["g_venue"] == 1 and r["g_strategy_id"] == 1:
            out["overall"] = _rate_row(r)
        elif r["g_venue"] == 0:
            out["by_venue"].append({"venue": r["venue"], **_rate_row(r)})
        else:
            out["by_strategy"].append({"strategy": r["strategy_id"], **_rate_row(r)})
    out["rejected_by_reason"] = fill_q.reject_reasons(ctx.store, window)
    out["still_open"] = fill_q.still_open(ctx.store, window)
    return out


# ---------------------------------------------------------------------------- PnL

PNL_CONVENTION = (
    "average cost per strategy × account × symbol; realized_pnl is net of fees "
    "(gross_realized_pnl − fees); unrealized_pnl = position × (mark − avg_cost), mark = latest "
    "two-sided mid, else last public trade, else last fill price; total_pnl = realized_pnl + "
    "unrealized_pnl"
)
POSITION_COLUMNS = (
    "strategy", "account", "symbol", "position", "avg_cost", "mark", "mark_ts", "mark_source",
    "gross_realized_pnl", "fees", "realized_pnl", "unrealized_pnl", "total_pnl", "last_fill_ts",
)  # fmt: skip
VENUE_SCOPE = (
    "positions, PnL, round trips and the equity curve are per strategy × account × symbol "
    "across venues: the venue filter does not apply to them (it does to turnover and maker/"
    "taker volume)"
)


def _position_rows(ctx: ApiContext, window: EventFilter, end: int | None) -> list[dict[str, Any]]:
    rows = pnl_q.positions_at(ctx.store, window, end)
    symbols = sorted({r["symbol"] for r in rows if r["symbol"] is not None})
    marks = pnl_q.marks_at(ctx.store, symbols, end)
    out = []
    for r in rows:
        m = marks.get(r["symbol"]) or {"mark": r["last_fill_px"], "mark_ts": r["last_fill_ts"],
                                       "mark_source": "last_fill"}  # fmt: skip
        position = r["position"] or 0.0
        avg = r["avg_cost"]
        unrealized = (
            0.0
            if position == 0
            else (
                position * (m["mark"] - avg) if m["mark"] is not None and avg is not None else None
            )
        )
        realized = (r["realized_gross"] or 0.0) - (r["fees"] or 0.0)
        out.append({
            "strategy": r["strategy_id"], "account": r["account_id"], "symbol": r["symbol"],
            "position": position, "avg_cost": avg if position else None,
            "mark": m["mark"], "mark_ts": m["mark_ts"], "mark_source": m["mark_source"],
            "gross_realized_pnl": r["realized_gross"], "fees": r["fees"],
            "realized_pnl": realized, "unrealized_pnl": unrealized,
            "total_pnl": realized + unrealized if unrealized is not None else None,
            "last_fill_ts": r["last_fill_ts"],
        })  # fmt: skip
    return out


@router.get("/positions", response_model=None)
def positions(
    ctx: Ctx, window: Window, format: Annotated[Format, Query()] = "json"
) -> dict[str, Any] | Response:
    """Positions per strategy × account × symbol as of the end of the window (or now):
    quantity, average cost, mark, realized (net of fees), unrealized, total."""
    rows = _position_rows(ctx, window, window.end)
    if format == "csv":
        return csv_response(rows, "positions", POSITION_COLUMNS)
    return json_response({"window": window_info(window), "convention": PNL_CONVENTION,
                          "venue_scope": VENUE_SCOPE, "positions": rows})  # fmt: skip


def _sum(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows]
    if any(v is None for v in values):
        return None
    return float(sum(values))


@router.get("/pnl")
def pnl(ctx: Ctx, window: Window) -> dict[str, Any]:
    """PnL in the window (as of its end minus as of its start; whole history without a
    window) per strategy and overall, with maker vs taker volume/fees/realized PnL, turnover
    and round trips (flat → flat: count, win rate, average win/loss, profit factor,
    expectancy, holding time)."""
    end_rows = _position_rows(ctx, window, window.end)
    start_rows = _position_rows(ctx, window, window.start) if window.start is not None else []
    before = {(r["strategy"], r["account"], r["symbol"]): r for r in start_rows}
    per_strategy: dict[str | None, list[dict[str, Any]]] = {}
    for r in end_rows:
        b = before.get((r["strategy"], r["account"], r["symbol"]))
        delta = dict(r)
        for k in ("gross_realized_pnl", "fees", "realized_pnl", "unrealized_pnl", "total_pnl"):
            if b is not None and delta[k] is not None:
                delta[k] = None if b[k] is None else delta[k] - b[k]
        per_strategy.setdefault(r["strategy"], []).append(delta)
    strategies = []
    for name, rows in sorted(per_strategy.items(), key=lambda kv: str(kv[0])):
        strategies.append({"strategy": name, **_pnl_totals(rows)})
    all_rows = [r for rows in per_strategy.values() for r in rows]
    trips = pnl_q.round_trip_summary(ctx.store, window)
    return {
        "window": window_info(window),
        "convention": PNL_CONVENTION,
        "venue_scope": VENUE_SCOPE,
        "overall": _pnl_totals(all_rows),
        "by_strategy": strategies,
        "by_liquidity": pnl_q.liquidity_split(ctx.store, window),
        "turnover_by_strategy": pnl_q.turnover(ctx.store, window),
        "round_trips": _trip_summary(trips),
    }


def _pnl_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "gross_realized_pnl": _sum(rows, "gross_realized_pnl") if rows else 0.0,
        "fees": _sum(rows, "fees") if rows else 0.0,
        "realized_pnl": _sum(rows, "realized_pnl") if rows else 0.0,
        "unrealized_pnl": _sum(rows, "unrealized_pnl") if rows else 0.0,
        "total_pnl": _sum(rows, "total_pnl") if rows else 0.0,
        "open_positions": sum(1 for r in rows if r["position"]),
    }


def _trip_row(r: dict[str, Any]) -> dict[str, Any]:
    trips = int(r["trips"])
    losses = r["gross_losses"]
    return {
        "count": trips,
        "wins": int(r["wins"]),
        "losses": int(r["losses"]),
        "win_rate": int(r["wins"]) / trips if trips else None,
        "avg_win": r["avg_win"],
        "avg_loss": r["avg_loss"],
        "profit_factor": (r["gross_wins"] or 0.0) / -losses if losses else None,
        "expectancy": r["expectancy"],
        "pnl": r["pnl"],
        "avg_holding_s": r["avg_holding_s"],
        "median_holding_s": r["median_holding_s"],
    }


def _trip_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"overall": None, "by_strategy": [], "by_symbol": []}
    for r in rows:
        if r["g_strategy_id"] == 1 and r["g_symbol"] == 1:
            out["overall"] = _trip_row(r)
        elif r["g_strategy_id"] == 0:
            out["by_strategy"].append({"strategy": r["strategy_id"], **_trip_row(r)})
        else:
            out["by_symbol"].append({"symbol": r["symbol"], **_trip_row(r)})
    return out


@router.get("/round_trips", response_model=None)
def round_trips(
    ctx: Ctx,
    window: Window,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 10_000,
    format: Annotated[Format, Query()] = "json",
) -> dict[str, Any] | Response:
    """Round trips (flat → flat per strategy × account × symbol) closed in the window."""
    rows = pnl_q.round_trip_rows(ctx.store, window, limit)
    if format == "csv":
        return csv_response(rows, "round_trips", pnl_q.ROUND_TRIP_COLUMNS)
    return json_response({"window": window_info(window), "venue_scope": VENUE_SCOPE,
                          "count": len(rows), "round_trips": rows})  # fmt: skip


MAX_POINTS = 2000


@router.get("/equity_curve", response_model=None)
def equity_curve(
    ctx: Ctx,
    window: Window,
    interval_s: Annotated[float, Query(gt=0, allow_inf_nan=False)] = 1.0,
) -> Response:
    """Total PnL (realized net of fees + unrealized) on an event-time grid, per strategy and
    overall. The interval grows (stated in the payload) to keep at most 2,000 points."""
    span = ctx.store.query("SELECT min(ts) AS a, max(ts) AS b FROM events").to_pylist()[0]
    if span["a"] is None:
        return json_response({"window": window_info(window), "interval_s": interval_s,
                              "points": []})  # fmt: skip
    start = window.start if window.start is not None else int(span["a"])
    end = window.end if window.end is not None else int(span["b"]) + 1
    interval = max(int(interval_s * 1e9), 1)
    if (end - start) / interval > MAX_POINTS:
        interval = -(-(end - start) // MAX_POINTS)
    rows = pnl_q.equity_curve(ctx.store, window, start, end, interval)
    points: dict[int, dict[str, Any]] = {}
    for r in rows:
        t = int(r["t"])
        p = points.get(t)
        if p is None:
            p = points[t] = {"ts": t, "ts_iso": "", "total_pnl": 0.0, "by_strategy": {}}
        total = None if r["unrealized"] is None else r["realized"] + r["unrealized"]
        p["by_strategy"][r["strategy_id"] or ""] = total
        p["total_pnl"] = None if total is None or p["total_pnl"] is None else p["total_pnl"] + total
    for p, iso in zip(points.values(), ns_to_iso_many(list(points)), strict=True):
        p["ts_iso"] = iso
    return json_response({
        "window": window_info(window),
        "interval_s": interval / 1e9,
        "convention": PNL_CONVENTION,
        "venue_scope": VENUE_SCOPE,
        "points": [points[t] for t in sorted(points)],
    })  # fmt: skip


@router.get("/reconciliation", response_model=None)
def reconciliation(
    ctx: Ctx,
    window: Window,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    format: Annotated[Format, Query()] = "json",
) -> dict[str, Any] | Response:
    """Positions and realized PnL the engine logged (``position`` events) beside tradelog's
    own at the same moment; differences beyond the configured tolerance are marked
    ``position_mismatch`` / ``pnl_mismatch``."""
    rows = pnl_q.reconciliation(ctx.store, window, limit)
    if format == "csv":
        return csv_response(rows, "reconciliation", pnl_q.RECONCILIATION_COLUMNS)
    flagged = sum(1 for r in rows if r["anomaly_types"] and "mismatch" in r["anomaly_types"])
    return json_response({"window": window_info(window), "count": len(rows),
                          "flagged": flagged, "rows": rows})  # fmt: skip
