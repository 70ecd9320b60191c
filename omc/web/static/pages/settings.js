// Settings: your credentials (exchange and LLM keys: saved once, checked with the provider,
// shown masked, rotated, deleted), the LLM provider the Lab uses, notifiers, and for an
// admin the users of this installation.
import { api, has } from "../api.js";
import { badge, esc, errorBox, formData, table, toast, unavailable, when } from "../ui.js";

export async function render(root, { me }) {
  root.innerHTML = `<h1>Settings</h1><div class="grid">
  <section class="card wide" id="creds"><h2>Credentials</h2><div class="body"></div></section>
  <section class="card" id="llm"><h2>LLM provider</h2><div class="body"></div></section>
  <section class="card" id="notifiers"><h2>Notifiers</h2><div class="body"></div></section>
  ${me.is_admin ? '<section class="card wide" id="users"><h2>Users (admin)</h2><div class="body"></div></section>' : ""}
  </div>`;
  await Promise.all([credentials(root), notifiers(root), me.is_admin ? users(root, me) : null]);
}

const KEY_FORM = `<div class="form-grid">
  <label>API key <input name="api_key" type="password" autocomplete="off" required></label>
  <label>API secret (exchanges) <input name="api_secret" type="password" autocomplete="off"></label>
  <label>Base URL (optional) <input name="base_url" placeholder="a proxy or a local model server"></label></div>`;

function keyBody(d) {
  const body = { api_key: d.api_key };
  if (d.api_secret) body.api_secret = d.api_secret;
  if (d.base_url) body.base_url = d.base_url;
  return body;
}

async function credentials(root) {
  const box = root.querySelector("#creds .body");
  const llm = root.querySelector("#llm .body");
  if (!has("/credentials")) { box.innerHTML = unavailable("Credentials"); llm.innerHTML = unavailable("LLM provider keys"); return; }
  let items = [];
  try { items = (await api("/credentials", { query: { limit: 200 } })).items; } catch (err) { box.innerHTML = errorBox(err); return; }
  const cols = [
    { key: "kind", label: "kind" }, { key: "name", label: "name" },
    { key: "hint", label: "key", html: (r) => `<code>${esc(r.hint)}</code>` },
    { key: "endpoint", label: "endpoint", html: (r) => esc(r.endpoint || "") },
    { key: "checked_at", label: "checked", html: (r) => (r.checked_at ? badge("ok") + " " + esc(when(r.checked_at)) : "never") },
    { key: "last_used_at", label: "last used", html: (r) => esc(when(r.last_used_at) || "never") },
    { key: "act", label: "", html: (r) => `<button type="button" class="secondary" data-act="check" data-id="${r.id}">check</button> <button type="button" class="secondary" data-act="rotate" data-id="${r.id}">rotate</button> <button type="button" class="secondary" data-act="delete" data-id="${r.id}">delete</button>` },
  ];
  box.innerHTML = table(cols, items, { empty: "no credentials saved", rowAttrs: (r) => `data-credential="${esc(r.name)}"` }) +
    `<div id="cred-action"></div><h2>Add a credential</h2><form id="cred-form"><div class="form-grid">
    <label>Kind <select name="kind"><option value="coinspot">CoinSpot</option><option value="ccxt">CCXT exchange</option><option value="llm">LLM provider</option></select></label>
    <label>Provider (CCXT exchange id or LLM provider) <input name="provider" placeholder="binance, openai, anthropic…"></label>
    <label>Name <input name="name" value="main" required maxlength="64"></label></div>${KEY_FORM}
    <button type="submit">Check and save</button> <span class="form-status"></span></form>
    <p class="muted">Keys are checked with the provider, stored encrypted and never shown again: only the last 4 characters.</p>`;
  const llms = items.filter((c) => c.kind.startsWith("llm"));
  llm.innerHTML = (llms.length
    ? `<p>The Lab's LLM uses your stored key: ${llms.map((c) => `<b>${esc(c.kind.slice(4) || c.kind)}</b> (${esc(c.name)}, <code>${esc(c.hint)}</code>)`).join(", ")}.</p>`
    : '<p class="muted">No LLM key saved: the Lab plans with its built-in rules. Add one above with kind "LLM provider".</p>');
  const form = box.querySelector("#cred-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const d = formData(form);
    const body = { kind: d.kind, name: d.name, ...keyBody(d) };
    if (d.provider) body.provider = d.provider;
    const status = form.querySelector(".form-status");
    status.textContent = "checking with the provider…";
    try {
      await api("/credentials", { method: "POST", body });
      toast("credential saved");
      await credentials(root);
    } catch (err) {
      status.innerHTML = errorBox(err);
    }
  });
  box.querySelector("table")?.addEventListener("click", (e) => credentialAction(root, e));
}

async function credentialAction(root, e) {
  const button = e.target.closest("button[data-act]");
  if (!button) return;
  const id = button.dataset.id, act = button.dataset.act;
  const panel = root.querySelector("#cred-action");
  try {
    if (act === "check") {
      const out = await api(`/credentials/${id}/check`, { method: "POST" });
      toast(out.ok ? "the provider accepted the key" : `refused: ${out.message}`);
      await credentials(root);
    } else if (act === "delete") {
      if (button.dataset.sure !== "1") { button.dataset.sure = "1"; button.textContent = "really delete?"; button.classList.add("danger"); return; }
      await api(`/credentials/${id}`, { method: "DELETE" });
      toast("credential deleted");
      await credentials(root);
    } else if (act === "rotate") {
      panel.innerHTML = `<form id="rotate-form" class="card"><h2>Rotate credential ${esc(id)}</h2>${KEY_FORM}<button type="submit">Check and replace</button> <span class="form-status"></span></form>`;
      panel.querySelector("form").addEventListener("submit", async (ev) => {
        ev.preventDefault();
        try {
          await api(`/credentials/${id}/rotate`, { method: "POST", body: keyBody(formData(ev.target)) });
          toast("credential rotated");
          await credentials(root);
        } catch (err) {
          ev.target.querySelector(".form-status").innerHTML = errorBox(err);
        }
      });
    }
  } catch (err) {
    toast(err.message);
  }
}

async function notifiers(root) {
  const box = root.querySelector("#notifiers .body");
  if (!has("/alerts/notifiers")) {
    box.innerHTML = has("/alerts/deliveries")
      ? '<p class="muted">Notifiers are configured on the server (<code>OMC_ALERT_WEBHOOK_URLS</code>, <code>OMC_SLACK_WEBHOOK_URL</code>, <code>OMC_TELEGRAM_BOT_TOKEN</code> + <code>OMC_TELEGRAM_CHAT_ID</code>); their deliveries are on the <a href="#/alerts">Alerts</a> page.</p>'
      : unavailable("Notifiers");
    return;
  }
  try {
    const data = await api("/alerts/notifiers");
    box.innerHTML = table([{ key: "name", label: "notifier" }, { key: "kind", label: "kind" }, { key: "enabled", label: "", html: (r) => badge(r.enabled ? "active" : "paused") }], data.items || data);
  } catch (err) {
    box.innerHTML = errorBox(err);
  }
}

async function users(root, me) {
  const box = root.querySelector("#users .body");
  if (!has("/users")) { box.innerHTML = unavailable("Users"); return; }
  try {
    const page = await api("/users", { query: { limit: 500 } });
    box.innerHTML = table(
      [
        { key: "username", label: "user" },
        { key: "is_admin", label: "role", html: (r) => (r.is_admin ? "admin" : "user") },
        { key: "disabled", label: "", html: (r) => badge(r.disabled ? "stopped" : "active") },
        { key: "created_at", label: "created", html: (r) => esc(when(r.created_at)) },
        { key: "act", label: "", html: (r) => (r.disabled || r.username === me.username ? "" : `<button type="button" class="secondary" data-disable="${esc(r.username)}">disable</button>`) },
      ],
      page.items,
    ) + `<h2>New user</h2><form id="user-form" class="row">
      <label>User name <input name="username" required maxlength="64"></label>
      <label>Password <input name="password" type="password" autocomplete="new-password" required></label>
      <label><input type="checkbox" name="is_admin"> admin</label><button type="submit">Create</button></form><div class="form-status"></div>`;
    box.querySelector("#user-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api("/users", { method: "POST", body: formData(e.target) });
        toast("user created");
        await users(root, me);
      } catch (err) {
        box.querySelector(".form-status").innerHTML = errorBox(err);
      }
    });
    box.querySelector("table")?.addEventListener("click", async (e) => {
      const name = e.target.dataset.disable;
      if (!name) return;
      try { await api(`/users/${encodeURIComponent(name)}/disable`, { method: "POST" }); await users(root, me); } catch (err) { toast(err.message); }
    });
  } catch (err) {
    box.innerHTML = errorBox(err);
  }
}
