// app.js: the screens of the web client (sign in, rooms, a room, dialogs)
// wired to xmpp.js and muclight.js. All state lives in MucLight; this file
// renders it and turns clicks and forms into requests.

import { Client, JID, XmppError, discoverWebSocketURLs } from './xmpp.js';
import { MucLight } from './muclight.js';

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

/** parseJIDs splits "a@x, b@x c@x" into bare JIDs; it throws on one that is not an address. */
function parseJIDs(text) {
  return text
    .split(/[\s,;]+/)
    .filter(Boolean)
    .map((s) => {
      const j = JID.parse(s);
      if (!j.local) throw new XmppError('jid-malformed', `"${s}" is not a user address (user@domain)`, 'modify');
      return j.bare();
    });
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
  roomPlaceholder: $('#room-placeholder'),
  roomBody: $('#room-body'),
  roomTitle: $('#room-title'),
  roomSubject: $('#room-subject'),
  roomDestroy: $('#room-destroy'),
  membersToggle: $('#members-toggle'),
  members: $('#members'),
  memberList: $('#member-list'),
  membersCount: $('#members-count'),
  addMember: $('#add-member'),
  messages: $('#messages'),
  composer: $('#composer'),
  composerInput: $('#composer-input'),
  createDialog: $('#create-dialog'),
  editDialog: $('#edit-dialog'),
  blockingDialog: $('#blocking-dialog'),
  confirmDialog: $('#confirm-dialog'),
};

// ------------------------------------------------------------------ errors

/**
 * showError puts an error card in the error region: condition, type and
 * the server's text, what it was about, and a Resend button when a refused
 * message can be sent again. Cards with the same group key merge into one
 * with a count, so a burst of identical refusals stays readable; context
 * and resendLabel may then be functions of that count.
 */
function showError(err, { context = '', resend = null, resendLabel = 'Resend', group = '' } = {}) {
  const e = err instanceof XmppError ? err : new XmppError('client-error', err?.message ?? String(err), 'cancel');
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
      h('strong', { dataset: { testid: 'error-condition' } }, e.condition),
      h('span', { class: 'error-type', dataset: { testid: 'error-type' } }, ` (${e.type})`),
      e.text ? [': ', h('span', { dataset: { testid: 'error-text' } }, e.text)] : null,
      ' ', h('span', { class: 'error-count', dataset: { testid: 'error-count' }, hidden: true }, '')),
    context ? h('p', { class: 'error-context', dataset: { testid: 'error-context' } }, text(context, 1)) : null,
    h('div', { class: 'error-actions' },
      resend ? h('button', { type: 'button', class: 'primary small', dataset: { testid: 'error-resend' }, onclick: () => { card.remove(); resend(); } }, text(resendLabel, 1)) : null,
      h('button', { type: 'button', class: 'small', 'aria-label': 'Dismiss this error', dataset: { testid: 'error-dismiss' }, onclick: () => card.remove() }, 'Dismiss')));
  els.errors.append(card);
  while (els.errors.children.length > 4) els.errors.firstElementChild.remove();
  return card;
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
  const e = err instanceof XmppError ? err : new XmppError('client-error', err?.message ?? String(err));
  p.textContent = '';
  p.append(h('strong', {}, e.condition), ` (${e.type})`, e.text ? `: ${e.text}` : '');
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
      await client.connect({ urls, jid, password });
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

function wireClient(client) {
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
  client.on('online', ({ resumed }) => {
    if (!resumed || ui.client !== client) return;
    // Connection errors are over once the connection is back.
    els.errors.querySelectorAll('[data-group^="stream|"]').forEach((c) => c.remove());
    refreshAll().catch((e) => showError(e, { context: 'Reloading the rooms after reconnecting failed.' }));
  });

  await muc.discover();
  renderRoomList();
  try {
    await muc.loadRooms();
  } catch (e) {
    showError(e, { context: 'Listing your rooms failed.' });
  }
  $('#new-room').focus();
}

async function refreshAll() {
  await ui.muc.loadRooms();
  // The open room reads what it missed while the connection was down.
  if (ui.current && ui.muc.rooms.has(ui.current)) await Promise.all([ui.muc.info(ui.current), syncHistory(ui.current)]);
}

async function signOut({ quiet = false } = {}) {
  const client = ui.client;
  ui.client = null;
  ui.muc = null;
  ui.current = '';
  if (client) await client.close().catch(() => {});
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
  const rooms = muc.sortedRooms();
  els.roomList.replaceChildren(...rooms.map((r) => {
    const last = r.messages.findLast((m) => !m.failed && !m.system);
    const preview = last ? `${last.own ? 'You' : localPart(last.from)}: ${last.body}` : r.subject;
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
        preview ? h('span', { class: 'room-item-preview' }, preview) : null),
      r.unread ? h('span', { class: 'badge', dataset: { testid: 'room-unread' }, 'aria-label': `${r.unread} unread` }, String(r.unread)) : null));
  }));
  els.roomsEmpty.hidden = rooms.length > 0;
  els.roomsMore.hidden = !muc.hasMore;
}

els.roomsMore.addEventListener('click', async () => {
  els.roomsMore.disabled = true;
  try {
    await ui.muc.loadRooms({ more: true });
  } catch (e) {
    showError(e, { context: 'Loading more rooms failed.' });
  } finally {
    els.roomsMore.disabled = false;
  }
});

// ------------------------------------------------------------------ a room

function showRoom(jid) {
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
  document.title = `${r.name} · xmppws chat`;
  const mine = muc.affiliation(r.jid);
  const owner = mine === 'owner';
  els.roomDestroy.hidden = !owner;
  els.addMember.hidden = !owner;
  const occupants = [...r.occupants].sort(([a, affA], [b, affB]) => (affA === 'owner' ? -1 : 0) - (affB === 'owner' ? -1 : 0) || a.localeCompare(b));
  els.membersCount.textContent = r.loaded ? `(${occupants.length})` : '';
  els.membersToggle.textContent = r.loaded ? `Members (${occupants.length})` : 'Members';
  els.memberList.replaceChildren(...occupants.map(([jid, aff]) => h('li', { class: 'member', dataset: { testid: 'member', jid, affiliation: aff } },
    avatar(jid),
    h('span', { class: 'member-name' },
      h('span', { class: 'member-jid', title: jid }, jid === muc.me ? `${jid} (you)` : jid),
      h('span', { class: `aff aff-${aff}`, dataset: { testid: 'member-affiliation' } }, aff)),
    owner && jid !== muc.me ? h('span', { class: 'member-actions' },
      aff === 'member' ? h('button', { type: 'button', class: 'small', dataset: { testid: 'member-promote' }, 'aria-label': `Make ${jid} the owner`, onclick: () => promote(r.jid, jid) }, 'Make owner') : null,
      h('button', { type: 'button', class: 'small danger', dataset: { testid: 'member-remove' }, 'aria-label': `Remove ${jid}`, onclick: () => removeMember(r.jid, jid) }, 'Remove')) : null)));
}

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
  if (creation) {
    const owner = m.items.find((i) => i.affiliation === 'owner');
    const others = m.items.filter((i) => i !== owner).map((i) => who(i.jid));
    if (!owner) return `Room created with ${list(others)}`;
    return others.length ? `${cap(who(owner.jid))} created the room with ${list(others)}` : `${cap(who(owner.jid))} created the room`;
  }
  const newOwner = m.items.some((i) => i.affiliation === 'owner');
  const rank = { owner: 0, member: 1, none: 2 };
  return [...m.items].sort((a, b) => (rank[a.affiliation] ?? 3) - (rank[b.affiliation] ?? 3)).map((i) => {
    const w = who(i.jid);
    if (i.affiliation === 'none') return `${w} left`;
    if (i.affiliation === 'owner') return `${w} ${w === 'you' ? 'are' : 'is'} now the owner`;
    if (newOwner) return `${w} ${w === 'you' ? 'are' : 'is'} now a member`;
    return `${w} joined`;
  }).map((t, i) => (i === 0 ? cap(t) : t)).join(', ');
}

function systemItem(m, creation) {
  return h('li', { class: 'system', dataset: { testid: 'system-line', sid: m.sid } },
    h('span', { class: 'system-text' }, systemText(m, creation)),
    ' ',
    h('time', { datetime: m.time.toISOString(), title: dateTimeFmt.format(m.time) }, shortTime(m.time)));
}

function messageItem(m, prev) {
  const f = m.failed;
  return h('li', { class: `message${m.own ? ' own' : ''}${f ? ' failed' : ''}${follows(prev, m) ? ' cont' : ''}`, dataset: { testid: f ? 'message-failed' : 'message', from: m.from, id: m.id, ...(m.sid ? { sid: m.sid } : {}) } },
    avatar(m.from),
    h('div', { class: 'bubble' },
      h('p', { class: 'meta' },
        h('span', { class: 'sender', dataset: { testid: 'message-sender' }, title: m.from }, m.own ? 'You' : localPart(m.from)),
        ' ',
        h('time', { datetime: m.time.toISOString(), title: dateTimeFmt.format(m.time) }, shortTime(m.time))),
      h('p', { class: 'body', dataset: { testid: 'message-body' } }, m.body),
      f ? h('p', { class: 'failed-note' },
        h('span', { class: 'failed-why', title: f.text }, `Not delivered: ${f.condition}`),
        f.type === 'wait' ? h('button', { type: 'button', class: 'small', dataset: { testid: 'message-resend' }, onclick: () => resendFailed(ui.current, (x) => x === m) }, 'Resend') : null,
        f.type !== 'wait' ? h('button', { type: 'button', class: 'small', dataset: { testid: 'message-edit' }, onclick: () => editFailed(ui.current, m) }, 'Edit') : null,
        h('button', { type: 'button', class: 'small', dataset: { testid: 'message-discard' }, 'aria-label': 'Discard this message', onclick: () => dropFailed(ui.current, (x) => x === m) }, 'Discard')) : null));
}

/**
 * onMessageError handles a message the server refused (the limiter, a
 * size limit, a room one is no longer in): the message stays in the
 * conversation marked as not delivered, and an error card says why.
 */
function onMessageError({ room, error, body }) {
  const muc = ui.muc;
  const r = muc.rooms.get(room);
  const where = r ? `“${r.name}”` : room || 'the service';
  if (!r || !body) {
    showError(error, { context: body ? `Your message to ${where} was not delivered: “${body}”` : `Your message to ${where} was not delivered.` });
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
    context: (n) => (n === 1 ? `Not delivered to ${where}: “${body}”` : `${n} messages to ${where} were not delivered; they are marked in the conversation.`),
    resend: wait ? () => resendFailed(room, (x) => x.key === key) : null,
    resendLabel: (n) => (n === 1 ? 'Resend' : `Resend all ${n}`),
  });
}

/** dropFailed removes the failed messages of a room that match, and returns them. */
function dropFailed(room, match) {
  const r = ui.muc?.rooms.get(room);
  if (!r) return [];
  const gone = r.messages.filter((x) => x.failed && match(x));
  r.messages = r.messages.filter((x) => !(x.failed && match(x)));
  if (room === ui.current) renderMessages('follow');
  return gone;
}

/** resendFailed sends the matching failed messages again, oldest first. */
function resendFailed(room, match) {
  for (const m of dropFailed(room, match)) sendMessage(room, m.body);
  if (room === ui.current) els.composerInput.focus();
}

/** editFailed puts a refused message back into the message box. */
function editFailed(room, m) {
  dropFailed(room, (x) => x === m);
  els.composerInput.value = m.body;
  els.composerInput.focus();
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
 * renderMessages draws the open room's conversation. scroll: 'bottom' goes
 * to the newest message; 'keep' keeps what is on screen where it is (older
 * messages were added above); 'follow' stays at the bottom if the reader
 * was there, else keeps the place.
 */
function renderMessages(scroll = 'bottom') {
  const list = els.messages;
  const r = ui.muc?.rooms.get(ui.current);
  const fromBottom = list.scrollHeight - list.scrollTop;
  const stick = scroll === 'bottom' || (scroll === 'follow' && nearBottom());
  const msgs = r?.messages ?? [];
  const items = [];
  let prev;
  for (const [i, m] of msgs.entries()) {
    if (m.system) {
      // The archive's first entry is the room's creation.
      const creation = i === 0 && r.history.complete && m.items.every((x) => x.affiliation !== 'none');
      items.push(systemItem(m, creation));
      prev = undefined;
    } else {
      items.push(messageItem(m, prev));
      prev = m;
    }
  }
  list.setAttribute('aria-busy', 'true'); // a redraw, not new messages
  list.replaceChildren(edge.item, ...items);
  renderEdge();
  if (r && msgs.length === 0 && (r.history.loaded || r.history.unavailable)) {
    list.append(h('li', { class: 'hint-item' }, r.history.unavailable
      ? 'No messages yet. Messages sent while you are signed in appear here.'
      : 'No messages yet.'));
  }
  if (stick) list.scrollTop = list.scrollHeight;
  else list.scrollTop = list.scrollHeight - fromBottom;
}

function appendMessage(m) {
  const stick = nearBottom();
  els.messages.querySelector('.hint-item')?.remove();
  const list = ui.muc.rooms.get(ui.current)?.messages ?? [];
  const prev = list[list.indexOf(m) - 1];
  els.messages.append(messageItem(m, prev?.system ? undefined : prev));
  if (stick || m.own) els.messages.scrollTop = els.messages.scrollHeight;
}

function onMessage(jid, m, index) {
  const r = ui.muc.rooms.get(jid);
  if (jid === ui.current) {
    // One that slots in before others (it trails a page read meanwhile) redraws the list.
    if (r && index === r.messages.length - 1) appendMessage(m);
    else renderMessages('follow');
  } else if (r) {
    r.unread++;
    if (!m.own) announce(`New message in ${r.name} from ${localPart(m.from)}`);
  }
  renderRoomList();
}

function onGone(jid, reason, name) {
  const texts = { left: `You left “${name}”.`, removed: `You were removed from “${name}”.`, destroyed: `“${name}” was destroyed.` };
  announce(texts[reason] ?? '');
  if (reason !== 'left') showNotice(texts[reason]);
  if (jid === ui.current) {
    showRoom('');
    document.title = 'xmppws chat';
    $('#new-room').focus();
  }
}

function sendMessage(room, body) {
  try {
    ui.muc.send(room, body);
    return true;
  } catch (e) {
    showError(e, { context: `Your message was not sent: “${body}”`, resend: () => sendMessage(room, body) });
    return false;
  }
}

els.composer.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const body = els.composerInput.value;
  if (!body.trim() || !ui.current) return;
  if (sendMessage(ui.current, body)) els.composerInput.value = '';
});

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
      const members = parseJIDs($('#create-members').value).filter((j) => j !== ui.muc.me);
      const jid = await ui.muc.createRoom({ name: $('#create-name').value.trim(), subject: $('#create-subject').value.trim(), members });
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

// Prefill the advanced field's placeholder with what discovery finds.
discoverWebSocketURLs()
  .then((urls) => {
    discovered = urls;
    if (urls.length) $('#signin-url').placeholder = urls[0];
  })
  .catch(() => {});
