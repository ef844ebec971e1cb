// Live tape: events from the WebSocket, filtered by kind/symbol/strategy in the browser,
// bounded (BUFFER events kept, ROWS rows in the DOM) and rendered in batches once per
// animation frame, so thousands of events per second keep the page responsive.
import { getJSON, qs } from "./api.js";
import { bps, cell, esc, ms, price, qty, time } from "./format.js";
import { fillSelect, panel } from "./panel.js";

const BUFFER = 5000;
const ROWS = 250;
const DRAW_EVERY_MS = 100;
const MARKET = new Set(["quote", "market_trade"]);
const KINDS = ["order_new", "order_ack", "order_replace", "order_cancel_request", "order_cancelled", "order_rejected", "order_cancel_rejected", "order_expired", "fill", "quote", "market_trade", "position", "system"];

function priceOf(e) {
  if (e.kind === "fill") return price(e.last_px);
  if (e.kind === "quote") return `${price(e.bid)} / ${price(e.ask)}`;
  return price(e.price);
}

function qtyOf(e) {
  if (e.kind === "fill") return qty(e.last_qty);
  if (e.kind === "quote") return `${qty(e.bid_size)} / ${qty(e.ask_size)}`;
  return qty(e.qty);
}

function rowHTML(e) {
  const oid = e.order_id ? `<td class="oid" data-order="${esc(e.order_id)}" title="${esc(e.order_id)}">${esc(e.order_id)}</td>` : "<td></td>";
  const flags = e.anomaly_types
    ? `<span class="sev sev-${esc(e.anomaly_severity || "low")}" title="${esc(e.anomaly_types)}">${esc(String(e.anomaly_types).split(",")[0])}</span>`
    : e.reason
      ? `<span class="dim" title="${esc(e.reason)}">${esc(e.reason)}</span>`
      : e.message
        ? `<span class="dim" title="${esc(e.message)}">${esc(String(e.message).slice(0, 40))}</span>`
        : "";
  const slip = e.slippage_bps;
  return (
    `<td>${time(e.ts)}</td><td><span class="kind k-${esc(e.kind)}">${esc(e.kind)}</span></td>` +
    `<td>${cell(e.symbol)}</td><td>${cell(e.venue)}</td><td>${cell(e.strategy_id)}</td>` +
    `<td class="side-${esc(e.side)}">${cell(e.side)}</td><td class="n">${qtyOf(e)}</td><td class="n">${priceOf(e)}</td>` +
    `${oid}<td class="n">${e.latency_ms == null ? "" : ms(e.latency_ms, false)}</td>` +
    `<td class="n ${slip > 0 ? "neg" : slip < 0 ? "pos" : ""}">${slip == null ? "" : bps(slip, false)}</td><td class="ellip">${flags}</td>`
  );
}

export function mountTape(ctx) {
  const p = panel("p-tape");
  const body = document.getElementById("tape-body");
  const status = document.getElementById("tape-status");
  const fKind = document.getElementById("tape-kind");
  const fSymbol = document.getElementById("tape-symbol");
  const fStrategy = document.getElementById("tape-strategy");
  const bPause = document.getElementById("tape-pause");
  const bQuotes = document.getElementById("tape-quotes");
  const buffer = [];
  let pending = [];
  let paused = false;
  let showMarket = false;
  let missed = 0;
  let received = 0;
  let rateWindow = [];
  let rendered = 0;
  let lastSeq = -1;

  fillSelect(fKind, KINDS, "all kinds");

  const accepts = (e) =>
    (fKind.value ? e.kind === fKind.value : showMarket || !MARKET.has(e.kind)) &&
    (!fSymbol.value || e.symbol === fSymbol.value) &&
    (!fStrategy.value || e.strategy_id === fStrategy.value);

  const makeRow = (e) => {
    const tr = document.createElement("tr");
    tr.innerHTML = rowHTML(e);
    tr.dataset.kind = e.kind;
    return tr;
  };

  function renderAll() {
    const rows = [];
    for (let i = buffer.length - 1; i >= 0 && rows.length < ROWS; i--) {
      if (accepts(buffer[i])) rows.push(makeRow(buffer[i]));
    }
    body.replaceChildren(...rows);
    rendered = rows.length;
    p.set(rows.length ? "ok" : "empty", buffer.length ? "no events match the filters" : "waiting for events…");
  }

  let lastDraw = 0;
  function frame(now) {
    // at most ~10 draws a second: each draw is one batch of rows and one layout of the tape
    if (pending.length && now - lastDraw >= DRAW_EVERY_MS) {
      lastDraw = now;
      const batch = pending;
      pending = [];
      for (const e of batch) {
        ctx.learn("kinds", e.kind);
        ctx.learn("symbols", e.symbol);
        ctx.learn("strategies", e.strategy_id);
        ctx.learn("venues", e.venue);
        if (e.kind === "quote" || e.kind === "market_trade") ctx.learn("quoted", e.symbol);
      }
      buffer.push(...batch);
      if (buffer.length > BUFFER) buffer.splice(0, buffer.length - BUFFER);
      if (paused) {
        missed += batch.length;
      } else {
        const frag = document.createDocumentFragment();
        const fresh = [];
        for (let i = batch.length - 1; i >= 0 && fresh.length < ROWS; i--) {
          if (accepts(batch[i])) fresh.push(makeRow(batch[i]));
        }
        if (fresh.length) {
          frag.append(...fresh);
          body.prepend(frag);
          rendered += fresh.length;
          while (rendered > ROWS) {
            body.lastElementChild.remove();
            rendered -= 1;
          }
          p.set("ok");
        }
      }
    }
    requestAnimationFrame(frame);
  }
  requestAnimationFrame(frame);

  const push = (events) => {
    received += events.length;
    for (const e of events) if (e.seq > lastSeq) lastSeq = e.seq;
    pending.push(...events);
    if (pending.length > BUFFER) pending = pending.slice(-BUFFER);
  };
  ctx.on("events", push);

  // a store-only server has no live push: poll the newest events instead
  ctx.on("nolive", () => {
    const poll = async () => {
      if (!document.hidden) {
        try {
          const data = await getJSON(`/log_stream/recent${qs({ limit: 500 })}`);
          const fresh = data.events.filter((e) => e.seq > lastSeq).reverse();
          if (fresh.length) push(fresh);
        } catch {
          /* shown by the connection status */
        }
      }
      setTimeout(poll, 2000);
    };
    poll();
  });

  setInterval(() => {
    const now = performance.now();
    rateWindow.push([now, received]);
    rateWindow = rateWindow.filter(([t]) => now - t <= 5000);
    const [t0, n0] = rateWindow[0];
    const rate = now > t0 ? ((received - n0) * 1000) / (now - t0) : 0;
    status.textContent = `${Math.round(rate).toLocaleString("en-US")} ev/s · ${buffer.length.toLocaleString("en-US")} buffered${paused ? ` · paused (+${missed.toLocaleString("en-US")})` : ""}`;
  }, 1000);

  for (const el of [fKind, fSymbol, fStrategy]) el.addEventListener("change", renderAll);
  bPause.addEventListener("click", () => {
    paused = !paused;
    bPause.classList.toggle("on", paused);
    bPause.textContent = paused ? "resume" : "pause";
    if (!paused) {
      missed = 0;
      renderAll();
    }
  });
  bQuotes.addEventListener("click", () => {
    showMarket = !showMarket;
    bQuotes.classList.toggle("on", showMarket);
    renderAll();
  });
  body.addEventListener("click", (e) => {
    const td = e.target.closest("td.oid");
    if (td) ctx.emit("order", td.dataset.order);
  });
  ctx.on("known", (known) => {
    fillSelect(fSymbol, known.symbols, "all symbols");
    fillSelect(fStrategy, known.strategies, "all strategies");
  });
  p.set("empty", "waiting for events…");
}
