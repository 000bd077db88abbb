// Browser peers (p2pmesh.mjs in headless Chromium) and native peers
// (mesh-peer, libwebrtc) in the same group: links in both directions, with
// Chromium's default settings (mDNS host candidates), and the 3 chat
// pages + 3 native peers exchanging messages exactly once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, newPage, sleep, startMeshd, waitFor } from './lib.mjs';
import { meshPeerPath, startNative as startNativePeer } from './native_peer.mjs';

let server;
const natives = [];

before(async () => {
  assert.ok(meshPeerPath, 'MESH_PEER (path of mesh-peer) is set');
  server = await startMeshd();
});

after(async () => {
  await Promise.all(natives.map((peer) => peer.stop()));
  if (server) await server.stop();
});

// One mesh-peer process on this test's meshd.
function startNative(group, label, extraArgs = []) {
  const peer = startNativePeer(server.ws, group, label, extraArgs);
  natives.push(peer);
  return peer;
}

async function welcomed(peer) {
  await waitFor(() => peer.id !== 0, { what: `${peer.label}'s welcome` });
  return peer.id;
}

// A plain test page joined to `group`; its messages land in window.got.
async function joinPage(browser, label, group, options = {}) {
  const page = await newPage(browser, label);
  await page.goto(`${server.http}/test/`);
  await page.waitForFunction(() => window.p2pmeshReady === true);
  const id = await page.evaluate(async ({ url, group, options }) => {
    window.mesh = await window.testJoin({ url, group, ...options });
    window.got = [];
    window.mesh.on('message', (m) => window.got.push([m.from, m.text]));
    return window.mesh.id;
  }, { url: server.ws, group, options });
  return { page, id, label };
}

const openLink = (page, peer) => page.evaluate(
  (peer) => window.mesh.links().find((l) => l.open && l.peer === peer) || null, peer);

test('default Chromium and native peers link in both directions', async () => {
  const browser = await launchBrowser({ loopback: false });  // Chromium defaults: mDNS
  try {
    // Browser dials native: two natives holding their one target link, then a page.
    const n0 = startNative('dial-native', 'N0', ['--target-connections', '1']);
    await welcomed(n0);
    const n1 = startNative('dial-native', 'N1', ['--target-connections', '1']);
    await welcomed(n1);
    await waitFor(() => n0.links.has(n1.id) && n1.links.has(n0.id), { what: 'N0-N1 link' });
    const pa = await joinPage(browser, 'PA', 'dial-native');
    for (const native of [n0, n1]) {
      const link = await waitFor(() => openLink(pa.page, native.id),
        { what: `page -> ${native.label} link`, timeoutMs: 30000 });
      assert.equal(link.initiated, true, 'the page dialled the native peer');
      await waitFor(() => native.links.has(pa.id), { what: `${native.label} sees the link up` });
    }
    // Native dials browser: two pages holding their one target link, then a native.
    const pb0 = await joinPage(browser, 'PB0', 'dial-browser', { targetConnections: 1 });
    const pb1 = await joinPage(browser, 'PB1', 'dial-browser', { targetConnections: 1 });
    await waitFor(async () => (await openLink(pb0.page, pb1.id)) && (await openLink(pb1.page, pb0.id)),
      { what: 'PB0-PB1 link' });
    const nb = startNative('dial-browser', 'NB');
    await welcomed(nb);
    for (const page of [pb0, pb1]) {
      const link = await waitFor(() => openLink(page.page, nb.id),
        { what: `NB -> ${page.label} link`, timeoutMs: 30000 });
      assert.equal(link.initiated, false, 'the native peer dialled the page');
    }
    await waitFor(() => nb.links.has(pb0.id) && nb.links.has(pb1.id), { what: 'NB sees both links up' });

    // Messages both ways over those links (not through the server).
    await pa.page.evaluate(() => window.mesh.broadcast('from the page'));
    n0.say('from N0');
    nb.say('from NB');
    await pb0.page.evaluate(() => window.mesh.broadcast('from PB0'));
    await waitFor(() => n0.messages.length >= 1 && n1.messages.length >= 2, { what: 'natives receive' });
    await waitFor(() => nb.messages.length >= 1, { what: 'NB receives' });
    await waitFor(async () => (await pa.page.evaluate(() => window.got.length)) >= 1
      && (await pb0.page.evaluate(() => window.got.length)) >= 1
      && (await pb1.page.evaluate(() => window.got.length)) >= 2, { what: 'pages receive' });
    await sleep(500);
    assert.deepEqual(n0.messages, [[pa.id, 'from the page']]);
    assert.deepEqual([...n1.messages].sort(), [[n0.id, 'from N0'], [pa.id, 'from the page']].sort());
    assert.deepEqual(await pa.page.evaluate(() => window.got), [[n0.id, 'from N0']]);
    assert.deepEqual(nb.messages, [[pb0.id, 'from PB0']]);
    assert.deepEqual(await pb0.page.evaluate(() => window.got), [[nb.id, 'from NB']]);
    assert.deepEqual([...(await pb1.page.evaluate(() => window.got))].sort(),
      [[nb.id, 'from NB'], [pb0.id, 'from PB0']].sort());
    for (const page of [pa, pb0, pb1]) {
      const counters = await page.page.evaluate(() => window.mesh.counters());
      assert.equal(counters.fallbackReceived, 0, `${page.label} got everything over links`);
    }
    for (const page of [pa, pb0, pb1]) await page.page.evaluate(() => window.mesh.leave());
  } finally {
    await browser.close();
  }
});

test('3 chat pages + 3 native peers: every message exactly once, right sender ids; reload rejoins', async () => {
  const browser = await launchBrowser({ loopback: true });
  try {
    const room = 'six';
    const pages = [];
    for (const label of ['C1', 'C2', 'C3']) {
      const page = await newPage(browser, label);
      await page.goto(`${server.http}/chat?room=${room}`);
      pages.push(page);
    }
    const pageIds = [];
    for (const page of pages) {
      pageIds.push(await (await page.waitForFunction(() => Number(document.body.dataset.peer || 0))).jsonValue());
    }
    const nativePeers = ['N1', 'N2', 'N3'].map((label) => startNative(room, label));
    const nativeIds = [];
    for (const native of nativePeers) nativeIds.push(await welcomed(native));
    const all = [...pageIds, ...nativeIds];
    assert.equal(new Set(all).size, 6);

    // Everyone knows everyone, and every page links to at least one native
    // peer (the room has browser<->native links, not just server fallback).
    await waitFor(async () => {
      for (const native of nativePeers) {
        if (!all.every((id) => id === native.id || native.peers.has(id))) return false;
      }
      for (const page of pages) {
        const view = await page.evaluate(() => window.p2pmeshChat.mesh.view());
        if (view.peers.length !== 6) return false;
      }
      return true;
    }, { what: 'all six peers to know each other', timeoutMs: 30000 });
    await waitFor(async () => {
      for (const page of pages) {
        const links = await page.evaluate(() => window.p2pmeshChat.mesh.links());
        if (!links.some((l) => l.open && nativeIds.includes(l.peer))) return false;
      }
      return true;
    }, { what: 'every page linked to a native peer', timeoutMs: 30000 });

    const texts = new Map();
    for (let i = 0; i < pages.length; ++i) {
      const text = `chat page ${i + 1} says hi`;
      texts.set(pageIds[i], text);
      await pages[i].fill('#message', text);
      await pages[i].click('#send');
    }
    for (let i = 0; i < nativePeers.length; ++i) {
      const text = `native ${i + 1} says hi ✓`;
      texts.set(nativeIds[i], text);
      nativePeers[i].say(text);
    }
    const expectedFor = (self) => [...texts].filter(([from]) => from !== self).sort();
    const pageReceived = (page) => page.$$eval('#log li.message',
      (items) => items.map((item) => [Number(item.dataset.from), item.dataset.text]));
    await waitFor(async () => {
      for (const native of nativePeers) if (native.messages.length < 5) return false;
      for (const page of pages) if ((await pageReceived(page)).length < 5) return false;
      return true;
    }, { what: 'every peer to receive 5 messages', timeoutMs: 30000 });
    await sleep(1000);  // room for duplicates to show up
    for (const native of nativePeers) {
      assert.deepEqual([...native.messages].sort(), expectedFor(native.id), `native ${native.label}`);
    }
    for (let i = 0; i < pages.length; ++i) {
      assert.deepEqual([...(await pageReceived(pages[i]))].sort(), expectedFor(pageIds[i]), `page ${i + 1}`);
    }

    // A reload rejoins with a new id: the old one leaves the native peers'
    // views too, and the page gets what a native peer says afterwards.
    const oldId = pageIds[0];
    await pages[0].reload();
    const newId = await (await pages[0].waitForFunction(() => Number(document.body.dataset.peer || 0))).jsonValue();
    assert.notEqual(newId, oldId);
    await waitFor(() => nativePeers.every((native) => !native.peers.has(oldId) && native.peers.has(newId)),
      { what: 'native peers to drop the old id and know the new one' });
    for (const page of pages.slice(1)) {
      await waitFor(() => page.evaluate(({ oldId, newId }) => {
        const peers = window.p2pmeshChat.mesh.view().peers;
        return !peers.includes(oldId) && peers.includes(newId);
      }, { oldId, newId }), { what: 'pages to drop the old id' });
    }
    nativePeers[1].say('after the reload');
    await waitFor(async () => (await pageReceived(pages[0])).length >= 1, { what: 'the reloaded page to receive' });
    await sleep(300);
    assert.deepEqual(await pageReceived(pages[0]), [[nativeIds[1], 'after the reload']]);
    for (const page of pages) await page.close();
  } finally {
    await browser.close();
  }
});
