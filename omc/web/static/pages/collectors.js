// Collectors (admins): health of every collector, its last runs and errors, run one now,
// pause and resume, and the quarantine of payloads that did not parse.
import { api } from "../api.js";
import { ago, badge, esc, errorBox, num, pct, table, toast, when } from "../ui.js";
import { needs } from "./pending.js";

export async function render(root, { me }) {
  if (!needs(root, "Collectors", [["/collectors", "Collectors"]])) return;
  if (!me.is_admin) {
    root.innerHTML = '<h1>Collectors</h1><p class="muted">Only an admin manages the collectors.</p>';
    return;
  }
  root.innerHTML = `<h1>Collectors</h1><div class="grid">
  <section class="card wide" id="health"><h2>Health</h2><div class="body">loading…</div></section>
  <section class="card wide" id="runs"><h2>Last runs <span class="which muted"></span></h2><div class="body"><p class="muted">pick a collector above</p></div></section>
  <section class="card wide" id="quarantine"><h2>Quarantine</h2><div class="body">loading…</div></section></div>`;
  root.querySelector("#health").addEventListener("click", (e) => act(root, e));
  await Promise.all([health(root), quarantine(root)]);
  const timer = setInterval(() => health(root), 10000);
  return () => clearInterval(timer);
}

async function health(root) {
  const box = root.querySelector("#health .body");
  try {
    const data = await api("/collectors");
    const button = (r, what) => `<button type="button" class="secondary" data-act="${what}" data-name="${esc(r.collector)}">${what}</button>`;
    box.innerHTML = table(
      [
        { key: "collector", label: "collector", html: (r) => `<a href="#/collectors" data-runs="${esc(r.collector)}">${esc(r.collector)}</a>` },
        { key: "state", label: "health", html: (r) => badge(r.state) + (r.paused ? " " + badge("paused") : "") },
        { key: "last_success", label: "last success", html: (r) => `<span title="${esc(when(r.last_success))}">${ago(r.last_success)}</span>` },
        { key: "interval_s", label: "every", num: true, html: (r) => `${num(r.interval_s, 0)} s` },
        { key: "runs_24h", label: "runs 24 h", num: true, html: (r) => num(r.runs_24h, 0) },
        { key: "error_rate_24h", label: "errors", num: true, html: (r) => pct(r.error_rate_24h, 0) },
        { key: "quarantined", label: "quarantined", num: true, html: (r) => num(r.quarantined, 0) },
        { key: "last_error", label: "last error", html: (r) => (r.last_error ? `<span class="error" title="${esc(when(r.last_error_at))}">${esc(r.last_error.slice(0, 100))}</span>` : "") },
        { key: "act", label: "", html: (r) => button(r, "run") + " " + button(r, r.paused ? "resume" : "pause") },
      ],
      data.items,
      { empty: "no collectors", rowAttrs: (r) => `data-collector="${esc(r.collector)}"` },
    );
  } catch (err) {
    box.innerHTML = errorBox(err);
  }
}

async function act(root, e) {
  const runs = e.target.closest("[data-runs]");
  if (runs) { e.preventDefault(); await lastRuns(root, runs.dataset.runs); return; }
  const button = e.target.closest("button[data-act]");
  if (!button) return;
  const name = button.dataset.name, what = button.dataset.act;
  try {
    const out = await api(`/collectors/${encodeURIComponent(name)}/${what}`, { method: "POST", body: what === "pause" ? { reason: "dashboard" } : undefined });
    toast(`${name}: ${out.status}`);
    await health(root);
    if (what === "run") await lastRuns(root, name);
  } catch (err) {
    toast(err.message);
  }
}

async function lastRuns(root, name) {
  root.querySelector("#runs .which").textContent = name;
  const box = root.querySelector("#runs .body");
  try {
    const page = await api(`/collectors/${encodeURIComponent(name)}/runs`, { query: { limit: 50 } });
    box.innerHTML = table(
      [
        { key: "started_at", label: "started", html: (r) => esc(when(r.started_at)) },
        { key: "status", label: "status", html: (r) => badge(r.status) },
        { key: "fetched", label: "fetched", num: true, html: (r) => num(r.fetched, 0) },
        { key: "inserted", label: "inserted", num: true, html: (r) => num(r.inserted, 0) },
        { key: "duplicates", label: "already stored", num: true, html: (r) => num(r.duplicates, 0) },
        { key: "quarantined", label: "quarantined", num: true, html: (r) => num(r.quarantined, 0) },
        { key: "error", label: "error", html: (r) => `<span class="error">${esc(r.error || "")}</span>` },
      ],
      page.items,
      { empty: "no runs yet" },
    );
  } catch (err) {
    box.innerHTML = errorBox(err);
  }
}

async function quarantine(root) {
  const box = root.querySelector("#quarantine .body");
  try {
    const page = await api("/collectors/quarantine", { query: { limit: 100 } });
    box.innerHTML = table(
      [
        { key: "collector", label: "collector" },
        { key: "reason", label: "reason", html: (r) => esc(r.reason.slice(0, 120)) },
        { key: "occurrences", label: "seen", num: true, html: (r) => num(r.occurrences, 0) },
        { key: "last_seen", label: "last seen", html: (r) => esc(when(r.last_seen)) },
        { key: "payload", label: "payload (start, masked)", html: (r) => `<code>${esc(r.payload.slice(0, 80))}</code>` },
      ],
      page.items,
      { empty: "nothing quarantined" },
    );
  } catch (err) {
    box.innerHTML = errorBox(err);
  }
}
