"""Inline SVG charts drawn in Python: no JavaScript, no network, print-friendly. Every
chart is an ``<svg class="chart" data-chart=NAME>`` with a title and axis labels; an empty
input gives a short "no data" figure rather than an empty box."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Final

W: Final = 760
H: Final = 260
PAD_L: Final = 70
PAD_R: Final = 16
PAD_T: Final = 28
PAD_B: Final = 38
MAX_LINE_POINTS: Final = 1500
COLORS: Final = ("#1f5fa8", "#c2410c", "#15803d", "#7c3aed", "#b91c1c", "#0e7490", "#a16207")
POS: Final = "#15803d"
NEG: Final = "#b91c1c"


def _open(name: str, title: str, height: int = H) -> list[str]:
    return [
        f'<svg class="chart" data-chart="{escape(name)}" role="img" viewBox="0 0 {W} {height}"'
        f' width="100%" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<text x="{PAD_L}" y="17" class="ct">{escape(title)}</text>',
    ]


def _empty(name: str, title: str, why: str) -> str:
    parts = _open(name, title, 80)
    parts.append(f'<text x="{PAD_L}" y="52" class="cn">{escape(why)}</text></svg>')
    return "".join(parts)


def fmt_num(v: float) -> str:
    """Compact axis label: 1.25M, 35k, 0.25, -3.1e-05.

    >>> fmt_num(1_250_000), fmt_num(-2500), fmt_num(0.125), fmt_num(0)
    ('1.25M', '-2500', '0.125', '0')
    """
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a >= 1e-3:
        return f"{v:.4g}"
    return f"{v:.2g}"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 2.5, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _time_label(ns: int, span_ns: int) -> str:
    d = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    if span_ns > 2 * 86_400 * 10**9:
        return d.strftime("%m-%d %H:%M")
    if span_ns > 3600 * 10**9:
        return d.strftime("%H:%M")
    return d.strftime("%H:%M:%S")


def _decimate(n: int) -> list[int]:
    if n <= MAX_LINE_POINTS:
        return list(range(n))
    step = n / MAX_LINE_POINTS
    return sorted({min(n - 1, int(i * step)) for i in range(MAX_LINE_POINTS)} | {n - 1})


def line_chart(
    name: str,
    title: str,
    ts_ns: Sequence[int],
    series: dict[str, Sequence[float | None]],
    y_label: str = "",
    fill_to_zero: bool = False,
    y_as_percent: bool = False,
) -> str:
    """Time on x, one polyline per series (gaps where a value is None)."""
    values = [v for s in series.values() for v in s if v is not None and math.isfinite(v)]
    if len(ts_ns) < 2 or not values:
        return _empty(name, title, "no data in the window")
    x0, x1 = int(ts_ns[0]), int(ts_ns[-1])
    lo, hi = min([*values, 0.0] if fill_to_zero else values), max(values)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.05
    lo, hi = lo - pad, hi + pad if not fill_to_zero or hi > 0 else hi
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def sx(t: int) -> float:
        return PAD_L + (t - x0) / max(x1 - x0, 1) * pw

    def sy(v: float) -> float:
        return PAD_T + (hi - v) / (hi - lo) * ph

    parts = _open(name, title)
    for tick in _ticks(lo, hi):
        y = sy(tick)
        label = f"{tick * 100:.3g}%" if y_as_percent else fmt_num(tick)
        parts.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" class="cg"/>')
        parts.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" class="cy">{label}</text>')
    for i in range(5):
        t = x0 + (x1 - x0) * i // 4
        parts.append(
            f'<text x="{sx(t):.1f}" y="{H - PAD_B + 16}" class="cx">'
            f"{_time_label(t, x1 - x0)}</text>"
        )
    if y_label:
        parts.append(f'<text x="{W - PAD_R}" y="17" class="cl">{escape(y_label)}</text>')
    idx = _decimate(len(ts_ns))
    for k, (label, ys) in enumerate(series.items()):
        color = COLORS[k % len(COLORS)]
        runs: list[list[str]] = [[]]
        for i in idx:
            v = ys[i]
            if v is None or not math.isfinite(v):
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append(f"{sx(int(ts_ns[i])):.1f},{sy(v):.1f}")
        for run in runs:
            if not run:
                continue
            if fill_to_zero:
                z = sy(0.0)
                first_x, last_x = run[0].split(",")[0], run[-1].split(",")[0]
                pts = f"{first_x},{z:.1f} {' '.join(run)} {last_x},{z:.1f}"
                parts.append(
                    f'<polygon points="{pts}" fill="{color}" fill-opacity="0.25" '
                    f'stroke="{color}" stroke-width="1"/>'
                )
            else:
                parts.append(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke="{color}" '
                    'stroke-width="1.5"/>'
                )
        if len(series) > 1:
            ly = PAD_T + 4 + 14 * k
            parts.append(
                f'<rect x="{W - PAD_R - 150}" y="{ly}" width="10" height="10" '
                f'fill="{color}"/><text x="{W - PAD_R - 135}" y="{ly + 9}" class="cz">'
                f"{escape(label)}</text>"
            )
    parts.append(_axes())
    parts.append("</svg>")
    return "".join(parts)


def _axes() -> str:
    return (
        f'<line x1="{PAD_L}" x2="{PAD_L}" y1="{PAD_T}" y2="{H - PAD_B}" class="ca"/>'
        f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{H - PAD_B}" y2="{H - PAD_B}" class="ca"/>'
    )


def bar_chart(
    name: str,
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    y_label: str = "",
    label_every: int = 1,
) -> str:
    """Vertical bars, green above zero and red below; None bars are left out."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not labels or not vals:
        return _empty(name, title, "no data in the window")
    lo, hi = min(0.0, *vals), max(0.0, *vals)
    if hi == lo:
        hi = lo + 1
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def sy(v: float) -> float:
        return PAD_T + (hi - v) / (hi - lo) * ph

    parts = _open(name, title)
    for tick in _ticks(lo, hi):
        y = sy(tick)
        parts.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" class="cg"/>')
        parts.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" class="cy">{fmt_num(tick)}</text>')
    if y_label:
        parts.append(f'<text x="{W - PAD_R}" y="17" class="cl">{escape(y_label)}</text>')
    bw = pw / len(labels)
    z = sy(0.0)
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        x = PAD_L + i * bw
        if v is not None and math.isfinite(v) and v != 0:
            y = sy(v)
            top, height = min(y, z), abs(z - y)
            color = POS if v > 0 else NEG
            parts.append(
                f'<rect x="{x + bw * 0.1:.1f}" y="{top:.1f}" width="{bw * 0.8:.1f}" '
                f'height="{max(height, 0.5):.1f}" fill="{color}">'
                f"<title>{escape(lab)}: {fmt_num(v)}</title></rect>"
            )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x + bw / 2:.1f}" y="{H - PAD_B + 16}" class="cx">{escape(lab)}</text>'
            )
    parts.append(_axes())
    parts.append("</svg>")
    return "".join(parts)


def histogram(
    name: str,
    title: str,
    buckets: Sequence[tuple[float, float, int]],
    unit: str,
) -> str:
    """Counts per bucket [lower, upper), equal-width bars labelled with the bounds."""
    if not buckets or not any(c for _, _, c in buckets):
        return _empty(name, title, "no data in the window")
    labels = [fmt_num(lo) for lo, _, _ in buckets]
    every = max(1, len(buckets) // 12)
    counts = [float(c) for _, _, c in buckets]
    return bar_chart(name, title, labels, counts, f"count (x: {unit})", every)


def heatmap(
    name: str,
    title: str,
    cells: Sequence[tuple[str, str, float | None]],
    value_as_percent: bool = True,
) -> str:
    """Rows × columns of values (e.g. month × day), red for losses and green for gains."""
    rows = list(dict.fromkeys(r for r, _, _ in cells))
    cols = sorted(set(c for _, c, _ in cells), key=lambda c: (len(c), c))
    if not rows or not cols:
        return _empty(name, title, "no data in the window")
    vals = [abs(v) for _, _, v in cells if v is not None and math.isfinite(v)]
    scale = max(vals) if vals and max(vals) > 0 else 1.0
    cw = (W - PAD_L - PAD_R) / len(cols)
    ch = 22
    top = PAD_T + 16
    height = top + ch * len(rows) + 12
    parts = _open(name, title, height)
    lookup = {(r, c): v for r, c, v in cells}
    for j, c in enumerate(cols):
        parts.append(
            f'<text x="{PAD_L + j * cw + cw / 2:.1f}" y="{top - 4}" class="cx">{escape(c)}</text>'
        )
    for i, r in enumerate(rows):
        y = top + i * ch
        parts.append(f'<text x="{PAD_L - 6}" y="{y + 15}" class="cy">{escape(r)}</text>')
        for j, c in enumerate(cols):
            v = lookup.get((r, c))
            if v is None or not math.isfinite(v):
                continue
            alpha = 0.15 + 0.85 * min(abs(v) / scale, 1.0)
            color = POS if v >= 0 else NEG
            text = f"{v * 100:.2f}%" if value_as_percent else fmt_num(v)
            parts.append(
                f'<rect x="{PAD_L + j * cw:.1f}" y="{y}" width="{cw - 1:.1f}" '
                f'height="{ch - 2}" fill="{color}" fill-opacity="{alpha:.2f}">'
                f"<title>{escape(r)} {escape(c)}: {text}</title></rect>"
            )
            if cw >= 44:
                parts.append(
                    f'<text x="{PAD_L + j * cw + cw / 2:.1f}" y="{y + 14}" class="cx">{text}</text>'
                )
    parts.append("</svg>")
    return "".join(parts)
