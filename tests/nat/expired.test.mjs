// 5. Expired TURN credentials: meshd hands out credentials valid for 1 s
// (--turn-ttl 1s). A peer whose credentials have expired by the time it
// gathers candidates fails its relay allocation (coturn answers 401), counts
// it (relay_allocation_failures), and still links wherever no relay is
// needed: host within its home, srflx to the other port-preserving home.
// Broadcasts reach everyone exactly once (fallback on).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  NatLab, allKnowEachOther, broadcastAndCheck, describe, sleep, waitFor,
} from './lib.mjs';

const lab = new NatLab();

before(async () => {
  lab.up();
  await lab.startTurn();
});

after(() => lab.down());

test('expired TURN credentials: allocation fails and is counted, peers link where they can', async () => {
  const server = await lab.startMeshd(lab.meshdIceArgs({ stun: true, turn: true, ttl: '1s' }));
  const peers = [];
  let lefts = [];
  try {
    // a1 joins alone and waits until its credentials (expiry = welcome + 1 s,
    // whole seconds) are stale; the others then join and link with it.
    const a1 = lab.startPeer('a', server, { group: 'expired', label: 'a1' });
    peers.push(a1);
    await a1.welcomed();
    await sleep(2500);
    for (const [home, label] of [['b', 'b1'], ['a', 'a2'], ['s', 's1']]) {
      const peer = lab.startPeer(home, server, { group: 'expired', label });
      peers.push(peer);
      await peer.welcomed();
    }
    const [, b1, a2] = peers;
    await allKnowEachOther(peers);
    await waitFor(() => a1.links.has(a2.id) && a1.links.has(b1.id),
      { timeoutMs: 20000, what: 'a1 linked to a2 and b1' });
    // Direct within home a (host; nat_host checks the exact type).
    assert.notEqual(a1.links.get(a2.id), 'relay', 'a1-a2 within home a, no relay');
    assert.equal(a1.links.get(b1.id), 'srflx', 'a1-b1 through STUN');
    await broadcastAndCheck(peers, peers, 16, { tag: 'expired' });
  } catch (error) {
    console.log(describe(peers));
    throw error;
  } finally {
    lefts = await Promise.all(peers.map((p) => p.stop()));
    await server.stop();
  }
  const a1 = lefts[0];
  const stderr = `a1's stderr:\n${peers[0].stderr}`;
  assert.ok(a1 && a1.counters, 'a1 printed its counters');
  assert.ok('relay_allocation_failures' in a1.counters, `the left line has relay_allocation_failures; ${stderr}`);
  assert.ok(a1.counters.relay_allocation_failures >= 1,
    `a1 counted its failed relay allocation(s): ${a1.counters.relay_allocation_failures}; ${stderr}`);
  assert.ok(a1.counters.links_opened >= 2, 'a1 linked anyway');
});
