// Floor: your accounts; for one account its paper sessions (start, pause, resume, stop),
// P&L with equity and drawdown charts, positions, open orders, fills, every decision with
// its reason, the Guard limits editor and the kill switch (type the account's name to act).
import { api, stream } from "../api.js";
import { TimeChart } from "../charts.js";
import { badge, debounce, esc, errorBox, formData, num, pct, signClass, table, toast, when } from "../ui.js";
import { needs } from "./pending.js";

const POLL_MS = 2000;
const enc = encodeURIComponent;

export async function render(root, { args }) {
  if (!needs(root, "Floor", [["/accounts", "Accounts"]])) return;
  return args[0] ? account(root, args[0]) : accounts(root);
}

async function accounts(root) {
  root.innerHTML = `<h1>Floor</h1><div class="grid">
  <section class="card wide"><h2>Your accounts</h2><div id="acc-list">loading…</div></section>
  <section class="card"><h2>New paper account</h2><form id="acc-form" class="row">
    <label>Name <input name="name" required maxlength="64" pattern="[A-Za-z0-9][A-Za-z0-9_.\\-]*"></label>
    <label>Cash <input name="cash" value="10000" inputmode="decimal"></label>
    <button type="submit">Create</button></form><div class="form-status"></div></section></div>`;
  const list = async () => {
    try {
      const page = await api("/accounts", { query: { limit: 200 } });
      root.querySelector("#acc-list").innerHTML = table(
        [
          { key: "name", label: "account", html: (r) => `<a href="#/floor/${enc(r.name)}">${esc(r.name)}</a>` },
          { key: "mode", label: "mode" },
          { key: "cash", label: "starting cash", num: true, html: (r) => num(r.cash) },
          { key: "equity", label: "equity", num: true, html: (r) => num(r.equity) },
          { key: "trading", label: "trading", html: (r) => badge(r.trading) },
          { key: "kill", label: "kill switch", html: (r) => (r.kill ? badge("stopped") : "off") },
        ],
        page.items,
        { empty: "no accounts yet: create a paper account", rowAttrs: (r) => `data-account="${esc(r.name)}"` },
      );
    } catch (err) {
      root.querySelector("#acc-list").innerHTML = errorBox(err);
    }
  };
  root.querySelector("#acc-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = formData(e.target);
    try {
      await api("/accounts", { method: "POST", body: { name: data.name, mode: "paper", cash: data.cash } });
      location.hash = `#/floor/${enc(data.name)}`;
    } catch (err) {
      root.querySelector("#acc-form + .form-status").innerHTML = errorBox(err);
    }
  });
  await list();
}

function sessionForm() {
  return `<form id="ses-form"><div class="form-grid">
    <label>Strategy <input name="strategy" value="sma_cross" required maxlength="64"></label>
    <label>Exchange <input name="exchange" value="demo" required maxlength="64"></label>
    <label>Symbol <input name="symbol" value="BTC/USDT" required maxlength="64"></label>
    <label>Timeframe <input name="timeframe" value="5m" required maxlength="8"></label>
    <label>Bars per second (empty: flat out) <input name="bars_per_second" value="200" inputmode="decimal"></label>
    <label>At most bars <input name="max_bars" inputmode="numeric"></label>
  </div><label>Parameters (JSON) <textarea name="params" rows="2">{"fast": 12, "slow": 48}</textarea></label>
  <button type="submit">Start paper session (replayed candles)</button> <span class="form-status"></span></form>`;
}

async function account(root, name) {
  const base = `/accounts/${enc(name)}`;
  root.innerHTML = `<p><a href="#/floor">&larr; all accounts</a></p><h1>Account ${esc(name)}</h1>
  <div id="acc-head"></div><div class="grid">
  <section class="card wide" id="sessions"><h2>Sessions</h2><div class="body"></div>
  <details id="ses-new" open><summary>Start a paper session on replayed candles</summary>${sessionForm()}</details></section>
  <section class="card" id="pnl"><h2>P&amp;L</h2><div class="body"></div></section>
  <section class="card" id="equity"><h2>Equity</h2><div class="chart-box"></div><h2>Drawdown</h2><div class="dd-box"></div></section>
  <section class="card" id="positions"><h2>Positions</h2><div class="body"></div></section>
  <section class="card" id="orders"><h2>Open orders</h2><div class="body"></div></section>
  <section class="card" id="fills"><h2>Fills</h2><div class="body scroll"></div></section>
  <section class="card" id="journal"><h2>Decisions and their reasons</h2><div class="body scroll"></div></section>
  <section class="card" id="limits"><h2>Guard limits</h2><div class="body"></div></section>
  <section class="card kill" id="kill"><h2>Kill switch</h2><div class="body"></div></section>
  </div>`;
  const eq = new TimeChart(root.querySelector("#equity .chart-box"), { series: [], height: 220 });
  const dd = new TimeChart(root.querySelector("#equity .dd-box"), { series: [], height: 140, format: (v) => `${(v * 100).toFixed(1)}%` });
  const refresh = () => Promise.all([head(root, base), sessions(root, name), pnl(root, base, eq, dd), positions(root, base), orders(root, base), fills(root, base), journal(root, base)]);
  setupSessionForm(root, name, refresh);
  await Promise.all([refresh(), limits(root, base), kill(root, base, name, refresh)]);
  if (root.querySelector("#sessions tr[data-session]")) root.querySelector("#ses-new").open = false;
  const timer = setInterval(refresh, POLL_MS);
  const soon = debounce(refresh, 300);
  const live = stream({ fill: soon, order: soon, pnl: soon, session: soon });
  return () => { clearInterval(timer); if (live) live.close(); eq.resize?.disconnect(); dd.resize?.disconnect(); };
}

async function head(root, base) {
  try {
    const a = await api(base);
    root.querySelector("#acc-head").innerHTML = `<p>${badge(a.mode)} trading ${badge(a.trading)} kill switch ${a.kill ? badge("stopped") : "off"} · starting cash ${num(a.cash)} · equity <b>${num(a.equity)}</b></p>`;
  } catch (err) {
    root.querySelector("#acc-head").innerHTML = errorBox(err);
  }
}

function setupSessionForm(root, name, refresh) {
  const form = root.querySelector("#ses-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const status = form.querySelector(".form-status");
    const d = formData(form);
    let params;
    try { params = JSON.parse(d.params || "{}"); } catch (_) { status.innerHTML = errorBox("parameters: not valid JSON"); return; }
    const body = { strategy: d.strategy, params, exchange: d.exchange, symbol: d.symbol, timeframe: d.timeframe, replay: true };
    if (d.bars_per_second) body.bars_per_second = Number(d.bars_per_second);
    if (d.max_bars) body.max_bars = Number(d.max_bars);
    try {
      const made = await api(`/accounts/${enc(name)}/sessions`, { method: "POST", body });
      status.textContent = `started ${made.id}`;
      toast("paper session started");
      await refresh();
    } catch (err) {
      status.innerHTML = errorBox(err);
    }
  });
  root.querySelector("#sessions .body").addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-act]");
    if (!button) return;
    try {
      await api(`/sessions/${enc(button.dataset.id)}/${button.dataset.act}`, { method: "POST" });
      await refresh();
    } catch (err) {
      toast(err.message);
    }
  });
}

async function sessions(root, name) {
  const box = root.querySelector("#sessions .body");
  try {
    const page = await api(`/accounts/${enc(name)}/sessions`, { query: { limit: 20 } });
    const act = (r, what) => `<button type="button" class="secondary" data-act="${what}" data-id="${esc(r.id)}">${what}</button>`;
    box.innerHTML = table(
      [
        { key: "status", label: "status", html: (r) => badge(r.status) },
        { key: "strategy", label: "strategy", html: (r) => `${esc(r.strategy)} <span class="muted">${esc(JSON.stringify(r.params))}</span>` },
        { key: "data", label: "data", html: (r) => `${esc(r.exchange)} ${esc(r.symbol)} ${esc(r.timeframe)}` },
        { key: "bars", label: "bars", num: true, html: (r) => `${num(r.bars_done, 0)} / ${num(r.bars_total, 0)}` },
        { key: "error", label: "", html: (r) => `<span class="error">${esc(r.error || "")}</span>` },
        { key: "act", label: "", html: (r) => (r.status === "running" ? act(r, "pause") + " " + act(r, "stop") : r.status === "paused" ? act(r, "resume") + " " + act(r, "stop") : r.status === "queued" ? act(r, "stop") : "") },
      ],
      page.items,
      { empty: "no sessions yet", rowAttrs: (r) => `data-session="${esc(r.id)}" data-status="${esc(r.status)}"` },
    );
  } catch (err) {
    box.innerHTML = errorBox(err);
  }
}

async function pnl(root, base, eq, dd) {
  const box = root.querySelector("#pnl .body");
  try {
    const p = await api(`${base}/pnl`, { query: { points: 1000 } });
    const rows = [["equity", num(p.equity)], ["cash", num(p.cash)], ["realised P&L", num(p.realised_pnl)], ["unrealised P&L", num(p.unrealised_pnl)],
      ["fees", num(p.fees)], ["net P&L", `<span class="${signClass(p.net_pnl)}">${num(p.net_pnl)}</span>`], ["fills", num(p.trades, 0)],
      ["drawdown", pct(-Number(p.drawdown))], ["trading", `${badge(p.trading)} ${esc(p.trading_reason || "")}`], ["last bar", esc(when(p.last_bar_ts))]];
    box.innerHTML = `<dl class="kv" id="pnl-kv">${rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("")}</dl>`;
    const points = p.equity_series.map((x) => [Date.parse(x.ts), Number(x.equity)]);
    let peak = -Infinity;
    const draw = points.map(([t, v]) => { peak = Math.max(peak, v); return [t, peak > 0 ? v / peak - 1 : 0]; });
    eq.set({ series: [{ name: "equity", points }] }, true);
    dd.set({ series: [{ name: "drawdown", points: draw, area: true, color: "#dc2626" }], format: dd.opts.format }, true);
  } catch (err) {
    box.innerHTML = errorBox(err);
  }
}

async function positions(root, base) {
  const box = root.querySelector("#positions .body");
  try {
    const page = await api(`${base}/positions`);
    box.innerHTML = table(
      [
        { key: "symbol", label: "symbol" }, { key: "strategy", label: "strategy" },
        { key: "quantity", label: "quantity", num: true, html: (r) => num(r.quantity, 6) },
        { key: "avg_cost", label: "avg cost", num: true, html: (r) => num(r.avg_cost, 4) },
        { key: "mark", label: "mark", num: true, html: (r) => num(r.mark, 4) },
        { key: "unrealised", label: "unrealised", num: true, html: (r) => `<span class="${signClass(r.unrealised)}">${num(r.unrealised)}</span>` },
      ],
      page.items,
      { empty: "flat" },
    );
  } catch (err) {
    box.innerHTML = errorBox(err);
  }
}

function short(v) {
  const n = Number(v);
  if (typeof v === "boolean" || v === null || v === "" || !Number.isFinite(n)) return typeof v === "object" ? JSON.stringify(v) : String(v);
  return Math.abs(n) >= 100 ? n.toFixed(2) : String(Number(n.toPrecision(4)));
}

/** A decision's or an order's reason in words: its targets, its signals, the rest. */
export function reasonText(reason) {
  if (reason === null || reason === undefined) return "";
  if (typeof reason !== "object") return String(reason);
  const parts = [];
  const { targets, signals, reason: inner, target_percent: target, ...rest } = reason;
  if (targets) parts.push("target " + Object.entries(targets).map(([s, w]) => `${s} ${(Number(w) * 100).toFixed(0)}%`).join(", "));
  if (target !== undefined) parts.push(`target ${(Number(target) * 100).toFixed(0)}%`);
  if (signals) parts.push(Object.entries(signals).map(([k, v]) => `${k}=${short(v)}`).join(" "));
  if (inner) parts.push(reasonText(inner));
  for (const key of ["client_order_id", "tag", "type", "limit_price", "quantity", "side"]) delete rest[key];
  for (const [k, v] of Object.entries(rest)) parts.push(`${k}: ${short(v)}`);
  return parts.filter(Boolean).join("; ");
}

async function orders(root, base) {
  const box = root.querySelector("#orders .body");
  try {
    const page = await api(`${base}/orders`, { query: { open: true } });
    box.innerHTML = table(
      [
        { key: "side", label: "side", html: (r) => `<span class="${r.side === "buy" ? "up" : "down"}">${esc(r.side)}</span>` },
        { key: "symbol", label: "symbol" }, { key: "type", label: "type" },
        { key: "quantity", label: "quantity", num: true, html: (r) => num(r.quantity, 6) },
        { key: "limit_price", label: "limit", num: true, html: (r) => num(r.limit_price, 4) },
        { key: "state", label: "state", html: (r) => badge(r.state) },
        { key: "reason", label: "reason", wrap: true, html: (r) => `<span class="muted">${esc(reasonText(r.reason).slice(0, 120))}</span>` },
      ],
      page.items,
      { empty: "no open orders" },
    );
  } catch (err) {
    box.innerHTML = errorBox(err);
  }
}

async function fills(root, base) {
  const box = root.querySelector("#fills .body");
  try {
    const page = await api(`${base}/fills`, { query: { limit: 100 } });
    box.innerHTML = table(
      [
        { key: "ts", label: "at", html: (r) => esc(when(r.ts)) },
        { key: "side", label: "side", html: (r) => `<span class="${r.side === "buy" ? "up" : "down"}">${esc(r.side)}</span>` },
        { key: "symbol", label: "symbol" },
        { key: "quantity", label: "quantity", num: true, html: (r) => num(r.quantity, 6) },
        { key: "price", label: "price", num: true, html: (r) => num(r.price, 4) },
        { key: "fee", label: "fee", num: true, html: (r) => num(r.fee, 4) },
      ],
      page.items,
      { empty: "no fills yet", rowAttrs: (r) => `data-fill="${r.seq}"` },
    );
  } catch (err) {
    box.innerHTML = errorBox(err);
  }
}

async function journal(root, base) {
  const box = root.querySelector("#journal .body");
  try {
    const page = await api(`${base}/journal`, { query: { limit: 100 } });
    box.innerHTML = table(
      [
        { key: "ts", label: "at", html: (r) => esc(when(r.ts)) },
        { key: "kind", label: "what", html: (r) => badge(r.kind) + (r.data && r.data.side ? ` <span class="${r.data.side === "buy" ? "up" : "down"}">${esc(r.data.side)} ${num(r.data.quantity, 6)}</span>` : "") },
        { key: "symbol", label: "symbol", html: (r) => esc(r.symbol || "") },
        { key: "data", label: "reason", wrap: true, html: (r) => `<span class="muted" title="${esc(JSON.stringify(r.data))}">${esc(reasonText(r.data).slice(0, 160))}</span>` },
      ],
      page.items,
      { empty: "no decisions yet", rowAttrs: (r) => `data-kind="${esc(r.kind)}"` },
    );
  } catch (err) {
    box.innerHTML = errorBox(err);
  }
}

async function limits(root, base) {
  const box = root.querySelector("#limits .body");
  try {
    const found = await api(`${base}/limits`);
    const over = new Set(found.overridden);
    box.innerHTML = `<form id="limits-form"><div class="form-grid">${Object.entries(found.limits)
      .map(([k, v]) => `<label>${esc(k.replaceAll("_", " "))}${over.has(k) ? " <b>(set)</b>" : ""}<input name="${esc(k)}" value="${esc(v ?? "")}" data-was="${esc(v ?? "")}"></label>`)
      .join("")}</div><button type="submit">Save limits</button> <span class="form-status"></span></form>`;
    const form = box.querySelector("form");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const changes = {};
      for (const input of form.querySelectorAll("input")) {
        if (input.value.trim() !== input.dataset.was && input.value.trim() !== "") changes[input.name] = input.value.trim();
      }
      const status = form.querySelector(".form-status");
      if (!Object.keys(changes).length) { status.textContent = "nothing changed"; return; }
      try {
        await api(`${base}/limits`, { method: "PUT", body: changes });
        toast(`limits saved: ${Object.keys(changes).join(", ")}`);
        await limits(root, base);
        root.querySelector("#limits .form-status").textContent = `saved ${Object.keys(changes).join(", ")}`;
      } catch (err) {
        status.innerHTML = errorBox(err);
      }
    });
  } catch (err) {
    box.innerHTML = errorBox(err);
  }
}

async function kill(root, base, name, refresh) {
  const box = root.querySelector("#kill .body");
  try {
    const k = await api(`${base}/kill`);
    box.innerHTML = `<p id="kill-state">${k.active ? `${badge("stopped")} ON since ${esc(when(k.updated_at))}: ${esc(k.reason)}` : "off: sessions may trade"}</p>
    <form id="kill-form"><p>${k.active ? "Switch it off" : "Switch it on: cancels open orders and stops the running session"} — type the account name <code>${esc(name)}</code> to confirm.</p>
    <label>Account name <input name="confirm" autocomplete="off" maxlength="64"></label>
    ${k.active ? "" : '<label><input type="checkbox" name="flatten"> also close every position (flatten)</label>'}
    <button type="submit" class="danger" disabled>${k.active ? "Switch the kill switch off" : "KILL"}</button> <span class="form-status"></span></form>`;
    const form = box.querySelector("form");
    const button = form.querySelector("button");
    form.confirm.addEventListener("input", () => { button.disabled = form.confirm.value !== name; });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (form.confirm.value !== name) return;
      try {
        const out = await api(`${base}/kill`, { method: "POST", body: { on: !k.active, flatten: !!(form.flatten && form.flatten.checked), confirm: form.confirm.value, reason: "dashboard" } });
        toast(out.active ? `kill switch ON for ${name}` : `kill switch off for ${name}`);
        await kill(root, base, name, refresh);
        await refresh();
      } catch (err) {
        form.querySelector(".form-status").innerHTML = errorBox(err);
      }
    });
  } catch (err) {
    box.innerHTML = errorBox(err);
  }
}
