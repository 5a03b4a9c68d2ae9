// Browser end-to-end test of the web client's saved sign-in (issue 17):
// after a password login the page keeps a FAST token (XEP-0484), never the
// password; a reload signs in with it; a cut WebSocket comes back without
// a duplicate or a gap; Sign out invalidates the token on the server, so
// the same token is refused afterwards. It needs a server that offers SASL2
// with FAST; against one that does not, it is skipped and says so.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  byTest, createRoom, endBrowserTest, message, rawSession, repo, roomItem, sendMessage, signInAt, startBrowserTest, stepper as stepperFor, users,
} from './pages.mjs';

const shots = path.join(repo, 'docs', 'img');

let server;
const pages = {};
const pageErrors = [];
const h = { pages, pageErrors };

before(async () => {
  await startBrowserTest(h, 'session', {
    config: [
      '# No flood limiter: the steps post faster than its default allows.',
    ],
    history: true,
  });
  server = h.server;
});

after(() => endBrowserTest(h));

// ---------------------------------------------------------------- helpers

const signIn = (page, user) => signInAt(server.base, page, user);
const stepper = (t) => stepperFor(t, 'session', pages, server);

test('stay signed in across reloads with a FAST token; sign out ends it', async (t) => {
  const { alice, bob } = pages;
  await Promise.all([signIn(alice, users.alice), signIn(bob, users.bob)]);
  const saved = await alice.evaluate(() => JSON.parse(localStorage.getItem('xmppws.session') ?? 'null'));
  if (!saved?.token) {
    t.skip('the server offers no FAST token (SASL2 with XEP-0484)');
    return;
  }
  const step = stepper(t);

  await step('the browser keeps the token, never the password', async () => {
    assert.equal(saved.jid, 'alice@localhost');
    const all = await alice.evaluate(() => Object.keys(localStorage).map((k) => `${k}=${localStorage.getItem(k)}`).join('\n'));
    assert.ok(!all.includes(users.alice.password), 'the password is not in localStorage');
    await createRoom(alice, 'Relay', 'bob@localhost');
    await roomItem(bob, 'Relay').click();
  });

  await step('a reload signs in again by itself', async () => {
    await alice.goto(`${server.base}/`); // the plain address (the helper's ?signin asks for the form)
    await alice.locator('[data-testid=status][data-state=online]').waitFor();
    await byTest(alice, 'me').filter({ hasText: 'alice@localhost' }).waitFor();
    assert.equal(await byTest(alice, 'signin-password').inputValue(), '');
    await roomItem(alice, 'Relay').click();
    await sendMessage(alice, 'Back after a reload');
    await message(bob, 'alice@localhost', 'Back after a reload').waitFor();
  });

  await step('a cut WebSocket: the conversation goes on without a duplicate or a gap', async () => {
    await alice.context().setOffline(true);
    await alice.evaluate(() => window.dropConnectionsForTest());
    await alice.locator('[data-testid=status][data-state=reconnecting]').waitFor();
    for (const body of ['While cut 1', 'While cut 2']) {
      await sendMessage(bob, body);
      await message(bob, 'bob@localhost', body).waitFor();
    }
    await alice.context().setOffline(false);
    await byTest(alice, 'retry-now').click().catch(() => {});
    await alice.locator('[data-testid=status][data-state=online]').waitFor({ timeout: 45_000 });
    await sendMessage(bob, 'After the cut');
    await message(alice, 'bob@localhost', 'After the cut').waitFor();
    const shown = await alice.locator('[data-testid=message] [data-testid=message-body]').allTextContents();
    assert.deepEqual(shown.slice(-4), ['Back after a reload', 'While cut 1', 'While cut 2', 'After the cut']);
  });

  await step('sign out ends the token on the server', async () => {
    const token = (await alice.evaluate(() => JSON.parse(localStorage.getItem('xmppws.session')))).token;
    await byTest(alice, 'signout').click();
    await byTest(alice, 'signin').waitFor();
    await alice.waitForFunction(() => localStorage.getItem('xmppws.session') === null);
    const refused = await alice.evaluate(async ({ token, ua }) => {
      const xmpp = await import('/xmpp.js');
      try {
        await xmpp.Client.invalidateToken({ urls: [await xmpp.discoverWebSocketURL()], jid: 'alice@localhost', token, userAgent: ua });
        return 'accepted';
      } catch (e) {
        return `${e.condition} (${e.type})`;
      }
    }, { token, ua: saved.ua });
    assert.equal(refused, 'not-authorized (auth)');
    await alice.goto(`${server.base}/`);
    await byTest(alice, 'signin').waitFor();
    assert.equal(await byTest(alice, 'status').getAttribute('data-state'), 'offline');
  });

  await step('no script errors', () => assert.deepEqual(pageErrors, []));
});

test('a short drop resumes the stream (XEP-0198) without reading history again', async (t) => {
  const { alice, bob } = pages;
  await alice.goto(`${server.base}/`);
  const offered = await rawSession(alice, users.alice, async (c) => c.smOffered);
  if (!offered) {
    t.skip('the server offers no stream management');
    return;
  }
  const step = stepper(t);
  await step('cut and resumed: every message once, in order, and no history query', async () => {
    await Promise.all([signIn(alice, users.alice), signIn(bob, users.bob)]);
    await createRoom(alice, 'Tunnel', 'bob@localhost');
    await roomItem(bob, 'Tunnel').click();
    await sendMessage(alice, 'Before the tunnel');
    await message(bob, 'alice@localhost', 'Before the tunnel').waitFor();
    await message(alice, 'alice@localhost', 'Before the tunnel').waitFor();
    const before = await alice.evaluate(() => window.historyQueriesForTest);
    await alice.context().setOffline(true);
    await alice.evaluate(() => window.dropConnectionsForTest());
    await alice.locator('[data-testid=status][data-state=reconnecting]').waitFor();
    for (const body of ['In the tunnel 1', 'In the tunnel 2']) {
      await sendMessage(bob, body);
      await message(bob, 'bob@localhost', body).waitFor();
    }
    await alice.context().setOffline(false);
    await byTest(alice, 'retry-now').click().catch(() => {});
    await alice.locator('[data-testid=status][data-state=online][data-stream=resumed]').waitFor({ timeout: 45_000 });
    await message(alice, 'bob@localhost', 'In the tunnel 2').waitFor();
    await sendMessage(alice, 'Out of the tunnel');
    await message(bob, 'alice@localhost', 'Out of the tunnel').waitFor();
    const shown = await alice.locator('[data-testid=message] [data-testid=message-body]').allTextContents();
    assert.deepEqual(shown, ['Before the tunnel', 'In the tunnel 1', 'In the tunnel 2', 'Out of the tunnel']);
    assert.equal(await alice.evaluate(() => window.historyQueriesForTest), before, 'no history query after the resume');
  });
  await step('no script errors', () => assert.deepEqual(pageErrors, []));
});
