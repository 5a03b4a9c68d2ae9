// Failover of the web client between nodes that host-meta lists (issue 16):
// without a load balancer, a node announces the others in
// http.alternate_urls, and the page moves to another when its own dies.
// The nodes here are separate servers with their own data directories, each
// with the same account: what is checked is where the client connects, not
// what a cluster shares.
//
// Accounts are added while each server runs (through its admin socket), so
// the test does not depend on whether an offline `user add` on a fresh data
// directory needs a flag to create the database.
//
// Needs what ui.test.mjs needs. Every wait is on an element or an event,
// with a deadline; nothing sleeps.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { addUser, startServer, stopServer } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const WAIT = 15_000; // per element or event
const WS_PATH = '/xmpp-websocket';
const alice = { jid: 'alice@localhost', password: 'alice-secret-1' };

let tmp;
let bin;
let browser;
const nodes = []; // every server started, stopped in after()

before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'xmppws-failover-'));
  bin = process.env.XMPPWS_BIN;
  if (!bin) {
    bin = path.join(tmp, 'xmppws');
    await promisify(execFile)('go', ['build', '-o', bin, './server'], { cwd: repo });
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  for (const n of nodes) await stopServer(n, { wait: WAIT });
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** writeNodeConfig writes name's config: its address, data directory and further [http] keys. */
async function writeNodeConfig(name, address, http = {}) {
  const dir = path.join(tmp, name);
  await mkdir(dir, { recursive: true });
  const cfg = path.join(dir, 'server.toml');
  await writeFile(cfg, [
    '[http]',
    `address = ${JSON.stringify(address)}`,
    ...Object.entries(http).map(([k, v]) => `${k} = ${JSON.stringify(v)}`),
    '',
    '[storage]',
    `data_dir = ${JSON.stringify(path.join(dir, 'data'))}`,
    '',
  ].join('\n'));
  return cfg;
}

/** startNode starts a server named name and resolves with it and its WebSocket URL (ws). */
async function startNode(name, address = '127.0.0.1:0', http = {}) {
  const cfg = await writeNodeConfig(name, address, http);
  const node = await startServer(bin, cfg, { wait: WAIT });
  nodes.push(node);
  node.name = name;
  node.cfg = cfg;
  node.ws = `${node.base.replace(/^http:/, 'ws:')}${WS_PATH}`;
  return node;
}

/** deadURL is a WebSocket URL on a loopback port that nothing listens on (it was just closed). */
async function deadURL() {
  const srv = createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return `ws://127.0.0.1:${port}${WS_PATH}`;
}

/** newPage opens a page in a fresh context, collecting script errors and unexpected console errors. */
async function newPage() {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 }, reducedMotion: 'reduce' });
  ctx.setDefaultTimeout(WAIT);
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  // A WebSocket to a dead node fails with a console error: that is expected here.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/WebSocket connection to .* failed/.test(m.text())) page.errors.push(`console: ${m.text()}`);
  });
  return page;
}

async function signIn(page, base, { jid, password }) {
  await page.goto(`${base}/?signin`);
  await page.getByTestId('signin-jid').fill(jid);
  await page.getByTestId('signin-password').fill(password);
  await page.getByTestId('signin-password').press('Enter');
}

/** onlineAt waits until the page is online through the WebSocket URL url. */
function onlineAt(page, url, timeout = WAIT) {
  return page.locator(`[data-testid=status][data-state=online] [data-testid=status-server][data-url="${url}"]`).waitFor({ timeout });
}

async function hostMetaLinks(base) {
  const jrd = await (await fetch(`${base}/.well-known/host-meta.json`)).json();
  return jrd.links.filter((l) => l.rel === 'urn:xmpp:alt-connections:websocket').map((l) => l.href);
}

async function dump(page, nodesShown, name) {
  const dir = path.join(tmpdir(), `xmppws-failover-failure-${Date.now()}`);
  await mkdir(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true }).catch(() => {});
  for (const n of nodesShown) await writeFile(path.join(dir, `${n.name}.log`), `${n.log.join('\n')}\n`);
  console.error(`"${name}" failed; screenshot and server logs in ${dir}`);
}

test('the page moves to the next node when its node is killed', async () => {
  const b = await startNode('b');
  await addUser(bin, b.cfg, alice);
  const a = await startNode('a', '127.0.0.1:0', { alternate_urls: [b.ws] });
  await addUser(bin, a.cfg, alice);
  assert.deepEqual(await hostMetaLinks(a.base), [a.ws, b.ws]);

  const page = await newPage();
  try {
    await signIn(page, a.base, alice);
    await onlineAt(page, a.ws);
    assert.equal(await page.getByTestId('status-server').textContent(), `· ${new URL(a.ws).host}`);

    await stopServer(a, { signal: 'SIGKILL' });
    // Back-off before the first round is at most a second, and b answers at once.
    await onlineAt(page, b.ws);

    // The session works on b, the only node left: a room created there echoes a message.
    await page.getByTestId('new-room').click();
    await page.getByTestId('create-name').fill('Lifeboat');
    await page.getByTestId('create-name').press('Enter');
    await page.getByTestId('room-title').filter({ hasText: /^Lifeboat$/ }).waitFor();
    await page.getByTestId('composer-input').fill('Still here after a node died');
    await page.getByTestId('composer-input').press('Enter');
    await page.locator('[data-testid=message][data-from="alice@localhost"] [data-testid=message-body]', { hasText: /^Still here after a node died$/ }).waitFor();
    assert.deepEqual(page.errors, []);
  } catch (e) {
    await dump(page, [a, b], 'failover after SIGKILL');
    throw e;
  } finally {
    await page.context().close();
  }
});

test('a first URL that is dead from the start: the client signs in through the next', async () => {
  // The node must be on a known port to list itself: start it once to get one.
  const probe = await startNode('c');
  await addUser(bin, probe.cfg, alice);
  const address = new URL(probe.base).host;
  await stopServer(probe, { wait: WAIT });
  const dead = await deadURL();
  const c = await startNode('c', address, { public_url: dead, alternate_urls: [`ws://${address}${WS_PATH}`] });
  assert.deepEqual(await hostMetaLinks(c.base), [dead, c.ws]);

  const page = await newPage();
  try {
    await signIn(page, c.base, alice);
    await onlineAt(page, c.ws);
    await page.getByTestId('me').filter({ hasText: 'alice@localhost' }).waitFor();
    assert.deepEqual(page.errors, []);
  } catch (e) {
    await dump(page, [c], 'dead first URL');
    throw e;
  } finally {
    await page.context().close();
  }
});
