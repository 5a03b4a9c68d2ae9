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
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  byTest, escapeRe, launchChromium, message, openPages, rawSessionWith, repo, roomItem, sendMessage, serverBinary, signInAt, users,
} from './pages.mjs';
import { addUser, startServer, stopServer } from './server.mjs';

const screenshotPath = path.join(repo, 'frontend', 'screenshot.png');
const WAIT = 15_000; // per element or event
const HISTORY_ROOM = 'history@muclight.localhost'; // created with a known name: the limiter spares it
const HUT_ROOM = 'hut@muclight.localhost'; // likewise: its steps post faster than the limiter allows on a fast machine

let tmp;
let bin;
let cfg;
let server; // {proc, base, log}
let browser;
const pages = {};
const pageErrors = [];

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
    '# Except the room the history test floods with more than two pages of messages.',
    `[modules.mod_muc_limits.rooms.${JSON.stringify(HISTORY_ROOM)}]`,
    'muc_event_rate = 1000.0',
    `[modules.mod_muc_limits.rooms.${JSON.stringify(HUT_ROOM)}]`,
    'muc_event_rate = 1000.0',
    '',
  ].join('\n'));
}

before(async () => {
  ({ tmp, bin } = await serverBinary('ui'));
  const dataDir = path.join(tmp, 'data');
  cfg = path.join(tmp, 'server.toml');
  await writeConfig('127.0.0.1:0', dataDir);
  for (const u of Object.values(users)) await addUser(bin, cfg, u);
  server = await startServer(bin, cfg, { wait: WAIT });

  browser = await launchChromium();
  // Each page can have its connection cut; no notification or long-task recorders.
  Object.assign(pages, await openPages(browser, server, ['alice', 'bob'], { wait: WAIT, pageErrors, recorders: false }));
});

after(async () => {
  await browser?.close().catch(() => {});
  if (server) await stopServer(server, { wait: WAIT });
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------- helpers

async function signIn(page, user) {
  await signInAt(server.base, page, user);
  await byTest(page, 'room-list').waitFor({ state: 'attached' });
}

function exactTitle(page, name) {
  return byTest(page, 'room-title').filter({ hasText: new RegExp(`^${escapeRe(name)}$`) });
}

/** bodies counts the messages (delivered, not refused) with exactly this text. */
function bodies(page, body) {
  return page.locator('[data-testid=message] [data-testid=message-body]').filter({ hasText: new RegExp(`^${escapeRe(body)}$`) });
}

/** rawSession: see rawSessionWith; the client's default iq timeout. */
const rawSession = rawSessionWith({});

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
    await stopServer(server, { wait: WAIT });
    await Promise.all([alice, bob].map((p) => p.locator('[data-testid=status][data-state=reconnecting]').waitFor()));
    server = await startServer(bin, cfg, { wait: WAIT });
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

// ---------------------------------------------------------------- history

test('room history: offline members, reloads and paging', async (t) => {
  const { alice, bob } = pages;
  let failed = '';
  const step = (name, fn) => t.test(name, { skip: failed ? `"${failed}" failed` : false }, async () => {
    try {
      await fn();
    } catch (e) {
      failed = name;
      await dumpDiagnostics(name);
      throw e;
    }
  });
  const said = ['Anyone at the hut tonight?', 'The key is under the mat.'];
  const reply = 'Found it, thanks!';

  await step('bob signs out; alice makes a room with him and writes', async () => {
    await byTest(bob, 'signout').click();
    await byTest(bob, 'signin').waitFor();
    await rawSession(alice, users.alice, async (c, { el }, { room }) => {
      await c.iq('set', room, el('query', { xmlns: 'urn:xmpp:muclight:0#create' },
        el('configuration', {}, el('roomname', {}, 'Hut')),
        el('occupants', {}, el('user', { affiliation: 'member' }, 'bob@localhost'))));
    }, { room: HUT_ROOM });
    await roomItem(alice, 'Hut').click();
    await exactTitle(alice, 'Hut').waitFor();
    // The archive's first entry is the creation.
    await alice.locator('[data-testid=system-line]', { hasText: /^You created the room with bob@localhost / }).waitFor();
    await byTest(alice, 'history-edge').filter({ hasText: 'Beginning of the conversation' }).waitFor();
    for (const body of said) {
      await sendMessage(alice, body);
      await message(alice, 'alice@localhost', body).waitFor();
    }
  });

  await step('bob signs in, opens the room and reads what was said while he was away', async () => {
    await signIn(bob, users.bob);
    await roomItem(bob, 'Hut').click();
    await exactTitle(bob, 'Hut').waitFor();
    for (const body of said) await message(bob, 'alice@localhost', body).waitFor();
    await bob.locator('[data-testid=system-line]', { hasText: /^alice@localhost created the room with you / }).waitFor();
    await byTest(bob, 'history-edge').filter({ hasText: 'Beginning of the conversation' }).waitFor();
    // Archived messages show their sender and the time the archive gave them.
    const m = message(bob, 'alice@localhost', said[0]);
    assert.equal(await m.locator('[data-testid=message-sender]').textContent(), 'alice');
    const when = Date.parse(await m.locator('time').getAttribute('datetime'));
    assert.ok(Math.abs(Date.now() - when) < 5 * 60_000, `archived time ${new Date(when).toISOString()}`);
    await sendMessage(bob, reply);
    await message(alice, 'bob@localhost', reply).waitFor();
    await message(bob, 'bob@localhost', reply).waitFor();
    for (const body of [...said, reply]) assert.equal(await bodies(bob, body).count(), 1, `"${body}" once on bob's page`);
  });

  await step('after a reload alice sees the conversation again, each message once', async () => {
    await alice.reload();
    await signIn(alice, users.alice);
    await roomItem(alice, 'Hut').click();
    await exactTitle(alice, 'Hut').waitFor();
    await message(alice, 'alice@localhost', said[0]).waitFor();
    await message(alice, 'alice@localhost', said[1]).waitFor();
    await message(alice, 'bob@localhost', reply).waitFor();
    await byTest(alice, 'history-edge').filter({ hasText: 'Beginning of the conversation' }).waitFor();
    for (const body of [...said, reply]) assert.equal(await bodies(alice, body).count(), 1, `"${body}" once on alice's page`);
    assert.equal(await alice.locator('[data-testid=system-line]').count(), 1);
    // Her own archived messages are hers.
    assert.equal(await message(alice, 'alice@localhost', said[0]).locator('[data-testid=message-sender]').textContent(), 'You');
  });

  const total = 65;
  const numbered = Array.from({ length: total }, (_, i) => `History ${String(i + 1).padStart(2, '0')}`);

  await step(`bob floods a room with ${total} messages; alice sees the latest page`, async () => {
    await rawSession(bob, users.bob, async (c, { el, NS, child }, { room, bodies }) => {
      const ML = 'urn:xmpp:muclight:0';
      await c.iq('set', room, el('query', { xmlns: `${ML}#create` },
        el('configuration', {}, el('roomname', {}, 'History')),
        el('occupants', {}, el('user', { affiliation: 'member' }, 'alice@localhost'))));
      const echoed = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the room did not echo the last message')), 15_000);
        c.on('stanza', (st) => {
          if (st.localName !== 'message') return;
          if (st.getAttribute('type') === 'error') reject(new Error(new XMLSerializer().serializeToString(st)));
          if (child(st, 'body')?.textContent === bodies.at(-1)) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      for (const body of bodies) c.send(el('message', { xmlns: NS.client, type: 'groupchat', to: room }, el('body', {}, body)));
      await echoed;
    }, { room: HISTORY_ROOM, bodies: numbered });

    await roomItem(alice, 'History').click();
    await exactTitle(alice, 'History').waitFor();
    await message(alice, 'bob@localhost', numbered.at(-1)).waitFor();
    await byTest(alice, 'load-older').waitFor();
    // The latest page (30), with what came live before it let go.
    await message(alice, 'bob@localhost', numbered[total - 30]).waitFor();
    assert.equal(await bodies(alice, numbered[total - 31]).count(), 0, 'only the latest page is shown');
    assert.equal(await alice.locator('[data-testid=message]').count(), 30);
  });

  await step('scrolling up loads the older pages in place, back to the first message', async () => {
    const list = byTest(alice, 'message-list');
    // Where the oldest message shown sits when the reader reaches the top...
    const top = numbered[total - 30];
    const before = await list.evaluate((l, top) => {
      l.scrollTop = 0;
      const m = [...l.querySelectorAll('[data-testid=message-body]')].find((b) => b.textContent === top);
      return m.getBoundingClientRect().top - l.getBoundingClientRect().top;
    }, top);
    // ...is where it stays once the page before it is in.
    await message(alice, 'bob@localhost', numbered[total - 31]).waitFor();
    await byTest(alice, 'load-older').waitFor();
    const after = await list.evaluate((l, top) => {
      const m = [...l.querySelectorAll('[data-testid=message-body]')].find((b) => b.textContent === top);
      return m.getBoundingClientRect().top - l.getBoundingClientRect().top;
    }, top);
    assert.ok(Math.abs(after - before) < 2, `the message at the top moved from ${before} to ${after} px`);
    assert.equal(await alice.locator('[data-testid=message]').count(), 60);

    await list.evaluate((l) => { l.scrollTop = 0; });
    await byTest(alice, 'history-edge').filter({ hasText: 'Beginning of the conversation' }).waitFor();
    await message(alice, 'bob@localhost', numbered[0]).waitFor();
    await alice.locator('[data-testid=system-line]', { hasText: /^bob@localhost created the room with you / }).waitFor();
    assert.equal(await byTest(alice, 'load-older').isVisible(), false);
    assert.equal(await alice.locator('[data-testid=message]').count(), total);
    for (const body of numbered) assert.equal(await bodies(alice, body).count(), 1, `"${body}" once`);
    await list.evaluate((l) => { l.scrollTop = 0; });
    await message(alice, 'bob@localhost', numbered[0]).locator('[data-testid=message-body]').waitFor({ state: 'visible' });
  });

  await step('what was said while alice was cut off appears when she is back', async () => {
    // Offline, so that the reconnection waits until bob has written.
    await alice.context().setOffline(true);
    await alice.evaluate(() => window.dropConnectionsForTest());
    await alice.locator('[data-testid=status][data-state=reconnecting]').waitFor();
    const missed = ['Missed 1', 'Missed 2', 'Missed 3'];
    await rawSession(bob, users.bob, async (c, { el, NS, child }, { room, bodies }) => {
      const echoed = new Promise((resolve) => c.on('stanza', (st) => {
        if (child(st, 'body')?.textContent === bodies.at(-1)) resolve();
      }));
      for (const body of bodies) c.send(el('message', { xmlns: NS.client, type: 'groupchat', to: room }, el('body', {}, body)));
      await echoed;
    }, { room: HISTORY_ROOM, bodies: missed });
    assert.notEqual(await byTest(alice, 'status').getAttribute('data-state'), 'online', 'alice stayed cut off');
    await alice.context().setOffline(false);
    await byTest(alice, 'retry-now').click().catch(() => {}); // skip the backoff when it is still showing
    await alice.locator('[data-testid=status][data-state=online]').waitFor({ timeout: 45_000 });
    for (const body of missed) await message(alice, 'bob@localhost', body).waitFor();
    const shown = await alice.locator('[data-testid=message] [data-testid=message-body]').allTextContents();
    assert.deepEqual(shown.slice(-missed.length), missed, 'the missed messages come last, in order');
    assert.equal(shown.length, total + missed.length, 'nothing twice');
  });

  await step("two rooms' history loads at once without mixing", async () => {
    // The page's own MucLight on a second connection of alice's.
    const got = await rawSession(alice, users.alice, async (c, xmpp, { history }) => {
      const { MucLight } = await import('/muclight.js');
      const muc = new MucLight(c);
      await muc.discover();
      await muc.loadRooms();
      const hut = muc.sortedRooms().find((r) => r.name === 'Hut').jid;
      await Promise.all([muc.sync(hut), muc.sync(history)]);
      const texts = (jid) => muc.rooms.get(jid).messages.map((m) => m.body ?? `[${m.system}]`);
      return { hut: texts(hut), history: texts(history) };
    }, { history: HISTORY_ROOM });
    assert.deepEqual(got.hut, ['[affiliations]', ...said, reply]);
    assert.equal(got.history.length, 30);
    assert.ok(got.history.every((b) => /^(History|Missed) \d+$/.test(b)), JSON.stringify(got.history));
  });

  await step('a live message after paging lands once, at the bottom', async () => {
    await rawSession(bob, users.bob, async (c, { el, NS, child }, { room, body }) => {
      const echoed = new Promise((resolve) => c.on('stanza', (st) => {
        if (child(st, 'body')?.textContent === body) resolve();
      }));
      c.send(el('message', { xmlns: NS.client, type: 'groupchat', to: room }, el('body', {}, body)));
      await echoed;
    }, { room: HISTORY_ROOM, body: 'History 66' });
    await message(alice, 'bob@localhost', 'History 66').waitFor();
    const last = await alice.locator('[data-testid=message] [data-testid=message-body]').last().textContent();
    assert.equal(last, 'History 66');
    assert.equal(await bodies(alice, 'History 66').count(), 1);
  });

  await step('no script errors or policy violations on either page', () => {
    assert.deepEqual(pageErrors, []);
  });
});

// The races between live messages and archive pages are hard to provoke
// against a real server: here the page's own MucLight talks to a scripted
// connection instead.
test('history and live messages merge by archive id', async () => {
  const page = pages.bob;
  const got = await page.evaluate(async () => {
    const { Emitter, parse } = await import('/xmpp.js');
    const { MucLight, Room } = await import('/muclight.js');
    const room = 'r@muclight.localhost';
    const sid = (n) => `00000000000000${String(n).padStart(2, '0')}aaaa`;
    const msg = (n, extra = '') => `<message xmlns="jabber:client" type="groupchat" from="${room}/bob@localhost"${extra}><body>m${n}</body><stanza-id xmlns="urn:xmpp:sid:0" by="${room}" id="${sid(n)}"/></message>`;
    class Fake extends Emitter {
      jid = { bare: () => 'alice@localhost', domain: 'localhost' };
      archive = [];
      queries = [];
      fail = null;
      async iq(type, to, q) {
        const set = q.children[0].children;
        const arg = (name) => set.find((c) => c.name === name)?.children[0];
        const max = Number(arg('max'));
        const before = set.some((c) => c.name === 'before') ? arg('before') ?? '' : undefined;
        const after = arg('after');
        this.queries.push(before !== undefined ? `before:${before}` : `after:${after ?? ''}`);
        if (this.fail) {
          const f = this.fail;
          this.fail = null;
          throw Object.assign(new Error(f), { condition: f, text: '' });
        }
        let ids = this.archive.filter((n) => (after ? sid(n) > after : true) && (before ? sid(n) < before : true));
        const all = ids.length;
        ids = before !== undefined ? ids.slice(-max) : ids.slice(0, max);
        for (const n of ids) {
          this.emit('stanza', parse(`<message xmlns="jabber:client" from="${room}"><result xmlns="urn:xmpp:mam:2" queryid="${q.attrs.queryid}" id="${sid(n)}"><forwarded xmlns="urn:xmpp:forward:0"><delay xmlns="urn:xmpp:delay" stamp="2026-01-01T00:00:${String(n).padStart(2, '0')}Z"/>${msg(n)}</forwarded></result></message>`));
        }
        return parse(`<iq xmlns="jabber:client" type="result"><fin xmlns="urn:xmpp:mam:2" complete="${ids.length === all}"/></iq>`);
      }
    }
    const c = new Fake();
    const muc = new MucLight(c, { historyPage: 3 });
    muc.service = 'muclight.localhost';
    muc.rooms.set(room, new Room(room));
    muc.active = room;
    const live = (n) => c.emit('stanza', parse(msg(n, ' to="alice@localhost"')));
    const bodies = () => muc.rooms.get(room).messages.map((m) => m.body).join(',');
    const out = {};

    c.archive = [1, 2, 3, 4, 6];
    live(1); // came live before the room was opened, not joined up with the page
    await muc.sync(room);
    out.latest = bodies();
    live(5); // committed before 6, delivered after the page that holds 6
    live(6); // the archive gave it already
    out.live = bodies();

    c.emit('status', 'reconnecting');
    c.archive.push(7, 8, 9);
    live(9); // live again before the catch-up ran
    await muc.sync(room);
    out.catchup = bodies();

    await muc.loadOlder(room);
    out.older = bodies();
    out.complete = muc.rooms.get(room).history.complete;

    c.emit('status', 'reconnecting');
    c.archive.push(10);
    c.fail = 'item-not-found'; // the cursor expired: start over from the latest page
    await muc.sync(room);
    out.restart = bodies();
    out.queries = c.queries;
    return out;
  });
  assert.equal(got.latest, 'm3,m4,m6');
  assert.equal(got.live, 'm3,m4,m5,m6');
  assert.equal(got.catchup, 'm3,m4,m5,m6,m7,m8,m9');
  assert.equal(got.older, 'm1,m2,m3,m4,m5,m6,m7,m8,m9');
  assert.equal(got.complete, true);
  assert.equal(got.restart, 'm8,m9,m10');
  const sid = (n) => `00000000000000${String(n).padStart(2, '0')}aaaa`;
  assert.deepEqual(got.queries, ['before:', `after:${sid(6)}`, `before:${sid(3)}`, `after:${sid(9)}`, 'before:']);
});
