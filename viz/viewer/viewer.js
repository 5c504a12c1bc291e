// gradlab attention viewer. Hand-written, no framework, no network: everything it shows is in the page.
"use strict";
(function () {
const SVGNS = "http://www.w3.org/2000/svg";
const D = JSON.parse(document.getElementById("gradlab-data").textContent);
const T = D.T;
const TRI = T * (T + 1) / 2;  // stored values per (layer, head): row i holds keys 0..i
const HEAD_COLORS = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442"];
const MODEL_COLORS = ["#0072b2", "#d55e00"];

// ---- data ----------------------------------------------------------------------------------------------
function bytesOf(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let k = 0; k < bin.length; k++) out[k] = bin.charCodeAt(k);
  return out;
}
function decode16(b64) {
  const b = bytesOf(b64);
  const out = new Float64Array(b.length / 2);
  for (let k = 0; k < out.length; k++) out[k] = (b[2 * k] | (b[2 * k + 1] << 8)) / 65535;
  return out;
}
const models = D.models.map(m => ({
  name: m.name, hasSink: m.has_sink, L: m.n_layer, H: m.n_head,
  attn: decode16(m.attn), sink: decode16(m.sink), sum: m.sum, sinkSum: m.sink_sum, metrics: m.metrics,
}));
const NL = models[0].L, NH = models[0].H;
// Attn[layer, head, query i, key j]; 0 for the masked future j > i.
function weight(m, l, h, i, j) { return j > i ? 0 : m.attn[(l * NH + h) * TRI + i * (i + 1) / 2 + j]; }
function pseudo(m, l, h, i) { return m.sink[(l * NH + h) * T + i]; }
const lut = [];
for (let k = 0; k < 256; k++) lut.push("#" + D.lut.substr(6 * k, 6));
function rgbOf(hex) { return [parseInt(hex.substr(1, 2), 16), parseInt(hex.substr(3, 2), 16), parseInt(hex.substr(5, 2), 16)]; }
const lutRgb = lut.map(rgbOf);
function mapColor(v) { return lutRgb[Math.max(0, Math.min(255, Math.round(v * 255)))]; }
// Diverging map for differences in [-1, 1]: blue, near-white at 0, red.
function divColor(d) {
  const t = Math.max(-1, Math.min(1, d));
  const mid = [247, 247, 247], neg = [33, 102, 172], pos = [178, 24, 43];
  const end = t < 0 ? neg : pos, a = Math.abs(t);
  return [0, 1, 2].map(c => Math.round(mid[c] + (end[c] - mid[c]) * a));
}
function hexOf(rgb) { return "#" + rgb.map(v => v.toString(16).padStart(2, "0")).join(""); }

// ---- state ---------------------------------------------------------------------------------------------
const state = { view: "head", model: 0, layer: 0, heads: [0], query: -1, enlarged: null };
function readHash() {
  for (const part of location.hash.replace(/^#/, "").split("&")) {
    const [k, v] = part.split("=");
    if (k === "view" && ["head", "model", "compare", "metrics"].includes(v)) state.view = v;
    if (k === "layer") state.layer = Math.max(0, Math.min(NL - 1, parseInt(v, 10) || 0));
    if (k === "head") state.heads = [Math.max(0, Math.min(NH - 1, parseInt(v, 10) || 0))];
    if (k === "enlarge") state.enlarged = [state.layer, state.heads[0]];
    if (k === "query") state.query = Math.max(-1, Math.min(T - 1, parseInt(v, 10)));
    if (k === "heads") {
      const hs = (v || "").split(",").map(x => parseInt(x, 10)).filter(h => h >= 0 && h < NH);
      if (hs.length) state.heads = hs;
    }
    if (k === "model") state.model = Math.max(0, Math.min(models.length - 1, parseInt(v, 10) || 0));
  }
}

// ---- SVG helpers ---------------------------------------------------------------------------------------
function el(tag, attrs, parent) {
  const e = document.createElementNS(SVGNS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}
function txt(parent, x, y, s, attrs) {
  const t = el("text", Object.assign({ x: x, y: y, "font-size": 11, fill: "#1a1a1a" }, attrs || {}), parent);
  t.textContent = s;
  return t;
}
function newSvg(w, h) {
  const s = el("svg", { xmlns: SVGNS, width: w, height: h, viewBox: "0 0 " + w + " " + h });
  const defs = el("defs", {}, s);
  const p = el("pattern", { id: "hatch", patternUnits: "userSpaceOnUse", width: 6, height: 6 }, defs);
  el("rect", { width: 6, height: 6, fill: "#e4e4e4" }, p);
  el("path", { d: "M-1 2.5L2.5 -1M-1 8.5L8.5 -1", stroke: "#b8b8b8", "stroke-width": 1.4 }, p);
  el("rect", { width: "100%", height: "100%", fill: "#ffffff" }, s);
  return s;
}
// A T x T heatmap as a pixel image (one pixel per cell, scaled without smoothing); future cells transparent.
function heatImage(valueAt, colorOf) {
  const c = document.createElement("canvas");
  c.width = T; c.height = T;
  const g = c.getContext("2d");
  const img = g.createImageData(T, T);
  for (let i = 0; i < T; i++)
    for (let j = 0; j <= i; j++) {
      const rgb = colorOf(valueAt(i, j)), k = 4 * (i * T + j);
      img.data[k] = rgb[0]; img.data[k + 1] = rgb[1]; img.data[k + 2] = rgb[2]; img.data[k + 3] = 255;
    }
  g.putImageData(img, 0, 0);
  return c.toDataURL("image/png");
}
// Draws one heatmap panel at (x, y), cell px per token; returns its group. The hatched staircase is the future.
function heatPanel(parent, x, y, cell, valueAt, colorOf, meta) {
  const g = el("g", { transform: "translate(" + x + "," + y + ")", "data-panel": meta || "" }, parent);
  const side = T * cell;
  let d = "M" + cell + " 0H" + side + "V" + (side - cell);
  for (let k = T - 1; k >= 1; k--) d += "H" + k * cell + "V" + (k - 1) * cell;
  el("path", { d: d + "Z", fill: "url(#hatch)" }, g);
  el("image", { x: 0, y: 0, width: side, height: side, href: heatImage(valueAt, colorOf), preserveAspectRatio: "none",
                style: "image-rendering:pixelated", "image-rendering": "pixelated" }, g);
  el("rect", { x: -0.5, y: -0.5, width: side + 1, height: side + 1, fill: "none", stroke: "#444", "stroke-width": 1 }, g);
  return g;
}
// The pseudo mass 1 - sum_j Attn_ij of each row (a strategy with a sink key, such as StableMask), as a
// separate column right of a panel at (x, y).
function sinkColumn(parent, x, y, cell, m, l, h) {
  const g = el("g", { "data-sink": l + "," + h }, parent);
  const c = document.createElement("canvas");
  c.width = 1; c.height = T;
  const ctx = c.getContext("2d"), img = ctx.createImageData(1, T);
  for (let i = 0; i < T; i++) {
    const rgb = mapColor(pseudo(m, l, h, i));
    img.data[4 * i] = rgb[0]; img.data[4 * i + 1] = rgb[1]; img.data[4 * i + 2] = rgb[2]; img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  const w = Math.max(cell, 10);
  el("image", { x: x, y: y, width: w, height: T * cell, href: c.toDataURL("image/png"), preserveAspectRatio: "none",
                style: "image-rendering:pixelated", "image-rendering": "pixelated" }, g);
  el("rect", { x: x - 0.5, y: y - 0.5, width: w + 1, height: T * cell + 1, fill: "none", stroke: "#444" }, g);
  txt(g, x + w / 2, y - 4, "sink", { "text-anchor": "middle", "font-size": 10, fill: "#666" });
  return w;
}
// Every k-th label so that labels are at least `need` px apart.
function labelStep(cell, need) { let k = 1; while (k * cell < need) k *= 2; return k; }
// Token labels on both axes of a panel whose top-left is (x, y).
function axisLabels(parent, x, y, cell) {
  const k = labelStep(cell, 12);
  const side = T * cell;
  for (let p = 0; p < T; p += k) {
    const c = (p + 0.5) * cell;
    txt(parent, x - 4, y + c + 3.5, D.tokens[p], { "text-anchor": "end", "font-size": 10 });
    txt(parent, x - 34, y + c + 3.5, String(p), { "text-anchor": "end", "font-size": 8.5, fill: "#777" });
    const t = txt(parent, 0, 0, D.tokens[p], { "text-anchor": "end", "font-size": 10,
                                                transform: "translate(" + (x + c + 3.5) + "," + (y + side + 4) + ") rotate(-90)" });
    t.setAttribute("x", 0);
    txt(parent, 0, 0, String(p), { "text-anchor": "end", "font-size": 8.5, fill: "#777",
                                   transform: "translate(" + (x + c + 3) + "," + (y + side + 34) + ") rotate(-90)" });
  }
  txt(parent, x - 56, y + side / 2, "query", { "text-anchor": "middle", fill: "#666",
                                               transform: "rotate(-90 " + (x - 56) + " " + (y + side / 2) + ")" });
  txt(parent, x + side / 2, y + side + 66, "key", { "text-anchor": "middle", fill: "#666" });
}
function colorBar(parent, x, y, h, colorOf, lo, hi, caption) {
  const g = el("g", { "data-colorbar": caption }, parent);
  const n = 64;
  for (let k = 0; k < n; k++) {
    const v = hi - (k + 0.5) / n * (hi - lo);
    el("rect", { x: x, y: y + k * h / n, width: 14, height: h / n + 0.5, fill: hexOf(colorOf(v)) }, g);
  }
  el("rect", { x: x - 0.5, y: y - 0.5, width: 15, height: h + 1, fill: "none", stroke: "#444" }, g);
  for (let k = 0; k <= 4; k++) {
    const v = lo + (hi - lo) * k / 4, yy = y + h - h * k / 4;
    el("line", { x1: x + 15, x2: x + 19, y1: yy, y2: yy, stroke: "#444" }, g);
    txt(g, x + 22, yy + 4, String(Math.round(v * 100) / 100), { "font-size": 10 });
  }
  txt(g, x + 58, y + h / 2, caption, { "text-anchor": "middle", fill: "#555",
                                       transform: "rotate(-90 " + (x + 58) + " " + (y + h / 2) + ")" });
  return g;
}
// Mouse position over a panel's image -> (i, j), or null outside.
function cellAt(evt, g) {
  const r = g.querySelector("image").getBoundingClientRect();
  const j = Math.floor((evt.clientX - r.left) / r.width * T), i = Math.floor((evt.clientY - r.top) / r.height * T);
  return i >= 0 && i < T && j >= 0 && j < T ? [i, j] : null;
}
const tip = document.getElementById("tooltip");
function showTip(evt, s) {
  tip.textContent = s; tip.hidden = false;
  tip.style.left = (evt.clientX + 14) + "px"; tip.style.top = (evt.clientY + 12) + "px";
}
function hideTip() { tip.hidden = true; }
function fmt(v) { return v.toFixed(4); }
function tokAt(p) { return "'" + D.tokens[p] + "'"; }

// ---- head view -----------------------------------------------------------------------------------------
function headView() {
  const m = models[state.model], l = state.layer;
  const row = T > 96 ? 12 : 16, top = 96, qx = 170, kx = 470;
  const s = newSvg(760, top + T * row + 30);
  s.setAttribute("data-view", "head"); s.setAttribute("data-layer", l); s.setAttribute("data-heads", state.heads.join(","));
  txt(s, 20, 22, m.name + " \u00b7 layer " + l + " \u00b7 head" + (state.heads.length > 1 ? "s " : " ") + state.heads.join(", "),
      { "font-size": 14, "font-weight": "bold" });
  txt(s, 20, 40, "hover or tap a query (left) to see where it looks; line opacity = attention weight", { fill: "#666" });
  txt(s, qx, top - 12, "queries", { "text-anchor": "end", fill: "#666" });
  txt(s, kx, top - 12, "keys", { fill: "#666" });
  const yOf = p => top + (p + 0.5) * row;
  const sinkY = top - 34;
  if (m.hasSink) {
    el("rect", { x: kx - 4, y: sinkY - 10, width: 150, height: 16, fill: "#f2f2f2", stroke: "#999" }, s);
    txt(s, kx, sinkY + 2, "sink (pseudo mass)", { "data-key": "sink", fill: "#333" });
  }
  const highlight = el("g", {}, s);
  const lines = el("g", { id: "head-lines" }, s);
  for (let p = 0; p < T; p++) {
    const q = txt(s, qx, yOf(p) + 4, D.tokens[p], { "text-anchor": "end", class: "tok", "data-query": p });
    txt(s, qx - 40, yOf(p) + 4, String(p), { "text-anchor": "end", "font-size": 9, fill: "#888" });
    txt(s, kx, yOf(p) + 4, D.tokens[p], { "data-key-token": p });
    const enter = () => { state.query = p; drawLines(); };
    q.addEventListener("mouseenter", enter);
    q.addEventListener("click", enter);
  }
  function drawLines() {
    lines.replaceChildren(); highlight.replaceChildren();
    const queries = state.query >= 0 ? [state.query] : [...Array(T).keys()];
    const dim = state.query >= 0 ? 1 : 0.5;
    for (const q of s.querySelectorAll(".tok")) q.classList.toggle("active", +q.getAttribute("data-query") === state.query);
    state.heads.forEach((h, hi) => {
      const color = HEAD_COLORS[h % HEAD_COLORS.length];
      for (const i of queries) {
        for (let j = 0; j <= i; j++) {
          const w = weight(m, l, h, i, j);
          if (state.query < 0 && w < 0.02) continue;
          el("line", { x1: qx + 6, y1: yOf(i), x2: kx - 6, y2: yOf(j), stroke: color, "stroke-width": state.query >= 0 ? 1 + 5 * w : 1,
                       "stroke-opacity": (w * dim).toFixed(4), "data-head": h, "data-query": i, "data-key": j, "data-weight": w }, lines);
          if (state.query >= 0 && hi === 0) {
            el("rect", { x: kx - 4, y: yOf(j) - row / 2, width: 70, height: row, fill: color, "fill-opacity": w.toFixed(4) }, highlight);
            if (w >= 0.01) txt(highlight, kx + 24, yOf(j) + 4, w.toFixed(3), { "font-size": 10, fill: "#333" });
          }
        }
        if (m.hasSink) {
          const w = pseudo(m, l, h, i);
          if (state.query >= 0 || w >= 0.02)
            el("line", { x1: qx + 6, y1: yOf(i), x2: kx - 6, y2: sinkY - 2, stroke: color, "stroke-width": state.query >= 0 ? 1 + 5 * w : 1,
                         "stroke-dasharray": "4 3", "stroke-opacity": (w * dim).toFixed(4), "data-head": h, "data-query": i,
                         "data-key": "sink", "data-weight": w }, lines);
          if (state.query >= 0 && hi === 0) txt(highlight, kx + 154, sinkY + 2, w.toFixed(3), { "font-size": 10, fill: "#333" });
        }
      }
    });
  }
  s.addEventListener("mouseleave", () => { state.query = -1; drawLines(); });
  if (Number.isNaN(state.query)) state.query = -1;
  drawLines();
  return s;
}

// ---- model view ----------------------------------------------------------------------------------------
function modelView() {
  const m = models[state.model];
  const cell = Math.max(1, Math.floor(128 / T)), side = T * cell, gap = 26, left = 60, top = 60;
  const gridW = left + NH * (side + gap), gridH = top + NL * (side + gap);
  const big = state.enlarged;
  const bigCell = Math.max(2, Math.floor(512 / T)), bigSide = T * bigCell;
  const W = gridW + 110 + (big ? bigSide + 170 : 0), H = Math.max(gridH + 20, big ? bigSide + top + 110 : 0);
  const s = newSvg(W, H);
  s.setAttribute("data-view", "model");
  txt(s, 20, 22, m.name + " \u00b7 every layer and head (click a panel to enlarge it)", { "font-size": 14, "font-weight": "bold" });
  for (let h = 0; h < NH; h++) txt(s, left + h * (side + gap) + side / 2, top - 8, "head " + h, { "text-anchor": "middle", fill: "#555" });
  for (let l = 0; l < NL; l++) {
    txt(s, left - 10, top + l * (side + gap) + side / 2, "layer " + l,
        { "text-anchor": "middle", fill: "#555", transform: "rotate(-90 " + (left - 10) + " " + (top + l * (side + gap) + side / 2) + ")" });
    for (let h = 0; h < NH; h++) {
      const g = heatPanel(s, left + h * (side + gap), top + l * (side + gap), cell, (i, j) => weight(m, l, h, i, j), mapColor, l + "," + h);
      g.setAttribute("class", "panel");
      if (big && big[0] === l && big[1] === h)
        el("rect", { x: -3, y: -3, width: side + 6, height: side + 6, fill: "none", stroke: "#d55e00", "stroke-width": 2 }, g);
      g.addEventListener("click", () => { state.enlarged = [l, h]; state.layer = l; state.heads = [h]; render(); });
      g.addEventListener("mousemove", e => {
        const c = cellAt(e, g);
        if (!c) return hideTip();
        showTip(e, "layer " + l + " head " + h + "\nquery " + c[0] + " " + tokAt(c[0]) + "\nkey   " + c[1] + " " + tokAt(c[1]) +
                   "\nweight " + (c[1] > c[0] ? "masked" : fmt(weight(m, l, h, c[0], c[1]))));
      });
      g.addEventListener("mouseleave", hideTip);
    }
  }
  colorBar(s, gridW, top, Math.min(300, NL * (side + gap) - gap), mapColor, 0, 1, "attention weight");
  if (big) {
    const [l, h] = big, bx = gridW + 110 + 90, by = top;
    txt(s, bx, top - 8 - 14, "layer " + l + " \u00b7 head " + h, { "font-size": 13, "font-weight": "bold" });
    const g = heatPanel(s, bx, by, bigCell, (i, j) => weight(m, l, h, i, j), mapColor, "enlarged " + l + "," + h);
    g.setAttribute("id", "enlarged");
    axisLabels(s, bx, by, bigCell);
    if (m.hasSink) sinkColumn(s, bx + bigSide + 8, by, bigCell, m, l, h);
    g.addEventListener("mousemove", e => {
      const c = cellAt(e, g);
      if (!c) return hideTip();
      showTip(e, "query " + c[0] + " " + tokAt(c[0]) + "\nkey   " + c[1] + " " + tokAt(c[1]) + "\nweight " +
                 (c[1] > c[0] ? "masked" : fmt(weight(m, l, h, c[0], c[1]))));
    });
    g.addEventListener("mouseleave", hideTip);
  }
  return s;
}

// ---- compare view --------------------------------------------------------------------------------------
function compareView() {
  const l = state.layer, h = state.heads[0];
  if (models.length < 2) {
    const s = newSvg(700, 80);
    s.setAttribute("data-view", "compare");
    txt(s, 20, 40, "This file holds one model: write it with two (--model A --model B, or --mask both) to compare.",
        { "font-size": 13, "data-note": "one model" });
    return s;
  }
  const [A, B] = models;
  const cell = Math.max(2, Math.floor(300 / T)), side = T * cell, gap = 115, left = 110, top = 70;
  const barsX = left + 3 * side + 2 * gap + 30;
  const W = barsX + 190, H = top + side + 110;
  const s = newSvg(W, H);
  s.setAttribute("data-view", "compare"); s.setAttribute("data-layer", l); s.setAttribute("data-heads", h);
  txt(s, 20, 22, "layer " + l + " \u00b7 head " + h + ": " + A.name + " vs " + B.name, { "font-size": 14, "font-weight": "bold" });
  const panels = [
    [A.name, (i, j) => weight(A, l, h, i, j), mapColor],
    [B.name, (i, j) => weight(B, l, h, i, j), mapColor],
    [A.name + " \u2212 " + B.name, (i, j) => weight(A, l, h, i, j) - weight(B, l, h, i, j), divColor],
  ];
  panels.forEach(([name, f, cmap], k) => {
    const x = left + k * (side + gap);
    txt(s, x + side / 2, top - 10, name, { "text-anchor": "middle", "font-size": 12 });
    const g = heatPanel(s, x, top, cell, f, cmap, "compare " + k);
    axisLabels(s, x, top, cell);
    if (k < 2 && models[k].hasSink) sinkColumn(s, x + side + 6, top, cell, models[k], l, h);
    g.addEventListener("mousemove", e => {
      const c = cellAt(e, g);
      if (!c) return hideTip();
      const [i, j] = c;
      showTip(e, "query " + i + " " + tokAt(i) + "\nkey   " + j + " " + tokAt(j) + (j > i ? "\nmasked" :
                 "\n" + A.name + " " + fmt(weight(A, l, h, i, j)) + "\n" + B.name + " " + fmt(weight(B, l, h, i, j)) +
                 "\nA \u2212 B " + fmt(weight(A, l, h, i, j) - weight(B, l, h, i, j))));
    });
    g.addEventListener("mouseleave", hideTip);
  });
  colorBar(s, barsX, top, side, mapColor, 0, 1, "weight (A, B)");
  colorBar(s, barsX + 95, top, side, divColor, -1, 1, "A \u2212 B");
  return s;
}

// ---- metrics view --------------------------------------------------------------------------------------
function niceCeil(x) {
  const e = Math.pow(10, Math.floor(Math.log10(x)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * e >= x - 1e-12) return m * e;
  return 10 * e;
}
function metricsView() {
  const [r0, r1] = D.models[0].stats_rows;
  let uniformShare = 0;
  for (let i = r0; i <= r1; i++) uniformShare += 1 / (i + 1);
  uniformShare /= r1 - r0 + 1;
  const names = [];
  for (const m of models) for (const mt of m.metrics) if (!names.includes(mt.name)) names.push(mt.name);
  const groups = NL * NH, bar = models.length === 2 ? 7 : 10, gw = bar * models.length + 6;
  const cw = Math.max(360, 70 + groups * gw + 60), ch = 200;
  const cols = Math.max(1, Math.min(2, Math.floor(1400 / (cw + 30))));
  const rows = Math.ceil(names.length / cols);
  const s = newSvg(cols * (cw + 30) + 20, 60 + rows * (ch + 40));
  s.setAttribute("data-view", "metrics");
  txt(s, 20, 22, "per head (L = layer, H = head; first-token rows " + D.models[0].stats_rows.join("..") + ")",
      { "font-size": 14, "font-weight": "bold" });
  models.forEach((m, k) => {
    el("rect", { x: 500 + k * 170, y: 12, width: 12, height: 12, fill: MODEL_COLORS[k] }, s);
    txt(s, 516 + k * 170, 22, m.name);
  });
  names.forEach((name, n) => {
    const x0 = 20 + (n % cols) * (cw + 30), y0 = 50 + Math.floor(n / cols) * (ch + 40);
    const g = el("g", { "data-metric": name }, s);
    txt(g, x0, y0 + 10, name, { "font-size": 12, "font-weight": "bold" });
    let hi = 0, lo = 0;
    for (const m of models) { const mt = m.metrics.find(t => t.name === name); if (mt) for (const v of mt.values) if (v !== null) { hi = Math.max(hi, v); lo = Math.min(lo, v); } }
    hi = niceCeil(Math.max(hi * 1.15, lo + 1e-9));
    if (hi > 1 && hi <= 1.15 + 1e-9 && lo >= 0) hi = 1.2;  // masses and shares: just above 1
    const px = x0 + 50, py = y0 + 24, ph = ch - 60;
    const Y = v => py + ph - (v - lo) / (hi - lo) * ph;
    for (let k = 0; k <= 4; k++) {
      const v = lo + (hi - lo) * k / 4;
      el("line", { x1: px, x2: px + groups * gw, y1: Y(v), y2: Y(v), stroke: "#e6e6e6" }, g);
      txt(g, px - 5, Y(v) + 4, (Math.round(v * 1000) / 1000).toString(), { "text-anchor": "end", "font-size": 9 });
    }
    models.forEach((m, k) => {
      const mt = m.metrics.find(t => t.name === name);
      if (!mt) return;
      mt.values.forEach((v, idx) => {
        if (v === null) return;
        const x = px + idx * gw + 3 + k * bar;
        const r = el("rect", { x: x, y: Math.min(Y(v), Y(0)), width: bar - 1, height: Math.max(1, Math.abs(Y(0) - Y(v))),
                               fill: MODEL_COLORS[k], "data-value": v }, g);
        r.addEventListener("mousemove", e => showTip(e, m.name + "\nlayer " + Math.floor(idx / NH) + " head " + (idx % NH) + "\n" + name + " " + fmt(v)));
        r.addEventListener("mouseleave", hideTip);
      });
    });
    el("line", { x1: px, x2: px + groups * gw, y1: Y(0), y2: Y(0), stroke: "#444" }, g);
    if (/first-token/.test(name) && Y(uniformShare) >= py) {
      // A head that spread each row evenly over its keys would put 1/(i+1) on the first token.
      el("line", { x1: px, x2: px + groups * gw, y1: Y(uniformShare), y2: Y(uniformShare), stroke: "#666",
                   "stroke-dasharray": "5 3", "data-ref": "uniform" }, g);
      txt(g, px + groups * gw + 4, Y(uniformShare) + 4, "uniform", { "font-size": 9, fill: "#555" });
    }
    const step = labelStep(gw, 13);
    for (let idx = 0; idx < groups; idx += step)
      txt(g, 0, 0, "L" + Math.floor(idx / NH) + "H" + (idx % NH), { "text-anchor": "end", "font-size": 9,
          transform: "translate(" + (px + idx * gw + gw / 2 + 3) + "," + (py + ph + 5) + ") rotate(-90)" });
  });
  return s;
}

// ---- controls, rendering, export -----------------------------------------------------------------------
const view = document.getElementById("view");
function current() { return view.querySelector("svg"); }
function render() {
  document.querySelectorAll(".tabs button").forEach(b => b.setAttribute("aria-selected", b.dataset.view === state.view));
  document.getElementById("layer").value = state.layer;
  document.getElementById("model").value = state.model;
  document.querySelectorAll("#heads input").forEach(c => { c.checked = state.heads.includes(+c.value); });
  const make = { head: headView, model: modelView, compare: compareView, metrics: metricsView }[state.view];
  view.replaceChildren(make());
  hideTip();
}
function setup() {
  document.getElementById("title").textContent = D.title;
  document.getElementById("text").textContent = D.text;
  document.title = D.title;
  const ls = document.getElementById("layer");
  for (let l = 0; l < NL; l++) ls.add(new Option(String(l), l));
  ls.addEventListener("change", () => { state.layer = +ls.value; render(); });
  const ms = document.getElementById("model");
  models.forEach((m, k) => ms.add(new Option(m.name, k)));
  ms.addEventListener("change", () => { state.model = +ms.value; render(); });
  if (models.length < 2) document.getElementById("model-choice").hidden = true;
  const hs = document.getElementById("heads");
  for (let h = 0; h < NH; h++) {
    const lab = document.createElement("label");
    const c = document.createElement("input");
    c.type = "checkbox"; c.value = h;
    c.addEventListener("change", () => {
      const set = new Set(state.heads);
      if (c.checked) set.add(h); else if (set.size > 1) set.delete(h);
      state.heads = [...set].sort((a, b) => a - b);
      render();
    });
    const sw = document.createElement("span");
    sw.textContent = "\u25a0";
    sw.style.color = HEAD_COLORS[h % HEAD_COLORS.length];
    lab.append(c, sw, " head " + h);
    hs.appendChild(lab);
  }
  document.querySelectorAll(".tabs button").forEach(b => b.addEventListener("click", () => { state.view = b.dataset.view; render(); }));
  document.getElementById("export-svg").addEventListener("click", () => download(new Blob([exportSvg()], { type: "image/svg+xml" }), "svg"));
  document.getElementById("export-png").addEventListener("click", () => exportPng().then(b => download(b, "png")));
  document.addEventListener("keydown", onKey);
}
function onKey(e) {
  if (e.target && e.target.tagName === "SELECT") return;
  const dl = { ArrowUp: -1, ArrowDown: 1 }[e.key], dh = { ArrowLeft: -1, ArrowRight: 1 }[e.key];
  if (dl) state.layer = (state.layer + dl + NL) % NL;
  else if (dh) state.heads = [(state.heads[0] + dh + NH) % NH];
  else return;
  if (state.enlarged) state.enlarged = [state.layer, state.heads[0]];
  e.preventDefault();
  render();
}
function exportSvg() {
  return '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(current());
}
function exportPng() {
  const s = current(), w = +s.getAttribute("width"), h = +s.getAttribute("height");
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => {
      const c = document.createElement("canvas");
      c.width = w * 2; c.height = h * 2;  // twice the screen size, for slides
      const g = c.getContext("2d");
      g.scale(2, 2);
      g.drawImage(img, 0, 0);
      c.toBlob(b => (b ? resolve(b) : reject(new Error("toBlob gave nothing"))), "image/png");
    };
    img.onerror = () => reject(new Error("the SVG did not load as an image"));
    img.src = "data:image/svg+xml;base64," + btoa(unescape(encodeURIComponent(exportSvg())));
  });
}
function download(blob, ext) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "gradlab-attention-" + state.view + "-L" + state.layer + "-H" + state.heads.join("_") + "." + ext;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// ---- self-test (#selftest) -----------------------------------------------------------------------------
// Reads a float32 .npy (as gradlab writes it) from base64.
function parseNpy(b64) {
  const b = bytesOf(b64);
  if (b[0] !== 0x93 || String.fromCharCode(...b.slice(1, 6)) !== "NUMPY") throw new Error("not an .npy file");
  const hlen = b[8] | (b[9] << 8);
  const header = String.fromCharCode(...b.slice(10, 10 + hlen));
  if (!header.includes("'<f4'")) throw new Error("expected '<f4' in " + header);
  const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(",").map(s => s.trim()).filter(s => s).map(Number);
  const dv = new DataView(b.buffer, 10 + hlen);
  const out = new Float32Array(dv.byteLength / 4);
  for (let k = 0; k < out.length; k++) out[k] = dv.getFloat32(4 * k, true);
  return { shape: shape, values: out };
}
function selftest() {
  const log = [];
  let ok = true;
  const check = (cond, what) => { log.push((cond ? "ok   " : "FAIL ") + what); ok = ok && !!cond; };
  const half = D.quant_step / 2 + 1e-9;
  // 1. the embedded data decodes to the sums the writer computed, and to the .npy values when they are spliced in
  models.forEach((m, k) => {
    let sum = 0, sinkSum = 0;
    for (const v of m.attn) sum += v;
    for (const v of m.sink) sinkSum += v;
    check(Math.abs(sum - m.sum) <= m.attn.length * half, "model " + k + " (" + m.name + "): decoded sum " + sum.toFixed(4) + " vs written " + m.sum.toFixed(4));
    check(Math.abs(sinkSum - m.sinkSum) <= m.sink.length * half, "model " + k + ": pseudo-mass sum " + sinkSum.toFixed(4) + " vs written " + m.sinkSum.toFixed(4));
  });
  const refs = document.querySelectorAll("script.gradlab-npy");
  log.push("reference .npy files spliced in: " + refs.length);
  for (const r of refs) {
    const k = +r.dataset.model, m = models[k];
    const npy = parseNpy(r.textContent.trim());
    check(npy.shape.join(",") === [NL, NH, T, T].join(","), "model " + k + ": .npy shape " + npy.shape.join("x"));
    let worst = 0, worstSink = 0;
    for (let l = 0; l < NL; l++)
      for (let h = 0; h < NH; h++)
        for (let i = 0; i < T; i++) {
          let mass = 0;
          for (let j = 0; j < T; j++) {
            const ref = npy.values[((l * NH + h) * T + i) * T + j];
            if (j <= i) mass += ref;
            worst = Math.max(worst, Math.abs(weight(m, l, h, i, j) - (j <= i ? ref : 0)));
            if (j > i && ref !== 0) worst = Math.max(worst, 1);  // the future must be exactly 0 in the .npy
          }
          if (m.hasSink) worstSink = Math.max(worstSink, Math.abs(pseudo(m, l, h, i) - Math.min(1, Math.max(0, 1 - mass))));
        }
    check(worst <= half, "model " + k + ": every value within half a quantization step of the .npy (max error " + worst.toExponential(2) + ", allowed " + half.toExponential(2) + ")");
    if (m.hasSink) check(worstSink <= half + T * 1e-7, "model " + k + ": pseudo mass = 1 - row sum of the .npy (max error " + worstSink.toExponential(2) + ")");
  }
  // 2. head view: hovering query i highlights exactly row i of the chosen layer and head
  state.view = "head"; state.model = models.length - 1; state.layer = NL - 1; state.heads = [NH - 1]; render();
  const i = Math.min(T - 1, Math.max(1, Math.floor(T / 2))), m = models[state.model];
  const q = current().querySelector('.tok[data-query="' + i + '"]');
  q.dispatchEvent(new MouseEvent("mouseenter"));
  const lines = [...current().querySelectorAll("#head-lines line")];
  check(lines.length === i + 1 + (m.hasSink ? 1 : 0), "hover query " + i + ": " + lines.length + " lines (expected " + (i + 1 + (m.hasSink ? 1 : 0)) + ")");
  let rowOk = true;
  for (const ln of lines) {
    const key = ln.getAttribute("data-key"), w = +ln.getAttribute("data-weight");
    const want = key === "sink" ? pseudo(m, state.layer, NH - 1, i) : weight(m, state.layer, NH - 1, i, +key);
    rowOk = rowOk && +ln.getAttribute("data-query") === i && Math.abs(w - want) < 1e-12 && (key === "sink" || +key <= i) &&
            Math.abs(+ln.getAttribute("stroke-opacity") - w) < 1e-4;
  }
  check(rowOk, "hover query " + i + ": the lines are that row's weights (opacity = weight), keys 0.." + i + (m.hasSink ? " and the sink" : ""));
  check(q.classList.contains("active"), "hovered query is highlighted");
  // 3. keyboard: arrows move layer and head
  const before = [state.layer, state.heads[0]];
  document.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown" }));
  document.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight" }));
  check(state.layer === (before[0] + 1) % NL && state.heads[0] === (before[1] + 1) % NH && current().getAttribute("data-layer") === String(state.layer),
        "arrow keys: layer " + before[0] + " -> " + state.layer + ", head " + before[1] + " -> " + state.heads[0]);
  // 4. every panel renders; the model view enlarges a clicked panel; compare has its difference colour bar
  for (const v of ["model", "compare", "metrics", "head"]) {
    document.querySelector('.tabs button[data-view="' + v + '"]').click();
    const oneModelNote = v === "compare" && models.length < 2 && current().querySelector("[data-note]");
    check(current() && current().getAttribute("data-view") === v && (current().childElementCount > 3 || oneModelNote),
          "panel " + v + " renders (" + current().querySelectorAll("*").length + " elements" + (oneModelNote ? ", the one-model note" : "") + ")");
    if (v === "model") {
      current().querySelector('[data-panel="0,' + (NH - 1) + '"]').dispatchEvent(new MouseEvent("click"));
      check(current().querySelector("#enlarged") && state.layer === 0 && state.heads[0] === NH - 1, "model view: a click enlarges layer 0 head " + (NH - 1));
    }
    if (v === "compare" && models.length === 2) check(current().querySelector('[data-colorbar="A \u2212 B"]'), "compare view: A - B has its own colour bar");
    if (v === "compare" && models.length === 2 && models.some(x => x.hasSink))
      check(current().querySelector("[data-sink]"), "compare view: the panel of the model with a sink key has its sink column");
    if (v === "metrics") check(current().querySelectorAll("[data-metric]").length >= 3, "metrics view: " + current().querySelectorAll("[data-metric]").length + " charts");
  }
  // 5. SVG export parses as SVG and holds the view
  const svg = exportSvg();
  const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
  check(!doc.querySelector("parsererror") && doc.documentElement.tagName === "svg" && doc.querySelectorAll("text").length > T,
        "SVG export: " + svg.length + " bytes, well formed, " + doc.querySelectorAll("text").length + " texts");
  // 6. PNG export: the SVG drawn into a canvas (asynchronous: the result is written when it is done)
  const finish = () => {
    const out = document.getElementById("selftest");
    out.hidden = false;
    out.className = ok ? "pass" : "fail";
    out.textContent = (ok ? "PASS" : "FAIL") + " gradlab viewer self-test\n" + log.join("\n");
    document.title = (ok ? "PASS " : "FAIL ") + D.title;
  };
  const out = document.getElementById("selftest");
  out.hidden = false;
  out.textContent = "RUNNING gradlab viewer self-test (waiting for the PNG export)";
  exportPng().then(blob => {
    check(blob.type === "image/png" && blob.size > 1000, "PNG export: " + blob.size + " bytes of " + blob.type);
    finish();
  }, err => { check(false, "PNG export: " + err); finish(); });
}

readHash();
setup();
render();
if (location.hash.includes("selftest")) {
  try { selftest(); } catch (e) {
    const out = document.getElementById("selftest");
    out.hidden = false; out.className = "fail";
    out.textContent = "FAIL gradlab viewer self-test: " + e + "\n" + (e.stack || "");
  }
}
})();
