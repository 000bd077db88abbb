#!/usr/bin/env node
// Reliable against unreliable broadcasts under random packet loss, with real
// peers: 12 mesh-peer processes (4 in each home of the NAT test network,
// tests/nat/topology.sh: two port-preserving NATs and a symmetric one, links
// across homes srflx or relayed by TURN) and meshd, in network namespaces
// this program builds and removes (also on failure or a signal: NatLab).
// Not a pass/fail test: it prints figures and a one-line summary.
//
//   sudo node bench/unreliable_loss.mjs [--loss 0,2,5] [--rounds 3] [--broadcasts 360] [--gap-ms 20]
//                                       [--only reliable|unreliable]
// P2PMESH_BENCH_SLOW_MS=N prints every unreliable delivery slower than N ms.
//
// (MESHD and MESH_PEER default to build/release/bin/.) Loss: nftables in
// every home namespace drops N% of the UDP packets its peers receive
// (`numgen random mod 100 < N drop`, input hook; this kernel has no netem),
// so each transmission between two peers crosses one lossy hop, relayed or
// not (the TURN server's namespace is lossless). On input, not output: a
// drop in the output hook fails the sender's sendto() (EPERM), which a lossy
// link never does and which libwebrtc reacts to. The WebSocket to meshd
// (TCP) is spared. Half the peers broadcast reliably, half unreliably
// (mesh-peer --unreliable); sources take turns, one broadcast every gap-ms,
// at every loss level over the same mesh; the levels take turns for
// `rounds` rounds (a burst of load from elsewhere on the machine lands on
// all of them alike), figures per level over all rounds. Latency: from the line written to
// the sender's stdin to the line read from each receiver's stdout (both
// pipes included, ~0.1 ms). Delivery: (message, receiver) pairs that arrived
// within 10 s of the last broadcast of the level.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.env.MESHD ||= path.join(root, 'build/release/bin/meshd');
process.env.MESH_PEER ||= path.join(root, 'build/release/bin/mesh-peer');

const { values: opts } = parseArgs({
  options: {
    loss: { type: 'string', default: '0,2,5' },
    rounds: { type: 'string', default: '3' },
    only: { type: 'string', default: '' },
    broadcasts: { type: 'string', default: '360' },
    'gap-ms': { type: 'string', default: '20' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  console.log('usage: sudo node bench/unreliable_loss.mjs [--loss 0,2,5] [--rounds 3] [--broadcasts 360] [--gap-ms 20] ' +
    '[--only reliable|unreliable]');
  process.exit(0);
}
const levels = opts.loss.split(',').map(Number);
const broadcasts = Number(opts.broadcasts);
const rounds = Number(opts.rounds);
const gapMs = Number(opts['gap-ms']);
if (levels.some((n) => !Number.isInteger(n) || n < 0 || n > 100) || !(broadcasts > 0) || !(gapMs >= 0)
    || !Number.isInteger(rounds) || rounds < 1 || !['', 'reliable', 'unreliable'].includes(opts.only)) {
  console.error('unreliable_loss: --loss takes integers 0..100, --rounds >= 1, --broadcasts > 0, --gap-ms >= 0, ' +
    '--only reliable or unreliable');
  process.exit(2);
}
if (process.getuid() !== 0) {
  console.error('unreliable_loss: needs root (network namespaces)');
  process.exit(2);
}
for (const program of [process.env.MESHD, process.env.MESH_PEER]) {
  if (!existsSync(program)) {
    console.error(`unreliable_loss: ${program} not found (build the release preset first)`);
    process.exit(2);
  }
}

const { HOMES, NatLab, sleep, waitFor } = await import('../tests/nat/lib.mjs');

const PEERS_PER_HOME = 4;
const DRAIN_MS = 10000;

// N% of the UDP packets a home's peers send are dropped (0: no rule).
function setLoss(lab, percent) {
  for (const home of HOMES) {
    const ns = lab.home(home);
    try {
      execFileSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'p2ploss'],
        { stdio: 'ignore' });
    } catch { /* not there yet */ }
    if (percent === 0) continue;
    const rules = [
      'table inet p2ploss {',
      '  chain in {',
      '    type filter hook input priority 0; policy accept;',
      `    meta l4proto udp numgen random mod 100 < ${percent} drop`,
      '  }',
      '}',
    ].join('\n');
    execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: rules });
  }
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
const ms = (x) => (x === undefined ? '-' : x.toFixed(1));

const lab = new NatLab();
lab.up();
const results = [];  // {loss, mode, n, expected, p50, p99, max, duplicates}
try {
  await lab.startTurn();
  const server = await lab.startMeshd(lab.meshdIceArgs());
  const group = 'loss';
  const peers = [];
  for (let n = 1; n <= PEERS_PER_HOME; ++n) {
    for (const home of HOMES) {
      // Alternate modes so that both have sources in every home.
      // (--only MODE: every source in that mode, to see one without the other.)
      const unreliable = opts.only ? opts.only === 'unreliable' : peers.length % 2 === 1;
      const peer = lab.startPeer(home, server,
        { group, label: `${home}${n}`, args: unreliable ? ['--unreliable'] : [] });
      peer.mode = unreliable ? 'unreliable' : 'reliable';
      peers.push(peer);
      await peer.welcomed();
      await sleep(100);
    }
  }
  const lastView = (p) => [...p.events].reverse().find((e) => e.event === 'view');
  await waitFor(() => peers.every((p) => (lastView(p)?.reachable.length ?? 0) === peers.length - 1),
    { timeoutMs: 60000, intervalMs: 200, what: `one mesh of ${peers.length}` });
  await sleep(2000);  // RTT measurements settle (the blend tree uses them)

  // Per level and mode: latencies, expected and duplicate counts, all rounds.
  const tally = new Map();
  const key = (loss, mode) => `${loss}/${mode}`;
  for (const loss of levels) {
    for (const mode of ['reliable', 'unreliable']) tally.set(key(loss, mode), { latencies: [], expected: 0, duplicates: 0 });
  }
  for (let round = 0; round < rounds; ++round) {
    for (const loss of levels) {
      setLoss(lab, loss);
      await sleep(1000);
      const tag = `R${round}L${loss}-`;
      const sent = new Map();  // text -> {source, at}
      const levelStart = performance.now();
      for (let i = 0; i < broadcasts; ++i) {
        const source = peers[i % peers.length];
        const text = `${tag}${i}`;
        sent.set(text, { source, at: performance.now() });
        source.say(text);
        if (gapMs) await sleep(gapMs);
      }
      const ours = (p) => p.messages.filter(([, d]) => d.startsWith(tag));
      const expectedAll = broadcasts * (peers.length - 1);
      await waitFor(() => peers.reduce((sum, p) => sum + ours(p).length, 0) >= expectedAll,
        { timeoutMs: DRAIN_MS, what: 'every broadcast everywhere' }).catch(() => { /* losses */ });
      for (const [, { source }] of sent) tally.get(key(loss, source.mode)).expected += peers.length - 1;
      for (const peer of peers) {
        const seen = new Set();
        for (const [, text, at] of ours(peer)) {
          const origin = sent.get(text);
          if (!origin) continue;
          const t = tally.get(key(loss, origin.source.mode));
          if (seen.has(text)) { ++t.duplicates; continue; }
          seen.add(text);
          t.latencies.push(at - origin.at);
          if (process.env.P2PMESH_BENCH_SLOW_MS && origin.source.mode === 'unreliable'
              && at - origin.at > Number(process.env.P2PMESH_BENCH_SLOW_MS)) {
            console.log(`# slow: ${text} ${origin.source.label}(${origin.source.id}) -> ${peer.label}(${peer.id}) ` +
              `${(at - origin.at).toFixed(1)} ms, sent at +${(origin.at - levelStart).toFixed(0)} ms`);
          }
        }
      }
    }
  }
  for (const loss of levels) {
    for (const mode of ['reliable', 'unreliable']) {
      const { latencies, expected, duplicates } = tally.get(key(loss, mode));
      latencies.sort((x, y) => x - y);
      results.push({
        loss, mode, n: latencies.length, expected, duplicates,
        p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: latencies[latencies.length - 1],
      });
    }
  }
  setLoss(lab, 0);
  await Promise.all(peers.map((p) => p.stop()));
  await server.stop();
} finally {
  await lab.down();
}

console.log(`${PEERS_PER_HOME * HOMES.length} native peers in 3 homes (namespaces, no added delay), ` +
  `${rounds} rounds of ${broadcasts} broadcasts per loss level (half reliable, half unreliable sources), ` +
  `one every ${gapMs} ms`);
console.log(`machine load average (1 min) at the end: ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} cores`);
console.log('loss  mode        delivered            p50 ms  p99 ms  max ms  duplicates');
for (const r of results) {
  const delivery = `${r.n}/${r.expected} (${(100 * r.n / r.expected).toFixed(2)}%)`;
  console.log(`${String(r.loss).padStart(3)}%  ${r.mode.padEnd(10)}  ${delivery.padEnd(19)}  ` +
    `${ms(r.p50).padStart(6)}  ${ms(r.p99).padStart(6)}  ${ms(r.max).padStart(6)}  ${r.duplicates}`);
}
const find = (loss, mode) => results.find((r) => r.loss === loss && r.mode === mode);
const base = Math.min(...levels);
const worst = Math.max(...levels);
const u0 = find(base, 'unreliable');
const uw = find(worst, 'unreliable');
const r0 = find(base, 'reliable');
const rw = find(worst, 'reliable');
if (u0 && uw && r0 && rw) {
  const ratio = uw.p99 / u0.p99;
  console.log(`summary: unreliable p99 ${ms(u0.p99)} ms at ${base}% loss, ${ms(uw.p99)} ms at ${worst}% ` +
    `(x${ratio.toFixed(2)}, target <= 1.5: ${ratio <= 1.5 ? 'met' : 'NOT met'}), delivery ` +
    `${(100 * uw.n / uw.expected).toFixed(1)}%; reliable p99 ${ms(r0.p99)} -> ${ms(rw.p99)} ms ` +
    `(x${(rw.p99 / r0.p99).toFixed(2)}), delivery ${(100 * rw.n / rw.expected).toFixed(1)}%`);
}
console.log(JSON.stringify(results));
