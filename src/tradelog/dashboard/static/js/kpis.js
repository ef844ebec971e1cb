// KPI tiles: events/s (from the live metrics snapshot), orders, fill rate, ack latency
// p50/p99, mean slippage, total PnL and open alerts (from the shared feeds), each with a
// sparkline of its recent values.
import { spark } from "./charts.js";
import { bps, compact, isNum, ms, money, pct } from "./format.js";

const HISTORY = 90;

export function openAlerts(summary) {
  if (!summary) return null;
  if (isNum(summary.open)) return summary.open;
  const by = summary.by_status;
  if (!by || typeof by !== "object") return null;
  return (by.active || 0) + (by.acknowledged || 0);
}

export function mountKpis(ctx) {
  const tiles = {};
  for (const el of document.querySelectorAll("#p-kpis .tile")) {
    tiles[el.dataset.kpi] = {
      el,
      value: el.querySelector(".value"),
      hint: el.querySelector(".hint"),
      canvas: el.querySelector("canvas"),
      history: [],
      color: "#4c9aff",
    };
  }
  const set = (key, value, text, { cls = "", hint = null, color = null } = {}) => {
    const t = tiles[key];
    t.value.innerHTML = text;
    t.value.className = `value ${cls}`;
    t.el.dataset.raw = isNum(value) ? String(value) : "";
    if (hint !== null) t.hint.textContent = hint;
    if (color) t.color = color;
    t.history.push(isNum(value) ? value : NaN);
    if (t.history.length > HISTORY) t.history.shift();
    spark(t.canvas, t.history, t.color);
  };
  const unit = (s) => {
    const i = s.lastIndexOf(" ");
    return i < 0 ? s : `${s.slice(0, i)}<small>${s.slice(i + 1)}</small>`;
  };

  const snaps = []; // (sent_ns, events) of the last few snapshots: a smoothed rate
  ctx.on("metrics", (m) => {
    const p = m.pipeline;
    if (!p) return;
    snaps.push([m.sent_ns, p.events]);
    if (snaps.length > 6) snaps.shift();
    if (snaps.length < 2) return;
    const [t0, n0] = snaps[0];
    const [t1, n1] = snaps[snaps.length - 1];
    if (t1 <= t0) return;
    const rate = ((n1 - n0) * 1e9) / (t1 - t0);
    set("eps", rate, unit(`${compact(rate)} ev/s`), { hint: `${compact(p.events)} events since start` });
  });
  ctx.on("nolive", () => set("eps", null, "—", { hint: "store only: no live pipeline" }));

  ctx.feeds.fills.subscribe((s) => {
    if (!s.data) return;
    const o = s.data.overall;
    const open = s.data.still_open ?? 0;
    set("orders", o.orders, compact(o.orders), { hint: `finished · ${compact(open)} still open` });
    set("fill", o.fill_rate_qty, unit(pct(o.fill_rate_qty).replace("%", " %")), {
      hint: `${pct(o.fill_rate_count)} of orders fully filled`,
      color: "#2fbf71",
    });
  });
  ctx.feeds.latency.subscribe((s) => {
    if (!s.data) return;
    const a = s.data.ack.overall;
    set("p50", a.p50_ms, unit(ms(a.p50_ms)), { hint: `ack − new · ${compact(a.count)} acks`, color: "#22d3ee" });
    set("p99", a.p99_ms, unit(ms(a.p99_ms)), { hint: `max ${ms(a.max_ms)}`, color: "#f2b134" });
  });
  ctx.feeds.slippage.subscribe((s) => {
    if (!s.data) return;
    const f = s.data.fills;
    set("slip", f.mean_bps, unit(bps(f.mean_bps)), {
      cls: isNum(f.mean_bps) ? (f.mean_bps > 0 ? "neg" : "pos") : "",
      hint: `+ = cost · ${compact(f.with_benchmark)} fills with a benchmark`,
      color: "#a78bfa",
    });
  });
  ctx.feeds.pnl.subscribe((s) => {
    if (!s.data) return;
    const o = s.data.overall;
    set("pnl", o.total_pnl, money(o.total_pnl), {
      cls: isNum(o.total_pnl) ? (o.total_pnl >= 0 ? "pos" : "neg") : "",
      hint: `realized ${money(o.realized_pnl, 0)} · fees ${compact(o.fees)}`,
      color: "#2fbf71",
    });
  });
  ctx.feeds.alertSummary.subscribe((s) => {
    if (s.na) {
      set("alerts", null, "n/a", { hint: "alerts endpoint not available" });
      return;
    }
    if (!s.data) return;
    const n = openAlerts(s.data);
    set("alerts", n, isNum(n) ? compact(n) : "—", {
      cls: n > 0 ? "neg" : "",
      hint: "active + acknowledged",
      color: "#ef5350",
    });
  });
}
