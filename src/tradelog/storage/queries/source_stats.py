"""Per-source statistics of a window on DuckDB in NumPy: the rows and largest gaps of
``quality.source_activity`` from one pass over the events in storage order.

DuckDB's streaming windows (``lag() OVER ()``) run on one thread, and the top-n gaps
(``max_by`` over every row) and the lag quantiles were most of the cost over 10 M events.
Here DuckDB only reads four columns (source number, ``ts``, ``seq``, ``ts_ingest``) in
batches of a million rows and NumPy keeps, per source:

- the count, the first and last event time, the sum and maximum of the ingest lag
  ``(ts_ingest − ts) / 1e6`` (the same DOUBLE expression as the SQL) and the lags
  themselves, for ``quantile_cont`` (exact: the neighbours of each quantile found with
  ``np.partition``, interpolated as DuckDB does, ``quantile_cont.interpolate``);
- whether a row's ``seq`` is not after the previous row's (the storage order is then not
  the seq order), and how many rows are earlier than the previous row;
- the ``top`` largest differences of consecutive ``ts`` (of equal ones the earliest).

A source whose rows come in seq order without going back in time has no out-of-order
event, and its storage order is its (ts, seq) order: its gaps are those differences. Any
other source, and one with a null ``ts``, ``seq`` or ``ts_ingest``, is returned in
``redo`` (or ``nulls``) for ``quality`` to compute the SQL way. The mean is the sum over
the count, which may differ from DuckDB's ``avg`` in the last bits (the order of
additions).

Memory: the window's lags (8 bytes per event, as DuckDB's ``quantile_cont`` holds) plus
one batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from tradelog.storage.queries.quantile_cont import interpolate

BATCH_ROWS: Final = 1 << 20

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(slots=True)
class _Stream:
    """What one source's rows so far add up to."""

    top: int
    events: int = 0
    first_ts: int = 0
    last_ts: int = 0
    prev_ts: int | None = None
    prev_seq: int | None = None
    nulls: bool = False
    unordered: bool = False
    back_in_time: int = 0
    lag_sum: float = 0.0
    lag_max: float = -math.inf
    lags: list[FloatArray] = field(default_factory=list)
    gap: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    gap_end: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def add(self, ts: IntArray, seq: IntArray, ingest: IntArray) -> None:
        """The source's next rows (no nulls), in the order the query yields them."""
        n = len(ts)
        first = self.events == 0
        self.events += n
        self.first_ts = int(ts.min()) if first else min(self.first_ts, int(ts.min()))
        self.last_ts = int(ts.max()) if first else max(self.last_ts, int(ts.max()))
        lag = (ingest - ts) / 1e6
        self.lag_sum += float(lag.sum())
        self.lag_max = max(self.lag_max, float(lag.max()))
        self.lags.append(lag)
        if self.prev_ts is not None and self.prev_seq is not None:
            ts = np.concatenate(([self.prev_ts], ts))
            seq = np.concatenate(([self.prev_seq], seq))
        self.prev_ts, self.prev_seq = int(ts[-1]), int(seq[-1])
        if len(ts) < 2 or self.unordered:
            return
        if bool((seq[1:] <= seq[:-1]).any()):
            self.unordered = True
            return
        d = ts[1:] - ts[:-1]
        self.back_in_time += int(np.count_nonzero(d < 0))
        if self.back_in_time:
            return
        ends = ts[1:]
        if len(d) > self.top:
            pick = _largest(d, self.top)
            d, ends = d[pick], ends[pick]
        gap, gap_end = np.concatenate((self.gap, d)), np.concatenate((self.gap_end, ends))
        keep = np.lexsort((gap_end, -gap))[: self.top]  # largest, then earliest
        self.gap, self.gap_end = gap[keep], gap_end[keep]


def _largest(d: IntArray, k: int) -> IntArray:
    """Positions of the ``k`` largest values of ``d`` (``k < len(d)``), of equal ones at
    the cut the first (the earliest: the rows are in time order)."""
    cut = np.partition(d, len(d) - k)[len(d) - k]
    above = np.flatnonzero(d > cut)
    return np.concatenate((above, np.flatnonzero(d == cut)[: k - len(above)]))


@dataclass(frozen=True, slots=True)
class SourceStats:
    rows: list[dict[str, Any]]
    """Per source computed here: ``events``, ``first_ts``, ``last_ts``, ``lag_mean``,
    ``lag_q``, ``lag_max``, ``out_of_order`` (0), in source order (``kinds`` is left to
    the caller)."""
    gaps: list[dict[str, Any]]
    """Their largest gaps: ``source``, ``gap_start_ns``, ``gap_end_ns``, ``gap_s``."""
    redo: dict[str, bool]
    """Sources in ``rows`` whose out-of-order count and gaps are to compute the SQL way;
    value: not stored in seq order (else: going back in time)."""
    nulls: list[str]
    """Sources with a null ``ts``, ``seq`` or ``ts_ingest``: not in ``rows``."""


def source_stats(
    batches: Iterable[pa.RecordBatch],
    sources: Sequence[str],
    quantiles: Sequence[float],
    top: int,
) -> SourceStats:
    """The statistics of the batches' rows (columns ``code``: index in ``sources``,
    ``ts``, ``seq``, ``ts_ingest``)."""
    streams = [_Stream(top=top) for _ in sources]
    for batch in batches:
        _add_batch(batch, streams)
    rows: list[dict[str, Any]] = []
    gaps: list[dict[str, Any]] = []
    redo: dict[str, bool] = {}
    nulls: list[str] = []
    for name, s in zip(sources, streams, strict=True):
        if s.nulls:
            nulls.append(name)
            continue
        if s.events == 0:
            continue
        if s.unordered or s.back_in_time:
            redo[name] = s.unordered
        lags = np.concatenate(s.lags) if len(s.lags) > 1 else s.lags[0]
        s.lags.clear()
        rows.append({
            "source": name, "events": s.events, "first_ts": s.first_ts,
            "last_ts": s.last_ts, "lag_mean": s.lag_sum / s.events,
            "lag_q": quantile_cont(lags, quantiles), "lag_max": s.lag_max, "out_of_order": 0,
        })  # fmt: skip
        if name not in redo:
            for d, end in zip(s.gap.tolist(), s.gap_end.tolist(), strict=True):
                gaps.append({"source": name, "gap_start_ns": end - d, "gap_end_ns": end,
                             "gap_s": d / 1e9})  # fmt: skip
    return SourceStats(rows, gaps, redo, nulls)


def _add_batch(batch: pa.RecordBatch, streams: list[_Stream]) -> None:
    """A batch's rows added to their sources' streams. A row of a source not in
    ``sources`` (null ``code``: written since the caller listed the sources) is left out,
    as it would be had the read come first."""
    if batch.column("code").null_count:
        batch = batch.filter(batch.column("code").is_valid())
    codes = batch.column("code").to_numpy(zero_copy_only=False).astype(np.int64)
    columns = [batch.column(c) for c in ("ts", "seq", "ts_ingest")]
    nulls = np.zeros(len(codes), dtype=bool)
    for col in columns:
        if col.null_count:
            nulls |= ~col.is_valid().to_numpy(zero_copy_only=False)
    ts, seq, ingest = (
        col.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        for col in columns
    )
    present = np.flatnonzero(np.bincount(codes, minlength=len(streams)))
    for code in present.tolist():
        s = streams[code]
        if s.nulls:
            continue
        if len(present) == 1:
            at: slice | IntArray = slice(None)
        else:
            at = np.flatnonzero(codes == code)
        if bool(nulls[at].any()):
            s.nulls = True
            s.lags.clear()
            continue
        s.add(ts[at], seq[at], ingest[at])


def quantile_cont(values: FloatArray, quantiles: Sequence[float]) -> list[float]:
    """DuckDB's ``quantile_cont`` of ``values`` (not empty, no NaN) at ``quantiles``."""
    n = len(values)
    spots = []
    for q in quantiles:
        h = (n - 1) * q
        lo = math.floor(h)
        spots.append((lo, math.ceil(h), h - lo))
    part = np.partition(values, sorted({i for lo, hi, _ in spots for i in (lo, hi)}))
    return [interpolate(float(part[lo]), float(part[hi]), d, lo != hi) for lo, hi, d in spots]
