// The chat page: a room of the mesh. All mesh work is done by p2pmesh.mjs
// (the C++ core in WebAssembly); this file is UI only.
//   /chat                    fields prefilled, press Connect
//   /chat?room=NAME          joins NAME at once (a reload rejoins)
//   &server=ws://H:P/service another server

import { Mesh } from '/p2pmesh.mjs';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const defaultServer = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/service';

$('server-url').value = params.get('server') || defaultServer;
$('room').value = params.get('room') || 'default';

// Exposed for tests and for a future "report my state" hook.
const chat = { mesh: null, messages: [], sent: [] };
window.p2pmeshChat = chat;

let renderQueued = false;

function setStatus(text, kind) {
  const status = $('status');
  status.textContent = text;
  status.className = `status ${kind}`;
}

function setConnected(connected) {
  $('connect').disabled = connected;
  $('leave').disabled = !connected;
  $('server-url').disabled = connected;
  $('room').disabled = connected;
  $('message').disabled = !connected;
  $('send').disabled = !connected;
}

function time() {
  return new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function appendLog(entry) {
  const log = $('log');
  const item = document.createElement('li');
  item.className = entry.kind;
  if (entry.from !== undefined) item.dataset.from = String(entry.from);
  if (entry.kind === 'message' || entry.kind === 'mine') item.dataset.text = entry.text;
  const meta = document.createElement('span');
  meta.className = 'meta';
  meta.textContent = time();
  item.append(meta);
  if (entry.from !== undefined) {
    const who = document.createElement('span');
    who.className = 'sender';
    who.textContent = entry.kind === 'mine' ? `${entry.from} (you)` : String(entry.from);
    who.style.setProperty('--hue', String((entry.from * 47) % 360));
    item.append(who);
  }
  const body = document.createElement('span');
  body.className = 'body';
  body.textContent = entry.text;
  item.append(body);
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(item);
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function renderView() {
  renderQueued = false;
  const mesh = chat.mesh;
  const container = $('view');
  const linksList = $('links');
  if (!mesh) {
    container.innerHTML = '<p class="empty">No peers yet.</p>';
    linksList.innerHTML = '<li class="empty">None.</li>';
    return;
  }
  const view = mesh.view();
  const table = document.createElement('table');
  table.className = 'adjacency';
  const head = table.createTHead().insertRow();
  head.append(document.createElement('th'));
  for (const peer of view.peers) {
    const th = document.createElement('th');
    th.textContent = String(peer);
    th.dataset.peer = String(peer);
    if (peer === view.self) th.className = 'self';
    head.append(th);
  }
  const body = table.createTBody();
  for (const row of view.peers) {
    const tr = body.insertRow();
    tr.dataset.peer = String(row);
    const th = document.createElement('th');
    th.textContent = String(row);
    if (row === view.self) th.className = 'self';
    tr.append(th);
    const neighbours = new Set(view.adjacency[String(row)] || []);
    for (const col of view.peers) {
      const td = tr.insertCell();
      if (row === col) td.className = 'diagonal';
      else if (neighbours.has(col)) {
        td.className = row === view.self || col === view.self ? 'linked mine' : 'linked';
        td.textContent = '●';
        td.title = `${row} ↔ ${col}`;
      }
    }
  }
  container.replaceChildren(table);
  const summary = document.createElement('p');
  summary.className = 'hint';
  summary.textContent = `${view.peers.length} peer${view.peers.length === 1 ? '' : 's'}, ` +
    `${view.links.length} link${view.links.length === 1 ? '' : 's'}`;
  container.append(summary);

  const links = mesh.links();
  linksList.replaceChildren();
  if (links.length === 0) linksList.innerHTML = '<li class="empty">None.</li>';
  for (const link of links) {
    const li = document.createElement('li');
    li.textContent = `${link.peer} · ${link.open ? 'open' : 'connecting'} · ` +
      `${link.initiated ? 'we dialled' : 'they dialled'}`;
    li.className = link.open ? 'open' : 'connecting';
    linksList.append(li);
  }
}

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(renderView);
}

async function connect() {
  const url = $('server-url').value.trim();
  const room = $('room').value.trim() || 'default';
  setConnected(true);
  $('connect').disabled = true;
  setStatus(`Connecting to ${url}…`, 'busy');
  let mesh;
  let unsignedReason = '';
  try {
    // Tests may add join options (e.g. a loopback-only candidate filter)
    // and make the page wait for a media permission first.
    await window.p2pmeshMediaReady;
    // State reports every 2 s: the dashboard shows chat peers beside the
    // native ones (kind "browser").
    const options = { url, group: room, reportIntervalMs: 2000, ...(window.p2pmeshTestOptions || {}) };
    try {
      mesh = await Mesh.join(options);
    } catch (error) {
      // No Ed25519 in this browser's WebCrypto, or a page served over plain
      // http:// from another host (not a secure context): chat unsigned.
      if (!/Ed25519|WebCrypto/.test(error.message)) throw error;
      mesh = await Mesh.join({ ...options, sign: false });
      unsignedReason = error.message;
    }
  } catch (error) {
    setConnected(false);
    setStatus(`Could not join: ${error.message}`, 'error');
    return;
  }
  chat.mesh = mesh;
  document.body.dataset.peer = String(mesh.id);
  document.title = `p2pmesh chat · ${room}`;
  setStatus(`You are peer ${mesh.id} in room “${room}”.`, 'ok');
  appendLog({ kind: 'info', text: `Joined room “${room}” as peer ${mesh.id}.` });
  if (unsignedReason) appendLog({ kind: 'info', text: `Your messages go unsigned: ${unsignedReason}` });
  mesh.on('message', (message) => {
    chat.messages.push({ from: message.from, text: message.text });
    appendLog({ kind: 'message', from: message.from, text: message.text });
  });
  mesh.on('peer', (event) => {
    appendLog({ kind: 'info', text: `Peer ${event.peer} ${event.joined ? 'joined' : 'left'}.` });
  });
  mesh.on('change', queueRender);
  mesh.on('close', () => {
    setStatus('The server closed the connection.', 'error');
    appendLog({ kind: 'info', text: 'Disconnected from the server.' });
  });
  renderView();
  $('message').focus();
}

async function leave() {
  const mesh = chat.mesh;
  if (!mesh) return;
  chat.mesh = null;
  setConnected(false);
  await mesh.leave();
  setStatus('Left the room.', 'idle');
  appendLog({ kind: 'info', text: 'Left the room.' });
  renderView();
}

function send() {
  const input = $('message');
  const text = input.value;
  if (!chat.mesh || text.trim() === '') return;
  try {
    chat.mesh.broadcast(text);
  } catch (error) {
    setStatus(`Not sent: ${error.message}`, 'error');  // e.g. over the size limit
    return;
  }
  chat.sent.push(text);
  appendLog({ kind: 'mine', from: chat.mesh.id, text });
  input.value = '';
  input.focus();
}

$('connect-form').addEventListener('submit', (event) => {
  event.preventDefault();
  connect();
});
$('leave').addEventListener('click', leave);
$('send-form').addEventListener('submit', (event) => {
  event.preventDefault();
  send();
});
// Leaving tells the room at once; otherwise the server notices the socket close.
addEventListener('pagehide', () => { if (chat.mesh) chat.mesh.leave(); });

if (params.has('room') || params.get('autoconnect') === '1') connect();
