// Shared helpers of the NAT tests (tests/nat/*.test.mjs, measure.mjs): the
// namespace network of topology.sh, coturn and meshd in its "internet",
// mesh-peer processes (and Chromium) in its homes.
//
// Environment (set by CTest, see CMakeLists.txt):
//   MESHD, MESH_PEER   the programs under test
//   P2PMESH_WEB_ROOT   meshd's web root (the browser peer, for the browser test)
//   TURNSERVER         coturn's turnserver (default: found on PATH)
//   P2PMESH_NAT_KEEP   set to 1 to leave the network up after the run (debugging)
//   P2PMESH_NAT_TURN_ARGS  extra turnserver arguments (debugging: --verbose)
//   P2PMESH_NAT_LOG_DIR    a directory: coturn's log and every peer's stderr
//                          are written there at the end of the run (debugging;
//                          P2PMESH_WEBRTC_LOG=info adds libwebrtc's log)
//
// The network is PREFIX-{inet,ra,rb,rs,ha,hb,hs} with PREFIX = p2pnat<pid>:
// unique per run, removed on exit, on a signal and on an uncaught error;
// networks of runs that died without cleaning up (SIGKILL) are removed by the
// next run (their pid no longer lives).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));
const topologyScript = path.join(here, 'topology.sh');

export const meshdPath = process.env.MESHD;
export const meshPeerPath = process.env.MESH_PEER;
export const webRoot = process.env.P2PMESH_WEB_ROOT;

// Addresses (topology.sh draws them).
export const SERVER_IP = '192.0.2.1';
export const HOMES = ['a', 'b', 's'];  // a, b: port-preserving NATs; s: symmetric NAT
export const HOME_IP = { a: '10.0.1.2', b: '10.0.2.2', s: '10.0.3.2' };
export const PUBLIC_IP = { a: '198.51.100.2', b: '198.51.100.6', s: '203.0.113.2' };
// Ports inside the internet namespace, which this run alone uses: every port
// is free there, so fixed numbers cannot collide with anything.
export const TURN_PORT = 3478;
const RELAY_PORTS = [49152, 49999];

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function waitFor(predicate, { timeoutMs = 30000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

// Removes networks left by runs that died without cleaning up.
function removeStaleNetworks() {
  let names = [];
  try { names = readdirSync('/run/netns'); } catch { return; }
  const stale = new Set();
  for (const name of names) {
    const match = /^(p2pnat(\d+))-/.exec(name);
    if (!match || Number(match[2]) === process.pid) continue;
    try { process.kill(Number(match[2]), 0); } catch (error) {
      if (error.code === 'ESRCH') stale.add(match[1]);
    }
  }
  for (const prefix of stale) {
    console.log(`# removing the network of a dead run: ${prefix}-*`);
    execFileSync('bash', [topologyScript, 'down', prefix], { stdio: 'inherit' });
  }
  // Its files too (secret, coturn's database, PKI): tmpdir()/p2pnat<pid>-*.
  for (const name of readdirSync(tmpdir())) {
    const match = /^(p2pnat\d+)-/.exec(name);
    if (match && stale.has(match[1])) rmSync(path.join(tmpdir(), name), { recursive: true, force: true });
  }
}

// One run's network with its servers and peers.
export class NatLab {
  constructor() {
    this.prefix = `p2pnat${process.pid}`;
    this.dir = mkdtempSync(path.join(tmpdir(), `p2pnat${process.pid}-`));
    this.children = new Set();
    this.peers = [];
    this.isUp = false;
    this.secret = randomBytes(24).toString('hex');
    this.secretFile = path.join(this.dir, 'turn-secret');
    writeFileSync(this.secretFile, `${this.secret}\n`, { mode: 0o600 });
  }

  ns(name) { return `${this.prefix}-${name}`; }
  home(h) { return this.ns(`h${h}`); }

  up() {
    assert.ok(meshdPath && existsSync(meshdPath), `MESHD=${meshdPath} is a program`);
    assert.ok(meshPeerPath && existsSync(meshPeerPath), `MESH_PEER=${meshPeerPath} is a program`);
    removeStaleNetworks();
    const cleanup = () => this.downSync();
    process.once('exit', cleanup);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
      process.once(signal, () => { cleanup(); process.exit(128 + os.constants.signals[signal]); });
    }
    execFileSync('bash', [topologyScript, 'up', this.prefix], { stdio: 'inherit' });
    this.isUp = true;
    return this;
  }

  // Synchronous: also runs from process 'exit'.
  downSync() {
    const logDir = process.env.P2PMESH_NAT_LOG_DIR;
    if (logDir) {
      mkdirSync(logDir, { recursive: true });
      if (this.turn) writeFileSync(path.join(logDir, 'turnserver.log'), this.turn.log.join(''));
      for (const peer of this.peers) {
        writeFileSync(path.join(logDir, `${peer.label}-${peer.id}.stderr`), peer.stderr);
        writeFileSync(path.join(logDir, `${peer.label}-${peer.id}.jsonl`),
          peer.events.map((e) => JSON.stringify(e)).join('\n'));
      }
      this.peers = [];
    }
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null) {
        try { child.kill('SIGKILL'); } catch { /* gone */ }
      }
    }
    this.children.clear();
    if (this.isUp && process.env.P2PMESH_NAT_KEEP !== '1') {
      this.isUp = false;
      try {
        execFileSync('bash', [topologyScript, 'down', this.prefix], { stdio: 'inherit' });
      } catch (error) {
        console.log(`# topology.sh down ${this.prefix} failed: ${error.message}`);
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  // Stops every process gracefully (SIGTERM, then SIGKILL), then removes the network.
  async down() {
    await Promise.all([...this.children].map((child) => stopChild(child)));
    this.downSync();
  }

  // Runs `program args` inside namespace `ns` (ip netns exec execs it: the
  // child's pid is the program's).
  spawnIn(ns, program, args, options = {}) {
    const child = spawn('ip', ['netns', 'exec', ns, program, ...args],
      { stdio: ['pipe', 'pipe', 'pipe'], ...options });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  // coturn in the internet namespace, on SERVER_IP: STUN and TURN (UDP and
  // TCP) on TURN_PORT, REST API secret from the run's secret file.
  async startTurn() {
    const turnserver = process.env.TURNSERVER || 'turnserver';
    const log = [];
    const child = this.spawnIn(this.ns('inet'), turnserver, [
      '-c', path.join(here, 'turnserver.conf'),
      `--listening-ip=${SERVER_IP}`, `--relay-ip=${SERVER_IP}`,
      `--listening-port=${TURN_PORT}`,
      `--min-port=${RELAY_PORTS[0]}`, `--max-port=${RELAY_PORTS[1]}`,
      `--static-auth-secret=${this.secret}`,
      `--pidfile=${path.join(this.dir, 'turnserver.pid')}`,
      `--db=${path.join(this.dir, 'turndb')}`,
      // Debugging: e.g. P2PMESH_NAT_TURN_ARGS=--verbose (its log is lab.turn.log).
      ...(process.env.P2PMESH_NAT_TURN_ARGS || '').split(' ').filter(Boolean),
    ]);
    const collect = (chunk) => { log.push(String(chunk)); };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.once('exit', (code, signal) => {
      if (!child.stopping) console.log(`# turnserver exited (${code ?? signal})\n${log.join('')}`);
    });
    // Ready when its UDP and TCP listeners are bound.
    await waitFor(() => {
      if (child.exitCode !== null) throw new Error(`turnserver exited: ${log.join('')}`);
      const out = execFileSync('ip', ['netns', 'exec', this.ns('inet'), 'ss', '-Hln',
        `sport = :${TURN_PORT}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      return /udp/.test(out) && /tcp/.test(out);
    }, { timeoutMs: 10000, intervalMs: 100, what: 'turnserver to listen' });
    this.turn = { child, log, stun: `stun:${SERVER_IP}:${TURN_PORT}`, turn: `turn:${SERVER_IP}:${TURN_PORT}` };
    return this.turn;
  }

  // meshd in the internet namespace on SERVER_IP, an ephemeral port.
  // `tls: {cert, key}` serves wss/https.
  startMeshd(args = [], { tls = null } = {}) {
    const all = ['--host', SERVER_IP, '--port', '0', '--log-level', 'warn'];
    if (webRoot) all.push('--web-root', webRoot);
    if (tls) all.push('--tls-cert', tls.cert, '--tls-key', tls.key);
    all.push(...args);
    const child = this.spawnIn(this.ns('inet'), meshdPath, all);
    return new Promise((resolve, reject) => {
      let out = '';
      let err = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`meshd did not report its port within 10 s\n${out}${err}`));
      }, 10000);
      child.stderr.on('data', (chunk) => { err += chunk; process.stderr.write(`[meshd] ${chunk}`); });
      child.stdout.on('data', (chunk) => {
        out += chunk;
        const match = /listening on [^\s]*?:(\d+)/.exec(out);
        if (match && timer) {
          clearTimeout(timer);
          const port = Number(match[1]);
          const scheme = tls ? 'wss' : 'ws';
          resolve({
            child,
            port,
            http: `${tls ? 'https' : 'http'}://${SERVER_IP}:${port}`,
            ws: `${scheme}://${SERVER_IP}:${port}/service`,
            stop: () => stopChild(child),
          });
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`meshd exited (${code}) before listening\n${out}${err}`));
      });
    });
  }

  // A mesh-peer in home `h` ('a', 'b', 's'); see MeshPeer. --print-view:
  // its view lines carry each link's current candidate type.
  startPeer(h, server, { group = 'nat', label = `peer-${h}`, args = [] } = {}) {
    const child = this.spawnIn(this.home(h), meshPeerPath,
      ['--url', server.ws, '--group', group, '--stay', '--print-view', ...args]);
    const peer = new MeshPeer(child, label, h);
    this.peers.push(peer);
    return peer;
  }
}

function stopChild(child, signal = 'SIGTERM') {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) { resolve(); return; }
    child.stopping = true;
    child.once('exit', () => resolve());
    child.kill(signal);
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

// One mesh-peer process: its JSON lines are collected as they come, with the
// time each arrived (performance.now() ms).
export class MeshPeer {
  constructor(child, label, home) {
    this.child = child;
    this.label = label;
    this.home = home;
    this.id = 0;
    this.welcomeAt = 0;
    this.events = [];
    this.messages = [];          // [from, data]
    this.members = new Set();
    this.links = new Map();      // open links: peer -> candidate type, from link_up, then
                                 // the latest view line ("?" when neither says)
    this.linkEvents = [];        // every link_up / link_down: {event, peer, candidate, at}
    this.left = null;            // the final {"event":"left",...,"counters":{...}}
    this.stderr = '';
    child.stderr.on('data', (chunk) => { this.stderr += chunk; });
    createInterface({ input: child.stdout }).on('line', (line) => {
      let event;
      try { event = JSON.parse(line); } catch { return; }
      const at = performance.now();
      event.at = at;
      this.events.push(event);
      switch (event.event) {
        case 'welcome': this.id = event.id; this.welcomeAt = at; break;
        case 'message': this.messages.push([event.from, event.data, at]); break;
        case 'peer_joined': this.members.add(event.peer); break;
        case 'peer_left': this.members.delete(event.peer); break;
        case 'link_up':
          this.links.set(event.peer, event.candidate ?? '?');
          this.linkEvents.push({ event: 'link_up', peer: event.peer, candidate: event.candidate, at });
          break;
        case 'link_down':
          this.links.delete(event.peer);
          this.linkEvents.push({ event: 'link_down', peer: event.peer, at });
          break;
        case 'view':
          // The selected pair can change after link_up (and a far end first
          // known as prflx is named by its signalled type once it arrives).
          for (const [peer, type] of Object.entries(event.candidates ?? {})) {
            if (this.links.has(Number(peer))) this.links.set(Number(peer), type);
          }
          break;
        case 'left': this.left = event; break;
        default: break;
      }
    });
    child.once('exit', (code, signal) => {
      if (!this.stopping && (code || signal)) {
        console.log(`# [${label}] mesh-peer exited (${code ?? signal})\n${this.stderr}`);
      }
    });
  }

  say(text) { this.child.stdin.write(`${text}\n`); }

  welcomed(timeoutMs = 15000) {
    return waitFor(() => this.id, { timeoutMs, what: `${this.label}'s welcome` });
  }

  // SIGTERM: the peer leaves gracefully and prints its counters; resolves
  // with the "left" event (null if it died without one).
  async stop() {
    this.stopping = true;
    await stopChild(this.child);
    await sleep(20);  // the last stdout line
    return this.left;
  }

  dump() {
    return `${this.label} (id ${this.id}, home ${this.home}): links ${JSON.stringify([...this.links])}\n` +
      `  stderr: ${this.stderr.trim().split('\n').slice(-8).join('\n          ')}`;
  }
}

// Waits until every peer of `peers` knows every other one.
export async function allKnowEachOther(peers, timeoutMs = 20000) {
  await waitFor(() => peers.every((p) => peers.every((q) => p === q || p.members.has(q.id))),
    { timeoutMs, what: 'every peer to know every other' });
}

// Broadcasts `count` numbered lines from the given sources (round robin) and
// waits until every peer holds every other source's lines; returns nothing,
// asserts exactly-once delivery.
export async function broadcastAndCheck(peers, sources, count, { tag = 'm', timeoutMs = 30000, gapMs = 5 } = {}) {
  const sent = new Map();  // id -> [texts]
  for (let i = 0; i < count; ++i) {
    const source = sources[i % sources.length];
    const text = `${tag}-${i}-from-${source.id}`;
    if (!sent.has(source.id)) sent.set(source.id, []);
    sent.get(source.id).push(text);
    source.say(text);
    if (gapMs) await sleep(gapMs);
  }
  const expectedFor = (peer) => count - (sent.get(peer.id) || []).length;
  const ours = (peer) => peer.messages.filter(([, data]) => data.startsWith(`${tag}-`));
  try {
    await waitFor(() => peers.every((p) => ours(p).length >= expectedFor(p)),
      { timeoutMs, what: `${count} broadcasts everywhere` });
  } catch (error) {
    const have = (p) => new Set(ours(p).map(([, data]) => data));
    const missing = peers.map((p) => {
      const got = have(p);
      const lost = [...sent].filter(([from]) => from !== p.id).flatMap(([, texts]) => texts)
        .filter((text) => !got.has(text));
      return `${p.label}: ${ours(p).length}/${expectedFor(p)}${lost.length ? `, missing ${lost.join(' ')}` : ''}`;
    });
    error.message += `\n  ${missing.join('\n  ')}`;
    throw error;
  }
  await sleep(300);  // duplicates, if any, would arrive now
  for (const peer of peers) {
    const got = ours(peer).map(([from, data]) => `${from}:${data}`).sort();
    const want = [];
    for (const [from, texts] of sent) {
      if (from !== peer.id) for (const text of texts) want.push(`${from}:${text}`);
    }
    assert.deepEqual(got, want.sort(), `${peer.label} got every broadcast exactly once`);
  }
}

// meshd's ICE server flags for this lab: `stun`, `turn` (REST credentials
// from the run's secret file, `ttl` e.g. '1h' or '1s').
NatLab.prototype.meshdIceArgs = function meshdIceArgs({ stun = true, turn = true, ttl = '1h' } = {}) {
  const args = [];
  if (stun) args.push('--stun', `stun:${SERVER_IP}:${TURN_PORT}`);
  if (turn) {
    args.push('--turn', `turn:${SERVER_IP}:${TURN_PORT}?transport=udp`,
      '--turn-secret-file', this.secretFile, '--turn-ttl', ttl);
  }
  return args;
};

// Path cost order of the candidate types (docs: relay > srflx > prflx > host).
const typeRank = { host: 0, prflx: 1, srflx: 2, relay: 3 };

// The links among `peers` as "labelA-labelB" -> candidate type, from both
// ends' link_up lines. Each end knows its own (local) candidate for sure,
// but may know the far end's only as "prflx" (a check that arrived before
// the candidate's signalling), so the two ends can differ: the link's type
// is the costlier of the two reports, which is never below the real type.
// (Same-home links can thus read "prflx" instead of "host": nat_host checks
// that they do not.) Unknown reports ("?", absent field) show as such.
export function linkTypes(peers) {
  const byId = new Map(peers.map((p) => [p.id, p]));
  const out = new Map();
  for (const p of peers) {
    for (const [peer, type] of p.links) {
      const q = byId.get(peer);
      if (!q) continue;
      const key = [p.label, q.label].sort().join('-');
      const other = q.links.get(p.id) ?? type;
      if (!(type in typeRank) || !(other in typeRank)) {
        out.set(key, type === other ? type : `${type}/${other}`);
      } else {
        out.set(key, typeRank[type] >= typeRank[other] ? type : other);
      }
    }
  }
  return out;
}

export function describe(peers) {
  return peers.map((p) => p.dump()).join('\n');
}
