// Unreliable broadcasts in real Chromium (mesh.broadcast(data, {reliable:
// false})): the message event says so and carries the sender's seq (numbered
// apart from reliable ones), the second data channel opens on first use only
// (from either side), such a message never waits behind a reliable one that
// was lost, and it crosses between browser and native peers (libwebrtc).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, newPage, startMeshd, waitFor } from './lib.mjs';
import { meshPeerPath, startNative } from './native_peer.mjs';

let server;
let browser;
const natives = [];

before(async () => {
  server = await startMeshd();
  browser = await launchBrowser({ loopback: true });
});

after(async () => {
  await Promise.all(natives.map((peer) => peer.stop()));
  if (browser) await browser.close();
  if (server) await server.stop();
});

// A test page joined to `group`; messages and gaps land in window.log, in
// the order the application got them. `beforeJoin` runs in the page first;
// `options` go to Mesh.join.
async function joinPage(label, group, beforeJoin = null, options = {}) {
  const page = await newPage(browser, label);
  await page.goto(`${server.http}/test/`);
  await page.waitForFunction(() => window.p2pmeshReady === true);
  if (beforeJoin) await page.evaluate(beforeJoin);
  const id = await page.evaluate(async ({ url, group, options }) => {
    window.mesh = await window.testJoin({ ...options, url, group });
    window.log = [];
    window.mesh.on('message', (m) => window.log.push(
      { kind: 'message', from: m.from, text: m.text, seq: m.seq, reliable: m.reliable }));
    window.mesh.on('gap', (g) => window.log.push({ kind: 'gap', ...g }));
    return window.mesh.id;
  }, { url: server.ws, group, options });
  return { page, id, label };
}

const link = (page, peer) => page.evaluate(
  (peer) => window.mesh.links().find((l) => l.open && l.peer === peer) || null, peer);
const messages = async (page) => (await page.evaluate(() => window.log))
  .filter((e) => e.kind === 'message');

test('the unreliable channel opens on first use and its messages say reliable: false', async () => {
  const a = await joinPage('A', 'first-use');
  const b = await joinPage('B', 'first-use');
  await waitFor(async () => (await link(a.page, b.id)) && (await link(b.page, a.id)),
    { what: 'a link between A and B' });

  // Reliable traffic alone never opens it.
  assert.equal(await a.page.evaluate(() => window.mesh.broadcast('r1')), 1);
  await waitFor(async () => (await messages(b.page)).length === 1, { what: 'r1 at B' });
  assert.equal((await link(a.page, b.id)).unreliableChannel, false);
  assert.equal((await link(b.page, a.id)).unreliableChannel, false);

  // The first unreliable broadcast opens it on A's side; B accepts it.
  assert.equal(await a.page.evaluate(() => window.mesh.broadcast('u1', { reliable: false })), 1,
    'numbered apart from the reliable ones');
  await waitFor(async () => (await link(a.page, b.id)).unreliableChannel, { what: 'A\'s channel open' });
  await waitFor(async () => (await link(b.page, a.id)).unreliableChannel,
    { what: 'B accepted the channel without sending on it' });
  const seqs = await a.page.evaluate(() => {
    const out = [];
    for (let i = 2; i <= 20; ++i) out.push(window.mesh.broadcast(`u${i}`, { reliable: false }));
    out.push(window.mesh.broadcast('r2'));
    return out;
  });
  assert.deepEqual(seqs, [...Array.from({ length: 19 }, (_, i) => i + 2), 2]);
  assert.equal(await b.page.evaluate(() => window.mesh.broadcast(new Uint8Array([7]), { reliable: false })), 1);

  await waitFor(async () => (await messages(b.page)).length >= 22, { what: 'every message at B' });
  await waitFor(async () => (await messages(a.page)).length >= 1, { what: 'B\'s message at A' });
  await new Promise((resolve) => setTimeout(resolve, 300));  // duplicates, if any, would come now
  const got = await messages(b.page);
  assert.equal(got.length, 22, 'each once');
  for (const m of got) {
    assert.equal(m.from, a.id);
    assert.equal(m.reliable, m.text.startsWith('r'), m.text);
    assert.equal(m.text, `${m.text[0]}${m.seq}`, 'the seq of its own mode');
  }
  assert.deepEqual(new Set(got.map((m) => m.text)).size, 22);
  const back = await messages(a.page);
  assert.deepEqual(back.map((m) => [m.from, m.seq, m.reliable]), [[b.id, 1, false]]);
  assert.equal((await a.page.evaluate(() => window.log)).filter((e) => e.kind === 'gap').length, 0);
  await a.page.close();
  await b.page.close();
});

test('an unreliable message is not held behind a lost reliable one', async () => {
  // Page A's data channel `data` swallows every copy of the reliable message
  // "LOST-ME" (the broadcast and the repairs B pulls): B holds A's next
  // reliable message until no copy can be left (B's historyAgeMs, short
  // here: a gap). An unreliable message sent after both reaches B at once.
  const swallow = () => {
    const needle = new TextEncoder().encode('LOST-ME');
    const holds = (bytes) => {
      outer: for (let i = 0; i + needle.length <= bytes.length; ++i) {
        for (let j = 0; j < needle.length; ++j) if (bytes[i + j] !== needle[j]) continue outer;
        return true;
      }
      return false;
    };
    const send = RTCDataChannel.prototype.send;
    window.swallowed = 0;
    RTCDataChannel.prototype.send = function patched(data) {
      const bytes = ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
        : data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(0);
      if (this.label === 'data' && holds(bytes)) {
        window.swallowed += 1;
        return undefined;
      }
      return send.call(this, data);
    };
  };
  const a = await joinPage('A', 'no-wait', swallow);
  const b = await joinPage('B', 'no-wait', null, { historyAgeMs: 3000 });
  await waitFor(async () => (await link(a.page, b.id)) && (await link(b.page, a.id)),
    { what: 'a link between A and B' });
  // B tracks A's reliable messages from the first one it gets: this one.
  await a.page.evaluate(() => window.mesh.broadcast('reliable warm-up'));
  await a.page.evaluate(() => window.mesh.broadcast('warm-up', { reliable: false }));
  await waitFor(async () => (await link(a.page, b.id)).unreliableChannel, { what: 'the unreliable channel' });
  await waitFor(async () => (await messages(b.page)).length === 2, { what: 'the warm-ups' });

  await a.page.evaluate(() => {
    window.mesh.broadcast('LOST-ME');
    window.mesh.broadcast('reliable after the hole');
    window.mesh.broadcast('fresh', { reliable: false });
  });
  await waitFor(async () => (await messages(b.page)).some((m) => m.text === 'fresh'), { what: 'fresh at B' });
  assert.ok(!(await messages(b.page)).some((m) => m.text === 'reliable after the hole'),
    'the reliable message still waits for the lost one');
  await waitFor(async () => (await messages(b.page)).some((m) => m.text === 'reliable after the hole'),
    { what: 'the reliable message after the gap', timeoutMs: 15000 });
  const log = (await b.page.evaluate(() => window.log)).slice(2);
  assert.deepEqual(log.map((e) => (e.kind === 'gap' ? ['gap', e.from, e.fromSeq, e.toSeq] : [e.text, e.seq, e.reliable])), [
    ['fresh', 2, false],
    ['gap', a.id, 2, 2],
    ['reliable after the hole', 3, true],
  ]);
  assert.ok(await a.page.evaluate(() => window.swallowed) >= 2, 'the repairs were swallowed too');
  assert.ok(await b.page.evaluate(() => window.mesh.counters().pullsSent) >= 1);
  await a.page.close();
  await b.page.close();
});

test('unreliable messages cross between browser and native peers', { skip: !meshPeerPath && 'MESH_PEER not set' }, async () => {
  const page = await joinPage('P', 'mixed');
  const native = startNative(server.ws, 'mixed', 'N', ['--unreliable']);
  natives.push(native);
  await waitFor(() => native.id !== 0, { what: 'the native peer\'s welcome' });
  await waitFor(async () => (await link(page.page, native.id)) && native.links.has(page.id),
    { what: 'a browser-native link' });
  native.say('from native 1');
  await waitFor(async () => (await messages(page.page)).length === 1, { what: 'the native message' });
  await page.page.evaluate(() => window.mesh.broadcast('from page 1', { reliable: false }));
  await waitFor(() => native.events.some((e) => e.event === 'message'), { what: 'the page\'s message' });
  await waitFor(async () => (await link(page.page, native.id)).unreliableChannel, { what: 'the page\'s channel' });
  native.say('from native 2');
  await page.page.evaluate(() => window.mesh.broadcast('from page 2', { reliable: false }));
  await waitFor(async () => (await messages(page.page)).length === 2
    && native.events.filter((e) => e.event === 'message').length === 2, { what: 'the second messages' });
  assert.deepEqual((await messages(page.page)).map((m) => [m.text, m.seq, m.reliable]),
    [['from native 1', 1, false], ['from native 2', 2, false]]);
  assert.deepEqual(native.events.filter((e) => e.event === 'message').map((e) => [e.data, e.seq, e.reliable]),
    [['from page 1', 1, false], ['from page 2', 2, false]]);
  await page.page.close();
});
