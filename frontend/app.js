// app.js: the screens of the web client (sign in, rooms, a room, dialogs)
// wired to xmpp.js and muclight.js. All state lives in MucLight; this file
// renders it and turns clicks and forms into requests.

import { Client, JID, NS, XmppError, discoverWebSocketURLs, el } from './xmpp.js';
import { MucLight, NSX } from './muclight.js';

const $ = (sel, root = document) => root.querySelector(sel);

/** h builds a DOM element: h('li', {class: 'x', dataset: {testid: 'y'}, onclick}, 'text', child). */
function h(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) {
    if (k === undefined || k === null || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayTimeFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** shortTime is the time of day for today, with the date for older messages. */
function shortTime(t) {
  const now = new Date();
  if (t.toDateString() === now.toDateString()) return timeFmt.format(t);
  return t.getFullYear() === now.getFullYear() ? dayTimeFmt.format(t) : dateTimeFmt.format(t);
}

function localPart(jid) {
  const at = jid.indexOf('@');
  return at > 0 ? jid.slice(0, at) : jid;
}

function hue(s) {
  let x = 0;
  for (const c of s) x = (x * 31 + c.codePointAt(0)) % 360;
  return x;
}

function avatar(jid, label = localPart(jid)) {
  const a = h('span', { class: 'avatar', 'aria-hidden': 'true' }, [...label.trim()][0]?.toUpperCase() ?? '?');
  a.style.setProperty('--hue', String(hue(jid))); // CSSOM, which the page's CSP allows
  return a;
}

/**
 * parseJIDs splits "a@x, b@x c@x" into bare JIDs; it throws on one that is
 * not an address, and on one of another domain: this server does not
 * federate, so such an account can never receive the room's messages.
 */
function parseJIDs(text, domain = ui.client?.jid?.domain) {
  return text
    .split(/[\s,;]+/)
    .filter(Boolean)
    .map((s) => {
      let j;
      try {
        j = JID.parse(s);
      } catch {
        throw new XmppError('jid-malformed', `"${s}" is not a user address (name@${domain ?? 'domain'})`, 'modify');
      }
      if (!j.local) throw new XmppError('jid-malformed', `"${s}" is not a user address (name@${domain ?? 'domain'})`, 'modify');
      if (domain && j.domain !== domain) {
        throw new XmppError('remote-server-not-found', `${j.bare()} is not an account of this server: only addresses ending in @${domain} can be added`, 'modify');
      }
      return j.bare();
    });
}

/**
 * unknownAccounts asks the server, for each address, whether such an account
 * exists (disco#info to the bare JID, which the server answers for the
 * account or refuses with service-unavailable) and returns those it has no
 * account for. A lookup that fails otherwise (a timeout) counts as known: the
 * warning is a help, not a gate.
 */
async function unknownAccounts(jids) {
  const answers = await Promise.all(jids.map(async (jid) => {
    try {
      await ui.client.iq('get', jid, el('query', { xmlns: NS.discoInfo }));
      return null;
    } catch (e) {
      return e instanceof XmppError && e.condition === 'service-unavailable' ? jid : null;
    }
  }));
  return answers.filter(Boolean);
}

/** confirmUnknown warns about addresses without an account; true: go on. */
async function confirmUnknown(jids) {
  const unknown = await unknownAccounts(jids);
  if (unknown.length === 0) return true;
  const list = unknown.join(', ');
  return confirmDialog(
    unknown.length === 1 ? `There is no account ${list}` : `There are no accounts ${list}`,
    'Check the spelling. You can add the address anyway: it will receive the room\'s messages once such an account is created.',
    'Add anyway');
}

// ------------------------------------------------------------------ state

const ui = {
  client: null,
  muc: null,
  current: '', // the open room's JID
  errorSeq: 0,
};

const app = $('#app');
const els = {
  session: $('#session'),
  status: $('#status'),
  statusLabel: $('#status-label'),
  statusServer: $('#status-server'),
  retryNow: $('#retry-now'),
  me: $('#me'),
  errors: $('#errors'),
  announcer: $('#announcer'),
  signin: $('#signin'),
  signinForm: $('#signin-form'),
  signinError: $('#signin-error'),
  signinSubmit: $('#signin-submit'),
  chat: $('#chat'),
  roomList: $('#room-list'),
  roomsEmpty: $('#rooms-empty'),
  roomsMore: $('#rooms-more'),
  roomsNoMatch: $('#rooms-nomatch'),
  roomSearch: $('#room-search'),
  roomPlaceholder: $('#room-placeholder'),
  roomBody: $('#room-body'),
  roomTitle: $('#room-title'),
  roomSubject: $('#room-subject'),
  roomDestroy: $('#room-destroy'),
  membersToggle: $('#members-toggle'),
  members: $('#members'),
  memberList: $('#member-list'),
  memberFilter: $('#member-filter'),
  memberFilterBox: $('#member-filter-box'),
  membersMore: $('#members-more'),
  membersCount: $('#members-count'),
  addMember: $('#add-member'),
  messages: $('#messages'),
  composer: $('#composer'),
  composerInput: $('#composer-input'),
  composerCount: $('#composer-count'),
  composeContext: $('#compose-context'),
  composeContextText: $('#compose-context-text'),
  notifyToggle: $('#notify-toggle'),
  createDialog: $('#create-dialog'),
  editDialog: $('#edit-dialog'),
  blockingDialog: $('#blocking-dialog'),
  confirmDialog: $('#confirm-dialog'),
};

// ------------------------------------------------------------------ errors

// What an XMPP condition means to someone chatting, in a sentence. The
// condition and the server's own text stay available under "Details".
const PLAIN = {
  'policy-violation': { wait: 'The room is busy: too many messages at once. Wait a moment, then send again.', other: 'The server does not allow that here.' },
  'resource-constraint': 'The server is too busy right now. Try again in a moment.',
  'not-authorized': 'You are not allowed to do that.',
  forbidden: 'You are not allowed to do that in this room.',
  'not-allowed': 'That is not allowed here.',
  'item-not-found': 'That no longer exists (it may have been deleted, or you were removed).',
  'not-acceptable': 'The server did not accept that.',
  'bad-request': 'The server did not understand the request.',
  'jid-malformed': 'That is not a valid address; addresses look like name@example.org.',
  'service-unavailable': 'That service is not available on this server.',
  'feature-not-implemented': 'This server does not support that.',
  'remote-server-timeout': 'The server did not answer in time. Check your connection and try again.',
  'remote-server-not-found': 'That server cannot be reached (this server does not talk to other servers).',
  'connection-lost': 'The connection dropped. It comes back by itself.',
  'connection-closed': 'The server closed the connection. It comes back by itself.',
  'internal-server-error': 'Something went wrong on the server. Try again later.',
  conflict: 'You signed in somewhere else, which ended this session.',
  'system-shutdown': 'The server is restarting.',
  'see-other-host': 'The server moved this connection elsewhere.',
  'undefined-condition': 'Something went wrong.',
  'temporary-auth-failure': 'Signing in is not possible right now. Try again in a moment.',
  'too-long': 'That message is too long for the server.',
};

/**
 * plainText says what went wrong in plain language: the sentence for the
 * condition of a server's error; for an error this page made itself, its
 * own text (it was written for people already).
 */
function plainText(e) {
  const fromServer = !!(e.stanza || e.stream);
  const p = PLAIN[e.condition];
  const sentence = typeof p === 'object' ? (e.type === 'wait' ? p.wait : p.other) : p;
  if (!fromServer && e.text) return /[.!?]$/.test(e.text) ? e.text : `${e.text[0].toUpperCase()}${e.text.slice(1)}.`;
  return sentence ?? (e.text || 'Something went wrong.');
}

const QUOTE_MAX = 80;

/** quote shortens a message for an error card or a notification: one line, at most QUOTE_MAX characters. */
function quote(body) {
  const line = String(body).replace(/\s+/g, ' ').trim();
  return line.length > QUOTE_MAX ? `${line.slice(0, QUOTE_MAX - 1)}…` : line;
}

/** asError turns anything thrown into an XmppError. */
function asError(err) {
  return err instanceof XmppError ? err : new XmppError('client-error', err?.message ?? String(err), 'cancel');
}

/** errorDetails is the technical side of an error, folded away: condition, type and the server's text. */
function errorDetails(e) {
  return h('details', { class: 'error-details' },
    h('summary', {}, 'Details'),
    h('strong', { dataset: { testid: 'error-condition' } }, e.condition),
    h('span', { class: 'error-type', dataset: { testid: 'error-type' } }, ` (${e.type})`),
    e.text ? [': ', h('span', { dataset: { testid: 'error-text' } }, e.text)] : null);
}

/**
 * showError puts an error card in the error region: what went wrong in
 * plain words, what it was about, the technical details folded away, and a
 * Resend button when a refused message can be sent again. Cards with the
 * same group key merge into one with a count, so a burst of identical
 * refusals stays readable; context and resendLabel may then be functions
 * of that count. clearErrors removes cards by group once their cause is gone.
 */
function showError(err, { context = '', resend = null, resendLabel = 'Resend', group = '' } = {}) {
  const e = asError(err);
  console.warn(e);
  const text = (v, n) => (typeof v === 'function' ? v(n) : v);
  let card = group ? [...els.errors.children].find((c) => c.dataset.group === group) : null;
  if (card) {
    const n = Number(card.dataset.count) + 1;
    card.dataset.count = String(n);
    card.querySelector('[data-testid=error-count]').textContent = `×${n}`;
    card.querySelector('[data-testid=error-count]').hidden = false;
    const ctx = card.querySelector('[data-testid=error-context]');
    if (ctx) ctx.textContent = text(context, n);
    const b = card.querySelector('[data-testid=error-resend]');
    if (b) b.textContent = text(resendLabel, n);
    els.errors.append(card); // the newest goes last
    return card;
  }
  const id = `error-${++ui.errorSeq}`;
  card = h('div', { class: `error type-${e.type}`, id, role: 'group', 'aria-labelledby': `${id}-title`, dataset: { testid: 'error', condition: e.condition, type: e.type, group, count: '1' } },
    h('p', { class: 'error-title', id: `${id}-title` },
      h('span', { class: 'error-message', dataset: { testid: 'error-message' } }, plainText(e)),
      ' ', h('span', { class: 'error-count', dataset: { testid: 'error-count' }, hidden: true }, '')),
    context ? h('p', { class: 'error-context', dataset: { testid: 'error-context' } }, text(context, 1)) : null,
    errorDetails(e),
    h('div', { class: 'error-actions' },
      resend ? h('button', { type: 'button', class: 'primary small', dataset: { testid: 'error-resend' }, onclick: () => { card.remove(); resend(); } }, text(resendLabel, 1)) : null,
      h('button', { type: 'button', class: 'small', 'aria-label': 'Dismiss this error', dataset: { testid: 'error-dismiss' }, onclick: () => card.remove() }, 'Dismiss')));
  els.errors.append(card);
  while (els.errors.children.length > 4) els.errors.firstElementChild.remove();
  return card;
}

/** clearErrors removes the cards whose group starts with prefix: what they were about is over. */
function clearErrors(prefix) {
  for (const c of [...els.errors.children]) if (c.dataset.group?.startsWith(prefix)) c.remove();
}

/** showNotice puts a non-error message (you were removed, a user was skipped) in the same region. */
function showNotice(text) {
  const card = h('div', { class: 'notice', role: 'status', dataset: { testid: 'notice' } },
    h('p', { class: 'notice-text' }, text),
    h('div', { class: 'error-actions' },
      h('button', { type: 'button', class: 'small', 'aria-label': 'Dismiss this notice', dataset: { testid: 'notice-dismiss' }, onclick: () => card.remove() }, 'Dismiss')));
  els.errors.append(card);
  while (els.errors.children.length > 4) els.errors.firstElementChild.remove();
}

/** reportSkipped tells the user which of the users they asked to add the room does not have. */
function reportSkipped(room, asked) {
  const r = ui.muc.rooms.get(room);
  const missing = asked.filter((j) => !r?.occupants.has(j));
  if (missing.length) {
    showNotice(`${missing.join(', ')} could not be added to “${r?.name ?? room}”: they block you or the room, or are in as many rooms as the server allows.`);
  }
}

function announce(text) {
  els.announcer.textContent = '';
  // A fresh text node makes screen readers read it even when it repeats.
  requestAnimationFrame(() => { els.announcer.textContent = text; });
}

/** formError shows an error inside a dialog's form (and nowhere else). */
function formError(form, err) {
  const p = form.querySelector('.form-error');
  if (!err) {
    p.hidden = true;
    p.textContent = '';
    return;
  }
  const e = asError(err);
  p.textContent = '';
  p.append(h('span', { class: 'form-error-text' }, plainText(e)), e.stanza || e.stream ? errorDetails(e) : null);
  p.dataset.condition = e.condition;
  p.hidden = false;
}

/** busy disables a form's buttons while its request runs. */
async function busy(form, fn) {
  const buttons = [...form.querySelectorAll('button')];
  buttons.forEach((b) => { b.disabled = true; });
  form.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    form.removeAttribute('aria-busy');
  }
}

// ------------------------------------------------------------------ sign in

let discovered = null; // the URLs host-meta lists, once read

/**
 * websocketURLs is what the client tries, in order: the URL typed in the
 * advanced field alone, else every URL host-meta lists (this node, then
 * the others) and this page's own endpoint last when it is not listed.
 */
async function websocketURLs() {
  const override = $('#signin-url').value.trim();
  if (override) return [override];
  if (!discovered?.length) {
    try {
      discovered = await discoverWebSocketURLs();
    } catch (e) {
      console.warn('host-meta discovery failed', e);
    }
  }
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const own = `${scheme}//${location.host}/xmpp-websocket`;
  const urls = [...(discovered ?? [])];
  if (!urls.includes(own)) urls.push(own);
  return urls;
}

els.signinForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  formError(els.signinForm, null);
  const jid = $('#signin-jid').value.trim();
  const password = $('#signin-password').value;
  if (!jid || !password) {
    formError(els.signinForm, new XmppError('bad-request', 'enter your address and password', 'modify'));
    (jid ? $('#signin-password') : $('#signin-jid')).focus();
    return;
  }
  await busy(els.signinForm, async () => {
    els.signinSubmit.textContent = 'Signing in…';
    try {
      const urls = await websocketURLs();
      const client = new Client();
      wireClient(client);
      await client.connect({ urls, jid, password, wantToken: true });
      $('#signin-password').value = '';
      await startChat(client);
    } catch (e) {
      formError(els.signinForm, e);
      $('#signin-password').focus();
    } finally {
      els.signinSubmit.textContent = 'Sign in';
    }
  });
});

// ------------------------------------------------------------------ saved sign-in

// What this browser keeps to stay signed in across reloads: the address,
// the FAST token (XEP-0484) and the user agent it is tied to. Never the
// password. Sign out invalidates the token on the server and forgets it.
const SESSION_KEY = 'xmppws.session';

function savedSession() {
  try {
    const s = JSON.parse(localStorage.getItem(SESSION_KEY) ?? 'null');
    if (!s?.jid || !s?.token || !s?.ua?.id) return null;
    if (s.expiry && Date.parse(s.expiry) < Date.now()) return null;
    return s;
  } catch {
    return null;
  }
}

function saveToken(client, { jid, token, expiry }) {
  localStorage.setItem(SESSION_KEY, JSON.stringify({ jid, token, expiry, ua: client.userAgent }));
}

/** resumeSaved signs in with the saved token at page load; a refused token is forgotten. */
async function resumeSaved() {
  const saved = savedSession();
  // "/?signin" shows the form even with a saved sign-in (to sign in as someone else).
  if (!saved || new URLSearchParams(location.search).has('signin')) return;
  $('#signin-jid').value = saved.jid;
  await busy(els.signinForm, async () => {
    els.signinSubmit.textContent = 'Signing in…';
    try {
      const urls = await websocketURLs();
      const client = new Client({ userAgent: saved.ua });
      wireClient(client);
      await client.connect({ urls, jid: saved.jid, token: saved.token });
      await startChat(client);
    } catch (e) {
      if (e instanceof XmppError && e.type === 'auth') {
        localStorage.removeItem(SESSION_KEY);
        formError(els.signinForm, new XmppError(e.condition, 'Your saved sign-in has ended; sign in with your password', 'auth'));
      } else {
        formError(els.signinForm, e);
      }
      $('#signin-password').focus();
    } finally {
      els.signinSubmit.textContent = 'Sign in';
    }
  });
}

function wireClient(client) {
  client.on('token', (t) => saveToken(client, t));
  client.on('status', (state, detail) => {
    if (client !== ui.client && ui.client) return;
    const labels = { online: 'Online', connecting: 'Connecting…', reconnecting: 'Reconnecting…', offline: 'Offline' };
    let label = labels[state] ?? state;
    if (state === 'reconnecting' && detail?.delay) label = `Connection lost, retrying in ${Math.ceil(detail.delay / 1000)} s`;
    els.statusLabel.textContent = label;
    els.status.title = client.url && state !== 'reconnecting' && state !== 'offline' ? `${label} ${client.url}` : label;
    els.status.dataset.state = state;
    showServer(client, state);
    els.retryNow.hidden = state !== 'reconnecting';
    if (state === 'offline' && detail && ui.client === client) {
      // The session ended for good (replaced by another login, account gone).
      showError(detail, { context: 'You were signed out.' });
      signOut({ quiet: true });
    }
  });
  client.on('streamerror', (e) => {
    if (ui.client === client) showError(e, { group: `stream|${e.condition}`, context: 'The server ended the connection.' });
  });
}

/**
 * showServer names the node the client is on (or trying) next to the
 * connection state, when it knows more than one: that is when it can move.
 */
function showServer(client, state) {
  const url = state === 'online' || state === 'connecting' ? client.url : null;
  let host = '';
  try {
    host = url ? new URL(url).host : '';
  } catch {
    host = url ?? '';
  }
  els.statusServer.textContent = host ? `· ${host}` : '';
  els.statusServer.dataset.url = url ?? '';
  els.statusServer.hidden = !host || client.urls.length < 2;
}

async function startChat(client) {
  ui.client = client;
  const muc = new MucLight(client);
  ui.muc = muc;
  els.me.textContent = client.jid.bare();
  els.statusLabel.textContent = 'Online';
  els.status.dataset.state = 'online';
  showServer(client, 'online');
  app.dataset.screen = 'chat';
  els.signin.hidden = true;
  els.chat.hidden = false;
  els.session.hidden = false;

  muc.on('rooms', renderRoomList);
  muc.on('room', (jid) => {
    if (jid === ui.current) renderRoomHead();
  });
  muc.on('message', onMessage);
  muc.on('history', onHistory);
  muc.on('gone', onGone);
  muc.on('error', onMessageError);
  muc.on('timeline', onTimeline);
  muc.on('update', onUpdate);
  client.on('online', ({ resumed, kept }) => {
    if (!resumed || ui.client !== client) return;
    els.status.dataset.stream = kept ? 'resumed' : 'new';
    // Connection errors are over once the connection is back.
    clearErrors('stream|');
    pumpOutbox();
    if (kept) return; // the stream was resumed: nothing to read again
    refreshAll().catch((e) => showError(e, { context: 'Reloading the rooms after reconnecting failed.' }));
  });

  await muc.discover();
  renderRoomList();
  try {
    await muc.loadRooms();
    await muc.loadUnread();
  } catch (e) {
    showError(e, { group: 'rooms|list', context: 'Listing your rooms failed.' });
  }
  $('#new-room').focus();
}

async function refreshAll() {
  await ui.muc.loadRooms();
  await ui.muc.loadUnread().catch((e) => console.warn('reading unread counts failed', e));
  // The open room reads what it missed while the connection was down.
  if (ui.current && ui.muc.rooms.has(ui.current)) await Promise.all([ui.muc.info(ui.current), syncHistory(ui.current)]);
}

async function signOut({ quiet = false, forget = !quiet } = {}) {
  const client = ui.client;
  ui.client = null;
  ui.muc = null;
  ui.current = '';
  outbox.items = [];
  if (client) await client.close().catch(() => {});
  const saved = savedSession();
  if (forget && saved) {
    // Signing out ends the saved sign-in on the server too, not only here.
    localStorage.removeItem(SESSION_KEY);
    try {
      await Client.invalidateToken({ urls: client?.urls.length ? client.urls : await websocketURLs(), jid: saved.jid, token: saved.token, userAgent: saved.ua });
    } catch (e) {
      console.warn('ending the saved sign-in on the server failed', e);
    }
  } else if (quiet && client && saved) {
    localStorage.removeItem(SESSION_KEY); // the session ended for good (replaced, account gone)
  }
  els.chat.hidden = true;
  els.session.hidden = true;
  els.signin.hidden = false;
  app.dataset.screen = 'signin';
  els.roomList.replaceChildren();
  els.messages.replaceChildren();
  if (!quiet) els.errors.replaceChildren();
  showRoom('');
  $('#signin-password').focus();
}

$('#signout').addEventListener('click', () => signOut());
els.retryNow.addEventListener('click', () => ui.client?.reconnectNow());

// ------------------------------------------------------------------ room list

function renderRoomList() {
  const muc = ui.muc;
  if (!muc) return;
  const q = els.roomSearch.value.trim().toLowerCase();
  const all = muc.sortedRooms();
  const rooms = q ? all.filter((r) => r.name.toLowerCase().includes(q) || r.jid.includes(q)) : all;
  els.roomList.replaceChildren(...rooms.map((r) => {
    const last = r.messages.findLast((m) => !m.failed && !m.system && !m.pending && !m.retracted);
    const said = last ? { from: last.from, body: last.body } : r.preview;
    const preview = said ? `${said.from === muc.me ? 'You' : localPart(said.from)}: ${said.body}` : r.subject;
    return h('li', {},
      h('button', {
        type: 'button',
        class: 'room-item',
        'aria-current': r.jid === ui.current ? 'true' : null,
        dataset: { testid: 'room-item', room: r.jid },
        onclick: () => openRoom(r.jid),
      },
      avatar(r.jid, r.name),
      h('span', { class: 'room-item-text' },
        h('span', { class: 'room-item-name', dataset: { testid: 'room-item-name' } }, r.name),
        preview ? h('span', { class: 'room-item-preview', dataset: { testid: 'room-item-preview' } }, preview) : null),
      r.unread ? h('span', { class: 'badge', dataset: { testid: 'room-unread' }, 'aria-label': `${r.unread} unread` }, String(r.unread)) : null));
  }));
  els.roomsEmpty.hidden = all.length > 0;
  els.roomsNoMatch.hidden = !q || rooms.length > 0 || muc.hasMore;
  els.roomsMore.hidden = !muc.hasMore;
  updateTitle();
  for (const r of rooms) if (!r.peeked && !r.messages.length) muc.peek(r.jid);
}

/** updateTitle puts the unread total in the tab's title, before the open room's name. */
function updateTitle() {
  const muc = ui.muc;
  const r = muc?.rooms.get(ui.current);
  let total = 0;
  for (const x of muc?.rooms.values() ?? []) total += x.unread;
  const base = r ? `${r.name} · xmppws chat` : 'xmppws chat';
  document.title = total ? `(${total}) ${base}` : base;
}

let loadingRooms = null;

/** loadMoreRooms reads the next page of rooms; one page at a time. */
function loadMoreRooms() {
  if (loadingRooms || !ui.muc?.hasMore) return loadingRooms ?? Promise.resolve();
  els.roomsMore.disabled = true;
  loadingRooms = ui.muc.loadRooms({ more: true })
    .then(() => clearErrors('rooms|'))
    .catch((e) => showError(e, { group: 'rooms|more', context: 'Loading more rooms failed.' }))
    .finally(() => {
      loadingRooms = null;
      els.roomsMore.disabled = false;
      // Still in view (a tall screen): go on until the list fills it.
      if (roomsMoreVisible) loadMoreRooms();
    });
  return loadingRooms;
}

els.roomsMore.addEventListener('click', () => loadMoreRooms());

// The next page loads when the end of the list scrolls into view.
let roomsMoreVisible = false;
new IntersectionObserver((entries) => {
  roomsMoreVisible = entries.some((e) => e.isIntersecting);
  if (roomsMoreVisible) loadMoreRooms();
}, { rootMargin: '0px 0px 200px 0px' }).observe(els.roomsMore);

// A search covers every room: the pages not read yet load first.
els.roomSearch.addEventListener('input', async () => {
  renderRoomList();
  if (!els.roomSearch.value.trim()) return;
  for (let i = 0; i < 100 && ui.muc?.hasMore && els.roomSearch.value.trim(); i++) await loadMoreRooms();
  renderRoomList();
});
els.roomSearch.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape') {
    els.roomSearch.value = '';
    renderRoomList();
  } else if (ev.key === 'Enter') {
    els.roomList.querySelector('[data-testid=room-item]')?.click();
  }
});

// ------------------------------------------------------------------ a room

function showRoom(jid) {
  if (jid !== ui.current) flushRead();
  ui.current = jid;
  if (ui.muc) ui.muc.active = jid;
  els.roomPlaceholder.hidden = !!jid;
  els.roomBody.hidden = !jid;
  els.chat.dataset.view = jid ? 'room' : 'list';
}

async function openRoom(jid) {
  const muc = ui.muc;
  const r = muc.rooms.get(jid);
  if (!r) return;
  if (jid !== ui.current) {
    $('#add-member-jid').value = '';
    setMembersOpen(false);
  }
  showRoom(jid);
  if (ui.compose && ui.compose.room !== jid) endCompose();
  r.unread = 0;
  renderRoomList();
  renderRoomHead();
  renderMessages('bottom');
  els.composerInput.focus();
  const history = syncHistory(jid);
  try {
    await muc.info(jid);
  } catch (e) {
    showError(e, { context: `Reading “${r.name}” failed.` });
  }
  await history;
  if (jid === ui.current) markRead();
}

/** syncHistory loads a room's latest history (or what it missed); a failure shows at the top of the conversation. */
async function syncHistory(jid) {
  try {
    await ui.muc?.sync(jid);
  } catch (e) {
    console.warn('loading the history failed', e);
  }
}

function renderRoomHead() {
  const muc = ui.muc;
  const r = muc?.rooms.get(ui.current);
  if (!r) return;
  els.roomTitle.textContent = r.name;
  els.roomSubject.textContent = r.subject;
  els.roomSubject.hidden = !r.subject;
  updateTitle();
  const mine = muc.affiliation(r.jid);
  const owner = mine === 'owner';
  els.roomDestroy.hidden = !owner;
  els.addMember.hidden = !owner;
  els.membersCount.textContent = r.loaded ? `(${r.occupants.size})` : '';
  els.membersToggle.textContent = r.loaded ? `Members (${r.occupants.size})` : 'Members';
  renderMembers();
}

// The member list draws this many at a time: a room of thousands stays
// quick to open; more come as the end of the list scrolls into view.
const MEMBER_PAGE = 100;
const members = { room: '', shown: MEMBER_PAGE };

/** renderMembers draws the open room's members: the owner first, then by address, filtered by the find box. */
function renderMembers() {
  const muc = ui.muc;
  const r = muc?.rooms.get(ui.current);
  if (!r) return;
  if (members.room !== r.jid) {
    members.room = r.jid;
    members.shown = MEMBER_PAGE;
    els.memberFilter.value = '';
  }
  const owner = muc.affiliation(r.jid) === 'owner';
  const q = els.memberFilter.value.trim().toLowerCase();
  els.memberFilterBox.hidden = r.occupants.size <= 20 && !q;
  let occupants = [...r.occupants];
  if (q) occupants = occupants.filter(([jid]) => jid.includes(q));
  occupants.sort(([a, affA], [b, affB]) => (affA === 'owner' ? -1 : 0) - (affB === 'owner' ? -1 : 0) || (a < b ? -1 : a > b ? 1 : 0));
  const shown = occupants.slice(0, members.shown);
  els.memberList.replaceChildren(...shown.map(([jid, aff]) => h('li', { class: 'member', dataset: { testid: 'member', jid, affiliation: aff } },
    avatar(jid),
    h('span', { class: 'member-name' },
      h('span', { class: 'member-jid', title: jid }, jid === muc.me ? `${jid} (you)` : jid),
      h('span', { class: `aff aff-${aff}`, dataset: { testid: 'member-affiliation' } }, aff)),
    owner && jid !== muc.me ? h('span', { class: 'member-actions' },
      aff === 'member' ? h('button', { type: 'button', class: 'small', dataset: { testid: 'member-promote' }, 'aria-label': `Make ${jid} the owner`, onclick: () => promote(r.jid, jid) }, 'Make owner') : null,
      h('button', { type: 'button', class: 'small danger', dataset: { testid: 'member-remove' }, 'aria-label': `Remove ${jid}`, onclick: () => removeMember(r.jid, jid) }, 'Remove')) : null)));
  els.membersMore.hidden = shown.length >= occupants.length;
  els.membersMore.textContent = `More members (${occupants.length - shown.length} not shown)`;
}

function moreMembers() {
  if (els.membersMore.hidden) return;
  members.shown += MEMBER_PAGE;
  renderMembers();
}

els.membersMore.addEventListener('click', moreMembers);
els.memberFilter.addEventListener('input', () => {
  members.shown = MEMBER_PAGE;
  renderMembers();
});
new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) moreMembers();
}, { rootMargin: '0px 0px 300px 0px' }).observe(els.membersMore);

const GROUP_MS = 5 * 60 * 1000;

/** follows reports whether m continues prev's run (same sender, within five minutes): it then shows no name or avatar. */
function follows(prev, m) {
  return !!prev && prev.from === m.from && m.time - prev.time < GROUP_MS;
}

/**
 * systemText describes an archived affiliation change. The archive keeps
 * only the new affiliations, so the wording stays true to that: a member
 * in the same change as a new owner may have been the owner before.
 */
function systemText(m, creation) {
  const me = ui.muc?.me;
  const who = (jid) => (jid === me ? 'you' : jid);
  const list = (jids) => (jids.length > 1 ? `${jids.slice(0, -1).join(', ')} and ${jids.at(-1)}` : jids[0] ?? '');
  const cap = (s) => (s === 'you' || s.startsWith('you ') ? `Y${s.slice(1)}` : s); // addresses keep their case
  if (m.system === 'config') {
    return m.changes.map(({ field, value }) => {
      if (field === 'roomname') return m.byMe ? `You renamed the room to “${value}”` : `The room was renamed to “${value}”`;
      if (field === 'subject') {
        if (!value) return m.byMe ? 'You cleared the subject' : 'The subject was cleared';
        return m.byMe ? `You changed the subject to “${value}”` : `The subject is now “${value}”`;
      }
      return m.byMe ? `You changed ${field} to “${value}”` : `${field} is now “${value}”`;
    }).join('; ');
  }
  if (creation) {
    const owner = m.items.find((i) => i.affiliation === 'owner');
    const others = m.items.filter((i) => i !== owner).map((i) => who(i.jid));
    if (!owner) return `Room created with ${list(others)}`;
    return others.length ? `${cap(who(owner.jid))} created the room with ${list(others)}` : `${cap(who(owner.jid))} created the room`;
  }
  // The archive keeps the new affiliations, not who changed them: this
  // page knows it only for the changes it asked for itself.
  const byMe = ui.muc?.byMe(m.id);
  const newOwner = m.items.some((i) => i.affiliation === 'owner');
  const rank = { owner: 0, member: 1, none: 2 };
  const sorted = [...m.items].sort((a, b) => (rank[a.affiliation] ?? 3) - (rank[b.affiliation] ?? 3));
  const added = sorted.filter((i) => i.affiliation === 'member' && !newOwner && i.jid !== me).map((i) => i.jid);
  const removed = sorted.filter((i) => i.affiliation === 'none' && i.jid !== me).map((i) => i.jid);
  const parts = [];
  for (const i of sorted) {
    const w = who(i.jid);
    if (i.affiliation === 'owner') parts.push(`${w} ${w === 'you' ? 'are' : 'is'} now the owner`);
    else if (i.affiliation === 'member' && (newOwner || i.jid === me)) parts.push(newOwner ? `${w} ${w === 'you' ? 'are' : 'is'} now a member` : `${w} joined`);
    else if (i.affiliation === 'none' && i.jid === me) parts.push('you left');
  }
  if (added.length) parts.push(byMe ? `you added ${list(added)}` : `${list(added)} ${added.length > 1 ? 'were' : 'was'} added`);
  if (removed.length) parts.push(byMe ? `you removed ${list(removed)}` : `${list(removed)} left or ${removed.length > 1 ? 'were' : 'was'} removed`);
  return parts.map((t, i) => (i === 0 ? cap(t) : t)).join(', ');
}

function systemItem(m, creation) {
  return h('li', { class: 'system', dataset: { testid: 'system-line', kind: m.system, ...(m.sid ? { sid: m.sid } : {}) } },
    h('span', { class: 'system-text' }, systemText(m, creation)),
    ' ',
    h('time', { datetime: m.time.toISOString(), title: dateTimeFmt.format(m.time) }, shortTime(m.time)));
}

// A web address in a message: http(s) only; trailing punctuation is the sentence's.
const LINK_RE = /\bhttps?:\/\/[^\s<>"]+/gi;

/**
 * linkify turns a message body into text nodes and links. Every piece of
 * the body goes in as text (never as HTML); a link's address is checked
 * to be http or https and opens in a new tab without a referrer.
 */
function linkify(text) {
  const out = [];
  let at = 0;
  for (const match of text.matchAll(LINK_RE)) {
    let url = match[0].replace(/[.,;:!?'’)\]]+$/, '');
    // Keep a closing parenthesis that closes one inside the address (Wikipedia links).
    if (match[0].length > url.length && match[0][url.length] === ')' && url.includes('(')) url += ')';
    let href = '';
    try {
      const u = new URL(url);
      if (u.protocol === 'http:' || u.protocol === 'https:') href = u.href;
    } catch {
      // not an address after all: stays text
    }
    if (!href) continue;
    if (match.index > at) out.push(text.slice(at, match.index));
    out.push(h('a', { href, target: '_blank', rel: 'noopener noreferrer nofollow', dataset: { testid: 'message-link' } }, url));
    at = match.index + url.length;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

function messageItem(m, prev) {
  const f = m.failed;
  const testid = f ? 'message-failed' : m.pending ? 'message-pending' : 'message';
  const cls = `message${m.own ? ' own' : ''}${f ? ' failed' : ''}${m.pending ? ' pending' : ''}${follows(prev, m) ? ' cont' : ''}`;
  return h('li', { class: cls, dataset: { testid, from: m.from, id: m.id, ...(m.sid ? { sid: m.sid } : {}) } },
    avatar(m.from),
    h('div', { class: 'bubble' },
      h('p', { class: 'meta' },
        h('span', { class: 'sender', dataset: { testid: 'message-sender' }, title: m.from }, m.own ? 'You' : localPart(m.from)),
        ' ',
        h('time', { datetime: m.time.toISOString(), title: dateTimeFmt.format(m.time) }, shortTime(m.time))),
      m.reply ? replyQuote(m) : null,
      m.retracted
        ? h('p', { class: 'body retracted', dataset: { testid: 'message-retracted' } }, m.retracted.moderated
          ? `Removed by the owner${m.retracted.reason ? `: ${m.retracted.reason}` : ''}`
          : (m.own ? 'You retracted this message' : 'This message was retracted'))
        : h('p', { class: 'body', dataset: { testid: 'message-body' } }, linkify(m.body), m.edited ? h('span', { class: 'edited', dataset: { testid: 'message-edited' } }, ' (edited)') : null),
      reactionChips(m),
      messageActions(m),
      m.pending ? h('p', { class: 'failed-note' },
        h('span', { class: 'pending-why', dataset: { testid: 'pending-why' } }, m.pending === 'offline' ? 'Waiting for the connection; sent when it is back' : 'Sending…'),
        h('button', { type: 'button', class: 'small', dataset: { testid: 'message-discard' }, 'aria-label': 'Do not send this message', onclick: () => discardPending(m) }, 'Discard')) : null,
      f ? h('p', { class: 'failed-note' },
        h('span', { class: 'failed-why', title: f.text, dataset: { testid: 'failed-why' } }, `Not delivered: ${plainText(f)}`),
        f.type === 'wait' ? h('button', { type: 'button', class: 'small', dataset: { testid: 'message-resend' }, onclick: () => resendFailed(ui.current, (x) => x === m) }, 'Resend') : null,
        f.type !== 'wait' ? h('button', { type: 'button', class: 'small', dataset: { testid: 'message-edit' }, onclick: () => editFailed(ui.current, m) }, 'Edit') : null,
        h('button', { type: 'button', class: 'small', dataset: { testid: 'message-discard' }, 'aria-label': 'Discard this message', onclick: () => dropFailed(ui.current, (x) => x === m) }, 'Discard')) : null));
}

/** replyQuote shows what a reply answers: the message as it is now when it is loaded, else the quote it carried. */
function replyQuote(m) {
  const r = ui.muc?.rooms.get(ui.current);
  const target = m.reply.sid ? r?.messages.find((x) => x.sid === m.reply.sid) : null;
  const author = target?.from ?? m.reply.to.split('/').slice(1).join('/');
  const text = target ? (target.retracted ? '(retracted)' : target.body) : m.reply.quote;
  return h('blockquote', { class: 'reply-quote', dataset: { testid: 'message-quote', sid: m.reply.sid } },
    h('span', { class: 'reply-author' }, author === ui.muc?.me ? 'You' : localPart(author || '?')), ' ', quote(text || '…'));
}

const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉'];

/** reactionChips shows each reaction with how many gave it; pressing one adds or takes back one's own. */
function reactionChips(m) {
  if (!m.reactions?.size || m.retracted) return null;
  const counts = new Map();
  for (const [who, list] of m.reactions) {
    for (const e of new Set(list)) {
      if (!counts.has(e)) counts.set(e, []);
      counts.get(e).push(who);
    }
  }
  const me = ui.muc?.me;
  return h('p', { class: 'reactions', dataset: { testid: 'reactions' } }, [...counts].map(([e, who]) => h('button', {
    type: 'button',
    class: `small chip${who.includes(me) ? ' mine' : ''}`,
    title: who.map((j) => (j === me ? 'you' : j)).join(', '),
    'aria-pressed': String(who.includes(me)),
    dataset: { testid: 'reaction', emoji: e, count: String(who.length) },
    onclick: () => toggleReaction(m, e),
  }, `${e} ${who.length}`)));
}

/** messageActions are the buttons of a delivered message: reply, react, and edit, retract or remove where allowed. */
function messageActions(m) {
  const muc = ui.muc;
  if (!muc || !m.sid || m.retracted || m.failed || m.pending) return null;
  const f = muc.features;
  const owner = muc.affiliation(ui.current) === 'owner';
  const moderate = owner && !m.own && f.has(NSX.moderate);
  return h('div', { class: 'message-actions', dataset: { testid: 'message-actions' } },
    h('button', { type: 'button', class: 'small', dataset: { testid: 'action-reply' }, 'aria-label': 'Reply to this message', onclick: () => startCompose('reply', m) }, 'Reply'),
    f.has(NSX.reactions) ? QUICK_REACTIONS.map((e) => h('button', { type: 'button', class: 'small', dataset: { testid: 'action-react', emoji: e }, 'aria-label': `React with ${e}`, onclick: () => toggleReaction(m, e) }, e)) : null,
    m.own && f.has(NSX.correct) ? h('button', { type: 'button', class: 'small', dataset: { testid: 'action-edit' }, onclick: () => startCompose('edit', m) }, 'Edit') : null,
    m.own && f.has(NSX.retract) ? h('button', { type: 'button', class: 'small danger', dataset: { testid: 'action-retract' }, onclick: () => retractMessage(m) }, 'Retract') : null,
    moderate ? h('button', { type: 'button', class: 'small danger', dataset: { testid: 'action-moderate' }, onclick: () => moderateMessage(m) }, 'Remove') : null);
}

function toggleReaction(m, e) {
  const muc = ui.muc;
  const mine = new Set(m.reactions?.get(muc.me) ?? []);
  if (mine.has(e)) mine.delete(e);
  else mine.add(e);
  try {
    muc.react(ui.current, m.sid, [...mine]);
  } catch (err) {
    showError(err, { context: 'Your reaction was not sent.' });
  }
}

async function retractMessage(m) {
  if (!(await confirmDialog('Retract this message?', 'It is removed for everyone, here and in the history.', 'Retract'))) return;
  try {
    ui.muc.retract(ui.current, m.sid);
  } catch (e) {
    showError(e, { context: 'Retracting the message failed.' });
  }
}

async function moderateMessage(m) {
  if (!(await confirmDialog(`Remove ${m.from}'s message?`, 'As the owner you remove it for everyone, here and in the history.', 'Remove'))) return;
  try {
    await ui.muc.moderate(ui.current, m.sid);
  } catch (e) {
    showError(e, { context: 'Removing the message failed.' });
  }
}

// ------------------------------------------------------------------ editing and replying

/** startCompose puts the composer in edit mode (the message's text to change) or reply mode (a quote above). */
function startCompose(mode, m) {
  ui.compose = { mode, m, room: ui.current };
  els.composeContext.hidden = false;
  els.composeContext.dataset.mode = mode;
  els.composeContextText.textContent = mode === 'edit' ? 'Editing your message' : `Replying to ${m.own ? 'yourself' : localPart(m.from)}: “${quote(m.body)}”`;
  if (mode === 'edit') els.composerInput.value = m.body;
  composerChanged();
  els.composerInput.focus();
}

function endCompose() {
  const was = ui.compose;
  ui.compose = null;
  els.composeContext.hidden = true;
  if (was?.mode === 'edit') els.composerInput.value = '';
  composerChanged();
}

$('#compose-cancel').addEventListener('click', () => {
  endCompose();
  els.composerInput.focus();
});

/** lastOwn is the user's newest delivered message in the open room, for ↑. */
function lastOwn() {
  const r = ui.muc?.rooms.get(ui.current);
  return r?.messages.findLast((m) => m.own && m.sid && !m.system && !m.retracted && !m.failed && !m.pending);
}

/** onUpdate redraws a message that was corrected, retracted or reacted to. */
function onUpdate(jid) {
  if (jid === ui.current) renderMessages('follow');
  renderRoomList();
}

let readTimer = null;
let readRoom = '';

/** markRead tells the server, a moment after the fact, how far the open room was read. */
function markRead() {
  clearTimeout(readTimer);
  readRoom = ui.current;
  readTimer = setTimeout(() => sendRead(readRoom), 1000);
}

/** flushRead sends a pending marker at once (the reader is leaving the room). */
function flushRead() {
  if (!readTimer) return;
  clearTimeout(readTimer);
  sendRead(readRoom);
}

function sendRead(jid) {
  readTimer = null;
  const r = ui.muc?.rooms.get(jid);
  if (!r) return;
  const sid = r.messages.findLast((m) => m.sid && !m.system)?.sid;
  try {
    ui.muc.markRead(r.jid, sid);
    if (r.readSid && jid === ui.current) els.messages.dataset.readSid = r.readSid; // how far the server was told
  } catch {
    // offline: the next visit marks it
  }
}

/**
 * onMessageError handles a message the server refused (the limiter, a
 * size limit, a room one is no longer in): the message stays in the
 * conversation marked as not delivered, and an error card says why. A
 * refusal of a message the outbox is sending goes to the outbox, which
 * tries again later.
 */
function onMessageError({ room, error, body, id }) {
  const waiting = outbox.outcomes.get(id);
  if (waiting) {
    waiting({ error });
    return;
  }
  failMessage(room, error, body);
}

function failMessage(room, error, body) {
  const muc = ui.muc;
  const r = muc.rooms.get(room);
  const where = r ? `“${r.name}”` : room || 'the service';
  if (!r || !body) {
    showError(error, { context: body ? `Your message to ${where} was not delivered: “${quote(body)}”` : `Your message to ${where} was not delivered.` });
    return;
  }
  const key = `msg|${room}|${error.condition}|${error.type}|${error.text}`;
  const m = { id: `failed-${++ui.errorSeq}`, from: muc.me, body, time: new Date(), own: true, failed: error, key };
  r.messages.push(m);
  if (room === ui.current) appendMessage(m);
  else renderRoomList();
  // The server echoes the refused <body/>; "try again later" errors offer to send it again.
  const wait = error.type === 'wait';
  showError(error, {
    group: key,
    context: (n) => (n === 1 ? `Not delivered to ${where}: “${quote(body)}”` : `${n} messages to ${where} were not delivered; they are marked in the conversation.`),
    resend: wait ? () => resendFailed(room, (x) => x.key === key) : null,
    resendLabel: (n) => (n === 1 ? 'Resend' : `Resend all ${n}`),
  });
}

/** dropFailed removes the failed messages of a room that match, and returns them; a card whose messages are all gone goes too. */
function dropFailed(room, match) {
  const r = ui.muc?.rooms.get(room);
  if (!r) return [];
  const gone = r.messages.filter((x) => x.failed && match(x));
  r.messages = r.messages.filter((x) => !(x.failed && match(x)));
  for (const key of new Set(gone.map((x) => x.key))) {
    if (!r.messages.some((x) => x.key === key)) clearErrors(key);
  }
  if (room === ui.current) renderMessages('follow');
  return gone;
}

/** resendFailed sends the matching failed messages again through the outbox: oldest first, one at a time. */
function resendFailed(room, match) {
  for (const m of dropFailed(room, match)) queueMessage(room, m.body);
  if (room === ui.current) els.composerInput.focus();
}

/** editFailed puts a refused message back into the message box. */
function editFailed(room, m) {
  dropFailed(room, (x) => x === m);
  els.composerInput.value = m.body;
  composerChanged();
  els.composerInput.focus();
}

// ------------------------------------------------------------------ outbox

/**
 * The outbox holds messages typed while offline and messages sent again:
 * it sends them one at a time once the connection is up, waiting for the
 * room's echo of each before the next, and when the room says "later"
 * (the flood limiter) it waits longer each time before trying again, so
 * that "Resend all" does not trip the limiter it is recovering from.
 */
const outbox = {
  items: [], // {room, body, m}: m is the pending entry in the room's messages
  outcomes: new Map(), // message id → resolve({echo} | {error})
  running: false,
};
const OUTBOX_TRIES = 6;
const OUTBOX_WAIT_MS = 2000; // the limiter's default refill is one event per 2 s
const OUTBOX_ECHO_MS = 20000;

function queueMessage(room, body) {
  const r = ui.muc?.rooms.get(room);
  if (!r) return;
  const online = ui.client?.state === 'online';
  const m = { id: `pending-${++ui.errorSeq}`, from: ui.muc.me, body, time: new Date(), own: true, pending: online ? 'sending' : 'offline' };
  r.messages.push(m);
  outbox.items.push({ room, body, m });
  if (room === ui.current) appendMessage(m);
  pumpOutbox();
}

function removePending(m) {
  for (const r of ui.muc?.rooms.values() ?? []) {
    const i = r.messages.indexOf(m);
    if (i < 0) continue;
    r.messages.splice(i, 1);
    if (r.jid === ui.current) renderMessages('follow');
  }
}

function discardPending(m) {
  outbox.items = outbox.items.filter((it) => it.m !== m);
  removePending(m);
}

function pause(ms) {
  return new Promise((resolve) => { setTimeout(resolve, ms); });
}

async function pumpOutbox() {
  if (outbox.running) return;
  outbox.running = true;
  try {
    while (outbox.items.length && ui.client?.state === 'online') {
      const it = outbox.items[0];
      it.m.pending = 'sending';
      const done = await deliver(it);
      if (!done) break; // the connection went: the rest waits for it
      outbox.items = outbox.items.filter((x) => x !== it);
      removePending(it.m);
    }
  } finally {
    outbox.running = false;
  }
  // Still offline: show what waits as waiting.
  for (const it of outbox.items) {
    if (ui.client?.state !== 'online' && it.m.pending !== 'offline') {
      it.m.pending = 'offline';
      if (it.room === ui.current) renderMessages('follow');
    }
  }
}

/** deliver sends one outbox message until the room takes it; false when the connection went meanwhile. */
async function deliver(it) {
  for (let attempt = 1; ; attempt++) {
    if (!outbox.items.includes(it)) return true; // discarded meanwhile
    let id;
    try {
      id = ui.muc.send(it.room, it.body);
    } catch {
      return false;
    }
    const outcome = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ timeout: true }), OUTBOX_ECHO_MS);
      outbox.outcomes.set(id, (o) => {
        clearTimeout(timer);
        resolve(o);
      });
    });
    outbox.outcomes.delete(id);
    if (outcome.echo) return true;
    if (outcome.timeout) return ui.client?.state === 'online'; // no echo: it may have gone through; offline: try again later
    if (outcome.error.type === 'wait' && attempt < OUTBOX_TRIES) {
      await pause(OUTBOX_WAIT_MS * attempt);
      continue;
    }
    removePending(it.m);
    failMessage(it.room, outcome.error, it.body);
    return true;
  }
}

// ------------------------------------------------------------------ history

/**
 * The edge at the top of the conversation: a button that loads older
 * messages (pressed by itself when it scrolls into view), the loading
 * state, the beginning of the conversation, or why history failed.
 */
const edge = {
  item: h('li', { class: 'history-edge', dataset: { testid: 'history-edge' } }),
  text: h('span', { class: 'history-text', dataset: { testid: 'history-text' } }),
  older: h('button', { type: 'button', class: 'small', dataset: { testid: 'load-older' }, onclick: () => loadOlder() }, 'Load older messages'),
  retry: h('button', { type: 'button', class: 'small', dataset: { testid: 'history-retry' }, onclick: () => retryHistory() }, 'Try again'),
};
edge.item.append(edge.text, edge.older, edge.retry);

// The next page loads when the edge comes within 200 px of the top of the visible conversation.
const EDGE_MARGIN = 200;
const edgeObserver = new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) loadOlder({ auto: true });
}, { root: els.messages, rootMargin: `${EDGE_MARGIN}px 0px 0px 0px` });
edgeObserver.observe(edge.item);

function edgeVisible() {
  if (!edge.item.isConnected || edge.item.hidden || els.messages.clientHeight === 0) return false;
  return edge.item.getBoundingClientRect().bottom >= els.messages.getBoundingClientRect().top - EDGE_MARGIN;
}

/** historyState names what the top of the open room's conversation shows. */
function historyState(hist) {
  if (!hist || hist.unavailable) return 'none';
  if (hist.error && !hist.loadingOlder && !hist.loadingLatest) return 'error';
  if (!hist.loaded) return 'loading';
  if (hist.complete) return 'start';
  return hist.loadingOlder ? 'loading-older' : 'more';
}

/** renderEdge shows the history state of the open room at the top of the conversation. */
function renderEdge() {
  const hist = ui.muc?.rooms.get(ui.current)?.history;
  const state = historyState(hist);
  edge.item.dataset.state = state;
  edge.item.hidden = state === 'none';
  const e = hist?.error;
  const texts = {
    error: e ? `The history could not be loaded: ${e.condition}${e.text ? ` (${e.text})` : ''}` : '',
    loading: 'Loading history…',
    start: 'Beginning of the conversation',
    'loading-older': 'Loading older messages…',
  };
  edge.text.textContent = texts[state] ?? '';
  edge.text.hidden = !edge.text.textContent;
  const focused = document.activeElement;
  edge.older.hidden = state !== 'more';
  edge.retry.hidden = state !== 'error';
  // A pressed button that goes away hands the focus to the conversation, not to the page.
  if ((focused === edge.older || focused === edge.retry) && focused.hidden) els.messages.focus();
  settleBusy();
}

/**
 * settleBusy keeps the log marked busy while history loads and for one
 * frame after a redraw, so that assistive technology does not read a
 * loaded page out as new messages.
 */
function settleBusy() {
  const loading = () => edge.item.dataset.state === 'loading' || edge.item.dataset.state === 'loading-older';
  if (loading()) {
    els.messages.setAttribute('aria-busy', 'true');
    return;
  }
  requestAnimationFrame(() => {
    if (!loading()) els.messages.removeAttribute('aria-busy');
  });
}

/** loadOlder reads the page before the oldest message of the open room; auto: the edge scrolled into view. */
async function loadOlder({ auto = false } = {}) {
  const jid = ui.current;
  const hist = ui.muc?.rooms.get(jid)?.history;
  if (historyState(hist) !== 'more' && !(!auto && historyState(hist) === 'error' && hist.loaded)) return;
  let added = 0;
  try {
    added = await ui.muc.loadOlder(jid);
  } catch (e) {
    console.warn('loading older messages failed', e);
    return;
  }
  if (jid !== ui.current) return;
  if (hist.complete) announce('Beginning of the conversation');
  else if (added) announce(`${added} older ${added === 1 ? 'message' : 'messages'} loaded`);
}

function retryHistory() {
  const hist = ui.muc?.rooms.get(ui.current)?.history;
  if (!hist) return;
  if (hist.loaded && hist.synced) loadOlder();
  else syncHistory(ui.current);
}

function onHistory(jid, { kind }) {
  if (jid !== ui.current) {
    if (kind !== 'state') renderRoomList();
    return;
  }
  if (kind === 'state') {
    renderEdge();
    return;
  }
  // Older messages go on top without moving what is on screen; newer ones
  // follow the bottom when the reader is there.
  renderMessages(kind === 'older' ? 'keep' : 'follow');
  renderRoomList();
  // The edge still in view (a short page): go on until the conversation fills the screen.
  if (edgeVisible()) loadOlder({ auto: true });
}

// ------------------------------------------------------------------ messages

function nearBottom() {
  return els.messages.scrollHeight - els.messages.scrollTop - els.messages.clientHeight < 80;
}

/**
 * The conversation is drawn as a window of at most WINDOW entries of the
 * open room's messages (which may be tens of thousands): scrolling near
 * either end of the window moves it by SHIFT entries, keeping the entry at
 * the top of the screen where it was. So the page holds a few hundred
 * elements however long the history, and a redraw costs the same.
 */
const WINDOW = 150;
const SHIFT = 60;
const SLIDE_MARGIN = 400; // px from the window's end at which it moves
const view = { room: '', start: 0, end: 0, els: new Map() }; // els: message → its <li>

/**
 * anchor is the first entry at least partly on screen and where its bottom
 * is: an entry's top part (its sender line) may go when an older message
 * by the same sender lands above it, its text stays put.
 */
function anchor() {
  const top = els.messages.getBoundingClientRect().top;
  for (const [m, li] of view.els) {
    const b = li.getBoundingClientRect();
    if (b.bottom > top) return { m, offset: b.bottom - top };
  }
  return null;
}

function restore(a) {
  const li = a && view.els.get(a.m);
  if (!li) return false;
  els.messages.scrollTop += li.getBoundingClientRect().bottom - els.messages.getBoundingClientRect().top - a.offset;
  return true;
}

/** draw puts the window's entries in the list. */
function draw(r) {
  const list = els.messages;
  const msgs = r?.messages ?? [];
  const items = [];
  view.els = new Map();
  let prev = view.start > 0 && !msgs[view.start - 1].system ? msgs[view.start - 1] : undefined;
  for (let i = view.start; i < view.end; i++) {
    const m = msgs[i];
    let li;
    if (m.system) {
      // The archive's first entry is the room's creation.
      const creation = i === 0 && m.system === 'affiliations' && r.history.complete && m.items.every((x) => x.affiliation !== 'none');
      li = systemItem(m, creation);
      prev = undefined;
    } else {
      li = messageItem(m, prev);
      prev = m;
    }
    view.els.set(m, li);
    items.push(li);
  }
  list.setAttribute('aria-busy', 'true'); // a redraw, not new messages
  if (view.start === 0) list.replaceChildren(edge.item, ...items);
  else list.replaceChildren(...items);
  renderEdge();
  if (r && msgs.length === 0 && (r.history.loaded || r.history.unavailable)) {
    list.append(h('li', { class: 'hint-item' }, r.history.unavailable
      ? 'No messages yet. Messages sent while you are signed in appear here.'
      : 'No messages yet.'));
  }
}

/**
 * renderMessages draws the open room's conversation. scroll: 'bottom' goes
 * to the newest message; 'keep' keeps what is on screen where it is (older
 * messages were added above); 'follow' stays at the bottom if the reader
 * was there, else keeps the place.
 */
function renderMessages(scroll = 'bottom') {
  const list = els.messages;
  const r = ui.muc?.rooms.get(ui.current);
  const msgs = r?.messages ?? [];
  const fresh = view.room !== ui.current;
  view.room = ui.current;
  const stick = fresh || scroll === 'bottom' || (scroll === 'follow' && nearBottom());
  const a = stick ? null : anchor();
  const at = a ? msgs.indexOf(a.m) : -1;
  if (at < 0) {
    view.end = msgs.length;
    view.start = Math.max(0, view.end - WINDOW);
  } else {
    // The entry on screen stays in the window, with room to scroll above it.
    view.start = Math.max(0, Math.min(at - SHIFT, msgs.length - WINDOW));
    view.end = Math.min(msgs.length, view.start + WINDOW);
  }
  draw(r);
  if (at < 0 || !restore(a)) list.scrollTop = list.scrollHeight;
}

/** slide moves the window when the reader scrolled near one of its ends and more entries lie beyond. */
function slide() {
  const list = els.messages;
  const r = ui.muc?.rooms.get(ui.current);
  if (!r || view.room !== ui.current) return;
  const len = r.messages.length;
  let start = view.start;
  let end = view.end;
  if (list.scrollTop < SLIDE_MARGIN && start > 0) {
    start = Math.max(0, start - SHIFT);
    end = Math.min(len, start + WINDOW);
  } else if (list.scrollHeight - list.scrollTop - list.clientHeight < SLIDE_MARGIN && end < len) {
    end = Math.min(len, end + SHIFT);
    start = Math.max(0, end - WINDOW);
  } else {
    return;
  }
  const a = anchor();
  view.start = start;
  view.end = end;
  draw(r);
  restore(a);
}

let slideQueued = false;
els.messages.addEventListener('scroll', () => {
  if (slideQueued) return;
  slideQueued = true;
  requestAnimationFrame(() => {
    slideQueued = false;
    slide();
    // The observer sees only changes: a jump back to the top within one frame is caught here.
    if (edgeVisible()) loadOlder({ auto: true });
  });
}, { passive: true });

function appendMessage(m) {
  const r = ui.muc.rooms.get(ui.current);
  const list = r?.messages ?? [];
  const i = list.indexOf(m);
  if (i !== view.end || i !== list.length - 1) {
    // Not right after the window (the reader is up in the history): it shows when they scroll down.
    if (m.own) renderMessages('bottom');
    return;
  }
  const stick = nearBottom();
  els.messages.querySelector('.hint-item')?.remove();
  const prev = list[i - 1];
  const li = m.system ? systemItem(m, false) : messageItem(m, prev?.system ? undefined : prev);
  view.els.set(m, li);
  view.end++;
  els.messages.append(li);
  if (stick || m.own) {
    // At the bottom the window keeps its size by letting go of its top.
    if (view.end - view.start > WINDOW + SHIFT) {
      view.start = view.end - WINDOW;
      draw(r);
    }
    els.messages.scrollTop = els.messages.scrollHeight;
  }
}

function onMessage(jid, m, index) {
  const r = ui.muc.rooms.get(jid);
  outbox.outcomes.get(m.id)?.({ echo: true });
  if (jid === ui.current) {
    // One that slots in before others (it trails a page read meanwhile) redraws the list.
    if (r && index === r.messages.length - 1) appendMessage(m);
    else renderMessages('follow');
    if (!document.hidden) markRead();
  }
  if (r && (jid !== ui.current || document.hidden) && !m.own) {
    r.unread++;
    if (jid !== ui.current) announce(`New message in ${r.name} from ${localPart(m.from)}`);
  }
  notifyMessage(jid, m);
  renderRoomList();
}

function onTimeline(jid) {
  if (jid === ui.current) renderMessages('follow');
  renderRoomList();
}

function onGone(jid, reason, name) {
  const texts = { left: `You left “${name}”.`, removed: `You were removed from “${name}”.`, destroyed: `“${name}” was destroyed.` };
  announce(texts[reason] ?? '');
  if (reason !== 'left') showNotice(texts[reason]);
  outbox.items = outbox.items.filter((it) => it.room !== jid);
  if (jid === ui.current) {
    showRoom('');
    updateTitle();
    $('#new-room').focus();
  }
}

// The tab came back into view: what the open room got meanwhile is read.
document.addEventListener('visibilitychange', () => {
  const r = ui.muc?.rooms.get(ui.current);
  if (!document.hidden && r?.unread) {
    r.unread = 0;
    renderRoomList();
    markRead();
  }
});

/**
 * sendMessage posts a message now, or queues it in the outbox while the
 * connection is down. A message longer than the server takes (XEP-0478
 * max-bytes, less the stanza around the body) is refused here: sent, it
 * would end the whole connection.
 */
function sendMessage(room, body) {
  const over = tooLong(room, body);
  if (over) {
    showError(over, { group: `too-long|${room}`, context: `Not sent to “${ui.muc.rooms.get(room)?.name ?? room}”: “${quote(body)}”` });
    return false;
  }
  if (ui.client?.state !== 'online') {
    queueMessage(room, body);
    return true;
  }
  try {
    ui.muc.send(room, body);
    clearErrors(`too-long|${room}`);
    return true;
  } catch (e) {
    queueMessage(room, body);
    return true;
  }
}

/** tooLong returns an error when the message would be larger than the server accepts, else null. */
function tooLong(room, body) {
  const max = ui.client?.maxBytes;
  if (!max || !ui.muc) return null;
  const size = Client.stanzaBytes(ui.muc.stanza(room, body, 'x'.repeat(12)));
  if (size <= max) return null;
  const e = new XmppError('too-long', `This message is ${size.toLocaleString()} bytes; the server takes at most ${max.toLocaleString()}. Shorten it or send it in parts.`, 'modify');
  e.size = size;
  return e;
}

/** composerChanged grows the message box with its text and shows the size when it nears the limit. */
function composerChanged() {
  const input = els.composerInput;
  input.style.height = 'auto';
  input.style.height = `${Math.min(input.scrollHeight + 2, 200)}px`;
  const max = ui.client?.maxBytes;
  const body = input.value;
  // A cheap bound first: UTF-8 is at most 3 bytes per UTF-16 unit, and the stanza adds a few hundred.
  if (!max || !ui.muc || !ui.current || body.length * 3 + 400 < max * 0.8) {
    els.composerCount.hidden = true;
    els.composer.classList.remove('over');
    return;
  }
  const size = Client.stanzaBytes(ui.muc.stanza(ui.current, body, 'x'.repeat(12)));
  els.composerCount.hidden = size < max * 0.8;
  els.composerCount.textContent = `${size.toLocaleString()} / ${max.toLocaleString()} bytes`;
  els.composer.classList.toggle('over', size > max);
}

els.composer.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const body = els.composerInput.value;
  if (!body.trim() || !ui.current) return;
  const c = ui.compose?.room === ui.current ? ui.compose : null;
  if (c) {
    try {
      if (c.mode === 'edit') {
        if (body !== c.m.body) ui.muc.correct(ui.current, c.m, body);
      } else {
        ui.muc.replyTo(ui.current, c.m, body);
      }
      ui.compose = null;
      els.composeContext.hidden = true;
      els.composerInput.value = '';
      composerChanged();
    } catch (e) {
      showError(e, { context: c.mode === 'edit' ? 'The correction was not sent.' : 'The reply was not sent.' });
    }
    return;
  }
  if (sendMessage(ui.current, body)) {
    els.composerInput.value = '';
    composerChanged();
  }
});

els.composerInput.addEventListener('keydown', (ev) => {
  // Enter sends; Shift+Enter (and Enter while an input method composes) makes a new line.
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    els.composer.requestSubmit();
  } else if (ev.key === 'ArrowUp' && !els.composerInput.value && ui.muc?.features.has(NSX.correct)) {
    // ↑ in an empty box edits one's last message.
    const m = lastOwn();
    if (m) {
      ev.preventDefault();
      startCompose('edit', m);
    }
  } else if (ev.key === 'Escape' && ui.compose) {
    ev.preventDefault();
    endCompose();
  }
});
els.composerInput.addEventListener('input', composerChanged);

// ------------------------------------------------------------------ notifications

const NOTIFY_KEY = 'xmppws.notifications';

/** notifying reports whether the user asked for notifications and the browser allows them. */
function notifying() {
  return localStorage.getItem(NOTIFY_KEY) === 'on' && 'Notification' in window && Notification.permission === 'granted';
}

function renderNotifyToggle() {
  const on = notifying();
  els.notifyToggle.textContent = on ? 'Notifications on' : 'Notifications off';
  els.notifyToggle.setAttribute('aria-pressed', String(on));
}

els.notifyToggle.addEventListener('click', async () => {
  if (notifying()) {
    localStorage.setItem(NOTIFY_KEY, 'off');
  } else if (!('Notification' in window)) {
    showNotice('This browser cannot show notifications.');
  } else {
    const p = Notification.permission === 'granted' ? 'granted' : await Notification.requestPermission();
    if (p === 'granted') localStorage.setItem(NOTIFY_KEY, 'on');
    else showNotice('Notifications are blocked for this site; allow them in the browser’s site settings.');
  }
  renderNotifyToggle();
});
renderNotifyToggle();

/** notifyMessage shows a browser notification for someone else's message the user is not looking at. */
function notifyMessage(jid, m) {
  if (m.own || !notifying() || (!document.hidden && jid === ui.current)) return;
  const r = ui.muc?.rooms.get(jid);
  const n = new Notification(`${localPart(m.from)} in ${r?.name ?? jid}`, { body: quote(m.body), tag: jid });
  n.onclick = () => {
    window.focus();
    openRoom(jid);
    n.close();
  };
}

$('#room-back').addEventListener('click', () => {
  const jid = ui.current;
  showRoom('');
  renderRoomList();
  els.roomList.querySelector(`[data-room="${CSS.escape(jid)}"]`)?.focus();
});

function setMembersOpen(open) {
  els.members.classList.toggle('open', open);
  els.membersToggle.setAttribute('aria-expanded', String(open));
}

els.membersToggle.addEventListener('click', () => setMembersOpen(!els.members.classList.contains('open')));
els.members.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && els.members.classList.contains('open')) {
    setMembersOpen(false);
    els.membersToggle.focus();
  }
});

async function removeMember(room, jid) {
  if (!(await confirmDialog(`Remove ${jid}?`, `${jid} will no longer receive this room's messages.`, 'Remove'))) return;
  try {
    await ui.muc.setAffiliations(room, [{ jid, affiliation: 'none' }]);
  } catch (e) {
    showError(e, { context: `Removing ${jid} failed.` });
  }
}

async function promote(room, jid) {
  if (!(await confirmDialog(`Make ${jid} the owner?`, 'A room has one owner: you become a member.', 'Make owner'))) return;
  try {
    await ui.muc.setAffiliations(room, [{ jid, affiliation: 'owner' }]);
  } catch (e) {
    showError(e, { context: `Making ${jid} the owner failed.` });
  }
}

els.addMember.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const input = $('#add-member-jid');
  const room = ui.current;
  await busy(els.addMember, async () => {
    try {
      const jids = parseJIDs(input.value);
      if (jids.length === 0) return;
      if (!(await confirmUnknown(jids))) return;
      await ui.muc.setAffiliations(room, jids.map((jid) => ({ jid, affiliation: 'member' })));
      input.value = '';
      await ui.muc.info(room);
      reportSkipped(room, jids);
    } catch (e) {
      showError(e, { context: `Adding ${input.value.trim()} failed.` });
    }
  });
  input.focus();
});

$('#room-leave').addEventListener('click', async () => {
  const r = ui.muc.rooms.get(ui.current);
  if (!r) return;
  if (!(await confirmDialog(`Leave “${r.name}”?`, 'You will stop receiving its messages. Someone has to add you again to come back.', 'Leave'))) return;
  try {
    await ui.muc.leave(r.jid);
  } catch (e) {
    showError(e, { context: `Leaving “${r.name}” failed.` });
  }
});

els.roomDestroy.addEventListener('click', async () => {
  const r = ui.muc.rooms.get(ui.current);
  if (!r) return;
  if (!(await confirmDialog(`Destroy “${r.name}”?`, 'The room is deleted for every member. This cannot be undone.', 'Destroy'))) return;
  try {
    await ui.muc.destroy(r.jid);
  } catch (e) {
    showError(e, { context: `Destroying “${r.name}” failed.` });
  }
});

// ------------------------------------------------------------------ dialogs

for (const d of document.querySelectorAll('dialog')) {
  d.querySelectorAll('[data-close]').forEach((b) => b.addEventListener('click', () => d.close()));
}

let confirmResolve = null;

/** confirmDialog asks a yes/no question in a modal dialog. */
function confirmDialog(title, text, okLabel) {
  const d = els.confirmDialog;
  $('#confirm-heading').textContent = title;
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = okLabel;
  d.returnValue = '';
  d.showModal();
  $('#confirm-ok').focus();
  return new Promise((resolve) => { confirmResolve = resolve; });
}

els.confirmDialog.addEventListener('close', () => {
  confirmResolve?.(els.confirmDialog.returnValue === 'ok');
  confirmResolve = null;
});

$('#new-room').addEventListener('click', () => {
  const form = $('#create-form');
  form.reset();
  formError(form, null);
  els.createDialog.showModal();
});

$('#create-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = ev.currentTarget;
  formError(form, null);
  await busy(form, async () => {
    try {
      const name = $('#create-name').value.trim();
      if (!name) {
        $('#create-name').focus();
        throw new XmppError('bad-request', 'Give the room a name', 'modify');
      }
      const members = parseJIDs($('#create-members').value).filter((j) => j !== ui.muc.me);
      if (!(await confirmUnknown(members))) return;
      const jid = await ui.muc.createRoom({ name, subject: $('#create-subject').value.trim(), members });
      els.createDialog.close();
      await openRoom(jid);
      reportSkipped(jid, members);
    } catch (e) {
      formError(form, e);
    }
  });
});

$('#room-edit').addEventListener('click', () => {
  const r = ui.muc.rooms.get(ui.current);
  if (!r) return;
  const form = $('#edit-form');
  formError(form, null);
  $('#edit-name').value = r.name;
  $('#edit-subject').value = r.subject;
  $('#edit-name').disabled = ui.muc.affiliation(r.jid) !== 'owner';
  els.editDialog.showModal();
  ($('#edit-name').disabled ? $('#edit-subject') : $('#edit-name')).focus();
});

$('#edit-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = ev.currentTarget;
  const r = ui.muc.rooms.get(ui.current);
  if (!r) return;
  const fields = {};
  const name = $('#edit-name').value.trim();
  const subject = $('#edit-subject').value.trim();
  if (!$('#edit-name').disabled && !name) {
    formError(form, new XmppError('bad-request', 'A room needs a name', 'modify'));
    $('#edit-name').focus();
    return;
  }
  if (!$('#edit-name').disabled && name !== r.name) fields.roomname = name;
  if (subject !== r.subject) fields.subject = subject;
  if (Object.keys(fields).length === 0) {
    els.editDialog.close();
    return;
  }
  formError(form, null);
  await busy(form, async () => {
    try {
      await ui.muc.setConfig(r.jid, fields);
      els.editDialog.close();
    } catch (e) {
      formError(form, e);
    }
  });
});

// Blocking list.

async function loadBlocking() {
  const form = $('#block-form');
  try {
    const items = await ui.muc.getBlocking();
    $('#block-list').replaceChildren(...items.map((it) => h('li', { class: 'block-item', dataset: { testid: 'block-item', kind: it.kind, jid: it.jid } },
      h('span', { class: 'kind' }, it.kind), ' ',
      h('span', { class: 'block-jid' }, it.jid),
      h('button', { type: 'button', class: 'small', dataset: { testid: 'block-remove' }, 'aria-label': `Unblock ${it.kind} ${it.jid}`, onclick: () => setBlock(it.kind, it.jid, 'allow') }, 'Unblock'))));
    $('#block-empty').hidden = items.length > 0;
    formError(form.parentElement, null);
  } catch (e) {
    formError(form.parentElement, e);
  }
}

async function setBlock(kind, jid, action) {
  const body = $('#block-form').parentElement;
  formError(body, null);
  try {
    await ui.muc.setBlocking([{ kind, jid, action }]);
    await loadBlocking();
    return true;
  } catch (e) {
    formError(body, e);
    return false;
  }
}

$('#blocking-open').addEventListener('click', async () => {
  els.blockingDialog.showModal();
  $('#block-jid').focus();
  await loadBlocking();
});

$('#block-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = ev.currentTarget;
  await busy(form, async () => {
    let jid;
    try {
      jid = JID.parse($('#block-jid').value).bare();
    } catch (e) {
      formError(form.parentElement, new XmppError('jid-malformed', e.message, 'modify'));
      return;
    }
    if (await setBlock($('#block-kind').value, jid, 'deny')) $('#block-jid').value = '';
  });
  $('#block-jid').focus();
});

resumeSaved();

// Prefill the advanced field's placeholder with what discovery finds.
discoverWebSocketURLs()
  .then((urls) => {
    discovered = urls;
    if (urls.length) $('#signin-url').placeholder = urls[0];
  })
  .catch(() => {});
