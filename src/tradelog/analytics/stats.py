"""Shared statistics vocabulary: quantile levels, log-spaced histogram buckets, summary
rows with units in the names. Pure functions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

QUANTILES: Final = (0.5, 0.9, 0.95, 0.99, 0.999)
QUANTILE_NAMES: Final = ("p50", "p90", "p95", "p99", "p999")
LOG_BUCKETS_PER_DECADE: Final = 4


def log_bucket_bounds(index: int, per_decade: int = LOG_BUCKETS_PER_DECADE) -> tuple[float, float]:
    """[lower, upper) of log bucket ``index`` = floor(log10(x) × per_decade).

    >>> log_bucket_bounds(0)
    (1.0, 1.7782794100389228)
    """
    return 10 ** (index / per_decade), 10 ** ((index + 1) / per_decade)


def log_histogram(rows: Sequence[tuple[int | None, int]], unit: str) -> list[dict[str, Any]]:
    """(bucket index or None for zero, count) → ordered buckets with bounds in ``unit``;
    empty buckets between the first and last are included so the shape is honest."""
    counts = {idx: n for idx, n in rows}
    out: list[dict[str, Any]] = []
    if None in counts:
        out.append({f"lower_{unit}": 0.0, f"upper_{unit}": 0.0, "count": counts.pop(None)})
    idx = [i for i in counts if i is not None]
    if not idx:
        return out
    for i in range(min(idx), max(idx) + 1):
        lo, hi = log_bucket_bounds(i)
        out.append({f"lower_{unit}": lo, f"upper_{unit}": hi, "count": counts.get(i, 0)})
    return out


def summary(
    count: int,
    mean: float | None,
    quantiles: Sequence[float] | None,
    maximum: float | None,
    unit: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A summary row: count, mean, p50…p999, max, names suffixed with the unit."""
    row: dict[str, Any] = {"count": int(count), f"mean_{unit}": _num(mean)}
    qs = list(quantiles) if quantiles is not None else [None] * len(QUANTILES)
    for name, value in zip(QUANTILE_NAMES, qs, strict=True):
        row[f"{name}_{unit}"] = _num(value)
    row[f"max_{unit}"] = _num(maximum)
    if extra:
        row.update(extra)
    return row


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    f = float(value)
    return None if math.isnan(f) else f
