// Both dialects in one room at once (issue 15), end to end with real
// clients: alice uses the bundled web client in headless Chromium (MUC
// Light), bob an unmodified xmpp.js client that speaks only XEP-0045. One
// server with its default configuration: legacy_mode is not set, so it
// serves both. Messages go both ways, an affiliation change and a subject
// change are each seen in the viewer's own dialect, and the web client's
// history (MAM) holds bob's message.
//
// Needs what ui.test.mjs needs, plus @xmpp/client (npm ci) and a global
// WebSocket (run.sh passes --experimental-websocket on Node 20).
//
// Every step's name starts with the dialect it checks; a failed step does
// not stop the ones after it (only setup does), so one run tells which of
// the two dialects broke. Every wait is on an element or a stanza, with a
// deadline; nothing sleeps.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from '../xmppjs/server.mjs';
import * as muc from './xep0045.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const WAIT = 15_000; // per element or stanza

const users = {
  alice: { jid: 'alice@localhost', password: 'alice-secret-1' },
  bob: { jid: 'bob@localhost', password: 'bob-secret-2' },
  carol: { jid: 'carol@localhost', password: 'carol-secret-3' }, // added and removed, never signs in
};

let server;
let browser;
let page; // alice's
let bob; // xep0045.connect
const pageErrors = [];

before(async () => {
  assert.equal(typeof WebSocket, 'function', 'xmpp.js needs a global WebSocket: run node with --experimental-websocket (Node 20)');
  server = await startServer({
    // The archive is on by default; said here because the test needs it.
    extraConfig: '[modules.mod_mam]\nmuc_light = true\n',
    users: Object.fromEntries(Object.values(users).map((u) => [u.jid, u.password])),
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 }, colorScheme: 'light', reducedMotion: 'reduce' });
  ctx.setDefaultTimeout(WAIT);
  page = await ctx.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
  });
  bob = await muc.connect({ url: server.url, ...users.bob, wait: WAIT });
});

after(async () => {
  await bob?.stop();
  await browser?.close().catch(() => {});
  await server?.stop();
});

// ---------------------------------------------------------------- web client helpers

const byTest = (id) => page.getByTestId(id);
const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const exact = (s) => new RegExp(`^${escapeRe(s)}$`);

async function signIn({ jid, password }) {
  await page.goto(`${server.http}/?signin`);
  await byTest('signin-jid').fill(jid);
  await byTest('signin-password').fill(password);
  await byTest('signin-password').press('Enter');
  await page.locator('[data-testid=status][data-state=online]').waitFor();
  await byTest('room-list').waitFor({ state: 'attached' });
}

const roomItem = (name) => page.locator('[data-testid=room-item]').filter({ has: page.locator('[data-testid=room-item-name]', { hasText: exact(name) }) });
const message = (from, body) => page.locator(`[data-testid=message][data-from="${from}"]`).filter({ has: page.locator('[data-testid=message-body]', { hasText: exact(body) }) });
const bodies = (body) => page.locator('[data-testid=message] [data-testid=message-body]').filter({ hasText: exact(body) });
const member = (jid) => page.locator(`[data-testid=member][data-jid="${jid}"]`);

async function sendMessage(body) {
  await byTest('composer-input').fill(body);
  await byTest('composer-input').press('Enter');
}

/** dumpDiagnostics keeps alice's page and the server's log where a failure can be read. */
async function dumpDiagnostics(step) {
  const dir = path.join(tmpdir(), `xmppws-dialects-failure-${Date.now()}`);
  await mkdir(dir, { recursive: true });
  await page?.screenshot({ path: path.join(dir, 'alice.png'), fullPage: true }).catch(() => {});
  await writeFile(path.join(dir, 'server.log'), server?.log() ?? '');
  await writeFile(path.join(dir, 'bob.xml'), (bob?.seen ?? []).map((s) => s.toString()).join('\n'));
  console.error(`step "${step}" failed; alice's screenshot, bob's stanzas and the server log in ${dir}`);
}

// ---------------------------------------------------------------- the story

test('a web client (MUC Light) and an xmpp.js client (XEP-0045) share a room', { timeout: 300_000 }, async (t) => {
  const name = 'Crag';
  const firstSubject = 'Granite on Saturday';
  let room = '';
  let setupFailed = '';
  const failures = [];
  // A failed step is reported and the story goes on; only a failed setup
  // step (required) skips the rest, which could not mean anything.
  const step = (title, fn, { required = false } = {}) => t.test(title, { skip: setupFailed ? `setup "${setupFailed}" failed` : false }, async () => {
    try {
      await fn();
    } catch (e) {
      if (required) setupFailed = title;
      failures.push(title);
      await dumpDiagnostics(title);
      e.message = `[${title}] ${e.message}`;
      throw e;
    }
  });

  await step('MUC Light (alice, web client): signs in and creates a room with bob as member', async () => {
    await signIn(users.alice);
    await byTest('new-room').click();
    await byTest('create-dialog').waitFor();
    await byTest('create-name').fill(name);
    await byTest('create-subject').fill(firstSubject);
    await byTest('create-members').fill(users.bob.jid);
    await byTest('create-members').press('Enter');
    await byTest('room-title').filter({ hasText: exact(name) }).waitFor();
    room = await roomItem(name).getAttribute('data-room');
    assert.match(room, /^[0-9a-f]+@muclight\.localhost$/);
    await page.locator('[data-testid=member][data-jid="alice@localhost"][data-affiliation=owner]').waitFor();
    await page.locator('[data-testid=member][data-jid="bob@localhost"][data-affiliation=member]').waitFor();
  }, { required: true });

  let entered; // bob's self-presence
  await step('XEP-0045 (bob, xmpp.js): learns he was added, enters with presence and gets occupants, self-presence 110, subject', async () => {
    await muc.added(bob, room);
    entered = await muc.enter(bob, room, 'bob', {
      others: [{ jid: users.alice.jid, affiliation: 'owner', role: 'moderator' }],
      affiliation: 'member',
      role: 'participant',
      subject: firstSubject,
    });
  });

  const fromAlice = 'Rope or no rope, Bob?';
  await step('MUC Light → XEP-0045: alice types a message; bob gets it as groupchat from room/alice@localhost', async () => {
    await sendMessage(fromAlice);
    await message(users.alice.jid, fromAlice).waitFor();
    await muc.groupchat(bob, room, users.alice.jid, fromAlice);
  });

  const fromBob = 'Rope, definitely. I will bring two.';
  await step('XEP-0045 (bob, xmpp.js): sends a groupchat and gets its echo from room/bob@localhost', async () => {
    await muc.say(bob, room, fromBob);
  });
  await step("XEP-0045 → MUC Light: bob's message shows in alice's timeline", async () => {
    await message(users.bob.jid, fromBob).waitFor();
  });

  await step('MUC Light (alice, web client): adds carol in the members panel and sees her listed as member', async () => {
    await byTest('add-member-input').fill(users.carol.jid);
    await byTest('add-member-input').press('Enter');
    await page.locator('[data-testid=member][data-jid="carol@localhost"][data-affiliation=member]').waitFor();
  });
  await step("XEP-0045 (bob, xmpp.js): gets carol's presence from room/carol@localhost with affiliation member", async () => {
    await muc.occupantPresence(bob, room, users.carol.jid, 'member');
  });

  await step('MUC Light (alice, web client): removes carol; the members panel drops her', async () => {
    await member(users.carol.jid).getByTestId('member-remove').click();
    await byTest('confirm-dialog').waitFor();
    await byTest('confirm-ok').click();
    await member(users.carol.jid).waitFor({ state: 'detached' });
    await byTest('members-count').filter({ hasText: '(2)' }).waitFor();
  });
  await step("XEP-0045 (bob, xmpp.js): gets carol's unavailable presence with status 321", async () => {
    await muc.occupantPresence(bob, room, users.carol.jid, 'none');
  });

  const bobSubject = 'Moved to Sunday: rain on Saturday';
  await step('XEP-0045 (bob, xmpp.js): changes the subject with <subject/> and gets it back from room/bob@localhost', async () => {
    await muc.setSubject(bob, room, bobSubject);
  });
  await step("XEP-0045 → MUC Light: the web client's room head shows bob's subject", async () => {
    await byTest('room-subject').filter({ hasText: exact(bobSubject) }).waitFor();
  });

  const aliceSubject = 'Sunday, 8:00 at the car park';
  await step('MUC Light (alice, web client): changes the subject in the edit dialog', async () => {
    await byTest('room-edit').click();
    await byTest('edit-dialog').waitFor();
    await byTest('edit-subject').fill(aliceSubject);
    await byTest('edit-subject').press('Enter');
    await byTest('edit-dialog').waitFor({ state: 'hidden' });
    await byTest('room-subject').filter({ hasText: exact(aliceSubject) }).waitFor();
  });
  await step('MUC Light → XEP-0045: bob gets the subject message from room/alice@localhost', async () => {
    await muc.subject(bob, room, users.alice.jid, aliceSubject);
  });

  await step("MUC Light (alice, web client): after a reload the history (MAM) holds bob's message, once", async () => {
    await page.reload();
    await signIn(users.alice);
    await roomItem(name).click();
    await byTest('room-title').filter({ hasText: exact(name) }).waitFor();
    await message(users.bob.jid, fromBob).waitFor();
    await message(users.alice.jid, fromAlice).waitFor();
    assert.equal(await bodies(fromBob).count(), 1, `"${fromBob}" once in alice's history`);
    assert.equal(await bodies(fromAlice).count(), 1, `"${fromAlice}" once in alice's history`);
  });

  let left;
  await step('XEP-0045 (bob, xmpp.js): leaves with unavailable presence and gets his own, with status 110', async () => {
    left = await muc.exit(bob, room, 'bob');
  });
  await step('XEP-0045 (bob, xmpp.js): no MUC Light stanza from the room reached his session while he was in it', async () => {
    assert.ok(entered && left, 'needs both the entering and the leaving steps to have passed');
    assert.deepEqual(muc.nativeWhileEntered(bob, room, entered, left), []);
  });

  await step('MUC Light (alice, web client): no script errors or policy violations', () => {
    assert.deepEqual(pageErrors, []);
  });

  if (failures.length) console.error(`failed steps:\n  ${failures.join('\n  ')}`);
});
