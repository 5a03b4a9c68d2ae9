// Browser end-to-end test of the web client served at "/": two people
// (alice and bob, each in their own browser context) use a real server
// through headless Chromium.
//
// Needs: /usr/bin/chromium, playwright-core (npm ci), and the server binary
// in XMPPWS_BIN (built here with `go build` when unset). Run it with
// `node --test e2e/browser/` or `bash e2e/browser/run.sh`.
//
// Every wait is on an element or an event, with a deadline; nothing sleeps.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const screenshotPath = path.join(repo, 'frontend', 'screenshot.png');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const WAIT = 15_000; // per element or event
const run = promisify(execFile);

const users = {
  alice: { jid: 'alice@localhost', password: 'alice-secret-1' },
  bob: { jid: 'bob@localhost', password: 'bob-secret-2' },
  carol: { jid: 'carol@localhost', password: 'carol-secret-3' }, // a member who stays, never signs in
};

let tmp;
let bin;
let cfg;
let server; // {proc, base, log}
let browser;
const pages = {};
const pageErrors = [];

/** startServer runs the binary and resolves with its base URL, read from the "server started" log line. */
async function startServer(bin, cfg) {
  const proc = spawn(bin, ['-config', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  const log = [];
  const lines = createInterface({ input: proc.stderr });
  const started = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "server started" line within ${WAIT} ms:\n${log.join('\n')}`)), WAIT);
    lines.on('line', (line) => {
      log.push(line);
      const m = /msg="server started" http=(\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(`http://${m[1]}`);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before starting:\n${log.join('\n')}`));
    });
  });
  return { proc, log, base: await started };
}

async function stopServer() {
  const { proc } = server;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), WAIT);
  await exited;
  clearTimeout(timer);
}

async function writeConfig(address, dataDir) {
  await writeFile(cfg, [
    '[http]',
    `address = ${JSON.stringify(address)}`,
    '',
    '[storage]',
    `data_dir = ${JSON.stringify(dataDir)}`,
    '',
    '# Present with its defaults (0.5 events/s, burst 6): a room takes 3 quick events.',
    '[modules.mod_muc_limits]',
    '',
  ].join('\n'));
}

async function addUser(bin, cfg, { jid, password }) {
  await new Promise((resolve, reject) => {
    const p = spawn(bin, ['-config', cfg, 'user', 'add', jid], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`user add ${jid} exited ${code}: ${out}`))));
    p.stdin.end(`${password}\n`);
  });
}

before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'xmppws-ui-'));
  bin = process.env.XMPPWS_BIN;
  if (!bin) {
    bin = path.join(tmp, 'xmppws');
    await run('go', ['build', '-o', bin, './server'], { cwd: repo });
  }
  const dataDir = path.join(tmp, 'data');
  cfg = path.join(tmp, 'server.toml');
  await writeConfig('127.0.0.1:0', dataDir);
  for (const u of Object.values(users)) await addUser(bin, cfg, u);
  server = await startServer(bin, cfg);

  // launch() gives Chromium a fresh, empty --user-data-dir of its own (and
  // refuses one passed in args). Without the background-networking flags
  // Chromium keeps dialling Google's hosts, which this network refuses.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
    ],
  });
  for (const name of ['alice', 'bob']) {
    const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 }, colorScheme: 'light', reducedMotion: 'reduce' });
    ctx.setDefaultTimeout(WAIT);
    const page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(`${name}: ${e.message}`));
    // Console errors include Content-Security-Policy violations. The one
    // expected kind is the WebSocket failing while the server restarts.
    page.on('console', (m) => {
      if (m.type() === 'error' && !/WebSocket connection to .* failed/.test(m.text())) pageErrors.push(`${name} console: ${m.text()}`);
    });
    pages[name] = page;
  }
});

after(async () => {
  await browser?.close().catch(() => {});
  if (server) await stopServer();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------- helpers

const byTest = (page, id) => page.getByTestId(id);

async function signIn(page, { jid, password }) {
  await page.goto(`${server.base}/`);
  await byTest(page, 'signin-jid').fill(jid);
  await byTest(page, 'signin-password').fill(password);
  await byTest(page, 'signin-password').press('Enter');
  await page.locator('[data-testid=status][data-state=online]').waitFor();
  await byTest(page, 'room-list').waitFor({ state: 'attached' });
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

function exactTitle(page, name) {
  return byTest(page, 'room-title').filter({ hasText: new RegExp(`^${escapeRe(name)}$`) });
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * dumpDiagnostics keeps what explains a failure: both pages as screenshots
 * and the server's log, in a directory that outlives the test.
 */
async function dumpDiagnostics(step) {
  const dir = path.join(tmpdir(), `xmppws-ui-failure-${Date.now()}`);
  await mkdir(dir, { recursive: true });
  for (const [name, page] of Object.entries(pages)) {
    await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true }).catch(() => {});
  }
  await writeFile(path.join(dir, 'server.log'), `${server?.log.join('\n') ?? ''}\n`);
  console.error(`step "${step}" failed; screenshots and server log in ${dir}\nlast server log lines:\n${(server?.log ?? []).slice(-20).join('\n')}`);
}

// ---------------------------------------------------------------- the story

test('two people chat in a MUC Light room through the web client', async (t) => {
  const { alice, bob } = pages;
  let room = '';
  let failed = '';
  // Steps share the story's state: after a failure the rest are skipped.
  const step = (name, fn) => t.test(name, { skip: failed ? `"${failed}" failed` : false }, async () => {
    try {
      await fn();
    } catch (e) {
      failed = name;
      await dumpDiagnostics(name);
      throw e;
    }
  });

  await step('the page is served at / with its assets', async () => {
    const res = await fetch(`${server.base}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    const js = await fetch(`${server.base}/app.js`);
    assert.match(js.headers.get('content-type'), /^text\/javascript/);
  });

  await step('both sign in', async () => {
    await Promise.all([signIn(alice, users.alice), signIn(bob, users.bob)]);
    await byTest(alice, 'me').filter({ hasText: 'alice@localhost' }).waitFor();
    await byTest(bob, 'me').filter({ hasText: 'bob@localhost' }).waitFor();
  });

  await step('alice creates a room with bob and carol as members', async () => {
    await byTest(alice, 'new-room').click();
    await byTest(alice, 'create-dialog').waitFor();
    await byTest(alice, 'create-name').fill('Cave');
    await byTest(alice, 'create-subject').fill('Planning the weekend climb');
    await byTest(alice, 'create-members').fill('bob@localhost, carol@localhost');
    await byTest(alice, 'create-members').press('Enter');
    await exactTitle(alice, 'Cave').waitFor();
    await byTest(alice, 'create-dialog').waitFor({ state: 'hidden' });
    room = await roomItem(alice, 'Cave').getAttribute('data-room');
    assert.match(room, /^[0-9a-f]+@muclight\.localhost$/);
    await alice.locator('[data-testid=member][data-jid="alice@localhost"][data-affiliation=owner]').waitFor();
    await alice.locator('[data-testid=member][data-jid="bob@localhost"][data-affiliation=member]').waitFor();
    await alice.locator('[data-testid=member][data-jid="carol@localhost"][data-affiliation=member]').waitFor();
    await byTest(alice, 'room-destroy').waitFor(); // the owner may destroy

    // Bob learns of the room from its notification and opens it.
    await roomItem(bob, 'Cave').click();
    await exactTitle(bob, 'Cave').waitFor();
    await byTest(bob, 'room-subject').filter({ hasText: 'Planning the weekend climb' }).waitFor();
    assert.equal(await byTest(bob, 'room-destroy').isVisible(), false, 'a member sees no Destroy button');
  });

  await step('each sees the message the other sent', async () => {
    await sendMessage(alice, 'Hello Bob, rope or no rope?');
    await message(bob, 'alice@localhost', 'Hello Bob, rope or no rope?').waitFor();
    await message(alice, 'alice@localhost', 'Hello Bob, rope or no rope?').waitFor(); // the room echoes it
    await sendMessage(bob, 'Rope, definitely. I will bring two.');
    await message(alice, 'bob@localhost', 'Rope, definitely. I will bring two.').waitFor();
  });

  await step('alice renames the room and both see the new name', async () => {
    await byTest(alice, 'room-edit').click();
    await byTest(alice, 'edit-dialog').waitFor();
    await byTest(alice, 'edit-name').fill("Dragon's Cave");
    await byTest(alice, 'edit-name').press('Enter');
    await exactTitle(alice, "Dragon's Cave").waitFor();
    await exactTitle(bob, "Dragon's Cave").waitFor();
    await roomItem(bob, "Dragon's Cave").waitFor();
    await roomItem(alice, "Dragon's Cave").waitFor();
  });

  await step("bob leaves and alice's member list updates", async () => {
    await byTest(bob, 'room-leave').click();
    await byTest(bob, 'confirm-dialog').waitFor();
    await byTest(bob, 'confirm-ok').click();
    await bob.locator(`[data-testid=room-item][data-room="${room}"]`).waitFor({ state: 'detached' });
    await alice.locator('[data-testid=member][data-jid="bob@localhost"]').waitFor({ state: 'detached' });
    await alice.locator('[data-testid=member][data-jid="carol@localhost"]').waitFor();
    await byTest(alice, 'members-count').filter({ hasText: '(2)' }).waitFor();
  });

  await step('bob starts another room with alice; it appears in her list as unread', async () => {
    await byTest(bob, 'new-room').click();
    await byTest(bob, 'create-name').fill('Lunch');
    await byTest(bob, 'create-members').fill('alice@localhost');
    await byTest(bob, 'create-name').press('Enter');
    await exactTitle(bob, 'Lunch').waitFor();
    await sendMessage(bob, 'Pizza at noon?');
    await message(bob, 'bob@localhost', 'Pizza at noon?').waitFor();
    await roomItem(alice, 'Lunch').locator('[data-testid=room-unread]', { hasText: /^1$/ }).waitFor();
    await exactTitle(alice, "Dragon's Cave").waitFor(); // her open room did not change
  });

  await step('a flood from alice shows the limiter error with a Resend button', async () => {
    const sent = [1, 2, 3, 4, 5].map((i) => `On my way, part ${i}`);
    for (const body of sent) await sendMessage(alice, body);
    // Every message comes back: echoed by the room, or refused with its body
    // echoed and then shown in the conversation, marked, with a Resend button.
    await alice.waitForFunction((sent) => {
      const sel = '[data-testid=message][data-from="alice@localhost"] [data-testid=message-body], [data-testid=message-failed] [data-testid=message-body]';
      const bodies = [...document.querySelectorAll(sel)].map((b) => b.textContent);
      return sent.every((s) => bodies.includes(s));
    }, sent, { timeout: WAIT });
    // The room's bucket holds at most 3 events (it refills at 0.5/s), so
    // some of five quick messages are refused however slow the machine.
    const failed = alice.locator('[data-testid=message-failed]');
    const refused = await failed.locator('[data-testid=message-body]').allTextContents();
    assert.ok(refused.length >= 1 && refused.every((b) => sent.includes(b)), `refused bodies ${JSON.stringify(refused)}`);
    const err = alice.locator('[data-testid=error][data-condition=policy-violation][data-type=wait]');
    await err.waitFor();
    assert.equal(await err.locator('[data-testid=error-text]').textContent(), 'The room is currently overactive, please try again later');
    await err.locator('[data-testid=error-resend]').waitFor();
    const delivered = await alice.locator('[data-testid=message][data-from="alice@localhost"] [data-testid=message-body]').allTextContents();
    await failed.last().locator('[data-testid=message-resend]').waitFor();
    await alice.screenshot({ path: screenshotPath });

    // Resend sends the body again: it goes through, or is refused and marked again.
    const body = refused.at(-1);
    const before = delivered.filter((b) => b === body).length;
    await failed.last().locator('[data-testid=message-resend]').click();
    await alice.waitForFunction(({ body, before }) => {
      const bodies = (sel) => [...document.querySelectorAll(`${sel} [data-testid=message-body]`)].filter((b) => b.textContent === body).length;
      return bodies('[data-testid=message][data-from="alice@localhost"]') > before || bodies('[data-testid=message-failed]') > 0;
    }, { body, before }, { timeout: WAIT });
  });

  await step('after a server restart both reconnect and the chat goes on', async () => {
    // Same port again, so the pages' WebSocket URL stays right.
    await writeConfig(new URL(server.base).host, path.join(tmp, 'data'));
    await stopServer();
    await Promise.all([alice, bob].map((p) => p.locator('[data-testid=status][data-state=reconnecting]').waitFor()));
    server = await startServer(bin, cfg);
    await Promise.all([alice, bob].map((p) => p.locator('[data-testid=status][data-state=online]').waitFor({ timeout: 45_000 })));
    await roomItem(alice, 'Lunch').click();
    await exactTitle(alice, 'Lunch').waitFor();
    await message(alice, 'bob@localhost', 'Pizza at noon?').waitFor(); // kept in the page across the reconnect
    await sendMessage(alice, 'Pizza it is.');
    await message(bob, 'alice@localhost', 'Pizza it is.').waitFor();
  });

  await step('bob destroys his room and it leaves alice\'s list', async () => {
    await byTest(bob, 'room-destroy').click();
    await byTest(bob, 'confirm-ok').click();
    await roomItem(alice, 'Lunch').waitFor({ state: 'detached' });
    await alice.locator('[data-testid=notice]', { hasText: '“Lunch” was destroyed.' }).waitFor();
    await roomItem(bob, 'Lunch').waitFor({ state: 'detached' });
    await byTest(bob, 'rooms-empty').waitFor();
  });

  await step('no script errors or policy violations on either page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
