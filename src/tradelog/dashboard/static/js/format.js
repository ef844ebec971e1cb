// Number and time formatting with units. Null (not computable) is shown as an em dash.

export const DASH = "—";
const nf = new Map();

function numberFormat(min, max) {
  const key = `${min}:${max}`;
  if (!nf.has(key)) {
    nf.set(key, new Intl.NumberFormat("en-US", { minimumFractionDigits: min, maximumFractionDigits: max }));
  }
  return nf.get(key);
}

export const isNum = (v) => typeof v === "number" && Number.isFinite(v);

export function num(v, digits = 2) {
  return isNum(v) ? numberFormat(digits, digits).format(v) : DASH;
}

export function int(v) {
  return isNum(v) ? numberFormat(0, 0).format(v) : DASH;
}

export function qty(v) {
  if (!isNum(v)) return DASH;
  return Number.isInteger(v) ? numberFormat(0, 0).format(v) : numberFormat(0, 4).format(v);
}

export function price(v) {
  if (!isNum(v)) return DASH;
  const a = Math.abs(v);
  return numberFormat(a >= 1000 ? 2 : a >= 1 ? 2 : 6, a >= 1000 ? 2 : a >= 1 ? 4 : 8).format(v);
}

/** milliseconds, adaptive precision (µs below 1 ms, seconds above 10 s) */
export function ms(v, unit = true) {
  if (!isNum(v)) return DASH;
  const a = Math.abs(v);
  let s;
  if (a >= 10_000) return `${num(v / 1000, 1)}${unit ? " s" : ""}`;
  if (a >= 100) s = num(v, 0);
  else if (a >= 10) s = num(v, 1);
  else if (a >= 1) s = num(v, 2);
  else s = num(v, 3);
  return unit ? `${s} ms` : s;
}

export function bps(v, unit = true) {
  if (!isNum(v)) return DASH;
  const s = `${v > 0 ? "+" : ""}${num(v, 2)}`;
  return unit ? `${s} bps` : s;
}

export function pct(v, digits = 1) {
  return isNum(v) ? `${num(v * 100, digits)}%` : DASH;
}

export function money(v, digits = 2) {
  if (!isNum(v)) return DASH;
  return `${v > 0 ? "+" : ""}${num(v, digits)}`;
}

export function compact(v) {
  if (!isNum(v)) return DASH;
  const a = Math.abs(v);
  if (a >= 1e9) return `${num(v / 1e9, 2)}B`;
  if (a >= 1e6) return `${num(v / 1e6, 2)}M`;
  if (a >= 1e4) return `${num(v / 1e3, 1)}k`;
  return num(v, a >= 100 || Number.isInteger(v) ? 0 : 2);
}

export function signClass(v) {
  return isNum(v) ? (v > 0 ? "pos" : v < 0 ? "neg" : "") : "dim";
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** UTC HH:MM:SS.mmm of a nanosecond timestamp */
export function time(ns) {
  if (!isNum(ns)) return DASH;
  const d = new Date(ns / 1e6);
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
}

export function dateTime(ns) {
  if (!isNum(ns)) return DASH;
  const d = new Date(ns / 1e6);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${time(ns)}`;
}

export function esc(v) {
  if (v === null || v === undefined) return "";
  return String(v).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** a cell value, or a dim dash */
export function cell(v) {
  return v === null || v === undefined || v === "" ? `<span class="dim">${DASH}</span>` : esc(v);
}
