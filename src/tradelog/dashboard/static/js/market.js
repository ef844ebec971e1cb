// Market data for a chosen symbol: OHLCV candles with volume (1 s / 1 m / 5 m) and the
// order book (a depth ladder when the payload has levels, else top of book by venue).
import { Feed, qs } from "./api.js";
import { axes, barsPath, candlePlugin, chart } from "./charts.js";
import { bps, cell, compact, esc, isNum, price, qty, time } from "./format.js";
import { fillSelect, panel } from "./panel.js";

function symbolChoices(ctx) {
  return ctx.known.quoted.size ? ctx.known.quoted : ctx.known.symbols;
}

function ohlcv(ctx, symSel) {
  const p = panel("p-ohlcv");
  const tfSel = document.getElementById("mkt-tf");
  const feed = new Feed(
    "/log_stream/bars",
    () => (symSel.value ? `/log_stream/bars${qs({ symbol: symSel.value, timeframe: tfSel.value, limit: 300, venue: ctx.filters.venue })}` : null),
    1000,
  );
  ctx.feeds.bars = feed;
  const c = chart(p.q(".chart"), {
    scales: { vol: { range: (u, min, max) => [0, Math.max(1, max) * 4] } },
    axes: [axes()[0], { ...axes((v) => price(v))[1], size: 70 }, { scale: "vol", show: false }],
    series: [
      {},
      { label: "open", value: (u, v) => price(v), stroke: "transparent", paths: () => null, points: { show: false } },
      { label: "high", value: (u, v) => price(v), stroke: "transparent", paths: () => null, points: { show: false } },
      { label: "low", value: (u, v) => price(v), stroke: "transparent", paths: () => null, points: { show: false } },
      { label: "close", value: (u, v) => price(v), stroke: "#d7dde7", paths: () => null, points: { show: false } },
      { label: "volume", scale: "vol", value: (u, v) => compact(v), stroke: "#4c9aff", fill: "rgba(76,154,255,.25)", paths: barsPath(), points: { show: false } },
      { label: "vwap", value: (u, v) => price(v), stroke: "#f2b134", width: 1, dash: [3, 3], points: { show: false } },
    ],
    plugins: [candlePlugin()],
  });
  feed.subscribe((s) => {
    if (s.idle) {
      p.set("empty", "no symbol with market data yet");
      return;
    }
    const d = p.feed(s);
    if (!d) return;
    const bars = d.bars || [];
    if (!bars.length) {
      p.set("empty", `no public trades for ${d.symbol} (bars come from market_trade events)`);
      return;
    }
    p.set("ok");
    const col = (k) => bars.map((b) => b[k]);
    c.update([bars.map((b) => b.ts_ns / 1e9), col("open"), col("high"), col("low"), col("close"), col("volume"), col("vwap")]);
  });
  tfSel.addEventListener("change", () => feed.kick());
  symSel.addEventListener("change", () => feed.kick());
  feed.start();
}

function ladder(d) {
  const asks = (d.asks || []).slice(0, 12);
  const bids = (d.bids || []).slice(0, 12);
  const lvl = (l) => (Array.isArray(l) ? { price: l[0], size: l[1] } : { price: l.price ?? l.px, size: l.size ?? l.qty });
  const A = asks.map(lvl);
  const B = bids.map(lvl);
  const max = Math.max(1, ...A.map((l) => l.size || 0), ...B.map((l) => l.size || 0));
  const row = (l, side) =>
    `<tr class="${side}"><td class="n px">${price(l.price)}</td><td class="n">${qty(l.size)}<span class="depth" style="width:${(100 * (l.size || 0)) / max}%"></span></td></tr>`;
  return (
    `<table class="book"><thead><tr><th class="n">price</th><th class="n">size</th></tr></thead><tbody>` +
    A.slice().reverse().map((l) => row(l, "ask")).join("") +
    `<tr class="mid"><td colspan="2">mid ${price(d.mid)} · spread ${bps(d.spread_bps, false).replace("+", "")} bps</td></tr>` +
    B.map((l) => row(l, "bid")).join("") +
    `</tbody></table>`
  );
}

function topOfBook(d) {
  const venues = d.by_venue || [];
  const bestBid = Math.max(...venues.map((v) => v.bid ?? -Infinity));
  const bestAsk = Math.min(...venues.map((v) => v.ask ?? Infinity));
  const rows = venues
    .map(
      (v) =>
        `<tr><td>${cell(v.quote_venue)}</td><td class="n">${qty(v.bid_size)}</td><td class="n ${v.bid === bestBid ? "pos" : ""}">${price(v.bid)}</td>` +
        `<td class="n ${v.ask === bestAsk ? "neg" : ""}">${price(v.ask)}</td><td class="n">${qty(v.ask_size)}</td><td class="n">${isNum(v.spread_bps) ? v.spread_bps.toFixed(2) : "—"}</td><td class="mono dim">${time(v.ts_ns)}</td></tr>`,
    )
    .join("");
  return (
    `<div style="padding:8px 10px"><div class="tob"><div class="side bid"><div class="k dim">bid · ${qty(d.bid_size)}</div><div class="px">${price(d.bid)}</div></div>` +
    `<div class="side ask"><div class="k dim">ask · ${qty(d.ask_size)}</div><div class="px">${price(d.ask)}</div></div></div>` +
    `<div class="hint-line" style="margin-top:6px">mid ${price(d.mid)} · spread ${price(d.spread)} (${isNum(d.spread_bps) ? d.spread_bps.toFixed(2) : "—"} bps) · ${esc(d.quote_venue || "")} ${time(d.ts_ns)}</div></div>` +
    (rows
      ? `<table><thead><tr><th>venue</th><th class="n">bid size</th><th class="n">bid</th><th class="n">ask</th><th class="n">ask size</th><th class="n">bps</th><th>time</th></tr></thead><tbody>${rows}</tbody></table>`
      : "")
  );
}

function book(ctx, symSel) {
  const p = panel("p-book");
  const sub = document.getElementById("book-sub");
  const feed = new Feed("/log_stream/book", () => (symSel.value ? `/log_stream/book${qs({ symbol: symSel.value })}` : null), 1000);
  ctx.feeds.book = feed;
  feed.subscribe((s) => {
    if (s.idle) {
      p.set("empty", "no symbol with quotes yet");
      return;
    }
    const d = p.feed(s);
    if (!d) return;
    if (d.bid == null && d.ask == null && !(d.bids || d.asks)) {
      p.set("empty", d.reason || "no quote");
      return;
    }
    const depth = Array.isArray(d.bids) && Array.isArray(d.asks) && (d.bids.length > 1 || d.asks.length > 1);
    sub.textContent = `${d.symbol} · ${depth ? "depth" : "top of book"}`;
    p.q(".content").innerHTML = depth ? ladder(d) : topOfBook(d);
    p.set("ok");
  });
  symSel.addEventListener("change", () => feed.kick());
  feed.start();
}

export function mountMarket(ctx) {
  const symSel = document.getElementById("mkt-symbol");
  ohlcv(ctx, symSel);
  book(ctx, symSel);
  const sync = () => {
    const before = symSel.value;
    fillSelect(symSel, symbolChoices(ctx));
    if (!before && symSel.value) {
      ctx.feeds.bars.kick();
      ctx.feeds.book.kick();
    }
  };
  ctx.on("known", sync);
  ctx.on("filters", (f) => {
    if (f.symbol && [...symSel.options].some((o) => o.value === f.symbol)) {
      symSel.value = f.symbol;
      ctx.feeds.bars.kick();
      ctx.feeds.book.kick();
    }
  });
}
