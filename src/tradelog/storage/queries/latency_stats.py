"""Latency analysis on DuckDB in NumPy: the rows of ``latency.summaries`` (per kind
``GROUP BY GROUPING SETS ((), (venue), (strategy_id), (symbol), (order_type))`` with
``quantile_cont``), ``latency.histogram`` and ``latency.trend`` (per kind and minute), from
one fetch of the window's latency rows, for ``latency.analysis``.

The SQL scans the window three times and runs a hash aggregation and a sort of the values
per grouping set and per minute. Here DuckDB returns each latency row once: its kind, a hash
of its four keys, its minute (``ts // 60 s``, DuckDB's integer division) and its histogram
bucket (the SQL's expression, evaluated by DuckDB, so ``log10`` is DuckDB's); a second query
(run while NumPy works) returns the window's combinations of keys with their hash. NumPy:

- maps each row to its combination of keys: ``pyarrow`` dictionary-encodes the hashes; the
  combinations' hashes must be distinct and cover the rows' hashes, else ``analysis``
  returns None and the caller runs the SQL (a collision cannot merge two groups, rows
  written between the two queries cannot go unnoticed);
- counts rows, non-negative rows and their sums per (kind, combination) with ``bincount``
  and adds them up to each grouping set;
- reads the order statistics without sorting the values: each non-negative value gets a
  bin, bins in the order of the values (``a < b`` implies ``bin(a) <= bin(b)``: the bits of
  a non-negative double are in its order, and the bins split their range so that each holds
  about as many values). Per grouping set (and for the trend, per kind × minute) the counts
  per (group, bin) locate, for each rank a quantile or the maximum needs, the bin holding
  it and its rank among the group's values in that bin; only the values of those (group,
  bin) cells are sorted (a few per group), and the value at that rank is the group's.

The same answers as the SQL:

- a kind without rows has no row; one with rows has its overall row and one per value of
  each key, null being a value of its own (``g_<key>`` 0 for it, as in SQL ``GROUP BY``);
- negative latencies (clock skew) are left out of the values and counted in
  ``negative`` (``count(*) - count(ok)``): a group with only negative latencies has ``n``
  0 and ``mean``, ``q``, ``mx`` null; the histogram and the trend have the non-negative
  rows only (the trend a row per kind and minute with some, a null minute last);
- ``q``: ``quantile_cont`` at the order statistics, with DuckDB's interpolation
  (``quantile_cont.interpolate``, bit for bit; the property test compares them exactly);
  ``mx`` the largest value; counts and histogram buckets exact; the rows of ``histogram``
  and ``trend`` in their SQL order (kind, then bucket or minute, nulls last), those of
  ``summaries`` (no order in SQL) by kind, overall first, then per key and value;
- ``mean`` = sum / count: the same values added in another order (as two runs of DuckDB's
  parallel aggregation do), so it agrees to rounding (3e-14 relative over 1 M values of
  the benchmark store), the rest exactly.
  Not covered: ``-0.0``, equal to ``0.0``, which a quantile or maximum of a group holding
  both may give with either sign here and in DuckDB.

Memory: ~70 bytes per latency row of the window (the fetched columns, codes and bins).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from tradelog.storage.base import Store
from tradelog.storage.queries.quantile_cont import interpolate

Rows = list[dict[str, Any]]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_BINS: Final = 1 << 16
"""Value bins: each holds about 1/65536 of the values (a value repeated more fills one)."""
_PREFIX_BITS: Final = 20
"""Bits of the values' range that place them in the bins."""
_CELLS: Final = 1 << 21
"""Most (group, bin) cells counted at once: with more groups, neighbouring bins merge."""


def analysis(
    store: Store,
    where: str,
    params: list[Any],
    *,
    kinds: Sequence[str],
    groups: Sequence[str],
    quantiles: Sequence[float],
    trend_quantiles: Sequence[float],
    minute_ns: int,
    bucket: str,
) -> tuple[Rows, Rows, Rows] | None:
    """``(summaries, histogram, trend)`` of the latency rows of the events ``where`` selects
    (a ``WHERE`` clause limiting ``kind`` to ``kinds`` and ``latency_ms`` to non-null
    values); ``bucket``: the SQL of the histogram bucket of ``latency_ms`` (BIGINT, null for
    none). None when the keys' hashes do not identify their combinations (then the caller
    runs the SQL)."""
    names = sorted(kinds)  # the order of ORDER BY kind
    kind_code = " ".join(f"WHEN '{k}' THEN {i}" for i, k in enumerate(names))
    keys = ", ".join(groups)
    t = store.query(
        f"""SELECT CAST(CASE kind {kind_code} END AS TINYINT) AS k, hash({keys}) AS h,
                   latency_ms AS x, CAST(ts // {minute_ns} AS INTEGER) AS m,
                   CAST({bucket} AS SMALLINT) AS b
            FROM events {where}""",
        params,
    )
    if t.num_rows == 0:
        return [], [], []
    combos_sql = f"SELECT hash({keys}) AS h, {keys} FROM events {where} GROUP BY {keys}"
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(store.query, combos_sql, params)
        w = _Window.read(t, len(names))
        histogram = _histogram(names, w.kind, *_nullable(t.column("b"), w.ok))
        trend = _trend(names, w, *_nullable(t.column("m"), w.ok), trend_quantiles, minute_ns)
        parts = [_summary_part(names, groups, None, [None], np.zeros(w.n_hashes, np.int64),
                               w, quantiles)]  # fmt: skip
        combos = pending.result()
    combo = _combos(w.hashes, combos.column("h").to_numpy())
    if combo is None:
        return None
    for g in groups:
        values = combos.column(g).to_pylist()
        code, distinct = _encode([values[c] for c in combo.tolist()])
        parts.append(_summary_part(names, groups, g, distinct, code, w, quantiles))
    summaries: Rows = []
    for i in range(len(names)):  # per kind: overall, then per key
        for part in parts:
            summaries.extend(part[i])
    return summaries, histogram, trend


@dataclass(frozen=True, slots=True)
class _Sums:
    """Per code: rows, non-negative rows, and the sum of their values."""

    rows: FloatArray
    n: FloatArray
    total: FloatArray

    def rolled(self, lut: IntArray, size: int) -> _Sums:
        """Added up to the codes ``lut`` gives these codes."""
        return _Sums(*(np.bincount(lut, weights=a, minlength=size).astype(np.float64)
                       for a in (self.rows, self.n, self.total)))  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Window:
    """The window's latency rows: per (kind, hash of the keys) code the sums, and the
    non-negative rows (``ok``) with their kind, code, value and value bin."""

    hashes: npt.NDArray[np.uint64]
    """The distinct hashes of the keys (a code is kind × len(hashes) + index in it)."""
    by_code: _Sums
    ok: BoolArray | None
    """The non-negative rows (None: all)."""
    kind: IntArray
    code: IntArray
    x: FloatArray
    bins: IntArray
    n_bins: int

    @property
    def n_hashes(self) -> int:
        return len(self.hashes)

    @staticmethod
    def read(t: pa.Table, n_kinds: int) -> _Window:
        enc = pc.dictionary_encode(pa.array(t.column("h").to_numpy()))
        hashes = enc.dictionary.to_numpy()
        kind = t.column("k").to_numpy().astype(np.int64)
        code = kind * len(hashes) + enc.indices.to_numpy(zero_copy_only=False)
        x = t.column("x").to_numpy().astype(np.float64, copy=False)
        negative = x < 0  # the SQL's latency_ms >= 0 (NaN counts as large in DuckDB)
        ok = ~negative if negative.any() else None
        n_codes = n_kinds * len(hashes)
        rows = np.bincount(code, minlength=n_codes).astype(np.float64)
        if ok is not None:
            kind, code, x = kind[ok], code[ok], x[ok]
        n = np.bincount(code, minlength=n_codes).astype(np.float64)
        total = np.bincount(code, weights=x, minlength=n_codes).astype(np.float64)
        sums = _Sums(rows, n, total)
        bins, n_bins = _value_bins(x)
        return _Window(hashes, sums, ok, kind, code, x, bins, n_bins)


def _value_bins(x: FloatArray) -> tuple[IntArray, int]:
    """Per value (non-negative), its bin, and the number of bins: ``a < b`` implies
    ``bin(a) <= bin(b)`` (bins from a prefix of the bits of ``|x|``, which for non-negative
    doubles are in their order, zero first); each bin holds about 1/``_BINS`` of the values
    (the prefixes' counts decide where a bin ends)."""
    bits = np.abs(x).view(np.int64)  # |-0.0| = 0.0
    positive = bits[bits > 0]
    if not positive.size:
        return np.zeros(x.size, dtype=np.int64), 1
    lo = int(positive.min())
    shift = max(0, (int(bits.max()) - lo).bit_length() - _PREFIX_BITS)
    prefix = np.maximum(((bits - lo) >> shift) + 1, 0)  # zero: 0
    counts = np.bincount(prefix)
    below = np.cumsum(counts) - counts  # values below each prefix
    lut = below * _BINS // x.size
    bins: IntArray = lut[prefix]
    return bins, int(lut[-1]) + 1


def _order_stats(
    w: _Window, codes: IntArray, n_codes: int, qs: Sequence[float], with_max: bool
) -> tuple[IntArray, list[list[float] | None], list[float | None]]:
    """Per code (of each non-negative value of ``w``): the number of values,
    ``quantile_cont`` at ``qs`` and (``with_max``) the largest value; None without values.

    Counts per (code, bin) give, for each rank wanted, its bin and its rank among the
    code's values in that bin; only the values of those cells are sorted."""
    shift = 0  # bins merged by 2^shift, for at most _CELLS cells
    while n_codes * (((w.n_bins - 1) >> shift) + 1) > _CELLS and (w.n_bins - 1) >> shift:
        shift += 1
    width = ((w.n_bins - 1) >> shift) + 1
    cell = codes * width + (w.bins >> shift)
    counts = np.bincount(cell, minlength=n_codes * width)
    upto = np.cumsum(counts.reshape(n_codes, width), axis=1)  # per code, values to each bin
    sizes: IntArray = upto[:, -1].copy()
    has = np.flatnonzero(sizes)
    size = sizes[has]
    h = (size - 1).astype(np.float64)[:, None] * np.asarray(qs, dtype=np.float64)[None, :]
    lo, hi = np.floor(h), np.ceil(h)
    wanted = [lo.astype(np.int64), hi.astype(np.int64)]
    if with_max:
        wanted.append((size - 1)[:, None])
    rank = np.concatenate(wanted, axis=1)
    # the cell of each rank: in its code's cumulative counts, the first bin above the rank
    # (codes apart by more than any count, so one search serves them all)
    stride = w.x.size + 1
    flat = (upto + (np.arange(n_codes, dtype=np.int64) * stride)[:, None]).ravel()
    key = (rank + (has * stride)[:, None]).ravel()
    at = np.searchsorted(flat, key, side="right")
    in_cell = key - (flat[at] - counts[at])
    need = np.zeros(n_codes * width, dtype=np.bool_)
    need[at] = True
    rows = np.flatnonzero(need[cell])
    sub_cell, sub_x = cell[rows], w.x[rows]
    order = np.lexsort((sub_x, sub_cell))  # NaN last, as DuckDB sorts it
    sub_cell, sub_x = sub_cell[order], sub_x[order]
    picked = sub_x[np.searchsorted(sub_cell, at) + in_cell].reshape(rank.shape)
    nq = len(qs)
    v_lo, v_hi = picked[:, :nq].ravel().tolist(), picked[:, nq : 2 * nq].ravel().tolist()
    d, between = (h - lo).ravel().tolist(), (lo != hi).ravel().tolist()
    vals = [interpolate(a, b, f, t) if t else a
            for a, b, f, t in zip(v_lo, v_hi, d, between, strict=True)]  # fmt: skip
    top = picked[:, -1].tolist()
    q_out: list[list[float] | None] = [None] * n_codes
    mx_out: list[float | None] = [None] * n_codes
    for j, i in enumerate(has.tolist()):
        q_out[i] = vals[j * nq : (j + 1) * nq]
        if with_max:
            mx_out[i] = top[j]
    return sizes, q_out, mx_out


def _combos(row_hashes: npt.NDArray[np.uint64], hashes: npt.NDArray[np.uint64]) -> IntArray | None:
    """Per distinct hash of the rows, its combination (index in ``hashes``); None when two
    combinations share a hash or a row's hash has none."""
    if not hashes.size:
        return None
    order = np.argsort(hashes)
    ordered = hashes[order]
    if bool((ordered[1:] == ordered[:-1]).any()):
        return None
    at = np.minimum(np.searchsorted(ordered, row_hashes), ordered.size - 1)
    if not bool((ordered[at] == row_hashes).all()):
        return None
    combo: IntArray = order[at].astype(np.int64)
    return combo


def _encode(values: list[Any]) -> tuple[IntArray, list[Any]]:
    """Codes of ``values`` and the distinct values they index (sorted, null last)."""
    distinct: list[Any] = sorted({v for v in values if v is not None})
    if any(v is None for v in values):
        distinct.append(None)
    index = {v: i for i, v in enumerate(distinct)}
    return np.array([index[v] for v in values], dtype=np.int64), distinct


def _nullable(col: pa.ChunkedArray, ok: BoolArray | None) -> tuple[IntArray, BoolArray]:
    """An integer column at the rows ``ok`` as int64 (nulls as 0) and where it is null."""
    values = pc.fill_null(col, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    null = col.is_null().to_numpy(zero_copy_only=False)
    if ok is None:
        return values, null
    return values[ok], null[ok]


def _summary_part(
    names: list[str],
    groups: Sequence[str],
    key: str | None,
    values: list[Any],
    code: IntArray,
    w: _Window,
    quantiles: Sequence[float],
) -> list[Rows]:
    """Per kind, the summary rows of one grouping set (``key`` None: the overall row);
    ``code``: per hash of the keys, its group (index in ``values``)."""
    n_groups = len(values)
    n_codes = len(names) * n_groups
    kinds = np.arange(len(names), dtype=np.int64)
    lut = (kinds[:, None] * n_groups + code[None, :]).ravel()  # (kind, hash) -> (kind, group)
    sums = w.by_code.rolled(lut, n_codes)
    _, qs, mx = _order_stats(w, lut[w.code], n_codes, quantiles, with_max=True)
    out: list[Rows] = [[] for _ in names]
    for i, (rows, n, total) in enumerate(
        zip(sums.rows.tolist(), sums.n.tolist(), sums.total.tolist(), strict=True)
    ):
        if not rows:
            continue
        kind, group = divmod(i, n_groups)
        count = int(n)
        out[kind].append({
            "kind": names[kind],
            **{g: (values[group] if g == key else None) for g in groups},
            **{f"g_{g}": int(g != key) for g in groups},
            "n": count, "negative": int(rows) - count,
            "mean": total / count if count else None, "q": qs[i], "mx": mx[i],
        })  # fmt: skip
    return out


def _histogram(names: list[str], kind: IntArray, bucket: IntArray, null: BoolArray) -> Rows:
    """Rows per kind and bucket (``null``: no bucket, i.e. zero; last)."""
    if not kind.size:
        return []
    known = bucket[~null]
    lo = int(known.min()) if known.size else 0
    width = (int(known.max()) - lo + 2) if known.size else 1  # the last slot: null
    counts = np.bincount(kind * width + np.where(null, width - 1, bucket - lo),
                         minlength=len(names) * width)  # fmt: skip
    rows: Rows = []
    for i in np.flatnonzero(counts).tolist():
        k, b = divmod(i, width)
        rows.append({"kind": names[k], "bucket": None if b == width - 1 else b + lo,
                     "n": int(counts[i])})  # fmt: skip
    return rows


def _trend(
    names: list[str],
    w: _Window,
    minute: IntArray,
    null: BoolArray,
    qs: Sequence[float],
    minute_ns: int,
) -> Rows:
    """Per kind and minute (``null``: no minute, last): count, mean and quantiles."""
    if not w.x.size:
        return []
    some_null = bool(null.any())
    known = minute[~null] if some_null else minute
    values: list[int | None]
    if known.size and int(known.max()) - int(known.min()) < 4 * known.size + 1024:
        first = int(known.min())  # a dense range of minutes
        values = list(range(first, int(known.max()) + 1))
        code = minute - first
    else:
        distinct, inverse = np.unique(known, return_inverse=True)
        values = distinct.tolist()
        code = np.zeros(minute.size, dtype=np.int64)
        code[~null] = inverse
    if some_null:
        code[null] = len(values)
        values.append(None)
    n_codes = len(names) * len(values)
    codes = w.kind * len(values) + code
    sizes, q, _ = _order_stats(w, codes, n_codes, qs, with_max=False)
    totals = np.bincount(codes, weights=w.x, minlength=n_codes).tolist()
    rows: Rows = []
    for i in np.flatnonzero(sizes).tolist():
        kind, m = divmod(i, len(values))
        value, n = values[m], int(sizes[i])
        rows.append({
            "kind": names[kind], "minute_ns": None if value is None else value * minute_ns,
            "n": n, "mean": totals[i] / n, "q": q[i],
        })  # fmt: skip
    return rows
