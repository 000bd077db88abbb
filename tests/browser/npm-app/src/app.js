// A tiny app on the npm package p2pmesh. The page's URL says where meshd is
// and which group to join: ?server=ws://host:port/service&group=name.
// moduleOptions tells the loader where this bundle's p2pmesh.wasm is
// (main.js, locate.js, inline.js: the three ways of the package's README).
import { Mesh } from 'p2pmesh';

export async function start(moduleOptions) {
  const params = new URLSearchParams(location.search);
  const status = document.getElementById('status');
  const log = document.getElementById('log');
  const app = { mesh: null, received: [], error: null };
  window.app = app;
  try {
    // Set by the test harness before the page's scripts (loopback-only ICE
    // candidates, tests/browser/lib.mjs); absent in a real page.
    await window.p2pmeshMediaReady;
    const mesh = await Mesh.join({
      ...window.p2pmeshTestOptions,
      url: params.get('server') || undefined,
      group: params.get('group') || 'npm-demo',
      moduleOptions,
    });
    mesh.on('message', (m) => {
      app.received.push({ from: m.from, text: m.text });
      const item = document.createElement('li');
      item.textContent = `${m.from}: ${m.text}`;
      log.append(item);
    });
    app.mesh = mesh;
    status.textContent = `joined ${mesh.group} as ${mesh.id}`;
  } catch (error) {
    app.error = String((error && error.stack) || error);
    status.textContent = `join failed: ${error}`;
  }
}
