"""Report statistics against quantstats (the oracle named in DESIGN §4) and a hand-built
equity curve with a known drawdown."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from tradelog.analytics import performance as perf

pd = pytest.importorskip("pandas")
qs_stats = pytest.importorskip("quantstats.stats")

NS = 1_000_000_000
T0 = 1_741_008_600 * NS  # 2025-03-03 13:30:00 UTC


def _curve(seed: int, n: int, capital: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pnl = np.concatenate(([0.0], np.cumsum(rng.normal(3.0, 250.0, n - 1))))
    repeat = rng.random(n) < 0.2
    repeat[0] = False
    pnl[repeat] = np.nan  # flat periods: the previous value repeats
    pnl = pd.Series(pnl).ffill().to_numpy()
    times = T0 + np.arange(n, dtype=np.int64) * 60 * NS
    return times, capital + pnl


def _series(times: np.ndarray, r: np.ndarray) -> pd.Series:
    return pd.Series(r, index=pd.to_datetime(times[1:], unit="ns"))


def _close(a: float | None, b: float) -> None:
    assert a is not None
    assert math.isclose(a, float(b), rel_tol=1e-9, abs_tol=0.0), (a, b)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_agrees_with_quantstats(seed: int) -> None:
    capital = 1_000_000.0
    times, equity = _curve(seed, 2_000, capital)
    interval_s = 60.0
    periods = perf.periods_per_year_24_7(interval_s)
    out = perf.performance(
        times, equity, capital=capital, interval_s=interval_s, periods_per_year=periods
    )
    m = out["metrics"]
    r = perf.returns_from_equity(equity)
    s = _series(times, r)
    assert (s == 0).any() and (s > 0).any() and (s < 0).any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _close(m["sharpe"], qs_stats.sharpe(s, rf=0.0, periods=periods))
        _close(m["sortino"], qs_stats.sortino(s, rf=0.0, periods=periods))
        _close(m["volatility"], qs_stats.volatility(s, periods=periods))
        _close(m["max_drawdown"], qs_stats.max_drawdown(s))
        _close(m["annualized_return"], qs_stats.cagr(s, periods=periods))
        _close(m["calmar"], qs_stats.calmar(s, periods=periods))
        _close(m["var"], qs_stats.value_at_risk(s))
        _close(m["cvar"], qs_stats.conditional_value_at_risk(s))
        _close(m["win_rate"], qs_stats.win_rate(s))
        _close(m["profit_factor"], qs_stats.profit_factor(s))
        _close(m["payoff_ratio"], qs_stats.payoff_ratio(s))
        _close(m["tail_ratio"], qs_stats.tail_ratio(s))
        _close(m["total_return"], qs_stats.comp(s))
    assert out["parameters"]["periods_per_year"] == periods == 525_600.0
    assert out["unavailable"] == {}


def test_hand_built_drawdown() -> None:
    """Equity 100 → 120 (peak at t2) → 90 (valley at t4, −25%) → 125 (recovered at t6),
    then 125 → 110 at the end (an ongoing drawdown of −12%)."""
    equity = np.array([100.0, 110.0, 120.0, 100.0, 90.0, 115.0, 125.0, 110.0])
    times = T0 + np.arange(equity.size, dtype=np.int64) * 3600 * NS
    dds = perf.drawdown_periods(times, equity)
    assert len(dds) == 2
    worst, second = dds
    assert worst["start_ns"] == T0 + 2 * 3600 * NS
    assert worst["valley_ns"] == T0 + 4 * 3600 * NS
    assert worst["recovery_ns"] == T0 + 6 * 3600 * NS
    assert worst["depth"] == pytest.approx(-0.25, abs=1e-15)
    assert worst["depth_currency"] == -30.0
    assert worst["duration_s"] == 4 * 3600
    assert worst["ongoing"] is False
    assert second["start_ns"] == T0 + 6 * 3600 * NS
    assert second["valley_ns"] == T0 + 7 * 3600 * NS
    assert second["recovery_ns"] is None and second["ongoing"] is True
    assert second["depth"] == pytest.approx(-15 / 125, abs=1e-15)
    assert second["duration_s"] == 3600
    out = perf.performance(times, equity, capital=100.0, interval_s=3600.0, periods_per_year=8760.0)
    assert out["metrics"]["max_drawdown"] == pytest.approx(-0.25, abs=1e-15)
    assert out["drawdowns"][0]["valley_ns"] == worst["valley_ns"]
    assert out["metrics"]["total_return"] == pytest.approx(0.10, abs=1e-12)


def test_hand_computed_small_series() -> None:
    equity = np.array([100.0, 110.0, 99.0, 99.0, 108.9])  # r = .1, -.1, 0, .1
    r = perf.returns_from_equity(equity)
    assert r.tolist() == pytest.approx([0.1, -0.1, 0.0, 0.1], abs=1e-15)
    assert perf.win_rate(r) == pytest.approx(2 / 3)
    assert perf.profit_factor(r) == pytest.approx(0.2 / 0.1)
    assert perf.payoff_ratio(r) == pytest.approx(1.0)
    mean, sd = 0.025, float(np.std([0.1, -0.1, 0.0, 0.1], ddof=1))
    assert perf.sharpe(r, 4) == pytest.approx(mean / sd * 2)
    assert perf.sortino(r, 4) == pytest.approx(mean / math.sqrt(0.01 / 4) * 2)
    assert perf.max_drawdown(equity) == pytest.approx(-0.1)


def test_undefined_is_none_with_reason() -> None:
    times = T0 + np.arange(3, dtype=np.int64) * NS
    flat = perf.performance(
        times,
        np.array([100.0, 100.0, 100.0]),
        capital=100.0,
        interval_s=1.0,
        periods_per_year=perf.periods_per_year_24_7(1.0),
    )
    m, why = flat["metrics"], flat["unavailable"]
    assert m["total_return"] == 0.0 and m["max_drawdown"] == 0.0
    for name in ("sharpe", "sortino", "calmar", "var", "cvar", "win_rate", "profit_factor"):
        assert m[name] is None and why[name]
    one = perf.performance(
        times[:1], np.array([100.0]), capital=100.0, interval_s=1.0, periods_per_year=1.0
    )
    assert all(v is None for v in one["metrics"].values())
    assert "at least 2" in one["unavailable"]["sharpe"]
    broke = perf.performance(
        times, np.array([100.0, -5.0, 10.0]), capital=100.0, interval_s=1.0, periods_per_year=1.0
    )
    assert broke["metrics"]["sharpe"] is None and "≤ 0" in broke["unavailable"]["sharpe"]


def test_trade_stats() -> None:
    pnl = np.array([10.0, -5.0, 20.0, 0.0, -15.0])
    hold = np.array([1.0, 10.0, 100.0, 0.0, 5.0])
    t = perf.trade_stats(pnl, hold)
    assert (t["count"], t["wins"], t["losses"], t["flat"]) == (5, 2, 2, 1)
    assert t["win_rate"] == pytest.approx(0.4)
    assert t["avg_win"] == 15.0 and t["avg_loss"] == -10.0
    assert t["profit_factor"] == pytest.approx(30 / 20)
    assert t["expectancy"] == pytest.approx(2.0)
    assert t["holding_time"]["p50_s"] == 5.0 and t["holding_time"]["max_s"] == 100.0
    assert sum(b["count"] for b in t["holding_time"]["histogram"]) == 5
    none = perf.trade_stats(np.array([]), np.array([]))
    assert none["win_rate"] is None and none["unavailable"]["win_rate"]


def test_period_returns_and_hours() -> None:
    day = 86_400 * NS
    times = np.array([T0, T0 + 3600 * NS, T0 + day, T0 + day + 3600 * NS], dtype=np.int64)
    equity = np.array([100.0, 110.0, 121.0, 99.0])
    daily = perf.period_returns(times, equity, "D")
    assert [d["period"] for d in daily] == ["2025-03-03", "2025-03-04"]
    assert daily[0]["return"] == pytest.approx(0.1)
    assert daily[1]["return"] == pytest.approx(99 / 110 - 1)
    hours = perf.pnl_by_hour(times, equity)
    assert hours[14]["pnl"] == pytest.approx(10.0 - 22.0)  # 14:30 UTC, both days
    assert hours[13]["pnl"] == pytest.approx(11.0)  # 13:30 UTC on the second day
