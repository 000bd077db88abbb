// The module API from a plain page (web/test/): join, broadcast, receive,
// events, view, leave; and the module survives hostile input.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { launchBrowser, newPage, startMeshd, waitFor, webRoot } from './lib.mjs';

let server;
let browser;

// meshd hands out a STUN server (on loopback, where nothing answers: the
// links still form through host candidates) in its welcome.
const STUN = 'stun:127.0.0.1:3478';

before(async () => {
  server = await startMeshd(['--stun', STUN]);
  browser = await launchBrowser({ loopback: true });
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

async function openTestPage(label) {
  const page = await newPage(browser, label);
  await page.goto(`${server.http}/test/`);
  await page.waitForFunction(() => window.p2pmeshReady === true);
  return page;
}

// Joins in the page and records every event on window.log.
async function join(page, group) {
  return page.evaluate(async ({ url, group }) => {
    const mesh = await window.testJoin({ url, group });
    window.mesh = mesh;
    window.log = { message: [], peer: [], link: [], named: [], change: 0, gap: [] };
    mesh.on('message', (m) => window.log.message.push({
      from: m.from, text: m.text, bytes: [...m.data], seq: m.seq, reliable: m.reliable,
    }));
    mesh.on('gap', (g) => window.log.gap.push(g));
    mesh.on('peer', (e) => window.log.peer.push(e));
    mesh.on('link', (e) => window.log.link.push(e));
    for (const event of ['peer-joined', 'peer-left', 'link-up', 'link-down']) {
      mesh.on(event, (e) => window.log.named.push([event, e.peer]));
    }
    mesh.on('change', () => { window.log.change += 1; });
    return mesh.id;
  }, { url: server.ws, group });
}

// Every counter of the core (MeshCounters in src/core/mesh_node.hpp, in its
// order, camelCase: the native snapshot's and the state reports' names), after
// the bindings' malformedFrames; Mesh.counters() adds sendQueueDrops.
const CORE_COUNTERS = [
  'malformedPackets', 'badRoutes', 'misroutedPackets', 'duplicatePackets', 'malformedUpdates',
  'forgedUpdates', 'staleUpdates', 'badSignals', 'foreignTopics', 'droppedHops',
  'oversizedBroadcasts', 'oversizedPublishes', 'broadcasts', 'delivered', 'relayed',
  'fallbackSent', 'fallbackReceived', 'offersRefused', 'linksOpened', 'linksTimedOut',
  'linksDead', 'repaired', 'linksDroppedForRoom', 'relayAllocationFailures',
  'heldForOrder', 'gaps', 'lateAfterGap', 'seqJumps', 'announcementsSent', 'pullsSent',
  'pullsServed', 'pullsUnanswerable', 'unsignedDropped', 'badSignatures', 'verifyBacklogDrops',
  'signaturesChecked', 'signaturesFromSource',
];

const linkedTo = (page, peer) => page.evaluate(
  (peer) => window.mesh.links().some((l) => l.open && l.peer === peer), peer);

test('join, broadcast, receive, events, view and leave', async () => {
  const a = await openTestPage('A');
  const b = await openTestPage('B');
  const idA = await join(a, 'api');
  const idB = await join(b, 'api');
  assert.ok(idA > 0 && idB > 0 && idA !== idB, `ids ${idA} ${idB}`);

  await waitFor(async () => (await linkedTo(a, idB)) && (await linkedTo(b, idA)),
    { what: 'a link between A and B' });

  // The ICE servers of meshd's welcome are the page's (it gave none), and
  // the link says its path: direct, on one machine. Host, or peer-reflexive:
  // the pages signal only their 127.0.0.1 candidates (lib.mjs), and checks
  // from the unannounced others are peer-reflexive for what they are.
  for (const page of [a, b]) {
    assert.deepEqual(await page.evaluate(() => window.mesh.rtcConfig.iceServers), [{ urls: [STUN] }]);
    let paths;
    await waitFor(async () => (paths = await page.evaluate(() => window.mesh.links().filter((l) => l.open)
      .map((l) => l.candidateType).join()), ['host', 'prflx'].includes(paths)),
    { what: 'the link\'s path (host or prflx)' })
      .catch((error) => { throw new Error(`${error.message}: the paths are ${paths}`); });
  }

  // view(): both peers, one link, adjacency both ways.
  const view = await a.evaluate(() => window.mesh.view());
  assert.equal(view.self, idA);
  assert.deepEqual(view.peers, [idA, idB].sort((x, y) => x - y));
  assert.equal(view.links.length, 1);
  assert.deepEqual(view.adjacency[String(idA)], [idB]);

  // Events seen by A: B joined, the link to B came up, state changes.
  const logA = await a.evaluate(() => window.log);
  assert.ok(logA.peer.some((e) => e.peer === idB && e.joined), JSON.stringify(logA.peer));
  assert.ok(logA.link.some((e) => e.peer === idB && e.up), JSON.stringify(logA.link));
  // The same under the native callbacks' names (on_peer_joined, on_link_up).
  assert.ok(logA.named.some(([event, peer]) => event === 'peer-joined' && peer === idB));
  assert.ok(logA.named.some(([event, peer]) => event === 'link-up' && peer === idB));
  assert.ok(logA.change > 0);

  // A string and bytes.
  const seq1 = await a.evaluate(() => window.mesh.broadcast('hello from A'));
  const seq2 = await b.evaluate(() => window.mesh.broadcast(new Uint8Array([0, 1, 2, 255])));
  assert.equal(seq1, 1);
  assert.equal(seq2, 1);
  await waitFor(async () => (await b.evaluate(() => window.log.message.length)) >= 1
    && (await a.evaluate(() => window.log.message.length)) >= 1, { what: 'both messages' });
  const gotB = await b.evaluate(() => window.log.message);
  const gotA = await a.evaluate(() => window.log.message);
  assert.deepEqual(gotB.map((m) => [m.from, m.text]), [[idA, 'hello from A']]);
  assert.deepEqual(gotA.map((m) => [m.from, m.bytes]), [[idB, [0, 1, 2, 255]]]);
  // The message event carries the sender's seq and the delivery mode; no gap.
  assert.deepEqual(gotB.map((m) => [m.seq, m.reliable]), [[1, true]]);
  assert.deepEqual(gotA.map((m) => [m.seq, m.reliable]), [[1, true]]);
  assert.deepEqual(await b.evaluate(() => window.log.gap), []);
  // Both went over the data channel, not through the server.
  const countersB = await b.evaluate(() => window.mesh.counters());
  assert.equal(countersB.fallbackReceived, 0);
  assert.equal(countersB.delivered, 1);
  // Every counter is there (repaired, droppedHops, misroutedPackets...), a number.
  assert.deepEqual(Object.keys(countersB), ['malformedFrames', ...CORE_COUNTERS, 'sendQueueDrops']);
  for (const [name, value] of Object.entries(countersB)) {
    assert.ok(Number.isInteger(value) && value >= 0, `${name}: ${value}`);
  }
  assert.equal(countersB.repaired, 0);
  assert.equal(countersB.droppedHops, 0);
  assert.equal(countersB.misroutedPackets, 0);

  // snapshot() (state(), its old name, too): the hook a dashboard report would use.
  assert.deepEqual(await a.evaluate(() => window.mesh.state().id), idA);
  const state = await a.evaluate(() => window.mesh.snapshot());
  assert.equal(state.id, idA);
  assert.equal(state.group, 'api');
  assert.equal(state.joined, true);
  assert.deepEqual(state.tree.edges, [[idA, idB]]);

  // leave(): B sees A leave, its view drops A; A can no longer broadcast.
  await a.evaluate(() => window.mesh.leave());
  await waitFor(() => b.evaluate((idA) => window.log.peer.some((e) => e.peer === idA && !e.joined), idA),
    { what: 'B to see A leave' });
  await waitFor(() => b.evaluate((idA) => !window.mesh.view().peers.includes(idA), idA),
    { what: "A to leave B's view" });
  assert.ok(await b.evaluate((idA) => window.log.link.some((e) => e.peer === idA && !e.up), idA));
  const threw = await a.evaluate(() => {
    try { window.mesh.broadcast('after leave'); return false; } catch (e) { return true; }
  });
  assert.ok(threw, 'broadcast after leave throws');
  await b.evaluate(() => window.mesh.leave());
  await a.close();
  await b.close();
});

test('two peers in one page and a third page all deliver exactly once', async () => {
  const p = await openTestPage('P');
  const q = await openTestPage('Q');
  const ids = await p.evaluate(async (url) => {
    const one = await window.testJoin({ url, group: 'api2' });
    const two = await window.testJoin({ url, group: 'api2' });
    window.meshes = [one, two];
    window.got = [[], []];
    window.meshes.forEach((m, i) => m.on('message', (e) => window.got[i].push([e.from, e.text])));
    return [one.id, two.id];
  }, server.ws);
  const idQ = await join(q, 'api2');
  await waitFor(() => q.evaluate(() => window.mesh.view().peers.length === 3
    && window.mesh.links().filter((l) => l.open).length === 2), { what: 'Q linked to both' });
  await q.evaluate(() => window.mesh.broadcast('from Q'));
  await p.evaluate(() => window.meshes[0].broadcast('from P0'));
  await waitFor(() => p.evaluate(() => window.got[0].length >= 1 && window.got[1].length >= 2),
    { what: 'deliveries in P' });
  await waitFor(() => q.evaluate(() => window.log.message.length >= 1), { what: 'delivery in Q' });
  await new Promise((resolve) => setTimeout(resolve, 500));  // room for duplicates to show
  const got = await p.evaluate(() => window.got);
  assert.deepEqual(got[0], [[idQ, 'from Q']]);
  assert.deepEqual([...got[1]].sort(), [[ids[0], 'from P0'], [idQ, 'from Q']].sort());
  assert.deepEqual((await q.evaluate(() => window.log.message)).map((m) => [m.from, m.text]),
    [[ids[0], 'from P0']]);
  await p.evaluate(() => Promise.all(window.meshes.map((m) => m.leave())));
  await q.evaluate(() => window.mesh.leave());
  await p.close();
  await q.close();
});

test('hostile bytes from the server or a link do not break the module', async () => {
  const page = await openTestPage('H');
  const result = await page.evaluate(async () => {
    const module = await window.p2pmesh.loadP2pmesh();
    const peer = new module.MeshPeer({ group: 'g', seed: 7 });
    const frames = [
      [0x0a, 0xff],                    // truncated length
      [0x12, 0x05, 0x0a, 0x01],        // topic_message cut short
      [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],  // bad varint
      [],
    ];
    let actions = 0;
    for (const frame of frames) actions += peer.serverFrame(1000, new Uint8Array(frame)).length;
    // welcome id 5, then garbage on a link that does not exist and a bad mesh update
    const welcome = peer.serverFrame(2000, new Uint8Array([0x0a, 0x02, 0x08, 0x05]));
    peer.linkData(3000, 1, new Uint8Array([0x0a, 0x80]));
    const counters = peer.counters();
    const id = peer.id();
    peer.delete();
    return { actions, welcome: welcome.map((a) => a.type), counters, id };
  });
  assert.equal(result.actions, 0);
  assert.equal(result.counters.malformedFrames, 4);
  assert.deepEqual(Object.keys(result.counters), ['malformedFrames', ...CORE_COUNTERS]);
  assert.equal(result.id, 5);
  // welcome: 5 subscriptions + the first status, then a wake-up request.
  assert.deepEqual(result.welcome, ['send', 'send', 'send', 'send', 'send', 'send', 'wake']);
  await page.close();
});

test('join fails cleanly when no server answers', async () => {
  const page = await openTestPage('F');
  const message = await page.evaluate(async () => {
    try {
      await window.testJoin({ url: 'ws://127.0.0.1:59999/service', group: 'x', timeoutMs: 3000 });
      return 'joined';
    } catch (error) {
      return error.message;
    }
  });
  assert.match(message, /p2pmesh/);
  await page.close();
});

test('bad options and oversized broadcasts are clear errors, not a broken mesh', async () => {
  const page = await openTestPage('E');
  const errors = await page.evaluate(async (url) => {
    const attempt = async (options) => {
      try {
        await window.testJoin({ url, timeoutMs: 3000, ...options });
        return 'joined';
      } catch (error) {
        return `${error.name}: ${error.message}`;
      }
    };
    return {
      space: await attempt({ group: 'my room' }),
      dot: await attempt({ group: 'a.b' }),
      zeroPing: await attempt({ group: 'ok', pingIntervalMs: 0 }),
      maxBelowTarget: await attempt({ group: 'ok', targetConnections: 8 }),
      zeroDepth: await attempt({ group: 'ok', treeMaxDepth: 0 }),
      shortReports: await attempt({ group: 'ok', reportIntervalMs: 50 }),
      negative: await attempt({ group: 'ok', targetConnections: -1 }),
      defaults: await window.p2pmesh.defaultOptions(),
    };
  }, server.ws);
  assert.match(errors.space, /^TypeError: p2pmesh: group "my room"/);
  assert.match(errors.dot, /^TypeError: p2pmesh: group "a.b"/);
  assert.match(errors.zeroPing, /^RangeError: p2pmesh: pingIntervalMs/);
  // The rules and their messages are the core's (MeshConfig::validate), in JS names.
  assert.match(errors.maxBelowTarget,
    /^RangeError: p2pmesh: maxConnections \(6\) must be at least targetConnections \(8\)/);
  assert.match(errors.zeroDepth, /^RangeError: p2pmesh: treeMaxDepth must be at least 1/);
  assert.match(errors.shortReports, /^RangeError: p2pmesh: reportIntervalMs must be 0 \(off\) or at least 100 ms/);
  assert.match(errors.negative, /^RangeError: p2pmesh: targetConnections must be a non-negative integer/);
  // The defaults are the core's too (the same as the native PeerConfig's).
  assert.equal(errors.defaults.targetConnections, 4);
  assert.equal(errors.defaults.maxConnections, 6);
  assert.equal(errors.defaults.memberTimeoutMs, 150000);
  assert.equal(errors.defaults.treeMode, 'blend');
  assert.equal(errors.defaults.historyAgeMs, 20000);
  assert.equal(errors.defaults.maxPayloadBytes, 48 * 1024);

  const id = await join(page, 'limits');
  const result = await page.evaluate(() => {
    const limit = window.p2pmesh.MAX_PAYLOAD_BYTES;
    let oversized = 'sent';
    try {
      window.mesh.broadcast(new Uint8Array(limit + 1));
    } catch (error) {
      oversized = `${error.name}: ${error.message}`;
    }
    const seq = window.mesh.broadcast(new Uint8Array(limit));
    return { limit, oversized, seq };
  });
  assert.equal(result.limit, 48 * 1024);
  assert.match(result.oversized, /^RangeError: p2pmesh: broadcast of 49153 bytes/);
  assert.ok(result.seq > 0, 'the largest payload is sent');
  assert.ok(id > 0);
  await page.evaluate(() => window.mesh.leave());
  await page.close();
});

test('a burst beyond the channel buffer keeps the link: excess is queued, then dropped and counted', async () => {
  const a = await openTestPage('BA');
  const b = await openTestPage('BB');
  const idA = await join(a, 'burst');
  const idB = await join(b, 'burst');
  await waitFor(async () => (await linkedTo(a, idB)) && (await linkedTo(b, idA)),
    { what: 'a link between A and B' });
  const sent = 400;  // 400 x 48 KiB = 19 MB at once
  await a.evaluate((count) => {
    for (let i = 0; i < count; i += 1) window.mesh.broadcast(new Uint8Array(48 * 1024));
  }, sent);
  // Each leaves once signed (WebCrypto, asynchronous). Reliable delivery
  // (the default): B gets at least every message that left A, and each
  // dropped one is either repaired from A's history (bounded by bytes, so
  // only some) or reported in a gap event, never silence. So every seq
  // 1..sent is accounted for exactly once, in order.
  const accounted = () => b.evaluate(() => {
    const seqs = window.log.message.map((m) => m.seq);
    const gaps = window.log.gap.map((g) => [g.fromSeq, g.toSeq]);
    const covered = gaps.reduce((n, [from, to]) => n + to - from + 1, 0);
    return { seqs, gaps, covered, total: seqs.length + covered };
  });
  let seen;
  await waitFor(async () => (seen = await accounted()).total >= sent,
    { what: `${sent} seqs delivered or reported as gaps at B` }).catch((error) => {
    const got = seen && `${seen.seqs.length} delivered (last ${seen.seqs.at(-1)}), gaps ${JSON.stringify(seen.gaps)}`;
    throw new Error(`${error.message}: ${got}`);
  });
  const drops = await a.evaluate(() => window.mesh.counters().sendQueueDrops);
  assert.ok(drops > 0 && drops < sent, `drops ${drops}`);
  assert.ok(seen.seqs.length >= sent - drops, `${seen.seqs.length} delivered, ${drops} dropped at A`);
  const order = [...seen.seqs.map((seq) => [seq, seq]), ...seen.gaps].sort((x, y) => x[0] - y[0]);
  let next = 1;
  for (const [from, to] of order) {
    assert.equal(from, next, `seq ${next} accounted once (gaps ${JSON.stringify(seen.gaps)})`);
    next = to + 1;
  }
  assert.equal(next, sent + 1);
  assert.deepEqual(seen.seqs, [...seen.seqs].sort((x, y) => x - y), 'delivered in order');
  // Should the link go, say how: which side gave it up, and why.
  const linkState = (page) => page.evaluate(() => {
    const c = window.mesh.counters();
    return { links: window.mesh.links(), linksDead: c.linksDead, linksTimedOut: c.linksTimedOut,
      linksDroppedForRoom: c.linksDroppedForRoom, sendQueueDrops: c.sendQueueDrops };
  });
  assert.ok(await linkedTo(a, idB),
    `the link survived the burst: A ${JSON.stringify(await linkState(a))}, B ${JSON.stringify(await linkState(b))}`);
  for (const page of [a, b]) {
    await page.evaluate(() => window.mesh.leave());
    await page.close();
  }
});

test('the module is served beside its wasm and weighs under 300 KB gzipped', async () => {
  const sizes = {};
  for (const name of ['p2pmesh.mjs', 'p2pmesh.wasm']) {
    const response = await fetch(`${server.http}/${name}`);
    assert.equal(response.status, 200, name);
    const body = Buffer.from(await response.arrayBuffer());
    assert.deepEqual(body, readFileSync(path.join(webRoot, name)), `${name} as built`);
    sizes[name] = { bytes: body.length, gzip: gzipSync(body, { level: 9 }).length };
  }
  assert.equal((await fetch(`${server.http}/p2pmesh.wasm`)).headers.get('content-type'), 'application/wasm');
  const total = sizes['p2pmesh.mjs'].gzip + sizes['p2pmesh.wasm'].gzip;
  console.log(`sizes: ${JSON.stringify(sizes)}, gzipped together ${total} bytes`);
  assert.ok(total < 300 * 1024, `${total} bytes gzipped`);
});
