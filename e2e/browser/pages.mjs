// The browser side of the browser tests: the server binary, Chromium, one
// browser context per person with the test hooks the steps use, and the
// page helpers (sign in, find a room or a message, send, make a room, a raw
// second connection, steps that keep screenshots and the server log when
// they fail), and the setup of a test file around them. Shared by chat, modern, session and ui.test.mjs, next to
// server.mjs which runs the server; it is not a test file itself, and it
// never asserts: what a test checks stays in the test.

import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { addUser, startServer, stopServer } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

/** repo is the checkout's root: where `go build` runs and screenshots go. */
export const repo = path.resolve(here, '..', '..');

/** CHROMIUM is the browser the tests drive (CHROMIUM_PATH overrides Debian's). */
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** WAIT is the deadline, in ms, for each element, event or server start. */
export const WAIT = 15_000;

/** MAX_STANZA is the server's max_stanza_size in startBrowserTest (the default). */
export const MAX_STANZA = 65536;

/** users are the accounts the tests add; carol is a member who stays and never signs in. */
export const users = {
  alice: { jid: 'alice@localhost', password: 'alice-secret-1' },
  bob: { jid: 'bob@localhost', password: 'bob-secret-2' },
  carol: { jid: 'carol@localhost', password: 'carol-secret-3' },
};

const run = promisify(execFile);

/**
 * serverBinary makes the test's temporary directory (xmppws-<label>-...) and
 * resolves with {tmp, bin}: bin is XMPPWS_BIN, or the server built into tmp.
 */
export async function serverBinary(label) {
  const tmp = await mkdtemp(path.join(tmpdir(), `xmppws-${label}-`));
  let bin = process.env.XMPPWS_BIN;
  if (!bin) {
    bin = path.join(tmp, 'xmppws');
    await run('go', ['build', '-o', bin, './server'], { cwd: repo });
  }
  return { tmp, bin };
}

/**
 * startBrowserTest sets up a test file's world into h ({pages, pageErrors}
 * given): h.tmp, a server (h.server) with users and a config of the common
 * lines (no shaper, rooms made without limit, max_stanza_size MAX_STANZA)
 * followed by config, h.browser, and pages for alice and bob (openPages,
 * with history). Each is set as soon as it exists, so that endBrowserTest
 * cleans up after a setup that failed halfway.
 */
export async function startBrowserTest(h, label, { config = [], history = false } = {}) {
  let bin;
  ({ tmp: h.tmp, bin } = await serverBinary(label));
  const cfg = path.join(h.tmp, 'server.toml');
  await writeFile(cfg, [
    '[http]',
    'address = "127.0.0.1:0"',
    '[storage]',
    `data_dir = ${JSON.stringify(path.join(h.tmp, 'data'))}`,
    '[websocket]',
    `max_stanza_size = ${MAX_STANZA}`,
    '[websocket.shaper]',
    'stanza_rate = 0.0 # the seeding floods',
    'byte_rate = 0.0',
    '[modules.mod_muc_light]',
    'create_rate = "infinity"',
    'create_burst = 1000',
    ...config,
    '',
  ].join('\n'));
  for (const u of Object.values(users)) await addUser(bin, cfg, u);
  h.server = await startServer(bin, cfg, { wait: WAIT });
  h.browser = await launchChromium();
  Object.assign(h.pages, await openPages(h.browser, h.server, ['alice', 'bob'], { wait: WAIT, pageErrors: h.pageErrors, history }));
}

/** endBrowserTest undoes what startBrowserTest set up in h, as far as it got. */
export async function endBrowserTest(h) {
  await h.browser?.close().catch(() => {});
  if (h.server) await stopServer(h.server, { wait: WAIT });
  if (h.tmp) await rm(h.tmp, { recursive: true, force: true });
}

/**
 * launchChromium starts headless Chromium. launch() gives it a fresh, empty
 * --user-data-dir of its own (and refuses one passed in args). Without the
 * background-networking flags Chromium keeps dialling Google's hosts, which
 * this network refuses.
 */
export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * openPages gives each of names its own browser context and page on
 * server.base and resolves with {name: page}. Every page can have its
 * WebSockets cut (window.dropConnectionsForTest). With recorders (the
 * default) the page may show notifications and records them
 * (window.notificationsForTest) and its long tasks (window.longTasksForTest);
 * with history it also counts the history queries it sends
 * (window.historyQueriesForTest). Uncaught errors and console errors go to
 * pageErrors, except the WebSocket failing while a server restarts.
 */
export async function openPages(browser, server, names, { wait, pageErrors, recorders = true, history = false }) {
  const pages = {};
  for (const name of names) {
    const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 }, colorScheme: 'light', reducedMotion: 'reduce' });
    ctx.setDefaultTimeout(wait);
    if (recorders) await ctx.grantPermissions(['notifications'], { origin: server.base });
    await ctx.addInitScript(testHooks, { recorders, history });
    const page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(`${name}: ${e.message}`));
    // Console errors include Content-Security-Policy violations.
    page.on('console', (m) => {
      if (m.type() === 'error' && !/WebSocket connection to .* failed/.test(m.text())) pageErrors.push(`${name} console: ${m.text()}`);
    });
    pages[name] = page;
  }
  return pages;
}

// testHooks runs in every page before its own scripts (see openPages).
function testHooks({ recorders, history }) {
  // Cuts the page's WebSockets (going offline leaves open ones alone).
  const Native = window.WebSocket;
  const sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      sockets.push(this);
    }
  };
  Object.defineProperty(window, 'dropConnectionsForTest', { value: () => sockets.splice(0).forEach((ws) => ws.close(4000, 'cut by the test')) });
  if (history) {
    // History queries the page sends, counted.
    let mam = 0;
    const send = Native.prototype.send;
    Native.prototype.send = function (data) {
      if (typeof data === 'string' && data.includes('urn:xmpp:mam:2')) mam++;
      return send.call(this, data);
    };
    Object.defineProperty(window, 'historyQueriesForTest', { get: () => mam });
  }
  if (!recorders) return;
  // Notifications the page shows, recorded (headless Chromium draws none).
  const shown = [];
  const NativeN = window.Notification;
  window.Notification = class extends NativeN {
    constructor(title, opts) {
      super(title, opts);
      shown.push({ title, body: opts?.body ?? '' });
    }
  };
  Object.defineProperty(window, 'notificationsForTest', { value: shown });
  // Long tasks (over 50 ms on the main thread) from the start.
  const long = [];
  new PerformanceObserver((l) => long.push(...l.getEntries().map((e) => e.duration))).observe({ type: 'longtask', buffered: true });
  Object.defineProperty(window, 'longTasksForTest', { value: long });
}

/** byTest finds the element with this data-testid. */
export const byTest = (page, id) => page.getByTestId(id);

/** escapeRe quotes s for a RegExp that matches it literally. */
export const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** signInAt signs in with a password on the server at base and waits until the page is online. */
export async function signInAt(base, page, { jid, password }) {
  await page.goto(`${base}/?signin`); // the form, even with a saved sign-in
  await byTest(page, 'signin-jid').fill(jid);
  await byTest(page, 'signin-password').fill(password);
  await byTest(page, 'signin-password').press('Enter');
  await page.locator('[data-testid=status][data-state=online]').waitFor();
}

/** roomItem is the room list's entry named exactly name. */
export function roomItem(page, name) {
  return page.locator('[data-testid=room-item]').filter({ has: page.locator('[data-testid=room-item-name]', { hasText: new RegExp(`^${escapeRe(name)}$`) }) });
}

/** message is the timeline's message from this JID with exactly this body. */
export function message(page, from, body) {
  return page.locator(`[data-testid=message][data-from="${from}"]`).filter({ has: page.locator('[data-testid=message-body]', { hasText: new RegExp(`^${escapeRe(body)}$`) }) });
}

/** sendMessage types body into the composer and sends it. */
export async function sendMessage(page, body) {
  await byTest(page, 'composer-input').fill(body);
  await byTest(page, 'composer-input').press('Enter');
}

/** createRoom makes a room with the New room form and waits until it is open. */
export async function createRoom(page, name, members = '') {
  await byTest(page, 'new-room').click();
  await byTest(page, 'create-name').fill(name);
  await byTest(page, 'create-members').fill(members);
  await byTest(page, 'create-submit').click();
  await byTest(page, 'room-title').filter({ hasText: new RegExp(`^${escapeRe(name)}$`) }).waitFor();
}

/**
 * rawSessionWith returns rawSession(page, user, fn, arg), which runs fn in
 * the page with a second connection of user's (its own resource), made
 * with the page's own xmpp.js Client(clientOpts): for what the web client
 * has no button for, such as naming a room or sending fast.
 */
export function rawSessionWith(clientOpts) {
  // One expression, so that fn travels as source: evaluate cannot pass a
  // function, and the page's Content-Security-Policy forbids eval.
  return (page, user, fn, arg) => page.evaluate(`(async () => {
    const xmpp = await import('/xmpp.js');
    const c = new xmpp.Client(${JSON.stringify(clientOpts)});
    const user = ${JSON.stringify(user)};
    await c.connect({ url: await xmpp.discoverWebSocketURL(), jid: user.jid + '/raw-' + xmpp.randomId(4), password: user.password });
    try {
      return await (${fn.toString()})(c, xmpp, ${JSON.stringify(arg)});
    } finally {
      await c.close();
    }
  })()`);
}

/** rawSession is rawSessionWith for seeding: iq replies may take a minute. */
export const rawSession = rawSessionWith({ iqTimeout: 60000 });

/**
 * stepper returns step(name, fn): a subtest of t, skipped once an earlier
 * step failed; a failing step leaves screenshots of pages and server.log
 * in xmppws-<label>-failure-<time> under the temporary directory.
 */
export function stepper(t, label, pages, server) {
  let failed = '';
  return (name, fn) => t.test(name, { skip: failed ? `"${failed}" failed` : false }, async () => {
    try {
      await fn();
    } catch (e) {
      failed = name;
      const dir = path.join(tmpdir(), `xmppws-${label}-failure-${Date.now()}`);
      await mkdir(dir, { recursive: true });
      for (const [n, p] of Object.entries(pages)) await p.screenshot({ path: path.join(dir, `${n}.png`), fullPage: true }).catch(() => {});
      await writeFile(path.join(dir, 'server.log'), `${server?.log.join('\n') ?? ''}\n`);
      console.error(`step "${name}" failed; screenshots and server log in ${dir}`);
      throw e;
    }
  });
}

/** stats summarizes durations in ms: count, median, 95th percentile, maximum. */
export function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => (s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : 0);
  return { n: s.length, p50: +at(0.5).toFixed(1), p95: +at(0.95).toFixed(1), max: +(s.at(-1) ?? 0).toFixed(1) };
}
