// muclight.js: MUC Light (urn:xmpp:muclight:0) group chat on top of xmpp.js.
//
// MucLight keeps the client's view of its rooms: the list (disco#items,
// paged with RSM), each room's configuration, occupants and messages, and
// updates it from the notifications the rooms send. Messages come live and
// from the room's archive (XEP-0313): the latest page when a room opens,
// older pages on request, and the gap after a reconnect; the archive id
// (XEP-0359 stanza-id) keeps every message once. It emits events; it never
// touches the DOM.

import { NS, JID, Emitter, XmppError, el, child, children, childText, randomId } from './xmpp.js';

const BASE = 'urn:xmpp:muclight:0';

/** MUC Light namespaces. */
export const NSL = {
  base: BASE,
  create: `${BASE}#create`,
  destroy: `${BASE}#destroy`,
  configuration: `${BASE}#configuration`,
  affiliations: `${BASE}#affiliations`,
  info: `${BASE}#info`,
  blocking: `${BASE}#blocking`,
};

/** Room history namespaces: archive queries, forwarded results, archive ids. */
export const NSM = {
  mam: 'urn:xmpp:mam:2',
  forward: 'urn:xmpp:forward:0',
  sid: 'urn:xmpp:sid:0',
};

/** Modern group chat: corrections, retraction, moderation, reactions, replies, markers, and the server's summary and unread counts. */
export const NSX = {
  occupantId: 'urn:xmpp:occupant-id:0',
  correct: 'urn:xmpp:message-correct:0',
  retract: 'urn:xmpp:message-retract:1',
  moderate: 'urn:xmpp:message-moderate:1',
  reactions: 'urn:xmpp:reactions:0',
  reply: 'urn:xmpp:reply:0',
  fallback: 'urn:xmpp:fallback:0',
  hints: 'urn:xmpp:hints',
  markers: 'urn:xmpp:chat-markers:0',
  summary: 'urn:xmppws:summary:0',
  unread: 'urn:xmppws:unread:0',
};

/** cpSlice cuts a string by Unicode code points, as XEP-0426 fallback positions count. */
function cpSlice(s, start, end) {
  return [...s].slice(start, end).join('');
}

const RESERVED = new Set(['version', 'prev-version']);
// A room not on screen keeps this many messages; the open room keeps every
// page the user scrolled back to.
const MAX_MESSAGES = 500;
// Catching up after a reconnect reads at most this many pages forward; a
// longer gap starts over from the latest page (older ones load on scroll).
const CATCHUP_PAGE = 50;
const CATCHUP_PAGES = 4;
// A read marker the room's flood limiter refused goes again after this long.
const MARKER_RETRY_MS = 5000;

/**
 * History is where a room's messages stand against its archive:
 *   loaded      the latest page was read (the messages reach the present)
 *   synced      nothing was missed since: false after a dropped connection
 *               or a room event, until a catch-up reads the gap
 *   contiguous  the newest archive id up to which nothing is missing
 *   oldest      the oldest archive id loaded; older pages page from it
 *   complete    the oldest entry of the archive is loaded
 *   unavailable the server keeps no history
 *   error       the last failed load (XmppError), shown with a retry
 */
class History {
  loaded = false;
  synced = false;
  contiguous = '';
  oldest = '';
  complete = false;
  loadingLatest = false;
  loadingOlder = false;
  unavailable = false;
  error = null;
  again = false; // a sync was asked for while one ran
}

/**
 * Room is what the client knows about one room: config holds every
 * configuration field (roomname, subject, ...); occupants maps bare JID to
 * 'owner' or 'member'.
 */
export class Room {
  constructor(jid) {
    this.jid = jid;
    this.config = {};
    this.version = '';
    this.occupants = new Map();
    this.loaded = false; // occupants and config came from an #info answer
    // Oldest first: {id, sid, from, body, time, own} for a message,
    // {sid, time, system: 'affiliations', items: [{jid, affiliation}]} for an
    // archived room event, and {failed, ...} for one the server refused
    // (those have no sid and stay where they happened).
    this.messages = [];
    this.sids = new Set(); // archive ids in messages
    this.history = new History();
    this.unread = 0;
    this.listName = ''; // the name disco#items gave, until #info says more
    this.activity = 0; // ms since the epoch of the newest thing known to happen here
    this.preview = null; // {from, body} of the newest message, read before the room was opened
  }

  /** lastActivity is when the room last saw a message or a change, for sorting the list. */
  get lastActivity() {
    const last = this.messages.findLast((m) => !m.failed && !m.pending);
    return Math.max(this.activity, last ? last.time.getTime() : 0);
  }

  get name() {
    return this.config.roomname || this.listName || JID.parse(this.jid).local;
  }

  get subject() {
    return this.config.subject ?? '';
  }
}

/**
 * MucLight is the room service of one connected client. Events:
 *   'rooms' ()                            the room list changed (added, removed, renamed, paged)
 *   'room' (jid)                          a room's configuration or occupants changed
 *   'message' (jid, message, index)       a live groupchat message arrived at messages[index]: {id, sid, from, body, time, own}
 *   'history' (jid, {kind, added})        history loaded ('latest', 'older', 'catchup') or its state changed ('state')
 *   'gone' (jid, reason, name)            the user is no longer in the room: 'left', 'removed', 'destroyed'
 *   'error' ({room, error, body, id})     a message to a room was refused
 *   'timeline' (jid)                      a line not from the archive joined messages (a rename, a new subject)
 *   'update' (jid, message)               a message changed: corrected, retracted, moderated, reacted to
 */
export class MucLight extends Emitter {
  constructor(client, { pageSize = 10, historyPage = 30 } = {}) {
    super();
    this.client = client;
    this.pageSize = pageSize;
    this.historyPage = historyPage;
    this.mam = true; // the service announces urn:xmpp:mam:2 (until disco says otherwise)
    this.active = ''; // the room on screen: it keeps all its pages and catches up at once
    this.queries = new Map(); // MAM queryid → {room, items}
    this.syncs = new Map(); // room JID → running sync()
    this.service = '';
    this.rooms = new Map();
    this.count = 0; // the total the server reported
    this.last = ''; // last room JID of the pages loaded so far
    this.hasMore = false;
    this.leaving = new Set();
    this.creating = new Map(); // create iq id → room JID from its notification
    this.infoLoads = new Map(); // room JID → pending #info promise
    this.mine = new Set(); // ids of the room changes this client asked for
    this.features = new Set(); // what the room service announces (edits, reactions, unread counts...)
    this.quiet = new Map(); // id of a read marker sent → {jid, sid, prev}: its errors are not shown
    this.wasSynced = new Set(); // rooms caught up when the connection dropped
    client.on('stanza', (st) => this.#onStanza(st));
    client.on('status', (state) => {
      // Whatever the rooms send while the connection is down is missed...
      if (state === 'online') return;
      for (const r of this.rooms.values()) {
        if (r.history.synced) this.wasSynced.add(r);
        r.history.synced = false;
      }
    });
    client.on('online', ({ kept }) => {
      // ...unless the stream was resumed (XEP-0198): the server sent it again.
      if (kept) for (const r of this.wasSynced) r.history.synced = true;
      this.wasSynced.clear();
    });
  }

  get me() {
    return this.client.jid?.bare() ?? '';
  }

  /** discover finds the MUC Light service of the user's domain (muclight.<domain> when disco says nothing). */
  async discover() {
    const domain = this.client.jid.domain;
    this.service = `muclight.${domain}`;
    try {
      const items = await this.client.iq('get', domain, el('query', { xmlns: NS.discoItems }));
      const jids = children(child(items, 'query', NS.discoItems), 'item').map((i) => i.getAttribute('jid'));
      for (const j of jids) {
        const info = await this.client.iq('get', j, el('query', { xmlns: NS.discoInfo }));
        const feats = children(child(info, 'query', NS.discoInfo), 'feature').map((f) => f.getAttribute('var'));
        if (feats.includes(NSL.base)) {
          this.service = j;
          this.mam = feats.includes(NSM.mam);
          this.features = new Set(feats);
          break;
        }
      }
    } catch (e) {
      console.warn('service discovery failed; using the default service name', e);
    }
    return this.service;
  }

  /**
   * loadRooms reads the first page of the user's rooms (more: the next page
   * after the last one loaded). Rooms the list no longer has are dropped on
   * a first-page load.
   */
  async loadRooms({ more = false } = {}) {
    const set = el('set', { xmlns: NS.rsm }, el('max', {}, String(this.pageSize)), more && this.last ? el('after', {}, this.last) : null);
    let res;
    try {
      res = await this.client.iq('get', this.service, el('query', { xmlns: NS.discoItems }, set));
    } catch (e) {
      // The room the page ended with is gone (left meanwhile): start over.
      if (more && e.condition === 'item-not-found') return this.loadRooms();
      throw e;
    }
    const q = child(res, 'query', NS.discoItems);
    const seen = new Set();
    for (const item of children(q, 'item')) {
      const jid = item.getAttribute('jid');
      seen.add(jid);
      const r = this.#room(jid);
      r.listName = item.getAttribute('name') ?? '';
      if (!r.loaded) r.version = item.getAttribute('version') ?? r.version;
    }
    if (!more) {
      // Drop rooms that sort inside the first page's span but are no longer listed.
      const lastSeen = [...seen].sort().at(-1) ?? '';
      for (const jid of [...this.rooms.keys()]) {
        if (!seen.has(jid) && (jid <= lastSeen || seen.size === 0)) this.rooms.delete(jid);
      }
    }
    const rsm = child(q, 'set', NS.rsm);
    const count = Number(childText(rsm, 'count', NS.rsm) || seen.size);
    this.count = count;
    if (rsm && childText(rsm, 'last', NS.rsm)) this.last = childText(rsm, 'last', NS.rsm);
    else if (!more) this.last = [...seen].sort().at(-1) ?? '';
    const listed = [...this.rooms.keys()].filter((j) => j <= this.last).length;
    this.hasMore = !!rsm && seen.size > 0 && listed < count;
    this.emit('rooms');
  }

  /** sortedRooms returns the rooms known, the most recently active first, then by name. */
  sortedRooms() {
    return [...this.rooms.values()].sort((a, b) => b.lastActivity - a.lastActivity || a.name.localeCompare(b.name) || a.jid.localeCompare(b.jid));
  }

  /**
   * peek reads a room's newest archived entry for the room list (when it
   * last saw activity and what was said), without touching its history.
   */
  async peek(jid) {
    const r = this.rooms.get(jid);
    if (!r || !this.mam || r.peeked) return;
    r.peeked = true;
    try {
      const page = await this.#query(jid, { before: '', max: 1 });
      const last = page.items.at(-1);
      if (!last || this.rooms.get(jid) !== r) return;
      r.activity = Math.max(r.activity, last.time.getTime());
      if (!last.system) r.preview = { from: last.from, body: last.body };
      this.emit('rooms');
    } catch (e) {
      r.peeked = false;
      console.warn('reading the newest message of', jid, 'failed', e);
    }
  }

  #room(jid) {
    let r = this.rooms.get(jid);
    if (!r) {
      r = new Room(jid);
      this.rooms.set(jid, r);
    }
    return r;
  }

  /**
   * createRoom makes a room with a generated name and resolves with its
   * JID. members are bare JIDs added as members.
   */
  async createRoom({ name, subject, members = [] }) {
    const id = randomId();
    this.creating.set(id, '');
    const config = el('configuration', {}, name ? el('roomname', {}, name) : null, subject ? el('subject', {}, subject) : null);
    const occupants = el('occupants', {}, members.map((m) => el('user', { affiliation: 'member' }, m)));
    try {
      const res = await this.client.iqWithId(id, 'set', this.service, el('query', { xmlns: NSL.create }, config, occupants));
      // The notification (sent before the result) named the new room.
      let jid = this.creating.get(id);
      if (!jid) {
        const from = res.getAttribute('from') ?? '';
        if (!from.includes('@')) throw new XmppError('undefined-condition', 'the server did not say which room it created');
        jid = from;
      }
      const r = this.#room(jid);
      if (name) r.config.roomname = name;
      if (subject) r.config.subject = subject;
      this.emit('rooms');
      await this.info(jid, { force: true });
      return jid;
    } finally {
      this.creating.delete(id);
    }
  }

  /**
   * info reads the room's configuration and occupants (#info); with a
   * known version the server answers "unchanged" cheaply.
   */
  info(jid, { force = false } = {}) {
    if (this.infoLoads.has(jid)) return this.infoLoads.get(jid);
    const r = this.#room(jid);
    const p = (async () => {
      const version = !force && r.loaded && r.version ? el('version', {}, r.version) : null;
      const res = await this.client.iq('get', jid, el('query', { xmlns: NSL.info }, version));
      const q = child(res, 'query', NSL.info);
      if (!q) return r; // unchanged
      r.version = childText(q, 'version', NSL.info);
      r.config = {};
      for (const f of child(q, 'configuration', NSL.info)?.children ?? []) r.config[f.localName] = f.textContent;
      r.occupants = new Map(children(child(q, 'occupants', NSL.info), 'user').map((u) => [u.textContent.trim(), u.getAttribute('affiliation')]));
      r.loaded = true;
      this.emit('room', jid);
      this.emit('rooms');
      return r;
    })();
    this.infoLoads.set(jid, p);
    p.finally(() => this.infoLoads.delete(jid)).catch(() => {});
    return p;
  }

  /** send posts a groupchat message and returns its id. */
  send(jid, body) {
    const id = randomId();
    this.client.send(this.stanza(jid, body, id));
    return id;
  }

  /** correct replaces the text of one's own message m (XEP-0308); it returns the correction's id. */
  correct(jid, m, body) {
    const id = randomId();
    this.client.send(el('message', { xmlns: NS.client, type: 'groupchat', to: jid, id }, el('body', {}, body), el('replace', { xmlns: NSX.correct, id: m.id })));
    return id;
  }

  /** retract withdraws one's own message by its archive id (XEP-0424). */
  retract(jid, sid) {
    const id = randomId();
    this.client.send(el('message', { xmlns: NS.client, type: 'groupchat', to: jid, id },
      el('retract', { xmlns: NSX.retract, id: sid }),
      el('fallback', { xmlns: NSX.fallback, for: NSX.retract }),
      el('body', {}, 'This person attempted to retract a previous message, but it is unsupported by your client.'),
      el('store', { xmlns: NSX.hints })));
    return id;
  }

  /** moderate removes someone's message as the room's owner (XEP-0425). */
  moderate(jid, sid, reason = '') {
    return this.client.iq('set', jid, el('moderate', { xmlns: NSX.moderate, id: sid }, el('retract', { xmlns: NSX.retract }), reason ? el('reason', {}, reason) : null));
  }

  /** react sets the user's whole set of reactions to a message (XEP-0444); [] takes them all back. */
  react(jid, sid, emojis) {
    const id = randomId();
    this.client.send(el('message', { xmlns: NS.client, type: 'groupchat', to: jid, id },
      el('reactions', { xmlns: NSX.reactions, id: sid }, emojis.map((e) => el('reaction', {}, e))),
      el('store', { xmlns: NSX.hints })));
    return id;
  }

  /**
   * replyTo sends body as a reply to m (XEP-0461) with the quote as a
   * fallback (XEP-0428) for clients that show only the text.
   */
  replyTo(jid, m, body) {
    const id = randomId();
    const quoted = `${m.body.split('\n').map((l) => `> ${l}`).join('\n')}\n`;
    const end = [...quoted].length;
    this.client.send(el('message', { xmlns: NS.client, type: 'groupchat', to: jid, id },
      el('body', {}, quoted + body),
      el('reply', { xmlns: NSX.reply, to: `${jid}/${m.from}`, id: m.sid }),
      el('fallback', { xmlns: NSX.fallback, for: NSX.reply }, el('body', { start: '0', end: String(end) }))));
    return id;
  }

  /** markRead tells the room the user has read up to the message with archive id sid (XEP-0333). */
  markRead(jid, sid) {
    const r = this.rooms.get(jid);
    if (!this.features.has(NSX.markers) || !r || !sid || (r.readSid && r.readSid >= sid)) return;
    const prev = r.readSid ?? '';
    r.readSid = sid;
    const id = randomId();
    this.quiet.set(id, { jid, sid, prev }); // a refused marker is no one's business but ours
    this.client.send(el('message', { xmlns: NS.client, type: 'groupchat', to: jid, id }, el('displayed', { xmlns: NSX.markers, id: sid })));
  }

  /**
   * loadUnread reads the server's unread count and last activity of every
   * room of the user, page by page, into the rooms known; rooms not listed
   * yet are left for the list's own paging.
   */
  async loadUnread() {
    if (!this.features.has(NSX.unread)) return false;
    let after = '';
    for (let n = 0; n < 100; n++) {
      const set = el('set', { xmlns: NS.rsm }, el('max', {}, '100'), after ? el('after', {}, after) : null);
      const res = await this.client.iq('get', this.service, el('unread', { xmlns: NSX.unread }, set));
      const q = child(res, 'unread', NSX.unread);
      const items = children(q, 'room');
      for (const it of items) {
        const r = this.rooms.get(it.getAttribute('jid') ?? '');
        if (!r) continue;
        r.unread = Number(it.getAttribute('unread') ?? 0) || 0;
        r.unreadMore = it.getAttribute('more') === 'true';
        r.readSid = it.getAttribute('last-read') ?? r.readSid ?? '';
        const t = Date.parse(it.getAttribute('last-activity') ?? '');
        if (!Number.isNaN(t)) r.activity = Math.max(r.activity, t);
      }
      const last = childText(child(q, 'set', NS.rsm), 'last', NS.rsm);
      if (!items.length || !last || last === after) break;
      after = last;
    }
    this.emit('rooms');
    return true;
  }

  /** stanza is the message send() writes, for measuring it against the server's size limit first. */
  stanza(jid, body, id) {
    return el('message', { xmlns: NS.client, type: 'groupchat', to: jid, id }, el('body', {}, body));
  }

  /** setConfig changes configuration fields: {roomname: 'x', subject: 'y'} (only those given). */
  setConfig(jid, fields) {
    const kids = Object.entries(fields).map(([k, v]) => el(k, {}, v));
    return this.client.iqWithId(this.#mine(), 'set', jid, el('query', { xmlns: NSL.configuration }, kids));
  }

  /** setAffiliations applies [{jid, affiliation: 'owner'|'member'|'none'}]. */
  setAffiliations(jid, items) {
    const users = items.map((i) => el('user', { affiliation: i.affiliation }, i.jid));
    return this.client.iqWithId(this.#mine(), 'set', jid, el('query', { xmlns: NSL.affiliations }, users));
  }

  // #mine is a fresh id for a room change of ours: the room's notification
  // (and its archived copy) carries it, so the timeline can say "You".
  #mine() {
    const id = randomId();
    this.mine.add(id);
    return id;
  }

  /** byMe reports whether a notification (by its id) answers a change this client made. */
  byMe(id) {
    return !!id && this.mine.has(id);
  }

  /** leave sets the user's own affiliation to none. */
  async leave(jid) {
    this.leaving.add(jid);
    try {
      await this.setAffiliations(jid, [{ jid: this.me, affiliation: 'none' }]);
    } finally {
      this.leaving.delete(jid);
    }
  }

  /** destroy removes the room (owner only). */
  destroy(jid) {
    return this.client.iq('set', jid, el('query', { xmlns: NSL.destroy }));
  }

  /** getBlocking returns the blocking list: [{kind: 'room'|'user', jid, action}]. */
  async getBlocking() {
    const res = await this.client.iq('get', this.service, el('query', { xmlns: NSL.blocking }));
    return [...(child(res, 'query', NSL.blocking)?.children ?? [])]
      .filter((c) => c.localName === 'room' || c.localName === 'user')
      .map((c) => ({ kind: c.localName, jid: c.textContent.trim(), action: c.getAttribute('action') || 'deny' }));
  }

  /** setBlocking sends [{kind, jid, action: 'deny'|'allow'}]. */
  setBlocking(items) {
    const kids = items.map((i) => el(i.kind, { action: i.action }, i.jid));
    return this.client.iq('set', this.service, el('query', { xmlns: NSL.blocking }, kids));
  }

  // ------------------------------------------------------------ history

  /**
   * sync brings a room's messages up to the present from its archive: the
   * latest page the first time, the gap since the last known message after
   * a dropped connection or a room event. Concurrent calls share one run.
   */
  sync(jid) {
    const r = this.rooms.get(jid);
    if (!r || r.history.unavailable) return Promise.resolve();
    if (!this.mam) {
      r.history.unavailable = true;
      this.emit('history', jid, { kind: 'state', added: 0 });
      return Promise.resolve();
    }
    const running = this.syncs.get(jid);
    if (running) {
      r.history.again = true;
      return running;
    }
    const p = (async () => {
      do {
        r.history.again = false;
        await this.#syncOnce(jid, r);
      } while (r.history.again && this.rooms.get(jid) === r);
    })();
    this.syncs.set(jid, p);
    p.finally(() => this.syncs.delete(jid)).catch(() => {});
    return p;
  }

  async #syncOnce(jid, r) {
    const h = r.history;
    if (h.loaded && h.synced) return;
    h.error = null;
    try {
      if (!h.loaded) {
        h.loadingLatest = true;
        this.emit('history', jid, { kind: 'state', added: 0 });
        const page = await this.#query(jid, { before: '', max: this.historyPage });
        if (this.rooms.get(jid) !== r) return;
        const first = page.items[0]?.sid;
        // What came live before may not join up with the page: the page
        // is the window now, and older messages load again on scroll.
        if (first) this.#dropOlderThan(r, first);
        const added = this.#merge(r, page.items);
        h.loaded = true;
        h.synced = true;
        h.complete = page.complete || page.items.length === 0;
        h.oldest = first ?? '';
        h.contiguous = this.#newestSid(r);
        h.loadingLatest = false;
        this.emit('history', jid, { kind: 'latest', added });
        return;
      }
      h.loadingLatest = true;
      let added = 0;
      const restart = () => {
        this.#dropOlderThan(r, '\uffff');
        Object.assign(h, { loaded: false, synced: false, contiguous: '', oldest: '', complete: false });
        h.again = true;
        this.emit('history', jid, { kind: 'catchup', added });
      };
      for (let n = 0; ; n++) {
        // Too much was missed to read forward: start again from the latest page.
        if (n === CATCHUP_PAGES) return restart();
        let page;
        try {
          page = await this.#query(jid, { after: h.contiguous, max: CATCHUP_PAGE });
        } catch (e) {
          // The last message known is no longer in the archive (retention).
          if (e.condition === 'item-not-found' && h.contiguous) return restart();
          throw e;
        }
        if (this.rooms.get(jid) !== r) return;
        added += this.#merge(r, page.items);
        if (page.items.length) h.contiguous = page.items.at(-1).sid;
        if (!h.oldest && page.items.length) h.oldest = page.items[0].sid;
        if (page.complete || page.items.length === 0) break;
      }
      h.synced = true;
      const newest = this.#newestSid(r);
      if (newest > h.contiguous) h.contiguous = newest;
      h.loadingLatest = false;
      this.emit('history', jid, { kind: 'catchup', added });
    } catch (e) {
      h.loadingLatest = false;
      if (!h.loaded && this.#noHistory(e)) h.unavailable = true;
      else h.error = e;
      this.emit('history', jid, { kind: 'state', added: 0 });
      if (!h.unavailable) throw e;
    }
  }

  /**
   * loadOlder reads the page before the oldest message loaded and resolves
   * with how many messages it added (0 at the beginning of the archive).
   */
  async loadOlder(jid) {
    const r = this.rooms.get(jid);
    const h = r?.history;
    if (!h || !h.loaded || h.complete || h.loadingOlder || h.unavailable) return 0;
    if (!h.oldest) {
      h.complete = true;
      this.emit('history', jid, { kind: 'state', added: 0 });
      return 0;
    }
    h.loadingOlder = true;
    h.error = null;
    this.emit('history', jid, { kind: 'state', added: 0 });
    let added = 0;
    try {
      const page = await this.#query(jid, { before: h.oldest, max: this.historyPage });
      if (this.rooms.get(jid) !== r) return 0;
      added = this.#merge(r, page.items);
      if (page.items.length) h.oldest = page.items[0].sid;
      h.complete = page.complete || page.items.length === 0;
      return added;
    } catch (e) {
      // The oldest message loaded has expired from the archive, and with it
      // everything older: this is the beginning now.
      if (e.condition === 'item-not-found' && this.rooms.get(jid) === r && r.occupants.has(this.me)) {
        h.complete = true;
        return 0;
      }
      h.error = e;
      throw e;
    } finally {
      h.loadingOlder = false;
      this.emit('history', jid, { kind: 'older', added });
    }
  }

  #noHistory(e) {
    return e.condition === 'feature-not-implemented' || (e.condition === 'service-unavailable' && !e.text);
  }

  /**
   * #query runs one archive query against a room and resolves with its
   * entries (oldest first) and the paging answer. Results are collected by
   * queryid, so queries to several rooms at once do not mix.
   */
  async #query(jid, { before, after, max }) {
    const queryid = randomId();
    const q = { room: jid, items: [] };
    this.queries.set(queryid, q);
    try {
      const set = el('set', { xmlns: NS.rsm },
        el('max', {}, String(max)),
        before !== undefined ? el('before', {}, before) : null,
        after ? el('after', {}, after) : null);
      // The summary flag asks for messages with their latest correction and reactions folded in.
      const summary = this.features.has(NSX.summary) ? el('summary', { xmlns: NSX.summary }) : null;
      const res = await this.client.iq('set', jid, el('query', { xmlns: NSM.mam, queryid }, set, summary));
      const fin = child(res, 'fin', NSM.mam);
      if (!fin) throw new XmppError('bad-format', 'the room answered the history query without <fin/>', 'cancel');
      const items = q.items.sort((a, b) => (a.sid < b.sid ? -1 : a.sid > b.sid ? 1 : 0));
      return { items, complete: fin.getAttribute('complete') === 'true' };
    } finally {
      this.queries.delete(queryid);
    }
  }

  // #onResult takes one archived entry of a running query.
  #onResult(st, from, result) {
    const q = this.queries.get(result.getAttribute('queryid') ?? '');
    if (!q || from.toString() !== q.room) return;
    const sid = result.getAttribute('id') ?? '';
    const fwd = child(result, 'forwarded', NSM.forward);
    const m = child(fwd, 'message', NS.client);
    if (!sid || !m) return;
    const stamp = child(fwd, 'delay', NS.delay)?.getAttribute('stamp');
    let sender;
    try {
      sender = JID.parse(m.getAttribute('from') ?? '');
    } catch {
      return;
    }
    if (sender.bare() !== q.room) return;
    const time = stamp ? new Date(stamp) : new Date();
    if (!sender.resource && !child(m, 'retract', NSX.retract)) {
      const x = child(m, 'x', NSL.affiliations);
      if (!x) return;
      const items = children(x, 'user').map((u) => ({ jid: u.textContent.trim(), affiliation: u.getAttribute('affiliation') }));
      if (items.length) q.items.push({ sid, id: m.getAttribute('id') ?? '', time, system: 'affiliations', items });
      return;
    }
    const msg = this.#message(m, sender, time);
    if (msg) {
      msg.sid = sid;
      // The server's summary: the latest correction and the reactions, folded in.
      const sum = child(result, 'summary', NSX.summary) ?? child(m, 'summary', NSX.summary);
      if (sum && !msg.fasten) {
        const edit = child(sum, 'edit', NSX.summary);
        if (edit && !msg.retracted) {
          msg.body = childText(edit, 'body', NSX.summary) || childText(edit, 'body') || msg.body;
          msg.edited = true;
        }
        const reactions = new Map();
        for (const rc of children(child(sum, 'reactions', NSX.summary), 'reaction')) {
          const who = rc.getAttribute('from')?.split('/').slice(1).join('/') ?? '';
          if (!reactions.has(who)) reactions.set(who, []);
          reactions.get(who).push(rc.textContent);
        }
        if (reactions.size) msg.reactions = reactions;
      }
      q.items.push(msg);
    }
  }

  /**
   * #message reads a groupchat message from room/occupant: a message
   * {id, sid, from, body, time, own, occupantId, reply, retracted}, a
   * fastening {fasten: 'edit'|'retract'|'react', target, ...} that changes
   * another one, or null (no body, nothing we show).
   */
  #message(st, from, time) {
    const base = { id: st.getAttribute('id') ?? '', sid: '', from: from.resource, time, own: from.resource === this.me, occupantId: child(st, 'occupant-id', NSX.occupantId)?.getAttribute('id') ?? '' };
    const retract = child(st, 'retract', NSX.retract);
    if (retract) {
      const mod = child(retract, 'moderated', NSX.moderate);
      return { ...base, fasten: 'retract', target: retract.getAttribute('id') ?? '', moderated: !!mod, reason: childText(retract, 'reason', NSX.retract) || childText(retract, 'reason') };
    }
    const reactions = child(st, 'reactions', NSX.reactions);
    if (reactions) {
      return { ...base, fasten: 'react', target: reactions.getAttribute('id') ?? '', reactions: children(reactions, 'reaction').map((r) => r.textContent) };
    }
    const retracted = child(st, 'retracted', NSX.retract);
    if (retracted) {
      const mod = child(retracted, 'moderated', NSX.moderate);
      return { ...base, body: '', retracted: { moderated: !!mod, reason: childText(retracted, 'reason', NSX.retract) || childText(retracted, 'reason') } };
    }
    let body = child(st, 'body', NS.client)?.textContent ?? '';
    if (!body) return null;
    const replace = child(st, 'replace', NSX.correct);
    if (replace) return { ...base, fasten: 'edit', targetId: replace.getAttribute('id') ?? '', body };
    const reply = child(st, 'reply', NSX.reply);
    let replyTo = null;
    if (reply) {
      replyTo = { sid: reply.getAttribute('id') ?? '', to: reply.getAttribute('to') ?? '', quote: '' };
      const fb = children(st, 'fallback', NSX.fallback).find((f) => f.getAttribute('for') === NSX.reply);
      const range = child(fb, 'body', NSX.fallback);
      if (range) {
        const start = Number(range.getAttribute('start') ?? 0);
        const end = Number(range.getAttribute('end') ?? 0);
        if (end > start) {
          replyTo.quote = cpSlice(body, start, end).replace(/^> ?/gm, '').trim();
          body = cpSlice(body, 0, start) + cpSlice(body, end);
        }
      }
    }
    return { ...base, body, reply: replyTo };
  }

  /**
   * #fasten applies a correction, retraction or reaction to the message it
   * targets, when that one is loaded, and returns it (null otherwise). Only
   * the author's corrections and retractions count; the room checks that
   * too, this keeps a stale archive honest.
   */
  #fasten(r, f) {
    if (f.fasten === 'edit') {
      const m = r.messages.find((x) => x.id === f.targetId && x.from === f.from && !x.fasten);
      if (!m || m.retracted) return null;
      m.body = f.body;
      m.edited = true;
      return m;
    }
    const m = r.messages.find((x) => x.sid === f.target);
    if (!m) return null;
    if (f.fasten === 'retract') {
      if (!f.moderated && f.from !== m.from) return null;
      m.retracted = { moderated: f.moderated, reason: f.reason };
      m.body = '';
      m.reactions = undefined;
      return m;
    }
    if (!m.reactions) m.reactions = new Map();
    if (f.reactions.length) m.reactions.set(f.from, f.reactions);
    else m.reactions.delete(f.from);
    return m;
  }

  /**
   * #merge adds archived entries (sorted by archive id) that are not known
   * yet, each in archive order, and returns how many it added.
   */
  #merge(r, items) {
    const all = items.filter((m) => m.sid && !r.sids.has(m.sid));
    for (const m of all) r.sids.add(m.sid);
    const fresh = all.filter((m) => !m.fasten);
    const fastenings = all.filter((m) => m.fasten);
    const n = this.#mergeMessages(r, fresh);
    // Corrections and reactions in the raw history apply to what they target, in archive order.
    for (const f of fastenings) this.#fasten(r, f);
    return n;
  }

  #mergeMessages(r, fresh) {
    if (fresh.length === 0) return 0;
    const firstKnown = r.messages.find((m) => m.sid)?.sid;
    if (!firstKnown || fresh.at(-1).sid < firstKnown) {
      // Older than everything (a page scrolled back to, or the first one): at the front.
      r.messages.unshift(...fresh);
      return fresh.length;
    }
    for (const m of fresh) {
      let i = r.messages.length;
      while (i > 0 && (!r.messages[i - 1].sid || r.messages[i - 1].sid > m.sid)) i--;
      r.messages.splice(i, 0, m);
    }
    return fresh.length;
  }

  // #dropOlderThan forgets the archived messages before sid (refused ones stay).
  #dropOlderThan(r, sid) {
    r.messages = r.messages.filter((m) => {
      if (!m.sid || m.sid >= sid) return true;
      r.sids.delete(m.sid);
      return false;
    });
  }

  #newestSid(r) {
    return r.messages.findLast((m) => m.sid)?.sid ?? '';
  }

  // #trim keeps a room that is not on screen to MAX_MESSAGES.
  #trim(jid, r) {
    if (jid === this.active || r.messages.length <= MAX_MESSAGES) return;
    const gone = r.messages.splice(0, r.messages.length - MAX_MESSAGES);
    for (const m of gone) if (m.sid) r.sids.delete(m.sid);
    const first = r.messages.find((m) => m.sid)?.sid;
    if (first) {
      r.history.oldest = first;
      r.history.complete = false;
    }
  }

  // ------------------------------------------------------------ incoming

  #onStanza(st) {
    if (st.localName !== 'message') return;
    const fromAttr = st.getAttribute('from') ?? '';
    let from;
    try {
      from = JID.parse(fromAttr);
    } catch {
      return;
    }
    if (from.domain !== this.service) return;
    const result = child(st, 'result', NSM.mam);
    if (result) {
      this.#onResult(st, from, result);
      return;
    }
    const type = st.getAttribute('type');
    if (type === 'error') {
      const marker = this.quiet.get(st.getAttribute('id') ?? '');
      if (marker) {
        this.quiet.delete(st.getAttribute('id'));
        // A read marker the room refused for now (its flood limiter): sent again later.
        const r = this.rooms.get(marker.jid);
        if (r && r.readSid === marker.sid && XmppError.fromStanza(st).type === 'wait') {
          r.readSid = marker.prev;
          clearTimeout(r.readRetry);
          r.readRetry = setTimeout(() => this.markRead(marker.jid, r.messages.findLast((m) => m.sid && !m.system)?.sid), MARKER_RETRY_MS);
        }
        return;
      }
      const body = child(st, 'body', NS.client);
      this.emit('error', { room: from.local ? from.bare() : '', error: XmppError.fromStanza(st), body: body ? body.textContent : null, id: st.getAttribute('id') });
      return;
    }
    if (type !== 'groupchat' || !from.local) return;
    const jid = from.bare();
    if (!from.resource && !child(st, 'retract', NSX.retract)) {
      this.#notification(jid, st);
      return;
    }
    const stamp = child(st, 'delay', NS.delay)?.getAttribute('stamp');
    const msg = this.#message(st, from, stamp ? new Date(stamp) : new Date());
    if (!msg) return;
    // Only the room's own stanza-id is its archive id (it strips others).
    msg.sid = children(st, 'stanza-id', NSM.sid).find((s) => s.getAttribute('by') === jid)?.getAttribute('id') ?? '';
    const known = this.rooms.has(jid);
    const r = this.#room(jid);
    if (msg.sid && r.sids.has(msg.sid)) return; // the archive gave it already
    if (msg.fasten) {
      if (msg.sid) r.sids.add(msg.sid);
      const target = this.#fasten(r, msg);
      if (target) this.emit('update', jid, target);
      // A correction's echo answers the send that made it.
      if (msg.fasten === 'edit' || msg.fasten === 'react' || msg.fasten === 'retract') this.emit('sent', jid, msg.id);
      return;
    }
    let index = r.messages.length;
    if (msg.sid) {
      r.sids.add(msg.sid);
      // Live messages come in archive order, but one may trail a page that
      // was read meanwhile; refused messages (no sid) stay put.
      while (index > 0 && r.messages[index - 1].sid > msg.sid) index--;
      if (r.history.synced && msg.sid > r.history.contiguous) r.history.contiguous = msg.sid;
    }
    r.messages.splice(index, 0, msg);
    this.#trim(jid, r);
    if (!known) {
      this.emit('rooms');
      this.info(jid).catch(() => {});
    }
    this.emit('message', jid, msg, r.messages.indexOf(msg));
  }

  // #roomEvent marks a loaded room as behind its archive, which holds the
  // event (with its archive id) before the notification goes out; the room
  // on screen reads it at once.
  #roomEvent(jid) {
    const r = this.rooms.get(jid);
    if (!r || !r.history.loaded) return;
    r.history.synced = false;
    if (jid === this.active) this.sync(jid).catch(() => {});
  }

  #notification(jid, st) {
    const affs = child(st, 'x', NSL.affiliations);
    const conf = child(st, 'x', NSL.configuration);
    if (affs) this.#affNotification(jid, st, affs);
    if (conf) this.#configNotification(jid, conf, st.getAttribute('id'));
  }

  #affNotification(jid, st, x) {
    const items = children(x, 'user').map((u) => ({ jid: u.textContent.trim(), affiliation: u.getAttribute('affiliation') }));
    const version = childText(x, 'version');
    const prev = childText(x, 'prev-version');
    const mine = items.find((i) => i.jid === this.me);
    if (child(st, 'x', NSL.destroy) || (mine && mine.affiliation === 'none')) {
      const r = this.rooms.get(jid);
      const reason = child(st, 'x', NSL.destroy) ? 'destroyed' : this.leaving.has(jid) ? 'left' : 'removed';
      this.rooms.delete(jid);
      if (this.last === jid) this.last = this.sortedByJid().at(-1) ?? '';
      this.count = Math.max(0, this.count - 1);
      this.emit('gone', jid, reason, r?.name ?? JID.parse(jid).local);
      this.emit('rooms');
      return;
    }
    const r = this.#room(jid);
    const id = st.getAttribute('id');
    if (this.creating.has(id)) this.creating.set(id, jid);
    if (!prev) {
      // We were added (or created the room): only our own item came.
      if (mine) r.occupants.set(this.me, mine.affiliation);
      r.version = version;
      r.loaded = false;
      r.activity = Date.now(); // a room one was just added to goes to the top of the list
      this.count++;
      this.emit('rooms');
      if (!this.creating.has(id)) this.info(jid, { force: true }).catch(() => {});
      return;
    }
    if (r.loaded && r.version && r.version !== prev) {
      // We missed a change: read the whole room again.
      this.info(jid, { force: true }).catch(() => {});
      this.#roomEvent(jid);
      return;
    }
    for (const i of items) {
      if (i.affiliation === 'none') r.occupants.delete(i.jid);
      else r.occupants.set(i.jid, i.affiliation);
    }
    r.version = version;
    this.emit('room', jid);
    this.#roomEvent(jid);
  }

  #configNotification(jid, x, id) {
    const r = this.#room(jid);
    const prev = childText(x, 'prev-version');
    const stale = r.loaded && r.version && prev && r.version !== prev;
    const changes = [];
    for (const f of x.children) {
      if (RESERVED.has(f.localName)) continue;
      if (r.config[f.localName] !== f.textContent) changes.push({ field: f.localName, value: f.textContent });
      r.config[f.localName] = f.textContent;
    }
    if (changes.length) {
      // The archive does not keep configuration changes: the line exists only in this page.
      r.messages.push({ id: id ?? '', sid: '', time: new Date(), system: 'config', changes, byMe: this.byMe(id) });
      r.activity = Date.now();
      this.emit('timeline', jid);
    }
    r.version = childText(x, 'version') || r.version;
    if (stale) this.info(jid, { force: true }).catch(() => {});
    this.emit('room', jid);
    this.emit('rooms');
  }

  sortedByJid() {
    return [...this.rooms.keys()].sort();
  }

  /** affiliation returns the user's affiliation in the room ('' when unknown). */
  affiliation(jid, user = this.me) {
    return this.rooms.get(jid)?.occupants.get(user) ?? '';
  }
}
