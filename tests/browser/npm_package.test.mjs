// The npm package, used as an app developer would: `npm pack` the package
// the wasm build assembled (build/wasm/npm), install the tarball offline into
// a small app (npm-app/, copied to a temp dir), bundle it with esbuild (three
// ways of finding p2pmesh.wasm: copied next to the bundle, emitted by esbuild
// + locateFile, inlined + wasmBinary), serve the app from a plain HTTP server
// and open one page per bundle in Chromium; the pages join one group on a
// real meshd and each one's broadcast reaches the others over data channels.
//
// Environment (CTest): MESHD, P2PMESH_WEB_ROOT (lib.mjs) and P2PMESH_NPM_DIR
// (default: <source>/build/wasm/npm, the wasm preset's).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { launchBrowser, newPage, sleep, startMeshd, waitFor, webRoot } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const sourceDir = path.resolve(here, '../..');
const npmDir = process.env.P2PMESH_NPM_DIR || path.join(sourceDir, 'build/wasm/npm');
const npm = process.env.NPM || 'npm';

let tmp;
let appDir;
let tarball;
let meshd;
let web;
let browser;

// npm without network (a tarball with no dependencies needs none) and with a
// cache of its own, so nothing comes from or goes to the user's ~/.npm.
function runNpm(args, cwd) {
  return new Promise((resolve, reject) => {
    execFile(npm, [...args, '--offline', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd,
      timeout: 120000,
      env: { ...process.env, npm_config_cache: path.join(tmp, 'npm-cache'),
        npm_config_update_notifier: 'false' },
    }, (error, stdout, stderr) => {
      if (error) reject(new Error(`npm ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

// A static file server for the app (what the developer's own server would be).
function serveStatic(root) {
  const types = {
    '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
    '.wasm': 'application/wasm', '.json': 'application/json',
  };
  const requests = [];
  const server = createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://localhost');
    let file = path.join(root, path.normalize(decodeURIComponent(pathname)));
    if (pathname.endsWith('/')) file = path.join(file, 'index.html');
    let status = 404;
    let body = 'not found';
    if (file.startsWith(root + path.sep) && existsSync(file)) {
      try {
        body = readFileSync(file);
        status = 200;
      } catch (error) { /* a directory: 404 */ }
    }
    requests.push({ path: pathname, status });
    res.writeHead(status, { 'content-type': (status === 200 && types[path.extname(file)]) || 'text/plain' });
    res.end(body);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({
      http: `http://127.0.0.1:${server.address().port}`,
      requests,
      close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); }),
    }));
  });
}

before(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'p2pmesh-npm-'));
});

after(async () => {
  if (browser) await browser.close();
  if (web) await web.close();
  if (meshd) await meshd.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('npm pack makes a tarball of the package the wasm build assembled', async () => {
  assert.ok(existsSync(path.join(npmDir, 'package.json')),
    `${npmDir}/package.json is missing: build the wasm preset (cmake --preset wasm && cmake --build --preset wasm)`);
  // The same build as the copy in web/ the other browser tests use.
  assert.ok(readFileSync(path.join(npmDir, 'p2pmesh.mjs')).equals(readFileSync(path.join(webRoot, 'p2pmesh.mjs'))),
    `${npmDir}/p2pmesh.mjs differs from ${webRoot}/p2pmesh.mjs: rebuild the wasm preset`);

  const [packed] = JSON.parse(await runNpm(['pack', npmDir, '--pack-destination', tmp, '--json'], tmp));
  const cmakeVersion = /project\(p2pmesh\s+VERSION\s+([0-9.]+)/.exec(
    readFileSync(path.join(sourceDir, 'CMakeLists.txt'), 'utf8'))[1];
  assert.equal(packed.name, 'p2pmesh');
  assert.equal(packed.version, cmakeVersion, 'package version = CMake project version');
  assert.deepEqual(packed.files.map((f) => f.path).sort(),
    ['README.md', 'p2pmesh.d.ts', 'p2pmesh.mjs', 'p2pmesh.wasm', 'package.json']);
  tarball = path.join(tmp, packed.filename);
  assert.ok(existsSync(tarball), tarball);
  console.log(`packed ${packed.filename}: ${packed.size} bytes, ${packed.unpackedSize} unpacked`);
});

test('the tarball installs offline into an app, which esbuild bundles three ways', async () => {
  assert.ok(tarball, 'npm pack ran');
  appDir = path.join(tmp, 'app');
  cpSync(path.join(here, 'npm-app'), appDir, { recursive: true });
  await runNpm(['install', tarball, '--ignore-scripts'], appDir);

  const installed = path.join(appDir, 'node_modules/p2pmesh');
  const manifest = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8'));
  assert.equal(manifest.type, 'module');
  assert.deepEqual(manifest.exports['.'], { types: './p2pmesh.d.ts', default: './p2pmesh.mjs' });
  assert.equal(manifest.types, './p2pmesh.d.ts');
  assert.equal(manifest.sideEffects, false);
  const app = JSON.parse(readFileSync(path.join(appDir, 'package.json'), 'utf8'));
  assert.match(app.dependencies.p2pmesh, /^file:/);

  // What the app's build script would do (esbuild's JS API; the CLI is the same).
  const bundle = async (entry, outdir, loader = {}) => {
    const result = await build({
      absWorkingDir: appDir, entryPoints: [`src/${entry}.js`], outdir, loader,
      bundle: true, format: 'esm', minify: true, logLevel: 'silent',
    });
    assert.deepEqual(result.warnings, [], `${entry}.js bundles without warnings`);
  };
  await bundle('main', 'dist');
  cpSync(path.join(installed, 'p2pmesh.wasm'), path.join(appDir, 'dist/p2pmesh.wasm'));
  await bundle('locate', 'dist-locate', { '.wasm': 'file' });
  await bundle('inline', 'dist-inline', { '.wasm': 'binary' });

  assert.deepEqual(readdirSync(path.join(appDir, 'dist')).sort(), ['main.js', 'p2pmesh.wasm']);
  const emitted = readdirSync(path.join(appDir, 'dist-locate')).sort();
  assert.equal(emitted.length, 2, emitted.join(' '));
  assert.equal(emitted[0], 'locate.js');
  assert.match(emitted[1], /^p2pmesh-\w+\.wasm$/);
  assert.deepEqual(readdirSync(path.join(appDir, 'dist-inline')), ['inline.js']);
  for (const dir of ['dist', 'dist-locate', 'dist-inline']) {
    const files = readdirSync(path.join(appDir, dir));
    console.log(`${dir}/: ${files.map((f) => `${f} ${readFileSync(path.join(appDir, dir, f)).length} B`).join(', ')}`);
  }
});

test('the bundled pages join a group on meshd and deliver over the mesh', async () => {
  assert.ok(appDir && existsSync(path.join(appDir, 'dist-inline/inline.js')), 'the app was bundled');
  meshd = await startMeshd();
  web = await serveStatic(appDir);
  browser = await launchBrowser({ loopback: true });

  // The app is served from its own origin; meshd only carries the mesh.
  const variants = [['main', 'index.html'], ['locate', 'locate.html'], ['inline', 'inline.html']];
  const pages = [];
  for (const [label, file] of variants) {
    const page = await newPage(browser, label);
    await page.goto(`${web.http}/${file}?server=${encodeURIComponent(meshd.ws)}&group=npm`);
    await page.waitForFunction(() => window.app && (window.app.mesh || window.app.error), null,
      { timeout: 20000 });
    assert.equal(await page.evaluate(() => window.app.error), null, `${label}: join`);
    const id = await page.evaluate(() => window.app.mesh.id);
    assert.match(await page.textContent('#status'), new RegExp(`joined npm as ${id}$`));
    pages.push({ label, page, id });
  }
  const ids = pages.map((p) => p.id);
  assert.equal(new Set(ids).size, 3, `ids ${ids}`);

  // Every page linked to the two others.
  await waitFor(async () => {
    for (const { page, id } of pages) {
      const peers = await page.evaluate(() => window.app.mesh.links().filter((l) => l.open).map((l) => l.peer));
      if (!ids.every((other) => other === id || peers.includes(other))) return false;
    }
    return true;
  }, { what: 'each page linked to the two others' });

  for (const { label, page } of pages) await page.evaluate((text) => window.app.mesh.broadcast(text), `hello from ${label}`);
  await waitFor(async () => {
    for (const { page } of pages) if ((await page.evaluate(() => window.app.received.length)) < 2) return false;
    return true;
  }, { what: 'every page to receive the two other messages' });
  await sleep(500);  // room for duplicates to show
  for (const { label, page, id } of pages) {
    const expected = pages.filter((p) => p.id !== id).map((p) => ({ from: p.id, text: `hello from ${p.label}` }));
    const received = await page.evaluate(() => window.app.received);
    const byFrom = (x, y) => x.from - y.from;
    assert.deepEqual([...received].sort(byFrom), [...expected].sort(byFrom), `${label} received`);
    // Over the data channels, not through the server.
    const counters = await page.evaluate(() => window.app.mesh.counters());
    assert.equal(counters.fallbackReceived, 0, `${label}: fallbackReceived`);
    assert.equal(counters.delivered, 2, `${label}: delivered`);
    // And the app showed them.
    const shown = await page.$$eval('#log li', (items) => items.map((li) => li.textContent));
    assert.deepEqual(shown.sort(), expected.map((m) => `${m.from}: ${m.text}`).sort(), `${label} page`);
  }

  // Each bundle found its .wasm its own way; nothing was missing.
  const paths = web.requests.map((r) => r.path);
  assert.deepEqual(web.requests.filter((r) => r.status !== 200), [], 'no failed request');
  assert.ok(paths.includes('/dist/p2pmesh.wasm'), paths.join(' '));
  assert.ok(paths.some((p) => /^\/dist-locate\/p2pmesh-\w+\.wasm$/.test(p)), paths.join(' '));
  assert.ok(!paths.some((p) => p.startsWith('/dist-inline/') && p.endsWith('.wasm')), paths.join(' '));
  assert.equal(paths.filter((p) => p.endsWith('.wasm')).length, 2, paths.join(' '));

  for (const { page } of pages) await page.evaluate(() => window.app.mesh.leave());
  for (const { page } of pages) await page.close();
});
