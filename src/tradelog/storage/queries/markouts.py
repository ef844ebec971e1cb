"""Markouts on DuckDB in NumPy: the as-of lookup of the mid at fill time + h (the SQL
as-of join of ``tca._markout_ctes``) done on arrays, for ``tca.markouts``.

The SQL join sorts every quote by symbol and time (~450 ms per horizon over 4.5 M
quotes); here the quotes are read once as (symbol number, ts, mid), put in symbol order by
a stable radix sort of the 16-bit symbol numbers (they come out of the scan mostly in time
order; a symbol whose quotes are not is sorted by time on its own), and each horizon is a
binary search per symbol. The same answers as the SQL path:

- mid = (bid + ask) / 2 of the latest two-sided quote (``kind = 'quote'``, bid and ask not
  null) of the fill's symbol, any venue, with ``quote.ts <= fill.ts + h``;
- null when the data does not reach that far: ``fill.ts + h`` after the symbol's last quote
  (over all quotes from the window's lookback on), or the fill has no symbol or time;
- several quotes of a symbol at the same ts: the last one in seq order counts (events
  without seq before those with one, in storage order among themselves); the stored events
  are in seq order, so this is their storage order. (The SQL as-of join picks any of them;
  the two agree whenever such quotes have the same mid.)
- ``bounds``: only the quotes in that time range are read; a fill whose data reaches
  ``fill.ts + h`` but without a quote of its symbol in range (``missing``) makes the whole
  computation run again over all quotes, so the bound never changes a result;
- count, mean and median (continuous, as DuckDB's ``quantile_cont``) of
  ``sgn * (mid - last_px) / last_px * 1e4`` per horizon, overall and by liquidity, as the
  rows of the grouped SQL query (``n`` counts the fills with a mid).

Memory: ~60 bytes per quote read; over ``max_quotes`` quotes in range it gives up (None) and
the caller uses the SQL as-of join, which can spill to disk.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from tradelog.storage.base import Store

QUOTE_WHERE: Final = "kind = 'quote' AND bid IS NOT NULL AND ask IS NOT NULL"
"""The quotes a mid is taken from (two-sided)."""
MAX_QUOTES: Final = 20_000_000
"""Most quotes the NumPy path reads (~1.2 GB); beyond, the SQL as-of join is used."""

_I64_MIN: Final = np.iinfo(np.int64).min
_MAX_BLOCKS: Final = 1_000
"""Most out-of-order blocks of a scan that are put in order as blocks (else sorted)."""
_SMALL_CODES: Final = 32_000
"""Fewer symbols than this: symbol numbers are 16-bit, which NumPy sorts by radix."""

Bounds = tuple[int, int | None] | None
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class _Quotes:
    """Quotes in symbol order, by time within a symbol (seq order among equal times)."""

    ts: IntArray
    mid: npt.NDArray[np.float64]
    starts: IntArray
    """Symbol ``c``'s quotes are ``[starts[c], starts[c + 1])``."""
    last: IntArray
    """Per symbol, its last quote's ts over all quotes from the lower bound on
    (``_I64_MIN``: none)."""


@dataclass(frozen=True, slots=True)
class _Fills:
    """The window's fills in symbol order (fills without symbol or time first)."""

    ts: IntArray
    px: npt.NDArray[np.float64]
    sgn: npt.NDArray[np.float64]
    x_ok: npt.NDArray[np.bool_]
    """Side and price known (the markout is not null when the mid is not)."""
    liq: npt.NDArray[np.integer[Any]]
    """Index in ``liq_values``."""
    liq_values: list[str | None]
    starts: IntArray
    """Symbol ``c``'s fills are ``[starts[c + 1], starts[c + 2])``; ``[0, starts[1])``
    are the fills without symbol or time."""
    symbols: list[str]


def markout_groups(
    store: Store,
    fills: str,
    params: list[Any],
    horizons: tuple[int, ...],
    ns: int,
    bounds: Bounds,
    max_quotes: int = MAX_QUOTES,
) -> list[dict[str, Any]] | None:
    """Rows (``h``, ``liquidity``, ``g_liquidity``, ``n``, ``mean``, ``median``,
    ``missing``) of the markouts of the fills of ``fills`` (SQL with ``symbol``, ``ts``,
    ``last_px``, ``sgn``, ``liquidity``), per horizon overall (``g_liquidity`` 1) and by
    liquidity; no rows without fills. None when over ``max_quotes`` quotes are to be read."""
    workers = min(len(horizons), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return _markout_groups(pool, store, fills, params, horizons, ns, bounds, max_quotes)


def _markout_groups(
    pool: ThreadPoolExecutor,
    store: Store,
    fills: str,
    params: list[Any],
    horizons: tuple[int, ...],
    ns: int,
    bounds: Bounds,
    max_quotes: int,
) -> list[dict[str, Any]] | None:
    while True:  # again if fills of other symbols or liquidity came in between (writes)
        keys = _fill_keys(store, fills, params)
        if keys is None:
            return []
        # the quotes are read (DuckDB) and sorted (NumPy) while the fills are read: both
        # release the GIL
        quotes = pool.submit(_read_quotes, store, keys[0], bounds, max_quotes)
        f = _read_fills(store, fills, params, *keys)
        q = quotes.result()
        if f is not None:
            break
    if q is None:
        return None
    # one horizon per thread
    looked = list(pool.map(lambda h: _lookup(f, q, h * ns), horizons))
    if bounds is not None and any(m.any() for _, _, m in looked):
        return _markout_groups(pool, store, fills, params, horizons, ns, None, max_quotes)
    stats = pool.map(lambda hl: _stats(f, hl[0], *hl[1]), zip(horizons, looked, strict=True))
    return [row for rows in stats for row in rows]


def _lookup(
    f: _Fills, q: _Quotes, offset: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Per fill (in ``f``'s order): the mid at ts + ``offset``, whether there is one
    (``valid``), and ``missing``: the data reaches that far but no quote in range does."""
    mid = np.zeros(len(f.ts), dtype=np.float64)
    valid = np.zeros(len(f.ts), dtype=np.bool_)
    missing = np.zeros(len(f.ts), dtype=np.bool_)
    for c in range(len(f.symbols)):
        a, b = int(f.starts[c + 1]), int(f.starts[c + 2])
        if a == b or q.last[c] == _I64_MIN:
            continue
        tq = f.ts[a:b] + offset
        reached = tq <= q.last[c]
        qa, qb = int(q.starts[c]), int(q.starts[c + 1])
        if qa == qb:
            missing[a:b] = reached
            continue
        idx = np.searchsorted(q.ts[qa:qb], tq, side="right") - 1
        found = idx >= 0
        valid[a:b] = reached & found
        missing[a:b] = reached & ~found
        mid[a:b] = q.mid[qa:qb][np.maximum(idx, 0)]
    return mid, valid, missing


def _stats(
    f: _Fills,
    h: int,
    mid: npt.NDArray[np.float64],
    valid: npt.NDArray[np.bool_],
    missing: npt.NDArray[np.bool_],
) -> list[dict[str, Any]]:
    ok = valid & f.x_ok
    with np.errstate(all="ignore"):  # as in SQL: x / 0 is ±inf, 0 / 0 is NaN
        x = f.sgn * (mid - f.px) / f.px * 1e4
    groups: list[tuple[str | None, int, npt.NDArray[np.bool_] | None]] = [(None, 1, None)]
    groups += [(v, 0, f.liq == i) for i, v in enumerate(f.liq_values)]
    rows: list[dict[str, Any]] = []
    for value, grouping, sel in groups:
        xs = x[ok if sel is None else ok & sel]
        rows.append({
            "h": h, "liquidity": value, "g_liquidity": grouping,
            "n": int(np.count_nonzero(valid if sel is None else valid & sel)),
            "mean": float(np.mean(xs)) if len(xs) else None,
            "median": _median(xs),
            "missing": int(np.count_nonzero(missing if sel is None else missing & sel)),
        })  # fmt: skip
    return rows


def _median(x: npt.NDArray[np.float64]) -> float | None:
    """DuckDB's ``quantile_cont(x, 0.5)``: the middle value, or ``lo * 0.5 + hi * 0.5`` of
    the two middle ones (NaN sorts last in both)."""
    n = len(x)
    if n == 0:
        return None
    k = (n - 1) // 2
    p = np.partition(x, k)  # one kth: several are ~5x slower
    if n % 2:
        return float(p[k])
    hi = np.fmin.reduce(p[k + 1 :])  # the next one up; fmin: NaN only if all are
    return float(p[k] * 0.5 + hi * 0.5)


def _code_type(n: int) -> str:
    """SQL type of indexes into ``n`` values (16-bit ones NumPy sorts by radix)."""
    return "SMALLINT" if n < _SMALL_CODES else "INTEGER"


def _fill_keys(
    store: Store, fills: str, params: list[Any]
) -> tuple[list[str], list[str | None]] | None:
    """The fills' symbols (with a time) and liquidity values; None without fills."""
    keys = store.query(
        f"""SELECT count(*) AS n, list(DISTINCT liquidity) AS liq,
                   list(DISTINCT symbol) FILTER (WHERE symbol IS NOT NULL AND ts IS NOT NULL)
                       AS symbols
            FROM ({fills}) f""",
        params,
    ).to_pylist()[0]
    if keys["n"] == 0:
        return None
    return keys["symbols"] or [], keys["liq"]


def _read_fills(
    store: Store, fills: str, params: list[Any], symbols: list[str], liq_values: list[str | None]
) -> _Fills | None:
    """None when a fill has a symbol or liquidity not in those given (read in between)."""
    # code: 1 + the symbol's index, 0 without symbol or time; sgn 0: no markout (side or
    # price unknown), the price then set to 1 so that no null reaches the arithmetic
    t = store.query(
        f"""SELECT CASE WHEN ts IS NULL OR symbol IS NULL THEN 0
                        ELSE coalesce(list_position(?::VARCHAR[], symbol), -1)
                   END::{_code_type(len(symbols))} AS code,
                   coalesce(ts, 0) AS ts,
                   CASE WHEN last_px IS NOT NULL THEN coalesce(sgn, 0) ELSE 0 END::TINYINT
                       AS sgn,
                   coalesce(last_px, 1.0) AS px,
                   coalesce(list_position(?::VARCHAR[], liquidity) - 1, -1)
                       ::{_code_type(len(liq_values))} AS liq
            FROM ({fills}) f""",
        [symbols, liq_values, *params],
    )
    code = t.column("code").to_numpy()
    liq = t.column("liq").to_numpy()
    if (code < 0).any() or (liq < 0).any():
        return None
    order = np.argsort(code, kind="stable")
    sgn = t.column("sgn").to_numpy()[order]
    counts = np.bincount(code, minlength=len(symbols) + 1)
    return _Fills(
        ts=t.column("ts").to_numpy()[order],
        px=t.column("px").to_numpy()[order],
        sgn=sgn.astype(np.float64),
        x_ok=sgn != 0,
        liq=liq[order],
        liq_values=liq_values,
        starts=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        symbols=symbols,
    )


def _read_quotes(
    store: Store, symbols: list[str], bounds: Bounds, max_quotes: int
) -> _Quotes | None:
    n_sym = len(symbols)
    if n_sym == 0:
        none = np.zeros(0, dtype=np.int64)
        return _Quotes(ts=none, mid=np.zeros(0), starts=np.zeros(1, dtype=np.int64), last=none)
    cond = QUOTE_WHERE + " AND ts IS NOT NULL"
    if bounds is not None:
        cond += f" AND ts >= {int(bounds[0])}"
        if bounds[1] is not None:
            cond += f" AND ts <= {int(bounds[1])}"
    t = store.query(
        f"""SELECT (list_position(?::VARCHAR[], symbol) - 1)::{_code_type(n_sym)} AS code, ts,
                   (bid + ask) / 2 AS mid, seq, rowid AS rid
            FROM events WHERE {cond} AND list_position(?::VARCHAR[], symbol) IS NOT NULL
            LIMIT {int(max_quotes) + 1}""",
        [symbols, symbols],
    )
    if t.num_rows > max_quotes:
        return None
    code, ts, mid = (t.column(k).to_numpy() for k in ("code", "ts", "mid"))
    perm = _seq_order(t.column("seq"), t.column("rid"))
    del t
    if perm is not None:
        code, ts, mid = perm(code), perm(ts), perm(mid)
    order = np.argsort(code, kind="stable")
    ts, mid = ts[order], mid[order]
    starts = np.concatenate([[0], np.cumsum(np.bincount(code, minlength=n_sym))]).astype(np.int64)
    # by time within a symbol where the scan was not (stable: seq order among equal times)
    down = np.flatnonzero(ts[1:] < ts[:-1]) + 1
    in_sym = np.searchsorted(starts, down, side="right") - 1
    for c in np.unique(in_sym[starts[in_sym] != down]):
        a, b = int(starts[c]), int(starts[c + 1])
        sub = np.argsort(ts[a:b], kind="stable")
        ts[a:b], mid[a:b] = ts[a:b][sub], mid[a:b][sub]
    last = np.full(n_sym, _I64_MIN, dtype=np.int64)
    some = starts[1:] > starts[:-1]
    last[some] = ts[starts[1:][some] - 1]
    if bounds is not None and bounds[1] is not None:  # quotes after the range count here
        later = store.query(
            f"""SELECT list_position(?::VARCHAR[], symbol) - 1 AS code, max(ts) AS ts
                FROM events
                WHERE {QUOTE_WHERE} AND ts > {int(bounds[1])}
                      AND list_contains(?::VARCHAR[], symbol)
                GROUP BY symbol""",
            [symbols, symbols],
        )
        c_later = later.column("code").to_numpy().astype(np.int64)
        last[c_later] = np.maximum(last[c_later], later.column("ts").to_numpy())
    return _Quotes(ts=ts, mid=mid, starts=starts, last=last)


def _seq_order(
    seq: pa.ChunkedArray, rid: pa.ChunkedArray
) -> Callable[[npt.NDArray[Any]], npt.NDArray[Any]] | None:
    """How to put rows in seq order (rows without seq first, in storage order, i.e. by
    row id); None when the scan returned them so. A scan returns blocks of rows in seq
    order, occasionally not in order of one another: then the blocks are reordered."""
    n = len(seq)
    if seq.null_count == 0:
        s = seq.to_numpy()
        cut = np.flatnonzero(s[1:] <= s[:-1]) + 1
        if len(cut) == 0:
            return None
        if len(cut) <= _MAX_BLOCKS:
            a = np.concatenate([[0], cut])
            b = np.concatenate([cut, [n]])
            by_first = np.argsort(s[a], kind="stable")
            a, b = a[by_first], b[by_first]
            if bool(np.all(s[a[1:]] > s[b[:-1] - 1])):
                blocks = list(zip(a.tolist(), b.tolist(), strict=True))
                return lambda x: np.concatenate([x[i:j] for i, j in blocks])
    r = rid.to_numpy()
    perm = np.argsort(r, kind="stable")
    key = pc.fill_null(seq, _I64_MIN).to_numpy()[perm]
    perm = perm[np.argsort(key, kind="stable")]
    return lambda x: x[perm]
