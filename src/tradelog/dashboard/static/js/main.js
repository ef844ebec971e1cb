// Dashboard entry point: global filters, the shared Feeds (one poller per endpoint, shared by
// every panel that shows it), the live WebSocket, and the panels.
import { Feed, loadRoutes, qs, wsURL } from "./api.js";
import { mountTape } from "./tape.js";
import { mountKpis } from "./kpis.js";
import { mountExecution } from "./execution.js";
import { mountPnl } from "./pnl.js";
import { mountAlerts } from "./alerts.js";
import { mountMarket } from "./market.js";
import { mountPairs } from "./pairs.js";
import { mountOrders } from "./orders.js";
import { mountHealth } from "./health.js";
import { fillSelect } from "./panel.js";

const $ = (id) => document.getElementById(id);

function makeContext() {
  const bus = new EventTarget();
  const known = { symbols: new Set(), venues: new Set(), strategies: new Set(), kinds: new Set(), quoted: new Set() };
  const filters = { minutes: "15", symbol: "", venue: "", strategy: "" };
  const ctx = {
    bus,
    known,
    filters,
    feeds: {},
    /** window + global filters as query parameters */
    window(extra = {}) {
      return qs({ minutes: filters.minutes, symbol: filters.symbol, venue: filters.venue, strategy: filters.strategy, ...extra });
    },
    learn(set, value) {
      if (value === null || value === undefined || value === "" || known[set].has(value)) return;
      known[set].add(value);
      ctx.dirtyKnown = true;
    },
    dirtyKnown: false,
    emit(name, detail) {
      bus.dispatchEvent(new CustomEvent(name, { detail }));
    },
    on(name, fn) {
      bus.addEventListener(name, (e) => fn(e.detail));
    },
  };
  // announce new symbols/venues/strategies at most twice a second
  setInterval(() => {
    if (ctx.dirtyKnown) {
      ctx.dirtyKnown = false;
      ctx.emit("known", known);
    }
  }, 500);
  return ctx;
}

/** about 150 points on the equity curve whatever the window (the server's cost grows with them) */
function equityStep(minutes) {
  return minutes ? Math.max(1, Math.round((Number(minutes) * 60) / 150)) : 60;
}

function defineFeeds(ctx) {
  const f = ctx.feeds;
  const add = (name, route, url, interval) => {
    f[name] = new Feed(route, url, interval);
  };
  add("stats", "/log_stream/statistics", () => "/log_stream/statistics", 1000);
  add("latency", "/log_stream/latency_analysis", () => `/log_stream/latency_analysis${ctx.window()}`, 1500);
  add("slippage", "/log_stream/slippage_analysis", () => `/log_stream/slippage_analysis${ctx.window()}`, 1500);
  add("fills", "/log_stream/fill_rates", () => `/log_stream/fill_rates${ctx.window()}`, 1500);
  add("pnl", "/log_stream/pnl", () => `/log_stream/pnl${ctx.window()}`, 1500);
  add("positions", "/log_stream/positions", () => `/log_stream/positions${qs({ symbol: ctx.filters.symbol, strategy: ctx.filters.strategy })}`, 2000);
  add("equity", "/log_stream/equity_curve", () => `/log_stream/equity_curve${ctx.window({ interval_s: equityStep(ctx.filters.minutes) })}`, 2000);
  add("anomalies", "/log_stream/anomalies", () => `/log_stream/anomalies${ctx.window({ limit: 200 })}`, 2000);
  add("quality", "/log_stream/quality_metrics", () => `/log_stream/quality_metrics${ctx.window()}`, 2000);
  add("orders", "/log_stream/recent", () => `/log_stream/recent${qs({ kind: "order_new", limit: 60, symbol: ctx.filters.symbol, venue: ctx.filters.venue, strategy: ctx.filters.strategy })}`, 1500);
  add("alertSummary", "/log_stream/alerts/summary", () => "/log_stream/alerts/summary", 1500);
}

function bindFilters(ctx) {
  const sel = { symbol: $("f-symbol"), venue: $("f-venue"), strategy: $("f-strategy") };
  $("f-window").addEventListener("change", (e) => {
    ctx.filters.minutes = e.target.value;
    refreshAll(ctx);
  });
  for (const [key, el] of Object.entries(sel)) {
    el.addEventListener("change", () => {
      ctx.filters[key] = el.value;
      refreshAll(ctx);
    });
  }
  const sets = { symbol: "symbols", venue: "venues", strategy: "strategies" };
  ctx.on("known", (known) => {
    for (const [key, el] of Object.entries(sel)) fillSelect(el, known[sets[key]], "all");
  });
}

function refreshAll(ctx) {
  for (const feed of Object.values(ctx.feeds)) feed.kick();
  ctx.emit("filters", ctx.filters);
}

function connectLive(ctx) {
  const conn = $("conn");
  const dot = conn.querySelector(".dot");
  const txt = conn.querySelector(".txt");
  let delay = 500;
  const status = (cls, text) => {
    dot.className = `dot ${cls}`;
    txt.textContent = text;
  };
  const open = () => {
    const ws = new WebSocket(wsURL("/log_stream/live"));
    let gotError = false;
    ws.onopen = () => {
      delay = 500;
      status("live", "live");
    };
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      switch (msg.type) {
        case "events":
          ctx.emit("events", msg.events);
          break;
        case "anomalies":
          ctx.emit("marks", msg.marks);
          break;
        case "metrics":
          ctx.emit("metrics", msg);
          break;
        case "error":
          gotError = true;
          status("warn", "no live pipeline (store only)");
          ctx.emit("nolive", msg.error);
          break;
        default:
          break;
      }
    };
    ws.onclose = () => {
      if (gotError) return; // a store-only server: the tape polls instead
      status("down", "disconnected — retrying");
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 10_000);
    };
  };
  open();
}

async function main() {
  const ctx = makeContext();
  window.tradelog = ctx; // for the browser console and the tests
  await loadRoutes();
  defineFeeds(ctx);
  bindFilters(ctx);
  mountKpis(ctx);
  mountTape(ctx);
  mountOrders(ctx);
  mountExecution(ctx);
  mountPnl(ctx);
  mountAlerts(ctx);
  mountMarket(ctx);
  mountPairs(ctx);
  mountHealth(ctx);
  // names for the filter menus also come from the analyses (a store-only server has no tape)
  ctx.feeds.latency.subscribe((s) => {
    const ack = s.data?.ack;
    if (!ack) return;
    for (const r of ack.by_symbol) ctx.learn("symbols", r.symbol);
    for (const r of ack.by_venue) ctx.learn("venues", r.venue);
    for (const r of ack.by_strategy) ctx.learn("strategies", r.strategy);
  });
  for (const feed of Object.values(ctx.feeds)) feed.start();
  connectLive(ctx);
  document.body.dataset.ready = "1";
}

main();
