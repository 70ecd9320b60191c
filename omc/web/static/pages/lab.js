// Lab: a goal in words starts a study; its steps as they run; the question the planner asks
// (answer it here); the verdict with out-of-sample numbers, the trials chart and the report;
// approve or reject its model.
import { api, stream } from "../api.js";
import { TimeChart } from "../charts.js";
import { badge, debounce, esc, errorBox, formData, num, table, toast, when } from "../ui.js";
import { needs } from "./pending.js";

const enc = encodeURIComponent;

export async function render(root, { args }) {
  if (!needs(root, "Lab", [["/lab/sessions", "Lab studies"]])) return;
  return args[0] ? study(root, args[0]) : studies(root);
}

const OPTIONS = `<div class="form-grid">
  <label>Exchange <input name="exchange" placeholder="demo"></label>
  <label>Symbol <input name="symbol" placeholder="BTC/USDT"></label>
  <label>Timeframe <input name="timeframe" placeholder="5m"></label>
  <label>Horizon (bars) <input name="horizon_bars" inputmode="numeric"></label>
  <label>Trials <input name="trials" inputmode="numeric" placeholder="6"></label></div>`;

function options(d) {
  const out = {};
  for (const k of ["exchange", "symbol", "timeframe"]) if (d[k]) out[k] = d[k];
  for (const k of ["horizon_bars", "trials"]) if (d[k]) out[k] = Number(d[k]);
  return out;
}

async function studies(root) {
  root.innerHTML = `<h1>Lab</h1><div class="grid">
  <section class="card wide"><h2>New study</h2><form id="goal-form">
  <label>Goal, in words <textarea name="goal" rows="2" required maxlength="2000" placeholder="Predict whether BTC/USDT closes higher one hour from now, from momentum and volume"></textarea></label>
  ${OPTIONS}<button type="submit">Start study</button> <span class="form-status"></span></form></section>
  <section class="card wide"><h2>Your studies</h2><div id="lab-list">loading…</div></section></div>`;
  const form = root.querySelector("#goal-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const d = formData(form);
    try {
      const made = await api("/lab/sessions", { method: "POST", body: { goal: d.goal, ...options(d) } });
      location.hash = `#/lab/${enc(made.id)}`;
    } catch (err) {
      form.querySelector(".form-status").innerHTML = errorBox(err);
    }
  });
  const list = async () => {
    try {
      const page = await api("/lab/sessions", { query: { limit: 100 } });
      root.querySelector("#lab-list").innerHTML = table(
        [
          { key: "goal", label: "goal", html: (r) => `<a href="#/lab/${enc(r.id)}">${esc(r.goal.slice(0, 90))}</a>` },
          { key: "status", label: "status", html: (r) => badge(r.status) + (r.step && r.status === "running" ? ` <span class="muted">${esc(r.step)}</span>` : "") },
          { key: "verdict", label: "verdict", html: (r) => (r.verdict ? badge(r.verdict) : "") },
          { key: "approval", label: "decision", html: (r) => badge(r.approval) },
          { key: "updated_at", label: "updated", html: (r) => esc(when(r.updated_at)) },
        ],
        page.items,
        { empty: "no studies yet: write a goal above", rowAttrs: (r) => `data-study="${esc(r.id)}"` },
      );
    } catch (err) {
      root.querySelector("#lab-list").innerHTML = errorBox(err);
    }
  };
  await list();
  const timer = setInterval(list, 5000);
  return () => clearInterval(timer);
}

async function study(root, id) {
  const base = `/lab/sessions/${enc(id)}`;
  root.innerHTML = `<p><a href="#/lab">&larr; all studies</a></p><h1>Lab study</h1><div id="lab-head"></div>
  <div id="lab-question"></div><div class="grid">
  <section class="card" id="timeline"><h2>Steps</h2><ol class="timeline"></ol></section>
  <section class="card" id="verdict"><h2>Verdict</h2><div class="body"></div></section>
  <section class="card" id="trials"><h2>Trials (cross-validated score)</h2><div class="chart-box"></div></section>
  <section class="card" id="decision"><h2>Approve or reject the model</h2><div class="body"></div></section>
  <section class="card wide" id="report"><h2>Report</h2><div class="body"></div></section></div>`;
  const state = { cursor: null, last: null };
  const trials = new TimeChart(root.querySelector("#trials .chart-box"), { series: [], height: 220, xFormat: (x) => `#${Math.round(x)}` });
  const refresh = async () => {
    let s;
    try { s = await api(base); } catch (err) { root.querySelector("#lab-head").innerHTML = errorBox(err); return; }
    await timeline(root, base, state);
    const changed = JSON.stringify([s.status, s.step, s.approval, s.report]) !== state.last;
    state.last = JSON.stringify([s.status, s.step, s.approval, s.report]);
    root.querySelector("#lab-head").innerHTML = `<p><i>${esc(s.goal)}</i></p><p>${badge(s.status)} ${s.step ? `step <b>${esc(s.step)}</b>` : ""} · ${num(s.n_trials, 0)} trials · decision ${badge(s.approval)} ${s.error ? errorBox(s.error) : ""}</p>`;
    if (!changed) return;
    question(root, base, s, refresh);
    verdict(root, s);
    decision(root, base, s, refresh);
    if (s.report) {
      root.querySelector("#report .body").innerHTML = `<iframe class="report" title="Lab report" sandbox="allow-same-origin" src="${esc(s.report)}"></iframe>`;
      try {
        const data = await api(`${base}/report.json`);
        const points = (data.trials || []).filter((t) => t.score !== null).map((t) => [t.number, Number(t.score)]);
        trials.set({ series: [{ name: "score", points }], xFormat: trials.opts.xFormat });
      } catch (_) { /* the chart stays empty */ }
    } else {
      root.querySelector("#report .body").innerHTML = '<p class="muted">written when the study is done</p>';
    }
  };
  await refresh();
  const soon = debounce(refresh, 300);
  const live = stream({ lab: soon });
  const timer = setInterval(refresh, live ? 5000 : 1500);
  return () => { clearInterval(timer); if (live) live.close(); trials.resize?.disconnect(); };
}

async function timeline(root, base, state) {
  try {
    const page = await api(`${base}/events`, { query: { cursor: state.cursor } });
    const list = root.querySelector("#timeline ol");
    for (const e of page.items) {
      const row = list.querySelector(`li[data-step="${CSS.escape(e.step)}"]`) || list.appendChild(document.createElement("li"));
      row.dataset.step = e.step;
      row.innerHTML = `<b>${esc(e.step)}</b> ${e.total ? `${num(e.done, 0)} / ${num(e.total, 0)}` : ""} <span class="muted">${esc(when(e.ts))}</span>`;
    }
    if (page.next_cursor) state.cursor = page.next_cursor;
    if (!list.children.length) list.innerHTML = '<li class="muted">no step events recorded for this study</li>';
    else list.querySelector("li.muted")?.remove();
  } catch (_) { /* next poll */ }
}

function question(root, base, s, refresh) {
  const box = root.querySelector("#lab-question");
  if (s.status !== "asked" || !s.question) { box.innerHTML = ""; return; }
  box.innerHTML = `<div class="question-box"><h2>The Lab asks</h2><p id="lab-ask">${esc(s.question)}</p>
  <form id="answer-form"><label>Your answer <input name="answer" required maxlength="500"></label>${OPTIONS}
  <button type="submit">Answer</button> <span class="form-status"></span></form></div>`;
  const form = box.querySelector("form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const d = formData(form);
    try {
      await api(`${base}/answer`, { method: "POST", body: { answer: d.answer, ...options(d) } });
      toast("answered: the study goes on");
      await refresh();
    } catch (err) {
      form.querySelector(".form-status").innerHTML = errorBox(err);
    }
  });
}

function verdict(root, s) {
  const box = root.querySelector("#verdict .body");
  if (!s.verdict) { box.innerHTML = '<p class="muted">not scored yet</p>'; return; }
  const rows = Object.entries(s.oos || {}).map(([k, v]) => `<dt>out-of-sample ${esc(k)}</dt><dd>${v === null ? "" : num(v, 3)}</dd>`).join("") +
    Object.entries(s.baseline || {}).map(([k, v]) => `<dt>baseline ${esc(k)}${v && typeof v === "object" ? " AUC" : ""}</dt><dd>${v === null ? "" : num(v && typeof v === "object" ? v.auc : v, 3)}</dd>`).join("");
  box.innerHTML = `<p>${badge(s.verdict)}</p><dl class="kv">${rows}</dl><ul>${(s.reasons || []).map((r) => `<li>${esc(r)}</li>`).join("")}</ul>`;
}

function decision(root, base, s, refresh) {
  const box = root.querySelector("#decision .body");
  if (["approved", "rejected"].includes(s.approval) || !["done", "pending_approval"].includes(s.status)) {
    box.innerHTML = `<p>${badge(s.approval)} ${esc(s.decision_reason || "")} ${s.decided_at ? esc(when(s.decided_at)) : ""}</p>` +
      (s.approval === "approved" ? `<p class="muted">The Floor may trade <code>model:${esc(s.id)}</code>.</p>` : "");
    return;
  }
  box.innerHTML = `<form id="decide-form"><label>Reason (needed to reject, or to approve a no-edge study) <input name="reason" maxlength="1000"></label>
  ${s.verdict === "no_edge" ? '<label><input type="checkbox" name="force"> approve anyway (no edge found)</label>' : ""}
  <button type="button" data-decide="approve">Approve</button> <button type="button" class="danger" data-decide="reject">Reject</button> <span class="form-status"></span></form>`;
  box.querySelector("form").addEventListener("click", async (e) => {
    const what = e.target.dataset.decide;
    if (!what) return;
    const d = formData(e.target.form);
    const body = { reason: d.reason || null, force: !!d.force };
    try {
      await api(`${base}/${what}`, { method: "POST", body });
      toast(what === "approve" ? "model approved" : "model rejected");
      await refresh();
    } catch (err) {
      box.querySelector(".form-status").innerHTML = errorBox(err);
    }
  });
}
