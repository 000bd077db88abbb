// Signed broadcasts (docs/security.md) between a real Chromium page
// (WebCrypto Ed25519) and a native peer (mesh-peer, libsodium) in one group
// with require_signatures: messages both ways arrive verified; the page's
// counters see nothing dropped. Also the cost of signing and checking in the
// page (printed, not asserted).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, newPage, startMeshd, waitFor } from './lib.mjs';
import { meshPeerPath, startNative } from './native_peer.mjs';

let server;
let native;

before(async () => {
  assert.ok(meshPeerPath, 'MESH_PEER (path of mesh-peer) is set');
  server = await startMeshd();
});

after(async () => {
  if (native) await native.stop();
  if (server) await server.stop();
});

test('a page and a native peer exchange signed messages, verified both ways', async () => {
  const browser = await launchBrowser();
  try {
    native = startNative(server.ws, 'signed', 'N', ['--require-signatures']);
    await waitFor(() => native.id !== 0, { what: "the native peer's welcome" });
    const page = await newPage(browser, 'P');
    await page.goto(`${server.http}/test/`);
    await page.waitForFunction(() => window.p2pmeshReady === true);
    const pageId = await page.evaluate(async ({ url }) => {
      window.mesh = await window.testJoin({ url, group: 'signed', requireSignatures: true });
      window.got = [];
      window.mesh.on('message', (m) => window.got.push({ from: m.from, text: m.text, verified: m.verified, seq: m.seq }));
      return window.mesh.id;
    }, { url: server.ws });
    assert.equal(await page.evaluate(() => window.mesh.publicKey.length), 32);
    await waitFor(() => native.links.has(pageId), { what: 'the page-native link' });

    const count = 20;
    await page.evaluate((count) => {
      for (let i = 1; i <= count; ++i) window.mesh.broadcast(`from page ${i}`);
    }, count);
    for (let i = 1; i <= count; ++i) native.say(`from native ${i}`);

    await waitFor(() => native.events.filter((e) => e.event === 'message').length >= count,
      { what: "the page's messages at the native peer" });
    await waitFor(() => page.evaluate((count) => window.got.length >= count, count),
      { what: "the native peer's messages at the page" });
    const atNative = native.events.filter((e) => e.event === 'message');
    assert.deepEqual(atNative.map((e) => e.data),
      Array.from({ length: count }, (_, i) => `from page ${i + 1}`));
    assert.ok(atNative.every((e) => e.from === pageId && e.verified === true),
      JSON.stringify(atNative.slice(0, 3)));
    const atPage = await page.evaluate(() => window.got);
    assert.deepEqual(atPage.map((m) => m.text),
      Array.from({ length: count }, (_, i) => `from native ${i + 1}`));
    assert.ok(atPage.every((m) => m.from === native.id && m.verified === true), JSON.stringify(atPage.slice(0, 3)));
    const counters = await page.evaluate(() => window.mesh.counters());
    assert.equal(counters.unsignedDropped, 0);
    assert.equal(counters.badSignatures, 0);

    // What signing and checking cost in this browser (WebCrypto, 1 KiB).
    const cost = await page.evaluate(async () => {
      const keys = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
      const message = new Uint8Array(1024 + 45);
      crypto.getRandomValues(message);
      const n = 2000;
      let signature;
      let start = performance.now();
      for (let i = 0; i < n; ++i) signature = await crypto.subtle.sign('Ed25519', keys.privateKey, message);
      const signUs = (performance.now() - start) * 1000 / n;
      start = performance.now();
      for (let i = 0; i < n; ++i) await crypto.subtle.verify('Ed25519', keys.publicKey, signature, message);
      const verifyUs = (performance.now() - start) * 1000 / n;
      return { signUs, verifyUs };
    });
    console.log(`WebCrypto Ed25519, 1 KiB message, ${navigatorUa(await page.evaluate(() => navigator.userAgent))}: ` +
      `sign ${cost.signUs.toFixed(1)} us, verify ${cost.verifyUs.toFixed(1)} us (mean of 2000, awaited one by one)`);
    await page.evaluate(() => window.mesh.leave());
  } finally {
    await browser.close();
  }
});

test('join refuses requireSignatures without a key, with the reason', async () => {
  const browser = await launchBrowser();
  try {
    const page = await newPage(browser, 'P');
    await page.goto(`${server.http}/test/`);
    await page.waitForFunction(() => window.p2pmeshReady === true);
    const error = await page.evaluate(async ({ url }) => {
      try {
        await window.testJoin({ url, group: 'unsigned', sign: false, requireSignatures: true });
        return '';
      } catch (e) {
        return `${e.name}: ${e.message}`;
      }
    }, { url: server.ws });
    assert.match(error, /RangeError: .*requireSignatures needs a publicKey/);
  } finally {
    await browser.close();
  }
});

function navigatorUa(ua) {
  const match = /Chrom(e|ium)\/([0-9.]+)/.exec(ua);
  return match ? `Chromium ${match[2]}` : ua;
}
