// Alerts: alerts raised from catalyst events (listings first among them), newest first and
// live, with their deliveries to every notifier.
import { api, stream } from "../api.js";
import { badge, esc, errorBox, debounce, table, toast, when } from "../ui.js";
import { needs } from "./pending.js";

export async function render(root) {
  if (!needs(root, "Alerts", [["/alerts", "Alerts"], ["/alerts/deliveries", "Alert deliveries"]])) return;
  root.innerHTML = `<h1>Alerts</h1><div class="grid">
  <section class="card wide" id="alerts"><h2>Alerts</h2>
  <form class="row" id="alert-filter"><label>Kind <input name="kind" placeholder="listing"></label><label>Coin <input name="coin"></label><button type="submit">Filter</button></form>
  <div class="body scroll">loading…</div></section>
  <section class="card wide" id="deliveries"><h2>Deliveries to the notifiers</h2><div class="body scroll">loading…</div></section></div>`;
  const form = root.querySelector("#alert-filter");
  const seen = new Set();
  const load = async (fresh = false) => {
    const box = root.querySelector("#alerts .body");
    try {
      const page = await api("/alerts", { query: { limit: 100, kind: form.kind.value.trim(), coin: form.coin.value.trim() } });
      const isNew = (a) => fresh && !seen.has(a.id);
      box.innerHTML = table(
        [
          { key: "raised_at", label: "raised", html: (r) => esc(when(r.raised_at)) },
          { key: "kind", label: "kind", html: (r) => badge(r.kind) },
          { key: "coin", label: "coin", html: (r) => esc(r.coin) },
          { key: "title", label: "what", html: (r) => (/^https?:\/\//.test(r.url || "") ? `<a href="${esc(r.url)}" target="_blank" rel="noopener noreferrer">${esc(r.title)}</a>` : esc(r.title)) },
          { key: "deliveries", label: "delivered", html: (r) => Object.entries(r.deliveries || {}).map(([n, d]) => `${esc(n)} ${badge((d && d.status) || "pending")}`).join(" ") },
        ],
        page.items,
        { empty: "no alerts yet", rowAttrs: (r) => `data-alert="${r.id}" class="${r.kind === "listing" ? "listing" : ""} ${isNew(r) ? "highlight" : ""}"` },
      );
      const arrived = page.items.filter(isNew);
      if (arrived.length) toast(`new alert: ${arrived[0].title}`);
      page.items.forEach((a) => seen.add(a.id));
    } catch (err) {
      box.innerHTML = errorBox(err);
    }
    await deliveries(root);
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  await load();
  const live = stream({ alert: debounce(() => load(true)) });
  const timer = live ? null : setInterval(() => load(true), 10000);
  return () => { if (live) live.close(); if (timer) clearInterval(timer); };
}

async function deliveries(root) {
  const box = root.querySelector("#deliveries .body");
  try {
    const page = await api("/alerts/deliveries", { query: { limit: 100 } });
    box.innerHTML = table(
      [
        { key: "at", label: "at", html: (r) => esc(when(r.at)) },
        { key: "notifier", label: "notifier" },
        { key: "status", label: "status", html: (r) => badge(r.status === "ok" ? "ok" : r.status) },
        { key: "attempts", label: "attempts", num: true },
        { key: "title", label: "alert", html: (r) => `${badge(r.kind)} ${esc(r.title)}` },
        { key: "error", label: "error", html: (r) => `<span class="error">${esc(r.error || "")}</span>` },
      ],
      page.items,
      { empty: "no deliveries yet (notifiers: OMC_ALERT_WEBHOOK_URLS, OMC_SLACK_WEBHOOK_URL, OMC_TELEGRAM_*)" },
    );
  } catch (err) {
    box.innerHTML = errorBox(err);
  }
}
