// The dashboard's one door to the server: JSON over /api/v1 with the session cookie.
// Writes send the CSRF token (the omc_csrf cookie, set by POST /auth/session) as X-CSRF-Token.
// Which routes this server has is read once from its OpenAPI schema, so a page whose route
// is missing says so instead of failing.

export const BASE = "/api/v1";
let paths = null;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function loadSchema() {
  const res = await fetch(`${BASE}/openapi.json`, { credentials: "same-origin" });
  paths = res.ok ? (await res.json()).paths || {} : {};
}

/** Does the server offer `method path` (path as in the schema, e.g. "/accounts/{name}")? */
export function has(path, method = "get") {
  return !!(paths && paths[BASE + path] && paths[BASE + path][method]);
}

function csrf() {
  const hit = document.cookie.split("; ").find((c) => c.startsWith("omc_csrf="));
  return hit ? decodeURIComponent(hit.slice(9)) : "";
}

export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

export async function api(path, { method = "GET", body, query } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrf();
  const res = await fetch(BASE + path + qs(query), {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  const type = res.headers.get("content-type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) {
    const err = (data && data.error) || {};
    if (res.status === 401 && path !== "/auth/session") {
      window.dispatchEvent(new CustomEvent("omc:unauthenticated"));
    }
    throw new ApiError(res.status, err.code || "error", err.message || `HTTP ${res.status}`);
  }
  return data;
}

/** Every item of a paginated list (following next_cursor, at most `pages` pages). */
export async function all(path, query = {}, pages = 20) {
  const items = [];
  let cursor = null;
  for (let i = 0; i < pages; i++) {
    const page = await api(path, { query: { ...query, cursor } });
    items.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return items;
}

/** Live updates: Server-Sent Events from /stream when the server has it, else null. */
export function stream(handlers) {
  if (!has("/stream") || typeof EventSource === "undefined") return null;
  const source = new EventSource(`${BASE}/stream`, { withCredentials: true });
  const dot = document.getElementById("live");
  source.addEventListener("open", () => dot.classList.add("on"));
  source.addEventListener("error", () => dot.classList.remove("on"));
  const close = source.close.bind(source);
  source.close = () => { close(); dot.classList.remove("on"); };
  for (const [name, fn] of Object.entries(handlers)) {
    source.addEventListener(name, (e) => {
      try {
        fn(JSON.parse(e.data));
      } catch (_) {
        /* a malformed event is skipped */
      }
    });
  }
  return source;
}
