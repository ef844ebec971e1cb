"""DuckDB's ``quantile_cont`` between two neighbours, bit for bit, for the NumPy paths
(``fill_stats``, ``latency_stats``) that read quantiles at their positions in sorted values.

With ``h = (n - 1) * p`` over the sorted values ``v``: ``v[h]`` when ``h`` is whole, else
``lo * (1 - d) + hi * d`` with ``lo, hi = v[floor h], v[ceil h]`` and ``d = h - floor h``,
which DuckDB's x86-64 build evaluates as ``fma(lo, 1 - d, hi * d)`` (found bitwise by
experiment against it; the property tests compare them exactly)."""

from __future__ import annotations

import math


def interpolate(lo: float, hi: float, d: float, between: bool) -> float:
    """DuckDB's ``quantile_cont`` between two neighbours: ``lo`` at a whole position,
    else ``fma(lo, 1 - d, hi * d)`` (one rounding; with ±inf or NaN the plain formula,
    which is then the same)."""
    if not between:
        return lo
    a, b = 1.0 - d, hi * d
    if math.isfinite(lo) and math.isfinite(b):
        return fma(lo, a, b)
    return lo * a + b


def fma(x: float, y: float, z: float) -> float:
    """``x * y + z`` rounded once (``math.fma`` from Python 3.13), from the exact integer
    ratios of finite doubles (integer true division rounds correctly)."""
    xn, xd = x.as_integer_ratio()
    yn, yd = y.as_integer_ratio()
    zn, zd = z.as_integer_ratio()
    num = xn * yn * zd + zn * xd * yd
    try:
        return num / (xd * yd * zd)
    except OverflowError:
        return math.copysign(math.inf, num)
