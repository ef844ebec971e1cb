// Order drill-down (lifecycle timeline from /log_stream/orders/{id}) and the latest orders.
import { NotAvailable, getJSON } from "./api.js";
import { bps, cell, esc, isNum, ms, pct, price, qty, time } from "./format.js";
import { panel } from "./panel.js";

const BAD = new Set(["order_rejected", "order_cancel_rejected"]);
const CXL = new Set(["order_cancel_request", "order_cancelled", "order_expired", "order_replace"]);

function detail(e) {
  switch (e.kind) {
    case "order_new":
    case "order_replace":
      return `${qty(e.qty)} @ ${price(e.price)}${e.orig_order_id ? ` (replaces ${esc(e.orig_order_id)})` : ""}`;
    case "fill":
      return `${qty(e.last_qty)} @ ${price(e.last_px)} · cum ${qty(e.cum_qty)} · leaves ${qty(e.leaves_qty)} · ${esc(e.liquidity || "?")} · fee ${isNum(e.fee) ? e.fee : "—"}${isNum(e.slippage_bps) ? ` · ${bps(e.slippage_bps)}` : ""}`;
    case "order_rejected":
    case "order_cancel_rejected":
      return esc(e.reason || "");
    default:
      return e.latency_ms != null ? `latency ${ms(e.latency_ms)}` : "";
  }
}

function renderOrder(o) {
  const t0 = o.timeline.length ? o.timeline[0].ts : 0;
  const span = Math.max(1, (o.timeline.at(-1)?.ts ?? t0) - t0);
  const dots = o.timeline
    .map((e) => `<b style="left:${((e.ts - t0) / span) * 100}%;background:${e.kind === "fill" ? "#2fbf71" : BAD.has(e.kind) ? "#ef5350" : CXL.has(e.kind) ? "#f2b134" : "#4c9aff"}" title="${esc(e.kind)} +${ms((e.ts - t0) / 1e6)}"></b>`)
    .join("");
  const kv = [
    ["status", `<span class="st st-${esc(o.status)}">${esc(o.status)}</span>`],
    ["symbol", `${cell(o.symbol)} · ${cell(o.venue)}`],
    ["side · type", `<span class="side-${esc(o.side)}">${cell(o.side)}</span> · ${cell(o.order_type)}`],
    ["strategy · acct", `${cell(o.strategy_id)} · ${cell(o.account_id)}`],
    ["qty @ px", `${qty(o.qty)} @ ${price(o.price)}`],
    ["filled · avg px", `${qty(o.filled_qty)} @ ${price(o.avg_px)}`],
    ["fill rate", pct(o.fill_rate)],
    ["fills · fees", `${o.n_fills} · ${isNum(o.fees) ? o.fees.toFixed(4) : "—"}`],
    ["ack latency", ms(o.ack_latency_ms)],
    ["fill latency", ms(o.fill_latency_ms)],
    ["cancel latency", ms(o.cancel_latency_ms)],
    ["arrival mid", price(o.arrival_mid)],
    ["slippage", `<span class="${o.slippage_bps > 0 ? "neg" : "pos"}">${bps(o.slippage_bps)}</span>`],
    ["reject reason", cell(o.reject_reason)],
    ["aliases", cell((o.aliases || []).join(", "))],
    ["duration", ms(span / 1e6)],
  ];
  const items = o.timeline
    .map((e) => {
      const cls = e.kind === "fill" ? "fill" : BAD.has(e.kind) ? "bad" : CXL.has(e.kind) ? "cxl" : e.kind;
      return `<li class="${cls}" data-kind="${esc(e.kind)}"><span class="kind k-${esc(e.kind)}">${esc(e.kind)}</span> <span class="t">${time(e.ts)} · +${ms((e.ts - t0) / 1e6)}</span>` +
        `${e.anomaly_types ? ` <span class="sev sev-${esc(e.anomaly_severity)}">${esc(e.anomaly_types)}</span>` : ""}<div class="d">${detail(e)}</div></li>`;
    })
    .join("");
  return (
    `<div class="kv">${kv.map(([k, v]) => `<div><div class="k">${k}</div><div class="v">${v}</div></div>`).join("")}</div>` +
    `<div class="section-title">lifecycle</div><div class="lifebar">${dots}</div>` +
    `<ol class="timeline" id="order-timeline">${items}</ol>`
  );
}

function drillDown(ctx) {
  const p = panel("p-order");
  const body = document.getElementById("order-body");
  const title = document.getElementById("order-title");
  let current = null;
  const load = async (id) => {
    current = id;
    title.textContent = id;
    body.innerHTML = `<div class="dim">loading ${esc(id)}…</div>`;
    try {
      const o = await getJSON(`/log_stream/orders/${encodeURIComponent(id)}`);
      if (current !== id) return;
      title.textContent = `${o.order_id} · ${o.timeline.length} events`;
      body.innerHTML = renderOrder(o);
      p.el.dataset.order = o.order_id;
    } catch (e) {
      if (current !== id) return;
      body.innerHTML = `<div class="dim">${e instanceof NotAvailable ? `order ${esc(id)} is not in the store yet` : esc(e.message)}</div>`;
    }
  };
  ctx.on("order", load);
  body.innerHTML = `<div class="dim" style="padding:20px 0">Click an order id in the live tape, the latest orders or the anomalies to see its lifecycle: every event from submission to its final state, with latencies, fills, fees and slippage.</div>`;
}

function latestOrders(ctx) {
  const p = panel("p-orders");
  ctx.feeds.orders.subscribe((s) => {
    const d = p.feed(s, "no orders in the last 5 minutes");
    if (!d) return;
    if (!d.events.length) {
      p.set("empty", "no orders in the last 5 minutes of event time");
      return;
    }
    const rows = d.events
      .map(
        (e) =>
          `<tr class="click" data-order="${esc(e.order_id)}"><td class="mono">${time(e.ts)}</td><td class="mono">${esc(e.order_id)}</td><td>${cell(e.strategy_id)}</td><td>${cell(e.symbol)}</td><td>${cell(e.venue)}</td>` +
          `<td class="side-${esc(e.side)}">${cell(e.side)}</td><td class="n">${qty(e.qty)}</td><td class="n">${price(e.price)}</td><td>${cell(e.order_type)}</td></tr>`,
      )
      .join("");
    p.q(".tbl").innerHTML = `<table><thead><tr><th>time</th><th>order</th><th>strategy</th><th>symbol</th><th>venue</th><th>side</th><th class="n">qty</th><th class="n">price</th><th>type</th></tr></thead><tbody>${rows}</tbody></table>`;
    p.set("ok");
  });
  p.q(".tbl").addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-order]");
    if (!tr) return;
    for (const x of p.el.querySelectorAll("tr.sel")) x.classList.remove("sel");
    tr.classList.add("sel");
    ctx.emit("order", tr.dataset.order);
  });
}

export function mountOrders(ctx) {
  drillDown(ctx);
  latestOrders(ctx);
}
