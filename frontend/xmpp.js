// xmpp.js: a small XMPP client over WebSocket (RFC 7395) for browsers.
//
// It speaks the framing, authenticates with SCRAM-SHA-256 (WebCrypto) or
// PLAIN, binds a resource, and then exchanges stanzas. Incoming stanzas are
// DOM elements parsed with DOMParser; outgoing ones are built with el() and
// serialised with XMLSerializer. It may know several WebSocket URLs (the
// nodes host-meta lists): a login tries them in turn, and after a dropped
// connection it logs in again, starting with the URL after the one that
// dropped, with backoff between full rounds, using the credentials it keeps
// in memory only.

export const NS = {
  framing: 'urn:ietf:params:xml:ns:xmpp-framing',
  client: 'jabber:client',
  stream: 'http://etherx.jabber.org/streams',
  streams: 'urn:ietf:params:xml:ns:xmpp-streams',
  stanzas: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  sasl: 'urn:ietf:params:xml:ns:xmpp-sasl',
  bind: 'urn:ietf:params:xml:ns:xmpp-bind',
  session: 'urn:ietf:params:xml:ns:xmpp-session',
  discoInfo: 'http://jabber.org/protocol/disco#info',
  discoItems: 'http://jabber.org/protocol/disco#items',
  rsm: 'http://jabber.org/protocol/rsm',
  delay: 'urn:xmpp:delay',
  limits: 'urn:xmpp:stream-limits:0',
  sasl2: 'urn:xmpp:sasl:2',
  bind2: 'urn:xmpp:bind:0',
  fast: 'urn:xmpp:fast:0',
  sm: 'urn:xmpp:sm:3',
};

const HT = 'HT-SHA-256-NONE';
const SM_ASK_EVERY = 10;
const SM_ASK_MS = 1000;

const HOST_META_REL = 'urn:xmpp:alt-connections:websocket';

// ---------------------------------------------------------------- JIDs

/** A parsed JID; bare() drops the resource. */
export class JID {
  constructor(local, domain, resource = '') {
    this.local = local;
    this.domain = domain;
    this.resource = resource;
  }

  /** Parses "local@domain/resource"; throws on an obviously bad address. */
  static parse(s) {
    s = String(s ?? '').trim();
    let resource = '';
    const slash = s.indexOf('/');
    if (slash >= 0) {
      resource = s.slice(slash + 1);
      s = s.slice(0, slash);
    }
    let local = '';
    const at = s.indexOf('@');
    if (at >= 0) {
      local = s.slice(0, at);
      s = s.slice(at + 1);
    }
    const domain = s.toLowerCase();
    if (!domain || (at >= 0 && !local) || (slash >= 0 && !resource) || /[\s@]/.test(domain)) {
      throw new Error(`"${String(arguments[0])}" is not a valid address`);
    }
    return new JID(local.toLowerCase(), domain, resource);
  }

  bare() {
    return this.local ? `${this.local}@${this.domain}` : this.domain;
  }

  toString() {
    return this.resource ? `${this.bare()}/${this.resource}` : this.bare();
  }
}

// ---------------------------------------------------------------- XML

const xmlDoc = document.implementation.createDocument(null, null, null);

/**
 * el describes an element: el('iq', {type: 'get', xmlns: NS.client}, el('query', {xmlns: NS.discoInfo})).
 * A child without xmlns inherits its parent's namespace; strings become text.
 * Attributes whose value is undefined or null are left out.
 */
export function el(name, attrs = {}, ...children) {
  return { name, attrs, children: children.flat().filter((c) => c !== undefined && c !== null && c !== false) };
}

/** toElement turns an el() description into a DOM element. */
export function toElement(desc, parentNS = NS.client) {
  const ns = desc.attrs.xmlns ?? parentNS;
  const e = xmlDoc.createElementNS(ns, desc.name);
  for (const [k, v] of Object.entries(desc.attrs)) {
    if (k === 'xmlns' || v === undefined || v === null) continue;
    if (k.startsWith('xml:')) e.setAttributeNS('http://www.w3.org/XML/1998/namespace', k, String(v));
    else e.setAttribute(k, String(v));
  }
  for (const c of desc.children) {
    if (typeof c === 'string' || typeof c === 'number') e.appendChild(xmlDoc.createTextNode(String(c)));
    else if (c instanceof Node) e.appendChild(xmlDoc.importNode(c, true));
    else e.appendChild(toElement(c, ns));
  }
  return e;
}

const serializer = new XMLSerializer();

/** serialize renders an el() description or a DOM element as XML text. */
export function serialize(x) {
  return serializer.serializeToString(x instanceof Node ? x : toElement(x));
}

const parser = new DOMParser();

/** parse reads one XML element; it throws when the text is not well-formed. */
export function parse(text) {
  const doc = parser.parseFromString(text, 'text/xml');
  const root = doc.documentElement;
  if (!root || root.getElementsByTagName('parsererror').length > 0 || root.localName === 'parsererror') {
    throw new Error('not well-formed XML from the server');
  }
  return root;
}

/** child returns the first child element with that local name (and namespace, when given). */
export function child(e, name, ns) {
  if (!e) return null;
  for (const c of e.children) {
    if (c.localName === name && (ns === undefined || c.namespaceURI === ns)) return c;
  }
  return null;
}

/** children returns every child element with that local name (and namespace). */
export function children(e, name, ns) {
  if (!e) return [];
  return [...e.children].filter((c) => (name === undefined || c.localName === name) && (ns === undefined || c.namespaceURI === ns));
}

/** text returns the text of a child element, or '' when there is none. */
export function childText(e, name, ns) {
  return child(e, name, ns)?.textContent ?? '';
}

// ---------------------------------------------------------------- errors

/**
 * XmppError is a stanza or stream error (or a local failure described the
 * same way): condition is the RFC 6120 condition, type its error type.
 */
export class XmppError extends Error {
  constructor(condition, text = '', type = 'cancel', stanza = null) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = 'XmppError';
    this.condition = condition;
    this.text = text;
    this.type = type;
    this.stanza = stanza;
  }

  /** fromStanza reads the <error/> child of an error stanza. */
  static fromStanza(st) {
    const err = child(st, 'error');
    if (!err) return new XmppError('undefined-condition', '', 'cancel', st);
    let condition = 'undefined-condition';
    for (const c of err.children) {
      if (c.namespaceURI === NS.stanzas && c.localName !== 'text') {
        condition = c.localName;
        break;
      }
    }
    return new XmppError(condition, childText(err, 'text', NS.stanzas), err.getAttribute('type') || 'cancel', st);
  }
}

// ---------------------------------------------------------------- events

/** Emitter is a minimal event emitter: on() returns a function that unsubscribes. */
export class Emitter {
  #handlers = new Map();

  on(event, fn) {
    if (!this.#handlers.has(event)) this.#handlers.set(event, new Set());
    this.#handlers.get(event).add(fn);
    return () => this.#handlers.get(event)?.delete(fn);
  }

  emit(event, ...args) {
    for (const fn of [...(this.#handlers.get(event) ?? [])]) {
      try {
        fn(...args);
      } catch (e) {
        console.error(`handler for ${event} failed`, e);
      }
    }
  }
}

// ---------------------------------------------------------------- helpers

const enc = new TextEncoder();
const dec = new TextDecoder();

function randomBytes(n) {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** randomId returns a random identifier for stanza ids and resources. */
export function randomId(n = 9) {
  return b64(randomBytes(n)).replace(/[+/=]/g, '');
}

function b64(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function unb64(s) {
  const bin = atob(s.trim());
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * discoverWebSocketURLs reads XEP-0156 host-meta.json of origin and returns
 * every WebSocket URL it names, in its order (the serving node first, then
 * the other nodes); [] when it names none.
 */
export async function discoverWebSocketURLs(origin = location.origin) {
  const res = await fetch(new URL('/.well-known/host-meta.json', origin), { headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`host-meta.json: HTTP ${res.status}`);
  const jrd = await res.json();
  const urls = [];
  for (const l of jrd.links ?? []) {
    if (l.rel === HOST_META_REL && /^wss?:\/\//.test(l.href ?? '') && !urls.includes(l.href)) urls.push(l.href);
  }
  return urls;
}

/** discoverWebSocketURL is the first URL of discoverWebSocketURLs; null when there is none. */
export async function discoverWebSocketURL(origin = location.origin) {
  return (await discoverWebSocketURLs(origin))[0] ?? null;
}

// ---------------------------------------------------------------- SASL

/** canScram reports whether WebCrypto is available (only in secure contexts: https or localhost). */
function canScram() {
  return !!globalThis.crypto?.subtle;
}

async function hmac(key, data) {
  const k = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, typeof data === 'string' ? enc.encode(data) : data));
}

async function sha256(data) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', data));
}

/** htProof is the Hashed Token mechanism's HMAC-SHA-256(token, label) without channel binding (XEP-0484). */
async function htProof(token, label) {
  return hmac(enc.encode(token), label);
}

function saslName(s) {
  return s.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

function parseScram(msg) {
  const out = {};
  for (const part of msg.split(',')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

/** Scram runs the client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel binding. */
class Scram {
  constructor(user, password) {
    this.user = user;
    this.password = password.normalize('NFKC');
    this.nonce = randomId(18);
    this.clientFirstBare = `n=${saslName(user)},r=${this.nonce}`;
  }

  initial() {
    return `n,,${this.clientFirstBare}`;
  }

  async respond(serverFirst) {
    const f = parseScram(serverFirst);
    if (f.e) throw new XmppError('not-authorized', `server refused: ${f.e}`, 'auth');
    const iterations = Number(f.i);
    if (!f.r?.startsWith(this.nonce) || f.r.length <= this.nonce.length || !f.s || !Number.isInteger(iterations)) {
      throw new XmppError('malformed-request', 'the server sent an invalid SCRAM challenge', 'auth');
    }
    if (iterations < 4096) throw new XmppError('not-authorized', 'the server asked for too few PBKDF2 iterations', 'auth');
    const pw = await crypto.subtle.importKey('raw', enc.encode(this.password), 'PBKDF2', false, ['deriveBits']);
    const salted = new Uint8Array(
      await crypto.subtle.deriveBits({ name: 'PBKDF2', salt: unb64(f.s), iterations, hash: 'SHA-256' }, pw, 256),
    );
    const clientKey = await hmac(salted, 'Client Key');
    const storedKey = await sha256(clientKey);
    const finalBare = `c=biws,r=${f.r}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${finalBare}`;
    const clientSig = await hmac(storedKey, authMessage);
    const proof = clientKey.map((b, i) => b ^ clientSig[i]);
    this.serverSignature = b64(await hmac(await hmac(salted, 'Server Key'), authMessage));
    return `${finalBare},p=${b64(proof)}`;
  }

  verify(serverFinal) {
    const f = parseScram(serverFinal);
    if (f.e) throw new XmppError('not-authorized', `server refused: ${f.e}`, 'auth');
    if (!this.serverSignature || f.v !== this.serverSignature) {
      throw new XmppError('not-authorized', 'the server could not prove it knows the password (bad SCRAM signature)', 'auth');
    }
  }
}

// ---------------------------------------------------------------- client

const OPEN_TIMEOUT_MS = 15000;

/**
 * Client is one XMPP account's connection. Events:
 *   'stanza' (element)            every incoming message, presence and iq not consumed as an iq reply
 *   'status' (state, detail)      'connecting' ({url}), 'online' ({url}), 'reconnecting' ({delay, attempt}), 'offline' (error)
 *   'streamerror' (XmppError)     a stream error from the server
 *   'online' ({resumed})          bound and ready (again, after a reconnect: resumed true)
 *   'token' ({token, expiry})     the server issued a FAST token (XEP-0484), first or rotated
 */
export class Client extends Emitter {
  #ws = null;
  #creds = null; // {jid, password, urls, index, next, redirect}: memory only, dropped at close()
  #pending = new Map(); // iq id → {resolve, reject, timer}
  #waiter = null; // resolves the next element during the handshake
  #queue = []; // elements that arrived before the handshake asked for them
  #closing = false;
  #retryTimer = null;
  #attempt = 0;

  constructor({ iqTimeout = 20000, maxBackoff = 30000, userAgent = null } = {}) {
    super();
    this.iqTimeout = iqTimeout;
    this.maxBackoff = maxBackoff;
    this.jid = null; // full JID once bound
    this.url = null; // the WebSocket URL in use, or being tried
    this.state = 'offline';
    this.resource = `web-${randomId(6)}`;
    this.bound = false;
    // XEP-0388 user agent: FAST ties a token to it, so it is kept with the token.
    this.userAgent = userAgent ?? { id: crypto.randomUUID?.() ?? randomId(16), device: navigator.userAgent.slice(0, 60) };
    this.maxBytes = 0; // the server's largest message in bytes (XEP-0478), 0 when it does not say
  }

  /** stanzaBytes is the size of a stanza as it would go on the wire, to compare with maxBytes. */
  static stanzaBytes(stanza) {
    return enc.encode(serialize(stanza)).length;
  }

  /**
   * connect logs in and resolves when the session is bound. urls (or one
   * url) are tried in order until one gives a session; when every one
   * fails, or the login is refused, it rejects and does not retry. Later
   * drops do retry.
   */
  async connect({ url, urls, jid, password = '', token = '', wantToken = false, invalidate = false }) {
    const j = JID.parse(jid);
    if (!j.local) throw new XmppError('jid-malformed', 'the address needs a user name (user@domain)', 'modify');
    const list = [...new Set([urls ?? url ?? []].flat().filter(Boolean))];
    if (list.length === 0) throw new XmppError('bad-request', 'no WebSocket URL to connect to', 'modify');
    this.#closing = false;
    this.lastStreamError = null;
    this.#creds = { urls: list, index: 0, next: 0, redirect: undefined, jid: j, password, token, wantToken, invalidate };
    if (j.resource) this.resource = j.resource;
    try {
      await this.#round();
    } catch (e) {
      this.#creds = null;
      this.#teardown();
      this.#setState('offline', e);
      throw e;
    }
    this.#attempt = 0;
    this.#goOnline(false);
  }

  /**
   * invalidateToken ends a FAST token for good (XEP-0484 §3.6): a login with
   * it that asks the server to forget it, then the stream closes.
   */
  static async invalidateToken({ urls, jid, token, userAgent }) {
    const c = new Client({ userAgent });
    await c.connect({ urls, jid, token, invalidate: true });
    await c.close();
  }

  /** urls are the WebSocket URLs this client tries, in their order. */
  get urls() {
    return [...(this.#creds?.urls ?? [])];
  }

  #goOnline(resumed) {
    this.#setState('online', { url: this.url });
    // kept: the stream itself was resumed (XEP-0198), nothing was missed.
    this.emit('online', { resumed, kept: resumed && this.streamResumed });
    const early = this.#queue;
    this.#queue = [];
    for (const e of early) this.#dispatch(e);
  }

  /** close ends the stream with <close/> and forgets the credentials. */
  async close() {
    this.#closing = true;
    this.#creds = null;
    this.#sm = null; // a closed stream is not resumed
    clearTimeout(this.#retryTimer);
    const ws = this.#ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      const closed = new Promise((resolve) => {
        ws.addEventListener('close', resolve, { once: true });
        setTimeout(resolve, 2000);
      });
      try {
        ws.send(serialize(el('close', { xmlns: NS.framing })));
      } catch {
        // already gone
      }
      await closed;
    }
    this.#teardown();
    this.#setState('offline');
  }

  /** send writes one stanza (an el() description or an element). */
  send(stanza) {
    if (!this.#ws || this.#ws.readyState !== WebSocket.OPEN || this.state !== 'online') {
      throw new XmppError('remote-server-timeout', 'not connected; wait until the connection is back', 'wait');
    }
    const sm = this.#sm;
    if (sm) {
      // Kept until the server acknowledges it, to send again after a resume.
      const text = serialize(stanza);
      sm.unacked.push(text);
      this.#ws.send(text);
      // One ack request a second at most, or every SM_ASK_EVERY stanzas: each
      // is a WebSocket message, and the server paces those per session.
      if (sm.unacked.length % SM_ASK_EVERY === 0) this.#smAsk(sm);
      else if (!sm.askPending) {
        sm.askPending = true;
        setTimeout(() => this.#smAsk(sm), SM_ASK_MS);
      }
      return;
    }
    this.#sendRaw(stanza);
  }

  // ------------------------------------------------------------ stream management (XEP-0198)

  // #sm is the stream-management state of the session: its id, the
  // stanzas received (h), those sent and not yet acknowledged. It outlives
  // a dropped socket so that the next connection can resume the session.
  #sm = null;
  streamResumed = false;

  // #smEnable asks for a resumable session after binding, when offered.
  async #smEnable(features) {
    this.#sm = null;
    this.smOffered = !!child(features, 'sm', NS.sm);
    if (!this.smOffered) return;
    this.#sendRaw(el('enable', { xmlns: NS.sm, resume: 'true' }));
    const r = await this.#next();
    if (r.namespaceURI !== NS.sm || r.localName !== 'enabled') return; // <failed/>: go on without
    const resumable = r.getAttribute('resume') === 'true' || r.getAttribute('resume') === '1';
    this.#sm = { id: r.getAttribute('id') ?? '', resumable, h: 0, acked: 0, unacked: [], askPending: false };
  }

  // #smResume tries to take the dropped session back; false when the server has let it go.
  async #smResume(features) {
    const sm = this.#sm;
    if (!sm?.resumable || !sm.id || !child(features, 'sm', NS.sm)) return false;
    this.#sendRaw(el('resume', { xmlns: NS.sm, previd: sm.id, h: String(sm.h) }));
    const r = await this.#next();
    if (r.namespaceURI !== NS.sm || r.localName !== 'resumed') {
      this.#sm = null;
      return false;
    }
    this.#smAcked(Number(r.getAttribute('h')));
    // What the server never got goes again, in order.
    const again = sm.unacked;
    for (const text of again) this.#ws.send(text);
    if (again.length) this.#ws.send(serialize(el('r', { xmlns: NS.sm })));
    return true;
  }

  #smAsk(sm) {
    sm.askPending = false;
    if (this.#sm === sm && sm.unacked.length && this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(serialize(el('r', { xmlns: NS.sm })));
  }

  #smAcked(h) {
    const sm = this.#sm;
    if (!sm || !Number.isInteger(h)) return;
    const n = (h - sm.acked + 2 ** 32) % 2 ** 32;
    sm.unacked.splice(0, Math.min(n, sm.unacked.length));
    sm.acked = h;
  }

  // #smElement handles <r/> and <a/>; true when e was one of them.
  #smElement(e) {
    if (e.namespaceURI !== NS.sm) return false;
    const sm = this.#sm;
    if (e.localName === 'r' && sm) this.#ws?.send(serialize(el('a', { xmlns: NS.sm, h: String(sm.h) })));
    else if (e.localName === 'a') this.#smAcked(Number(e.getAttribute('h')));
    return e.localName === 'r' || e.localName === 'a';
  }

  /**
   * iq sends an iq get or set and resolves with the result element, or
   * rejects with an XmppError (an error reply, a timeout, a lost connection).
   */
  iq(type, to, payload, { timeout = this.iqTimeout } = {}) {
    const id = randomId();
    const stanza = el('iq', { xmlns: NS.client, type, to, id }, payload);
    return this.#iqRaw(id, stanza, timeout);
  }

  /** iqWithId is iq() with a caller-chosen id (MUC Light notifications carry it). */
  iqWithId(id, type, to, payload, { timeout = this.iqTimeout } = {}) {
    return this.#iqRaw(id, el('iq', { xmlns: NS.client, type, to, id }, payload), timeout);
  }

  #iqRaw(id, stanza, timeout) {
    return new Promise((resolve, reject) => {
      try {
        this.send(stanza);
      } catch (e) {
        reject(e);
        return;
      }
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new XmppError('remote-server-timeout', `no answer within ${Math.round(timeout / 1000)} s`, 'wait'));
      }, timeout);
      this.#pending.set(id, { resolve, reject, timer, to: stanza.attrs.to });
    });
  }

  #setState(state, detail) {
    this.state = state;
    this.emit('status', state, detail);
  }

  /**
   * #round tries each URL once, from creds.next on (or from the one a
   * see-other-uri named), and resolves at the first bound session. A
   * refused login ends the round: every node of the service would refuse it.
   */
  async #round() {
    const creds = this.#creds;
    if (creds.redirect !== undefined) {
      creds.next = creds.redirect;
      creds.redirect = undefined;
    }
    const n = creds.urls.length;
    const order = Array.from({ length: n }, (_, k) => creds.urls[(creds.next + k) % n]);
    let last;
    for (const url of order) {
      this.lastStreamError = null;
      this.url = url;
      creds.index = creds.urls.indexOf(url);
      this.#setState('connecting', { url });
      try {
        await this.#session(url);
        return;
      } catch (e) {
        this.#teardown();
        last = e;
        if (this.#closing || this.#creds !== creds || (e instanceof XmppError && e.type === 'auth')) throw e;
      }
    }
    throw last;
  }

  // One full login on url: WebSocket, <open/>, SASL, restart, bind.
  async #session(url) {
    const { jid, password } = this.#creds;
    const ws = new WebSocket(url, 'xmpp');
    this.#ws = ws;
    this.#queue = [];
    ws.addEventListener('message', (ev) => this.#onMessage(ws, ev));
    ws.addEventListener('close', (ev) => this.#onClose(ws, ev));
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new XmppError('remote-server-timeout', `cannot reach ${url}`, 'wait')), OPEN_TIMEOUT_MS);
      ws.addEventListener('open', () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
      ws.addEventListener('close', () => {
        clearTimeout(t);
        reject(new XmppError('remote-server-not-found', `cannot connect to ${url}`, 'cancel'));
      }, { once: true });
    });
    if (ws.protocol !== 'xmpp') throw new XmppError('bad-format', 'the server did not accept the xmpp subprotocol');

    let features = await this.#openStream(jid.domain);
    this.#readLimits(features);
    const sasl2 = child(features, 'authentication', NS.sasl2);
    if (sasl2 && canScram()) {
      // One round trip: authenticate, then resume the dropped session or
      // bind a new one with stream management enabled inline.
      this.streamResumed = false;
      await this.#sasl2(sasl2, jid, password);
      if (this.streamResumed || this.bound) return;
      features = this.#sasl2Features;
      await this.#bind(features);
      await this.#smEnable(features);
      return;
    }
    const mechs = children(child(features, 'mechanisms', NS.sasl), 'mechanism').map((m) => m.textContent.trim());
    if (!password) throw new XmppError('not-authorized', 'this server offers no token login; sign in with your password', 'auth');
    if (mechs.includes('SCRAM-SHA-256') && canScram()) {
      await this.#scram(jid, password);
    } else if (mechs.includes('PLAIN')) {
      await this.#plain(jid, password);
    } else {
      throw new XmppError('invalid-mechanism', canScram()
        ? `no supported login method (server offers ${mechs.join(', ') || 'none'})`
        : 'SCRAM needs a secure page (https or localhost) and the server does not offer PLAIN here', 'auth');
    }

    features = await this.#openStream(jid.domain);
    this.#readLimits(features);
    this.streamResumed = await this.#smResume(features);
    if (this.streamResumed) return;
    await this.#bind(features);
    await this.#smEnable(features);
  }

  // #readLimits takes XEP-0478's largest message the server takes; a longer one would end the stream.
  #readLimits(features) {
    const maxBytes = Number(childText(child(features, 'limits', NS.limits), 'max-bytes', NS.limits));
    if (Number.isInteger(maxBytes) && maxBytes > 0) this.maxBytes = maxBytes;
  }

  #sasl2Features = null;

  /**
   * #sasl2 logs in with XEP-0388 SASL2: with the FAST token when there is
   * one (XEP-0484 HT-SHA-256-NONE), else SCRAM-SHA-256 asking for a token;
   * binding in the same round trip (XEP-0386 Bind2). A token the server
   * gives (first, or rotated) is emitted as 'token'; the password never
   * leaves memory.
   */
  async #sasl2(auth, jid, password) {
    const mechs = children(auth, 'mechanism').map((m) => m.textContent.trim());
    const fast = child(child(auth, 'inline', NS.sasl2), 'fast', NS.fast);
    const fastMechs = children(fast, 'mechanism').map((m) => m.textContent.trim());
    const token = this.#creds.token;
    const useToken = !!token && fastMechs.includes(HT);
    if (!useToken && !password) throw new XmppError('not-authorized', 'the saved sign-in is not accepted here; sign in with your password', 'auth');
    if (!useToken && !mechs.includes('SCRAM-SHA-256')) throw new XmppError('invalid-mechanism', `no supported login method (server offers ${mechs.join(', ') || 'none'})`, 'auth');
    const sc = useToken ? null : new Scram(jid.local, password);
    const initial = useToken
      ? new Uint8Array([...enc.encode(`${jid.local}\u0000`), ...(await htProof(token, 'Initiator'))])
      : enc.encode(sc.initial());
    const ua = this.userAgent;
    const inline = child(auth, 'inline', NS.sasl2);
    const sm = this.#sm;
    const resume = sm?.resumable && sm.id && child(inline, 'sm', NS.sm)
      ? el('resume', { xmlns: NS.sm, previd: sm.id, h: String(sm.h) }) : null;
    const bindFeats = children(child(child(inline, 'bind', NS.bind2), 'inline', NS.bind2), 'feature').map((f) => f.getAttribute('var'));
    const enable = bindFeats.includes(NS.sm) ? el('enable', { xmlns: NS.sm, resume: 'true' }) : null;
    this.#sendRaw(el('authenticate', { xmlns: NS.sasl2, mechanism: useToken ? HT : 'SCRAM-SHA-256' },
      el('initial-response', {}, b64(initial)),
      el('user-agent', { id: ua.id }, el('software', {}, 'xmppws web client'), el('device', {}, ua.device)),
      resume,
      el('bind', { xmlns: NS.bind2 }, el('tag', {}, 'web'), enable),
      fast && fastMechs.includes(HT) && !useToken && this.#creds.wantToken ? el('request-token', { xmlns: NS.fast, mechanism: HT }) : null,
      useToken ? el('fast', { xmlns: NS.fast, invalidate: this.#creds.invalidate ? 'true' : undefined }) : null));
    let reply = await this.#next();
    if (reply.namespaceURI === NS.sasl2 && reply.localName === 'challenge' && sc) {
      const final = await sc.respond(dec.decode(unb64(reply.textContent)));
      this.#sendRaw(el('response', { xmlns: NS.sasl2 }, b64(enc.encode(final))));
      reply = await this.#next();
    }
    if (reply.namespaceURI === NS.sasl2 && reply.localName === 'failure') {
      const cond = [...reply.children].find((c) => c.namespaceURI === NS.sasl)?.localName ?? 'not-authorized';
      const text = childText(reply, 'text', NS.sasl2) || (cond === 'not-authorized' ? (useToken ? 'the saved sign-in was refused; sign in with your password' : 'wrong address or password') : '');
      if (useToken && password && cond === 'not-authorized') {
        // A node that does not know the token (another deployment's store,
        // or it was revoked): the password this tab still holds logs in
        // on the same stream, and asks for a token of this node's.
        this.#creds.token = '';
        return this.#sasl2(auth, jid, password);
      }
      const err = new XmppError(cond, text, cond === 'temporary-auth-failure' ? 'wait' : 'auth');
      err.token = useToken;
      throw err;
    }
    if (reply.namespaceURI !== NS.sasl2 || reply.localName !== 'success') throw new XmppError('bad-format', `unexpected <${reply.localName}/> during login`);
    const extra = childText(reply, 'additional-data', NS.sasl2);
    if (sc) sc.verify(dec.decode(unb64(extra || '')));
    else if (b64(await htProof(token, 'Responder')) !== extra.trim()) {
      throw new XmppError('not-authorized', 'the server could not prove it knows the token', 'auth');
    }
    const authz = childText(reply, 'authorization-identifier', NS.sasl2).trim();
    const bound = child(reply, 'bound', NS.bind2);
    const resumed = child(reply, 'resumed', NS.sm);
    this.bound = !!bound || !!resumed;
    this.jid = authz ? JID.parse(authz) : jid;
    if (this.bound) this.resource = this.jid.resource;
    if (resumed) {
      // The session came back: what the server missed goes again, in order,
      // after the features that follow <success/>.
      this.smOffered = true;
      this.streamResumed = true;
      this.#smAcked(Number(resumed.getAttribute('h')));
    } else {
      this.streamResumed = false;
      this.#sm = null;
      const enabled = child(bound, 'enabled', NS.sm);
      this.smOffered = !!enable;
      if (enabled) {
        const resumable = enabled.getAttribute('resume') === 'true' || enabled.getAttribute('resume') === '1';
        this.#sm = { id: enabled.getAttribute('id') ?? '', resumable, h: 0, acked: 0, unacked: [], askPending: false };
      }
    }
    const t = child(reply, 'token', NS.fast);
    if (t?.getAttribute('token')) {
      this.#creds.token = t.getAttribute('token');
      this.emit('token', { jid: this.jid.bare(), token: this.#creds.token, expiry: t.getAttribute('expiry') ?? '' });
    }
    this.#sasl2Features = await this.#next();
    this.#readLimits(this.#sasl2Features);
    if (resumed) {
      const again = this.#sm.unacked;
      for (const text of again) this.#ws.send(text);
      if (again.length) this.#ws.send(serialize(el('r', { xmlns: NS.sm })));
    }
  }

  // #bind binds a resource the RFC 6120 way.
  async #bind(features) {
    if (!child(features, 'bind', NS.bind)) throw new XmppError('bad-format', 'the server offered no resource binding');
    this.bound = false;
    const res = await this.#handshakeIq(el('iq', { xmlns: NS.client, type: 'set', id: randomId() },
      el('bind', { xmlns: NS.bind }, el('resource', {}, this.resource))));
    this.jid = JID.parse(childText(child(res, 'bind', NS.bind), 'jid', NS.bind));
    this.resource = this.jid.resource;
    const sess = child(features, 'session', NS.session);
    if (sess && !child(sess, 'optional', NS.session)) {
      await this.#handshakeIq(el('iq', { xmlns: NS.client, type: 'set', id: randomId() }, el('session', { xmlns: NS.session })));
    }
  }

  // #sendRaw writes during the handshake, when send() is not yet allowed.
  #sendRaw(desc) {
    if (!this.#ws || this.#ws.readyState !== WebSocket.OPEN) throw new XmppError('connection-lost', 'the connection closed during login', 'wait');
    this.#ws.send(serialize(desc));
  }

  async #openStream(domain) {
    this.#sendRaw(el('open', { xmlns: NS.framing, to: domain, version: '1.0' }));
    const open = await this.#next();
    if (open.localName !== 'open' || open.namespaceURI !== NS.framing) throw new XmppError('bad-format', `expected <open/>, got <${open.localName}/>`);
    const features = await this.#next();
    if (features.localName !== 'features' || features.namespaceURI !== NS.stream) throw new XmppError('bad-format', 'expected stream features');
    return features;
  }

  async #scram(jid, password) {
    const sc = new Scram(jid.local, password);
    this.#sendRaw(el('auth', { xmlns: NS.sasl, mechanism: 'SCRAM-SHA-256' }, b64(enc.encode(sc.initial()))));
    let reply = await this.#next();
    this.#saslCheck(reply, 'challenge');
    const final = await sc.respond(dec.decode(unb64(reply.textContent)));
    this.#sendRaw(el('response', { xmlns: NS.sasl }, b64(enc.encode(final))));
    reply = await this.#next();
    this.#saslCheck(reply, 'success');
    sc.verify(dec.decode(unb64(reply.textContent || '')));
  }

  async #plain(jid, password) {
    const msg = enc.encode(`\u0000${jid.local}\u0000${password}`);
    this.#sendRaw(el('auth', { xmlns: NS.sasl, mechanism: 'PLAIN' }, b64(msg)));
    this.#saslCheck(await this.#next(), 'success');
  }

  #saslCheck(reply, want) {
    if (reply.namespaceURI === NS.sasl && reply.localName === want) return;
    if (reply.namespaceURI === NS.sasl && reply.localName === 'failure') {
      const cond = [...reply.children].find((c) => c.localName !== 'text')?.localName ?? 'not-authorized';
      const text = childText(reply, 'text', NS.sasl) || (cond === 'not-authorized' ? 'wrong address or password' : '');
      // A temporary failure (the account store is down) is worth retrying; the rest is not.
      throw new XmppError(cond, text, cond === 'temporary-auth-failure' ? 'wait' : 'auth');
    }
    throw new XmppError('bad-format', `unexpected <${reply.localName}/> during login`);
  }

  async #handshakeIq(desc) {
    this.#sendRaw(desc);
    const res = await this.#next();
    if (res.localName !== 'iq' || res.getAttribute('id') !== desc.attrs.id) throw new XmppError('bad-format', 'unexpected reply during binding');
    if (res.getAttribute('type') === 'error') throw XmppError.fromStanza(res);
    return res;
  }

  // #next resolves with the next element during the handshake.
  #next() {
    if (this.#queue.length) return Promise.resolve(this.#queue.shift());
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.#waiter = null;
        reject(new XmppError('remote-server-timeout', 'the server stopped answering during login', 'wait'));
      }, OPEN_TIMEOUT_MS);
      this.#waiter = {
        resolve: (e) => {
          clearTimeout(t);
          resolve(e);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      };
    });
  }

  #onMessage(ws, ev) {
    if (ws !== this.#ws || typeof ev.data !== 'string' || ev.data.trim() === '') return;
    let e;
    try {
      e = parse(ev.data);
    } catch (err) {
      console.error(err, ev.data);
      return;
    }
    if (e.namespaceURI === NS.stream && e.localName === 'error') {
      const cond = [...e.children].find((c) => c.namespaceURI === NS.streams && c.localName !== 'text')?.localName ?? 'undefined-condition';
      const err = new XmppError(cond, childText(e, 'text', NS.streams), 'cancel');
      err.stream = true;
      this.lastStreamError = err;
      this.emit('streamerror', err);
      this.#waiter?.reject(err);
      this.#waiter = null;
      return;
    }
    if (e.namespaceURI === NS.framing && e.localName === 'close') {
      const other = e.getAttribute('see-other-uri');
      const creds = this.#creds;
      if (other && creds && /^wss?:\/\//.test(other)) {
        // The next round starts there; it joins the list, after the URL that sent it.
        if (!creds.urls.includes(other)) creds.urls.splice(creds.index + 1, 0, other);
        creds.redirect = creds.urls.indexOf(other);
      }
      if (!this.#closing) {
        try {
          ws.send(serialize(el('close', { xmlns: NS.framing })));
        } catch {
          // the socket is going anyway
        }
      }
      const err = this.lastStreamError ?? new XmppError('connection-closed', 'the server closed the stream', 'wait');
      this.#waiter?.reject(err);
      this.#waiter = null;
      return;
    }
    if (this.#smElement(e)) return;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = null;
      w.resolve(e);
      return;
    }
    if (this.#sm && e.namespaceURI === NS.client && ['message', 'presence', 'iq'].includes(e.localName)) this.#sm.h = (this.#sm.h + 1) % 2 ** 32;
    if (this.state !== 'online') {
      this.#queue.push(e);
      return;
    }
    this.#dispatch(e);
  }

  // #dispatch routes a stanza once the session is online: iq replies to
  // their promise, requests to #answerIq, everything else to listeners.
  #dispatch(e) {
    if (e.localName === 'iq') {
      const type = e.getAttribute('type');
      const p = this.#pending.get(e.getAttribute('id'));
      if (p && (type === 'result' || type === 'error')) {
        this.#pending.delete(e.getAttribute('id'));
        clearTimeout(p.timer);
        if (type === 'result') p.resolve(e);
        else p.reject(XmppError.fromStanza(e));
        return;
      }
      if (type === 'get' || type === 'set') {
        this.#answerIq(e);
        return;
      }
    }
    this.emit('stanza', e);
  }

  // #answerIq answers requests to the client: ping, and service-unavailable for the rest.
  #answerIq(e) {
    const id = e.getAttribute('id');
    const from = e.getAttribute('from') ?? undefined;
    const payload = e.firstElementChild;
    if (payload?.localName === 'ping' && payload.namespaceURI === 'urn:xmpp:ping') {
      this.send(el('iq', { xmlns: NS.client, type: 'result', id, to: from }));
      return;
    }
    this.send(el('iq', { xmlns: NS.client, type: 'error', id, to: from }, payload,
      el('error', { type: 'cancel' }, el('service-unavailable', { xmlns: NS.stanzas }))));
  }

  #onClose(ws, ev) {
    if (ws !== this.#ws) return;
    const err = this.lastStreamError ?? new XmppError('connection-lost', `the connection closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`, 'wait');
    this.#waiter?.reject(err);
    this.#waiter = null;
    this.#failPending(err);
    const wasOnline = this.state === 'online';
    this.#ws = null;
    if (this.#closing || !this.#creds) return;
    if (wasOnline) {
      // This node is gone or going: the next round starts with the next one,
      // unless the session may be resumed, which only its own node can do.
      this.#creds.next = this.#sm?.resumable ? this.#creds.index : (this.#creds.index + 1) % this.#creds.urls.length;
      const se = this.lastStreamError;
      if (se && (se.condition === 'conflict' || se.condition === 'not-authorized')) {
        // Another login replaced this one, or the account went away: retrying would fight it.
        this.#creds = null;
        this.#setState('offline', se);
        return;
      }
      this.#scheduleReconnect();
    }
  }

  #failPending(err) {
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.#pending.delete(id);
    }
  }

  #scheduleReconnect() {
    const base = Math.min(this.maxBackoff, 1000 * 2 ** this.#attempt);
    const delay = Math.round(base / 2 + (Math.random() * base) / 2);
    this.#attempt++;
    this.#setState('reconnecting', { delay, attempt: this.#attempt });
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#reconnect(), delay);
  }

  /** reconnectNow skips the remaining backoff delay (a "retry now" button). */
  reconnectNow() {
    if (this.state !== 'reconnecting') return;
    clearTimeout(this.#retryTimer);
    this.#reconnect();
  }

  async #reconnect() {
    if (this.#closing || !this.#creds) return;
    try {
      await this.#round();
    } catch (e) {
      if (this.#closing || !this.#creds) return;
      if (e instanceof XmppError && e.type === 'auth') {
        this.#creds = null;
        this.#setState('offline', e);
        return;
      }
      this.#scheduleReconnect();
      return;
    }
    this.#attempt = 0;
    this.#goOnline(true);
  }

  #teardown() {
    const ws = this.#ws;
    this.#ws = null;
    this.#waiter = null;
    this.#failPending(new XmppError('connection-lost', 'the connection closed', 'wait'));
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
  }
}
