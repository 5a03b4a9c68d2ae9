// muclight.js: MUC Light (urn:xmpp:muclight:0) group chat on top of xmpp.js.
//
// MucLight keeps the client's view of its rooms: the list (disco#items,
// paged with RSM), each room's configuration, occupants and the messages
// received while the page is open, and updates it from the notifications
// the rooms send. It emits events; it never touches the DOM.

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

const RESERVED = new Set(['version', 'prev-version']);
const MAX_MESSAGES = 500;

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
    this.messages = [];
    this.unread = 0;
    this.listName = ''; // the name disco#items gave, until #info says more
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
 *   'message' (jid, message)              a groupchat message arrived: {id, from, body, time, own}
 *   'gone' (jid, reason, name)            the user is no longer in the room: 'left', 'removed', 'destroyed'
 *   'error' ({room, error, body, id})     a message to a room was refused
 */
export class MucLight extends Emitter {
  constructor(client, { pageSize = 10 } = {}) {
    super();
    this.client = client;
    this.pageSize = pageSize;
    this.service = '';
    this.rooms = new Map();
    this.count = 0; // the total the server reported
    this.last = ''; // last room JID of the pages loaded so far
    this.hasMore = false;
    this.leaving = new Set();
    this.creating = new Map(); // create iq id → room JID from its notification
    this.infoLoads = new Map(); // room JID → pending #info promise
    client.on('stanza', (st) => this.#onStanza(st));
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

  /** sortedRooms returns the rooms known, by name. */
  sortedRooms() {
    return [...this.rooms.values()].sort((a, b) => a.name.localeCompare(b.name) || a.jid.localeCompare(b.jid));
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
    this.client.send(el('message', { xmlns: NS.client, type: 'groupchat', to: jid, id }, el('body', {}, body)));
    return id;
  }

  /** setConfig changes configuration fields: {roomname: 'x', subject: 'y'} (only those given). */
  setConfig(jid, fields) {
    const kids = Object.entries(fields).map(([k, v]) => el(k, {}, v));
    return this.client.iq('set', jid, el('query', { xmlns: NSL.configuration }, kids));
  }

  /** setAffiliations applies [{jid, affiliation: 'owner'|'member'|'none'}]. */
  setAffiliations(jid, items) {
    const users = items.map((i) => el('user', { affiliation: i.affiliation }, i.jid));
    return this.client.iq('set', jid, el('query', { xmlns: NSL.affiliations }, users));
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
    const type = st.getAttribute('type');
    if (type === 'error') {
      const body = child(st, 'body', NS.client);
      this.emit('error', { room: from.local ? from.bare() : '', error: XmppError.fromStanza(st), body: body ? body.textContent : null, id: st.getAttribute('id') });
      return;
    }
    if (type !== 'groupchat' || !from.local) return;
    const jid = from.bare();
    if (!from.resource) {
      this.#notification(jid, st);
      return;
    }
    const body = child(st, 'body', NS.client)?.textContent ?? '';
    if (!body) return;
    const stamp = child(st, 'delay', NS.delay)?.getAttribute('stamp');
    const msg = {
      id: st.getAttribute('id') ?? '',
      from: from.resource,
      body,
      time: stamp ? new Date(stamp) : new Date(),
      own: from.resource === this.me,
    };
    const known = this.rooms.has(jid);
    const r = this.#room(jid);
    r.messages.push(msg);
    if (r.messages.length > MAX_MESSAGES) r.messages.splice(0, r.messages.length - MAX_MESSAGES);
    if (!known) {
      this.emit('rooms');
      this.info(jid).catch(() => {});
    }
    this.emit('message', jid, msg);
  }

  #notification(jid, st) {
    const affs = child(st, 'x', NSL.affiliations);
    const conf = child(st, 'x', NSL.configuration);
    if (affs) this.#affNotification(jid, st, affs);
    if (conf) this.#configNotification(jid, conf);
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
      this.count++;
      this.emit('rooms');
      if (!this.creating.has(id)) this.info(jid, { force: true }).catch(() => {});
      return;
    }
    if (r.loaded && r.version && r.version !== prev) {
      // We missed a change: read the whole room again.
      this.info(jid, { force: true }).catch(() => {});
      return;
    }
    for (const i of items) {
      if (i.affiliation === 'none') r.occupants.delete(i.jid);
      else r.occupants.set(i.jid, i.affiliation);
    }
    r.version = version;
    this.emit('room', jid);
  }

  #configNotification(jid, x) {
    const r = this.#room(jid);
    const prev = childText(x, 'prev-version');
    const stale = r.loaded && r.version && prev && r.version !== prev;
    for (const f of x.children) {
      if (!RESERVED.has(f.localName)) r.config[f.localName] = f.textContent;
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
