// Execution quality: latency histogram and per-minute trend, slippage distribution, venue
// comparison, fill-rate breakdown.
import { axes, barsPath, chart } from "./charts.js";
import { bps, cell, compact, esc, isNum, ms, pct } from "./format.js";
import { panel } from "./panel.js";

const sec = (ns) => ns / 1e9;

function latencyHistogram(ctx) {
  const p = panel("p-lathist");
  const kindSel = document.getElementById("lat-kind");
  let buckets = [];
  const c = chart(p.q(".chart"), {
    scales: { x: { time: false } },
    axes: [
      { ...axes()[0], values: (u, vals) => vals.map((v) => (Number.isInteger(v) && buckets[v] ? ms(buckets[v].upper_ms, false) : "")) },
      axes((v) => compact(v))[1],
    ],
    series: [
      { label: "bucket", value: (u, v) => (v == null || !buckets[v] ? "—" : `${ms(buckets[v].lower_ms, false)}–${ms(buckets[v].upper_ms)}`) },
      { label: "count", stroke: "#4c9aff", fill: "rgba(76,154,255,.45)", paths: barsPath(), points: { show: false } },
    ],
  });
  let last = null;
  const render = () => {
    if (!last) return;
    const part = last[kindSel.value];
    buckets = part.histogram || [];
    if (!buckets.length) {
      p.set("empty", `no ${kindSel.value} latencies in this window`);
      return;
    }
    p.set("ok");
    c.update([buckets.map((_, i) => i), buckets.map((b) => b.count)]);
  };
  ctx.feeds.latency.subscribe((s) => {
    last = p.feed(s);
    render();
  });
  kindSel.addEventListener("change", render);
}

function latencyTrend(ctx) {
  const p = panel("p-lattrend");
  const c = chart(p.q(".chart"), {
    axes: axes((v) => ms(v, false)),
    series: [
      {},
      { label: "p50 ms", stroke: "#22d3ee", width: 1.5, value: (u, v) => ms(v) },
      { label: "p99 ms", stroke: "#f2b134", width: 1.5, value: (u, v) => ms(v) },
      { label: "mean ms", stroke: "#8390a3", width: 1, dash: [4, 3], value: (u, v) => ms(v) },
    ],
  });
  const kindSel = document.getElementById("lat-kind");
  let last = null;
  const render = () => {
    if (!last) return;
    const t = last[kindSel.value].trend_per_minute || [];
    document.getElementById("lattrend-sub").textContent = `${kindSel.selectedOptions[0].text}, ms per minute`;
    if (!t.length) {
      p.set("empty", "no latencies in this window");
      return;
    }
    p.set("ok");
    c.update([t.map((r) => sec(r.minute_ns)), t.map((r) => r.p50_ms), t.map((r) => r.p99_ms), t.map((r) => r.mean_ms)]);
  };
  ctx.feeds.latency.subscribe((s) => {
    last = p.feed(s);
    render();
  });
  kindSel.addEventListener("change", render);
}

function slippageDistribution(ctx) {
  const p = panel("p-slipdist");
  const c = chart(p.q(".chart"), {
    scales: { x: { time: false } },
    axes: axes((v) => compact(v), { values: (u, vals) => vals.map((v) => `${v}`) }),
    series: [
      { label: "bps", value: (u, v) => (v == null ? "—" : `${bps(v, false)} bps`) },
      { label: "fills", stroke: "#a78bfa", fill: "rgba(167,139,250,.45)", paths: barsPath(), points: { show: false } },
    ],
  });
  ctx.feeds.slippage.subscribe((s) => {
    const d = p.feed(s);
    if (!d) return;
    const dist = d.distribution || [];
    if (!dist.length) {
      p.set("empty", "no fills with an arrival benchmark in this window");
      return;
    }
    p.set("ok");
    c.update([dist.map((b) => (b.lower_bps + b.upper_bps) / 2), dist.map((b) => b.count)]);
  });
}

function venueComparison(ctx) {
  const p = panel("p-venues");
  let slip = null;
  let lat = null;
  const render = () => {
    if (!slip) return;
    const rows = slip.by_venue || [];
    if (!rows.length) {
      p.set("empty", "no fills in this window");
      return;
    }
    const latBy = new Map((lat?.ack?.by_venue || []).map((r) => [r.venue, r]));
    const maxAbs = Math.max(1e-9, ...rows.map((r) => Math.abs(r.mean_bps ?? 0)));
    const html = rows
      .map((r) => {
        const m = r.mean_bps;
        const w = isNum(m) ? (Math.abs(m) / maxAbs) * 50 : 0;
        const bar = isNum(m)
          ? `<div class="hbar"><i style="left:${m >= 0 ? 50 : 50 - w}%;width:${w}%;background:${m > 0 ? "#ef5350" : "#2fbf71"}"></i><i style="left:50%;width:1px;background:#4a5566"></i></div>`
          : "";
        const l = latBy.get(r.venue);
        return `<tr><td>${cell(r.venue)}</td><td class="n">${compact(r.count)}</td><td class="n ${m > 0 ? "neg" : "pos"}">${bps(m, false)}</td><td style="width:22%">${bar}</td><td class="n">${bps(r.p95_bps, false)}</td><td class="n">${ms(l?.p50_ms, false)}</td><td class="n">${ms(l?.p99_ms, false)}</td></tr>`;
      })
      .join("");
    p.q(".tbl").innerHTML = `<table><thead><tr><th>venue</th><th class="n">fills</th><th class="n">mean bps</th><th></th><th class="n">p95</th><th class="n">ack p50 ms</th><th class="n">ack p99 ms</th></tr></thead><tbody>${html}</tbody></table>`;
    p.set("ok");
  };
  ctx.feeds.slippage.subscribe((s) => {
    slip = p.feed(s);
    render();
  });
  ctx.feeds.latency.subscribe((s) => {
    lat = s.data || null;
    render();
  });
}

const OUTCOMES = [
  ["fully_filled", "c-full", "filled"],
  ["partially_filled", "c-part", "partial"],
  ["cancelled_after_partial", "c-cap", "cxl after partial"],
  ["cancelled_without_fill", "c-cnf", "cxl no fill"],
  ["rejected", "c-rej", "rejected"],
  ["expired", "c-exp", "expired"],
];

function fillRates(ctx) {
  const p = panel("p-fillrate");
  const bySel = document.getElementById("fill-by");
  let last = null;
  const stack = (r) => {
    const total = Math.max(1, OUTCOMES.reduce((a, [k]) => a + (r[k] || 0), 0));
    return `<div class="stack">${OUTCOMES.map(([k, c, label]) => (r[k] ? `<i class="${c}" style="width:${(100 * r[k]) / total}%" title="${label}: ${r[k]}"></i>` : "")).join("")}</div>`;
  };
  const render = () => {
    if (!last) return;
    const o = last.overall;
    if (!o.orders) {
      p.set("empty", "no finished orders in this window");
      return;
    }
    const key = bySel.value;
    const rows = last[`by_${key}`] || [];
    const reasons = (last.rejected_by_reason || []).map((r) => `${esc(r.reason)} <b class="num">${r.orders}</b>`).join(" · ");
    p.q(".content").innerHTML =
      `<div class="kv"><div><div class="k">fill rate (qty)</div><div class="v">${pct(o.fill_rate_qty)}</div></div>` +
      `<div><div class="k">fully filled</div><div class="v">${pct(o.fill_rate_count)}</div></div>` +
      `<div><div class="k">finished</div><div class="v">${compact(o.orders)}</div></div>` +
      `<div><div class="k">still open</div><div class="v">${compact(last.still_open)}</div></div></div>` +
      `<div class="legend">${OUTCOMES.map(([, c, label]) => `<span><i class="${c}"></i>${label}</span>`).join("")}</div>` +
      `<table><thead><tr><th>${key}</th><th class="n">orders</th><th class="n">fill rate</th><th style="width:45%">outcomes</th></tr></thead><tbody>` +
      `<tr><td><b>all</b></td><td class="n">${compact(o.orders)}</td><td class="n">${pct(o.fill_rate_qty)}</td><td>${stack(o)}</td></tr>` +
      rows.map((r) => `<tr><td>${cell(r[key])}</td><td class="n">${compact(r.orders)}</td><td class="n">${pct(r.fill_rate_qty)}</td><td>${stack(r)}</td></tr>`).join("") +
      `</tbody></table>` +
      (reasons ? `<div class="section-title">rejects by reason</div><div>${reasons}</div>` : "");
    p.set("ok");
  };
  ctx.feeds.fills.subscribe((s) => {
    last = p.feed(s);
    render();
  });
  bySel.addEventListener("change", render);

}

export function mountExecution(ctx) {
  latencyHistogram(ctx);
  latencyTrend(ctx);
  slippageDistribution(ctx);
  venueComparison(ctx);
  fillRates(ctx);
}
