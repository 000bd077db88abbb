// Browser peers against meshd --auth-key (docs/security.md): two meshd
// sharing one HS256 key. A page joins with a token, a refused token makes
// join() reject with meshd's reason, and a page whose token expired while
// it was connected is refused on its reconnection ('token-rejected', no
// retry loop) until setToken() gives it a fresh one.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser, newPage, sleep, startMeshd, waitFor } from './lib.mjs';

const secret = 'browser-token-test-secret-0123456789abcdef';
let dir;
let first;
let second;
let browser;

const base64url = (text) => Buffer.from(text).toString('base64url');
// An HS256 JWT (test fixture: what the application's auth server would issue).
function token(groups, secondsFromNow) {
  const head = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = base64url(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + secondsFromNow, groups }));
  const signature = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${signature}`;
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'p2pmesh-token-'));
  writeFileSync(path.join(dir, 'auth.key'), `${secret}\n`);
  first = await startMeshd(['--auth-key', path.join(dir, 'auth.key')]);
  second = await startMeshd(['--auth-key', path.join(dir, 'auth.key')]);
  browser = await launchBrowser({ loopback: true });
});

after(async () => {
  if (browser) await browser.close();
  for (const server of [first, second]) if (server) await server.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function openTestPage(label) {
  const page = await newPage(browser, label);
  await page.goto(`${first.http}/test/`);
  await page.waitForFunction(() => window.p2pmeshReady === true);
  return page;
}

test('a valid token joins; a refused one rejects join() with the reason', async () => {
  const page = await openTestPage('join');
  const id = await page.evaluate(async ({ url, token }) => {
    window.mesh = await window.testJoin({ url, group: 'room1', token });
    return window.mesh.id;
  }, { url: first.ws, token: token(['room*'], 300) });
  assert.ok(id > 0);
  for (const [bad, reason] of [[token(['room1'], -5), 'token expired'], ['not.a.token', 'token invalid'],
    [token(['room1'], 300).slice(0, -2), 'token invalid']]) {
    const message = await page.evaluate(async ({ url, token }) => {
      try {
        await window.testJoin({ url, group: 'room1', token });
        return 'joined';
      } catch (error) {
        return error.message;
      }
    }, { url: first.ws, token: bad });
    assert.match(message, /token refused by .*HTTP 401/);
    assert.ok(message.includes(reason), message);
  }
  await page.evaluate(() => window.mesh.leave());
  await page.close();
});

test('a token that expired meanwhile: token-rejected on reconnection, no retries, setToken() rejoins', async () => {
  const page = await openTestPage('reconnect');
  const id = await page.evaluate(async ({ urls, token }) => {
    window.events = [];
    window.mesh = await window.testJoin({ urls, group: 'room1', token, reconnectInitialMs: 50 });
    window.mesh.on('error', (e) => window.events.push(['error', e.kind, e.reason]));
    window.mesh.on('joined', (e) => window.events.push(['joined', e.id]));
    return window.mesh.id;
  }, { urls: [first.ws, second.ws], token: token(['room1'], 3) });
  assert.ok(id > 0);
  await sleep(3500);  // the token expires; the connection stays
  await first.stop();  // the page moves to the second meshd, with its expired token
  await waitFor(() => page.evaluate(() => window.events.some((e) => e[1] === 'token-rejected')),
    { what: 'token-rejected', timeoutMs: 15000 });
  await sleep(1500);  // reconnectInitialMs is 50: a retry loop would show here
  const events = await page.evaluate(() => window.events);
  const rejected = events.filter((e) => e[1] === 'token-rejected');
  assert.equal(rejected.length, 1, JSON.stringify(events));
  assert.ok(rejected[0][2].includes('token expired'), rejected[0][2]);
  assert.equal(events.filter((e) => e[1] === 'server-unreachable').length, 0, JSON.stringify(events));
  assert.equal(await page.evaluate(() => {
    try { window.mesh.broadcast('x'); return 'sent'; } catch (error) { return 'not joined'; }
  }), 'not joined');
  await page.evaluate((fresh) => window.mesh.setToken(fresh), token(['room1'], 300));
  await waitFor(() => page.evaluate(() => window.events.some((e) => e[0] === 'joined')),
    { what: 'joined again with the fresh token', timeoutMs: 15000 });
  const newId = await page.evaluate(() => window.mesh.id);
  assert.ok(newId > 0 && newId !== id);
  await page.evaluate(() => window.mesh.leave());
  await page.close();
});
