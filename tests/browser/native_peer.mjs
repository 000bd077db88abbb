// One native peer (mesh-peer, src/native) as the JS tests drive it: its JSON
// lines on stdout are collected, say() broadcasts a line, stop() leaves.
//
// Environment: MESH_PEER, the path of mesh-peer.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export const meshPeerPath = process.env.MESH_PEER;

// urls: one meshd URL or several (fallbacks, tried in turn).
// The peer's state follows its latest session: `id` is the id of the latest
// welcome (all of them in `ids`), `peers` and `links` are cleared when the
// server connection drops (mesh-peer reports every member and link gone).
export function startNative(urls, group, label, extraArgs = []) {
  if (!meshPeerPath) throw new Error('MESH_PEER (path of mesh-peer) is not set');
  const urlArgs = [].concat(urls).flatMap((url) => ['--url', url]);
  const child = spawn(meshPeerPath, [...urlArgs, '--group', group, '--loopback', '--stay', ...extraArgs],
    { stdio: ['pipe', 'pipe', 'pipe'] });
  const peer = {
    label,
    child,
    id: 0,
    ids: [],
    events: [],
    messages: [],
    peers: new Set(),
    links: new Set(),
    say(text) { child.stdin.write(`${text}\n`); },
    stopping: false,
    exited: false,
    stop(signal = 'SIGTERM') {
      peer.stopping = true;
      return new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) { resolve(); return; }
        child.once('exit', () => resolve());
        child.kill(signal);
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      });
    },
  };
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  createInterface({ input: child.stdout }).on('line', (line) => {
    let event;
    try { event = JSON.parse(line); } catch (error) { return; }
    event.at = Date.now();
    peer.events.push(event);
    if (event.event === 'welcome') { peer.id = event.id; peer.ids.push(event.id); }
    if (event.event === 'message') peer.messages.push([event.from, event.data]);
    if (event.event === 'peer_joined') peer.peers.add(event.peer);
    if (event.event === 'peer_left') peer.peers.delete(event.peer);
    if (event.event === 'link_up') peer.links.add(event.peer);
    if (event.event === 'link_down') peer.links.delete(event.peer);
  });
  child.once('exit', (code, signal) => {
    peer.exited = true;
    if (!peer.stopping) console.log(`[${label}] mesh-peer exited ${code} ${signal}\n${stderr}`);
  });
  return peer;
}
