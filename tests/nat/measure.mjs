#!/usr/bin/env node
// Figures of the NAT network (not a pass/fail test): link setup time per
// candidate type and broadcast latency across the three homes. Run as root:
//
//   MESHD=build/release/bin/meshd MESH_PEER=build/release/bin/mesh-peer \
//     node tests/nat/measure.mjs [--trials 20] [--broadcasts 200]
//
// Link setup: a fresh peer (the joiner) joins a group holding one peer (the
// holder, a long-lived process) and dials it at once (after the echo of its
// first status, a round trip to meshd). The figure is the joiner's time from
// its welcome line to its link_up line: what a user sees when a peer joins.
// It holds the joiner's WebRTC start-up (a fresh process: engine, DTLS
// certificate), offer and answer through meshd (well under 1 ms here), ICE
// gathering and checks (libwebrtc paces checks), DTLS, SCTP, the data channel
// open and one GetStats (link_up names the path). The network adds no delay:
// the differences between cases are ICE's own work. Cases: host (same home
// a), srflx (homes a-b, STUN), relay (symmetric home s <-> home a, both
// dialling directions). Each trial is a fresh joiner process: a fresh ICE
// agent and TURN allocation. The candidate type is the one both ends report
// (linkTypes: the costlier of the two).
//
// Broadcast latency: 9 peers (3 per home) in one mesh, fallback off; each
// broadcast is written to one peer's stdin and its arrival read from every
// other peer's stdout: the time between the two, per delivery (includes the
// two processes' pipe I/O, ~0.1 ms).
//
// Prints a summary and, last, one JSON line with every figure.
import { parseArgs } from 'node:util';
import { HOMES, NatLab, linkTypes, sleep, waitFor } from './lib.mjs';

const { values: opts } = parseArgs({
  options: {
    trials: { type: 'string', default: '20' },
    broadcasts: { type: 'string', default: '200' },
  },
});
const trials = Number(opts.trials);
const broadcasts = Number(opts.broadcasts);

if (process.getuid() !== 0) {
  console.error('measure.mjs: needs root (network namespaces)');
  process.exit(2);
}

const quantile = (values, q) => {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
};
const stats = (values) => ({
  n: values.length,
  median_ms: +quantile(values, 0.5).toFixed(1),
  p95_ms: +quantile(values, 0.95).toFixed(1),
  max_ms: +Math.max(...values).toFixed(1),
});

const lab = new NatLab();
lab.up();
const figures = { link_setup: {}, broadcast_latency: {} };
try {
  await lab.startTurn();
  const server = await lab.startMeshd(lab.meshdIceArgs());

  const cases = [
    ['host', 'a', 'a'], ['srflx', 'a', 'b'], ['relay', 's', 'a'], ['relay', 'a', 's'],
  ];
  const setup = [];
  for (const [want, holderHome, joinerHome] of cases) {
    const group = `setup-${want}-${holderHome}${joinerHome}`;
    const holder = lab.startPeer(holderHome, server, { group, label: `holder-${holderHome}` });
    await holder.welcomed();
    const row = { case: `${want} ${joinerHome}->${holderHome}`, types: {}, joiner: [] };
    setup.push(row);
    for (let i = 0; i < trials; ++i) {
      const joiner = lab.startPeer(joinerHome, server,
        { group, label: `joiner-${joinerHome}`, args: ['--target-connections', '1'] });
      await joiner.welcomed();
      await waitFor(() => joiner.links.has(holder.id), { timeoutMs: 15000, what: `${want} link` });
      await waitFor(() => holder.links.has(joiner.id), { timeoutMs: 15000, what: 'the holder\'s link_up' });
      const up = joiner.linkEvents.find((e) => e.event === 'link_up' && e.peer === holder.id);
      const type = linkTypes([holder, joiner]).values().next().value ?? 'unreported';
      row.types[type] = (row.types[type] || 0) + 1;
      row.joiner.push(up.at - joiner.welcomeAt);
      await joiner.stop();
    }
    await holder.stop();
  }
  for (const row of setup) {
    figures.link_setup[row.case] = { types: row.types, ...stats(row.joiner) };
  }

  // Broadcast latency over a 9-peer mesh.
  const group = 'latency';
  const peers = [];
  for (let n = 1; n <= 3; ++n) {
    for (const home of HOMES) {
      const peer = lab.startPeer(home, server, { group, label: `${home}${n}`, args: ['--no-fallback'] });
      peers.push(peer);
      await peer.welcomed();
      await sleep(100);
    }
  }
  const lastView = (p) => [...p.events].reverse().find((e) => e.event === 'view');
  await waitFor(() => peers.every((p) => (lastView(p)?.reachable.length ?? 0) === peers.length - 1),
    { timeoutMs: 60000, intervalMs: 200, what: 'one mesh of 9' });
  await sleep(2000);  // RTT measurements settle (the blend tree uses them)
  const sentAt = new Map();
  const sentBy = new Map(peers.map((p) => [p, 0]));
  for (let i = 0; i < broadcasts; ++i) {
    const source = peers[i % peers.length];
    const text = `lat-${i}`;
    sentAt.set(text, [source, performance.now()]);
    sentBy.set(source, sentBy.get(source) + 1);
    source.say(text);
    await sleep(20);
  }
  const ours = (p) => p.messages.filter(([, d]) => d.startsWith('lat-'));
  await waitFor(() => peers.every((p) => ours(p).length >= broadcasts - sentBy.get(p)),
    { timeoutMs: 30000, what: 'every broadcast everywhere' });
  const all = [];
  const byPath = {};
  for (const peer of peers) {
    for (const [, text, at] of ours(peer)) {
      const [source, sent] = sentAt.get(text);
      const ms = at - sent;
      all.push(ms);
      const key = `${source.home}->${peer.home}`;
      (byPath[key] ||= []).push(ms);
    }
  }
  figures.broadcast_latency.all = stats(all);
  for (const key of Object.keys(byPath).sort()) figures.broadcast_latency[key] = stats(byPath[key]);
  const linkCounts = {};
  for (const type of linkTypes(peers).values()) linkCounts[type] = (linkCounts[type] || 0) + 1;
  figures.mesh_links_by_type = linkCounts;
  await Promise.all(peers.map((p) => p.stop()));
  await server.stop();
} finally {
  await lab.down();
}

console.log(`NAT network (namespaces, no added delay), ${trials} trials per case`);
console.log('link setup, joiner\'s welcome to its link_up (ms):');
for (const [name, row] of Object.entries(figures.link_setup)) {
  console.log(`  ${name.padEnd(12)} n=${String(row.n).padStart(3)}  median ${row.median_ms}  p95 ${row.p95_ms}  max ${row.max_ms}  reported ${JSON.stringify(row.types)}`);
}
console.log(`broadcast latency, 9 peers (3 per home), ${broadcasts} broadcasts (ms):`);
for (const [key, s] of Object.entries(figures.broadcast_latency)) {
  console.log(`  ${key.padEnd(10)} n=${String(s.n).padStart(4)}  median ${s.median_ms}  p95 ${s.p95_ms}  max ${s.max_ms}`);
}
console.log(`mesh links by type: ${JSON.stringify(figures.mesh_links_by_type)}`);
console.log(JSON.stringify(figures));
