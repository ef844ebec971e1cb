// Anomaly marks (per event) and surveillance alerts with acknowledge / resolve / dismiss and
// their append-only history.
import { Feed, getJSON, hasRoute, postJSON, qs } from "./api.js";
import { cell, dateTime, esc, num, time } from "./format.js";
import { panel } from "./panel.js";

const ACTIONS = { active: ["acknowledge", "resolve", "dismiss"], acknowledged: ["resolve", "dismiss"] };

function anomalies(ctx) {
  const p = panel("p-anomalies");
  ctx.on("marks", () => ctx.feeds.anomalies.kick());
  ctx.feeds.anomalies.subscribe((s) => {
    const d = p.feed(s);
    if (!d) return;
    const counts = (d.counts || []).map((c) => `${c.type} ${c.n}`).join(" · ");
    document.getElementById("anom-sub").textContent = `${d.total} in window${counts ? ` — ${counts}` : ""}`;
    if (!d.marks.length) {
      p.set("empty", "no anomalies in this window");
      return;
    }
    const rows = d.marks
      .slice(0, 100)
      .map(
        (m) =>
          `<tr class="${m.order_id ? "click" : ""}" data-order="${esc(m.order_id || "")}"><td class="mono">${time(m.ts)}</td><td><span class="sev sev-${esc(m.severity)}">${esc(m.severity)}</span></td>` +
          `<td>${esc(m.type)}</td><td>${cell(m.symbol)}</td><td class="n">${num(m.value)}</td><td class="n dim">${num(m.threshold)}</td></tr>`,
      )
      .join("");
    p.q(".tbl").innerHTML = `<table><thead><tr><th>time</th><th>severity</th><th>type</th><th>symbol</th><th class="n">value</th><th class="n">threshold</th></tr></thead><tbody>${rows}</tbody></table>`;
    p.set("ok");
  });
  p.q(".tbl").addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-order]");
    if (tr && tr.dataset.order) ctx.emit("order", tr.dataset.order);
  });
}

function alertList(data) {
  if (Array.isArray(data)) return data;
  return data.alerts || data.items || [];
}

function alertId(a) {
  return a.alert_id ?? a.id;
}

function alerts(ctx) {
  const p = panel("p-alerts");
  const statusSel = document.getElementById("alerts-status");
  const open = new Set(); // alert ids whose history is expanded
  const histories = new Map();
  const feed = new Feed("/log_stream/alerts", () => `/log_stream/alerts${qs({ status: statusSel.value, limit: 200, symbol: ctx.filters.symbol })}`, 1500);
  ctx.feeds.alerts = feed;
  statusSel.addEventListener("change", () => feed.kick());

  const historyRows = (a) => {
    const h = histories.get(alertId(a)) || a.history || [];
    if (!h.length) return `<tr class="history"><td colspan="9">no handling history yet</td></tr>`;
    return h
      .map(
        (x) =>
          `<tr class="history"><td colspan="9"><span class="mono">${dateTime(x.ts)}</span> · <b>${esc(x.actor ?? "")}</b> ${esc(x.action)}: ` +
          `${esc(x.from_status ?? "∅")} → <span class="st st-${esc(x.to_status)}">${esc(x.to_status)}</span>${x.note ? ` — ${esc(x.note)}` : ""}</td></tr>`,
      )
      .join("");
  };

  let last = [];
  const render = () => {
    const list = last;
    if (!list.length) {
      p.set("empty", statusSel.value ? `no ${statusSel.value} alerts` : "no alerts");
      return;
    }
    const rows = list
      .map((a) => {
        const id = alertId(a);
        const acts = (ACTIONS[a.status] || [])
          .map((act) => `<button data-act="${act}" data-id="${esc(id)}">${act}</button>`)
          .join("");
        const accounts = Array.isArray(a.accounts) ? a.accounts.join(", ") : a.accounts;
        const main =
          `<tr class="alert-row click" data-id="${esc(id)}" data-status="${esc(a.status)}"><td>${open.has(id) ? "▾" : "▸"}</td>` +
          `<td><span class="sev sev-${esc(a.level)}">${esc(a.level)}</span></td><td>${esc(a.type)}</td><td>${cell(a.symbol)}</td>` +
          `<td class="ellip" title="${esc(accounts)}">${cell(accounts)}</td><td class="n">${num(a.risk_score)}</td>` +
          `<td class="mono">${time(a.last_seen_ts ?? a.window_end)}</td><td><span class="st st-${esc(a.status)}">${esc(a.status)}</span></td>` +
          `<td><div class="alert-actions">${acts}</div></td></tr>`;
        return open.has(id) ? main + historyRows(a) : main;
      })
      .join("");
    p.q(".tbl").innerHTML =
      `<table><thead><tr><th></th><th>level</th><th>type</th><th>symbol</th><th>accounts</th><th class="n">risk</th><th>last seen</th><th>status</th><th>actions</th></tr></thead><tbody>${rows}</tbody></table>`;
    p.set("ok");
  };

  feed.subscribe((s) => {
    const d = p.feed(s, "no alerts");
    if (!d) return;
    last = alertList(d);
    const total = d.total ?? d.count ?? last.length;
    document.getElementById("alerts-sub").textContent = `${total} shown`;
    render();
  });

  const loadHistory = async (id) => {
    if (!hasRoute("/log_stream/alerts/{alert_id}")) return;
    try {
      const d = await getJSON(`/log_stream/alerts/${encodeURIComponent(id)}`);
      histories.set(id, d.history || d.alert?.history || []);
      render();
    } catch {
      /* the list's own history (if any) stays */
    }
  };

  p.q(".tbl").addEventListener("click", async (e) => {
    const btn = e.target.closest("button[data-act]");
    if (btn) {
      e.stopPropagation();
      btn.disabled = true;
      const id = btn.dataset.id;
      try {
        await postJSON(`/log_stream/alerts/${encodeURIComponent(id)}/${btn.dataset.act}`, { actor: "dashboard", note: `${btn.dataset.act}d from the dashboard` });
        open.add(id);
        await loadHistory(id);
      } catch (err) {
        p.set("error", `${btn.dataset.act} failed: ${err.message}`);
        setTimeout(render, 2500);
      }
      feed.kick();
      ctx.feeds.alertSummary.kick();
      return;
    }
    const tr = e.target.closest("tr.alert-row");
    if (!tr) return;
    const id = tr.dataset.id;
    if (open.has(id)) open.delete(id);
    else {
      open.add(id);
      loadHistory(id);
    }
    render();
  });
  feed.start();
}

export function mountAlerts(ctx) {
  anomalies(ctx);
  alerts(ctx);
}
