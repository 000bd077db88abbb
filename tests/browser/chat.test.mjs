// The chat page (web/chat/) in headless Chromium: three pages in one room;
// each sends a message through the UI; every page shows every other page's
// message exactly once, with the right sender id. Then a reload rejoins with a
// new id, gets messages sent after it rejoined, and its old id disappears
// from every other page's view.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, newPage, sleep, startMeshd, waitFor } from './lib.mjs';

let server;
let browser;

before(async () => {
  server = await startMeshd();
  browser = await launchBrowser({ loopback: true });
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

async function openChat(room, label) {
  const page = await newPage(browser, label);
  await page.goto(`${server.http}/chat?room=${encodeURIComponent(room)}`);
  return page;
}

const peerId = (page) => page.waitForFunction(() => Number(document.body.dataset.peer || 0))
  .then((handle) => handle.jsonValue());

// The peers shown in the page's adjacency table (its view of the room).
const tablePeers = (page) => page.$$eval('table.adjacency thead th[data-peer]',
  (cells) => cells.map((cell) => Number(cell.dataset.peer)));

// Messages from others in the log: [[from, text]].
const received = (page) => page.$$eval('#log li.message',
  (items) => items.map((item) => [Number(item.dataset.from), item.dataset.text]));

async function say(page, text) {
  await page.fill('#message', text);
  await page.click('#send');
}

// Every page sees all `ids` in its table and holds open links to all others
// (a room of three: everyone links to everyone).
async function waitForRoom(pages, ids) {
  const sorted = [...ids].sort((a, b) => a - b);
  await waitFor(async () => {
    for (const page of pages) {
      const peers = await tablePeers(page);
      if (JSON.stringify(peers) !== JSON.stringify(sorted)) return false;
      const open = await page.evaluate(() => window.p2pmeshChat.mesh.links().filter((l) => l.open).length);
      if (open !== ids.length - 1) return false;
    }
    return true;
  }, { what: `every page to show peers ${sorted} and be linked to the others`, timeoutMs: 30000 });
}

test('three chat pages: every message exactly once, with the sender id', async () => {
  const pages = [];
  for (const label of ['A', 'B', 'C']) pages.push(await openChat('trio', label));
  const ids = [];
  for (const page of pages) ids.push(await peerId(page));
  assert.equal(new Set(ids).size, 3, `distinct ids ${ids}`);
  await waitForRoom(pages, ids);

  const texts = ['hello from A', 'hi from B ✓', 'C here: <b>not bold</b>'];
  for (let i = 0; i < pages.length; ++i) await say(pages[i], texts[i]);

  for (let i = 0; i < pages.length; ++i) {
    const expected = texts.map((text, j) => [ids[j], text]).filter((_, j) => j !== i);
    await waitFor(async () => (await received(pages[i])).length >= expected.length,
      { what: `page ${i} to receive ${expected.length} messages` });
  }
  await sleep(700);  // room for duplicates to show up
  for (let i = 0; i < pages.length; ++i) {
    const expected = texts.map((text, j) => [ids[j], text]).filter((_, j) => j !== i);
    const got = await received(pages[i]);
    assert.deepEqual([...got].sort(), [...expected].sort(), `page ${i} (peer ${ids[i]})`);
    // The own message is in the log too, marked as ours.
    const mine = await pages[i].$$eval('#log li.mine', (items) => items.map((item) => item.dataset.text));
    assert.deepEqual(mine, [texts[i]]);
    // The text is shown as text, not markup.
    assert.equal(await pages[i].$$eval('#log b', (nodes) => nodes.length), 0);
  }
  for (const page of pages) await page.close();
});

test('a reloaded page rejoins with a new id; its old id leaves every view', async () => {
  const pages = [];
  for (const label of ['D', 'E', 'F']) pages.push(await openChat('reload', label));
  const ids = [];
  for (const page of pages) ids.push(await peerId(page));
  await waitForRoom(pages, ids);

  const [d, e, f] = pages;
  const oldId = ids[2];
  await f.reload();
  const newId = await peerId(f);
  assert.notEqual(newId, oldId, 'a reload gets a new id');
  const current = [ids[0], ids[1], newId];
  await waitForRoom(pages, current);
  for (const page of pages) {
    assert.ok(!(await tablePeers(page)).includes(oldId), 'old id gone from the table');
    const view = await page.evaluate(() => window.p2pmeshChat.mesh.view());
    assert.ok(!view.peers.includes(oldId), `old id ${oldId} gone from view ${JSON.stringify(view)}`);
  }

  await say(d, 'after the reload, from D');
  await say(f, 'F is back');
  await waitFor(async () => (await received(f)).length >= 1, { what: 'the reloaded page to receive' });
  await waitFor(async () => (await received(e)).length >= 2, { what: 'E to receive both' });
  await sleep(500);
  assert.deepEqual(await received(f), [[ids[0], 'after the reload, from D']]);
  assert.deepEqual([...(await received(e))].sort(),
    [[ids[0], 'after the reload, from D'], [newId, 'F is back']].sort());
  assert.deepEqual(await received(d), [[newId, 'F is back']]);
  for (const page of pages) await page.close();
});

test('the chat page without ?room= waits for Connect, then joins room default', async () => {
  const page = await newPage(browser, 'G');
  await page.goto(`${server.http}/chat`);
  assert.equal(await page.inputValue('#server-url'), server.ws.replace('127.0.0.1', '127.0.0.1'));
  assert.equal(await page.inputValue('#room'), 'default');
  assert.equal(await page.isDisabled('#send'), true);
  await page.click('#connect');
  const id = await peerId(page);
  assert.ok(id > 0);
  assert.match(await page.textContent('#status'), new RegExp(`peer ${id} in room “default”`));
  await page.click('#leave');
  await page.waitForFunction(() => document.getElementById('status').textContent.includes('Left'));
  await page.close();
});
