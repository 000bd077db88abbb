// A meshd cluster on loopback for the JS tests: nats-server processes routed
// to each other (test-chosen free ports, so a killed server can come back on
// the same ones) and meshd nodes joined to them (docs/cluster.md).
//
// Environment (set by CTest): NATS_SERVER, the path of nats-server; and the
// variables of ../browser/lib.mjs (MESHD, P2PMESH_WEB_ROOT) and
// ../browser/native_peer.mjs (MESH_PEER).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { startMeshd, waitFor } from '../browser/lib.mjs';

const natsServerPath = process.env.NATS_SERVER;

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function httpText(port, path) {
  try {
    const response = await fetch(`http://127.0.0.1:${port}${path}`);
    return await response.text();
  } catch (error) {
    return '';
  }
}

// One nats-server of a two-server cluster. start() may be called again
// after kill(): same ports, same routes.
export class NatsServer {
  static async create() {
    const server = new NatsServer();
    [server.port, server.clusterPort, server.monitorPort] = await Promise.all(
      [freePort(), freePort(), freePort()]);
    return server;
  }

  get url() { return `nats://127.0.0.1:${this.port}`; }

  start(routeTo) {
    if (!natsServerPath || !existsSync(natsServerPath)) {
      throw new Error(`NATS_SERVER=${natsServerPath} is not a program: install nats-server (tools/deps.sh)`);
    }
    this.routeTo = routeTo ?? this.routeTo;
    this.child = spawn(natsServerPath, ['-a', '127.0.0.1', '-p', String(this.port),
      '-m', String(this.monitorPort), '--cluster_name', 'meshtest',
      '--cluster', `nats://127.0.0.1:${this.clusterPort}`,
      '--routes', `nats://127.0.0.1:${this.routeTo}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr.on('data', () => {});
  }

  async routed() {
    return (await httpText(this.monitorPort, '/routez')).includes('"num_routes": 1');
  }

  kill() {
    return new Promise((resolve) => {
      if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) {
        resolve();
        return;
      }
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}

// Two routed nats-servers.
export async function startNatsPair() {
  const pair = [await NatsServer.create(), await NatsServer.create()];
  pair[0].start(pair[1].clusterPort);
  pair[1].start(pair[0].clusterPort);
  await waitFor(async () => (await pair[0].routed()) && (await pair[1].routed()),
    { what: 'the two nats-servers to route to each other', timeoutMs: 10000 });
  return pair;
}

export async function metric(port, name) {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(await httpText(port, '/metrics'));
  return match ? Number(match[1]) : NaN;
}

// A meshd node on NATS servers `natsUrls` (the first is its own); resolves
// ../browser/lib.mjs's meshd handle plus `node` and `kill()` (SIGKILL).
export async function startNode(nodeId, natsUrls) {
  const node = await startMeshd(['--nats', natsUrls.join(','), '--node-id', String(nodeId)]);
  node.node = nodeId;
  node.kill = () => new Promise((resolve) => {
    if (node.child.exitCode !== null || node.child.signalCode !== null) { resolve(); return; }
    node.child.once('exit', () => resolve());
    node.child.kill('SIGKILL');
  });
  return node;
}

// Waits until every node hears `count` nodes (itself included).
export async function clusterFormed(nodes, count = nodes.length) {
  await waitFor(async () => {
    for (const node of nodes) if ((await metric(node.port, 'meshd_cluster_nodes')) !== count) return false;
    return true;
  }, { what: `every node to hear ${count} nodes`, timeoutMs: 10000 });
}

// The node number of a peer id (docs/cluster.md: the high 8 bits).
export const nodeOf = (id) => id >>> 24;
