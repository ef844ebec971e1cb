"""``/log_stream`` market data: OHLCV bars, pair analytics with rule alerts, top of book.

Prices and sizes are in the instrument's own units as the source logged them; times are
UTC nanoseconds (``_ns``) with their ISO-8601 form (``_iso``); spreads and z-scores of
pairs are in log units and standard deviations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from tradelog.analytics.pairs import TIMEFRAME_NS, PairAnalysis, Timeframe, analyze_pair
from tradelog.analytics.rules import PairRule, evaluate, rules_for_pair
from tradelog.api.deps import Ctx, window_filter
from tradelog.api.export import Format, csv_response
from tradelog.model.timefmt import ns_to_iso
from tradelog.storage.base import EventFilter
from tradelog.storage.queries import market

router = APIRouter(prefix="/log_stream", tags=["market"])

PAIR_COLUMNS: Final = ("ts_ns", "ts_iso", "a_close", "b_close", "spread", "zscore",
                       "correlation")  # fmt: skip
BAR_CSV_COLUMNS: Final = ("ts_ns", "ts_iso", *market.BAR_COLUMNS[1:])
MAX_BARS: Final = 1_000_000
MAX_LOOKBACK: Final = 100_000
MAX_WINDOW: Final = 10_000


def market_window(
    ctx: Ctx,
    from_: Annotated[
        str | None, Query(alias="from", description="ISO-8601 start (inclusive), UTC if no offset")
    ] = None,
    to: Annotated[str | None, Query(description="ISO-8601 end (exclusive)")] = None,
    minutes: Annotated[
        float | None,
        Query(gt=0, allow_inf_nan=False, description="Window length ending at the latest event"),
    ] = None,
    hours: Annotated[
        float | None, Query(gt=0, allow_inf_nan=False, description="Window length in hours")
    ] = None,
    venue: Annotated[str | None, Query(description="Only trades on this venue")] = None,
) -> EventFilter:
    """The common window (``from``/``to`` or ``minutes``/``hours``) and a venue; the
    strategy/account filters do not apply to public market data."""
    return window_filter(ctx, from_, to, minutes, hours, None, venue, None, None)


MarketWindow = Annotated[EventFilter, Depends(market_window)]


def _window_info(flt: EventFilter, width_ns: int) -> dict[str, Any]:
    aligned = market.align_window(flt, width_ns)

    def iso(ns: int | None) -> str | None:
        return ns_to_iso(ns) if ns is not None else None

    return {
        "from_ns": flt.start, "to_ns": flt.end, "from_iso": iso(flt.start), "to_iso": iso(flt.end),
        "bars_from_ns": aligned.start, "bars_to_ns": aligned.end,
        "bars_from_iso": iso(aligned.start), "bars_to_iso": iso(aligned.end),
        "filters": {"venue": flt.venue},
    }  # fmt: skip


@router.get("/bars", response_model=None)
def bars(
    ctx: Ctx,
    window: MarketWindow,
    symbol: Annotated[str, Query(min_length=1, description="Symbol")],
    timeframe: Annotated[Timeframe, Query(description="Bar length")] = "1m",
    limit: Annotated[int, Query(ge=1, le=MAX_BARS, description="The last N bars")] = 100_000,
    format: Annotated[Format, Query()] = "json",
) -> dict[str, Any] | Response:
    """OHLCV bars from public trades (``market_trade``) of one symbol, all venues or one:
    ``ts_ns`` = bar start, open/close = first/last trade, volume = Σ qty, notional = Σ
    price × qty, vwap = notional / volume, trades = count. Never backfilled: an interval
    without a trade has no bar. The window is widened to whole bars (``bars_from_ns``,
    ``bars_to_ns``); ``truncated`` says older bars were cut by ``limit``."""
    width = TIMEFRAME_NS[timeframe]
    rows, truncated = market.bars(ctx.store, symbol, width, window, limit)
    for row in rows:
        row["ts_iso"] = ns_to_iso(row["ts_ns"])
    if format == "csv":
        return csv_response(rows, f"bars_{symbol}_{timeframe}", BAR_CSV_COLUMNS)
    return {
        "window": _window_info(window, width),
        "symbol": symbol,
        "timeframe": timeframe,
        "timeframe_ns": width,
        "count": len(rows),
        "truncated": truncated,
        "bars": rows,
    }


@dataclass(frozen=True, slots=True)
class _PairRequest:
    a: str
    b: str
    flt: EventFilter
    lookback: int


def _analyze(
    ctx: Ctx, req: _PairRequest, timeframe: str, window: int
) -> tuple[PairAnalysis, list[dict[str, Any]]]:
    rows = market.pair_closes(ctx.store, req.a, req.b, TIMEFRAME_NS[timeframe], req.flt,
                              req.lookback)  # fmt: skip
    result = analyze_pair(
        [r["ts_ns"] for r in rows], [r["a_close"] for r in rows], [r["b_close"] for r in rows],
        window,
    )  # fmt: skip
    series = result.rows()
    for row in series:
        row["ts_iso"] = ns_to_iso(row["ts_ns"])
    return result, series


def _rule_states(
    ctx: Ctx, req: _PairRequest, rules: list[PairRule], current: tuple[str, int, PairAnalysis]
) -> list[dict[str, Any]]:
    """Each rule on its own timeframe and window over the same time window and lookback
    (the request's own analysis is reused when they match)."""
    done: dict[tuple[str, int], PairAnalysis] = {(current[0], current[1]): current[2]}
    out = []
    for rule in rules:
        key = (rule.timeframe, rule.window)
        if key not in done:
            done[key] = _analyze(ctx, req, rule.timeframe, rule.window)[0]
        res = done[key]
        state = evaluate(rule, res.latest())
        last_ts = int(res.ts_ns[-1]) if len(res.ts_ns) else None
        state["evaluated_at_ns"] = last_ts
        state["evaluated_at_iso"] = ns_to_iso(last_ts) if last_ts is not None else None
        state["status"] = res.status
        if res.status != "ok":
            state["reason"] = res.reason
        out.append(state)
    return out


def _pair_rules(ctx: Ctx) -> list[PairRule]:
    return list(ctx.pair_rules)


@router.get("/pairs", response_model=None)
def pairs(
    ctx: Ctx,
    flt: MarketWindow,
    a: Annotated[str, Query(min_length=1, description="First leg (regressand)")],
    b: Annotated[str, Query(min_length=1, description="Second leg (regressor)")],
    timeframe: Annotated[Timeframe, Query(description="Bar length")] = "1m",
    window: Annotated[
        int, Query(ge=2, le=MAX_WINDOW, description="Rolling window in bars (z-score, correlation)")
    ] = 20,
    lookback: Annotated[
        int, Query(ge=3, le=MAX_LOOKBACK, description="The last N common bars analysed")
    ] = 1_000,
    format: Annotated[Format, Query()] = "json",
) -> dict[str, Any] | Response:
    """Pair analytics on bar closes at the bar times where both symbols traded: OLS hedge
    ratio ``log(a) = alpha + beta·log(b)`` over the sample, spread = log(a) − beta·log(b) −
    alpha (log units), rolling z-score of the spread over ``window`` bars (sample std),
    rolling correlation of log returns over ``window`` returns, ADF test on the spread.
    Nothing is computed before ``bars_needed`` common bars (``status: insufficient_data``).
    Rolling values are null until their window is full. ``rules`` are the configured rules
    on this pair, each evaluated on its own timeframe and window at the latest bar."""
    if a == b:
        raise HTTPException(422, f"a and b must differ (both are {a!r})")
    if lookback < window + 1:
        raise HTTPException(
            422, f"lookback must be at least window + 1 = {window + 1} bars; was {lookback}"
        )
    req = _PairRequest(a=a, b=b, flt=flt, lookback=lookback)
    result, series = _analyze(ctx, req, timeframe, window)
    if format == "csv":
        return csv_response(series, f"pairs_{a}_{b}_{timeframe}", PAIR_COLUMNS)
    width = TIMEFRAME_NS[timeframe]
    hedge = result.hedge
    latest = result.latest()
    last_ts = int(result.ts_ns[-1]) if len(result.ts_ns) else None
    return {
        "window": _window_info(flt, width),
        "a": a,
        "b": b,
        "timeframe": timeframe,
        "timeframe_ns": width,
        "window_bars": window,
        "lookback_bars": lookback,
        "status": result.status,
        "reason": result.reason,
        "bars_available": result.bars_available,
        "bars_needed": result.bars_needed,
        "hedge_ratio": None if hedge is None else {
            "beta": hedge.beta, "alpha": hedge.alpha, "r2": hedge.r2, "nobs": hedge.nobs,
            "model": "log(a) = alpha + beta * log(b), OLS with intercept",
        },
        "adf": result.adf.as_dict() if result.adf is not None else None,
        "adf_reason": result.adf_reason,
        "latest": {"ts_ns": last_ts, "ts_iso": ns_to_iso(last_ts) if last_ts is not None else None,
                   **latest},
        "units": {"spread": "log price units", "zscore": "standard deviations (ddof=1)",
                  "correlation": "Pearson, log returns"},
        "rules": _rule_states(ctx, req, rules_for_pair(_pair_rules(ctx), a, b),
                              (timeframe, window, result)),
        "series": series,
    }  # fmt: skip


@router.get("/book")
def book(
    ctx: Ctx,
    symbol: Annotated[str, Query(min_length=1, description="Symbol")],
    venue: Annotated[str | None, Query(description="Only this venue's quotes")] = None,
) -> dict[str, Any]:
    """Top of book: the latest quote of the symbol (on ``venue``, else on any venue) with
    mid, spread and spread in bps (when both sides are present); ``by_venue`` lists the
    latest quote of every venue when no venue is given. Without a quote the fields are
    null and ``reason`` says why."""
    q = market.top_of_book(ctx.store, symbol, venue)
    out: dict[str, Any] = {"symbol": symbol, "venue": venue, **_quote_view(q)}
    if q is None:
        where = f" on venue {venue!r}" if venue is not None else ""
        out["reason"] = f"no quote for {symbol!r}{where} in the store"
    elif out["mid"] is None:
        out["reason"] = "one-sided quote: no mid or spread"
    if venue is None:
        out["by_venue"] = [_quote_view(v) for v in market.book_by_venue(ctx.store, symbol)]
    return out


def _quote_view(q: dict[str, Any] | None) -> dict[str, Any]:
    if q is None:
        q = {}
    bid: float | None = q.get("bid")
    ask: float | None = q.get("ask")
    mid = spread = spread_bps = None
    if bid is not None and ask is not None:
        mid = (bid + ask) / 2
        spread = ask - bid
        spread_bps = spread / mid * 1e4 if mid > 0 else None
    ts = q.get("ts")
    return {
        "quote_venue": q.get("venue"),
        "ts_ns": ts,
        "ts_iso": ns_to_iso(ts) if ts is not None else None,
        "bid": bid,
        "ask": ask,
        "bid_size": q.get("bid_size"),
        "ask_size": q.get("ask_size"),
        "mid": mid,
        "spread": spread,
        "spread_bps": spread_bps,
        "event_id": q.get("event_id"),
    }
