"""Fill slippage summaries on DuckDB in NumPy: the ``GROUP BY GROUPING SETS ((), (venue),
(strategy_id), (symbol), (liquidity))`` query of ``tca.fill_summaries`` with its exact
``quantile_cont``, for that function.

The SQL runs a hash aggregation and a quantile sort per grouping set. Here DuckDB groups the
window's fills once, by the four keys together (one hash aggregation in the scan: counts,
sums and the list of the non-null slippage values of each combination of keys), and NumPy
rolls the counts and sums up to each grouping set; for the quantiles, the combinations'
lists are put in the order of their group, each group's values sorted and its quantiles
read at their index. The same answers as the SQL:

- one row overall, also without fills (``fills`` 0, the rest null), and one per value of
  each key, null being a value of its own (``g_<key>`` 0 for it, as in SQL ``GROUP BY``);
- ``fills`` = ``count(*)``, ``with_benchmark`` = ``count(slippage_bps)``; ``notional``,
  ``qty``, ``fees``: SQL ``sum`` (nulls ignored, null when a group has no value);
- ``mean`` = ``avg(slippage_bps)``; ``notional_weighted`` = ``sum(slippage_bps *
  notional) / sum(notional of the fills with a slippage)``, null when a sum is, else
  DuckDB's DOUBLE division (x / 0 is ±inf, 0 / 0 NaN); ``spread_capture``: the average of
  the capture expression over fills with ``mid_fill > 0``, both evaluated by DuckDB (so
  its null and NaN rules hold: NaN > 0 is true there);
- ``q``: ``quantile_cont`` at each of ``quantiles``, null without values: with ``h = (n -
  1) * p`` over the sorted values ``v``, ``v[h]`` when ``h`` is whole, else ``lo * (1 - d)
  + hi * d`` with ``lo, hi = v[floor h], v[ceil h]`` and ``d = h - floor h``, which
  DuckDB's x86-64 build evaluates as ``fma(lo, 1 - d, hi * d)`` (found bitwise by
  experiment against it; the property test compares them exactly); here that single
  rounding is done on the exact integer ratios;
- ±inf and NaN (a DOUBLE column can hold them) as in DuckDB: NaN sorts above +inf, sums and
  interpolations follow IEEE (inf - inf is NaN);
- sums add the same values in another order (as two runs of DuckDB's parallel aggregation
  do), so they agree to rounding (~1e-15 relative), counts and quantiles exactly.

Memory: the slippage values of the window (8 bytes each, ~30 in NumPy while sorting), as
the SQL ``quantile_cont`` holds them too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from tradelog.storage.base import Store
from tradelog.storage.queries.quantile_cont import interpolate

_SUMS: Final = ("notional", "qty", "fees", "s_x", "s_xn", "s_bn", "s_cap")
"""Sums per combination of keys (null when the combination has no value)."""
_COUNTS: Final = ("fills", "with_benchmark", "n_cap")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class _Grouping:
    """One grouping set: each combination's group and each group's key value."""

    key: str | None
    """The grouping column; None for the overall row."""
    code: IntArray
    """Per combination of keys, its group (index in ``values``)."""
    values: list[Any]


def fill_summaries(
    store: Store,
    fills: str,
    params: list[Any],
    groups: Sequence[str],
    quantiles: Sequence[float],
    capture: str,
) -> list[dict[str, Any]]:
    """Rows of ``tca.fill_summaries`` for the fills of ``fills`` (SQL with ``groups``,
    ``slippage_bps``, ``notional``, ``last_qty``, ``fee``, ``mid_fill`` and the columns of
    the spread ``capture`` expression): overall first, then per key and value."""
    keys = ", ".join(groups)
    t = store.query(
        f"""WITH f AS ({fills})
            SELECT {keys}, count(*) AS fills, count(slippage_bps) AS with_benchmark,
                   sum(notional) AS notional, sum(last_qty) AS qty, sum(fee) AS fees,
                   sum(slippage_bps) AS s_x, sum(slippage_bps * notional) AS s_xn,
                   sum(CASE WHEN slippage_bps IS NOT NULL THEN notional END) AS s_bn,
                   sum(cap) AS s_cap, count(cap) AS n_cap,
                   list(slippage_bps) FILTER (WHERE slippage_bps IS NOT NULL) AS xs
            FROM (SELECT *, CASE WHEN mid_fill > 0 THEN {capture} END AS cap FROM f) f
            GROUP BY {keys}""",
        params,
    )
    n_combos = t.num_rows
    groupings = [_Grouping(None, np.zeros(n_combos, dtype=np.int64), [None])]
    for key in groups:
        enc = pc.dictionary_encode(t.column(key), null_encoding="encode").combine_chunks()
        code = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        groupings.append(_Grouping(key, code, enc.dictionary.to_pylist()))
    xs = t.column("xs").combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(xs), 0).to_numpy(zero_copy_only=False)
    flat = xs.flatten().to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    counts = {k: t.column(k).to_numpy(zero_copy_only=False).astype(np.float64) for k in _COUNTS}
    sums = {k: _nullable(t.column(k)) for k in _SUMS}
    rows: list[dict[str, Any]] = []
    for g in groupings:
        n_groups = len(g.values)
        tot = {k: np.bincount(g.code, weights=v, minlength=n_groups) for k, v in counts.items()}
        agg = {
            k: (
                np.bincount(g.code, weights=s, minlength=n_groups),
                np.bincount(g.code, weights=ok, minlength=n_groups) > 0,
            )
            for k, (s, ok) in sums.items()
        }
        qs = _group_quantiles(flat, lengths, g, quantiles)
        for i, value in enumerate(g.values):
            got = {k: float(s[i]) if ok[i] else None for k, (s, ok) in agg.items()}
            n_x, n_cap = int(tot["with_benchmark"][i]), int(tot["n_cap"][i])
            rows.append({
                **{k: (value if k == g.key else None) for k in groups},
                **{f"g_{k}": int(k != g.key) for k in groups},
                "fills": int(tot["fills"][i]), "with_benchmark": n_x,
                "notional": got["notional"], "qty": got["qty"], "fees": got["fees"],
                "mean": _ratio(got["s_x"], n_x) if n_x else None,
                "q": qs[i],
                "notional_weighted": _ratio(got["s_xn"], got["s_bn"]),
                "spread_capture": _ratio(got["s_cap"], n_cap) if n_cap else None,
            })  # fmt: skip
    return rows


def _nullable(col: pa.ChunkedArray) -> tuple[FloatArray, FloatArray]:
    """A nullable DOUBLE column as (values with nulls as 0, 1.0 where not null)."""
    vals = pc.fill_null(col, 0.0).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    valid = col.is_valid().to_numpy(zero_copy_only=False).astype(np.float64)
    return vals, valid


def _ratio(num: float | None, den: float | None) -> float | None:
    """``num / den`` as SQL over DOUBLE: null if either is, else IEEE (x / 0 is ±inf)."""
    if num is None or den is None:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(num) / np.float64(den))


def _group_quantiles(
    flat: FloatArray, lengths: IntArray, g: _Grouping, qs: Sequence[float]
) -> list[list[float] | None]:
    """Per group of ``g``, DuckDB's ``quantile_cont`` of its values at ``qs`` (None
    without values); ``flat``: the combinations' values one after the other (``lengths``
    of each)."""
    n_groups = len(g.values)
    if n_groups > 1:  # the combinations' values in group order (a copy)
        ends = np.cumsum(lengths)
        begin, end = (ends - lengths).tolist(), ends.tolist()
        order = np.argsort(g.code, kind="stable").tolist()
        values = np.concatenate([flat[begin[c] : end[c]] for c in order])
    else:
        values = flat.copy()
    sizes = np.bincount(g.code, weights=lengths, minlength=n_groups).astype(np.int64)
    starts = np.cumsum(sizes) - sizes
    # per group with values and quantile: the positions of its two neighbours and d
    picks: list[tuple[int, int, float]] = []
    for start, size in zip(starts.tolist(), sizes.tolist(), strict=True):
        values[start : start + size].sort()  # NaN last, as DuckDB sorts them
        for q in qs if size else ():
            h = (size - 1) * q
            lo = math.floor(h)
            picks.append((start + lo, start + math.ceil(h), h - lo))
    if not picks:
        return [None] * n_groups
    at = np.array([(a, b) for a, b, _ in picks], dtype=np.int64)
    ends = values[at].tolist()
    vals = iter(
        interpolate(lo, hi, d, a != b) for (lo, hi), (a, b, d) in zip(ends, picks, strict=True)
    )
    return [[next(vals) for _ in qs] if size else None for size in sizes.tolist()]
