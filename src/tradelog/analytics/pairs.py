"""Pair analytics on two symbols' bar closes aligned on common bar times (pure math).

- hedge ratio: OLS ``log(a) = alpha + beta·log(b)`` over the whole sample (beta, alpha, r²);
- spread ``s = log(a) − beta·log(b) − alpha`` (the OLS residual, in log units);
- rolling z-score of the spread over ``window`` bars (sample std, ddof = 1);
- rolling correlation of log returns over ``window`` returns (``window + 1`` closes);
- augmented Dickey-Fuller test on the spread (statsmodels ``adfuller``, constant, AIC lag).

Nothing is computed until there are ``bars_needed`` bars; the result then says
``insufficient_data``. Values that cannot be computed are NaN here and null in payloads,
never 0: the first ``window − 1`` z-scores, the first ``window`` correlations, a z-score
whose window has a constant spread, a correlation whose window has a constant return.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

Timeframe = Literal["1s", "1m", "5m"]
TIMEFRAME_NS: Final[dict[str, int]] = {
    "1s": 1_000_000_000,
    "1m": 60_000_000_000,
    "5m": 300_000_000_000,
}
MIN_BARS: Final = 10
"""Below ten common bars a hedge ratio and a unit-root test say nothing useful."""
CONSTANT_STD: Final = 1e-12
"""A rolling std (log units) below this is a numerically constant window: no z-score."""
CHUNK_ELEMENTS: Final = 1 << 20
"""Rolling windows are evaluated in chunks of at most this many elements (bounded memory)."""
ADF_REGRESSION: Final = "c"
ADF_AUTOLAG: Final = "AIC"

FloatArray = npt.NDArray[np.float64]
Status = Literal["ok", "insufficient_data", "invalid_prices", "degenerate"]


@dataclass(frozen=True, slots=True)
class HedgeRatio:
    beta: float
    alpha: float
    r2: float
    nobs: int


@dataclass(frozen=True, slots=True)
class AdfResult:
    statistic: float
    pvalue: float
    critical_values: dict[str, float]
    used_lag: int
    nobs: int

    @property
    def stationary_at_5pct(self) -> bool:
        """The unit root is rejected at 5 %: the statistic is below the 5 % critical value."""
        return self.statistic < self.critical_values["5%"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "statistic": self.statistic,
            "pvalue": self.pvalue,
            "critical_values": dict(self.critical_values),
            "used_lag": self.used_lag,
            "nobs": self.nobs,
            "stationary_at_5pct": self.stationary_at_5pct,
            "regression": ADF_REGRESSION,
            "autolag": ADF_AUTOLAG,
        }


@dataclass(frozen=True, slots=True)
class PairAnalysis:
    """Everything about one pair over one sample; arrays are aligned with ``ts_ns``."""

    status: Status
    window: int
    bars_available: int
    bars_needed: int
    ts_ns: npt.NDArray[np.int64]
    a_close: FloatArray
    b_close: FloatArray
    spread: FloatArray
    zscore: FloatArray
    correlation: FloatArray
    hedge: HedgeRatio | None = None
    adf: AdfResult | None = None
    reason: str | None = None
    adf_reason: str | None = None

    def latest(self) -> dict[str, float | None]:
        """The values rules look at: the last point's spread, z-score and correlation, and
        the sample's beta and ADF p-value (None where not computed)."""
        out: dict[str, float | None] = {
            "zscore": None,
            "spread": None,
            "correlation": None,
            "beta": self.hedge.beta if self.hedge is not None else None,
            "adf_pvalue": self.adf.pvalue if self.adf is not None else None,
        }
        if len(self.ts_ns):
            out["zscore"] = _opt(self.zscore[-1])
            out["spread"] = _opt(self.spread[-1])
            out["correlation"] = _opt(self.correlation[-1])
        return out

    def rows(self) -> list[dict[str, Any]]:
        """One row per common bar time (``ts_iso`` is added by the API)."""
        return [
            {
                "ts_ns": int(t),
                "a_close": float(a),
                "b_close": float(b),
                "spread": _opt(s),
                "zscore": _opt(z),
                "correlation": _opt(c),
            }
            for t, a, b, s, z, c in zip(
                self.ts_ns.tolist(),
                self.a_close.tolist(),
                self.b_close.tolist(),
                self.spread.tolist(),
                self.zscore.tolist(),
                self.correlation.tolist(),
                strict=True,
            )
        ]


def _opt(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def bars_needed(window: int) -> int:
    """Closes needed before anything is computed: ``window`` returns for the correlation
    of the latest bar (``window + 1`` closes), and at least ``MIN_BARS``."""
    return max(window + 1, MIN_BARS)


def ols_hedge_ratio(log_a: FloatArray, log_b: FloatArray) -> HedgeRatio | None:
    """OLS of ``log_a`` on ``[1, log_b]`` (centred sums, which keeps precision when the
    logs are large and vary little); None when ``log_b`` is constant (no slope)."""
    n = len(log_a)
    if n < 2:
        return None
    xb = log_b - log_b.mean()
    ya = log_a - log_a.mean()
    sxx = float(xb @ xb)
    if math.sqrt(sxx / n) < CONSTANT_STD:
        return None
    beta = float(xb @ ya) / sxx
    alpha = float(log_a.mean()) - beta * float(log_b.mean())
    resid = ya - beta * xb
    sst = float(ya @ ya)
    r2 = 1.0 - float(resid @ resid) / sst if sst > 0.0 else 1.0
    return HedgeRatio(beta=beta, alpha=alpha, r2=r2, nobs=n)


def _windows(x: FloatArray, window: int, start: int) -> list[tuple[int, FloatArray]]:
    """Chunks of the sliding windows of ``x`` (rows = windows), with the index of the point
    each chunk's first window ends at."""
    view = np.lib.stride_tricks.sliding_window_view(x, window)
    step = max(1, CHUNK_ELEMENTS // window)
    return [(start + i, view[i : i + step]) for i in range(0, len(view), step)]


def rolling_zscore(x: FloatArray, window: int) -> FloatArray:
    """``(x_t − mean) / std`` over the ``window`` points ending at t (std with ddof = 1);
    NaN for the first ``window − 1`` points and where the window is constant."""
    out = np.full(len(x), np.nan)
    if window < 2 or len(x) < window:
        return out
    for end, rows in _windows(x, window, window - 1):
        mean = rows.mean(axis=1)
        std = rows.std(axis=1, ddof=1)
        last = rows[:, -1]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(std >= CONSTANT_STD, (last - mean) / std, np.nan)
        out[end : end + len(rows)] = z
    return out


def rolling_correlation(x: FloatArray, y: FloatArray, window: int) -> FloatArray:
    """Pearson correlation of ``x`` and ``y`` over the ``window`` points ending at t; NaN
    for the first ``window − 1`` points and where either window is constant."""
    out = np.full(len(x), np.nan)
    if window < 2 or len(x) < window:
        return out
    ys = _windows(y, window, window - 1)
    for (end, xr), (_, yr) in zip(_windows(x, window, window - 1), ys, strict=True):
        dx = xr - xr.mean(axis=1, keepdims=True)
        dy = yr - yr.mean(axis=1, keepdims=True)
        sxx = (dx * dx).sum(axis=1)
        syy = (dy * dy).sum(axis=1)
        sxy = (dx * dy).sum(axis=1)
        ok = (np.sqrt(sxx / (window - 1)) >= CONSTANT_STD) & (
            np.sqrt(syy / (window - 1)) >= CONSTANT_STD
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(ok, sxy / np.sqrt(sxx * syy), np.nan)
        out[end : end + len(xr)] = np.clip(r, -1.0, 1.0)
    return out


def adf_test(x: FloatArray) -> AdfResult:
    """``adfuller(x, regression="c", autolag="AIC")``; raises ValueError as statsmodels
    does (constant series, sample too short)."""
    # imported here: statsmodels takes seconds to import and only this test needs it
    from statsmodels.tsa.stattools import adfuller  # noqa: PLC0415

    # statsmodels 0.15 asks for result_object=False to keep the tuple without a warning;
    # 0.14 does not know the argument
    has_result_object = "result_object" in inspect.signature(adfuller).parameters
    kw: dict[str, Any] = {"result_object": False} if has_result_object else {}
    res = adfuller(x, regression=ADF_REGRESSION, autolag=ADF_AUTOLAG, **kw)
    stat, pvalue, used_lag, nobs, crit = res[0], res[1], res[2], res[3], res[4]
    return AdfResult(
        statistic=float(stat),
        pvalue=float(pvalue),
        critical_values={k: float(v) for k, v in crit.items()},
        used_lag=int(used_lag),
        nobs=int(nobs),
    )


def analyze_pair(
    ts_ns: npt.ArrayLike, a_close: npt.ArrayLike, b_close: npt.ArrayLike, window: int
) -> PairAnalysis:
    """Hedge ratio, spread, rolling z-score and correlation, ADF for closes aligned on
    ``ts_ns`` (ascending, common bar times)."""
    if window < 2:
        raise ValueError(f"window must be >= 2 bars; was {window}")
    ts = np.asarray(ts_ns, dtype=np.int64)
    a = np.asarray(a_close, dtype=np.float64)
    b = np.asarray(b_close, dtype=np.float64)
    if not (len(ts) == len(a) == len(b)):
        raise ValueError(f"ts, a and b must have the same length; were {len(ts)}, {len(a)}, "
                         f"{len(b)}")  # fmt: skip
    n = len(ts)
    need = bars_needed(window)
    nan = np.full(n, np.nan)
    base: dict[str, Any] = {
        "window": window, "bars_available": n, "bars_needed": need, "ts_ns": ts,
        "a_close": a, "b_close": b,
    }  # fmt: skip
    if n < need:
        return PairAnalysis(
            status="insufficient_data", spread=nan, zscore=nan, correlation=nan,
            reason=f"{n} common bars; {need} needed (window {window} + 1, at least {MIN_BARS})",
            **base,
        )  # fmt: skip
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and (a > 0).all() and (b > 0).all()):
        return PairAnalysis(
            status="invalid_prices", spread=nan, zscore=nan, correlation=nan,
            reason="closes must be finite and > 0 to take logs", **base,
        )  # fmt: skip
    log_a, log_b = np.log(a), np.log(b)
    returns_a = np.concatenate([[np.nan], np.diff(log_a)])
    returns_b = np.concatenate([[np.nan], np.diff(log_b)])
    corr = np.full(n, np.nan)
    corr[1:] = rolling_correlation(returns_a[1:], returns_b[1:], window)
    hedge = ols_hedge_ratio(log_a, log_b)
    if hedge is None:
        return PairAnalysis(
            status="degenerate", spread=nan, zscore=nan, correlation=corr,
            reason="b's close is constant over the sample: no hedge ratio", **base,
        )  # fmt: skip
    spread = log_a - hedge.beta * log_b - hedge.alpha
    zscore = rolling_zscore(spread, window)
    adf: AdfResult | None = None
    adf_reason: str | None = None
    if float(np.std(spread)) < CONSTANT_STD:
        adf_reason = "the spread is constant: a unit-root test does not apply"
    else:
        try:
            adf = adf_test(spread)
        except (ValueError, np.linalg.LinAlgError) as exc:
            adf_reason = f"adfuller: {exc}"
    return PairAnalysis(
        status="ok", spread=spread, zscore=zscore, correlation=corr, hedge=hedge, adf=adf,
        adf_reason=adf_reason, **base,
    )  # fmt: skip
