// uPlot helpers: dark axes, charts that follow their container's size, zoom by drag or
// wheel, pan with shift+drag, double-click to reset, and a candlestick + volume plugin.
/* global uPlot */

export const PALETTE = ["#4c9aff", "#2fbf71", "#f2b134", "#a78bfa", "#22d3ee", "#ef5350", "#f472b6", "#94a3b8", "#84cc16", "#fb923c"];

const AXIS = {
  stroke: "#8390a3",
  grid: { stroke: "#1e2531", width: 1 },
  ticks: { stroke: "#2a3240", width: 1, size: 4 },
  font: "11px DejaVu Sans, Arial, sans-serif",
};

export function axes(yFormat, xOpts = {}) {
  const y = { ...AXIS, size: 58 };
  if (yFormat) y.values = (u, vals) => vals.map(yFormat);
  return [{ ...AXIS, ...xOpts }, y];
}

/** wheel zooms the x scale around the cursor; shift+drag pans; double-click resets */
function zoomPanPlugin() {
  return {
    hooks: {
      ready: (u) => {
        const over = u.over;
        over.addEventListener(
          "wheel",
          (e) => {
            if (!u.data || !u.data[0] || u.data[0].length < 2) return;
            e.preventDefault();
            const { left } = over.getBoundingClientRect();
            const x = u.posToVal(e.clientX - left, "x");
            const { min, max } = u.scales.x;
            const f = e.deltaY < 0 ? 0.8 : 1.25;
            u.__zoomed = true;
            u.setScale("x", { min: x - (x - min) * f, max: x + (max - x) * f });
          },
          { passive: false },
        );
        over.addEventListener(
          "mousedown",
          (e) => {
            if (!e.shiftKey) return;
            e.stopPropagation();
            e.preventDefault();
            const x0 = e.clientX;
            const { min, max } = u.scales.x;
            const per = (max - min) / over.clientWidth;
            const move = (ev) => {
              const dx = (ev.clientX - x0) * per;
              u.__zoomed = true;
              u.setScale("x", { min: min - dx, max: max - dx });
            };
            const up = () => {
              document.removeEventListener("mousemove", move);
              document.removeEventListener("mouseup", up);
            };
            document.addEventListener("mousemove", move);
            document.addEventListener("mouseup", up);
          },
          true,
        );
        over.addEventListener("dblclick", () => {
          u.__zoomed = false;
        });
      },
      setSelect: (u) => {
        if (u.select.width > 0) u.__zoomed = true;
      },
    },
  };
}

const pad = (n) => String(n).padStart(2, "0");

/** UTC tick labels: seconds when ticks are under a minute apart, dates beyond a day */
function utcTicks(u, splits, axisIdx, space, incr) {
  return splits.map((v) => {
    if (v == null) return "";
    const d = new Date(v * 1000);
    const hm = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
    if (incr >= 86400) return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
    return incr < 60 ? `${hm}:${pad(d.getUTCSeconds())}` : hm;
  });
}

function utcValue(u, v) {
  if (v == null) return "—";
  const d = new Date(v * 1000);
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/** Creates a chart inside `el` sized to it (legend included); returns update(data). */
export function chart(el, opts) {
  let u = null;
  const timeX = !(opts.scales && opts.scales.x && opts.scales.x.time === false);
  const o = { ...opts, axes: [...(opts.axes || [])], series: [...opts.series] };
  if (timeX) {
    if (o.axes.length && !o.axes[0].values) o.axes[0] = { space: 70, ...o.axes[0], values: utcTicks };
    if (!o.series[0].value) o.series[0] = { label: "UTC", ...o.series[0], value: utcValue };
  }
  const size = () => {
    const legend = u ? u.root.querySelector(".u-legend") : null;
    const lh = legend ? legend.offsetHeight : 22;
    return { width: Math.max(el.clientWidth, 50), height: Math.max(el.clientHeight - lh, 40) };
  };
  const make = (data) => {
    u = new uPlot(
      {
        ...size(),
        legend: { live: true },
        cursor: { drag: { x: true, y: false, setScale: true }, points: { size: 6 } },
        ...o,
        plugins: [zoomPanPlugin(), ...(o.plugins || [])],
      },
      data,
      el,
    );
    u.__zoomed = false;
    requestAnimationFrame(() => u.setSize(size())); // once the legend has its real height
  };
  new ResizeObserver(() => {
    if (u) u.setSize(size());
  }).observe(el);
  return {
    update(data) {
      if (!u) make(data);
      else u.setData(data, !u.__zoomed);
      const want = size(); // the legend's height is only known once it has laid out
      if (u.width !== want.width || u.height !== want.height) u.setSize(want);
    },
    get plot() {
      return u;
    },
  };
}

export function barsPath() {
  return uPlot.paths.bars({ size: [0.85, 60], gap: 1 });
}

/** draws OHLC candles from series 1..4 (open, high, low, close) */
export function candlePlugin() {
  return {
    hooks: {
      draw: (u) => {
        const [xs, o, h, l, c] = u.data;
        if (!xs || xs.length === 0) return;
        const ctx = u.ctx;
        const i0 = u.series[0].idxs ? u.series[0].idxs[0] : 0;
        const i1 = u.series[0].idxs ? u.series[0].idxs[1] : xs.length - 1;
        const span = xs.length > 1 ? u.valToPos(xs[1], "x", true) - u.valToPos(xs[0], "x", true) : 20;
        const w = Math.max(1, Math.min(18 * devicePixelRatio, Math.abs(span) * 0.7));
        ctx.save();
        ctx.beginPath();
        ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
        ctx.clip();
        for (let i = i0; i <= i1; i++) {
          if (o[i] == null || c[i] == null) continue;
          const x = u.valToPos(xs[i], "x", true);
          const yo = u.valToPos(o[i], "y", true);
          const yc = u.valToPos(c[i], "y", true);
          const yh = u.valToPos(h[i], "y", true);
          const yl = u.valToPos(l[i], "y", true);
          const color = c[i] >= o[i] ? "#2fbf71" : "#ef5350";
          ctx.strokeStyle = color;
          ctx.fillStyle = color;
          ctx.lineWidth = Math.max(1, devicePixelRatio);
          ctx.beginPath();
          ctx.moveTo(Math.round(x) + 0.5, yh);
          ctx.lineTo(Math.round(x) + 0.5, yl);
          ctx.stroke();
          const top = Math.min(yo, yc);
          ctx.fillRect(Math.round(x - w / 2), top, Math.round(w), Math.max(1, Math.abs(yc - yo)));
        }
        ctx.restore();
      },
    },
  };
}

/** a tiny sparkline on a <canvas> (KPI tiles) */
export function spark(canvas, values, color = "#4c9aff") {
  const w = canvas.clientWidth * devicePixelRatio;
  const h = canvas.clientHeight * devicePixelRatio;
  if (!w || !h) return;
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  const pts = values.filter((v) => Number.isFinite(v));
  if (pts.length < 2) return;
  let lo = Math.min(...pts);
  let hi = Math.max(...pts);
  if (hi === lo) {
    hi += 1;
    lo -= 1;
  }
  ctx.strokeStyle = color;
  ctx.lineWidth = devicePixelRatio;
  ctx.beginPath();
  let started = false;
  values.forEach((v, i) => {
    if (!Number.isFinite(v)) return;
    const x = (i / (values.length - 1)) * (w - 2) + 1;
    const y = h - 1 - ((v - lo) / (hi - lo)) * (h - 2);
    if (started) ctx.lineTo(x, y);
    else ctx.moveTo(x, y);
    started = true;
  });
  ctx.stroke();
}
