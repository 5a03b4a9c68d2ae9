// Browser end-to-end test of the web client's modern group chat (issue 19):
// editing the last message with ↑, replies with a quote, reactions,
// retraction, removal by the owner, what the history shows after a
// reload, and unread counts kept by the server, with two people in
// headless Chromium. It needs a server whose room service announces these
// extensions (the `chat` work); against one that does not, it is skipped
// and says so.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  byTest, createRoom, endBrowserTest, message, rawSession, repo, roomItem, sendMessage, signInAt, startBrowserTest, stepper as stepperFor, users,
} from './pages.mjs';

const shots = path.join(repo, 'docs', 'img');
const FEATURES = ['urn:xmpp:message-correct:0', 'urn:xmpp:message-retract:1', 'urn:xmpp:message-moderate:1', 'urn:xmpp:reactions:0', 'urn:xmppws:summary:0', 'urn:xmppws:unread:0'];

let server;
const pages = {};
const pageErrors = [];
const h = { pages, pageErrors };

before(async () => {
  await startBrowserTest(h, 'modern', {
    config: [
      '# No flood limiter: the steps post faster than its default allows.',
    ],
  });
  server = h.server;
});

after(() => endBrowserTest(h));

// ---------------------------------------------------------------- helpers

const signIn = (page, user) => signInAt(server.base, page, user);
const stepper = (t) => stepperFor(t, 'modern', pages, server);

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
