// blurcli review page: cards to toggle each face track, a still to draw missed regions on, and a
// button that saves the edited report (the plan for --plan). No network: everything is on this page
// or beside it. What each action means is decided by blurcli when it renders the plan; this page
// only edits "action" and "regions" and marks who decided.
"use strict";

const DATA = JSON.parse(document.getElementById("review-data").textContent);
const single = !Array.isArray(DATA.report);
const entries = single ? [DATA.report] : DATA.report;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function clock(seconds) {
  const m = Math.floor(seconds / 60);
  const s = seconds - 60 * m;
  return `${m}:${s.toFixed(2).padStart(5, "0")}`;
}

function toolAction(item) { return item.identity ? "kept" : "hidden"; }

function items(entry) { return entry.tracks || entry.faces || []; }

function itemId(entry, item, index) { return entry.tracks ? item.track_id : index; }

function summary() {
  let hidden = 0, kept = 0, changed = 0, regions = 0;
  for (const entry of entries) {
    for (const item of items(entry)) {
      if (item.action === "kept") kept++; else hidden++;
      if (item.action !== toolAction(item)) changed++;
    }
    regions += (entry.regions || []).length;
  }
  document.getElementById("summary").textContent =
    `${hidden + kept} face(s): ${hidden} hidden, ${kept} kept; ${changed} changed by you; ${regions} region(s) added`;
}

function describe(entry, item) {
  if (!entry.tracks) return "photo";
  const fps = entry.fps || 30;
  return `${clock(item.first_frame / fps)} – ${clock(item.last_frame / fps)} (frames ${item.first_frame}–${item.last_frame})`;
}

function identityText(entry, item) {
  const samples = item.samples || [];
  if (entry.faces) {
    if (item.identity) return `${item.identity}, distance ${item.distance}`;
    return item.distance == null ? "unknown (not compared)" : `unknown (nearest ${item.distance})`;
  }
  if (!samples.length) return item.identity ? item.identity : "unknown (not compared)";
  const best = samples.reduce((a, b) => (b.distance < a.distance ? b : a));
  if (item.identity) return `${item.identity}, distance ${best.distance} (${samples.length} sample(s))`;
  return `unknown (nearest ${best.name || "nobody"} ${best.distance}, ${samples.length} sample(s))`;
}

function card(entry, view, item, index, redraw, seek) {
  const id = itemId(entry, item, index);
  const thumbs = el("div", { class: "thumbs" });
  for (const t of (view.thumbs || {})[id] || []) {
    const when = entry.tracks ? `frame ${t.frame} (${clock(t.frame / (entry.fps || 30))})` : "face";
    const thumb = el("img", { src: t.src, alt: `face ${id}, ${when}`, title: `${when}: show this moment on the still` });
    thumb.addEventListener("click", () => seek(t.frame));
    thumbs.append(thumb);
  }
  const badge = el("span", { class: "badge" });
  const changed = el("span", { class: "changed" });
  const toggle = el("button", { type: "button", class: "toggle" });
  const node = el("article", { class: "card", "data-track-id": String(id) },
    thumbs,
    el("div", { class: "line", text: `${entry.tracks ? "track" : "face"} ${id} · ${describe(entry, item)}` }),
    el("div", { class: "line identity", text: identityText(entry, item) }),
    el("div", { class: "line" }, badge, " ", toggle, " ", changed));
  function show() {
    node.dataset.action = item.action;
    badge.textContent = item.action;
    toggle.textContent = item.action === "hidden" ? "Keep sharp" : "Hide";
    const mine = item.action !== toolAction(item);
    item.decided_by = mine ? "plan" : "tool";
    changed.textContent = mine ? `changed by you (blurcli: ${toolAction(item)})` : "";
  }
  toggle.addEventListener("click", () => {
    item.action = item.action === "hidden" ? "kept" : "hidden";
    show();
    summary();
    redraw();
  });
  show();
  return node;
}

function lerpBox(keys, frame) {
  const sorted = keys.slice().sort((a, b) => a[0] - b[0]);
  if (frame <= sorted[0][0]) return sorted[0].slice(1, 5);
  const last = sorted[sorted.length - 1];
  if (frame >= last[0]) return last.slice(1, 5);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1], b = sorted[i];
    if (frame <= b[0]) {
      const t = (frame - a[0]) / (b[0] - a[0]);
      return [1, 2, 3, 4].map((k) => a[k] + t * (b[k] - a[k]));
    }
  }
  return last.slice(1, 5);
}

function editor(entry, view, fileIndex) {
  const video = Boolean(entry.tracks);
  const fps = entry.fps || 30;
  const stills = view.stills || [];
  entry.regions = entry.regions || [];
  let current = 0;
  let draft = [];  // keyframes [frame, x0, y0, x1, y1] of the region being drawn
  let drag = null;

  const img = el("img", { class: "still", alt: "still to draw regions on", draggable: "false" });
  const canvas = el("canvas", { class: "overlay", "data-file": String(fileIndex) });
  const stage = el("div", { class: "stage" }, img, canvas);
  const slider = el("input", { type: "range", class: "still-slider", min: "0", max: String(Math.max(0, stills.length - 1)), value: "0" });
  const when = el("span", { class: "still-time" });
  const from = el("input", { type: "number", class: "region-from", step: "0.01", min: "0" });
  const to = el("input", { type: "number", class: "region-to", step: "0.01", min: "0" });
  const add = el("button", { type: "button", class: "add-region" }, "Add region");
  const clear = el("button", { type: "button", class: "clear-region" }, "Clear");
  const hint = el("span", { class: "hint" });
  const list = el("ol", { class: "regions" });
  const controls = el("div", { class: "controls" });
  if (video) controls.append(slider, when, el("span", { text: "hide from" }), from, el("span", { text: "s to" }), to, el("span", { text: "s" }));
  controls.append(add, clear, hint);

  function frameOf(index) { return stills.length ? stills[index].frame : 0; }
  function scale() { return entry.width / canvas.width; }

  function redraw() {
    const rect = img.getBoundingClientRect();
    canvas.width = Math.max(1, Math.round(rect.width));
    canvas.height = Math.max(1, Math.round(rect.height));
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const k = 1 / scale();
    const frame = frameOf(current);
    const byId = new Map(items(entry).map((item, i) => [itemId(entry, item, i), item]));
    ctx.lineWidth = 2;
    for (const [id, x0, y0, x1, y1] of (stills[current] || {}).boxes || []) {
      const item = byId.get(id);
      ctx.setLineDash(item && item.action === "kept" ? [] : [6, 3]);
      ctx.strokeStyle = item && item.action === "kept" ? "#2e7d32" : "#c62828";
      ctx.strokeRect(x0 * k, y0 * k, (x1 - x0) * k, (y1 - y0) * k);
    }
    ctx.setLineDash([]);
    ctx.fillStyle = "rgba(249, 168, 37, 0.35)";
    ctx.strokeStyle = "#f9a825";
    for (const region of entry.regions) {
      const first = region.first_frame ?? region.keyframes[0][0];
      const last = region.last_frame ?? region.keyframes[region.keyframes.length - 1][0];
      if (frame < first || frame > last) continue;
      const [x0, y0, x1, y1] = lerpBox(region.keyframes, frame);
      ctx.fillRect(x0 * k, y0 * k, (x1 - x0) * k, (y1 - y0) * k);
      ctx.strokeRect(x0 * k, y0 * k, (x1 - x0) * k, (y1 - y0) * k);
    }
    ctx.setLineDash([4, 3]);
    for (const [, x0, y0, x1, y1] of draft.length ? [[0, ...lerpBox(draft, frame)]] : []) {
      ctx.strokeRect(x0 * k, y0 * k, (x1 - x0) * k, (y1 - y0) * k);
    }
    if (drag) ctx.strokeRect(drag.x0, drag.y0, drag.x1 - drag.x0, drag.y1 - drag.y0);
    ctx.setLineDash([]);
  }

  function showStill(index) {
    current = index;
    const still = stills[index];
    if (!still) return;
    img.src = still.src;
    when.textContent = `${clock(still.frame / fps)} (frame ${still.frame})`;
    redraw();
  }

  function updateHint() {
    if (!draft.length) hint.textContent = "Drag on the picture to draw a box.";
    else if (draft.length === 1) hint.textContent = video ? "One box. Draw it on another still for a moving box, or add it." : "Add it, or draw again.";
    else hint.textContent = `A box moving over ${draft.length} keyframes.`;
    add.disabled = !draft.length;
  }

  function setRange() {
    if (!video || !draft.length) return;
    const frames = draft.map((k) => k[0]);
    const first = Math.min(...frames);
    const last = draft.length > 1 ? Math.max(...frames) : Math.min(entry.frames - 1, first + Math.round(fps));
    from.value = (first / fps).toFixed(2);
    to.value = (last / fps).toFixed(2);
  }

  function point(event) {
    const rect = canvas.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }

  canvas.addEventListener("mousedown", (event) => {
    const [x, y] = point(event);
    drag = { x0: x, y0: y, x1: x, y1: y };
    event.preventDefault();
  });
  canvas.addEventListener("mousemove", (event) => {
    if (!drag) return;
    [drag.x1, drag.y1] = point(event);
    redraw();
  });
  window.addEventListener("mouseup", () => {
    if (!drag) return;
    const s = scale();
    const box = [Math.min(drag.x0, drag.x1), Math.min(drag.y0, drag.y1), Math.max(drag.x0, drag.x1), Math.max(drag.y0, drag.y1)].map((v) => Math.round(v * s * 10) / 10);
    drag = null;
    if (box[2] - box[0] >= 4 && box[3] - box[1] >= 4) {
      const frame = frameOf(current);
      draft = draft.filter((k) => k[0] !== frame);
      draft.push([frame, ...box]);
      draft.sort((a, b) => a[0] - b[0]);
      setRange();
    }
    updateHint();
    redraw();
  });

  function renderList() {
    list.replaceChildren();
    entry.regions.forEach((region, i) => {
      const range = video ? `${clock(region.first_frame / fps)} – ${clock(region.last_frame / fps)}, ` : "";
      const remove = el("button", { type: "button", class: "remove-region" }, "Remove");
      remove.addEventListener("click", () => { entry.regions.splice(i, 1); renderList(); summary(); redraw(); });
      list.append(el("li", { "data-region-id": region.id }, `region ${region.id}: ${range}${region.keyframes.length} keyframe(s) `, remove));
    });
  }

  add.addEventListener("click", () => {
    if (!draft.length) return;
    let first = 0, last = 0;
    if (video) {
      first = Math.max(0, Math.round(Number(from.value) * fps));
      last = Math.min(entry.frames - 1, Math.round(Number(to.value) * fps));
      if (!(last >= first)) { hint.textContent = "The range ends before it starts."; hint.className = "hint error"; return; }
    }
    hint.className = "hint";
    const used = new Set(entry.regions.map((r) => r.id));
    let n = entry.regions.length + 1;
    while (used.has(`r${n}`)) n++;
    entry.regions.push({ id: `r${n}`, keyframes: draft, first_frame: first, last_frame: last, action: "hidden", decided_by: "plan" });
    draft = [];
    updateHint();
    renderList();
    summary();
    redraw();
  });
  clear.addEventListener("click", () => { draft = []; updateHint(); redraw(); });
  slider.addEventListener("input", () => showStill(Number(slider.value)));
  img.addEventListener("load", redraw);
  window.addEventListener("resize", redraw);

  updateHint();
  renderList();
  showStill(0);
  function seek(frame) {  // the still nearest to a frame (a thumbnail's)
    let best = 0;
    stills.forEach((still, i) => { if (Math.abs(still.frame - frame) < Math.abs(stills[best].frame - frame)) best = i; });
    slider.value = String(best);
    showStill(best);
  }
  return { node: el("div", { class: "editor" }, stage, controls, list), redraw, seek };
}

function build() {
  const root = document.getElementById("files");
  entries.forEach((entry, i) => {
    const view = DATA.views[i] || {};
    const section = el("section", { class: "file", "data-file": String(i) });
    section.append(el("h2", { text: entry.input }));
    if (entry.error) {
      section.append(el("p", { class: "error", text: `not reviewed: ${entry.error}` }));
      root.append(section);
      return;
    }
    const meta = entry.tracks
      ? `${entry.width}×${entry.height}, ${entry.frames} frames at ${Number(entry.fps).toFixed(2)} fps, ${entry.tracks.length} face track(s)`
      : `${entry.width}×${entry.height} photo, ${entry.faces.length} face(s)`;
    section.append(el("p", { class: "meta", text: meta }));
    const ed = editor(entry, view, i);
    const cards = el("div", { class: "cards" });
    items(entry).forEach((item, k) => cards.append(card(entry, view, item, k, ed.redraw, ed.seek)));
    if (!items(entry).length) cards.append(el("p", { class: "hint", text: "No face found. Draw a region on the still if one was missed." }));
    section.append(el("div", { class: "layout" }, cards, ed.node));
    root.append(section);
  });
  summary();
}

document.getElementById("save-plan").addEventListener("click", () => {
  const text = JSON.stringify(single ? entries[0] : entries, null, 2) + "\n";
  const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  const link = el("a", { href: url, download: "plan.json" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  document.getElementById("saved").textContent =
    "plan.json saved to your downloads: render it with --plan plan.json";
});

build();
