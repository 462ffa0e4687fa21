// Draws a clap map (mapview.map_data) on a canvas: points, region names,
// legend, "artist – title" on hover; onPick(id, label) on a click.
"use strict";

function clapMap(container, data, onPick) {
  const n = data.ids.length;
  container.textContent = "";
  const canvas = document.createElement("canvas");
  canvas.className = "clap-map-canvas";
  const tip = document.createElement("div");
  tip.className = "clap-map-tip";
  tip.hidden = true;
  const legend = document.createElement("ul");
  legend.className = "clap-map-legend";
  for (const entry of data.legend) {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "clap-map-swatch";
    swatch.style.background = entry.colour;
    li.append(swatch, document.createTextNode(entry.name));
    legend.append(li);
  }
  container.append(canvas, tip, legend);

  const MARGIN = 24;
  const radius = n < 2000 ? 3.5 : n < 20000 ? 2 : 1.2;
  let width = 0, height = 0, grid = new Map(), cell = 10;

  function place(i) {
    return {
      x: MARGIN + data.x[i] * (width - 2 * MARGIN),
      y: MARGIN + data.y[i] * (height - 2 * MARGIN),
    };
  }

  function draw() {
    width = Math.max(container.clientWidth - 2, 200); // inside the border
    height = Math.round(Math.min(Math.max(width * 0.7, 240), 760));
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, width, height);
    grid = new Map();
    let drawn = 0;
    for (let i = 0; i < n; i++) {
      const p = place(i);
      ctx.fillStyle = data.palette[data.colour[i]] || "#999999";
      ctx.beginPath();
      ctx.arc(p.x, p.y, radius, 0, 2 * Math.PI);
      ctx.fill();
      const key = Math.floor(p.x / cell) + "," + Math.floor(p.y / cell);
      if (!grid.has(key)) grid.set(key, []);
      grid.get(key).push(i);
      if (p.x >= 0 && p.x <= width && p.y >= 0 && p.y <= height) drawn++;
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.font = "600 13px system-ui, sans-serif";
    ctx.lineJoin = "round";
    const taken = [];
    for (const region of data.regions) {
      const x = MARGIN + region.x * (width - 2 * MARGIN);
      let y = MARGIN + region.y * (height - 2 * MARGIN);
      // Names never overlap: move one down a line until it is clear.
      const half = ctx.measureText(region.name).width / 2 + 4;
      const clashes = () => taken.some((b) =>
        x - half < b.right && x + half > b.left && Math.abs(y - b.y) < 16);
      for (let tries = 0; tries < 20 && clashes(); tries++) y += 16;
      taken.push({ left: x - half, right: x + half, y });
      ctx.lineWidth = 4;
      ctx.strokeStyle = "rgba(255,255,255,0.9)";
      ctx.strokeText(region.name, x, y);
      ctx.fillStyle = "#222222";
      ctx.fillText(region.name, x, y);
    }
    canvas.dataset.points = String(drawn);
    canvas.dataset.regions = String(data.regions.length);
  }

  function nearest(x, y) {
    const cx = Math.floor(x / cell), cy = Math.floor(y / cell);
    let best = -1, bestDist = (radius + 5) ** 2;
    for (let dx = -1; dx <= 1; dx++) {
      for (let dy = -1; dy <= 1; dy++) {
        for (const i of grid.get(cx + dx + "," + (cy + dy)) || []) {
          const p = place(i);
          const d = (p.x - x) ** 2 + (p.y - y) ** 2;
          if (d <= bestDist) { best = i; bestDist = d; }
        }
      }
    }
    return best;
  }

  function pointer(event) {
    const box = canvas.getBoundingClientRect();
    return nearest(event.clientX - box.left, event.clientY - box.top);
  }

  canvas.addEventListener("mousemove", (event) => {
    const i = pointer(event);
    if (i < 0) { tip.hidden = true; canvas.style.cursor = ""; return; }
    const p = place(i);
    tip.textContent = data.hover[i];
    tip.hidden = false;
    tip.style.left = (canvas.offsetLeft + p.x + 10) + "px";
    tip.style.top = (canvas.offsetTop + p.y + 10) + "px";
    canvas.style.cursor = onPick ? "pointer" : "default";
  });
  canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
  if (onPick) {
    canvas.addEventListener("click", (event) => {
      const i = pointer(event);
      if (i >= 0) onPick(data.ids[i], data.hover[i]);
    });
  }
  window.addEventListener("resize", draw);
  draw();
  // For scripts and tests: where point i is drawn, relative to the canvas.
  container.clapMap = { count: n, position: place, redraw: draw };
  return container.clapMap;
}
