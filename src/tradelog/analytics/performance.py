"""Performance statistics of an equity curve and of round trips (DESIGN §4), pure NumPy.

Returns are fractions of equity, ``r_t = ΔE_t / E_{t−1}`` with ``E = capital + PnL`` on a
regular grid. Every ratio uses the definition of quantstats (≥ 0.0.83) with ``rf = 0`` and
``periods = periods_per_year`` so a user can check us with it (docs/reports.md):

- Sharpe ``mean(r) / std(r, ddof=1) × √P``; volatility ``std(r, ddof=1) × √P``;
- Sortino ``mean(r) / √(Σ_{r<0} r² / n) × √P``;
- CAGR ``(1 + total)^(P / n) − 1``, total ``Π(1 + r) − 1``; Calmar ``CAGR / |max DD|``;
- max drawdown ``min(E / cummax(E)) − 1`` (the first point is the baseline);
- VaR (variance–covariance) ``μ + σ Φ⁻¹(1 − c)``; CVaR (parametric expected shortfall)
  ``μ − σ φ(Φ⁻¹(α)) / α``, ``α = 1 − c``, c = 0.95;
- tail ratio ``|q95 / q05|`` (linear quantiles); win rate ``#(r > 0) / #(r ≠ 0)``;
  profit factor ``Σ_{r≥0} r / |Σ_{r<0} r|``; payoff ``mean(r > 0) / |mean(r < 0)|``.

A figure that cannot be computed (too few points, division by zero) is ``None`` with the
reason in ``unavailable``; nothing is replaced by 0 or infinity.

>>> import numpy as np
>>> r = returns_from_equity(np.array([100.0, 110.0, 99.0]))
>>> [round(float(x), 6) for x in r]
[0.1, -0.1]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from tradelog.analytics.stats import LOG_BUCKETS_PER_DECADE, log_histogram

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SECONDS_PER_YEAR_24_7: Final = 365 * 86_400
"""A 24/7 calendar (crypto; quantstats' crypto convention of 365 days)."""
VAR_CONFIDENCE: Final = 0.95
TAIL_CUTOFF: Final = 0.95
NS_PER_S: Final = 1_000_000_000
NS_PER_DAY: Final = 86_400 * NS_PER_S
METRIC_NAMES: Final = (
    "total_return",
    "annualized_return",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "var",
    "cvar",
    "tail_ratio",
    "win_rate",
    "profit_factor",
    "payoff_ratio",
    "avg_win",
    "avg_loss",
    "best_period",
    "worst_period",
)


class Undefined(ValueError):
    """A statistic that has no value for this input; the message says why."""


def periods_per_year_24_7(interval_s: float) -> float:
    """Sampling periods in a 365-day year of continuous trading.

    >>> periods_per_year_24_7(86_400)
    365.0
    """
    if interval_s <= 0:
        raise ValueError(f"interval_s must be > 0; was {interval_s}")
    return SECONDS_PER_YEAR_24_7 / interval_s


def returns_from_equity(equity: FloatArray) -> FloatArray:
    """``ΔE_t / E_{t−1}``; raises Undefined when an equity value used as a base is ≤ 0."""
    e = np.asarray(equity, dtype=np.float64)
    if e.size < 2:
        raise Undefined(f"need at least 2 equity points for a return; have {e.size}")
    if not np.all(np.isfinite(e)):
        raise Undefined("equity has missing (non-finite) points")
    base = e[:-1]
    if np.any(base <= 0):
        i = int(np.flatnonzero(base <= 0)[0])
        raise Undefined(f"equity is {base[i]:g} ≤ 0 at point {i}: returns are undefined")
    out: FloatArray = np.diff(e) / base
    return out


def _need(r: FloatArray, n: int, what: str) -> None:
    if r.size < n:
        raise Undefined(f"{what} needs at least {n} returns; have {r.size}")


def _std(r: FloatArray) -> float:
    _need(r, 2, "a standard deviation")
    return float(np.std(r, ddof=1))


def total_return(r: FloatArray) -> float:
    """``Π(1 + r) − 1`` (quantstats ``comp``)."""
    _need(r, 1, "total return")
    return float(np.prod(1.0 + r) - 1.0)


def annualized_return(r: FloatArray, periods: float) -> float:
    """CAGR with ``years = n / periods`` (quantstats ``cagr``)."""
    wealth = total_return(r) + 1.0
    if wealth < 0:
        raise Undefined("equity ended below zero: no real growth rate")
    return float(abs(wealth) ** (1.0 / (r.size / periods)) - 1.0)


def volatility(r: FloatArray, periods: float) -> float:
    return _std(r) * math.sqrt(periods)


def sharpe(r: FloatArray, periods: float) -> float:
    sd = _std(r)
    if sd == 0:
        raise Undefined("returns have zero standard deviation")
    return float(np.mean(r)) / sd * math.sqrt(periods)


def sortino(r: FloatArray, periods: float) -> float:
    _need(r, 1, "Sortino")
    neg = r[r < 0]
    downside = math.sqrt(float(np.sum(neg**2)) / r.size)
    if downside == 0:
        raise Undefined("no losing period: downside deviation is 0")
    return float(np.mean(r)) / downside * math.sqrt(periods)


def max_drawdown(equity: FloatArray) -> float:
    """``min(E / cummax(E)) − 1`` (≤ 0; a fraction of the running peak)."""
    e = np.asarray(equity, dtype=np.float64)
    if e.size < 1:
        raise Undefined("no equity points")
    if np.any(e <= 0):
        raise Undefined("equity ≤ 0: drawdown as a fraction is undefined")
    return float(np.min(e / np.maximum.accumulate(e)) - 1.0)


def calmar(r: FloatArray, equity: FloatArray, periods: float) -> float:
    dd = max_drawdown(equity)
    if dd == 0:
        raise Undefined("no drawdown: Calmar divides by max drawdown = 0")
    return annualized_return(r, periods) / abs(dd)


def value_at_risk(r: FloatArray, confidence: float = VAR_CONFIDENCE) -> float:
    """Variance–covariance VaR of one period: the ``1 − confidence`` quantile of a normal
    with the sample mean and standard deviation (quantstats ``value_at_risk``)."""
    sd = _std(r)
    if sd == 0:
        raise Undefined("returns have zero standard deviation")
    return NormalDist(float(np.mean(r)), sd).inv_cdf(1.0 - confidence)


def conditional_value_at_risk(r: FloatArray, confidence: float = VAR_CONFIDENCE) -> float:
    """Parametric (normal) expected shortfall beyond the VaR (quantstats
    ``conditional_value_at_risk``, method ``parametric``)."""
    sd = _std(r)
    if sd == 0:
        raise Undefined("returns have zero standard deviation")
    alpha = 1.0 - confidence
    std_normal = NormalDist()
    return float(np.mean(r)) - sd * std_normal.pdf(std_normal.inv_cdf(alpha)) / alpha


def tail_ratio(r: FloatArray, cutoff: float = TAIL_CUTOFF) -> float:
    _need(r, 1, "tail ratio")
    upper = float(np.quantile(r, cutoff))
    lower = float(np.quantile(r, 1.0 - cutoff))
    if lower == 0:
        raise Undefined(f"the {1 - cutoff:.0%} quantile of returns is 0")
    return abs(upper / lower)


def win_rate(r: FloatArray) -> float:
    """Share of winning periods among periods that moved (zeros are left out)."""
    moved = int(np.count_nonzero(r))
    if moved == 0:
        raise Undefined("no period with a non-zero return")
    return int(np.count_nonzero(r > 0)) / moved


def profit_factor(r: FloatArray) -> float:
    """``Σ r≥0 / |Σ r<0|`` (zeros count with the wins, as in quantstats)."""
    losses = float(np.sum(r[r < 0]))
    if losses == 0:
        raise Undefined("no losing period: profit factor divides by 0")
    return float(np.sum(r[r >= 0])) / abs(losses)


def avg_win(r: FloatArray) -> float:
    wins = r[r > 0]
    if wins.size == 0:
        raise Undefined("no winning period")
    return float(np.mean(wins))


def avg_loss(r: FloatArray) -> float:
    losses = r[r < 0]
    if losses.size == 0:
        raise Undefined("no losing period")
    return float(np.mean(losses))


def payoff_ratio(r: FloatArray) -> float:
    return avg_win(r) / abs(avg_loss(r))


def drawdown_periods(times_ns: IntArray, equity: FloatArray) -> list[dict[str, Any]]:
    """Every drawdown, deepest first: the peak it started from (``start``), the lowest
    point (``valley``), the first point back at or above the peak (``recovery``, None if
    it has not recovered), depth as a fraction of the peak and in currency, and duration
    from the peak to the recovery (or to the last point, ``ongoing``)."""
    t = np.asarray(times_ns, dtype=np.int64)
    e = np.asarray(equity, dtype=np.float64)
    if e.size < 2:
        return []
    hwm = np.maximum.accumulate(e)
    under = e < hwm
    if not under.any():
        return []
    edges = np.diff(np.concatenate(([0], under.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)  # first underwater point
    ends = np.flatnonzero(edges == -1)  # one past the last underwater point
    out: list[dict[str, Any]] = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        peak = a - 1  # under[0] is always False, so a ≥ 1
        valley = a + int(np.argmin(e[a:b]))
        recovered = b < e.size
        last = b if recovered else e.size - 1
        out.append(
            {
                "start_ns": int(t[peak]),
                "valley_ns": int(t[valley]),
                "recovery_ns": int(t[b]) if recovered else None,
                "ongoing": not recovered,
                "peak_equity": float(e[peak]),
                "valley_equity": float(e[valley]),
                "depth": float(e[valley] / e[peak] - 1.0) if e[peak] > 0 else None,
                "depth_currency": float(e[valley] - e[peak]),
                "duration_s": (int(t[last]) - int(t[peak])) / NS_PER_S,
                "points": b - a,
            }
        )
    out.sort(
        key=lambda d: (
            (d["depth_currency"] / d["peak_equity"])
            if d["peak_equity"] > 0
            else d["depth_currency"]
        )
    )
    return out


def underwater(equity: FloatArray) -> FloatArray:
    """``E / cummax(E) − 1`` at every point (0 at new highs)."""
    e = np.asarray(equity, dtype=np.float64)
    out: FloatArray = e / np.maximum.accumulate(e) - 1.0
    return out


def _safe(fn: Callable[[], float], name: str, unavailable: dict[str, str]) -> float | None:
    try:
        value = fn()
    except Undefined as exc:
        unavailable[name] = str(exc)
        return None
    if not math.isfinite(value):
        unavailable[name] = "not a finite number"
        return None
    return value


def performance(
    times_ns: IntArray,
    equity: FloatArray,
    *,
    capital: float,
    interval_s: float,
    periods_per_year: float,
    top_drawdowns: int = 5,
) -> dict[str, Any]:
    """All return-based statistics of one equity curve (regular grid, first point =
    baseline), with the parameters they depend on beside them."""
    t = np.asarray(times_ns, dtype=np.int64)
    e = np.asarray(equity, dtype=np.float64)
    unavailable: dict[str, str] = {}
    params = {
        "capital": capital,
        "sampling_interval_s": interval_s,
        "periods_per_year": periods_per_year,
        "risk_free_rate": 0.0,
        "var_confidence": VAR_CONFIDENCE,
        "returns": "r_t = ΔE_t / E_{t−1}, E = capital + total PnL (fraction of equity)",
        "points": int(e.size),
        "start_ns": int(t[0]) if t.size else None,
        "end_ns": int(t[-1]) if t.size else None,
    }
    metrics: dict[str, float | None] = dict.fromkeys(METRIC_NAMES)
    try:
        r = returns_from_equity(e)
    except Undefined as exc:
        for name in METRIC_NAMES:
            unavailable[name] = str(exc)
        return {
            "parameters": params,
            "metrics": metrics,
            "unavailable": unavailable,
            "drawdowns": [],
            "pnl": _pnl_figures(e),
        }
    p = periods_per_year
    calcs: dict[str, Callable[[], float]] = {
        "total_return": lambda: total_return(r),
        "annualized_return": lambda: annualized_return(r, p),
        "volatility": lambda: volatility(r, p),
        "sharpe": lambda: sharpe(r, p),
        "sortino": lambda: sortino(r, p),
        "max_drawdown": lambda: max_drawdown(e),
        "calmar": lambda: calmar(r, e, p),
        "var": lambda: value_at_risk(r),
        "cvar": lambda: conditional_value_at_risk(r),
        "tail_ratio": lambda: tail_ratio(r),
        "win_rate": lambda: win_rate(r),
        "profit_factor": lambda: profit_factor(r),
        "payoff_ratio": lambda: payoff_ratio(r),
        "avg_win": lambda: avg_win(r),
        "avg_loss": lambda: avg_loss(r),
        "best_period": lambda: float(np.max(r)),
        "worst_period": lambda: float(np.min(r)),
    }
    for name, fn in calcs.items():
        metrics[name] = _safe(fn, name, unavailable)
    periods = drawdown_periods(t, e)
    return {
        "parameters": params,
        "metrics": metrics,
        "unavailable": unavailable,
        "periods_with_return": int(r.size),
        "drawdowns": periods[:top_drawdowns],
        "drawdown_count": len(periods),
        "pnl": _pnl_figures(e),
    }


def _pnl_figures(e: FloatArray) -> dict[str, float | None]:
    if e.size == 0:
        return {"start_equity": None, "end_equity": None, "pnl": None}
    return {"start_equity": float(e[0]), "end_equity": float(e[-1]), "pnl": float(e[-1] - e[0])}


def period_returns(times_ns: IntArray, equity: FloatArray, period: str) -> list[dict[str, Any]]:
    """Compounded return per calendar day (``"D"``) or month (``"M"``), UTC: equity at the
    last point of the period over equity at the last point before it (the first period is
    measured from the first point)."""
    if period not in ("D", "M"):
        raise ValueError(f"period must be 'D' or 'M'; was {period!r}")
    t = np.asarray(times_ns, dtype=np.int64)
    e = np.asarray(equity, dtype=np.float64)
    if e.size < 2:
        return []
    unit = "datetime64[D]" if period == "D" else "datetime64[M]"
    keys = t.astype("datetime64[ns]").astype(unit)
    last = np.flatnonzero(np.concatenate((keys[1:] != keys[:-1], [True])))
    out: list[dict[str, Any]] = []
    prev = float(e[0])
    for i in last.tolist():
        end = float(e[i])
        out.append(
            {
                "period": str(keys[i]),
                "return": end / prev - 1.0 if prev > 0 else None,
                "pnl": end - prev,
            }
        )
        prev = end
    return out


def pnl_by_hour(times_ns: IntArray, equity: FloatArray) -> list[dict[str, Any]]:
    """Change of equity summed by the UTC hour of day in which it happened (0–23)."""
    t = np.asarray(times_ns, dtype=np.int64)
    e = np.asarray(equity, dtype=np.float64)
    if e.size < 2:
        return []
    hours = (t[1:] % NS_PER_DAY) // (3600 * NS_PER_S)
    sums = np.bincount(hours, weights=np.diff(e), minlength=24)
    counts = np.bincount(hours, minlength=24)
    return [{"hour": h, "pnl": float(sums[h]), "periods": int(counts[h])} for h in range(24)]


def trade_stats(pnl: FloatArray, holding_s: FloatArray) -> dict[str, Any]:
    """Round-trip statistics: count, win rate (wins / all trips), average win and loss,
    profit factor (gross wins / |gross losses|), expectancy (mean PnL per trip) and the
    holding-time distribution (seconds; log-spaced histogram)."""
    p = np.asarray(pnl, dtype=np.float64)
    h = np.asarray(holding_s, dtype=np.float64)
    n = int(p.size)
    unavailable: dict[str, str] = {}
    wins, losses = p[p > 0], p[p < 0]
    out: dict[str, Any] = {
        "count": n,
        "wins": int(wins.size),
        "losses": int(losses.size),
        "flat": int(n - wins.size - losses.size),
        "total_pnl": float(np.sum(p)) if n else 0.0,
        "win_rate": None,
        "avg_win": None,
        "avg_loss": None,
        "profit_factor": None,
        "expectancy": None,
        "largest_win": float(np.max(wins)) if wins.size else None,
        "largest_loss": float(np.min(losses)) if losses.size else None,
    }
    if n == 0:
        for k in ("win_rate", "expectancy", "avg_win", "avg_loss", "profit_factor"):
            unavailable[k] = "no round trip closed in the window"
    else:
        out["win_rate"] = wins.size / n
        out["expectancy"] = float(np.mean(p))
        if wins.size:
            out["avg_win"] = float(np.mean(wins))
        else:
            unavailable["avg_win"] = "no winning round trip"
        if losses.size:
            out["avg_loss"] = float(np.mean(losses))
            out["profit_factor"] = float(np.sum(wins)) / abs(float(np.sum(losses)))
        else:
            unavailable["avg_loss"] = "no losing round trip"
            unavailable["profit_factor"] = "no losing round trip: profit factor divides by 0"
    hv = h[np.isfinite(h) & (h >= 0)]
    holding: dict[str, Any] = {"count": int(hv.size)}
    if hv.size:
        q = np.quantile(hv, (0.5, 0.9, 0.99))
        holding.update(
            mean_s=float(np.mean(hv)),
            p50_s=float(q[0]),
            p90_s=float(q[1]),
            p99_s=float(q[2]),
            max_s=float(np.max(hv)),
        )
        pos = hv[hv > 0]
        idx = np.floor(np.log10(pos) * LOG_BUCKETS_PER_DECADE).astype(np.int64)
        uniq, cnt = np.unique(idx, return_counts=True)
        rows: list[tuple[int | None, int]] = [
            (int(i), int(c)) for i, c in zip(uniq, cnt, strict=True)
        ]
        zeros = int(hv.size - pos.size)
        if zeros:
            rows.insert(0, (None, zeros))
        holding["histogram"] = log_histogram(rows, "s")
    else:
        holding["histogram"] = []
    out["holding_time"] = holding
    out["unavailable"] = unavailable
    return out
