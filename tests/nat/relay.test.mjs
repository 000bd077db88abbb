// 3. The symmetric NAT (home s): its peers link to the other homes only
// through TURN (relay candidates), whoever dials; with TURN disabled no such
// link forms and broadcasts to and from home s still arrive, through the
// server fallback.
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

test('links to and from the symmetric home go through TURN (relay)', async () => {
  const server = await lab.startMeshd(lab.meshdIceArgs({ stun: true, turn: true }));
  // Joined one after the other, s1 first and s2 last: a newcomer dials the
  // members it picks, so links are dialled both to the symmetric home (a1, b1
  // to s1) and from it (s2 to a1, b1).
  const peers = [];
  try {
    for (const [home, label] of [['s', 's1'], ['a', 'a1'], ['b', 'b1'], ['s', 's2']]) {
      const peer = lab.startPeer(home, server, { group: 'turn', label, args: ['--no-fallback'] });
      peers.push(peer);
      await peer.welcomed();
    }
    await allKnowEachOther(peers);
    // 4 peers, 4 target links: every pair links.
    await waitFor(() => peers.every((p) => p.links.size === 3), { timeoutMs: 40000, what: 'all 6 links' });
    // Every link with home s crosses the symmetric NAT: relay. (a1-b1 may
    // take srflx or relay, whichever pair ICE nominates; s1-s2 is within a
    // home: nat_host.)
    const types = Object.fromEntries([...linkTypes(peers)].sort());
    assert.deepEqual(Object.keys(types), ['a1-b1', 'a1-s1', 'a1-s2', 'b1-s1', 'b1-s2', 's1-s2']);
    for (const pair of ['a1-s1', 'a1-s2', 'b1-s1', 'b1-s2']) assert.equal(types[pair], 'relay', `link ${pair}: ${JSON.stringify(types)}`);
    assert.notEqual(types['s1-s2'], 'relay', 's1-s2 within home s, not relayed');
    await broadcastAndCheck(peers, peers, 20, { tag: 'turn' });
  } catch (error) {
    console.log(describe(peers));
    throw error;
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
    await server.stop();
  }
});

test('TURN disabled: no link to the symmetric home, broadcasts arrive through the server', async () => {
  const server = await lab.startMeshd(lab.meshdIceArgs({ stun: true, turn: false }));
  const peers = [];
  let lefts = [];
  try {
    for (const [home, label] of [['s', 's1'], ['a', 'a1'], ['b', 'b1']]) {
      const peer = lab.startPeer(home, server, { group: 'noturn', label });
      peers.push(peer);
      await peer.welcomed();
    }
    const [s1, a1, b1] = peers;
    await allKnowEachOther(peers);
    await waitFor(() => a1.links.has(b1.id) && b1.links.has(a1.id), { timeoutMs: 20000, what: 'the a1-b1 link' });
    assert.equal(a1.links.get(b1.id), 'srflx', 'a1-b1 through STUN');
    // s1's link attempts time out (3.5 s each): give it two rounds.
    await sleep(8000);
    assert.deepEqual(s1.linkEvents, [], 's1 (symmetric NAT) never had a link');
    await broadcastAndCheck(peers, peers, 15, { tag: 'noturn' });
  } catch (error) {
    console.log(describe(peers));
    throw error;
  } finally {
    lefts = await Promise.all(peers.map((p) => p.stop()));
    await server.stop();
  }
  const [s1, a1, b1] = lefts;
  for (const left of lefts) assert.ok(left && left.counters, 'every peer printed its counters');
  assert.equal(s1.counters.links_opened, 0, 's1 opened no link');
  // s1 got the 10 broadcasts of a1 and b1 through the server, and they got its 5.
  assert.ok(s1.counters.fallback_received >= 10, `s1 fallback_received ${s1.counters.fallback_received}`);
  assert.ok(s1.counters.fallback_sent > 0, `s1 fallback_sent ${s1.counters.fallback_sent}`);
  assert.ok(a1.counters.fallback_received + b1.counters.fallback_received >= 5,
    'a1 and b1 got s1\'s broadcasts through the server');
});
