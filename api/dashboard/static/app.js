// The sitewise-edge dashboard: five tabs over the gateway's JSON (api/dashboard/feeds.py) and /deadletters.
// Every request is a same-origin fetch with credentials (a session cookie works); with api.auth: read the page
// is opened as /#token=... and sends the token as a bearer header (a fragment never reaches a server log).
"use strict";

const token = new URLSearchParams(location.hash.slice(1)).get("token");
let STALE_AFTER_S = 60;  // gateway.stale_after, from /dashboard/api/assets
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

function request(path, options = {}) {
  const headers = {...(options.headers || {})};
  if (token) headers.Authorization = "Bearer " + token;
  return fetch(path, {...options, headers, credentials: "same-origin"});
}

async function getJson(path, options) {
  const r = await request(path, options);
  const body = await r.json();
  if (!r.ok) throw new Error(body.message || r.statusText);
  return body;
}

const num = (x, d = 1) => x == null ? "" : Number(x).toLocaleString(undefined, {maximumFractionDigits: d});
const bytes = (b) => b == null ? "" : b < 1024 ? b + " B" : b < 1048576 ? num(b / 1024) + " KiB" :
  b < 1073741824 ? num(b / 1048576) + " MiB" : num(b / 1073741824, 2) + " GiB";
const duration = (s) => s == null ? "" : s < 120 ? num(s, 0) + " s" : s < 7200 ? num(s / 60, 0) + " min" :
  s < 172800 ? num(s / 3600, 1) + " h" : num(s / 86400, 1) + " d";
const ago = (t) => t == null ? "never" : duration(Date.now() / 1000 - t) + " ago";
const rows = (pairs) => pairs.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join("");
const table = (head, body) => `<tr>${head.map(h => `<th>${esc(h)}</th>`).join("")}</tr>` + body.join("");
const stateClass = (s) => ["connected", "idle", "sending", "ok"].includes(s) ? "ok" : ["starting", "throttled"].includes(s) ? "warn" : "err";

// --- tabs ---------------------------------------------------------------------------------------
const loaders = {};
let current = localStorage.getItem("sitewise-edge.tab") || "overview";
function show(tab) {
  current = tab;
  localStorage.setItem("sitewise-edge.tab", tab);
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === tab);
  for (const s of document.querySelectorAll(".tab")) s.classList.toggle("active", s.id === "tab-" + tab);
  (loaders[tab] || (() => {}))();
}
for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.tab));
function status(text, error = false) { const s = $("status"); s.textContent = text; s.className = error ? "err" : "muted"; }

// --- overview ------------------------------------------------------------------------------------
const lastRead = {};  // source -> [seconds, valuesRead]: values/s between two refreshes
async function loadOverview() {
  const o = await getJson("dashboard/api/overview");
  $("title").textContent = "sitewise-edge — " + o.gateway;
  const v = $("verdict"); v.textContent = o.status; v.className = "badge " + o.status;
  $("reasons").innerHTML = (o.reasons || []).map(r => `<div>${esc(r)}</div>`).join("");
  $("gateway-table").innerHTML = rows([["name", esc(o.gateway)], ["version", esc(o.version)],
    ["uptime", duration(o.uptimeSeconds)], ["status", `<span class="badge ${esc(o.status)}">${esc(o.status)}</span>`]]);
  const st = o.store || {}, disk = st.disk || {};
  $("store-table").innerHTML = rows([["size", bytes(st.diskBytes)], ["values accepted", num(st.valuesAccepted, 0)],
    ["values rejected", num(st.valuesRejected, 0)], ["compactions", num(st.compactions, 0)],
    ["retention", duration(st.retentionSeconds)], ["disk free", bytes(disk.freeBytes)],
    ["disk budget", bytes(st.maxDisk || disk.maxDiskBytes)], ["state", `<span class="${st.state === "ok" ? "ok" : "err"}">${esc(st.state)}</span>` +
      (st.lastError ? " " + esc(st.lastError) : "")], ["data", esc(st.dataDir)]]);
  const src = Object.entries(o.sources || {}).map(([name, s]) => {
    const prev = lastRead[name], now = o.time;
    const rate = prev && now > prev[0] ? (s.valuesRead - prev[1]) / (now - prev[0]) : null;
    lastRead[name] = [now, s.valuesRead];
    return `<tr><td>${esc(name)}</td><td>${esc(s.type)}</td><td>${esc(s.where)}</td><td class="n">${num(s.tags, 0)}</td>
      <td class="${stateClass(s.state)}">${esc(s.state)}</td><td class="n">${rate == null ? "…" : num(rate)}</td>
      <td class="n">${num(s.valuesRead, 0)}</td><td>${ago(s.lastRead)}</td><td class="err">${esc(s.lastError)}</td></tr>`;
  });
  $("sources-table").innerHTML = table(["source", "type", "endpoint", "tags", "state", "values/s", "values read",
    "last read", "last error"], src.length ? src : ['<tr><td colspan="9" class="muted">no sources configured</td></tr>']);
  const pubs = Object.entries(o.publishers || {}).map(([name, p]) =>
    `<tr><td>${esc(name)}</td><td class="${stateClass(p.state)}">${esc(p.state)}</td><td class="n">${num(p.backlogRecords, 0)}</td>
      <td class="n">${p.oldestUnsentAgeSeconds == null ? "" : duration(p.oldestUnsentAgeSeconds)}</td>
      <td class="n">${num(p.valuesPerSecond)}</td><td class="n">${num(p.valuesSent, 0)}</td>
      <td class="n">${num(p.valuesRejected, 0)}</td><td class="n">${num(p.valuesParked, 0)}</td><td class="err">${esc(p.lastError)}</td></tr>`);
  $("publishers-table").innerHTML = table(["publisher", "state", "backlog (records)", "lag", "values/s", "sent",
    "dead letters", "parked", "last error"], pubs.length ? pubs : ['<tr><td colspan="9" class="muted">no publishers configured</td></tr>']);
}
loaders.overview = () => loadOverview().catch(e => status("overview: " + e.message, true));

// --- assets tree and live values --------------------------------------------------------------
let tree = null;
const latest = {};  // stream -> {v, q, t}
const fmt = (v) => v == null ? "—" : typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) :
  typeof v === "boolean" ? String(v) : String(v);

function assetHtml(a) {
  const props = a.properties.map(p => `<tr data-stream="${esc(p.stream)}"><td class="prop" title="${esc(p.alias || p.stream)}">${esc(p.name)}</td>
      <td class="n v">—</td><td class="muted">${esc(p.unit)}</td><td class="q"></td><td class="muted t"></td>
      <td class="muted">${esc(p.kind)}</td></tr>`).join("");
  return `<details class="asset" open><summary>${esc(a.name)} <span class="muted">${esc(a.model)}</span></summary>
    <table>${props}</table><div class="children">${a.children.map(assetHtml).join("")}</div></details>`;
}

async function loadTree() {
  tree = await getJson("dashboard/api/assets");
  STALE_AFTER_S = tree.staleAfterSeconds ?? STALE_AFTER_S;
  $("stale-after").textContent = STALE_AFTER_S;
  const free = tree.streams.map(s => `<tr data-stream="${esc(s)}"><td class="prop">${esc(s)}</td><td class="n v">—</td>
    <td></td><td class="q"></td><td class="muted t"></td><td></td></tr>`).join("");
  $("tree").innerHTML = tree.assets.map(assetHtml).join("") + (free ? `<details class="asset" open>
    <summary>Data streams without an asset</summary><table>${free}</table></details>` : "") ||
    '<p class="muted">No assets: add asset models (models: in the configuration).</p>';
  for (const td of document.querySelectorAll("#tree td.prop"))
    td.addEventListener("click", () => { chosen.clear(); chosen.add(td.parentElement.dataset.stream); show("trends"); });
  paintValues(Object.keys(latest));
  buildPicker();
}

function paintValues(streams) {
  const now = Date.now();
  for (const s of streams) {
    const x = latest[s];
    for (const tr of document.querySelectorAll(`#tree tr[data-stream="${CSS.escape(s)}"]`)) {
      tr.querySelector(".v").textContent = fmt(x.v);
      tr.querySelector(".v").className = "n v q-" + x.q;
      tr.querySelector(".q").textContent = x.q === "GOOD" ? "" : x.q;
      tr.querySelector(".t").textContent = new Date(x.t).toLocaleTimeString();
      tr.classList.toggle("stale", now - x.t > STALE_AFTER_S * 1000);
    }
  }
}

// server-sent events read through fetch (EventSource cannot send a bearer token)
async function live() {
  for (;;) {
    try {
      const r = await request("dashboard/api/live");
      if (!r.ok) throw new Error((await r.json()).message || r.statusText);
      const reader = r.body.getReader(), decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, {stream: true});
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = buffer.slice(0, end); buffer = buffer.slice(end + 2);
          const data = event.split("\n").filter(l => l.startsWith("data: ")).map(l => l.slice(6)).join("\n");
          if (!data) continue;
          const changed = JSON.parse(data);
          for (const x of changed) latest[x.s] = x;
          if (tree) paintValues(current === "assets" ? Object.keys(latest) : changed.map(x => x.s));
          status("live · " + new Date().toLocaleTimeString());
        }
      }
    } catch (e) {
      status("live values: " + e.message + " (retrying)", true);
    }
    await new Promise(ok => setTimeout(ok, 1000));
  }
}
loaders.assets = () => (tree ? Promise.resolve() : loadTree()).catch(e => status("assets: " + e.message, true));

// --- trends ----------------------------------------------------------------------------------------
const chosen = new Set(JSON.parse(localStorage.getItem("sitewise-edge.chosen") || "[]"));
let range = null;  // {start, end} in ms when fixed (zoomed, panned, custom); null: the last N seconds
let plot = null, shown = null, trendTimer = null;
const COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#0969da", "#bf3989", "#57606a"];

function buildPicker() {
  if (!tree) return;
  const filter = $("pick-filter").value.toLowerCase();
  const groups = [];
  const walk = (a, path) => {
    const name = path ? path + " / " + a.name : a.name;
    const props = a.properties.filter(p => p.dataType !== "STRING" && (name + " " + p.name).toLowerCase().includes(filter));
    if (props.length) groups.push([name, props.map(p => [p.stream, p.name + (p.unit ? ` (${p.unit})` : "")])]);
    a.children.forEach(c => walk(c, name));
  };
  tree.assets.forEach(a => walk(a, ""));
  const free = tree.streams.filter(s => s.toLowerCase().includes(filter));
  if (free.length) groups.push(["Data streams without an asset", free.map(s => [s, s])]);
  $("picker").innerHTML = groups.map(([g, ps]) => `<div class="group">${esc(g)}</div>` + ps.map(([s, label]) =>
    `<label><input type="checkbox" value="${esc(s)}" ${chosen.has(s) ? "checked" : ""}> ${esc(label)}</label>`).join("")).join("");
  for (const box of document.querySelectorAll("#picker input")) box.addEventListener("change", () => {
    box.checked ? chosen.add(box.value) : chosen.delete(box.value);
    localStorage.setItem("sitewise-edge.chosen", JSON.stringify([...chosen]));
    drawTrend();
  });
}
$("pick-filter").addEventListener("input", buildPicker);

function window_() {
  if (range) return range;
  const span = Number($("range").value) * 1000, end = Date.now();
  return {start: end - span, end};
}

async function drawTrend() {
  clearTimeout(trendTimer);
  if (!tree) await loadTree();
  const streams = [...chosen].slice(0, 16);
  if (!streams.length) {
    $("trend-info").textContent = "pick one or more properties";
    if (plot) { plot.destroy(); plot = null; }
    return;
  }
  const w = window_();
  const q = streams.map(s => "stream=" + encodeURIComponent(s)).join("&");
  const points = Math.max(100, Math.min(2000, Math.round($("chart").clientWidth || 1000)));
  const began = performance.now();
  const data = await getJson(`dashboard/api/trend?${q}&start=${Math.round(w.start)}&end=${Math.round(w.end)}&points=${points}`);
  shown = data;
  const parts = data.series.map(s => [s.t.map(t => t / 1000), s.v]);
  const aligned = parts.length === 1 ? parts[0] : uPlot.join(parts);
  // one y scale per unit (temperature and pressure on one chart each keep their own axis)
  const units = [...new Set(data.series.map(s => s.unit || ""))];
  const series = [{}].concat(data.series.map((s, i) => ({
    label: s.label + (s.unit ? ` (${s.unit})` : ""), stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true,
    points: {show: s.t.length < 200}, scale: "y:" + (s.unit || ""),
  })));
  const axes = [{}].concat(units.map((u, k) => ({scale: "y:" + u, side: k % 2 ? 1 : 3, size: 60, label: u || undefined,
    grid: {show: k === 0}})));
  const opts = {
    width: Math.max(300, $("chart").clientWidth), height: 380, series, axes,
    scales: {x: {time: true, min: w.start / 1000, max: w.end / 1000}},
    cursor: {drag: {x: true, y: false}},
    hooks: {setSelect: [u => {
      if (u.select.width < 5) return;
      const a = u.posToVal(u.select.left, "x"), b = u.posToVal(u.select.left + u.select.width, "x");
      range = {start: a * 1000, end: b * 1000};
      drawTrend().catch(e => status("trend: " + e.message, true));
    }]},
  };
  if (plot) plot.destroy();
  plot = new uPlot(opts, aligned, $("chart"));
  const mode = data.series.map(s => s.mode === "raw" ? "raw" : `${duration(s.resolutionSeconds)} averages`);
  const values = data.series.reduce((n, s) => n + s.t.length, 0);
  $("trend-info").textContent = `${new Set(mode).size === 1 ? mode[0] : mode.join(", ")} · ${values.toLocaleString()} points · ` +
    `${Math.round(performance.now() - began)} ms`;
  $("chart").dataset.drawn = String(Number($("chart").dataset.drawn || 0) + 1);
  if (!range && current === "trends")  // the last N minutes: follow the present
    trendTimer = setTimeout(() => drawTrend().catch(e => status("trend: " + e.message, true)),
                            Number($("range").value) <= 21600 ? 5000 : 60000);
}
loaders.trends = () => drawTrend().catch(e => status("trend: " + e.message, true));

$("range").addEventListener("change", () => {
  const custom = $("range").value === "custom";
  $("custom-range").hidden = !custom;
  if (!custom) { range = null; loaders.trends(); }
});
$("apply-range").addEventListener("click", () => {
  const a = Date.parse($("from").value), b = Date.parse($("to").value);
  if (!(a < b)) { status("custom range: the start must be before the end", true); return; }
  range = {start: a, end: b}; loaders.trends();
});
const shift = (f) => { const w = window_(), d = (w.end - w.start) * f; range = {start: w.start + d, end: w.end + d}; loaders.trends(); };
$("pan-left").addEventListener("click", () => shift(-0.5));
$("pan-right").addEventListener("click", () => shift(0.5));
$("zoom-out").addEventListener("click", () => {
  const w = window_(), d = (w.end - w.start) / 2; range = {start: w.start - d, end: Math.min(Date.now(), w.end + d)}; loaders.trends();
});
$("csv").addEventListener("click", () => {
  if (!shown) return;
  const lines = ["stream,label,time,value,min,max"];
  for (const s of shown.series)
    s.t.forEach((t, i) => lines.push([s.stream, s.label, new Date(t).toISOString(), s.v[i] ?? "",
      s.min ? s.min[i] ?? "" : "", s.max ? s.max[i] ?? "" : ""].map(x => /[",\n]/.test(String(x)) ? `"${String(x).replace(/"/g, '""')}"` : x).join(",")));
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], {type: "text/csv"}));
  a.download = `trend-${new Date(shown.start).toISOString()}-${new Date(shown.end).toISOString()}.csv`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
});

// --- dead letters --------------------------------------------------------------------------------
function dlFilter() {
  const f = {alias: $("dl-alias").value, reason: $("dl-reason").value, state: $("dl-state").value};
  return Object.fromEntries(Object.entries(f).filter(([, v]) => v));
}
async function loadDeadLetters() {
  const d = await getJson("deadletters?" + new URLSearchParams({...dlFilter(), limit: "500"}));
  const body = d.deadLetters.map(r => {
    const e = r.entry || {}, vals = e.propertyValues || [];
    const what = e.propertyAlias || (e.assetId ? `${e.assetId} / ${e.propertyId}` : "");
    return `<tr><td><input type="checkbox" value="${esc(r.id)}"></td><td>${esc(r.publisher)}</td><td>${esc(r.state)}</td>
      <td>${esc(what)}</td><td class="n">${vals.length}</td><td class="err">${esc(r.reason)}</td>
      <td class="muted">${r.at ? new Date(r.at * 1000).toLocaleString() : ""}</td></tr>`;
  });
  $("dl-table").innerHTML = table(["", "publisher", "state", "alias / property", "values", "why", "when"],
    body.length ? body : ['<tr><td colspan="7" class="muted">no dead letters: every value was accepted</td></tr>']);
  $("dl-result").textContent = `${d.total} records, ${d.values} values`;
}
loaders.deadletters = () => loadDeadLetters().catch(e => status("dead letters: " + e.message, true));
$("dl-refresh").addEventListener("click", loaders.deadletters);
$("dl-replay").addEventListener("click", async () => {
  const ids = [...document.querySelectorAll("#dl-table input:checked")].map(b => b.value);
  const body = ids.length ? {ids} : dlFilter();
  if (!ids.length && !Object.keys(body).length) { $("dl-result").textContent = "select records, or filter first"; return; }
  if ($("dl-rewrite").value) body.rewriteAlias = $("dl-rewrite").value;
  try {
    const r = await getJson("deadletters/replay", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    $("dl-result").textContent = `${r.records} records (${r.values} values) queued for sending again`;
    await loadDeadLetters();
  } catch (e) { $("dl-result").textContent = "replay refused: " + e.message; }
});

// --- configuration ------------------------------------------------------------------------------
async function loadConfig() {
  const c = await getJson("dashboard/api/config");
  const checks = c.checks.map(k => `<tr><td class="${k.level === "note" ? "warn" : "muted"}">${esc(k.level)}</td>
    <td>${esc(k.where)}</td><td>${esc(k.message)}</td></tr>`);
  $("checks").innerHTML = table(["", "where", "finding"], [`<tr><td class="ok">ok</td><td>configuration</td>
    <td>loaded and valid: every key, model and expression checked at start</td></tr>`].concat(checks,
    (c.reasons || []).map(r => `<tr><td class="err">health</td><td></td><td>${esc(r)}</td></tr>`)));
  $("config").textContent = JSON.stringify(c.config, null, 2);
}
loaders.config = () => loadConfig().catch(e => status("configuration: " + e.message, true));

// --- start ---------------------------------------------------------------------------------------
show(current);
setInterval(() => { if (current === "overview") loaders.overview(); }, 2000);
if (current !== "overview") loadOverview().catch(() => {});
loadTree().catch(e => status("assets: " + e.message, true));
live();
