// Overview: live CoinSpot prices with sparklines, a candle chart (zoom, timeframe), sentiment
// per coin over time, TVL moves, the catalyst feed (listings highlighted as they arrive) and
// the freshness of every source.
import { all, api, has, stream } from "../api.js";
import { TimeChart, sparkline } from "../charts.js";
import { ago, badge, esc, errorBox, num, pct, signClass, table, unavailable, when } from "../ui.js";

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
    tick: () => prices(root),
    alert: (a) => catalystArrived(root, a),
  });
  document.getElementById("live").classList.toggle("on", !!live);
  await Promise.all([prices(root), freshness(root), sentiment(root), tvl(root), catalysts(root)]);
  const chart = setupCandles(root);
  timers.push(setInterval(() => prices(root), POLL_MS));
  timers.push(setInterval(() => freshness(root), 6 * POLL_MS));
  return () => {
    timers.forEach(clearInterval);
    if (live) live.close();
    document.getElementById("live").classList.remove("on");
    chart.resize?.disconnect();
  };
}

async function prices(root) {
  const body = root.querySelector("#prices .body");
  try {
    const page = await api("/ledgers/prices/latest", { query: { source: "coinspot", limit: 1000 } });
    const ticks = has("/ledgers/ticks") ? await tickHistory(page.items) : null;
    for (const p of page.items) {
      const h = history.get(p.coin) || [];
      const t = Date.parse(p.ts);
      if (!h.length || h[h.length - 1][0] !== t) h.push([t, Number(p.last)]);
      history.set(p.coin, h.slice(-120));
    }
    const rows = page.items.map((p) => {
      const series = (ticks && ticks.get(p.coin)) || history.get(p.coin) || [];
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
      { empty: "no CoinSpot prices in the last 24 h: run `omc collect coinspot` (needs internet)", rowAttrs: (r) => `data-coin="${esc(r.coin)}"` },
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
      const page = await api("/ledgers/ticks", { query: { coin: p.coin, source: "coinspot", start, limit: 1000 } });
      out.set(p.coin, page.items.filter((t) => (t.market || p.market) === p.market).map((t) => [Date.parse(t.ts), Number(t.last)]));
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
    const rows = data.items || data;
    body.innerHTML = table(
      [
        { key: "source", label: "source" },
        { key: "status", label: "status", html: (r) => badge(r.status) },
        { key: "last_row", label: "last row", html: (r) => `<span title="${esc(when(r.last_row))}">${ago(r.last_row)}</span>` },
        { key: "last_run", label: "last run", html: (r) => `<span title="${esc(when(r.last_run))}">${ago(r.last_run)}</span>` },
      ],
      rows,
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
    const items = await all("/ledgers/sentiment", { start, limit: 1000 }, 5);
    const byCoin = new Map();
    for (const s of items) {
      const coin = s.coin || s.symbol || "all";
      const v = Number(s.score ?? s.value ?? s.sentiment);
      if (!Number.isFinite(v)) continue;
      if (!byCoin.has(coin)) byCoin.set(coin, []);
      byCoin.get(coin).push([Date.parse(s.ts), v]);
    }
    if (!byCoin.size) { body.innerHTML = '<p class="muted">no sentiment in the last 30 days</p>'; return; }
    body.innerHTML = "";
    const colors = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2"];
    const series = [...byCoin.entries()].slice(0, 6).map(([name, points], i) => ({ name, color: colors[i], points: points.sort((a, b) => a[0] - b[0]) }));
    const legend = document.createElement("p");
    legend.innerHTML = series.map((s) => `<span style="color:${s.color}">&#9632;</span> ${esc(s.name)}`).join(" &nbsp; ");
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
    const items = await all("/ledgers/protocols", { limit: 1000 }, 3);
    const by = new Map();
    for (const p of items) {
      const name = p.protocol || p.name || p.slug;
      if (!by.has(name)) by.set(name, []);
      by.get(name).push(p);
    }
    const rows = [...by.entries()].map(([name, list]) => {
      list.sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts));
      const first = Number(list[0].tvl), last = Number(list[list.length - 1].tvl);
      return { name, tvl: last, change: first ? last / first - 1 : null, series: list.map((p) => Number(p.tvl)), ts: list[list.length - 1].ts };
    }).sort((a, b) => Math.abs(b.change || 0) - Math.abs(a.change || 0));
    body.innerHTML = table(
      [
        { key: "name", label: "protocol" },
        { key: "tvl", label: "TVL", num: true, html: (r) => num(r.tvl, 0) },
        { key: "change", label: "move", num: true, html: (r) => `<span class="${signClass(r.change)}">${r.change === null ? "" : pct(r.change)}</span>` },
        { key: "s", label: "trend", html: (r) => sparkline(r.series) },
      ],
      rows.slice(0, 20),
      { empty: "no protocol TVL stored" },
    );
  } catch (err) {
    body.innerHTML = errorBox(err);
  }
}

function isListing(e) {
  return /listing/i.test(`${e.kind || ""} ${e.type || ""} ${e.event_type || ""} ${e.category || ""}`);
}

function catalystRow(e, fresh = false) {
  const cls = [isListing(e) ? "listing" : "", fresh ? "highlight" : ""].join(" ");
  const title = e.title || e.headline || e.text || e.message || "";
  return `<tr class="${cls}"><td>${esc(when(e.ts || e.published_at || e.created_at))}</td><td>${badge(e.kind || e.type || e.event_type || "event")}</td><td>${esc(e.coin || e.symbol || "")}</td><td>${isListing(e) ? "<b>&#9733; </b>" : ""}${esc(title)}</td></tr>`;
}

async function catalysts(root) {
  const body = root.querySelector("#catalysts .body");
  if (!has("/ledgers/events")) { body.innerHTML = unavailable("Catalyst feed"); return; }
  try {
    const page = await api("/ledgers/events", { query: { limit: 50 } });
    const items = [...page.items].sort((a, b) => Date.parse(b.ts || 0) - Date.parse(a.ts || 0));
    body.innerHTML = `<table><thead><tr><th>at</th><th>kind</th><th>coin</th><th>what</th></tr></thead><tbody>${items.map((e) => catalystRow(e, isListing(e))).join("")}</tbody></table>` +
      (items.length ? "" : '<p class="muted">no catalyst events yet</p>');
  } catch (err) {
    body.innerHTML = errorBox(err);
  }
}

function catalystArrived(root, alert) {
  const tbody = root.querySelector("#catalysts tbody");
  if (tbody) tbody.insertAdjacentHTML("afterbegin", catalystRow(alert, true));
}
