"""Pair analytics (analytics/pairs.py) against hand-worked values and independent oracles
(numpy.linalg.lstsq, numpy.corrcoef, a direct statsmodels adfuller call)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from statsmodels.tsa.stattools import adfuller

from tradelog.analytics.pairs import (
    MIN_BARS,
    adf_test,
    analyze_pair,
    bars_needed,
    ols_hedge_ratio,
    rolling_correlation,
    rolling_zscore,
)

T0 = 1_705_329_000 * 10**9  # 2024-01-15T14:30:00Z


def ts(n: int) -> list[int]:
    return [T0 + i * 10**9 for i in range(n)]


def test_ols_exact_line_is_recovered() -> None:
    """log a = 0.5 + 2·log b exactly → beta 2, alpha 0.5, r² 1."""
    log_b = np.log(np.array([10.0, 11.0, 12.5, 9.0, 10.2]))
    log_a = 0.5 + 2.0 * log_b
    h = ols_hedge_ratio(log_a, log_b)
    assert h is not None
    assert h.beta == pytest.approx(2.0, abs=1e-12)
    assert h.alpha == pytest.approx(0.5, abs=1e-12)
    assert h.r2 == pytest.approx(1.0, abs=1e-12)
    assert h.nobs == 5


def test_ols_hand_worked_small_sample() -> None:
    """x = [0, 1, 2], y = [1, 2, 4]: x̄ = 1, ȳ = 7/3; Sxy = (−1)(−4/3) + 0 + (1)(5/3) = 3,
    Sxx = 2 → beta 1.5, alpha 7/3 − 1.5 = 5/6; residuals (1 − 5/6, 2 − 7/3, 4 − 23/6) =
    (1/6, −1/3, 1/6) → SSR = 1/6; SST = 16/9 + 1/9 + 25/9 = 42/9 → r² = 1 − (1/6)/(42/9)
    = 1 − 9/252 = 27/28."""
    h = ols_hedge_ratio(np.array([1.0, 2.0, 4.0]), np.array([0.0, 1.0, 2.0]))
    assert h is not None
    assert (h.beta, h.alpha, h.r2) == pytest.approx((1.5, 5 / 6, 27 / 28), abs=1e-12)


def test_ols_equals_lstsq_on_noisy_series() -> None:
    rng = np.random.default_rng(7)
    log_b = np.log(100.0) + np.cumsum(rng.normal(0, 0.01, 200))
    log_a = 0.3 + 1.7 * log_b + rng.normal(0, 0.002, 200)
    h = ols_hedge_ratio(log_a, log_b)
    assert h is not None
    (alpha, beta), *_ = np.linalg.lstsq(np.column_stack([np.ones(200), log_b]), log_a, rcond=None)
    assert h.beta == pytest.approx(beta, rel=1e-9)
    assert h.alpha == pytest.approx(alpha, rel=1e-9, abs=1e-9)
    resid = log_a - alpha - beta * log_b
    r2 = 1 - (resid @ resid) / ((log_a - log_a.mean()) @ (log_a - log_a.mean()))
    assert h.r2 == pytest.approx(r2, rel=1e-9)


def test_ols_constant_regressor_has_no_slope() -> None:
    assert ols_hedge_ratio(np.array([1.0, 2.0, 3.0]), np.full(3, math.log(5.0))) is None


def test_rolling_zscore_hand_worked() -> None:
    """x = [1, 2, 3, 5], window 3 (sample std):
    t=2: [1, 2, 3] mean 2, std 1 → z = 1;
    t=3: [2, 3, 5] mean 10/3, Σdev² = 16/9 + 1/9 + 25/9 = 42/9, var = 7/3 →
         z = (5 − 10/3) / √(7/3) = 1.0910894511799618. The first 2 points are null."""
    z = rolling_zscore(np.array([1.0, 2.0, 3.0, 5.0]), 3)
    assert math.isnan(z[0]) and math.isnan(z[1])
    assert z[2] == pytest.approx(1.0, abs=1e-12)
    assert z[3] == pytest.approx((5 - 10 / 3) / math.sqrt(7 / 3), abs=1e-12)
    assert z[3] == pytest.approx(1.0910894511799618, abs=1e-12)


def test_rolling_zscore_constant_window_is_null_not_zero() -> None:
    z = rolling_zscore(np.array([1.0, 1.0, 1.0, 2.0]), 3)
    assert math.isnan(z[2])
    assert z[3] == pytest.approx((2 - 4 / 3) / math.sqrt(1 / 3))


def test_rolling_correlation_matches_corrcoef_per_window() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=60)
    y = 0.5 * x + rng.normal(size=60)
    w = 7
    r = rolling_correlation(x, y, w)
    assert np.isnan(r[: w - 1]).all()
    for t in range(w - 1, 60):
        expected = np.corrcoef(x[t - w + 1 : t + 1], y[t - w + 1 : t + 1])[0, 1]
        assert r[t] == pytest.approx(expected, abs=1e-12)


def test_rolling_windows_in_chunks_equal_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunking (bounded memory) does not change any value."""
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=500), rng.normal(size=500)
    z1, c1 = rolling_zscore(x, 20), rolling_correlation(x, y, 20)
    monkeypatch.setattr("tradelog.analytics.pairs.CHUNK_ELEMENTS", 50)
    np.testing.assert_array_equal(rolling_zscore(x, 20), z1)
    np.testing.assert_array_equal(rolling_correlation(x, y, 20), c1)


def _cointegrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    b = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    noise = np.zeros(n)
    for i in range(1, n):  # AR(1) spread with phi 0.5: stationary
        noise[i] = 0.5 * noise[i - 1] + rng.normal(0, 0.003)
    a = np.exp(0.2 + 1.3 * np.log(b) + noise)
    return a, b


@pytest.mark.filterwarnings("ignore::FutureWarning")  # statsmodels 0.15: tuple result
def test_analyze_pair_spread_zscore_correlation_adf() -> None:
    a, b = _cointegrated(300, seed=1)
    w = 30
    res = analyze_pair(ts(300), a, b, w)
    assert res.status == "ok"
    assert res.bars_needed == w + 1 and res.bars_available == 300
    h = res.hedge
    assert h is not None
    (alpha, beta), *_ = np.linalg.lstsq(
        np.column_stack([np.ones(300), np.log(b)]), np.log(a), rcond=None
    )
    assert (h.beta, h.alpha) == pytest.approx((beta, alpha), rel=1e-9)
    spread = np.log(a) - beta * np.log(b) - alpha
    np.testing.assert_allclose(res.spread, spread, atol=1e-12)
    # z-score of the last point by hand from its window
    last = spread[-w:]
    assert res.zscore[-1] == pytest.approx((last[-1] - last.mean()) / last.std(ddof=1), rel=1e-9)
    assert np.isnan(res.zscore[: w - 1]).all() and not np.isnan(res.zscore[w - 1 :]).any()
    # correlation of log returns: the first w points are null (w returns need w + 1 closes)
    ra, rb = np.diff(np.log(a)), np.diff(np.log(b))
    assert np.isnan(res.correlation[:w]).all()
    assert res.correlation[w] == pytest.approx(np.corrcoef(ra[:w], rb[:w])[0, 1], abs=1e-12)
    assert res.correlation[-1] == pytest.approx(np.corrcoef(ra[-w:], rb[-w:])[0, 1], abs=1e-12)
    # ADF equals a direct call on the same spread
    stat, pvalue, lag, nobs, crit, *_ = adfuller(spread, regression="c", autolag="AIC")
    assert res.adf is not None
    assert res.adf.statistic == pytest.approx(stat, rel=1e-9)
    assert res.adf.pvalue == pytest.approx(pvalue, rel=1e-9)
    assert (res.adf.used_lag, res.adf.nobs) == (lag, nobs)
    assert res.adf.critical_values == pytest.approx(crit)
    assert res.adf.stationary_at_5pct is True  # an AR(1) spread with phi 0.5 over 300 bars
    latest = res.latest()
    assert latest["zscore"] == res.zscore[-1] and latest["beta"] == h.beta
    assert latest["adf_pvalue"] == res.adf.pvalue


def test_random_walk_spread_is_not_stationary() -> None:
    rng = np.random.default_rng(5)
    b = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    a = 20.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    res = analyze_pair(ts(400), a, b, 20)
    assert res.adf is not None
    direct = adf_test(res.spread)
    assert res.adf.statistic == direct.statistic
    # two independent random walks: the unit root is not rejected (p ≈ 0.215 for this seed)
    assert res.adf.pvalue > 0.05
    assert res.adf.statistic > res.adf.critical_values["5%"]
    assert res.adf.stationary_at_5pct is False
    assert res.adf.as_dict()["stationary_at_5pct"] is False


@pytest.mark.parametrize(("n", "window"), [(0, 20), (20, 20), (9, 2), (MIN_BARS - 1, 5)])
def test_insufficient_data_computes_nothing(n: int, window: int) -> None:
    a = np.linspace(10, 11, n)
    b = np.linspace(20, 23, n)
    res = analyze_pair(ts(n), a, b, window)
    assert res.status == "insufficient_data"
    assert res.bars_available == n
    assert res.bars_needed == bars_needed(window) == max(window + 1, MIN_BARS)
    assert res.hedge is None and res.adf is None
    assert all(r["spread"] is None and r["zscore"] is None and r["correlation"] is None
               for r in res.rows())  # fmt: skip
    assert [r["a_close"] for r in res.rows()] == pytest.approx(list(a))
    assert res.latest() == {"zscore": None, "spread": None, "correlation": None, "beta": None,
                            "adf_pvalue": None}  # fmt: skip


def test_exactly_enough_bars_gives_one_full_window() -> None:
    a, b = _cointegrated(21, seed=2)
    res = analyze_pair(ts(21), a, b, 20)
    assert res.status == "ok"
    assert np.isnan(res.zscore[:19]).all() and not np.isnan(res.zscore[19:]).any()
    assert np.isnan(res.correlation[:20]).all() and not np.isnan(res.correlation[20])


def test_nonpositive_prices_and_bad_inputs() -> None:
    a = np.linspace(10, 11, 30)
    b = np.linspace(20, 23, 30)
    b[4] = 0.0
    assert analyze_pair(ts(30), a, b, 5).status == "invalid_prices"
    with pytest.raises(ValueError, match="window must be >= 2"):
        analyze_pair(ts(30), a, b, 1)
    with pytest.raises(ValueError, match="same length"):
        analyze_pair(ts(29), a, b, 5)


def test_constant_b_is_degenerate() -> None:
    res = analyze_pair(ts(30), np.linspace(10, 11, 30), np.full(30, 7.0), 5)
    assert res.status == "degenerate" and res.hedge is None
    assert res.reason is not None and "constant" in res.reason


@settings(max_examples=60, deadline=None)
@given(
    prices=st.lists(st.floats(1.0, 10_000.0), min_size=MIN_BARS, max_size=80),
    k=st.floats(0.01, 100.0),
    window=st.integers(2, 9),
)
def test_proportional_legs_have_beta_one_and_constant_spread(
    prices: list[float], k: float, window: int
) -> None:
    """b = a·k exactly → log a = log b − log k: beta = 1, alpha = −log k, r² = 1, the spread
    is constant (0), so no z-score and no unit-root test."""
    a = np.array(prices)
    assume(np.ptp(np.log(a)) > 1e-3)
    b = a * k
    res = analyze_pair(ts(len(a)), a, b, window)
    assert res.status == "ok"
    assert res.hedge is not None
    assert res.hedge.beta == pytest.approx(1.0, abs=1e-9)
    assert res.hedge.alpha == pytest.approx(-math.log(k), abs=1e-7)
    assert res.hedge.r2 == pytest.approx(1.0, abs=1e-9)
    assert np.ptp(res.spread) < 1e-9
    assert np.isnan(res.zscore).all()
    assert res.adf is None and res.adf_reason is not None
