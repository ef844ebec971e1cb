// PnL: equity curve per strategy, positions table, maker vs taker and round trips.
import { PALETTE, axes, chart } from "./charts.js";
import { cell, compact, esc, money, num, pct, price, qty, signClass } from "./format.js";
import { panel } from "./panel.js";

function equity(ctx) {
  const p = panel("p-equity");
  const host = p.q(".chart");
  let c = null;
  let names = [];
  ctx.feeds.equity.subscribe((s) => {
    const d = p.feed(s);
    if (!d) return;
    const pts = d.points || [];
    if (!pts.length) {
      p.set("empty", "no fills yet");
      return;
    }
    const strategies = [...new Set(pts.flatMap((pt) => Object.keys(pt.by_strategy)))].sort();
    if (strategies.join("|") !== names.join("|")) {
      names = strategies;
      host.replaceChildren();
      c = chart(host, {
        axes: axes((v) => compact(v)),
        series: [
          {},
          { label: "total", stroke: "#e5e9f0", width: 2, value: (u, v) => money(v) },
          ...names.map((n, i) => ({ label: n || "(none)", stroke: PALETTE[i % PALETTE.length], width: 1.3, value: (u, v) => money(v) })),
        ],
      });
    }
    document.getElementById("equity-sub").textContent = `total PnL per strategy · every ${num(d.interval_s, d.interval_s < 10 ? 1 : 0)} s`;
    p.set("ok");
    c.update([pts.map((pt) => pt.ts / 1e9), pts.map((pt) => pt.total_pnl), ...names.map((n) => pts.map((pt) => pt.by_strategy[n] ?? null))]);
  });
}

function positions(ctx) {
  const p = panel("p-positions");
  ctx.feeds.positions.subscribe((s) => {
    const d = p.feed(s);
    if (!d) return;
    const rows = (d.positions || []).slice().sort((a, b) => Math.abs(b.total_pnl ?? 0) - Math.abs(a.total_pnl ?? 0));
    if (!rows.length) {
      p.set("empty", "no positions yet");
      return;
    }
    const open = rows.filter((r) => r.position).length;
    document.getElementById("pos-sub").textContent = `${open} open · ${rows.length} keys · average cost, realized net of fees`;
    const body = rows
      .slice(0, 200)
      .map(
        (r) =>
          `<tr><td>${cell(r.strategy)} <span class="dim">${esc(r.account ?? "")}</span></td><td>${cell(r.symbol)}</td>` +
          `<td class="n ${signClass(r.position)}">${qty(r.position)}</td><td class="n">${price(r.avg_cost)}</td>` +
          `<td class="n" title="${esc(r.mark_source)}">${price(r.mark)}</td>` +
          `<td class="n ${signClass(r.realized_pnl)}">${money(r.realized_pnl)}</td>` +
          `<td class="n ${signClass(r.unrealized_pnl)}">${money(r.unrealized_pnl)}</td>` +
          `<td class="n">${num(r.fees)}</td><td class="n ${signClass(r.total_pnl)}"><b>${money(r.total_pnl)}</b></td></tr>`,
      )
      .join("");
    p.q(".tbl").innerHTML =
      `<table><thead><tr><th>strategy · account</th><th>symbol</th><th class="n">position</th><th class="n">avg cost</th><th class="n">mark</th>` +
      `<th class="n">realized</th><th class="n">unrealized</th><th class="n">fees</th><th class="n">total</th></tr></thead><tbody>${body}</tbody></table>`;
    p.set("ok");
  });
}

function makerTaker(ctx) {
  const p = panel("p-makertaker");
  ctx.feeds.pnl.subscribe((s) => {
    const d = p.feed(s);
    if (!d) return;
    const liq = d.by_liquidity || [];
    const totalQty = liq.reduce((a, r) => a + (r.qty || 0), 0);
    const liqRows = liq
      .map(
        (r) =>
          `<tr><td>${cell(r.liquidity)}</td><td class="n">${compact(r.fills)}</td><td class="n">${compact(r.qty)}</td>` +
          `<td class="n">${totalQty ? pct(r.qty / totalQty) : "—"}</td>` +
          `<td class="n">${num(r.fees)}</td><td class="n ${signClass(r.realized_gross)}">${money(r.realized_gross)}</td></tr>`,
      )
      .join("");
    const rt = d.round_trips?.overall;
    const strat = (d.by_strategy || [])
      .map((r) => `<tr><td>${cell(r.strategy)}</td><td class="n ${signClass(r.realized_pnl)}">${money(r.realized_pnl)}</td><td class="n ${signClass(r.unrealized_pnl)}">${money(r.unrealized_pnl)}</td><td class="n ${signClass(r.total_pnl)}"><b>${money(r.total_pnl)}</b></td></tr>`)
      .join("");
    p.q(".content").innerHTML =
      `<table><thead><tr><th>liquidity</th><th class="n">fills</th><th class="n">qty</th><th class="n">share</th><th class="n">fees</th><th class="n">realized gross</th></tr></thead><tbody>${liqRows || '<tr><td colspan="6" class="dim">no fills in this window</td></tr>'}</tbody></table>` +
      `<div class="section-title">round trips (flat → flat)</div>` +
      (rt
        ? `<div class="kv"><div><div class="k">count</div><div class="v">${compact(rt.count)}</div></div><div><div class="k">win rate</div><div class="v">${pct(rt.win_rate)}</div></div>` +
          `<div><div class="k">profit factor</div><div class="v">${num(rt.profit_factor)}</div></div><div><div class="k">expectancy</div><div class="v ${signClass(rt.expectancy)}">${money(rt.expectancy)}</div></div></div>`
        : `<div class="dim">no round trips closed in this window</div>`) +
      `<div class="section-title">PnL by strategy (window)</div><table><thead><tr><th>strategy</th><th class="n">realized</th><th class="n">unrealized</th><th class="n">total</th></tr></thead><tbody>${strat}</tbody></table>`;
    p.set("ok");
  });
}

export function mountPnl(ctx) {
  equity(ctx);
  positions(ctx);
  makerTaker(ctx);
}
