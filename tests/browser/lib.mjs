// Shared helpers of the browser tests: a real meshd on 127.0.0.1 (ephemeral
// port) and headless Debian Chromium driven by playwright-core.
//
// Environment (set by CTest, see CMakeLists.txt):
//   MESHD             path of the meshd program
//   P2PMESH_WEB_ROOT  web root served by meshd (the source tree's web/, which
//                     holds p2pmesh.mjs + .wasm after the wasm preset build)
//   CHROMIUM          browser executable (default /usr/bin/chromium)

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const meshdPath = process.env.MESHD;
export const webRoot = process.env.P2PMESH_WEB_ROOT;
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

export function checkEnvironment() {
  const problems = [];
  if (!meshdPath || !existsSync(meshdPath)) problems.push(`MESHD=${meshdPath} is not a program`);
  if (!webRoot || !existsSync(path.join(webRoot, 'p2pmesh.mjs'))) {
    problems.push(`${webRoot}/p2pmesh.mjs is missing: build the wasm preset first ` +
      '(cmake --preset wasm && cmake --build --preset wasm)');
  }
  if (!existsSync(chromiumPath)) problems.push(`${chromiumPath} is missing: run tools/deps.sh`);
  if (problems.length) throw new Error(problems.join('\n'));
}

// Starts meshd on 127.0.0.1 with an ephemeral port; resolves {port, http, ws,
// child, stop}.
export function startMeshd(extraArgs = []) {
  checkEnvironment();
  return new Promise((resolve, reject) => {
    const child = spawn(meshdPath, ['--host', '127.0.0.1', '--port', '0', '--web-root', webRoot,
      '--log-level', 'warn', ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`meshd did not report its port within 10 s\n${out}${err}`));
    }, 10000);
    child.stderr.on('data', (chunk) => { err += chunk; process.stderr.write(`[meshd] ${chunk}`); });
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /listening on [^\s:]+:(\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        const port = Number(match[1]);
        resolve({
          port,
          http: `http://127.0.0.1:${port}`,
          ws: `ws://127.0.0.1:${port}/service`,
          child,
          stop: () => new Promise((done) => {
            if (child.exitCode !== null || child.signalCode !== null) { done(); return; }
            child.once('exit', () => done());
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 5000).unref();
          }),
        });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`meshd exited (${code}) before listening\n${out}${err}`));
    });
  });
}

const baseArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// Loopback candidates need this flag plus a granted media permission and one
// getUserMedia call per page (see grantLoopback); shared/NOTES-webrtc.md.
const loopbackArgs = ['--allow-loopback-in-peer-connection', '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream'];

// Launches Chromium with a fresh profile. `loopback: false` = Chromium's
// default WebRTC settings (mDNS host candidates).
export async function launchBrowser({ loopback = true } = {}) {
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'p2pmesh-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    args: loopback ? [...baseArgs, ...loopbackArgs] : baseArgs,
  });
  if (loopback) await context.grantPermissions(['camera', 'microphone']);
  return {
    context,
    loopback,
    async close() {
      await context.close().catch(() => {});
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

// Keeps signalled candidates on loopback (127.0.0.1 only): installed in each
// page before its scripts run, picked up by the chat page and the test page.
function loopbackInitScript() {
  window.p2pmeshTestOptions = {
    candidateFilter: (init) => / 127\.0\.0\.1 /.test(init.candidate || ''),
  };
  window.p2pmeshMediaReady = navigator.mediaDevices.getUserMedia({ audio: true })
    .then((stream) => stream.getTracks().forEach((track) => track.stop()))
    .catch((error) => console.warn('getUserMedia failed', error));
}

export async function newPage(browser, label) {
  const page = await browser.context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') {
      console.log(`[${label} console.${message.type()}] ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => console.log(`[${label} pageerror] ${error.message}`));
  if (browser.loopback) await page.addInitScript(loopbackInitScript);
  return page;
}

export async function waitFor(predicate, { timeoutMs = 30000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await predicate();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
