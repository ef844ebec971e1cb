// Panel chrome: a state overlay (loading / not available / empty / error) on each panel.

export function panel(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`no panel #${id}`);
  const overlay = el.querySelector(".state");
  return {
    el,
    q: (sel) => el.querySelector(sel),
    /** state: "ok" | "loading" | "na" | "empty" | "error" */
    set(state, message = "") {
      el.dataset.state = state;
      if (overlay) {
        const text =
          state === "na" ? `not available — ${message}` : state === "loading" ? message || "loading…" : message;
        if (overlay.textContent !== text) overlay.textContent = text;
      }
    },
    /** applies a Feed state; returns the data when there is some to render */
    feed(s, emptyText = "no data in this window") {
      if (s.na) this.set("na", s.na);
      else if (s.error) this.set("error", s.error);
      else if (s.empty) this.set("empty", s.empty || emptyText);
      else if (s.idle) this.set("empty", emptyText);
      else return s.data;
      return null;
    },
  };
}

/** keeps a <select>'s options equal to `values` (sorted), preserving the selection */
export function fillSelect(el, values, allLabel = null) {
  const wantAll = allLabel === null ? [...values].sort() : ["", ...[...values].sort()];
  const have = [...el.options].map((o) => o.value);
  const current = el.value;
  if (wantAll.join("\u0000") === have.join("\u0000")) return false;
  el.replaceChildren(
    ...wantAll.map((v) => {
      const o = document.createElement("option");
      o.value = v;
      o.textContent = v === "" ? allLabel : v;
      return o;
    }),
  );
  if (wantAll.includes(current)) el.value = current;
  return true;
}
