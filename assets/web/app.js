// tcplab web: the live topology, packets crossing it, the step mode, experiments, terminals.
// Everything the tests read is kept in window.tcplab.
"use strict";

const T = (window.tcplab = {
  ready: false, topo: null, status: null, events: [], frames: 0, lagMs: [], paused: false,
  drawn: 0, skippedDots: 0, folded: 0, wire: 0, received: 0, maxGapMs: 0, lastPaint: 0,
  step: { rec: null, index: -1 }, term: null,
});
const $ = (id) => document.getElementById(id);
const SVGNS = "http://www.w3.org/2000/svg";
const COLOURS = { arp: "#daa520", icmp: "#1e88e5", tcp: "#43a047", udp: "#8e24aa", igmp: "#757575", ipv6: "#9e9e9e", ip: "#616161", other: "#bdbdbd" };
const MAX_DOTS = 200;
const esc = (t) => String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

// ---- the drawing ---------------------------------------------------------------------------

const geo = { host: {}, link: {}, svg: null, overlay: null, rates: {} };

function hostGroup(name) {
  const i = T.topo.hosts.findIndex((h) => h.name === name);
  return i < 0 ? null : document.getElementById("host-" + (i + 1));
}

function centre(name) {
  if (geo.host[name]) return geo.host[name];
  const g = hostGroup(name);
  if (!g) return null;
  const b = g.querySelector("rect").getBBox();
  return (geo.host[name] = { x: b.x + b.width / 2, y: b.y + b.height / 2, top: b.y, bottom: b.y + b.height });
}

function pointsOf(el) {
  if (el.tagName === "line") return [[+el.getAttribute("x1"), +el.getAttribute("y1")], [+el.getAttribute("x2"), +el.getAttribute("y2")]];
  return el.getAttribute("points").trim().split(/\s+/).map((p) => p.split(",").map(Number));
}

// The path a packet from `from` to `to` takes on link `id` (lan-N or link-N).
function pathOf(id, from, to) {
  const a = centre(from), b = to ? centre(to) : null;
  const g = document.getElementById(id);
  if (!a || !g) return null;
  if (id.startsWith("lan-")) {
    const bus = g.querySelector("line");
    const y = +bus.getAttribute("y1");
    const edge = (c) => (c.bottom <= y ? c.bottom : c.top);
    if (!b) return [[a.x, edge(a)], [a.x, y]];
    return [[a.x, edge(a)], [a.x, y], [b.x, y], [b.x, edge(b)]];
  }
  const el = g.querySelector("line, polyline");
  if (!el) return null;
  let pts = pointsOf(el);
  const d = (p) => Math.hypot(p[0] - a.x, p[1] - a.y);
  if (d(pts[pts.length - 1]) < d(pts[0])) pts = pts.slice().reverse();
  return pts;
}

function along(pts, f) {
  const seg = [];
  let total = 0;
  for (let i = 1; i < pts.length; i++) {
    const l = Math.hypot(pts[i][0] - pts[i - 1][0], pts[i][1] - pts[i - 1][1]);
    seg.push(l);
    total += l;
  }
  let want = f * total;
  for (let i = 0; i < seg.length; i++) {
    if (want <= seg[i] || i === seg.length - 1) {
      const t = seg[i] ? Math.min(1, want / seg[i]) : 0;
      return [pts[i][0] + (pts[i + 1][0] - pts[i][0]) * t, pts[i][1] + (pts[i + 1][1] - pts[i][1]) * t];
    }
    want -= seg[i];
  }
  return pts[0];
}

const dots = [];
function launch(ev) {
  if (!ev.link) return;
  const targets = ev.to.length ? ev.to : [null];
  for (const to of targets) {
    if (dots.length >= MAX_DOTS) { T.skippedDots++; return; }
    const pts = pathOf(ev.link, ev.from, to);
    if (!pts) continue;
    const c = document.createElementNS(SVGNS, "circle");
    c.setAttribute("r", 6);
    c.setAttribute("class", "pkt p-" + ev.proto);
    c.setAttribute("fill", COLOURS[ev.proto] || "#000");
    c.setAttribute("stroke", "#000");
    geo.overlay.appendChild(c);
    dots.push({ c, pts, t0: performance.now(), dur: 700 });
    T.drawn++;
  }
}

function animate(now) {
  if (T.lastPaint) T.maxGapMs = Math.max(T.maxGapMs, now - T.lastPaint);
  T.lastPaint = now;
  for (let i = dots.length - 1; i >= 0; i--) {
    const d = dots[i];
    const f = (now - d.t0) / d.dur;
    if (f >= 1) { d.c.remove(); dots.splice(i, 1); continue; }
    const [x, y] = along(d.pts, f);
    d.c.setAttribute("cx", x);
    d.c.setAttribute("cy", y);
  }
  requestAnimationFrame(animate);
}

// Packets per second on each link, written beside it once a second.
const counted = {};
function showRates() {
  for (const id of Object.keys(geo.rates)) geo.rates[id].textContent = "";
  for (const [id, n] of Object.entries(counted)) {
    const g = document.getElementById(id);
    if (!g || !n) continue;
    if (!geo.rates[id]) {
      const el = g.querySelector("line, polyline");
      const pts = pointsOf(el);
      const [x, y] = along(pts, 0.5);
      const t = document.createElementNS(SVGNS, "text");
      t.setAttribute("x", x + 8);
      t.setAttribute("y", y + (id.startsWith("lan-") ? 18 : 4));
      t.setAttribute("class", "rate");
      geo.overlay.appendChild(t);
      geo.rates[id] = t;
    }
    geo.rates[id].textContent = n + " pkt/s";
    counted[id] = 0;
  }
}

async function loadTopology() {
  T.topo = await (await fetch("/api/topology")).json();
  $("lab").textContent = T.topo.lab;
  $("topo").innerHTML = T.topo.svg.replace(/^<\?xml[^>]*>/, "");
  geo.svg = $("topo").querySelector("svg");
  geo.overlay = document.createElementNS(SVGNS, "g");
  geo.overlay.id = "packets";
  geo.svg.appendChild(geo.overlay);
  for (const sel of ["fhost", "termnode"]) {
    for (const h of T.topo.hosts) $(sel).insertAdjacentHTML("beforeend", `<option>${esc(h.name)}</option>`);
  }
  T.topo.hosts.forEach((h, i) => {
    const g = document.getElementById("host-" + (i + 1));
    if (g) g.addEventListener("click", () => showNode(h.name));
  });
}

// ---- status --------------------------------------------------------------------------------

function portLink(port) {
  let id = null;
  T.topo.lans.forEach((l, i) => { if (l.ports.includes(port)) id = "lan-" + (i + 1); });
  T.topo.links.forEach((l, i) => { if (l.ports.includes(port)) id = "link-" + (i + 1); });
  return id;
}

function applyStatus(data) {
  T.status = data;
  const pill = $("labstate");
  if (!data.up) { pill.textContent = "not up"; pill.className = "pill down"; return; }
  const st = data.status;
  pill.textContent = st.degraded ? "degraded" : "up";
  pill.className = "pill " + (st.degraded ? "degraded" : "up");
  document.querySelectorAll("g.cut, g.cond, g.host.down").forEach((g) => g.classList.remove("cut", "cond", "down"));
  for (const n of st.nodes) {
    const g = hostGroup(n.name);
    if (g && n.state !== "running") g.classList.add("down");
    for (const i of n.interfaces) {
      const id = portLink(n.name + ":" + i.name);
      const lg = id && document.getElementById(id);
      if (lg && id.startsWith("link-") && !i.up) lg.classList.add("cut");
      if (lg && st.conditions[n.name + ":" + i.name]) lg.classList.add("cond");
    }
  }
}

function showNode(name) {
  const st = T.status && T.status.up ? T.status.status : null;
  const n = st && st.nodes.find((x) => x.name === name);
  if (!n) { $("nodeinfo").textContent = name + ": no status (lab not up?)"; return; }
  const lines = [`${n.name}: ${n.state}`];
  for (const i of n.interfaces) {
    lines.push(`  ${i.name.padEnd(10)} ${(i.up ? i.state : "down").padEnd(5)} ${i.mac} mtu ${i.mtu} ${i.addresses.join(" ")}`);
    const c = st.conditions[name + ":" + i.name];
    if (c) lines.push(`  ${"".padEnd(10)} conditions: ${c}`);
  }
  $("nodeinfo").textContent = lines.join("\n");
}

// ---- live packets --------------------------------------------------------------------------

function passes(ev) {
  const p = $("fproto").value, h = $("fhost").value;
  return (!p || ev.proto === p) && (!h || ev.from === h || ev.to.includes(h));
}

function onFrame(f) {
  T.frames++;
  const now = Date.now();
  for (const [id, c] of Object.entries(f.counts)) {
    counted[id] = (counted[id] || 0) + c.packets;
    T.wire += c.packets;
  }
  T.received += f.events.length;
  T.dropped = f.dropped;
  T.folded += f.folded;
  if (f.events.length) T.lagMs.push(now - f.events[f.events.length - 1].ts_ns / 1e6);
  if (T.lagMs.length > 200) T.lagMs.splice(0, T.lagMs.length - 200);
  if (T.paused) return;
  const log = $("log");
  const frag = document.createDocumentFragment();
  for (const ev of f.events) {
    T.events.push(ev);
    if (!passes(ev)) continue;
    launch(ev);
    const d = document.createElement("div");
    d.className = "p-" + ev.proto;
    d.dataset.link = ev.link || "";
    d.textContent = `${new Date(ev.ts_ns / 1e6).toISOString().slice(11, 23)} ${ev.link || "-"} ${ev.from}→${ev.to.join(",") || "?"} ${ev.summary}`;
    frag.appendChild(d);
  }
  if (T.events.length > 5000) T.events.splice(0, T.events.length - 5000);
  log.prepend(frag);
  while (log.childElementCount > 300) log.lastElementChild.remove();
}

function connectLive() {
  const ws = new WebSocket(`ws://${location.host}/ws/live`);
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "status") applyStatus(msg.data);
    else if (msg.type === "frame") onFrame(msg);
  };
  ws.onclose = () => setTimeout(connectLive, 2000);
}

function showStats() {
  const lag = T.lagMs.length ? T.lagMs.slice().sort((a, b) => a - b)[Math.floor(T.lagMs.length / 2)] : 0;
  $("stats").textContent = `events ${T.events.length} · lag ${lag.toFixed(0)} ms · folded ${T.folded} · dots skipped ${T.skippedDots}`;
  showRates();
}

// ---- step mode -----------------------------------------------------------------------------

function stepVisible() {
  const rec = T.step.rec;
  if (!rec) return [];
  return rec.events.map((e, i) => i).filter((i) => !$("stepip").checked || rec.events[i].hops.length);
}

async function loadStep() {
  const dir = $("stepdir").value.trim() || $("stepsrc").value;
  const url = dir === "live" ? "/api/step/live" : "/api/step/run?dir=" + encodeURIComponent(dir);
  const r = await fetch(url);
  if (!r.ok) { $("layers").innerHTML = `<p class="err">${esc(await r.text())}</p>`; return; }
  T.step.rec = await r.json();
  T.step.index = -1;
  const list = $("steplist");
  list.innerHTML = "";
  T.step.rec.events.forEach((e, i) => {
    const d = document.createElement("div");
    d.className = "p-" + e.proto;
    d.id = "se-" + i;
    d.textContent = `${String(i + 1).padStart(4)} ${e.link || "-"} ${e.from}→${e.to.join(",") || "?"} ${e.summary}`;
    d.onclick = () => stepTo(i);
    list.appendChild(d);
  });
  $("steppos").textContent = `0 / ${T.step.rec.events.length}`;
  if (T.step.rec.events.length) stepTo(0);
}

function stepBy(k) {
  const vis = stepVisible();
  if (!vis.length) return;
  const at = vis.indexOf(T.step.index);
  const next = at < 0 ? (k > 0 ? vis[0] : vis[vis.length - 1]) : vis[Math.max(0, Math.min(vis.length - 1, at + k))];
  stepTo(next);
}

function stepTo(i) {
  const rec = T.step.rec;
  const e = rec.events[i];
  T.step.index = i;
  T.step.event = e;
  document.querySelectorAll("#steplist .cur").forEach((d) => d.classList.remove("cur"));
  const row = $("se-" + i);
  if (row) { row.classList.add("cur"); row.scrollIntoView({ block: "nearest" }); }
  $("steppos").textContent = `${i + 1} / ${rec.events.length}`;
  document.querySelectorAll("g.current, g.sender, g.receiver").forEach((g) => g.classList.remove("current", "sender", "receiver"));
  if (e.link) { const g = document.getElementById(e.link); if (g) g.classList.add("current"); }
  const s = hostGroup(e.from);
  if (s) s.classList.add("sender");
  for (const t of e.to) { const g = hostGroup(t); if (g) g.classList.add("receiver"); }
  launch(e);
  $("layers").innerHTML = `<p><b>${esc(e.from)}</b> (${esc(e.from_iface)}) → <b>${esc(e.to.join(", ") || "?")}</b> on ${esc(e.link || "-")}: ${esc(e.summary)}</p>` +
    e.layers.map((l) => `<table><tr><th class="layer" colspan="2">${l.name}</th></tr>` +
      l.fields.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join("") + "</table>").join("");
  renderHops(e);
}

// The hops of the current datagram side by side; a field that changed from the hop before
// is highlighted.
function renderHops(e) {
  const rec = T.step.rec;
  if (e.hops.length < 2) { $("hops").innerHTML = ""; return; }
  const hops = e.hops.map((k) => rec.events[k]);
  const rows = [];
  for (const l of hops[0].layers) for (const [f] of l.fields) rows.push(l.name + "." + f);
  const value = (ev, key) => {
    const [ln, fn] = [key.slice(0, key.indexOf(".")), key.slice(key.indexOf(".") + 1)];
    const l = ev.layers.find((x) => x.name === ln);
    const kv = l && l.fields.find(([k]) => k === fn);
    return kv ? kv[1] : "";
  };
  let html = `<p><b>The datagram hop by hop</b> (${hops.length} hops; changed fields highlighted)</p><table id="hoptable"><tr><th></th>`;
  html += hops.map((h, n) => `<th${e.hops[n] === T.step.index ? ' class="layer"' : ""}>${esc(h.from)}→${esc(h.to.join(",") || "?")}<br>${esc(h.link || "-")}</th>`).join("") + "</tr>";
  for (const key of rows) {
    html += `<tr><td>${esc(key)}</td>` + hops.map((h) => {
      const ch = h.changed.includes(key);
      return `<td data-field="${esc(key)}"${ch ? ' class="changed"' : ""}>${esc(value(h, key))}</td>`;
    }).join("") + "</tr>";
  }
  $("hops").innerHTML = html + "</table>";
}

async function loadRuns() {
  const runs = await (await fetch("/api/runs")).json();
  for (const r of runs) $("stepsrc").insertAdjacentHTML("beforeend", `<option>${esc(r)}</option>`);
}

// ---- experiments ---------------------------------------------------------------------------

async function loadExperiments() {
  const r = await fetch("/api/experiments");
  if (!r.ok) { $("explist").innerHTML = `<p class="err">${esc(await r.text())}</p>`; return; }
  const exps = await r.json();
  $("explist").innerHTML = exps.map((e) => `<div><button data-run="${esc(e.name)}">Run</button> ${esc(e.name)} <i>ch. ${esc(e.chapter)}</i> ${esc(e.title)}</div>`).join("");
  $("explist").querySelectorAll("button[data-run]").forEach((b) => {
    b.onclick = async () => {
      const r = await fetch("/api/experiments/run?name=" + encodeURIComponent(b.dataset.run), { method: "POST" });
      if (!r.ok) $("job").innerHTML = `<p class="err">${esc(await r.text())}</p>`;
      pollJob();
    };
  });
}

async function pollJob() {
  const j = await (await fetch("/api/experiments/job")).json();
  let html = `<p><b>${esc(j.name)}</b> ${j.running ? "running…" : "done"}</p>`;
  if (j.error) html += `<p class="err">${esc(j.error)}</p>`;
  if (!j.checks.length) html += j.pending.map((d) => `<div class="pending">○ ${esc(d)}</div>`).join("");
  html += j.checks.map((c) => `<div class="${c.passed ? "pass" : "fail"}">${c.passed ? "✔" : "✘"} ${esc(c.description)}<br><small>${esc(c.detail)}</small></div>`).join("");
  html += `<pre class="list short">${esc(j.log.join("\n"))}</pre>`;
  if (!j.running && j.out_dir && !j.error) {
    const d = encodeURIComponent(j.out_dir);
    html += `<p><a target="_blank" href="/api/run/file?dir=${d}&name=report.md">report.md</a> · <button id="jobstep">Step through its packets</button></p>`;
    const figs = await (await fetch("/api/run/figures?dir=" + d)).json();
    html += figs.map((f) => `<p>${esc(f)}<br><img style="max-width:100%" src="/api/run/file?dir=${d}&name=${encodeURIComponent(f)}"></p>`).join("");
  }
  $("job").innerHTML = html;
  const b = $("jobstep");
  if (b) b.onclick = () => { $("stepdir").value = j.out_dir; tab("step"); loadStep(); };
  if (j.running) setTimeout(pollJob, 700);
}

// ---- terminal ------------------------------------------------------------------------------

function openTerminal() {
  if (T.term && T.term.ws) T.term.ws.close();
  const vt = new VTerm($("term"), 100, 28);
  const ws = new WebSocket(`ws://${location.host}/ws/term?node=${encodeURIComponent($("termnode").value)}`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => ws.send(JSON.stringify({ cols: vt.cols, rows: vt.rows }));
  ws.onmessage = (m) => vt.write(new Uint8Array(m.data));
  vt.onData = (s) => { if (ws.readyState === 1) ws.send(new TextEncoder().encode(s)); };
  T.term = { vt, ws };
  $("term").focus();
}

// ---- tabs and start ------------------------------------------------------------------------

function tab(name) {
  document.querySelectorAll("nav button").forEach((b) => b.classList.toggle("on", b.dataset.tab === name));
  document.querySelectorAll(".tab").forEach((t) => (t.hidden = t.id !== "tab-" + name));
  if (name !== "step") {
    document.querySelectorAll("g.current, g.sender, g.receiver").forEach((g) => g.classList.remove("current", "sender", "receiver"));
  }
}

async function start() {
  document.querySelectorAll("nav button").forEach((b) => (b.onclick = () => tab(b.dataset.tab)));
  $("pause").onclick = () => { T.paused = !T.paused; $("pause").textContent = T.paused ? "Resume" : "Pause"; };
  $("stepload").onclick = loadStep;
  $("stepprev").onclick = () => stepBy(-1);
  $("stepnext").onclick = () => stepBy(1);
  $("termopen").onclick = openTerminal;
  await loadTopology();
  connectLive();
  requestAnimationFrame(animate);
  setInterval(showStats, 1000);
  await Promise.all([loadRuns(), loadExperiments()]);
  T.ready = true;
  T.readyAt = performance.now();
}

start();
