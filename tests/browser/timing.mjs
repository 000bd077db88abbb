// Figures of the browser peer (a benchmark program, not a pass/fail test):
// module load + join, link setup page<->page (and page<->native when
// MESH_PEER is set), and broadcast round trips over a data channel.
//   MESHD=build/release/bin/meshd P2PMESH_WEB_ROOT=$PWD/web \
//   [MESH_PEER=build/release/bin/mesh-peer] node tests/browser/timing.mjs [rounds]
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { launchBrowser, newPage, startMeshd, waitFor } from './lib.mjs';

const rounds = Number(process.argv[2] || 200);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p99 = (xs) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))];
const ms = (x) => `${x.toFixed(1)} ms`;

const server = await startMeshd();
const browser = await launchBrowser({ loopback: true });
try {
  const pages = [];
  const joins = [];
  for (const label of ['T1', 'T2']) {
    const page = await newPage(browser, label);
    await page.goto(`${server.http}/test/`);
    await page.waitForFunction(() => window.p2pmeshReady === true);
    joins.push(await page.evaluate(async (url) => {
      const t0 = performance.now();
      window.mesh = await window.testJoin({ url, group: 'timing' });
      const joined = performance.now() - t0;
      window.linkUpAfter = new Promise((resolve) => window.mesh.on('link', (e) => {
        if (e.up) resolve(performance.now() - t0 - joined);
      }));
      return joined;
    }, server.ws));
    pages.push(page);
  }
  const [one, two] = pages;
  const linkMs = await two.evaluate(() => window.linkUpAfter);
  console.log(`join (first page, includes wasm compile): ${ms(joins[0])}`);
  console.log(`join (module cached by the browser):      ${ms(joins[1])}`);
  console.log(`link up after join, page <-> page:        ${ms(linkMs)}`);

  // Echo: `one` answers every message; `two` measures the round trip.
  await one.evaluate(() => window.mesh.on('message', (m) => window.mesh.broadcast(m.data)));
  const rtts = await two.evaluate(async (rounds) => {
    const out = [];
    for (let i = 0; i < rounds; ++i) {
      const t0 = performance.now();
      await new Promise((resolve) => {
        const off = window.mesh.on('message', () => { off(); resolve(); });
        window.mesh.broadcast(new Uint8Array(100));
      });
      out.push(performance.now() - t0);
    }
    return out;
  }, rounds);
  console.log(`broadcast round trip page -> page -> page, 100 B, ${rounds} rounds: ` +
    `median ${ms(median(rtts))}, p99 ${ms(p99(rtts))}`);

  if (process.env.MESH_PEER) {
    const child = spawn(process.env.MESH_PEER, ['--url', server.ws, '--group', 'timing', '--loopback',
      '--stay'], { stdio: ['pipe', 'pipe', 'ignore'] });
    let nativeId = 0;
    createInterface({ input: child.stdout }).on('line', (line) => {
      const event = JSON.parse(line);
      if (event.event === 'welcome') nativeId = event.id;
    });
    const t0 = Date.now();
    await waitFor(() => nativeId !== 0, { what: 'native welcome' });
    await waitFor(() => one.evaluate((peer) => window.mesh.links().some((l) => l.open && l.peer === peer),
      nativeId), { what: 'page <-> native link', intervalMs: 5 });
    console.log(`link up, native joins a page (welcome -> page sees it open): ${ms(Date.now() - t0)}`);
    child.kill('SIGTERM');
  }
  for (const page of pages) await page.evaluate(() => window.mesh.leave());
} finally {
  await browser.close();
  await server.stop();
}
