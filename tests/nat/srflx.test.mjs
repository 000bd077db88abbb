// 2. Across the two port-preserving NATs (homes a and b), links form through
// server-reflexive candidates with STUN alone (meshd hands out no TURN), and
// broadcasts go over them (--no-fallback). The control: with no STUN at all,
// the peers know each other but never link, and without the server fallback
// nothing arrives: the NATs are real.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  NatLab, allKnowEachOther, broadcastAndCheck, describe, linkTypes, sleep, waitFor,
} from './lib.mjs';

const lab = new NatLab();

before(async () => {
  lab.up();
  await lab.startTurn();
});

after(() => lab.down());

test('homes a and b link through STUN (srflx), TURN disabled', async () => {
  const server = await lab.startMeshd(lab.meshdIceArgs({ stun: true, turn: false }));
  const peers = [
    lab.startPeer('a', server, { group: 'stun', label: 'a1', args: ['--no-fallback'] }),
    lab.startPeer('b', server, { group: 'stun', label: 'b1', args: ['--no-fallback'] }),
    lab.startPeer('a', server, { group: 'stun', label: 'a2', args: ['--no-fallback'] }),
    lab.startPeer('b', server, { group: 'stun', label: 'b2', args: ['--no-fallback'] }),
  ];
  try {
    for (const peer of peers) await peer.welcomed();
    await allKnowEachOther(peers);
    // 4 peers, 4 target links: every pair links, two of them within a home.
    await waitFor(() => peers.every((p) => p.links.size === 3), { timeoutMs: 30000, what: 'all 6 links' });
    // The 4 links across the NATs are srflx (those within a home: nat_host).
    const types = [...linkTypes(peers)].filter(([pair]) => pair[0] !== pair[3]);
    assert.equal(types.length, 4, 'a1-b1, a1-b2, a2-b1, a2-b2');
    for (const [pair, type] of types) assert.equal(type, 'srflx', `link ${pair}`);
    await broadcastAndCheck(peers, peers, 20, { tag: 'stun' });
  } catch (error) {
    console.log(describe(peers));
    throw error;
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
    await server.stop();
  }
});

test('control: without STUN, homes a and b do not link and nothing crosses', async () => {
  const server = await lab.startMeshd([]);
  const a = lab.startPeer('a', server, { group: 'none', label: 'a1', args: ['--no-fallback'] });
  const b = lab.startPeer('b', server, { group: 'none', label: 'b1', args: ['--no-fallback'] });
  let lefts = [];
  try {
    await a.welcomed();
    await b.welcomed();
    await allKnowEachOther([a, b]);
    // Over two link timeouts (3.5 s each): attempts were made and failed.
    await sleep(8000);
    assert.deepEqual(a.linkEvents, [], 'a1 never had a link');
    assert.deepEqual(b.linkEvents, [], 'b1 never had a link');
    a.say('through-the-nat?');
    await sleep(1500);
    assert.deepEqual(b.messages, [], 'nothing crossed without a link and without fallback');
  } catch (error) {
    console.log(describe([a, b]));
    throw error;
  } finally {
    lefts = await Promise.all([a.stop(), b.stop()]);
    await server.stop();
  }
  // The peers did try: link attempts timed out or failed.
  for (const [label, left] of [['a1', lefts[0]], ['b1', lefts[1]]]) {
    assert.ok(left && left.counters, `${label} printed its counters`);
    assert.equal(left.counters.links_opened, 0, `${label} opened no link`);
  }
  const attempts = (left) => left.counters.links_timed_out + (left.counters.link_failures ?? 0);
  assert.ok(attempts(lefts[0]) + attempts(lefts[1]) > 0, 'link attempts were made and gave up');
});
