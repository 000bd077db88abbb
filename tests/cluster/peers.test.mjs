// Real peers on a meshd cluster (docs/cluster.md, issue #14): two routed
// nats-servers, four meshd nodes (A and B on the first server, C and D on
// the second, each with the other server as its fail-over), 12 native peers
// (mesh-peer) on A, B and C and a Chromium page on D, all in one group.
// Every peer lists every node, its own first: the cluster's URL list.
//
// The tests run in order on the same cluster: one mesh and exactly-once
// broadcasts across nodes; kill -9 of node B (its peers move, the others
// forget them within 3 s, the mesh heals); kill -9 of the nats-servers, one
// and then both (the mesh keeps delivering), and their return (the cluster
// converges: a member that left and one that joined during the outage).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, newPage, sleep, waitFor } from '../browser/lib.mjs';
import { startNative } from '../browser/native_peer.mjs';
import { clusterFormed, metric, nodeOf, startNatsPair, startNode } from './lib.mjs';

const group = 'spread';
let nats = [];
let nodes = [];  // A, B, C, D
let browser;
const natives = [];
let page;

// Every node's URL, `first`'s first.
const urlsFrom = (first) => [first, ...nodes.filter((node) => node !== first)].map((node) => node.ws);

function nativeOn(node, label) {
  const peer = startNative(urlsFrom(node), group, label);
  natives.push(peer);
  return peer;
}

// The peers of the test behind one interface: id, known ids, open links,
// received [from, text] pairs, say(text).
function nativeMember(peer) {
  return {
    label: peer.label,
    get id() { return peer.id; },
    knows: async () => new Set([...peer.peers, peer.id]),
    links: async () => [...peer.links],
    received: async () => peer.messages.slice(),
    say: async (text) => peer.say(text),
  };
}

function pageMember(tab) {
  return {
    label: 'page',
    id: 0,
    knows: async () => new Set(await tab.evaluate(() => window.mesh.view().peers)),
    links: () => tab.evaluate(() => window.mesh.links().filter((l) => l.open).map((l) => l.peer)),
    received: () => tab.evaluate(() => window.got.slice()),
    say: (text) => tab.evaluate((text) => window.mesh.broadcast(text), text),
  };
}

let members = [];  // the peers in the group now

async function everyoneKnowsEveryone() {
  const ids = members.map((member) => member.id);
  for (const member of members) {
    const known = await member.knows();
    if (known.size !== ids.length || !ids.every((id) => known.has(id))) return false;
  }
  return true;
}

// True when the open links join every member into one mesh.
async function oneMesh() {
  const parent = new Map(members.map((member) => [member.id, member.id]));
  const root = (id) => (parent.get(id) === id ? id : root(parent.get(id)));
  for (const member of members) {
    for (const peer of await member.links()) {
      if (parent.has(peer)) parent.set(root(peer), root(member.id));
    }
  }
  return new Set(members.map((member) => root(member.id))).size === 1;
}

async function meshFormed(what) {
  await waitFor(everyoneKnowsEveryone, { what: `${what}: every peer to know every other`, timeoutMs: 40000 });
  await waitFor(oneMesh, { what: `${what}: the links to form one mesh`, timeoutMs: 40000 });
}

// Every member broadcasts `each` messages; every other member receives each
// of them exactly once, and no message of any round twice. (A peer that
// joined just after an earlier round may still get that round's last
// messages: reliable delivery pulls what a sender's status says it sent.)
async function broadcastRound(tag, each) {
  const before = new Map();
  for (const member of members) before.set(member, (await member.received()).length);
  const sent = [];
  for (const member of members) {
    for (let i = 0; i < each(member); ++i) {
      const text = `${tag} #${i} from ${member.label}`;
      sent.push([member.id, text]);
      await member.say(text);
    }
  }
  const expectedFor = (member) => sent.filter(([from]) => from !== member.id).map(String).sort();
  const newFor = async (member) => (await member.received()).slice(before.get(member))
    .filter(([, text]) => text.startsWith(`${tag} #`));
  await waitFor(async () => {
    for (const member of members) {
      if ((await newFor(member)).length < expectedFor(member).length) return false;
    }
    return true;
  }, { what: `${tag}: every broadcast to arrive`, timeoutMs: 30000 });
  await sleep(1000);  // room for duplicates to show up
  for (const member of members) {
    assert.deepEqual((await newFor(member)).map(String).sort(), expectedFor(member),
      `${tag}: what ${member.label} received`);
    const all = (await member.received()).map(String);
    assert.equal(new Set(all).size, all.length, `${member.label} received a message twice`);
  }
  return sent.length;
}

before(async () => {
  nats = await startNatsPair();
  const [n0, n1] = nats.map((server) => server.url);
  nodes = await Promise.all([[1, [n0, n1]], [2, [n0, n1]], [3, [n1, n0]], [4, [n1, n0]]]
    .map(([id, urls]) => startNode(id, urls)));
  await clusterFormed(nodes);
  browser = await launchBrowser({ loopback: true });
});

after(async () => {
  await Promise.all(natives.map((peer) => peer.stop()));
  if (browser) await browser.close();
  await Promise.all(nodes.map((node) => node.stop()));
  await Promise.all(nats.map((server) => server.kill()));
});

test('12 native peers on 3 nodes and a Chromium page on a 4th form one mesh; 100 broadcasts arrive exactly once', async () => {
  const [a, b, c, d] = nodes;
  for (const [index, node] of [a, a, a, a, b, b, b, b, c, c, c, c].entries()) {
    members.push(nativeMember(nativeOn(node, `N${index + 1}`)));
  }
  page = await newPage(browser, 'page');
  await page.goto(`${d.http}/test/`);
  await page.waitForFunction(() => window.p2pmeshReady === true);
  const pageId = await page.evaluate(async (urls) => {
    window.mesh = await window.testJoin({ urls, group: 'spread' });
    window.got = [];
    window.mesh.on('message', (m) => window.got.push([m.from, m.text]));
    return window.mesh.id;
  }, urlsFrom(d));
  const onPage = pageMember(page);
  onPage.id = pageId;
  members.push(onPage);
  await waitFor(() => members.every((member) => member.id !== 0), { what: 'every welcome' });
  for (const member of members.slice(0, 12)) {
    assert.equal(nodeOf(member.id), Math.ceil(Number(member.label.slice(1)) / 4),
      `${member.label}'s id carries its node`);
  }
  assert.equal(nodeOf(pageId), 4);
  await meshFormed('13 peers');

  // 100 broadcasts: 8 from each native peer, 4 from the page.
  const count = await broadcastRound('hundred', (member) => (member === onPage ? 4 : 8));
  assert.equal(count, 100);

  // A newcomer on A learns every member on B, C and D from its first
  // snapshot: within 2 s, well before anyone's next full status (10 s).
  const newcomer = nativeOn(a, 'N13');
  await waitFor(() => newcomer.id !== 0, { what: "the newcomer's welcome" });
  const welcomedAt = newcomer.events.find((event) => event.event === 'welcome').at;
  const others = members.map((member) => member.id);
  await waitFor(() => others.every((id) => newcomer.peers.has(id)),
    { what: 'the newcomer to know all 13 members', timeoutMs: 5000 });
  const knownAt = Math.max(...others.map((id) => newcomer.events.find(
    (event) => event.event === 'peer_joined' && event.peer === id).at));
  assert.ok(knownAt - welcomedAt <= 2000, `the newcomer knew everyone ${knownAt - welcomedAt} ms after its welcome`);
  members.push(nativeMember(newcomer));
  await meshFormed('14 peers');
});

test('kill -9 of node B: its peers move to other nodes, the rest forget them within 3 s, the mesh heals', async () => {
  const b = nodes[1];
  const moved = natives.filter((peer) => nodeOf(peer.id) === 2);
  assert.equal(moved.length, 4);
  const oldIds = moved.map((peer) => peer.id);
  const stayed = members.filter((member) => !oldIds.includes(member.id));
  await b.kill();
  const killedAt = Date.now();
  await waitFor(async () => {
    for (const member of stayed) {
      const known = await member.knows();
      if (oldIds.some((id) => known.has(id))) return false;
    }
    return true;
  }, { what: "the survivors to forget the dead node's peers", timeoutMs: 10000, intervalMs: 20 });
  // Native survivors timestamp each peer_left; the page was polled.
  const forgotten = Date.now() - killedAt;
  const lastLeft = Math.max(...natives.filter((peer) => !moved.includes(peer)).flatMap((peer) => peer.events
    .filter((event) => event.event === 'peer_left' && oldIds.includes(event.peer)).map((event) => event.at)));
  console.log(`# forgotten by every survivor ${forgotten} ms after the kill (natives: ${lastLeft - killedAt} ms)`);
  assert.ok(lastLeft - killedAt <= 3000, `native survivors forgot the dead node's peers after ${lastLeft - killedAt} ms`);
  assert.ok(forgotten <= 3000, `every survivor forgot the dead node's peers after ${forgotten} ms`);

  // Its peers reconnect along their URL lists: new ids on the other nodes.
  await waitFor(() => moved.every((peer) => peer.ids.length === 2),
    { what: "the dead node's peers to be welcomed again", timeoutMs: 20000 });
  for (const peer of moved) assert.notEqual(nodeOf(peer.id), 2, `${peer.label} moved to another node`);
  await meshFormed('after the kill');
  // The healed mesh delivers every broadcast to everyone.
  await broadcastRound('healed', () => 1);
});

test('kill -9 of the nats-servers: the mesh keeps delivering, and the cluster converges when NATS returns', async () => {
  const [a, , c, d] = nodes;
  const live = [a, c, d];
  const departuresBefore = await metric(c.port, 'meshd_cluster_dead_node_departures_total');
  // A's own server goes: A moves to the other one within the dead-node delay.
  await nats[0].kill();
  await waitFor(async () => (await metric(a.port, 'meshd_nats_connected')) === 1
    && (await metric(a.port, 'meshd_cluster_nodes')) === 3,
  { what: 'node A to move to the second nats-server', timeoutMs: 10000 });
  await broadcastRound('one NATS down', () => 1);
  assert.equal(await metric(c.port, 'meshd_cluster_dead_node_departures_total'), departuresBefore,
    'no one was declared dead');

  // All NATS gone: every node serves its own clients; no one is declared
  // dead (a node cut off hears no one, which says nothing about them), and
  // the peer-to-peer links still carry every broadcast.
  await nats[1].kill();
  await waitFor(async () => {
    for (const node of live) if ((await metric(node.port, 'meshd_nats_connected')) !== 0) return false;
    return true;
  }, { what: 'every node to report NATS gone' });
  await sleep(3000);  // past the dead-node delay
  assert.ok(await everyoneKnowsEveryone(), 'no member was forgotten during the NATS outage');
  await broadcastRound('no NATS', () => 1);

  // Meanwhile a peer on A leaves and a newcomer joins on C.
  const leaver = natives.find((peer) => !peer.stopping && nodeOf(peer.id) === 1);
  members = members.filter((member) => member.id !== leaver.id);
  await leaver.stop();
  const joiner = nativeOn(c, 'N14');
  await waitFor(() => joiner.id !== 0, { what: "the newcomer's welcome" });
  members.push(nativeMember(joiner));

  // NATS back (same ports): the nodes reconnect and resynchronise; every
  // peer forgets the leaver and learns the newcomer without waiting for
  // anyone's next full status.
  nats[0].start();
  nats[1].start();
  await waitFor(async () => {
    for (const node of live) if ((await metric(node.port, 'meshd_nats_connected')) !== 1) return false;
    return true;
  }, { what: 'every node to reconnect to NATS', timeoutMs: 15000 });
  const backAt = Date.now();
  await waitFor(async () => {
    for (const member of members) {
      const known = await member.knows();
      if (known.has(leaver.id) || !known.has(joiner.id)) return false;
    }
    return true;
  }, { what: 'every peer to forget the leaver and know the newcomer', timeoutMs: 8000 });
  console.log(`# converged ${Date.now() - backAt} ms after NATS returned`);
  await clusterFormed(live);
  await meshFormed('after the outage');
  await broadcastRound('NATS back', () => 1);
});
