/// The status page served at `GET /` on the metrics listener: one self-contained HTML document
/// (inline CSS and JavaScript, no external assets, no build step). Its script fetches
/// `/status.json` (API.StatusPage: the same node state as `weft status`, `weft members`,
/// `weft peers` and `weft ipam`) every 2 seconds and draws members, tunnels and the IPAM ring.
///
/// The DOM it builds is part of the contract tested in headless Chromium
/// (Tests/WeftIntegrationTests/StatusPageTests.swift): `tr.member[data-id][data-name][data-state]`,
/// `tr.peer[data-id]`, `svg#ring path.segment[data-start][data-end][data-owner][data-owner-name]`,
/// and `body[data-updated]` once the first answer was drawn.
enum StatusPageHTML {
    static let contentType = "text/html; charset=utf-8"

    static let document = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>weft status</title>
<style>
  :root { --fg: #1d2330; --muted: #6b7385; --line: #e3e6ec; --bg: #fafbfc; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  header { padding: 14px 24px; border-bottom: 1px solid var(--line); background: #fff; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  header .kv { color: var(--muted); }
  header .kv b { color: var(--fg); font-weight: 600; }
  main { display: grid; grid-template-columns: minmax(420px, 1fr) 400px; gap: 20px; padding: 20px 24px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
  h2 { font-size: 14px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 8px 4px 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { font-weight: 600; color: var(--muted); font-size: 12px; }
  td.mono, span.mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
  .state { font-weight: 600; }
  .state-alive, .state-established { color: var(--ok); }
  .state-suspect, .state-handshaking, .state-rekeying, .state-idle { color: var(--warn); }
  .state-dead, .state-failing { color: var(--bad); }
  .state-left { color: var(--muted); }
  .self { font-weight: 700; }
  #ring { width: 100%; height: auto; }
  #legend div { display: flex; align-items: center; gap: 6px; margin: 2px 0; }
  #legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px; }
  .muted { color: var(--muted); }
  #error { color: var(--bad); padding: 0 24px; }
  .full { grid-column: 1 / -1; }
</style>
</head>
<body>
<header>
  <h1>weft <span id="node-name">…</span></h1>
  <span class="kv">id <b id="node-id" class="mono">…</b></span>
  <span class="kv">cluster <b id="cluster">…</b></span>
  <span class="kv">overlay <b id="overlay">…</b></span>
  <span class="kv">uptime <b id="uptime">…</b></span>
  <span class="kv">version <b id="version">…</b></span>
  <span class="kv muted" id="updated">not loaded yet</span>
</header>
<div id="error"></div>
<main>
  <section>
    <h2>Members</h2>
    <table><thead><tr><th>name</th><th>id</th><th>address</th><th>state</th><th>incarnation</th><th>since</th></tr></thead>
    <tbody id="members"></tbody></table>
  </section>
  <section>
    <h2>Address ring <span id="subnet" class="muted"></span></h2>
    <svg id="ring" viewBox="0 0 240 240" role="img" aria-label="IPAM ring of owners"></svg>
    <div id="ring-summary" class="muted"></div>
    <div id="legend"></div>
  </section>
  <section class="full">
    <h2>Tunnels</h2>
    <table><thead><tr><th>peer</th><th>overlay</th><th>endpoint (path)</th><th>routes</th><th>state</th><th>handshake</th><th>rx</th><th>tx</th><th>drops</th></tr></thead>
    <tbody id="peers"></tbody></table>
    <div id="no-peers" class="muted"></div>
  </section>
  <section class="full">
    <h2>Drops</h2>
    <div id="drops" class="mono"></div>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = String(text);
  return e;
}
function secs(s) {
  if (s < 60) return Math.round(s) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(Math.round(s % 60)).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
}
function bytes(b) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; let v = b;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return i === 0 ? b + " B" : v.toFixed(1) + " " + u[i];
}
function colour(id) {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return "hsl(" + (h % 360) + ", 62%, 52%)";
}
function ip(s) { return s.split(".").reduce((a, p) => a * 256 + Number(p), 0); }
function arc(cx, cy, r0, r1, a0, a1) {
  const p = (r, a) => (cx + r * Math.sin(a)).toFixed(2) + " " + (cy - r * Math.cos(a)).toFixed(2);
  if (a1 - a0 >= 2 * Math.PI - 1e-6) {
    // A whole ring: two half arcs, outer then inner (evenodd leaves the hole).
    const m = a0 + Math.PI;
    return "M " + p(r1, a0) + " A " + r1 + " " + r1 + " 0 1 1 " + p(r1, m) + " A " + r1 + " " + r1 + " 0 1 1 " + p(r1, a0) +
      " Z M " + p(r0, a0) + " A " + r0 + " " + r0 + " 0 1 0 " + p(r0, m) + " A " + r0 + " " + r0 + " 0 1 0 " + p(r0, a0) + " Z";
  }
  const large = a1 - a0 > Math.PI ? 1 : 0;
  return "M " + p(r1, a0) + " A " + r1 + " " + r1 + " 0 " + large + " 1 " + p(r1, a1) +
    " L " + p(r0, a1) + " A " + r0 + " " + r0 + " 0 " + large + " 0 " + p(r0, a0) + " Z";
}
function drawRing(ipam) {
  const svg = $("ring");
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const legend = $("legend");
  while (legend.firstChild) legend.removeChild(legend.firstChild);
  $("subnet").textContent = ipam.subnet ? "(" + ipam.subnet + ")" : "";
  const ns = "http://www.w3.org/2000/svg";
  if (!ipam.ranges.length) { $("ring-summary").textContent = "no ring yet"; return; }
  const total = ipam.ranges.reduce((a, r) => a + r.size, 0);
  const base = ip(ipam.ranges[0].start);
  const owners = new Map();
  for (const r of ipam.ranges) {
    const off = (ip(r.start) - base + 4294967296) % 4294967296;
    const a0 = 2 * Math.PI * off / total, a1 = 2 * Math.PI * (off + r.size) / total;
    const path = document.createElementNS(ns, "path");
    path.setAttribute("class", "segment");
    path.setAttribute("d", arc(120, 120, 62, 110, a0, a1));
    path.setAttribute("fill", colour(r.owner));
    path.setAttribute("fill-rule", "evenodd");
    path.setAttribute("stroke", "#fff");
    path.setAttribute("stroke-width", "1");
    path.setAttribute("data-start", r.start);
    path.setAttribute("data-end", r.end);
    path.setAttribute("data-owner", r.owner);
    path.setAttribute("data-owner-name", r.ownerName);
    const t = document.createElementNS(ns, "title");
    t.textContent = r.start + " – " + r.end + ": " + r.ownerName + " (" + r.free + " of " + r.size + " free)";
    path.appendChild(t);
    svg.appendChild(path);
    const o = owners.get(r.owner) || { name: r.ownerName, size: 0, free: 0, ranges: 0 };
    o.size += r.size; o.free += r.free; o.ranges += 1;
    owners.set(r.owner, o);
  }
  const c = document.createElementNS(ns, "text");
  c.setAttribute("x", "120"); c.setAttribute("y", "125"); c.setAttribute("text-anchor", "middle");
  c.setAttribute("font-size", "13"); c.textContent = ipam.clusterFree + " free";
  svg.appendChild(c);
  $("ring-summary").textContent = ipam.ranges.length + " ranges, " + owners.size + " owners, " + ipam.clusterFree + " of " + total + " addresses free";
  for (const [id, o] of [...owners.entries()].sort((a, b) => a[1].name.localeCompare(b[1].name))) {
    const d = el("div", { "class": "owner", "data-owner": id });
    const sw = el("i"); sw.style.background = colour(id);
    d.appendChild(sw);
    d.appendChild(el("span", {}, o.name + " — " + o.ranges + " range" + (o.ranges === 1 ? "" : "s") + ", " + o.size + " addresses, " + o.free + " free"));
    legend.appendChild(d);
  }
}
function render(s) {
  const st = s.status;
  $("node-name").textContent = st.name;
  $("node-id").textContent = st.id.slice(0, 12);
  $("cluster").textContent = st.cluster;
  $("overlay").textContent = st.overlayAddress || "none yet";
  $("uptime").textContent = secs(st.uptimeSeconds);
  $("version").textContent = st.version;
  const mb = $("members");
  while (mb.firstChild) mb.removeChild(mb.firstChild);
  const members = s.members.slice().sort((a, b) => (a.name + a.id).localeCompare(b.name + b.id));
  for (const m of members) {
    const tr = el("tr", { "class": "member" + (m.isSelf ? " self" : ""), "data-id": m.id, "data-name": m.name, "data-state": m.state });
    tr.appendChild(el("td", {}, (m.isSelf ? "* " : "") + m.name));
    tr.appendChild(el("td", { "class": "mono" }, m.id.slice(0, 12)));
    tr.appendChild(el("td", { "class": "mono" }, m.address));
    tr.appendChild(el("td", { "class": "state state-" + m.state }, m.state));
    tr.appendChild(el("td", {}, m.incarnation));
    tr.appendChild(el("td", {}, secs(m.sinceSeconds)));
    mb.appendChild(tr);
  }
  const pb = $("peers");
  while (pb.firstChild) pb.removeChild(pb.firstChild);
  for (const p of s.peers) {
    const tr = el("tr", { "class": "peer", "data-id": p.id, "data-name": p.name, "data-state": p.state });
    tr.appendChild(el("td", {}, p.name));
    tr.appendChild(el("td", { "class": "mono" }, p.overlayAddress || "-"));
    tr.appendChild(el("td", { "class": "mono" }, p.endpoint || "-"));
    tr.appendChild(el("td", { "class": "mono" }, (p.ranges || []).join(", ") || "-"));
    tr.appendChild(el("td", { "class": "state state-" + p.state }, p.detail ? p.state + " (" + p.detail + ")" : p.state));
    tr.appendChild(el("td", {}, p.lastHandshake == null ? "never" : secs(p.lastHandshake) + " ago"));
    tr.appendChild(el("td", {}, bytes(p.rxBytes) + " / " + p.rxPackets + " pkts"));
    tr.appendChild(el("td", {}, bytes(p.txBytes) + " / " + p.txPackets + " pkts"));
    tr.appendChild(el("td", {}, Object.values(p.drops || {}).reduce((a, b) => a + b, 0)));
    pb.appendChild(tr);
  }
  $("no-peers").textContent = s.peers.length ? "" : (st.tunName ? "no tunnel peers: no other live member" : "no tunnels: this node runs with --no-tun");
  const drops = [];
  for (const [k, v] of Object.entries(st.drops || {})) if (v > 0) drops.push("control " + k + "=" + v);
  for (const [k, v] of Object.entries(st.dataPlaneDrops || {})) if (v > 0) drops.push("data " + k + "=" + v);
  $("drops").textContent = drops.length ? drops.sort().join("  ") : "none";
  drawRing(s.ipam);
  $("error").textContent = "";
  const now = new Date();
  $("updated").textContent = "updated " + now.toLocaleTimeString();
  document.body.setAttribute("data-updated", String(now.getTime()));
}
async function refresh() {
  try {
    const r = await fetch("/status.json", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
  } catch (e) {
    $("error").textContent = "cannot load /status.json: " + e.message + " (is the node still running?)";
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
"""#
}
