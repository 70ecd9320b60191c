// Overview: live CoinSpot prices with sparklines, a candle chart (zoom, timeframe), sentiment
// per coin over time, TVL moves, the catalyst feed (listings highlighted as they arrive) and
// the freshness of every source.
import { all, api, has, stream } from "../api.js";
import { TimeChart, sparkline } from "../charts.js";
import { ago, badge, debounce, esc, errorBox, num, pct, signClass, table, toast, unavailable, when } from "../ui.js";

const POLL_MS = 5000;
const VIEW_TF = { "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400 };
const history = new Map(); // coin -> [[t, last]] seen by this page (when there is no ticks route)

export async function render(root) {
  root.innerHTML = `<h1>Overview</h1><div class="grid">
  <section class="card" id="prices"><h2>CoinSpot prices</h2><div class="body">loading…</div></section>
  <section class="card" id="freshness"><h2>Data freshness</h2><div class="body">loading…</div></section>
  <section class="card wide" id="candles"><h2>Candles</h2>
    <form class="row" id="candle-form">
      <label>Exchange <input name="exchange" value="demo" maxlength="64"></label>
      <label>Symbol <input name="symbol" value="BTC/USDT" maxlength="64"></label>
      <label>Stored timeframe <input name="timeframe" value="5m" maxlength="8"></label>
      <label>Show as <select name="view">${Object.keys(VIEW_TF).map((k) => `<option>${k}</option>`).join("")}</select></label>
      <button type="submit">Show</button>
    </form><div class="status muted"></div><div id="candle-chart"></div></section>
  <section class="card" id="sentiment"><h2>Sentiment per coin</h2><div class="body">loading…</div></section>
  <section class="card" id="tvl"><h2>TVL moves</h2><div class="body">loading…</div></section>
  <section class="card wide" id="catalysts"><h2>Catalyst feed</h2><div class="body">loading…</div></section>
  </div>`;
  const timers = [];
  const live = stream({
    tick: debounce(() => prices(root), 500),
    alert: debounce(() => catalystsArrived(root), 300),
  });
  await Promise.all([prices(root), freshness(root), sentiment(root), tvl(root), catalysts(root)]);
  const chart = setupCandles(root);
  timers.push(setInterval(() => prices(root), POLL_MS));
  timers.push(setInterval(() => freshness(root), 6 * POLL_MS));
  timers.push(setInterval(() => catalystsArrived(root), 2 * POLL_MS));
  return () => {
    prices.loaded = false;
    timers.forEach(clearInterval);
    if (live) live.close();
    chart.resize?.disconnect();
  };
}

async function prices(root) {
  const body = root.querySelector("#prices .body");
  try {
    const page = await api("/ledgers/prices/latest", { query: { source: "coinspot", limit: 1000 } });
    if (has("/ledgers/ticks") && !prices.loaded) {
      prices.loaded = true;
      for (const [coin, series] of await tickHistory(page.items)) history.set(coin, series);
    }
    for (const p of page.items) {
      const h = history.get(p.coin) || [];
      const t = Date.parse(p.ts);
      if (!h.length || h[h.length - 1][0] !== t) h.push([t, Number(p.last)]);
      history.set(p.coin, h.slice(-500));
    }
    const rows = page.items.map((p) => {
      const series = history.get(p.coin) || [];
      const first = series.length ? series[0][1] : null;
      return { ...p, series, change: first ? Number(p.last) / first - 1 : null };
    });
    body.innerHTML = table(
      [
        { key: "coin", label: "coin", html: (r) => `<b>${esc(r.coin)}</b>/${esc(r.market)}` },
        { key: "last", label: "last", num: true, html: (r) => num(r.last, 4) },
        { key: "bid", label: "bid", num: true, html: (r) => num(r.bid, 4) },
        { key: "ask", label: "ask", num: true, html: (r) => num(r.ask, 4) },
        { key: "change", label: "change", num: true, html: (r) => `<span class="${signClass(r.change)}">${r.change === null ? "" : pct(r.change)}</span>` },
        { key: "spark", label: "trend", html: (r) => sparkline(r.series.map((x) => x[1])) },
        { key: "ts", label: "at", html: (r) => `<span title="${esc(when(r.ts))}">${ago(r.ts)}</span>` },
      ],
      rows,
      { empty: "no CoinSpot prices in the last 24 h: run `omc collect --once coinspot` (needs internet)", rowAttrs: (r) => `data-coin="${esc(r.coin)}"` },
    );
  } catch (err) {
    body.innerHTML = errorBox(err);
  }
}

async function tickHistory(items) {
  const out = new Map();
  const start = new Date(Date.now() - 86400e3).toISOString();
  await Promise.all(items.slice(0, 40).map(async (p) => {
    try {
      const page = await api("/ledgers/ticks", { query: { coin: p.coin, market: p.market, source: "coinspot", start, order: "asc", limit: 500 } });
      out.set(p.coin, page.items.map((t) => [Date.parse(t.ts), Number(t.last)]));
    } catch (_) { /* the page's own history is used */ }
  }));
  return out;
}

function resample(candles, seconds) {
  const out = [];
  for (const c of candles) {
    const bucket = Math.floor(c.t / (seconds * 1000)) * seconds * 1000;
    const last = out[out.length - 1];
    if (last && last.t === bucket) {
      last.h = Math.max(last.h, c.h); last.l = Math.min(last.l, c.l); last.c = c.c; last.v += c.v;
    } else out.push({ ...c, t: bucket });
  }
  return out;
}

export async function loadCandles(exchange, symbol, timeframe, pages = 20) {
  const items = await all("/ledgers/candles", { exchange, symbol, timeframe, limit: 1000 }, pages);
  return items.map((c) => ({ t: Date.parse(c.ts), o: +c.open, h: +c.high, l: +c.low, c: +c.close, v: +c.volume }));
}

function setupCandles(root) {
  const form = root.querySelector("#candle-form");
  const status = root.querySelector("#candles .status");
  const box = root.querySelector("#candle-chart");
  const chart = new TimeChart(box, { candles: [], height: 320 });
  chart.tools(box.parentElement.insertBefore(document.createElement("div"), box));
  let raw = [];
  const draw = () => {
    const view = VIEW_TF[form.view.value];
    const base = raw.length > 1 ? (raw[1].t - raw[0].t) / 1000 : 0;
    chart.set({ candles: view > base ? resample(raw, view) : raw, initialBars: 240 });
  };
  form.view.addEventListener("change", draw);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.textContent = "loading…";
    try {
      raw = await loadCandles(form.exchange.value.trim(), form.symbol.value.trim(), form.timeframe.value.trim());
      status.textContent = raw.length
        ? `${raw.length.toLocaleString()} candles, ${when(raw[0].t)} to ${when(raw[raw.length - 1].t)} (wheel or +/− to zoom, drag to pan)`
        : "no candles stored for this series";
      draw();
    } catch (err) {
      status.innerHTML = errorBox(err);
    }
  });
  form.requestSubmit();
  return chart;
}

async function freshness(root) {
  const body = root.querySelector("#freshness .body");
  if (!has("/ledgers/freshness")) { body.innerHTML = unavailable("Data freshness"); return; }
  try {
    const data = await api("/ledgers/freshness");
    body.innerHTML = table(
      [
        { key: "collector", label: "collector" },
        { key: "freshness", label: "", html: (r) => badge(r.freshness) },
        { key: "last_success", label: "last success", html: (r) => `<span title="${esc(when(r.last_success))}">${ago(r.last_success)}</span>` },
        { key: "last_error", label: "last error", html: (r) => `<span class="error">${esc((r.last_error || "").slice(0, 80))}</span>` },
      ],
      data.collectors,
      { empty: "no collectors configured", rowAttrs: (r) => `data-collector="${esc(r.collector)}"` },
    ) + table(
      [
        { key: "table", label: "ledger table", html: (r) => `${esc(r.ledger)}.${esc(r.table)}` },
        { key: "rows", label: "rows", num: true, html: (r) => num(r.rows, 0) },
        { key: "last", label: "last row", html: (r) => `<span title="${esc(when(r.last))}">${ago(r.last)}</span>` },
      ],
      data.tables.filter((t) => t.rows > 0),
      { empty: "nothing stored yet" },
    );
  } catch (err) {
    body.innerHTML = errorBox(err);
  }
}

async function sentiment(root) {
  const body = root.querySelector("#sentiment .body");
  if (!has("/ledgers/sentiment")) { body.innerHTML = unavailable("Sentiment"); return; }
  try {
    const start = new Date(Date.now() - 30 * 86400e3).toISOString();
    const items = await all("/ledgers/sentiment", { start, order: "asc", limit: 1000 }, 5);
    const byCoin = new Map();
    for (const s of items) {
      const v = Number(s.weighted_sentiment ?? s.mean_sentiment);
      if (!Number.isFinite(v)) continue;
      if (!byCoin.has(s.coin)) byCoin.set(s.coin, []);
      byCoin.get(s.coin).push([Date.parse(s.hour), v]);
    }
    if (!byCoin.size) { body.innerHTML = '<p class="muted">no sentiment in the last 30 days</p>'; return; }
    body.innerHTML = "";
    const colors = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2"];
    const series = [...byCoin.entries()].sort((a, b) => b[1].length - a[1].length).slice(0, 6).map(([name, points], i) => ({ name, color: colors[i], points: points.sort((a, b) => a[0] - b[0]) }));
    const legend = document.createElement("p");
    legend.innerHTML = series.map((s) => `<span class="swatch">&#9632;</span> ${esc(s.name)}`).join(" &nbsp; ");
    legend.querySelectorAll(".swatch").forEach((el, i) => { el.style.color = series[i].color; }); // CSP: no inline styles
    const div = document.createElement("div");
    body.append(legend, div);
    new TimeChart(div, { series, height: 220, format: (v) => v.toFixed(2) });
  } catch (err) {
    body.innerHTML = errorBox(err);
  }
}

async function tvl(root) {
  const body = root.querySelector("#tvl .body");
  if (!has("/ledgers/protocols")) { body.innerHTML = unavailable("TVL"); return; }
  try {
    const start = new Date(Date.now() - 7 * 86400e3).toISOString();
    const items = await all("/ledgers/protocols", { metric: "tvl", start, order: "asc", limit: 1000 }, 5);
    const by = new Map();
    for (const p of items) {
      const name = p.chain ? `${p.protocol} (${p.chain})` : p.protocol;
      if (!by.has(name)) by.set(name, []);
      by.get(name).push(p);
    }
    const rows = [...by.entries()].map(([name, list]) => {
      list.sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts));
      const first = Number(list[0].value), last = Number(list[list.length - 1].value);
      return { name, tvl: last, change: first ? last / first - 1 : null, series: list.map((p) => Number(p.value)), ts: list[list.length - 1].ts };
    }).sort((a, b) => Math.abs(b.change || 0) - Math.abs(a.change || 0));
    body.innerHTML = table(
      [
        { key: "name", label: "protocol" },
        { key: "tvl", label: "TVL", num: true, html: (r) => num(r.tvl, 0) },
        { key: "change", label: "move", num: true, html: (r) => `<span class="${signClass(r.change)}">${r.change === null ? "" : pct(r.change)}</span>` },
        { key: "s", label: "trend", html: (r) => sparkline(r.series) },
      ],
      rows.slice(0, 20),
      { empty: "no protocol TVL in the last 7 days (omc collect --once defillama)" },
    );
  } catch (err) {
    body.innerHTML = errorBox(err);
  }
}

function isListing(e) {
  return e.kind === "listing";
}

function catalystRow(e, fresh = false) {
  const cls = [isListing(e) ? "listing" : "", fresh ? "highlight" : ""].join(" ");
  const coins = Array.isArray(e.coins) ? e.coins.join(", ") : e.coin || "";
  const title = esc(e.title || e.message || "");
  const link = /^https?:\/\//.test(e.url || "") ? `<a href="${esc(e.url)}" target="_blank" rel="noopener noreferrer">${title}</a>` : title;
  return `<tr class="${cls}" data-key="${esc(`${e.source}/${e.event_id}`)}"><td>${esc(when(e.published_at || e.ts))}</td><td>${badge(e.kind || "event")}</td><td>${esc(coins)}</td><td>${isListing(e) ? "<b>&#9733; listing:</b> " : ""}${link}</td><td class="muted">${esc(e.source || "")}</td></tr>`;
}

async function catalysts(root) {
  const body = root.querySelector("#catalysts .body");
  if (!has("/ledgers/events")) { body.innerHTML = unavailable("Catalyst feed"); return; }
  try {
    const page = await api("/ledgers/events", { query: { limit: 50 } });
    body.innerHTML = `<div class="scroll"><table ${page.items.length ? "" : "hidden"}><thead><tr><th>published</th><th>kind</th><th>coins</th><th>what</th><th>source</th></tr></thead><tbody>${page.items.map((e) => catalystRow(e)).join("")}</tbody></table></div>` +
      (page.items.length ? "" : '<p class="muted empty">no catalyst events yet (omc collect --once announcements)</p>');
  } catch (err) {
    body.innerHTML = errorBox(err);
  }
}

/** Events not shown yet (polled, or on an SSE alert) go on top, highlighted; a listing
 * also pops up a notice. */
async function catalystsArrived(root) {
  const tbody = root.querySelector("#catalysts tbody");
  if (!tbody || !has("/ledgers/events")) return;
  try {
    const page = await api("/ledgers/events", { query: { limit: 50 } });
    const seen = new Set([...tbody.querySelectorAll("tr")].map((r) => r.dataset.key));
    const fresh = page.items.filter((e) => !seen.has(`${e.source}/${e.event_id}`));
    if (fresh.length) { tbody.closest("table").hidden = false; root.querySelector("#catalysts .empty")?.remove(); }
    for (const e of fresh.reverse()) {
      tbody.insertAdjacentHTML("afterbegin", catalystRow(e, true));
      if (isListing(e)) toast(`listing: ${e.title}`);
    }
  } catch (_) { /* shown at the next full load */ }
}
