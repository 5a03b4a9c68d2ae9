// Browser end-to-end test of the web client's group-chat polish (issue 19):
// a big room (5,000 members, 10,000 archived messages) opened and scrolled
// with the page's responsiveness measured, then the room list, the
// composer, links, errors, the offline outbox, timeline lines, the tab
// title and notifications, with two people in headless Chromium.
//
// Needs what ui.test.mjs needs (see run.sh). The figures it prints are
// reported, not asserted: only counts (elements on the page, messages
// shown once) and a generous sanity bound are checked.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  MAX_STANZA, byTest, createRoom, endBrowserTest, message, rawSession, repo, roomItem, sendMessage, signInAt, startBrowserTest, stats, stepper as stepperFor, users,
} from './pages.mjs';

const shots = path.join(repo, 'docs', 'img');
const BIG_ROOM = 'big@muclight.localhost';
const FLOOD_ROOM = 'flood@muclight.localhost';
const BIG_MEMBERS = Number(process.env.BIG_MEMBERS ?? 5000);
const BIG_MESSAGES = Number(process.env.BIG_MESSAGES ?? 10_000);

let server;
const pages = {};
const pageErrors = [];
const h = { pages, pageErrors };

before(async () => {
  await startBrowserTest(h, 'chat', {
    config: [
      '# The limiter on, out of the way (steps post quickly)...',
      '[modules.mod_muc_limits]',
      'muc_event_rate = 1000.0',
      '# ...and in the big room, which is seeded in a burst...',
      `[modules.mod_muc_limits.rooms.${JSON.stringify(BIG_ROOM)}]`,
      'muc_event_rate = 100000.0',
      '# ...except in the room the flood step floods: its default, 3 quick events.',
      `[modules.mod_muc_limits.rooms.${JSON.stringify(FLOOD_ROOM)}]`,
      'muc_event_rate = 0.5',
      'muc_burst_factor = 6.0',
    ],
  });
  server = h.server;
});

after(() => endBrowserTest(h));

// ---------------------------------------------------------------- helpers

const signIn = (page, user) => signInAt(server.base, page, user);
const stepper = (t) => stepperFor(t, 'chat', pages, server);

// ---------------------------------------------------------------- a big room

test(`a room of ${BIG_MEMBERS} members and ${BIG_MESSAGES} messages stays responsive`, async (t) => {
  const { alice, bob } = pages;
  const step = stepper(t);
  const figures = {};

  await step('bob seeds the room over one connection', async () => {
    await bob.goto(`${server.base}/`);
    const t0 = Date.now();
    await rawSession(bob, users.bob, async (c, { el, NS, child }, { room, members, messages }) => {
      const ML = 'urn:xmpp:muclight:0';
      await c.iq('set', room, el('query', { xmlns: `${ML}#create` },
        el('configuration', {}, el('roomname', {}, 'Town square'), el('subject', {}, 'Everyone is here')),
        el('occupants', {}, el('user', { affiliation: 'member' }, 'alice@localhost'))));
      const last = `Big ${String(messages).padStart(5, '0')}`;
      const echoed = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the room did not echo the last message')), 120_000);
        c.on('stanza', (st) => {
          if (st.localName === 'message' && st.getAttribute('type') === 'error') reject(new Error(new XMLSerializer().serializeToString(st)));
          if (child(st, 'body')?.textContent === last) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      for (let i = 1; i <= messages; i++) {
        const body = i % 10 === 0 ? `Big ${String(i).padStart(5, '0')}\nwith a second line and https://example.org/${i}` : `Big ${String(i).padStart(5, '0')}`;
        c.send(el('message', { xmlns: NS.client, type: 'groupchat', to: room }, el('body', {}, i === messages ? last : body)));
      }
      await echoed;
      // Then the members (after the messages: each message goes to every member), in batches under the stanza limit.
      const jids = Array.from({ length: members }, (_, i) => `user${String(i + 1).padStart(4, '0')}@localhost`);
      for (let i = 0; i < jids.length; i += 1000) {
        await c.iq('set', room, el('query', { xmlns: `${ML}#affiliations` }, jids.slice(i, i + 1000).map((j) => el('user', { affiliation: 'member' }, j))));
      }
    }, { room: BIG_ROOM, members: BIG_MEMBERS, messages: BIG_MESSAGES });
    figures.seedMs = Date.now() - t0;
    console.log(`seeded in ${figures.seedMs} ms`);
  });

  await step('alice opens it: the latest page, few elements on the page', async () => {
    await signIn(alice, users.alice);
    await roomItem(alice, 'Town square').waitFor();
    const longBefore = await alice.evaluate(() => window.longTasksForTest.length);
    const t0 = Date.now();
    await roomItem(alice, 'Town square').click();
    await message(alice, 'bob@localhost', `Big ${String(BIG_MESSAGES).padStart(5, '0')}`).waitFor();
    figures.firstRenderMs = Date.now() - t0;
    await byTest(alice, 'members-count').filter({ hasText: `(${BIG_MEMBERS + 2})` }).waitFor();
    figures.membersShownMs = Date.now() - t0;
    figures.openLongTasks = await alice.evaluate((n) => window.longTasksForTest.slice(n), longBefore);
    // The member list draws a page of them, not thousands.
    const shown = await alice.locator('[data-testid=member]').count();
    assert.ok(shown > 0 && shown <= 100, `${shown} members drawn`);
    await byTest(alice, 'members-more').waitFor();
  });

  await step('finding a member among thousands', async () => {
    await byTest(alice, 'member-filter').fill('user4321');
    await alice.locator('[data-testid=member][data-jid="user4321@localhost"]').waitFor();
    assert.equal(await alice.locator('[data-testid=member]').count(), 1);
    await byTest(alice, 'member-filter').fill('');
    // Scrolling the member list to its end draws the next page.
    await byTest(alice, 'members-more').scrollIntoViewIfNeeded();
    await alice.waitForFunction(() => document.querySelectorAll('[data-testid=member]').length > 100);
  });

  await step(`scrolling back through all ${BIG_MESSAGES} messages`, async () => {
    const longBefore = await alice.evaluate(() => window.longTasksForTest.length);
    const t0 = Date.now();
    const pagesRead = await byTest(alice, 'message-list').evaluate(async (list) => {
      const edge = () => list.querySelector('[data-testid=history-edge]');
      let n = 0;
      while (edge()?.dataset.state !== 'start') {
        const before = list.querySelector('[data-testid=message-body]')?.textContent;
        await new Promise((r) => requestAnimationFrame(r)); // a reader cannot scroll faster than a frame
        list.scrollTop = 0;
        // Wait until the first message drawn changes (a page came in, or the window moved up).
        await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`stuck at ${before} after ${n} pages (${edge()?.dataset.state})`)), 15_000);
          const mo = new MutationObserver(() => {
            if (list.querySelector('[data-testid=message-body]')?.textContent !== before || edge()?.dataset.state === 'start') {
              mo.disconnect();
              clearTimeout(timer);
              resolve();
            }
          });
          mo.observe(list, { childList: true, subtree: true, attributes: true });
        });
        n++;
      }
      return n;
    });
    figures.scrollBackMs = Date.now() - t0;
    figures.scrollBackPages = pagesRead;
    await message(alice, 'bob@localhost', 'Big 00001').waitFor();
    const items = await alice.locator('[data-testid=message-list] > li').count();
    figures.elementsAtTop = items;
    assert.ok(items <= 220, `${items} entries drawn with ${BIG_MESSAGES} loaded`);
    figures.scrollBackLongTasks = stats(await alice.evaluate((n) => window.longTasksForTest.slice(n), longBefore));
  });

  await step('scrolling down through them all: frame times', async () => {
    const got = await byTest(alice, 'message-list').evaluate(async (list) => {
      const frames = [];
      let last = performance.now();
      for (let i = 0; i < 2000 && list.scrollTop + list.clientHeight < list.scrollHeight - 2; i++) {
        list.scrollTop += 1500;
        await new Promise((r) => requestAnimationFrame(r));
        const now = performance.now();
        frames.push(now - last);
        last = now;
      }
      return { frames, last: [...list.querySelectorAll('[data-testid=message-body]')].at(-1)?.textContent, items: list.children.length };
    });
    figures.scrollDownFrames = stats(got.frames);
    assert.equal(got.last, `Big ${String(BIG_MESSAGES).padStart(5, '0')}`);
    assert.ok(got.items <= 220, `${got.items} entries drawn at the bottom`);
    // Only a sanity bound: no single frame near a second.
    assert.ok(figures.scrollDownFrames.max < 1000, JSON.stringify(figures.scrollDownFrames));
    await alice.screenshot({ path: path.join(shots, 'web-big-room.png') });
    console.log(`big room figures: ${JSON.stringify(figures)}`);
  });

  await step('no script errors', () => assert.deepEqual(pageErrors, []));
  // The other test starts from a clean page.
  await byTest(alice, 'signout').click();
});

// ---------------------------------------------------------------- polish

test('the web client: rooms, composer, errors, outbox, timeline, title, notifications', async (t) => {
  const { alice, bob } = pages;
  const step = stepper(t);

  await step('both sign in; names are checked before a room is made', async () => {
    await Promise.all([signIn(alice, users.alice), signIn(bob, users.bob)]);
    await byTest(alice, 'new-room').click();
    await byTest(alice, 'create-name').fill('   ');
    await byTest(alice, 'create-submit').click();
    await byTest(alice, 'create-error').filter({ hasText: 'Give the room a name.' }).waitFor();
    await byTest(alice, 'create-name').fill('Nowhere');
    await byTest(alice, 'create-members').fill('bob@example.org');
    await byTest(alice, 'create-submit').click();
    await byTest(alice, 'create-error').filter({ hasText: 'bob@example.org is not an account of this server' }).waitFor();
    await alice.keyboard.press('Escape');
    await byTest(alice, 'create-dialog').waitFor({ state: 'hidden' });
  });

  await step('rooms sort by last activity, the search finds rooms not listed yet', async () => {
    // Twelve rooms: more than one page of the list (10).
    await rawSession(alice, users.alice, async (c, { el }) => {
      const ML = 'urn:xmpp:muclight:0';
      for (let i = 1; i <= 12; i++) {
        await c.iq('set', `room${String(i).padStart(2, '0')}@muclight.localhost`, el('query', { xmlns: `${ML}#create` },
          el('configuration', {}, el('roomname', {}, `Crag ${String(i).padStart(2, '0')}`)),
          el('occupants', {}, el('user', { affiliation: 'member' }, 'bob@localhost'))));
      }
    });
    await createRoom(alice, 'Basecamp', 'bob@localhost');
    await createRoom(alice, 'Summit', 'bob@localhost');
    await sendMessage(alice, 'Basecamp is the newest? No, this one is.');
    await message(alice, 'alice@localhost', 'Basecamp is the newest? No, this one is.').waitFor();
    // On bob's page: Summit (a message) first, then Basecamp (added last).
    await bob.reload();
    await signIn(bob, users.bob);
    await roomItem(bob, 'Summit').waitFor();
    await bob.waitForFunction(() => [...document.querySelectorAll('[data-testid=room-item-name]')].slice(0, 2).map((e) => e.textContent).join() === 'Summit,Basecamp');
    // All rooms are reachable: the list reads its next pages as it scrolls.
    await byTest(bob, 'rooms-panel').evaluate((n) => { n.scrollTop = n.scrollHeight; });
    await bob.waitForFunction(() => {
      const names = new Set([...document.querySelectorAll('[data-testid=room-item-name]')].map((e) => e.textContent));
      return Array.from({ length: 12 }, (_, i) => `Crag ${String(i + 1).padStart(2, '0')}`).every((n) => names.has(n));
    });
    await bob.reload();
    await signIn(bob, users.bob);
    await byTest(bob, 'room-search').fill('crag 0');
    await bob.waitForFunction(() => document.querySelectorAll('[data-testid=room-item]').length === 9);
    await byTest(bob, 'room-search').fill('crag 12');
    await roomItem(bob, 'Crag 12').waitFor();
    assert.equal(await bob.locator('[data-testid=room-item]').count(), 1);
    await byTest(bob, 'room-search').fill('no such crag');
    await byTest(bob, 'rooms-nomatch').waitFor();
    await byTest(bob, 'room-search').fill('');
    await roomItem(bob, 'Summit').click();
  });

  await step('Shift+Enter makes a new line; links are links, markup stays text', async () => {
    await byTest(alice, 'composer-input').fill('');
    await byTest(alice, 'composer-input').type('First line');
    await byTest(alice, 'composer-input').press('Shift+Enter');
    await byTest(alice, 'composer-input').type('second line');
    await byTest(alice, 'composer-input').press('Enter');
    await message(bob, 'alice@localhost', 'First line\nsecond line').waitFor();
    await sendMessage(alice, 'Topo at https://example.org/wiki/Crag_(climbing). <b>bold?</b> javascript:alert(1)');
    const m = message(bob, 'alice@localhost', 'Topo at https://example.org/wiki/Crag_(climbing). <b>bold?</b> javascript:alert(1)');
    await m.waitFor();
    const links = await m.locator('[data-testid=message-link]').evaluateAll((as) => as.map((a) => [a.getAttribute('href'), a.textContent, a.rel, a.target]));
    assert.deepEqual(links, [['https://example.org/wiki/Crag_(climbing)', 'https://example.org/wiki/Crag_(climbing)', 'noopener noreferrer nofollow', '_blank']]);
    assert.equal(await m.locator('b').count(), 0, 'markup in a message is not rendered');
  });

  await step('a message over the server\'s size limit is stopped here, quoted short; the card goes when one is sent', async () => {
    const long = `Long story: ${'a'.repeat(MAX_STANZA)}`;
    await byTest(alice, 'composer-input').fill(long);
    await byTest(alice, 'composer-count').filter({ hasText: `/ ${MAX_STANZA.toLocaleString('en-US')} bytes` }).waitFor();
    await byTest(alice, 'composer-input').press('Enter');
    const card = alice.locator('[data-testid=error][data-condition=too-long]');
    await card.waitFor();
    assert.match(await card.locator('[data-testid=error-message]').textContent(), new RegExp(`^This message is [\\d,]+ bytes; the server takes at most ${MAX_STANZA.toLocaleString('en-US')}\\.`));
    const ctx = await card.locator('[data-testid=error-context]').textContent();
    assert.ok(ctx.length < 140 && ctx.includes('Long story: aaa') && ctx.includes('…'), ctx);
    assert.equal(await byTest(alice, 'status').getAttribute('data-state'), 'online', 'the connection stayed up');
    await sendMessage(alice, 'Short one.');
    await message(bob, 'alice@localhost', 'Short one.').waitFor();
    await card.waitFor({ state: 'detached' });
  });

  await step('a flood is refused in plain words; "Resend all" sends them paced, each once', async () => {
    await rawSession(alice, users.alice, async (c, { el }, { room }) => {
      await c.iq('set', room, el('query', { xmlns: 'urn:xmpp:muclight:0#create' },
        el('configuration', {}, el('roomname', {}, 'Flood')),
        el('occupants', {}, el('user', { affiliation: 'member' }, 'bob@localhost'))));
    }, { room: FLOOD_ROOM });
    await roomItem(alice, 'Flood').click();
    await roomItem(bob, 'Flood').click();
    await byTest(bob, 'room-title').filter({ hasText: /^Flood$/ }).waitFor();
    const sent = [1, 2, 3, 4, 5, 6].map((i) => `Rope check ${i}`);
    for (const body of sent) await sendMessage(alice, body);
    const card = alice.locator('[data-testid=error][data-condition=policy-violation]');
    await card.waitFor();
    assert.equal(await card.locator('[data-testid=error-message]').textContent(), 'The room is busy: too many messages at once. Wait a moment, then send again.');
    assert.equal(await card.locator('[data-testid=error-text]').textContent(), 'The room is currently overactive, please try again later');
    await alice.waitForFunction((sent) => {
      const got = [...document.querySelectorAll('[data-testid=message][data-from="alice@localhost"] [data-testid=message-body], [data-testid=message-failed] [data-testid=message-body]')].map((b) => b.textContent);
      return sent.every((s) => got.includes(s));
    }, sent);
    await alice.screenshot({ path: path.join(shots, 'web-errors.png') });
    await card.locator('[data-testid=error-resend]').click();
    // Paced: every one arrives, none is refused again for good, none twice.
    for (const body of sent) await message(bob, 'alice@localhost', body).waitFor({ timeout: 60_000 });
    await alice.locator('[data-testid=message-pending]').first().waitFor({ state: 'detached', timeout: 60_000 });
    assert.equal(await alice.locator('[data-testid=message-failed]').count(), 0);
    for (const body of sent) assert.equal(await message(bob, 'alice@localhost', body).count(), 1, body);
    await card.waitFor({ state: 'detached' });
    await roomItem(alice, 'Summit').click();
    await roomItem(bob, 'Summit').click();
    await byTest(bob, 'room-title').filter({ hasText: /^Summit$/ }).waitFor();
  });

  await step('typed while offline: queued, sent on reconnect, once', async () => {
    await bob.context().setOffline(true);
    await bob.evaluate(() => window.dropConnectionsForTest());
    await bob.locator('[data-testid=status][data-state=reconnecting]').waitFor();
    await sendMessage(bob, 'Written in the tunnel');
    await bob.locator('[data-testid=message-pending]', { hasText: 'Written in the tunnel' }).locator('[data-testid=pending-why]', { hasText: 'Waiting for the connection' }).waitFor();
    await bob.context().setOffline(false);
    await byTest(bob, 'retry-now').click().catch(() => {});
    await bob.locator('[data-testid=status][data-state=online]').waitFor({ timeout: 45_000 });
    await message(alice, 'bob@localhost', 'Written in the tunnel').waitFor();
    await message(bob, 'bob@localhost', 'Written in the tunnel').waitFor();
    await bob.locator('[data-testid=message-pending]').waitFor({ state: 'detached' });
    assert.equal(await message(alice, 'bob@localhost', 'Written in the tunnel').count(), 1);
  });

  await step('timeline lines say who added whom, renames and subject changes', async () => {
    if (await byTest(alice, 'members-toggle').isVisible()) await byTest(alice, 'members-toggle').click(); // narrow screens only
    // A mistyped address is caught: the server says it has no such account.
    await byTest(alice, 'add-member-input').fill('karol@localhost');
    await byTest(alice, 'add-member-submit').click();
    await byTest(alice, 'confirm-dialog').filter({ hasText: 'There is no account karol@localhost' }).waitFor();
    await byTest(alice, 'confirm-cancel').click();
    await byTest(alice, 'confirm-dialog').waitFor({ state: 'hidden' });
    await byTest(alice, 'add-member-input').fill('carol@localhost');
    await byTest(alice, 'add-member-submit').click();
    await alice.locator('[data-testid=system-line]', { hasText: /^You added carol@localhost / }).waitFor();
    assert.equal(await alice.locator('[data-testid=system-line]', { hasText: 'karol@localhost' }).count(), 0);
    await bob.locator('[data-testid=system-line]', { hasText: /^carol@localhost was added / }).waitFor();
    await byTest(alice, 'room-edit').click();
    await byTest(alice, 'edit-name').fill('Summit push');
    await byTest(alice, 'edit-subject').fill('Leaving at dawn');
    await byTest(alice, 'edit-submit').click();
    await alice.locator('[data-testid=system-line]', { hasText: /^You renamed the room to “Summit push”; You changed the subject to “Leaving at dawn”/ }).waitFor();
    await bob.locator('[data-testid=system-line]', { hasText: /^The room was renamed to “Summit push”; The subject is now “Leaving at dawn”/ }).waitFor();
    await byTest(alice, 'room-edit').click();
    await byTest(alice, 'edit-name').fill(' ');
    await byTest(alice, 'edit-submit').click();
    await byTest(alice, 'edit-error').filter({ hasText: 'A room needs a name.' }).waitFor();
    await alice.keyboard.press('Escape');
  });

  await step('the tab title counts unread messages; notifications when asked for', async () => {
    await byTest(bob, 'notify-toggle').click();
    await byTest(bob, 'notify-toggle').filter({ hasText: 'Notifications on' }).waitFor();
    await roomItem(alice, 'Basecamp').click();
    await sendMessage(alice, 'Anyone at basecamp?');
    // The title counts what the badges count (the flood room may keep some: the server's limiter can refuse read markers there).
    await roomItem(bob, 'Basecamp').locator('[data-testid=room-unread]', { hasText: /^1$/ }).waitFor();
    await bob.waitForFunction(() => {
      const sum = [...document.querySelectorAll('[data-testid=room-unread]')].reduce((n, b) => n + Number(b.textContent), 0);
      return document.title === `(${sum}) Summit push · xmppws chat`;
    });
    const notes = await bob.evaluate(() => window.notificationsForTest);
    assert.deepEqual(notes, [{ title: 'alice in Basecamp', body: 'Anyone at basecamp?' }]);
    await roomItem(bob, 'Basecamp').click();
    await roomItem(bob, 'Basecamp').locator('[data-testid=room-unread]').waitFor({ state: 'detached' });
    await bob.waitForFunction(() => /^(\(\d+\) )?Basecamp · xmppws chat$/.test(document.title));
    await bob.screenshot({ path: path.join(shots, 'web-rooms.png') });
  });

  await step('no script errors or policy violations on either page', () => assert.deepEqual(pageErrors, []));
});
