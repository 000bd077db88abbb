// The observer dashboard: connects to meshd's /service like a peer would, but
// never joins a group; subscribes to <group>.report of every group listed by
// GET /groups, and shows each peer's own view of its mesh. Commands go to
// <group>.<id>.command (docs/dashboard.md).
import { encodeSubscribe, encodePublish, decodeServerMessage, text } from './proto.js';
import { layout } from './layout.js';

const STALE_MS = 6000;        // a peer without a report for this long is dropped
const GROUPS_EVERY_MS = 2000; // GET /groups
const RENDER_EVERY_MS = 400;
const CANDIDATE_TYPES = ['host', 'srflx', 'prflx', 'relay'];  // a link's path (p2pmesh/core/ice.hpp)

const state = {
  ws: null,
  myId: 0,
  connected: false,
  subscribed: new Set(),     // groups
  groups: new Map(),         // group -> members (from /groups)
  peers: new Map(),          // sender id -> {report, group, at}
  selected: null,            // peer id shown in the detail panel
  traces: new Map(),         // group -> {trace, origin, at}
  dirty: true,
};
window.dashboard = state;   // for tests and curious users

const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

function wsUrl() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/service`;
}

function connect() {
  const ws = new WebSocket(wsUrl());
  ws.binaryType = 'arraybuffer';
  state.ws = ws;
  ws.onopen = () => { state.connected = true; state.subscribed.clear(); status(); refreshGroups(); };
  ws.onclose = () => {
    state.connected = false; state.myId = 0; status();
    setTimeout(connect, 1000);
  };
  ws.onmessage = (event) => {
    let msg;
    try { msg = decodeServerMessage(new Uint8Array(event.data)); } catch { return; }
    if (!msg) return;
    if (msg.welcome !== undefined) { state.myId = msg.welcome; status(); return; }
    if (msg.topic.endsWith('.report')) onReport(msg.topic.slice(0, -7), msg.sender, msg.body);
  };
}

function status() {
  $('#conn').textContent = state.connected ? `connected (observer ${state.myId || '?'})` : 'disconnected, retrying...';
  $('#conn').className = state.connected ? 'ok' : 'bad';
}

function onReport(group, sender, body) {
  let raw;
  try { raw = JSON.parse(text(body)); } catch { return; }
  if (!raw || typeof raw !== 'object') return;
  // Trust the server-stamped sender, not the id inside.
  const report = cleanReport(raw, sender);
  report.group = group;
  state.peers.set(sender, { report, group, at: Date.now() });
  state.dirty = true;
}

// Any member may publish a report: keep only the fields the page draws, as
// numbers, booleans or known words, so none can smuggle markup into the page.
function cleanReport(raw, sender) {
  const id = (x) => Number(x) >>> 0;
  const num = (x) => (Number.isFinite(Number(x)) ? Number(x) : 0);
  const list = (x) => (Array.isArray(x) ? x : []);
  const app = raw.app && typeof raw.app === 'object' ? raw.app : {};
  const ping = app.last_ping && typeof app.last_ping === 'object' ? app.last_ping : null;
  const trace = app.last_trace && typeof app.last_trace === 'object' ? app.last_trace : null;
  return {
    id: sender,
    kind: String(raw.kind ?? '?'),
    reached: num(raw.reached),
    members: list(raw.members).map(id),
    view: list(raw.view).filter(Array.isArray).map(([a, b, w]) => [id(a), id(b), num(w)]),
    tree: list(raw.tree).filter(Array.isArray).map(([u, v]) => [id(u), id(v)]),
    links: list(raw.links).filter((l) => l && typeof l === 'object').map((l) => ({
      peer: id(l.peer),
      state: l.state === 'open' ? 'open' : 'connecting',
      rtt_us: num(l.rtt_us),
      initiated: l.initiated === true,
      candidate: CANDIDATE_TYPES.includes(l.candidate) ? l.candidate : 'unknown',
    })),
    app: {
      last_ping: ping && {
        responses: num(ping.responses),
        targets: num(ping.targets),
        avg_rtt_ms: num(ping.avg_rtt_ms),
        missing: list(ping.missing).map(id),
      },
      last_trace: trace && { trace: String(trace.trace ?? ''), origin: id(trace.origin) },
    },
  };
}

async function refreshGroups() {
  try {
    const response = await fetch('/groups', { cache: 'no-store' });
    const list = await response.json();
    state.groups = new Map(list.map((g) => [g.group, g.members]));
  } catch { /* meshd restarting */ }
  // ?group=NAME (repeatable): watched even when this meshd lists it not
  // (a cluster node without members of it: /groups is per node).
  for (const g of new URLSearchParams(location.search).getAll('group')) {
    if (!state.groups.has(g)) state.groups.set(g, 0);
  }
  if (state.connected && state.ws.readyState === WebSocket.OPEN) {
    for (const g of state.groups.keys()) {
      if (state.subscribed.has(g)) continue;
      state.ws.send(encodeSubscribe(`${g}.report`));
      state.subscribed.add(g);
    }
  }
  state.dirty = true;
}

function command(group, id, body) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  state.ws.send(encodePublish([`${group}.${id}.command`], JSON.stringify(body)));
  return true;
}

function sendTrace(id) {
  const peer = state.peers.get(id);
  if (!peer) return;
  const trace = `t${Date.now().toString(36)}-${id}`;
  state.traces.set(peer.group, { trace, origin: id, at: Date.now() });
  command(peer.group, id, { cmd: 'trace', trace });
  state.dirty = true;
}

function pingAll(group) {
  for (const [id, p] of state.peers) if (!group || p.group === group) command(p.group, id, { cmd: 'ping' });
}

// ---------------------------------------------------------------- rendering

function peersByGroup() {
  const now = Date.now();
  for (const [id, p] of state.peers) if (now - p.at > STALE_MS) { state.peers.delete(id); if (state.selected === id) state.selected = null; }
  const groups = new Map();
  for (const [id, p] of [...state.peers].sort((a, b) => a[0] - b[0])) {
    if (!groups.has(p.group)) groups.set(p.group, []);
    groups.get(p.group).push([id, p]);
  }
  return groups;
}

function openLinks(report) {
  return (report.links || []).filter((l) => l.state === 'open');
}

function fmtPing(lp) {
  if (!lp) return '<span class="dim">-</span>';
  const missing = (lp.missing || []).length ? ` <span class="bad">missing ${lp.missing.join(', ')}</span>` : '';
  return `${lp.responses}/${lp.targets} &middot; ${Number(lp.avg_rtt_ms || 0).toFixed(1)} ms${missing}`;
}

function fmtTrace(lt) {
  return lt ? `${esc(lt.trace)} <span class="dim">from ${lt.origin}</span>` : '<span class="dim">-</span>';
}

function renderList(groups) {
  const rows = [];
  for (const [group, peers] of groups) {
    rows.push(`<tr class="grouprow"><th colspan="8">group <b>${esc(group)}</b>: ${peers.length} reporting` +
      (state.groups.has(group) ? `, ${state.groups.get(group)} connected to meshd` : '') +
      ` <button data-ping="${esc(group)}">ping all</button></th></tr>`);
    for (const [id, p] of peers) {
      const r = p.report;
      const app = r.app || {};
      const links = openLinks(r).map((l) => l.peer);
      rows.push(`<tr class="peer${state.selected === id ? ' selected' : ''}" data-peer="${id}">` +
        `<td class="id">${id}</td><td>${esc(group)}</td><td>${esc(r.kind || '?')}</td>` +
        `<td class="links">${links.join(', ')}</td>` +
        `<td class="reached">${r.reached ?? 0}/${(r.members || []).length}</td>` +
        `<td class="ping">${fmtPing(app.last_ping)}</td><td class="trace">${fmtTrace(app.last_trace)}</td>` +
        `<td><button data-trace="${id}">send trace</button></td></tr>`);
    }
  }
  setHtml($('#peers tbody'), rows.join('') ||
    '<tr><td colspan="8" class="dim">no peer reports yet (peers report with --report-ms / --demo)</td></tr>');
}

// The peer's own view: nodes = itself + the members it knows, edges = view.
function viewOf(report) {
  const nodes = [...new Set([report.id, ...(report.members || [])])].sort((a, b) => a - b);
  const edges = (report.view || []).map(([a, b, w]) => [a, b, w]);
  for (const [a, b] of edges) { if (!nodes.includes(a)) nodes.push(a); if (!nodes.includes(b)) nodes.push(b); }
  nodes.sort((a, b) => a - b);
  return { nodes, edges };
}

function renderMatrix(report, view) {
  const index = new Map(view.nodes.map((n, i) => [n, i]));
  const m = view.nodes.map(() => view.nodes.map(() => 0));
  for (const [a, b] of view.edges) { m[index.get(a)][index.get(b)] = 1; m[index.get(b)][index.get(a)] = 1; }
  const head = view.nodes.map((n) => `<th>${n}</th>`).join('');
  const body = view.nodes.map((n, i) => `<tr${n === report.id ? ' class="self"' : ''}><th>${n}</th>` +
    m[i].map((v) => `<td class="${v ? 'on' : ''}">${v}</td>`).join('') + '</tr>').join('');
  return `<table class="matrix" data-peer="${report.id}" data-nodes="${view.nodes.join(',')}"><tr><th></th>${head}</tr>${body}</table>`;
}

function renderLinks(report) {
  // path: the selected ICE candidate pair's type; relay links go through TURN
  // (the operator pays their bandwidth), so they stand out.
  const rows = (report.links || []).map((l) => `<tr><td>${l.peer}</td><td class="${l.state === 'open' ? 'ok' : 'warn'}">${l.state}</td>` +
    `<td>${l.rtt_us ? (l.rtt_us / 1000).toFixed(2) + ' ms' : '-'}</td><td>${l.initiated ? 'out' : 'in'}</td>` +
    `<td class="path ${l.candidate === 'relay' ? 'warn' : ''}">${l.candidate === 'unknown' ? '-' : l.candidate}</td></tr>`).join('');
  return `<table class="links"><tr><th>peer</th><th>state</th><th>rtt</th><th>dir</th><th title="selected ICE candidate pair: host, srflx/prflx (through a NAT), relay (through TURN)">path</th></tr>${rows}</table>`;
}

function renderGraph(report, view, group) {
  const W = 300, H = 300;
  const pos = layout(group, view.nodes, view.edges, W, H);
  const treeSet = new Set((report.tree || []).map(([u, v]) => (u < v ? `${u}-${v}` : `${v}-${u}`)));
  const trace = state.traces.get(group);
  const green = new Set();
  if (trace) {
    for (const [id, p] of state.peers) {
      const lt = p.report.app && p.report.app.last_trace;
      if (p.group === group && lt && lt.trace === trace.trace) green.add(id);
    }
  }
  const parts = [];
  const drawn = new Set();
  for (const [a, b] of view.edges) {
    const key = a < b ? `${a}-${b}` : `${b}-${a}`;
    if (drawn.has(key)) continue;
    drawn.add(key);
    const inTree = treeSet.has(key);
    const [x1, y1] = pos.get(a), [x2, y2] = pos.get(b);
    parts.push(`<line class="edge${inTree ? ' tree' : ''}" data-edge="${key}" x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="${inTree ? 'red' : '#bbb'}" stroke-width="${inTree ? 2.5 : 1}"/>`);
  }
  // Tree edges the view lacks (should not happen) are drawn too, dashed.
  for (const key of treeSet) {
    if (drawn.has(key)) continue;
    const [a, b] = key.split('-').map(Number);
    if (!pos.has(a) || !pos.has(b)) continue;
    const [x1, y1] = pos.get(a), [x2, y2] = pos.get(b);
    parts.push(`<line class="edge tree" data-edge="${key}" x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="red" stroke-width="2.5" stroke-dasharray="4 3"/>`);
  }
  for (const n of view.nodes) {
    const [x, y] = pos.get(n);
    const isSelf = n === report.id, isGreen = green.has(n);
    const fill = isGreen ? '#2ecc40' : isSelf ? '#ffdc00' : '#fff';
    parts.push(`<g class="node${isGreen ? ' green' : ''}" data-id="${n}" data-green="${isGreen}">` +
      `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="13" fill="${fill}" stroke="${isSelf ? '#b8860b' : '#333'}" stroke-width="${isSelf ? 2.5 : 1.2}"/>` +
      `<text x="${x.toFixed(1)}" y="${(y + 4).toFixed(1)}" text-anchor="middle">${n}</text></g>`);
  }
  return `<svg class="graph" data-peer="${report.id}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">${parts.join('')}</svg>`;
}

function renderCards(groups) {
  const out = [];
  for (const [group, peers] of groups) {
    out.push(`<h2>group ${esc(group)}</h2><div class="cards">`);
    for (const [id, p] of peers) {
      const r = p.report;
      const view = viewOf(r);
      out.push(`<div class="card${state.selected === id ? ' selected' : ''}" id="card-${id}" data-peer="${id}">` +
        `<div class="cardhead"><b>peer ${id}</b> <span class="dim">${esc(r.kind || '?')}, ${openLinks(r).length} links, tree reaches ${r.reached ?? 0}</span>` +
        ` <button data-trace="${id}">send trace</button></div>` +
        renderGraph(r, view, group) +
        `<div class="tables">${renderMatrix(r, view)}${renderLinks(r)}</div></div>`);
    }
    out.push('</div>');
  }
  setHtml($('#cards'), out.join(''));
}

// Replaces an element's content only when it changed (keeps buttons under
// the pointer alive between reports).
const shown = new WeakMap();
function setHtml(element, html) {
  if (shown.get(element) === html) return;
  shown.set(element, html);
  element.innerHTML = html;
}

function render() {
  if (!state.dirty) return;
  state.dirty = false;
  const groups = peersByGroup();
  renderList(groups);
  renderCards(groups);
  const total = [...groups.values()].reduce((n, g) => n + g.length, 0);
  $('#summary').textContent = `${total} peers in ${groups.size} groups`;
}

// pointerdown, not click: a report may redraw the button between press and
// release.
document.addEventListener('pointerdown', (event) => {
  if (event.button !== 0) return;
  const t = event.target;
  if (t.dataset && t.dataset.trace) { sendTrace(Number(t.dataset.trace)); return; }
  if (t.dataset && t.dataset.ping !== undefined) { pingAll(t.dataset.ping); return; }
  if (t.id === 'pingall') { pingAll(null); return; }
  const row = t.closest && t.closest('tr.peer');
  if (row) {
    state.selected = Number(row.dataset.peer);
    state.dirty = true;
    render();
    const card = document.getElementById(`card-${state.selected}`);
    if (card) card.scrollIntoView({ behavior: 'smooth', block: 'center' });
  }
});

connect();
status();
setInterval(refreshGroups, GROUPS_EVERY_MS);
setInterval(() => { state.dirty = true; }, 2000);  // ages out silent peers
setInterval(render, RENDER_EVERY_MS);
export { sendTrace, pingAll, state };
