// The playground page: every answer comes from geolb's own Rust code compiled to
// WebAssembly (geolb_playground.js); this file only draws it.
import init, * as geolb from "./geolb_playground.js";

const $ = (id) => document.getElementById(id);
const state = {
  text: "",
  analysis: null,
  timeline: null,
  file: null,
  timer: null,
  playing: null,
};
// What the browser tests and the status line read.
const figures = { ready: false, firstRenderMs: null, lastRenderMs: null, renders: 0 };
window.geolbPlayground = figures;

// The plot's colours (geolb simulate --svg): Okabe-Ito, by sorted region name.
const colors = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"];
const MESH_DEFAULT = "mesh-default";

function answer(json) {
  const parsed = JSON.parse(json);
  if ("error" in parsed) throw new Error(parsed.error);
  return parsed.ok;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- the plan and its diagnostics ----

function analyse() {
  const started = performance.now();
  state.text = $("editor").value;
  try {
    state.analysis = answer(geolb.analyse(state.text, $("extension-api").value));
  } catch (e) {
    $("status").textContent = String(e.message);
    return;
  }
  drawDiagnostics();
  drawFiles();
  drawTopology();
  drawToggles();
  const took = performance.now() - started;
  figures.renders += 1;
  figures.lastRenderMs = took;
  if (figures.firstRenderMs === null) figures.firstRenderMs = performance.now();
  const a = state.analysis;
  $("status").textContent =
    `${a.errors} error(s), ${a.warnings} warning(s) · ` +
    (a.files ? `${Object.keys(a.files).length} files · ` : "") +
    `checked in ${took.toFixed(1)} ms`;
  figures.ready = true;
  if (!$("view-whatif").hidden) whatIf();
}

function drawDiagnostics() {
  const a = state.analysis;
  const list = $("diagnostics");
  list.replaceChildren();
  for (const d of a.diagnostics) {
    const item = el("li", { class: d.severity }, el("pre", { text: d.text }));
    if (d.start !== null) {
      item.addEventListener("click", () => {
        const editor = $("editor");
        editor.focus();
        editor.setSelectionRange(d.start, d.end);
      });
    }
    list.append(item);
  }
  $("summary").textContent = `${"plan.yaml"}: ${a.errors} error(s), ${a.warnings} warning(s)`;
  $("summary").className = a.errors ? "error" : a.warnings ? "warning" : "clean";
  drawHighlight();
}

// The editor's marks: a <pre> under the transparent textarea with the same text.
function drawHighlight() {
  const text = state.text;
  const marks = state.analysis.diagnostics
    .filter((d) => d.start !== null)
    .sort((x, y) => x.start - y.start);
  const pre = $("highlight");
  pre.replaceChildren();
  let at = 0;
  for (const d of marks) {
    if (d.start < at) continue; // overlapping marks: the first one shows
    pre.append(text.slice(at, d.start));
    pre.append(el("mark", { class: d.severity, title: `${d.message}\n${d.hint}` },
      text.slice(d.start, d.end)));
    at = d.end;
  }
  pre.append(text.slice(at) + "\n");
  syncScroll();
}

function syncScroll() {
  $("highlight").scrollTop = $("editor").scrollTop;
  $("highlight").scrollLeft = $("editor").scrollLeft;
}

// ---- the rendered files ----

function drawFiles() {
  const files = state.analysis.files;
  const tree = $("file-tree");
  tree.replaceChildren();
  if (!files) {
    $("file-name").textContent = state.analysis.renderError ?? "the plan has errors: nothing rendered";
    $("file-content").textContent = "";
    return;
  }
  const paths = Object.keys(files);
  if (!state.file || !(state.file in files)) state.file = paths[0];
  // A nested list by directory, as `ls -R` of the output directory would show it.
  const root = { dirs: new Map(), files: [] };
  for (const path of paths) {
    const parts = path.split("/");
    let node = root;
    for (const dir of parts.slice(0, -1)) {
      if (!node.dirs.has(dir)) node.dirs.set(dir, { dirs: new Map(), files: [] });
      node = node.dirs.get(dir);
    }
    node.files.push({ name: parts[parts.length - 1], path });
  }
  const draw = (node, into) => {
    for (const [name, child] of node.dirs) {
      const list = el("ul");
      draw(child, list);
      into.append(el("li", { class: "dir" }, el("span", { text: `${name}/` }), list));
    }
    for (const file of node.files) {
      into.append(el("li", {
        class: "file",
        "data-path": file.path,
        text: file.name,
        onclick: () => showFile(file.path),
      }));
    }
  };
  draw(root, tree);
  showFile(state.file);
}

function showFile(path) {
  state.file = path;
  for (const item of $("file-tree").querySelectorAll("li.file")) {
    item.classList.toggle("selected", item.dataset.path === path);
  }
  $("file-name").textContent = path;
  $("file-content").textContent = state.analysis.files[path];
}

// ---- the topology ----

function drawTopology() {
  const picture = $("topology-picture");
  const chains = $("chains");
  if (state.analysis.errors) {
    picture.replaceChildren(el("p", { text: "the plan has errors: no topology" }));
    chains.replaceChildren();
    return;
  }
  let topo;
  try {
    topo = answer(geolb.topology(state.text));
  } catch (e) {
    picture.replaceChildren(el("p", { text: String(e.message) }));
    return;
  }
  const networkColor = new Map(topo.networks.map((n, i) => [n, colors[i % colors.length]]));
  const clusterW = 210, clusterH = 74, gap = 16, head = 34;
  const most = Math.max(1, ...topo.regions.map((r) => r.clusters.length));
  const regionW = clusterW + 2 * gap;
  const width = topo.regions.length * (regionW + gap) + gap;
  const height = head + most * (clusterH + gap) + gap + (topo.networks.length ? 30 : 0);
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": "Regions, clusters, networks and east-west gateways" });
  topo.regions.forEach((region, i) => {
    const x = gap + i * (regionW + gap);
    const g = svgEl("g", { class: "region", "data-region": region.name });
    g.append(svgEl("rect", { x, y: gap / 2, width: regionW, height: height - gap - (topo.networks.length ? 30 : 0),
      rx: 8, class: region.drained ? "region-box drained" : "region-box" }));
    g.append(svgEl("text", { x: x + gap, y: gap / 2 + 22, class: "region-name" },
      region.name + (region.drained ? " (drained)" : "")));
    region.clusters.forEach((c, j) => {
      const cy = head + gap / 2 + j * (clusterH + gap);
      const color = c.network ? networkColor.get(c.network) : "#777";
      g.append(svgEl("rect", { x: x + gap, y: cy, width: clusterW, height: clusterH, rx: 5,
        class: "cluster-box", stroke: color }));
      g.append(svgEl("text", { x: x + gap + 8, y: cy + 18, class: "cluster-name" }, c.name));
      g.append(svgEl("text", { x: x + gap + 8, y: cy + 35, class: "cluster-detail" },
        `${c.role} · mesh ${c.mesh}`));
      g.append(svgEl("text", { x: x + gap + 8, y: cy + 51, class: "cluster-detail" },
        c.network ? `network ${c.network}` : "single network"));
      if (c.eastWestGateway) {
        g.append(svgEl("text", { x: x + gap + 8, y: cy + 66, class: "gateway" },
          `⇄ east-west ${c.eastWestGateway}`));
      }
    });
    svg.append(g);
  });
  topo.networks.forEach((n, i) => {
    const x = gap + i * 170;
    svg.append(svgEl("rect", { x, y: height - 24, width: 14, height: 14, fill: networkColor.get(n) }));
    svg.append(svgEl("text", { x: x + 20, y: height - 12, class: "cluster-detail" }, `network ${n}`));
  });
  picture.replaceChildren(svg);

  const table = el("table", { class: "chains" },
    el("thead", {}, el("tr", {}, el("th", { text: "service" }), el("th", { text: "runs in" }),
      el("th", { text: "from proxies in" }),
      el("th", { text: "share → the regions that take it, while the ones before have failed" }))));
  const body = el("tbody");
  for (const s of topo.services) {
    const sources = Object.entries(s.from);
    sources.forEach(([from, shares], i) => {
      const row = el("tr", { "data-service": s.name, "data-from": from });
      if (i === 0) {
        row.append(el("td", { rowspan: String(sources.length), text: s.name }),
          el("td", { rowspan: String(sources.length), text: s.regions.join(", ") }));
      }
      row.append(el("td", { text: from }), el("td", { class: "pre",
        text: shares.map((share) => `${share.weight}% → ${share.order.join(" → ")}`).join("\n") }));
      body.append(row);
    });
  }
  table.append(body);
  chains.replaceChildren(table);
}

// ---- what-if ----

function drawToggles() {
  const regions = state.analysis.regions;
  if (!regions.length) return; // a plan with errors keeps the last controls
  const from = $("from");
  const kept = from.value;
  const body = $("toggles").tBodies[0];
  const before = new Map([...body.rows].map((row) => [row.dataset.region, toggleOf(row)]));
  if (regions.join() === [...from.options].map((o) => o.value).join()) return;
  from.replaceChildren(...regions.map((r) => el("option", { value: r, text: r })));
  if (regions.includes(kept)) from.value = kept;
  body.replaceChildren();
  for (const region of regions) {
    const select = el("select", { "data-region": region, "aria-label": `${region} condition`, onchange: whatIf },
      ...["up", "down", "degraded", "drained"].map((c) => el("option", { value: c, text: c })));
    const percent = el("input", { type: "number", min: "1", max: "100", value: "50",
      "aria-label": `${region} failed percent`, onchange: whatIf });
    const old = before.get(region);
    if (old) { select.value = old.condition; percent.value = old.percent ?? 50; }
    body.append(el("tr", { "data-region": region }, el("th", { text: region }), el("td", {}, select),
      el("td", {}, percent, " % of requests fail when degraded")));
  }
}

function toggleOf(row) {
  const condition = row.querySelector("select").value;
  const percent = Number(row.querySelector("input").value);
  return { condition, percent };
}

function toggles(during) {
  const out = [];
  for (const row of $("toggles").tBodies[0].rows) {
    const { condition, percent } = toggleOf(row);
    if (condition === "up") continue;
    const toggle = { region: row.dataset.region, condition };
    if (condition === "degraded") toggle.percent = percent;
    if (during) toggle.during = during;
    out.push(toggle);
  }
  return out;
}

function whatIf() {
  const chart = $("split-chart");
  if (!state.analysis || state.analysis.errors) {
    chart.replaceChildren(el("p", { text: "the plan has errors: nothing simulated" }));
    return;
  }
  let split;
  try {
    split = answer(geolb.simulate(state.text, $("from").value, JSON.stringify(toggles())));
  } catch (e) {
    chart.replaceChildren(el("p", { class: "error", text: String(e.message) }));
    return;
  }
  chart.replaceChildren(bars(split));
}

// One stacked bar per service; each segment carries its region and percent.
function bars(split) {
  const regions = [...new Set(Object.values(split).flatMap((s) => Object.keys(s)))].sort();
  const named = regions.filter((r) => r !== MESH_DEFAULT);
  const color = (region) =>
    region === MESH_DEFAULT ? "#9e9e9e" : colors[named.indexOf(region) % colors.length];
  const box = el("div", { class: "bars" });
  for (const [service, shares] of Object.entries(split)) {
    const bar = el("div", { class: "bar" });
    for (const [region, percent] of Object.entries(shares)) {
      if (percent <= 0) continue;
      bar.append(el("span", { class: "segment", "data-region": region, "data-percent": String(percent),
        style: `width:${percent}%;background:${color(region)}`, title: `${region} ${percent}%`,
        text: percent >= 8 ? `${percent}%` : "" }));
    }
    box.append(el("div", { class: "service", "data-service": service },
      el("div", { class: "service-name", text: service }), bar));
  }
  box.append(el("div", { class: "legend" }, ...regions.map((r) =>
    el("span", {}, el("i", { style: `background:${color(r)}` }), r))));
  return box;
}

// ---- the timeline ----

function play() {
  stop();
  const during = `${$("span-start").value.trim()}..${$("span-end").value.trim()}`;
  const plot = $("timeline-plot");
  let played;
  try {
    played = answer(geolb.timeline(state.text, $("from").value, JSON.stringify(toggles(during)),
      $("length").value.trim()));
  } catch (e) {
    plot.replaceChildren(el("p", { class: "error", text: String(e.message) }));
    $("timeline-chart").replaceChildren();
    return;
  }
  state.timeline = played.timeline;
  plot.innerHTML = played.svg; // geolb's own SVG (escaped by its template)
  const slider = $("second");
  slider.max = String(played.timeline.seconds - 1);
  slider.value = "0";
  drawSecond();
  state.playing = setInterval(() => {
    if (Number(slider.value) >= Number(slider.max)) { stop(); return; }
    slider.value = String(Number(slider.value) + 1);
    drawSecond();
  }, Math.max(40, 6000 / played.timeline.seconds)); // at most about 6 s
}

function stop() {
  if (state.playing) clearInterval(state.playing);
  state.playing = null;
  $("play").textContent = "Play";
}

function drawSecond() {
  const t = state.timeline;
  if (!t) return;
  const second = Number($("second").value);
  const split = {};
  for (const [service, regions] of Object.entries(t.services)) {
    split[service] = {};
    for (const [region, series] of Object.entries(regions)) split[service][region] = series[second];
  }
  const happened = t.events.filter((e) => e.at_ms <= second * 1000)
    .map((e) => `${e.at_ms / 1000}s ${e.region} ${e.change}`);
  $("second-label").textContent = `t = ${second} s` + (happened.length ? ` · ${happened.join(" · ")}` : "");
  $("timeline-chart").replaceChildren(bars(split));
}

// ---- start ----

function showView(name) {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.setAttribute("aria-selected", String(tab.dataset.view === name));
  }
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  if (name === "whatif") whatIf();
}

function load(example) {
  $("editor").value = example.text;
  for (const b of $("examples").children) b.classList.toggle("current", b.dataset.example === example.name);
  state.file = null;
  analyse();
}

async function start() {
  await init();
  const examples = answer(geolb.examples());
  for (const example of examples) {
    $("examples").append(el("button", { "data-example": example.name, title: example.title,
      text: example.name, onclick: () => load(example) }));
  }
  $("editor").addEventListener("input", () => {
    clearTimeout(state.timer);
    state.timer = setTimeout(analyse, 120);
  });
  $("editor").addEventListener("scroll", syncScroll);
  $("extension-api").addEventListener("change", analyse);
  $("from").addEventListener("change", whatIf);
  $("play").addEventListener("click", play);
  $("second").addEventListener("input", () => { stop(); drawSecond(); });
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.addEventListener("click", () => showView(tab.dataset.view));
  }
  load(examples[0]);
}

start().catch((e) => { $("status").textContent = `the playground failed to start: ${e}`; });
