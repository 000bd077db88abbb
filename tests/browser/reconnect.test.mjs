// A browser peer whose server dies: the reason reaches the page ('error'),
// the core closes its links and reports them and their peers gone, and the
// peer reconnects by itself along its URL list, with a new id, and meshes
// there (as a native peer does).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, newPage, startMeshd, waitFor } from './lib.mjs';

let first;
let second;
let browser;

before(async () => {
  first = await startMeshd();
  second = await startMeshd();
  browser = await launchBrowser({ loopback: true });
});

after(async () => {
  if (browser) await browser.close();
  if (first) await first.stop();
  if (second) await second.stop();
});

// A page (served by the second server, which stays up) that joins with
// `options` and records every event on window.log.
async function joinedPage(label, options) {
  const page = await newPage(browser, label);
  await page.goto(`${second.http}/test/`);
  await page.waitForFunction(() => window.p2pmeshReady === true);
  const id = await page.evaluate(async (options) => {
    window.log = { error: [], close: [], joined: [], link: [], peer: [], message: [] };
    const mesh = await window.testJoin(options);
    window.mesh = mesh;
    for (const event of ['error', 'close', 'joined', 'link', 'peer']) {
      mesh.on(event, (e) => window.log[event].push(e));
    }
    mesh.on('message', (m) => window.log.message.push(m.text));
    return mesh.id;
  }, options);
  return { page, id };
}

const linked = (page, peer) => page.evaluate(
  (peer) => window.mesh.links().some((l) => l.open && l.peer === peer), peer);

test('the server dies: reason reported, links closed, reconnected along the URL list', async () => {
  const stays = await joinedPage('on-first', { url: first.ws, group: 'rc', reconnect: false });
  const moves = await joinedPage('moves', {
    urls: [first.ws, second.ws], group: 'rc', reconnectInitialMs: 100,
  });
  const there = await joinedPage('on-second', { url: second.ws, group: 'rc' });
  await waitFor(() => linked(moves.page, stays.id), { what: 'a link on the first server' });

  await first.stop();

  // The reason, then the core's reports: the link and the peer are gone.
  await waitFor(() => moves.page.evaluate(() => window.log.joined.length === 1),
    { what: 'reconnected to the second server' });
  const log = await moves.page.evaluate(() => window.log);
  // (Its neighbour on the first server lost it too and closed their link:
  // a 'link-failed' may come first.)
  const lost = log.error.find((e) => e.kind === 'server-lost');
  assert.ok(lost, JSON.stringify(log.error));
  assert.equal(typeof lost.reason, 'string');
  assert.ok(lost.reason.length > 0);
  assert.equal(log.close.length, 1);
  assert.ok(log.link.some((e) => e.peer === stays.id && e.up === false), 'link-down for the old neighbour');
  assert.ok(log.peer.some((e) => e.peer === stays.id && e.joined === false), 'peer-left for the old neighbour');
  // A new session: the id the second server handed out (two servers may
  // hand out the same number).
  assert.equal(log.joined[0].id, await moves.page.evaluate(() => window.mesh.id));
  assert.ok(log.joined[0].id > 0);
  assert.equal(log.joined[0].url, second.ws);

  // It meshes on the second server: broadcasts flow both ways.
  await waitFor(() => linked(moves.page, there.id), { what: 'a link on the second server' });
  await moves.page.evaluate(() => window.mesh.broadcast('after the move'));
  await waitFor(() => there.page.evaluate(() => window.log.message.includes('after the move')),
    { what: 'the broadcast after the move' });

  // Without reconnection, the mesh is done: broadcast says it is not joined.
  const stayed = await stays.page.evaluate(() => {
    let threw = '';
    try { window.mesh.broadcast('x'); } catch (error) { threw = error.message; }
    return { threw, close: window.log.close.length, errors: window.log.error.map((e) => e.kind) };
  });
  assert.equal(stayed.close, 1);
  assert.ok(stayed.errors.includes('server-lost'), stayed.errors.join());
  assert.match(stayed.threw, /not joined/);
});

// meshd closes a connection that stays over its rate (1008, "rate limit
// exceeded"): the page hears why, not just that the server went.
test('a rate-limit close reaches the page with its code and reason', async () => {
  const strict = await startMeshd(['--rate', '2', '--burst', '2', '--max-rate-delay', '1']);
  try {
    // Joining subscribes to more topics than 2 a second allows.
    const slow = await joinedPage('rate-limited', { url: strict.ws, group: 'rl', reconnect: false });
    await waitFor(() => slow.page.evaluate(() => window.log.error.some((e) => e.kind === 'server-lost')),
      { what: 'the server-lost error' });
    const log = await slow.page.evaluate(() => window.log);
    const lost = log.error.find((e) => e.kind === 'server-lost');
    assert.equal(lost.code, 1008, JSON.stringify(lost));
    assert.equal(lost.reason, 'rate limit exceeded');
    assert.deepEqual(log.close.map((e) => [e.code, e.reason]), [[1008, 'rate limit exceeded']]);
  } finally {
    await strict.stop();
  }
});
