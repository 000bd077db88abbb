// The observer dashboard end to end: mesh-demo (meshd + 6 native peers in one
// group, loopback-only WebRTC, ephemeral port on 127.0.0.1) and the dashboard
// in headless Chromium. Checks what a user looks at: every peer listed, each
// peer's adjacency matrix symmetric and matching its links, each graph with 6
// nodes and 5 red tree edges, and "send trace" turning every node green.
// Saves a screenshot as dashboard.png in the working directory (the build dir
// under CTest).
//
// Environment (CTest): MESH_DEMO = path of mesh-demo, P2PMESH_WEB_ROOT = web/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { launchBrowser, newPage, waitFor, sleep } from './lib.mjs';

const demoPath = process.env.MESH_DEMO;
const webRoot = process.env.P2PMESH_WEB_ROOT;
const PEERS = 6;

function startDemo() {
  if (!demoPath || !existsSync(demoPath)) throw new Error(`MESH_DEMO=${demoPath} is not a program`);
  return new Promise((resolve, reject) => {
    const args = ['--host', '127.0.0.1', '--port', '0', '--groups', `default:${PEERS}`, '--loopback',
      '--report-ms', '500', '--ping-ms', '2000'];
    if (webRoot) args.push('--web-root', webRoot);
    const child = spawn(demoPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`no dashboard URL in 30 s\n${out}`)); }, 30000);
    child.stderr.on('data', (chunk) => process.stderr.write(`[mesh-demo] ${chunk}`));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /dashboard: (http:\/\/\S+\/)/.exec(out);
      if (match && !child.url) {
        clearTimeout(timer);
        child.url = match[1];
        resolve({
          url: match[1],
          output: () => out,
          stop: () => new Promise((done) => {
            if (child.exitCode !== null) { done(child.exitCode); return; }
            child.once('exit', (code) => done(code));
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 15000).unref();
          }),
        });
      }
    });
    child.once('exit', (code) => { clearTimeout(timer); if (!child.url) reject(new Error(`mesh-demo exited (${code})\n${out}`)); });
  });
}

// Everything the assertions need, read from the DOM (not from app state).
function readDashboard() {
  const rows = [...document.querySelectorAll('#peers tr.peer')].map((tr) => ({
    id: Number(tr.dataset.peer),
    links: tr.querySelector('td.links').textContent.split(',').map((s) => s.trim()).filter(Boolean).map(Number),
  }));
  const cards = [...document.querySelectorAll('.card')].map((card) => {
    const id = Number(card.dataset.peer);
    const table = card.querySelector('table.matrix');
    const nodes = table.dataset.nodes.split(',').map(Number);
    const matrix = [...table.querySelectorAll('tr')].slice(1)
      .map((tr) => [...tr.querySelectorAll('td')].map((td) => Number(td.textContent)));
    const linkRows = [...card.querySelectorAll('table.links tr')].slice(1)
      .map((tr) => ({ peer: Number(tr.cells[0].textContent), state: tr.cells[1].textContent,
        path: tr.cells[4].textContent }));
    const svg = card.querySelector('svg.graph');
    return {
      id, nodes, matrix, linkRows,
      svgNodes: svg.querySelectorAll('g.node').length,
      redEdges: [...svg.querySelectorAll('line.edge')].filter((l) => l.getAttribute('stroke') === 'red').length,
      green: [...svg.querySelectorAll('g.node')].filter((g) => g.dataset.green === 'true').length,
    };
  });
  return { rows, cards };
}

function checkCard(card) {
  const n = card.nodes.length;
  assert.equal(n, PEERS, `peer ${card.id}: matrix of ${n} nodes`);
  for (let i = 0; i < n; ++i) {
    assert.equal(card.matrix[i][i], 0, `peer ${card.id}: no self-link`);
    for (let j = 0; j < n; ++j) assert.equal(card.matrix[i][j], card.matrix[j][i], `peer ${card.id}: matrix symmetric at ${i},${j}`);
  }
  const self = card.nodes.indexOf(card.id);
  const fromMatrix = card.nodes.filter((_, j) => card.matrix[self][j] === 1).sort((a, b) => a - b);
  const open = card.linkRows.filter((l) => l.state === 'open').map((l) => l.peer).sort((a, b) => a - b);
  assert.deepEqual(fromMatrix, open, `peer ${card.id}: its matrix row matches its open links`);
  // Every open link shows its path; on one machine's loopback, direct (host).
  for (const l of card.linkRows.filter((row) => row.state === 'open')) {
    assert.equal(l.path, 'host', `peer ${card.id}: the path of its link with ${l.peer}`);
  }
  assert.equal(card.svgNodes, PEERS, `peer ${card.id}: graph nodes`);
  assert.equal(card.redEdges, PEERS - 1, `peer ${card.id}: red tree edges`);
}

function settled(d) {
  if (d.rows.length !== PEERS || d.cards.length !== PEERS) return false;
  try { d.cards.forEach(checkCard); } catch { return false; }
  return true;
}

test('dashboard shows 6 demo peers, their views, trees and a trace', { timeout: 200000 }, async () => {
  const demo = await startDemo();
  const browser = await launchBrowser({ loopback: false });
  try {
    const page = await newPage(browser, 'dashboard');
    await page.setViewportSize({ width: 1400, height: 1100 });
    await page.goto(demo.url);
    // Reports every 500 ms: wait until the mesh and every view have settled.
    let last;
    try {
      await waitFor(async () => { last = await page.evaluate(readDashboard); return settled(last); },
        { timeoutMs: 90000, intervalMs: 500, what: 'all 6 peers listed with settled views' });
    } catch (error) {
      console.log(JSON.stringify(last, null, 1));
      throw error;
    }
    // Now assert with messages (any failure here is a real mismatch).
    const d = await page.evaluate(readDashboard);
    assert.equal(d.rows.length, PEERS);
    assert.equal(new Set(d.rows.map((r) => r.id)).size, PEERS);
    d.cards.forEach(checkCard);

    // Ping all: every peer reports responses out of targets.
    await page.click('#pingall');
    await waitFor(() => page.evaluate(() => [...document.querySelectorAll('#peers tr.peer td.ping')]
      .every((td) => /^5\/5 /.test(td.textContent))), { timeoutMs: 30000, intervalMs: 250, what: 'ping 5/5 on every peer' });

    // Send trace from the first peer: every node of its graph turns green.
    const origin = d.cards[0].id;
    await page.click(`#card-${origin} button[data-trace]`);
    await waitFor(() => page.evaluate((id) => {
      const nodes = [...document.querySelectorAll(`#card-${id} svg.graph g.node`)];
      return nodes.length === 6 && nodes.every((g) => g.dataset.green === 'true');
    }, origin), { timeoutMs: 20000, intervalMs: 250, what: `every node of peer ${origin}'s graph green` });

    await page.click(`#peers tr.peer[data-peer="${origin}"] td.id`);
    await sleep(800);
    const shot = path.resolve(process.cwd(), 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
  } finally {
    await browser.close();
    const code = await demo.stop();
    assert.equal(code, 0, `mesh-demo exit code\n${demo.output()}`);
    assert.match(demo.output(), /mesh-demo: stopped/);
  }
});
