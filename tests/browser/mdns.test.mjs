// Chromium with its DEFAULT WebRTC settings (no flags: host candidates hidden
// behind <uuid>.local mDNS names, no loopback): two pages link directly and
// deliver each other's broadcasts over the data channel.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, newPage, startMeshd, waitFor } from './lib.mjs';

let server;
let browser;

before(async () => {
  server = await startMeshd();
  browser = await launchBrowser({ loopback: false });
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

test('two default-settings pages link through mDNS candidates', async () => {
  const pages = [];
  const ids = [];
  for (const label of ['M1', 'M2']) {
    const page = await newPage(browser, label);
    await page.goto(`${server.http}/test/`);
    await page.waitForFunction(() => window.p2pmeshReady === true);
    ids.push(await page.evaluate(async (url) => {
      // Records every candidate the mesh signals (the filter lets all pass).
      window.signalled = [];
      const candidateFilter = (init) => { window.signalled.push(init.candidate); return true; };
      window.mesh = await window.p2pmesh.Mesh.join({ url, group: 'mdns', candidateFilter });
      window.got = [];
      window.mesh.on('message', (m) => window.got.push([m.from, m.text]));
      return window.mesh.id;
    }, server.ws));
    pages.push(page);
  }
  const [one, two] = pages;
  await waitFor(async () => {
    const a = await one.evaluate((peer) => window.mesh.links().some((l) => l.open && l.peer === peer), ids[1]);
    const b = await two.evaluate((peer) => window.mesh.links().some((l) => l.open && l.peer === peer), ids[0]);
    return a && b;
  }, { what: 'a direct link between the two pages', timeoutMs: 30000 });

  // What the pages signalled: host candidates under mDNS names, no address.
  for (const page of pages) {
    const signalled = await page.evaluate(() => window.signalled);
    assert.ok(signalled.length > 0, 'candidates were signalled');
    const hosts = signalled.filter((c) => / typ host/.test(c));
    assert.ok(hosts.length > 0 && hosts.every((c) => /\.local /.test(c)),
      `default Chromium signals mDNS host names only: ${signalled.join(' | ')}`);
  }

  await one.evaluate(() => window.mesh.broadcast('over mdns 1'));
  await two.evaluate(() => window.mesh.broadcast('over mdns 2'));
  await waitFor(async () => (await one.evaluate(() => window.got.length)) === 1
    && (await two.evaluate(() => window.got.length)) === 1, { what: 'both messages' });
  assert.deepEqual(await one.evaluate(() => window.got), [[ids[1], 'over mdns 2']]);
  assert.deepEqual(await two.evaluate(() => window.got), [[ids[0], 'over mdns 1']]);
  for (const page of pages) {
    const counters = await page.evaluate(() => window.mesh.counters());
    assert.equal(counters.fallbackReceived, 0, 'delivered over the data channel');
    await page.evaluate(() => window.mesh.leave());
    await page.close();
  }
});
