// Pair analytics: two symbols, timeframe, rolling window and lookback → spread and z-score
// (with the |z| rule band), rolling correlation (zoom by drag or wheel, pan with shift+drag,
// hover for values), hedge ratio, the ADF test and the configured rule alerts.
import { Feed, qs } from "./api.js";
import { axes, chart } from "./charts.js";
import { cell, esc, isNum, num, time } from "./format.js";
import { fillSelect, panel } from "./panel.js";

export function mountPairs(ctx) {
  const p = panel("p-pairs");
  const aSel = document.getElementById("pair-a");
  const bSel = document.getElementById("pair-b");
  const tf = document.getElementById("pair-tf");
  const win = document.getElementById("pair-window");
  const look = document.getElementById("pair-lookback");
  const zIn = document.getElementById("pair-z");
  const info = document.getElementById("pair-info");
  const url = () => {
    if (!aSel.value || !bSel.value || aSel.value === bSel.value) return null;
    const w = Math.max(2, Number(win.value) || 30);
    const l = Math.max(w + 1, Number(look.value) || 500);
    return `/log_stream/pairs${qs({ a: aSel.value, b: bSel.value, timeframe: tf.value, window: w, lookback: l })}`;
  };
  const feed = new Feed("/log_stream/pairs", url, 2000);
  ctx.feeds.pairs = feed;
  const zband = () => Math.abs(Number(zIn.value) || 2);
  const spread = chart(document.getElementById("pair-spread"), {
    scales: { z: { range: (u, min, max) => [Math.min(min, -zband() * 1.3), Math.max(max, zband() * 1.3)] } },
    axes: [axes()[0], { ...axes((v) => num(v, 4))[1], size: 66 }, { ...axes((v) => num(v, 1))[1], scale: "z", side: 1, grid: { show: false }, size: 40 }],
    series: [
      {},
      { label: "spread", stroke: "#4c9aff", width: 1.4, value: (u, v) => num(v, 5) },
      { label: "z-score", scale: "z", stroke: "#f2b134", width: 1.2, value: (u, v) => num(v, 2) },
      { label: `+z`, scale: "z", stroke: "rgba(239,83,80,.6)", dash: [5, 4], width: 1, points: { show: false } },
      { label: `−z`, scale: "z", stroke: "rgba(239,83,80,.6)", dash: [5, 4], width: 1, points: { show: false } },
    ],
  });
  const corr = chart(document.getElementById("pair-corr"), {
    scales: { y: { range: [-1, 1] } },
    axes: axes((v) => num(v, 1)),
    series: [{}, { label: "correlation", stroke: "#2fbf71", width: 1.3, value: (u, v) => num(v, 3) }],
  });

  feed.subscribe((s) => {
    if (s.idle) {
      p.set("empty", ctx.known.quoted.size < 2 && ctx.known.symbols.size < 2 ? "needs two symbols with market data" : "choose two different symbols");
      return;
    }
    const d = p.feed(s);
    if (!d) return;
    const rows = d.series || [];
    const z = zband();
    const latest = d.latest || {};
    const adf = d.adf;
    const hr = d.hedge_ratio;
    const trig = isNum(latest.zscore) && Math.abs(latest.zscore) > z;
    const rules = (d.rules || [])
      .map((r) => `<tr><td>${esc(r.name || r.expr)}</td><td class="mono">${esc(r.expr)}</td><td class="n">${num(r.value, 2)}</td><td>${r.triggered ? '<span class="pill bad">triggered</span>' : r.value == null ? `<span class="pill" title="${esc(r.reason)}">n/a</span>` : '<span class="pill ok">ok</span>'}</td></tr>`)
      .join("");
    info.innerHTML =
      (d.status !== "ok" ? `<div class="pill warn">${esc(d.status)}</div> <span class="dim">${esc(d.reason || "")} (${d.bars_available}/${d.bars_needed} bars)</span>` : "") +
      `<div class="kv" style="grid-template-columns:repeat(3,minmax(0,1fr))">` +
      `<div><div class="k">z-score</div><div class="v ${trig ? "neg" : ""}">${num(latest.zscore, 2)}</div></div>` +
      `<div><div class="k">correlation</div><div class="v">${num(latest.correlation, 3)}</div></div>` +
      `<div><div class="k">hedge β</div><div class="v">${hr ? num(hr.beta, 4) : "—"}</div></div>` +
      `<div><div class="k">ADF stat</div><div class="v">${adf ? num(adf.statistic, 3) : "—"}</div></div>` +
      `<div><div class="k">ADF p-value</div><div class="v">${adf ? num(adf.pvalue, 4) : "—"}</div></div>` +
      `<div><div class="k">stationary 5%</div><div class="v">${adf ? (adf.stationary_at_5pct ? '<span class="pos">yes</span>' : '<span class="neg">no</span>') : `<span class="dim" title="${esc(d.adf_reason || "")}">—</span>`}</div></div></div>` +
      `<div class="section-title">rule alerts</div>` +
      `<table><tbody><tr><td>|z| &gt; ${num(z, 1)} (this view)</td><td class="mono">${time(latest.ts_ns)}</td><td class="n">${num(latest.zscore, 2)}</td><td>${isNum(latest.zscore) ? (trig ? '<span class="pill bad">triggered</span>' : '<span class="pill ok">ok</span>') : '<span class="pill">n/a</span>'}</td></tr>${rules}</tbody></table>` +
      `<div class="hint-line" style="margin-top:6px">${cell(d.a)} vs ${cell(d.b)} · ${d.timeframe} · window ${d.window_bars} · ${rows.length} bars · drag or wheel to zoom, shift+drag to pan, double-click to reset</div>`;
    if (!rows.length) {
      p.set("empty", d.reason || "no common bars for these symbols yet");
      return;
    }
    p.set("ok");
    const t = rows.map((r) => r.ts_ns / 1e9);
    spread.update([t, rows.map((r) => r.spread), rows.map((r) => r.zscore), rows.map(() => z), rows.map(() => -z)]);
    corr.update([t, rows.map((r) => r.correlation)]);
  });

  const sync = () => {
    const choices = ctx.known.quoted.size >= 2 ? ctx.known.quoted : ctx.known.symbols;
    const wasA = aSel.value;
    fillSelect(aSel, choices);
    fillSelect(bSel, choices);
    if (!wasA && bSel.options.length > 1 && bSel.value === aSel.value) bSel.selectedIndex = 1;
    feed.kick();
  };
  ctx.on("known", sync);
  for (const el of [aSel, bSel, tf, win, look, zIn]) el.addEventListener("change", () => feed.kick());
  feed.start();
}
