// Backtests: a form (strategy, params, data, fees) that submits a job, the list of your jobs
// with their progress, and a job's report: metrics against buy-and-hold, interactive equity,
// drawdown and trades-on-price charts.
import { api, has } from "../api.js";
import { TimeChart } from "../charts.js";
import { badge, esc, errorBox, formData, num, pct, table, toast, unavailable, when } from "../ui.js";
import { loadCandles } from "./overview.js";

const BUILT_IN = {
  sma_cross: { fast: 10, slow: 30, size: 1.0 },
  rsi_revert: { period: 14, lower: 30.0, upper: 70.0, size: 1.0 },
};

async function strategies() {
  if (!has("/strategies")) return BUILT_IN;
  try {
    const data = await api("/strategies");
    const out = {};
    for (const s of data.items || data) out[s.name] = s.defaults || s.params || {};
    return Object.keys(out).length ? out : BUILT_IN;
  } catch (_) {
    return BUILT_IN;
  }
}

export async function render(root, { args }) {
  if (args[0]) return report(root, args[0]);
  const known = await strategies();
  root.innerHTML = `<h1>Backtests</h1><div class="grid">
  <section class="card"><h2>New backtest</h2>
  <form id="bt-form">
    <div class="form-grid">
      <label>Strategy <select name="strategy">${Object.keys(known).map((n) => `<option>${esc(n)}</option>`).join("")}</select></label>
      <label>Exchange <input name="exchange" value="demo" maxlength="64"></label>
      <label>Symbol <input name="symbol" value="BTC/USDT" required maxlength="64"></label>
      <label>Timeframe <input name="timeframe" value="5m" required maxlength="8"></label>
      <label>Fee (bps, empty: CoinSpot's) <input name="fee_bps" inputmode="decimal" placeholder="10"></label>
      <label>Slippage (bps) <input name="slippage_bps" value="0" inputmode="decimal"></label>
      <label>Cash <input name="cash" value="10000" inputmode="decimal"></label>
      <label><input type="checkbox" name="guard"> through the Guard limits</label>
    </div>
    <label>Parameters (JSON) <textarea name="params" rows="4"></textarea></label>
    <button type="submit">Run backtest</button> <span class="form-status muted"></span>
  </form></section>
  <section class="card" id="sweeps"><h2>Sweeps</h2><div class="body"></div></section>
  <section class="card wide"><h2>Your backtests</h2><div id="bt-list">loading…</div></section></div>`;
  const form = root.querySelector("#bt-form");
  const fill = () => { form.params.value = JSON.stringify(known[form.strategy.value] || {}, null, 1); };
  form.strategy.addEventListener("change", fill);
  fill();
  root.querySelector("#sweeps .body").innerHTML = has("/sweeps", "post") || has("/backtests/sweeps", "post")
    ? '<p class="muted">Sweeps run from the API; their heatmap shows in the sweep\'s report.</p>'
    : unavailable("Parameter sweeps");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const status = form.querySelector(".form-status");
    const data = formData(form);
    let params;
    try { params = JSON.parse(data.params || "{}"); } catch (_) { status.innerHTML = errorBox("parameters: not valid JSON"); return; }
    const body = {
      strategy: data.strategy, params, symbol: data.symbol, timeframe: data.timeframe,
      exchange: data.exchange || null, cash: data.cash || "10000",
      slippage_bps: data.slippage_bps || "0", guard: data.guard,
    };
    if (data.fee_bps) body.fee_bps = data.fee_bps;
    try {
      const job = await api("/backtests", { method: "POST", body });
      status.textContent = `queued ${job.id}`;
      toast("backtest queued");
      await list(root);
    } catch (err) {
      status.innerHTML = errorBox(err);
    }
  });
  await list(root);
  const timer = setInterval(() => list(root), 2000);
  return () => clearInterval(timer);
}

async function list(root) {
  const box = root.querySelector("#bt-list");
  if (!box) return;
  try {
    const page = await api("/backtests", { query: { limit: 50 } });
    box.innerHTML = table(
      [
        { key: "status", label: "status", html: (r) => badge(r.status) },
        { key: "strategy", label: "strategy", html: (r) => `${esc(r.strategy)} <span class="muted">${esc(JSON.stringify(r.params))}</span>` },
        { key: "symbol", label: "data", html: (r) => `${esc(r.exchange || "")} ${esc(r.symbol)} ${esc(r.timeframe)}` },
        { key: "final", label: "final equity", num: true, html: (r) => (r.metrics ? num(r.metrics.final_equity) : "") },
        { key: "ret", label: "return", num: true, html: (r) => (r.metrics ? pct(r.metrics.total_return) : esc(r.error || "")) },
        { key: "created_at", label: "submitted", html: (r) => esc(when(r.created_at)) },
        { key: "open", label: "", html: (r) => (r.status === "done" ? `<a href="#/backtests/${encodeURIComponent(r.id)}">report</a>` : "") },
      ],
      page.items,
      { empty: "no backtests yet: submit one above", rowAttrs: (r) => `data-id="${esc(r.id)}" data-status="${esc(r.status)}"` },
    );
  } catch (err) {
    box.innerHTML = errorBox(err);
  }
}

const METRICS = [
  ["final_equity", "final equity", (v) => num(v)],
  ["total_return", "total return", pct],
  ["cagr", "CAGR", pct],
  ["sharpe", "Sharpe", (v) => num(v, 2)],
  ["max_drawdown", "max drawdown", pct],
  ["trades", "trades", (v) => num(v, 0)],
  ["win_rate", "win rate", pct],
  ["fees_paid", "fees paid", (v) => num(v)],
];

async function report(root, id) {
  root.innerHTML = `<p><a href="#/backtests">&larr; all backtests</a></p><h1>Backtest report</h1><div id="bt-report">loading…</div>`;
  const box = root.querySelector("#bt-report");
  let job;
  try { job = await api(`/backtests/${encodeURIComponent(id)}`); } catch (err) { box.innerHTML = errorBox(err); return; }
  const m = job.metrics || {};
  const bh = m.buy_and_hold || {};
  box.innerHTML = `<div class="grid">
  <section class="card"><h2>${esc(job.strategy)} on ${esc(job.exchange || "")} ${esc(job.symbol)} ${esc(job.timeframe)} ${badge(job.status)}</h2>
  <p class="muted">${esc(JSON.stringify(job.params))} · ${esc(when(m.start))} to ${esc(when(m.end))} · fees ${esc(m.fee_taker_bps ?? "")} bps</p>
  ${job.error ? errorBox(job.error) : ""}
  <table id="bt-metrics"><thead><tr><th></th><th class="num">strategy</th><th class="num">buy &amp; hold</th></tr></thead><tbody>
  ${METRICS.map(([k, label, f]) => `<tr><td>${label}</td><td class="num" data-metric="${k}">${m[k] === undefined || m[k] === null ? "" : f(m[k])}</td><td class="num">${bh[k] === undefined || bh[k] === null ? "" : f(bh[k])}</td></tr>`).join("")}
  </tbody></table></section>
  <section class="card"><h2>Equity</h2><div id="eq"></div></section>
  <section class="card"><h2>Drawdown</h2><div id="dd"></div></section>
  <section class="card wide"><h2>Trades on price</h2><div id="tp"></div><h2>Trades</h2><div id="trades" class="scroll"></div></section></div>`;
  if (job.status !== "done") return;
  if (!has("/backtests/{job_id}/series")) {
    for (const sel of ["#eq", "#dd", "#tp"]) box.querySelector(sel).innerHTML = unavailable("Backtest series");
    return;
  }
  try {
    const s = await api(`/backtests/${encodeURIComponent(id)}/series`);
    const eq = s.equity.map((p) => [Date.parse(p.ts), Number(p.equity)]);
    const dd = s.equity.map((p) => [Date.parse(p.ts), Number(p.drawdown)]);
    const eqBox = box.querySelector("#eq"), ddBox = box.querySelector("#dd"), tpBox = box.querySelector("#tp");
    new TimeChart(eqBox, { series: [{ name: "equity", points: eq }], height: 240 }).tools(eqBox.parentElement);
    new TimeChart(ddBox, { series: [{ name: "drawdown", points: dd, area: true, color: "#dc2626" }], height: 240, format: (v) => `${(v * 100).toFixed(1)}%` }).tools(ddBox.parentElement);
    const candles = await loadCandles(job.exchange || "", job.symbol, job.timeframe);
    const first = eq.length ? eq[0][0] : -Infinity, last = eq.length ? eq[eq.length - 1][0] : Infinity;
    const markers = s.trades.flatMap((t) => [
      { t: Date.parse(t.entry_time), v: Number(t.entry_price), side: "buy" },
      ...(t.exit_time && t.exit_price ? [{ t: Date.parse(t.exit_time), v: Number(t.exit_price), side: "sell" }] : []),
    ]);
    new TimeChart(tpBox, { candles: candles.filter((c) => c.t >= first && c.t <= last), markers, height: 320 }).tools(tpBox.parentElement);
    box.querySelector("#trades").innerHTML = table(
      [
        { key: "entry_time", label: "entry", html: (r) => esc(when(r.entry_time)) },
        { key: "exit_time", label: "exit", html: (r) => (r.exit_time ? esc(when(r.exit_time)) : "open") },
        { key: "side", label: "side" },
        { key: "quantity", label: "quantity", num: true, html: (r) => num(r.quantity, 6) },
        { key: "entry_price", label: "entry price", num: true, html: (r) => num(r.entry_price, 4) },
        { key: "exit_price", label: "exit price", num: true, html: (r) => num(r.exit_price, 4) },
        { key: "fees", label: "fees", num: true, html: (r) => num(r.fees, 4) },
        { key: "pnl", label: "P&L", num: true, html: (r) => `<span class="${Number(r.pnl) >= 0 ? "up" : "down"}">${num(r.pnl)}</span>` },
      ],
      s.trades.slice(-200).reverse(),
      { empty: "no trades" },
    );
  } catch (err) {
    box.querySelector("#eq").innerHTML = errorBox(err);
  }
}
