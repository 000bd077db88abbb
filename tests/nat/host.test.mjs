// 1. Peers in the same home link through host candidates, behind either kind
// of NAT, although meshd hands out STUN and TURN (which they do not need).
// Broadcasts go over those links alone (--no-fallback).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { NatLab, allKnowEachOther, broadcastAndCheck, describe, linkTypes, waitFor } from './lib.mjs';

const lab = new NatLab();
let server;

before(async () => {
  lab.up();
  await lab.startTurn();
  server = await lab.startMeshd(lab.meshdIceArgs());
});

after(() => lab.down());

for (const home of ['a', 's']) {
  test(`3 peers in home ${home} link through host candidates`, async () => {
    const group = `host-${home}`;
    const peers = [1, 2, 3].map((n) =>
      lab.startPeer(home, server, { group, label: `${home}${n}`, args: ['--no-fallback'] }));
    for (const peer of peers) await peer.welcomed();
    await allKnowEachOther(peers);
    try {
      // 3 peers, 4 target links each: every pair links.
      await waitFor(() => peers.every((p) => p.links.size === 2), { timeoutMs: 20000, what: 'all 3 links' });
      // Host to host. The end that answered always names the other's host
      // candidate; the end that dialled may know the answerer only as
      // peer-reflexive (prflx) when the answerer's checks beat its answer
      // through meshd, and libwebrtc never renames it (its stats hide a prflx
      // address). A home has no hairpin NAT, so a direct link within it is
      // host to host whatever the name. Neither end may say srflx or relay.
      const byId = new Map(peers.map((p) => [p.id, p]));
      for (const p of peers) {
        for (const [peer, type] of p.links) {
          const other = byId.get(peer).links.get(p.id);
          const ends = [type, other].sort().join('/');
          assert.ok(ends === 'host/host' || ends === 'host/prflx',
            `${p.label}-${byId.get(peer).label}: host to host, not ${type}/${other}`);
        }
      }
      assert.equal(linkTypes(peers).size, 3);
      await broadcastAndCheck(peers, peers, 15, { tag: `host-${home}` });
    } catch (error) {
      console.log(describe(peers));
      throw error;
    } finally {
      await Promise.all(peers.map((p) => p.stop()));
    }
  });
}
