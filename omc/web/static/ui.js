// Small DOM helpers shared by the pages: escaping, number and time formats, tables, badges,
// the "not available on this server" box and the toast.

export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** A number (or decimal text) with `digits` decimals and thousands separators. */
export function num(value, digits = 2) {
  if (value === null || value === undefined || value === "") return "";
  const n = Number(value);
  if (!Number.isFinite(n)) return esc(value);
  const d = Math.abs(n) >= 1000 ? Math.min(digits, 2) : Math.abs(n) < 1 && digits < 6 && n !== 0 ? 6 : digits;
  return n.toLocaleString("en-US", { minimumFractionDigits: Math.min(d, 2), maximumFractionDigits: d });
}

export function pct(value, digits = 2) {
  if (value === null || value === undefined) return "";
  const n = Number(value) * 100;
  return `${n >= 0 ? "+" : ""}${n.toFixed(digits)}%`;
}

export function signClass(value) {
  const n = Number(value);
  return n > 0 ? "up" : n < 0 ? "down" : "";
}

export function when(value) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return esc(value);
  return d.toISOString().replace("T", " ").slice(0, 19) + "Z";
}

export function ago(value) {
  if (!value) return "never";
  const s = Math.round((Date.now() - new Date(value).getTime()) / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function badge(text) {
  return `<span class="badge ${esc(text)}">${esc(text)}</span>`;
}

/** A table: columns [{key, label, num?, wrap?, html?(row)}], rows of objects. */
export function table(columns, rows, { empty = "nothing yet", rowAttrs } = {}) {
  if (!rows.length) return `<p class="muted">${esc(empty)}</p>`;
  const head = columns.map((c) => `<th class="${c.num ? "num" : ""}">${esc(c.label)}</th>`).join("");
  const body = rows
    .map((r, i) => {
      const cells = columns
        .map((c) => `<td class="${c.num ? "num" : c.wrap ? "wrap" : ""}">${c.html ? c.html(r) : esc(r[c.key])}</td>`)
        .join("");
      return `<tr ${rowAttrs ? rowAttrs(r, i) : ""}>${cells}</tr>`;
    })
    .join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

export function unavailable(what) {
  return `<div class="unavailable" data-unavailable>${esc(what)}: not available on this server.</div>`;
}

export function errorBox(err) {
  return `<p class="error" role="alert">${esc(err && err.message ? err.message : err)}</p>`;
}

let toastTimer = null;
export function toast(message) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove("show"), 3500);
}

/** Form fields as an object (checkboxes as booleans). */
export function formData(form) {
  const out = {};
  for (const field of form.elements) {
    if (!field.name) continue;
    out[field.name] = field.type === "checkbox" ? field.checked : field.value.trim();
  }
  return out;
}

/** `fn` at most once per `ms`, run after the last call of a burst (live events). */
export function debounce(fn, ms = 400) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
