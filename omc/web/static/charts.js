// Hand-written canvas charts (no library): time series lines and areas, candles, trade
// markers, with zoom (wheel, pinch-free buttons, drag to pan, double-click to reset) and a
// hover read-out; an SVG sparkline and an SVG heatmap.

const css = (name, fallback) =>
  getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;

function lowerBound(xs, x) {
  let lo = 0, hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

function niceTicks(lo, hi, count = 4) {
  const span = hi - lo || Math.abs(hi) || 1;
  const step0 = span / count;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) || step0;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
  return out;
}

export function fmtValue(v) {
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(2) + "M";
  if (a >= 1e4) return v.toFixed(0);
  if (a >= 100) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

function fmtTime(t, span) {
  const iso = new Date(t).toISOString();
  if (span > 12 * 86400e3) return iso.slice(5, 10);
  if (span > 86400e3) return iso.slice(5, 10) + " " + iso.slice(11, 13) + "h";
  return iso.slice(11, 16);
}

export class TimeChart {
  /** opts: {series: [{name, color, points: [[t_ms, v]], area?}], candles: [{t,o,h,l,c}],
   *  markers: [{t, v, side: "buy"|"sell", label}], format: v => text, height,
   *  initialBars: show only the last N candles at first, xFormat: x => text (not times)} */
  constructor(el, opts = {}) {
    this.el = el;
    el.classList.add("chart");
    if (opts.height) el.style.height = `${opts.height}px`;
    el.innerHTML = "";
    this.canvas = document.createElement("canvas");
    this.tip = document.createElement("div");
    this.tip.className = "tip";
    el.append(this.canvas, this.tip);
    this.hover = null;
    this.set(opts);
    this._events();
    if (typeof ResizeObserver !== "undefined") {
      this.resize = new ResizeObserver(() => this.draw());
      this.resize.observe(el);
    }
  }

  /** New data; with keepView a zoomed-in view stays (a full view follows the new data). */
  set(opts, keepView = false) {
    const zoomed = this.view && (this.view[0] !== this.extent[0] || this.view[1] !== this.extent[1]);
    this.opts = { format: fmtValue, ...opts };
    const xs = [];
    for (const s of this.opts.series || []) if (s.points.length) xs.push(s.points[0][0], s.points[s.points.length - 1][0]);
    const c = this.opts.candles || [];
    if (c.length) xs.push(c[0].t, c[c.length - 1].t);
    this.extent = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
    if (this.extent[0] === this.extent[1]) this.extent = [this.extent[0] - 1, this.extent[1] + 1];
    if (!keepView || !zoomed) {
      this.view = [...this.extent];
      const n = this.opts.initialBars;
      if (n && c.length > n) this.view = [c[c.length - n].t, this.extent[1]];
    }
    this.draw();
  }

  zoom(factor, center) {
    const [a, b] = this.view;
    const c = center ?? (a + b) / 2;
    const minSpan = (this.extent[1] - this.extent[0]) / 2000;
    let lo = c - (c - a) * factor, hi = c + (b - c) * factor;
    if (hi - lo < minSpan) return;
    this.view = this._clamp(lo, hi);
    this.draw();
  }

  reset() { this.view = [...this.extent]; this.draw(); }

  _clamp(lo, hi) {
    const [e0, e1] = this.extent;
    const span = Math.min(hi - lo, e1 - e0);
    if (lo < e0) { lo = e0; hi = e0 + span; }
    if (hi > e1) { hi = e1; lo = e1 - span; }
    return [lo, hi];
  }

  _box() {
    const w = this.el.clientWidth, h = this.el.clientHeight;
    return { w, h, l: 6, r: w - 58, t: 8, b: h - 20 };
  }

  _x(t, box) { return box.l + ((t - this.view[0]) / (this.view[1] - this.view[0])) * (box.r - box.l); }
  _t(x, box) { return this.view[0] + ((x - box.l) / (box.r - box.l)) * (this.view[1] - this.view[0]); }

  _events() {
    const cv = this.canvas;
    cv.addEventListener("wheel", (e) => {
      e.preventDefault();
      const box = this._box();
      this.zoom(e.deltaY < 0 ? 0.8 : 1.25, this._t(e.offsetX, box));
    }, { passive: false });
    let drag = null;
    cv.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, view: [...this.view] }; cv.setPointerCapture(e.pointerId); });
    cv.addEventListener("pointerup", () => { drag = null; });
    cv.addEventListener("pointermove", (e) => {
      const box = this._box();
      if (drag) {
        const dt = ((drag.x - e.clientX) / (box.r - box.l)) * (drag.view[1] - drag.view[0]);
        this.view = this._clamp(drag.view[0] + dt, drag.view[1] + dt);
      }
      this.hover = e.offsetX;
      this.draw();
    });
    cv.addEventListener("pointerleave", () => { this.hover = null; this.tip.style.display = "none"; this.draw(); });
    cv.addEventListener("dblclick", () => this.reset());
  }

  /** Zoom buttons for this chart, appended to `where`. */
  tools(where) {
    const bar = document.createElement("div");
    bar.className = "chart-tools";
    bar.innerHTML = '<button type="button" class="secondary" data-z="in" title="zoom in">+</button>' +
      '<button type="button" class="secondary" data-z="out" title="zoom out">&minus;</button>' +
      '<button type="button" class="secondary" data-z="reset" title="show all">all</button>';
    bar.addEventListener("click", (e) => {
      const z = e.target.dataset.z;
      if (z === "in") this.zoom(0.5);
      else if (z === "out") this.zoom(2);
      else if (z === "reset") this.reset();
    });
    where.append(bar);
    return bar;
  }

  draw() {
    const box = this._box();
    if (box.w <= 0 || box.h <= 0) return;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = box.w * dpr;
    this.canvas.height = box.h * dpr;
    const g = this.canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, box.w, box.h);
    const [v0, v1] = this.view;
    const candles = this.opts.candles || [];
    const ct = candles.map((c) => c.t);
    const ci0 = Math.max(0, lowerBound(ct, v0) - 1), ci1 = Math.min(candles.length, lowerBound(ct, v1) + 1);
    const visible = (this.opts.series || []).map((s) => {
      const ts = s.points.map((p) => p[0]);
      return { s, pts: s.points.slice(Math.max(0, lowerBound(ts, v0) - 1), lowerBound(ts, v1) + 1) };
    });
    let lo = Infinity, hi = -Infinity;
    for (let i = ci0; i < ci1; i++) { lo = Math.min(lo, candles[i].l); hi = Math.max(hi, candles[i].h); }
    for (const { s, pts } of visible) {
      for (const p of pts) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); }
      if (s.area) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
    }
    if (!Number.isFinite(lo)) { g.fillStyle = css("--muted", "#888"); g.fillText("no data", box.w / 2 - 20, box.h / 2); return; }
    if (lo === hi) { lo -= Math.abs(lo) * 0.01 || 1; hi += Math.abs(hi) * 0.01 || 1; }
    const padY = (hi - lo) * 0.06; lo -= padY; hi += padY;
    const y = (v) => box.b - ((v - lo) / (hi - lo)) * (box.b - box.t);
    const line = css("--line", "#ddd"), muted = css("--muted", "#888");
    g.font = "11px system-ui, sans-serif";
    g.strokeStyle = line; g.fillStyle = muted; g.lineWidth = 1;
    for (const v of niceTicks(lo, hi)) {
      const yy = Math.round(y(v)) + 0.5;
      g.beginPath(); g.moveTo(box.l, yy); g.lineTo(box.r, yy); g.stroke();
      g.fillText(this.opts.format(v), box.r + 4, yy + 4);
    }
    const span = v1 - v0;
    for (let i = 0; i <= 4; i++) {
      const t = v0 + (span * (i + 0.5)) / 5;
      g.fillText(this.opts.xFormat ? this.opts.xFormat(t) : fmtTime(t, span), this._x(t, box) - 18, box.h - 5);
    }
    g.save();
    g.beginPath(); g.rect(box.l, box.t, box.r - box.l, box.b - box.t); g.clip();
    const up = css("--up", "#16a34a"), down = css("--down", "#dc2626");
    const n = ci1 - ci0;
    if (n > 0 && n <= (box.r - box.l) / 2) {
      const bw = Math.max(1, ((box.r - box.l) / n) * 0.7);
      for (let i = ci0; i < ci1; i++) {
        const c = candles[i], xx = this._x(c.t, box);
        g.strokeStyle = g.fillStyle = c.c >= c.o ? up : down;
        g.beginPath(); g.moveTo(xx, y(c.h)); g.lineTo(xx, y(c.l)); g.stroke();
        const top = y(Math.max(c.o, c.c)), bot = y(Math.min(c.o, c.c));
        g.fillRect(xx - bw / 2, top, bw, Math.max(1, bot - top));
      }
    } else if (n > 0) {
      g.strokeStyle = css("--accent", "#2563eb"); g.beginPath();
      for (let i = ci0; i < ci1; i++) { const xx = this._x(candles[i].t, box); i === ci0 ? g.moveTo(xx, y(candles[i].c)) : g.lineTo(xx, y(candles[i].c)); }
      g.stroke();
    }
    for (const { s, pts } of visible) {
      if (!pts.length) continue;
      g.strokeStyle = s.color || css("--accent", "#2563eb"); g.lineWidth = 1.5;
      g.beginPath();
      pts.forEach((p, i) => (i ? g.lineTo(this._x(p[0], box), y(p[1])) : g.moveTo(this._x(p[0], box), y(p[1]))));
      g.stroke();
      if (s.area) {
        g.lineTo(this._x(pts[pts.length - 1][0], box), y(0)); g.lineTo(this._x(pts[0][0], box), y(0));
        g.globalAlpha = 0.2; g.fillStyle = s.color || down; g.fill(); g.globalAlpha = 1;
      }
    }
    for (const m of this.opts.markers || []) {
      if (m.t < v0 || m.t > v1) continue;
      const xx = this._x(m.t, box), yy = y(m.v), buy = m.side === "buy";
      g.fillStyle = buy ? up : down; g.beginPath();
      if (buy) { g.moveTo(xx, yy + 2); g.lineTo(xx - 5, yy + 10); g.lineTo(xx + 5, yy + 10); }
      else { g.moveTo(xx, yy - 2); g.lineTo(xx - 5, yy - 10); g.lineTo(xx + 5, yy - 10); }
      g.fill();
    }
    g.restore();
    this._hover(g, box, candles, visible, y);
  }

  _hover(g, box, candles, visible, y) {
    if (this.hover === null || this.hover < box.l || this.hover > box.r) { this.tip.style.display = "none"; return; }
    const t = this._t(this.hover, box);
    const parts = [];
    let at = t;
    if (candles.length) {
      const i = Math.min(candles.length - 1, lowerBound(candles.map((c) => c.t), t));
      const c = candles[i]; at = c.t;
      parts.push(`O ${fmtValue(c.o)} H ${fmtValue(c.h)} L ${fmtValue(c.l)} C ${fmtValue(c.c)}`);
    }
    for (const { s, pts } of visible) {
      if (!pts.length) continue;
      const i = Math.min(pts.length - 1, lowerBound(pts.map((p) => p[0]), t));
      if (!candles.length) at = pts[i][0];
      parts.push(`${s.name}: ${this.opts.format(pts[i][1])}`);
    }
    const xx = this._x(at, box);
    g.strokeStyle = css("--muted", "#888"); g.setLineDash([3, 3]);
    g.beginPath(); g.moveTo(xx, box.t); g.lineTo(xx, box.b); g.stroke(); g.setLineDash([]);
    const head = this.opts.xFormat ? this.opts.xFormat(at) : new Date(at).toISOString().replace("T", " ").slice(0, 16);
    this.tip.innerHTML = `${head}<br>${parts.join("<br>")}`;
    this.tip.style.display = "block";
    this.tip.style.left = `${Math.min(xx + 8, box.w - 190)}px`;
    this.tip.style.top = "6px";
  }
}

/** An inline SVG sparkline of `values` (oldest first). */
export function sparkline(values, width = 110, height = 28) {
  const vs = values.filter((v) => Number.isFinite(v));
  if (vs.length < 2) return `<svg class="spark" width="${width}" height="${height}"></svg>`;
  const lo = Math.min(...vs), hi = Math.max(...vs), span = hi - lo || 1;
  const pts = vs.map((v, i) => `${((i / (vs.length - 1)) * (width - 2) + 1).toFixed(1)},${(height - 2 - ((v - lo) / span) * (height - 4)).toFixed(1)}`);
  const color = vs[vs.length - 1] >= vs[0] ? css("--up", "#16a34a") : css("--down", "#dc2626");
  return `<svg class="spark" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}"><polyline fill="none" stroke="${color}" stroke-width="1.5" points="${pts.join(" ")}"/></svg>`;
}

/** An SVG heatmap: cells[y][x] values, labelled by xs and ys (a parameter sweep). */
export function heatmap(xs, ys, cells, { xLabel = "", yLabel = "", format = fmtValue } = {}) {
  const flat = cells.flat().filter((v) => Number.isFinite(v));
  const lo = Math.min(...flat), hi = Math.max(...flat), span = hi - lo || 1;
  const cw = 56, ch = 26, left = 60, top = 8;
  const color = (v) => {
    if (!Number.isFinite(v)) return "#9993";
    const f = (v - lo) / span;
    return `hsl(${Math.round(f * 120)},65%,${45 + (1 - Math.abs(f - 0.5) * 2) * 10}%)`;
  };
  let svg = `<svg class="heatmap" width="${left + cw * xs.length + 4}" height="${top + ch * ys.length + 40}" font-size="11">`;
  ys.forEach((yv, j) => {
    svg += `<text x="${left - 6}" y="${top + j * ch + 17}" text-anchor="end" fill="currentColor">${yv}</text>`;
    xs.forEach((xv, i) => {
      const v = cells[j][i];
      svg += `<rect x="${left + i * cw}" y="${top + j * ch}" width="${cw - 2}" height="${ch - 2}" fill="${color(v)}"><title>${xLabel}=${xv} ${yLabel}=${yv}: ${Number.isFinite(v) ? format(v) : "n/a"}</title></rect>`;
      svg += `<text x="${left + i * cw + cw / 2 - 1}" y="${top + j * ch + 17}" text-anchor="middle" fill="#111">${Number.isFinite(v) ? format(v) : ""}</text>`;
    });
  });
  xs.forEach((xv, i) => { svg += `<text x="${left + i * cw + cw / 2}" y="${top + ch * ys.length + 14}" text-anchor="middle" fill="currentColor">${xv}</text>`; });
  svg += `<text x="${left}" y="${top + ch * ys.length + 32}" fill="currentColor">x: ${xLabel}, y: ${yLabel}</text></svg>`;
  return svg;
}
