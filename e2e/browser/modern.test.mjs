// Browser end-to-end test of the web client's modern group chat (issue 19):
// editing the last message with ↑, replies with a quote, reactions,
// retraction, removal by the owner, what the history shows after a
// reload, and unread counts kept by the server, with two people in
// headless Chromium. It needs a server whose room service announces these
// extensions (the `chat` work); against one that does not, it is skipped
// and says so.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { addUser, startServer, stopServer } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const shots = path.join(repo, 'docs', 'img');
const FEATURES = ['urn:xmpp:message-correct:0', 'urn:xmpp:message-retract:1', 'urn:xmpp:message-moderate:1', 'urn:xmpp:reactions:0', 'urn:xmppws:summary:0', 'urn:xmppws:unread:0'];
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const WAIT = 15_000;
const MAX_STANZA = 65536;
const run = promisify(execFile);

const users = {
  alice: { jid: 'alice@localhost', password: 'alice-secret-1' },
  bob: { jid: 'bob@localhost', password: 'bob-secret-2' },
  carol: { jid: 'carol@localhost', password: 'carol-secret-3' },
};

let tmp;
let server;
let browser;
const pages = {};
const pageErrors = [];

before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'xmppws-modern-'));
  let bin = process.env.XMPPWS_BIN;
  if (!bin) {
    bin = path.join(tmp, 'xmppws');
    await run('go', ['build', '-o', bin, './server'], { cwd: repo });
  }
  const cfg = path.join(tmp, 'server.toml');
  await writeFile(cfg, [
    '[http]',
    'address = "127.0.0.1:0"',
    '[storage]',
    `data_dir = ${JSON.stringify(path.join(tmp, 'data'))}`,
    '[websocket]',
    `max_stanza_size = ${MAX_STANZA}`,
    '[websocket.shaper]',
    'stanza_rate = 0.0 # the seeding floods',
    'byte_rate = 0.0',
    '[modules.mod_muc_light]',
    'create_rate = "infinity"',
    'create_burst = 1000',
    '# No flood limiter: the steps post faster than its default allows.',
    '',
  ].join('\n'));
  for (const u of Object.values(users)) await addUser(bin, cfg, u);
  server = await startServer(bin, cfg, { wait: WAIT });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  for (const name of ['alice', 'bob']) {
    const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 }, colorScheme: 'light', reducedMotion: 'reduce' });
    ctx.setDefaultTimeout(WAIT);
    await ctx.grantPermissions(['notifications'], { origin: server.base });
    await ctx.addInitScript(() => {
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
    });
    const page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(`${name}: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/WebSocket connection to .* failed/.test(m.text())) pageErrors.push(`${name} console: ${m.text()}`);
    });
    pages[name] = page;
  }
});

after(async () => {
  await browser?.close().catch(() => {});
  if (server) await stopServer(server, { wait: WAIT });
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------- helpers

const byTest = (page, id) => page.getByTestId(id);
const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function signIn(page, { jid, password }) {
  await page.goto(`${server.base}/?signin`); // the form, even with a saved sign-in
  await byTest(page, 'signin-jid').fill(jid);
  await byTest(page, 'signin-password').fill(password);
  await byTest(page, 'signin-password').press('Enter');
  await page.locator('[data-testid=status][data-state=online]').waitFor();
}

function roomItem(page, name) {
  return page.locator('[data-testid=room-item]').filter({ has: page.locator('[data-testid=room-item-name]', { hasText: new RegExp(`^${escapeRe(name)}$`) }) });
}

function message(page, from, body) {
  return page.locator(`[data-testid=message][data-from="${from}"]`).filter({ has: page.locator('[data-testid=message-body]', { hasText: new RegExp(`^${escapeRe(body)}$`) }) });
}

async function sendMessage(page, body) {
  await byTest(page, 'composer-input').fill(body);
  await byTest(page, 'composer-input').press('Enter');
}

async function createRoom(page, name, members = '') {
  await byTest(page, 'new-room').click();
  await byTest(page, 'create-name').fill(name);
  await byTest(page, 'create-members').fill(members);
  await byTest(page, 'create-submit').click();
  await byTest(page, 'room-title').filter({ hasText: new RegExp(`^${escapeRe(name)}$`) }).waitFor();
}

/** rawSession runs fn in the page on a second connection of user's, made with the page's own xmpp.js. */
async function rawSession(page, user, fn, arg) {
  return page.evaluate(`(async () => {
    const xmpp = await import('/xmpp.js');
    const c = new xmpp.Client({ iqTimeout: 60000 });
    const user = ${JSON.stringify(user)};
    await c.connect({ url: await xmpp.discoverWebSocketURL(), jid: user.jid + '/raw-' + xmpp.randomId(4), password: user.password });
    try {
      return await (${fn.toString()})(c, xmpp, ${JSON.stringify(arg)});
    } finally {
      await c.close();
    }
  })()`);
}

function stepper(t) {
  let failed = '';
  return (name, fn) => t.test(name, { skip: failed ? `"${failed}" failed` : false }, async () => {
    try {
      await fn();
    } catch (e) {
      failed = name;
      const dir = path.join(tmpdir(), `xmppws-modern-failure-${Date.now()}`);
      await mkdir(dir, { recursive: true });
      for (const [n, p] of Object.entries(pages)) await p.screenshot({ path: path.join(dir, `${n}.png`), fullPage: true }).catch(() => {});
      await writeFile(path.join(dir, 'server.log'), `${server?.log.join('\n') ?? ''}\n`);
      console.error(`step "${name}" failed; screenshots and server log in ${dir}`);
      throw e;
    }
  });
}

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => (s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : 0);
  return { n: s.length, p50: +at(0.5).toFixed(1), p95: +at(0.95).toFixed(1), max: +(s.at(-1) ?? 0).toFixed(1) };
}


/** serviceFeatures reads what the room service announces, over a connection of user's. */
async function serviceFeatures(page, user) {
  return rawSession(page, user, async (c, { el, child, children }) => {
    const info = await c.iq('get', 'muclight.localhost', el('query', { xmlns: 'http://jabber.org/protocol/disco#info' }));
    return children(child(info, 'query'), 'feature').map((f) => f.getAttribute('var'));
  });
}

function actions(page, from, body) {
  return message(page, from, body).locator('[data-testid=message-actions]');
}

test('edit, reply, react, retract, moderate, and unread counts from the server', async (t) => {
  const { alice, bob } = pages;
  await alice.goto(`${server.base}/`);
  const have = await serviceFeatures(alice, users.alice);
  const missing = FEATURES.filter((f) => !have.includes(f));
  if (missing.length) {
    t.skip(`the server does not announce ${missing.join(', ')}`);
    return;
  }
  const step = stepper(t);

  await step('alice makes a room with bob and fixes a typo with ↑', async () => {
    await Promise.all([signIn(alice, users.alice), signIn(bob, users.bob)]);
    await createRoom(alice, 'Workshop', 'bob@localhost');
    await roomItem(bob, 'Workshop').click();
    await sendMessage(alice, 'Meet at the wrold wall');
    await message(bob, 'alice@localhost', 'Meet at the wrold wall').waitFor();
    await message(alice, 'alice@localhost', 'Meet at the wrold wall').waitFor();
    await byTest(alice, 'composer-input').press('ArrowUp');
    await byTest(alice, 'compose-context').filter({ hasText: 'Editing your message' }).waitFor();
    assert.equal(await byTest(alice, 'composer-input').inputValue(), 'Meet at the wrold wall');
    await byTest(alice, 'composer-input').fill('Meet at the world wall');
    await byTest(alice, 'composer-input').press('Enter');
    const fixed = message(bob, 'alice@localhost', 'Meet at the world wall (edited)');
    await fixed.waitFor();
    await message(alice, 'alice@localhost', 'Meet at the world wall (edited)').waitFor();
    assert.equal(await bob.locator('[data-testid=message][data-from="alice@localhost"]').count(), 1, 'a correction is not a new message');
  });

  await step('bob replies with a quote', async () => {
    const target = message(bob, 'alice@localhost', 'Meet at the world wall (edited)');
    await target.hover();
    await target.locator('[data-testid=action-reply]').click();
    await byTest(bob, 'compose-context').filter({ hasText: 'Replying to alice: “Meet at the world wall”' }).waitFor();
    await sendMessage(bob, 'On my way');
    const reply = message(alice, 'bob@localhost', 'On my way');
    await reply.waitFor();
    assert.equal(await reply.locator('[data-testid=message-quote]').textContent(), 'You Meet at the world wall');
    await byTest(bob, 'compose-context').waitFor({ state: 'hidden' });
  });

  await step("both react; pressing one's own reaction takes it back", async () => {
    const onBob = message(bob, 'alice@localhost', 'Meet at the world wall (edited)');
    await onBob.hover();
    await onBob.locator('[data-testid=action-react][data-emoji="👍"]').click();
    const onAlice = message(alice, 'alice@localhost', 'Meet at the world wall (edited)');
    await onAlice.locator('[data-testid=reaction][data-emoji="👍"][data-count="1"]').waitFor();
    await onAlice.hover();
    await onAlice.locator('[data-testid=action-react][data-emoji="👍"]').click();
    await onBob.locator('[data-testid=reaction][data-emoji="👍"][data-count="2"]').waitFor();
    await onAlice.locator('[data-testid=reaction][data-emoji="👍"][data-count="2"]').click(); // hers: taken back
    await onBob.locator('[data-testid=reaction][data-emoji="👍"][data-count="1"]').waitFor();
  });

  await step('bob retracts his message; alice removes one as the owner', async () => {
    await sendMessage(bob, 'Wrong room, sorry');
    const mine = message(bob, 'bob@localhost', 'Wrong room, sorry');
    await mine.waitFor();
    await message(alice, 'bob@localhost', 'Wrong room, sorry').waitFor();
    await mine.hover();
    await mine.locator('[data-testid=action-retract]').click();
    await byTest(bob, 'confirm-ok').click();
    await bob.locator('[data-testid=message-retracted]', { hasText: 'You retracted this message' }).waitFor();
    await alice.locator('[data-testid=message-retracted]', { hasText: 'This message was retracted' }).waitFor();
    assert.equal(await alice.locator('[data-testid=message-body]', { hasText: 'Wrong room' }).count(), 0);

    await sendMessage(bob, 'Buy cheap ropes at spam.example');
    const spam = message(alice, 'bob@localhost', 'Buy cheap ropes at spam.example');
    await spam.waitFor();
    assert.equal(await message(bob, 'bob@localhost', 'Buy cheap ropes at spam.example').locator('[data-testid=action-moderate]').count(), 0, 'a member cannot remove');
    await spam.hover();
    await spam.locator('[data-testid=action-moderate]').click();
    await byTest(alice, 'confirm-ok').click();
    await bob.locator('[data-testid=message-retracted]', { hasText: /^Removed by the owner/ }).waitFor();
    await alice.locator('[data-testid=message-retracted]', { hasText: /^Removed by the owner/ }).waitFor();
    await alice.screenshot({ path: path.join(shots, 'web-modern.png') });
  });

  await step('after a reload the history shows the same: edits folded, tombstones, reactions', async () => {
    await alice.reload();
    await signIn(alice, users.alice);
    await roomItem(alice, 'Workshop').click();
    const m = message(alice, 'alice@localhost', 'Meet at the world wall (edited)');
    await m.waitFor();
    await m.locator('[data-testid=reaction][data-emoji="👍"][data-count="1"]').waitFor();
    await message(alice, 'bob@localhost', 'On my way').locator('[data-testid=message-quote]').waitFor();
    assert.equal(await alice.locator('[data-testid=message-retracted]').count(), 2);
    assert.equal(await alice.locator('[data-testid=message-body]', { hasText: /wrold|Wrong room|spam/ }).count(), 0, 'no retracted or replaced text');
  });

  await step('unread counts come from the server across a reload', async () => {
    await createRoom(bob, 'Elsewhere', 'alice@localhost');
    await roomItem(alice, 'Workshop').click();
    await sendMessage(alice, 'Unread one');
    await sendMessage(alice, 'Unread two');
    await message(alice, 'alice@localhost', 'Unread two').waitFor();
    await roomItem(bob, 'Workshop').locator('[data-testid=room-unread]', { hasText: /^2$/ }).waitFor();
    await bob.reload();
    await signIn(bob, users.bob);
    await roomItem(bob, 'Workshop').locator('[data-testid=room-unread]', { hasText: /^2$/ }).waitFor();
    await roomItem(bob, 'Workshop').click();
    await message(bob, 'alice@localhost', 'Unread two').waitFor();
    // Opening the room marks it read on the server: after another reload, no count.
    const last = await message(bob, 'alice@localhost', 'Unread two').getAttribute('data-sid');
    await bob.locator(`[data-testid=message-list][data-read-sid="${last}"]`).waitFor();
    await roomItem(bob, 'Elsewhere').click();
    await bob.reload();
    await signIn(bob, users.bob);
    await roomItem(bob, 'Workshop').waitFor();
    await bob.waitForFunction(() => document.querySelectorAll('[data-testid=room-item]').length === 2);
    assert.equal(await roomItem(bob, 'Workshop').locator('[data-testid=room-unread]').count(), 0);
  });

  await step('no script errors', () => assert.deepEqual(pageErrors, []));
});
