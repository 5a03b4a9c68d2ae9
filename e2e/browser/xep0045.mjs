// An XEP-0045 occupant for the end-to-end tests: an unmodified xmpp.js
// client that enters rooms with presence and checks what the server sends
// against the subset README.md documents (the forms in rooms/legacy.go and
// rooms/legacy_room.go). It speaks no MUC Light: a stanza in that dialect
// from a room it has entered is a failure.
//
// Every wait is on a stanza, with a deadline; every failure message starts
// with "XEP-0045" and the user, so a report says which dialect broke.

import assert from 'node:assert/strict';
import { client, xml } from '@xmpp/client';

export const NS_MUC = 'http://jabber.org/protocol/muc';
export const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
export const NS_MUCLIGHT = 'urn:xmpp:muclight:0';

const bare = (jid) => String(jid ?? '').split('/')[0];

/** mucUser is the stanza's muc#user <x/>, if any. */
export const mucUser = (s) => s.getChild('x', NS_MUC_USER);
/** codes lists the muc#user status codes of a stanza. */
export const codes = (s) => (mucUser(s)?.getChildren('status') ?? []).map((c) => c.attrs.code);
/** item is the muc#user <item/> of a presence, as plain attributes. */
export const item = (s) => mucUser(s)?.getChild('item')?.attrs ?? {};

/** speaksMUCLight reports whether a stanza carries a MUC Light payload. */
export const speaksMUCLight = (s) => s.children.some((c) => typeof c !== 'string' && String(c.attrs?.xmlns ?? '').startsWith(NS_MUCLIGHT));

/**
 * connect signs a user in with xmpp.js and keeps every stanza it receives,
 * numbered, so a test can wait for one and check the order of several.
 * An error stanza from a room rejects whatever is being waited for.
 */
export async function connect({ url, jid, password, resource: res = 'xmppjs', wait = 15_000 }) {
  const [username, domain] = jid.split('@');
  const who = `XEP-0045 (${username}, xmpp.js)`;
  const xmpp = client({ service: url, domain, username, password, resource: res });
  const inbox = []; // not yet taken by a wait
  const seen = []; // everything, in arrival order
  const errors = [];
  const waiters = new Set();
  let seq = 0;
  xmpp.on('stanza', (s) => {
    s.seq = seq++;
    seen.push(s);
    inbox.push(s);
    if (s.attrs.type === 'error') errors.push(s);
    for (const w of [...waiters]) w();
  });
  xmpp.on('error', () => {}); // a failed wait says what was missing
  await xmpp.start();

  const occupant = {
    who,
    jid,
    full: `${jid}/${res}`,
    xmpp,
    seen,
    /** send sends one stanza. */
    send: (st) => xmpp.send(st),
    /** waitFor resolves with the first stanza not yet taken that matches pred. */
    waitFor(pred, what, timeout = wait) {
      return new Promise((resolve, reject) => {
        const start = errors.length;
        const timer = setTimeout(() => {
          waiters.delete(check);
          const recent = seen.slice(-5).map((s) => s.toString()).join('\n  ');
          reject(new Error(`${who}: no ${what} within ${timeout} ms; last stanzas received:\n  ${recent || '(none)'}`));
        }, timeout);
        const check = () => {
          if (errors.length > start) {
            clearTimeout(timer);
            waiters.delete(check);
            reject(new Error(`${who}: an error came while waiting for ${what}:\n  ${errors.at(-1).toString()}`));
            return;
          }
          const i = inbox.findIndex(pred);
          if (i < 0) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(inbox.splice(i, 1)[0]);
        };
        waiters.add(check);
        check();
      });
    },
    async stop() {
      await xmpp.stop().catch(() => {});
    },
  };
  return occupant;
}

// --------------------------------------------------------- the XEP-0045 steps

/**
 * added waits for word that the user was made a member of room: a MUC
 * Light affiliations notification (a session that has not entered gets
 * the native form) or a mediated invitation (legacy mode).
 */
export function added(o, room) {
  return o.waitFor((s) => s.is('message') && bare(s.attrs.from) === room
    && (s.getChild('x', `${NS_MUCLIGHT}#affiliations`) || mucUser(s)?.getChild('invite')), `word of being added to ${room}`);
}

/**
 * enter sends presence to room/nick and checks XEP-0045's answer, in its
 * order: a presence per other occupant (from room/their bare JID, with
 * affiliation, role and jid), the user's own presence with status 110, then
 * the subject. others is [{jid, affiliation, role}]; it returns the
 * self-presence.
 */
export async function enter(o, room, nick, { others, affiliation, role, subject }) {
  await o.send(xml('presence', { to: `${room}/${nick}` }, xml('x', { xmlns: NS_MUC })));
  const self = await o.waitFor((s) => s.is('presence') && bare(s.attrs.from) === room && codes(s).includes('110') && s.attrs.type !== 'unavailable',
    `own presence with status 110 from ${room} after entering`);
  assert.equal(self.attrs.from, `${room}/${o.jid}`, `${o.who}: own presence comes from room/bare JID`);
  assert.deepEqual({ affiliation: item(self).affiliation, role: item(self).role, jid: bare(item(self).jid) }, { affiliation, role, jid: o.jid },
    `${o.who}: own presence's muc#user item`);
  for (const p of others) {
    const got = await o.waitFor((s) => s.is('presence') && s.attrs.from === `${room}/${p.jid}` && s.attrs.type !== 'unavailable',
      `presence of occupant ${p.jid} from ${room}/${p.jid}`);
    assert.deepEqual({ affiliation: item(got).affiliation, role: item(got).role, jid: bare(item(got).jid) }, p, `${o.who}: ${p.jid}'s muc#user item`);
    assert.ok(got.seq < self.seq, `${o.who}: ${p.jid}'s presence came after the own presence (XEP-0045 sends the others first)`);
  }
  const subj = await o.waitFor((s) => s.is('message') && s.attrs.type === 'groupchat' && bare(s.attrs.from) === room && s.getChild('subject'),
    `groupchat message with <subject/> from ${room} after entering`);
  assert.equal(subj.getChildText('subject'), subject, `${o.who}: the subject on entering`);
  assert.equal(subj.getChild('body'), undefined, `${o.who}: the subject message has no body`);
  assert.ok(subj.seq > self.seq, `${o.who}: the subject came before the own presence (XEP-0045 sends it last)`);
  return self;
}

/** groupchat waits for a groupchat message with this body from room/sender's bare JID. */
export async function groupchat(o, room, sender, body) {
  const m = await o.waitFor((s) => s.is('message') && s.getChildText('body') === body, `groupchat "${body}" from ${room}/${sender}`);
  assert.equal(m.attrs.type, 'groupchat', `${o.who}: "${body}" is a groupchat message`);
  assert.equal(m.attrs.from, `${room}/${sender}`, `${o.who}: "${body}" comes from room/sender's bare JID`);
  return m;
}

/** say sends a groupchat message and waits for the room's echo of it. */
export async function say(o, room, body) {
  const id = `say-${Math.random().toString(16).slice(2)}`;
  await o.send(xml('message', { to: room, type: 'groupchat', id }, xml('body', {}, body)));
  const echo = await groupchat(o, room, o.jid, body);
  assert.equal(echo.attrs.id, id, `${o.who}: the echo of "${body}" keeps the id sent`);
  return echo;
}

/** occupantPresence waits for a presence from room/user with this affiliation (and unavailable with status 321 for none). */
export async function occupantPresence(o, room, user, affiliation) {
  const gone = affiliation === 'none';
  const p = await o.waitFor((s) => s.is('presence') && s.attrs.from === `${room}/${user}` && (s.attrs.type === 'unavailable') === gone,
    gone ? `unavailable presence of ${user} from ${room}/${user}` : `presence of ${user} from ${room}/${user}`);
  assert.equal(item(p).affiliation, affiliation, `${o.who}: ${user}'s affiliation in the presence`);
  assert.equal(bare(item(p).jid), user, `${o.who}: ${user}'s presence names their JID`);
  if (gone) assert.ok(codes(p).includes('321'), `${o.who}: ${user}'s unavailable presence carries status 321 (removed: affiliation change), got ${JSON.stringify(codes(p))}`);
  return p;
}

/** subject waits for a groupchat subject message from room/changer's bare JID. */
export async function subject(o, room, changer, text) {
  const m = await o.waitFor((s) => s.is('message') && s.getChild('subject') && s.getChildText('subject') === text,
    `subject "${text}" from ${room}/${changer}`);
  assert.equal(m.attrs.type, 'groupchat', `${o.who}: the subject message is groupchat`);
  assert.equal(m.attrs.from, `${room}/${changer}`, `${o.who}: the subject message comes from room/changer's bare JID`);
  // A groupchat post's echo looks the same but is archived, so it carries
  // the room's stanza-id; a subject change is a configuration change, and
  // those are not archived (their MUC Light notifications carry none).
  assert.equal(m.getChild('stanza-id', 'urn:xmpp:sid:0'), undefined,
    `${o.who}: the subject came back as an archived groupchat post (it has a stanza-id), not as a configuration change:\n  ${m.toString()}`);
  assert.equal(m.getChild('body'), undefined, `${o.who}: the subject message has no body`);
  return m;
}

/** setSubject changes the subject the XEP-0045 way and waits for the room to announce it. */
export async function setSubject(o, room, text) {
  await o.send(xml('message', { to: room, type: 'groupchat' }, xml('subject', {}, text)));
  return subject(o, room, o.jid, text);
}

/** exit sends unavailable presence to room/nick and waits for the own unavailable presence with status 110. */
export async function exit(o, room, nick) {
  await o.send(xml('presence', { to: `${room}/${nick}`, type: 'unavailable' }));
  const p = await o.waitFor((s) => s.is('presence') && bare(s.attrs.from) === room && s.attrs.type === 'unavailable' && codes(s).includes('110'),
    `own unavailable presence with status 110 from ${room}`);
  assert.equal(p.attrs.from, `${room}/${o.jid}`, `${o.who}: own unavailable presence comes from room/bare JID`);
  return p;
}

/**
 * nativeWhileEntered lists the MUC Light stanzas from room the user got
 * between two stanzas of theirs (entering and leaving): in that time the
 * room speaks XEP-0045 to this session only.
 */
export function nativeWhileEntered(o, room, from, to) {
  return o.seen.filter((s) => s.seq > from.seq && s.seq < to.seq && bare(s.attrs.from) === room && speaksMUCLight(s)).map((s) => s.toString());
}

export { xml };
