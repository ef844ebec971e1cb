// Stream health: per source what was read and what became of it (the accounting identity),
// ingest lag and out-of-order counts in the window, rejects by reason, live pipeline state.
import { compact, dateTime, esc, int, ms } from "./format.js";
import { panel } from "./panel.js";

export function mountHealth(ctx) {
  const p = panel("p-health");
  const sub = document.getElementById("health-sub");
  const latest = document.getElementById("latest");
  let stats = null;
  let quality = null;

  const render = () => {
    if (!stats) return;
    const q = quality?.sources || {};
    const srcRows = Object.entries(stats.sources)
      .map(([name, s]) => {
        const w = q[name]?.window;
        const lag = w?.ingest_lag;
        return (
          `<tr><td>${esc(name)}</td><td class="n">${int(s.lines_read)}</td><td class="n">${int(s.events)}</td><td class="n"><span class="${s.rejects ? "neg" : ""}">${int(s.rejects)}</span> · ${int(s.duplicates)} · ${int(s.ignored)}</td><td>${s.reconciled ? '<span class="pill ok">✓</span>' : '<span class="pill bad">✗</span>'}</td>` +
          `<td class="n">${ms(lag?.p50_ms)}</td><td class="n">${ms(lag?.p99_ms)}</td><td class="n">${w ? int(w.out_of_order) : "—"}</td></tr>`
        );
      })
      .join("");
    const reasons = Object.entries(stats.rejects_by_reason || {})
      .sort((a, b) => b[1] - a[1])
      .map(([r, n]) => `<span class="pill bad">${esc(r)} ${int(n)}</span>`)
      .join(" ");
    const live = stats.live;
    const pipe = live?.pipeline;
    const conns = (live?.connections || [])
      .map((c) => `<span class="pill ${c.connected === false || c.state === "disconnected" ? "bad" : "ok"}">${esc(c.source || c.name || c.type)} ${esc(c.state ?? (c.connected ? "connected" : ""))}</span>`)
      .join(" ");
    const files = (live?.files || [])
      .map((f) => `<tr><td>${esc(f.source)}</td><td class="ellip" style="max-width:260px" title="${esc(f.path)}">${esc(f.path)}</td><td class="n">${compact(f.offset)} B</td><td class="n">${int(f.pending_bytes)}</td></tr>`)
      .join("");
    p.q(".content").innerHTML =
      (pipe
        ? `<div class="kv"><div><div class="k">inbox depth</div><div class="v">${int(pipe.inbox_depth)}</div></div><div><div class="k">batches</div><div class="v">${compact(pipe.batches)}</div></div>` +
          `<div><div class="k">refused (backpressure)</div><div class="v">${int(pipe.refused)}</div></div><div><div class="k">uptime</div><div class="v">${ms(pipe.uptime_s * 1000)}</div></div></div>`
        : `<div class="hint-line">store only — no live pipeline behind this server</div>`) +
      `<table><thead><tr><th>source</th><th class="n">lines</th><th class="n">events</th><th class="n" title="rejects · duplicates · ignored">rej · dup · ign</th><th>balanced</th><th class="n" title="ingest lag: read time − event time">lag p50</th><th class="n">lag p99</th><th class="n" title="out-of-order events">ooo</th></tr></thead><tbody>${srcRows || '<tr><td colspan="10" class="dim">no sources yet</td></tr>'}</tbody></table>` +
      `<div class="section-title">rejects by reason</div><div>${reasons || '<span class="dim">none</span>'}</div>` +
      (conns ? `<div class="section-title">connections</div><div>${conns}</div>` : "") +
      (files ? `<div class="section-title">files followed</div><table><thead><tr><th>source</th><th>path</th><th class="n">offset</th><th class="n">pending B</th></tr></thead><tbody>${files}</tbody></table>` : "");
    const t = stats.totals;
    sub.textContent = `${compact(t.lines_read)} lines · ${compact(stats.events_total)} events · ${t.reconciled ? "all lines accounted for" : "accounting mismatch!"}`;
    p.set("ok");
  };

  ctx.feeds.stats.subscribe((s) => {
    const d = p.feed(s);
    if (!d) return;
    stats = d;
    latest.textContent = d.last_event_ns ? `latest event ${dateTime(d.last_event_ns)} UTC` : "no events yet";
    render();
  });
  ctx.feeds.quality.subscribe((s) => {
    quality = s.data || null;
    render();
  });

}
