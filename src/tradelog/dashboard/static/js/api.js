// REST access for the dashboard: bearer token (from `#token=…`, kept for the tab), the set of
// routes the server really has (from /openapi.json, so a panel whose endpoint is missing says
// "not available" without a 404 request), and Feeds: pollers that never overlap, pause while
// the tab is hidden, and refresh at once when the filters change.

const TOKEN_KEY = "tradelog.token";

export function token() {
  const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (m) sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  return sessionStorage.getItem(TOKEN_KEY);
}

function headers(extra = {}) {
  const t = token();
  return t ? { ...extra, authorization: `Bearer ${t}` } : extra;
}

export class NotAvailable extends Error {}

async function errorText(r) {
  try {
    const body = await r.json();
    return body.error || JSON.stringify(body);
  } catch {
    return r.statusText;
  }
}

export async function getJSON(url, signal) {
  const r = await fetch(url, { headers: headers(), signal });
  if (r.status === 404) throw new NotAvailable(await errorText(r));
  if (!r.ok) throw new Error(`${r.status}: ${await errorText(r)}`);
  return r.json();
}

export async function postJSON(url, body) {
  const r = await fetch(url, {
    method: "POST",
    headers: headers({ "content-type": "application/json" }),
    body: JSON.stringify(body ?? {}),
  });
  if (!r.ok) throw new Error(`${r.status}: ${await errorText(r)}`);
  return r.json();
}

let routeSet = null; // Set of "METHOD path" from the OpenAPI document

export async function loadRoutes() {
  try {
    const spec = await getJSON("/openapi.json");
    routeSet = new Set();
    for (const [path, ops] of Object.entries(spec.paths || {})) {
      for (const method of Object.keys(ops)) routeSet.add(`${method.toUpperCase()} ${path}`);
    }
  } catch {
    routeSet = null; // unknown: try every endpoint and treat 404 as "not available"
  }
}

export function hasRoute(path, method = "GET") {
  return routeSet === null || routeSet.has(`${method} ${path}`);
}

export function wsURL(path) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const t = token();
  const q = t ? `${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(t)}` : "";
  return `${proto}//${location.host}${path}${q}`;
}

export function qs(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === "") continue;
    for (const item of Array.isArray(v) ? v : [v]) {
      parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(item)}`);
    }
  }
  return parts.length ? `?${parts.join("&")}` : "";
}

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

function whenVisible() {
  if (!document.hidden) return Promise.resolve();
  return new Promise((res) => {
    const on = () => {
      if (!document.hidden) {
        document.removeEventListener("visibilitychange", on);
        res();
      }
    };
    document.addEventListener("visibilitychange", on);
  });
}

/** A poller for one endpoint. `url()` returns the URL to fetch now (or null to idle);
 *  subscribers get {data} | {na: message} | {error: message} | {idle: true}. */
export class Feed {
  constructor(route, url, interval = 2000) {
    this.route = route;
    this.url = url;
    this.interval = interval;
    this.subs = [];
    this.wake = null;
    this.dirty = false;
    this.last = null;
    this.fetches = 0;
    this.took = 0;
  }

  subscribe(fn) {
    this.subs.push(fn);
    if (this.last) fn(this.last);
    return this;
  }

  emit(state) {
    this.last = state;
    for (const fn of this.subs) {
      try {
        fn(state);
      } catch (e) {
        console.warn(`panel update for ${this.route} failed`, e);
      }
    }
  }

  kick() {
    this.dirty = true;
    if (this.wake) this.wake();
  }

  async pause(ms) {
    if (this.dirty) {
      this.dirty = false;
      return;
    }
    await new Promise((res) => {
      const timer = setTimeout(res, ms);
      this.wake = () => {
        clearTimeout(timer);
        res();
      };
    });
    this.wake = null;
    this.dirty = false;
  }

  start() {
    this.run();
    return this;
  }

  async run() {
    for (;;) {
      await whenVisible();
      if (!hasRoute(this.route)) {
        this.emit({ na: `${this.route} is not available on this server` });
        return; // routes do not appear at run time
      }
      const url = this.url();
      if (url === null) {
        this.emit({ idle: true });
        await this.pause(this.interval);
        continue;
      }
      const began = performance.now();
      try {
        const data = await getJSON(url);
        this.took = performance.now() - began;
        this.fetches += 1;
        if (url === this.url()) this.emit({ data });
        else continue; // the filters changed while we waited: fetch again now
      } catch (e) {
        if (e instanceof NotAvailable && e.message === "Not Found") {
          this.emit({ na: `${this.route} is not available on this server` });
          return;
        }
        this.emit(e instanceof NotAvailable ? { empty: e.message } : { error: e.message });
        if (!(e instanceof NotAvailable)) await sleep(500);
      }
      // a slow endpoint is asked less often, so the dashboard never piles work on the server
      await this.pause(Math.max(this.interval, 2 * (this.took || 0)));
    }
  }
}
