
'use strict';
// The calculator's dashboard. It uses the API as any client would:
//   GET /session                       do we need to log in? (401: yes)
//   POST /session                      log in: the token becomes an HttpOnly cookie
//   GET /readyz (every second)         ready, lag, throughput
//   GET /subscriptions/events?from=N   the tail of the event log, then live
//   GET /subscriptions/values/{id}     the selected value, live
//   GET /values/{id}/history           its history (with rejections), page by page
//   GET /values/{id}?version=N         the value as it was (the time-travel slider)
//   POST /values, PUT /values/{id}     the forms
//   GET /subscriptions/commands/{id}   each command's status as it moves
// Every piece of data reaches the page through textContent, never as HTML.
//
// Numbers are decimals with up to 34 digits (9007199254740993, 0.1, 1e+700),
// and the page shows them with exactly the server's digits: it never holds
// one as a JavaScript number, which is a double (JSON.parse would make
// 9007199254740993 into 9007199254740992, and 1e+700 into Infinity). It
// reads each "value", "result", "operand" and "before" as its source text
// (parseExact), shows that text, and sends what was typed in the forms as
// the JSON number's text (jsonNumber).

const TAIL = 50;          // events shown, and how far back the tail starts
const MAX_VALUES = 200;   // values kept in the table
const MAX_COMMANDS = 20;  // commands kept in the list
const MAX_HISTORY = 100;  // history entries shown (the slider reaches every version)

const $ = id => document.getElementById(id);

const state = {
  values: new Map(),   // value id -> {value, position}, most recently changed last
  events: [],          // newest first, at most TAIL
  lastPosition: null,  // id of the last events-stream message
  fresh: new Set(),    // positions to highlight once
  selected: null,      // {id, stream, value}
  authRequired: false,
  live: false,
};

// ---- rendering, batched: a busy log must not re-render the page per event.
let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(() => { renderQueued = false; renderValues(); renderEvents(); renderSelected(); renderHistory(); }, 50);
}

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

// NUMBERS are the members that hold a calculator's number.
const NUMBERS = new Set(['value', 'result', 'operand', 'before']);

// hasSourceText: JSON.parse gives a reviver each value's source text
// (Chromium 114, Firefox 135, Safari 18.4).
const hasSourceText = (() => {
  let has = false;
  JSON.parse('1', (k, v, context) => { has = !!context && typeof context.source === 'string'; return v; });
  return has;
})();

// parseExact is JSON.parse with the NUMBERS as their source text, a string
// of exactly the digits the server wrote. Without source text access, it
// quotes those numbers in the text first (a member name in quotes right
// before a colon is a member, never a string's content, where its quotes
// would be escaped).
function parseExact(text) {
  if (hasSourceText) {
    return JSON.parse(text, (k, v, context) => typeof v === 'number' && NUMBERS.has(k) ? context.source : v);
  }
  return JSON.parse(quoteNumbers(text));
}

function quoteNumbers(text) {
  return text.replace(/"(value|result|operand|before)":(-?[0-9][0-9.eE+-]*)/g, '"$1":"$2"');
}

// jsonNumber returns the number typed in a form as a JSON number's text,
// with the digits as typed (.5 becomes 0.5, 007 becomes 7), or null if it is
// not a number.
function jsonNumber(typed) {
  const m = /^(-?)([0-9]*)(?:\.([0-9]+))?([eE][+-]?[0-9]+)?$/.exec(typed.trim());
  if (!m || (m[2] === '' && m[3] === undefined)) return null;
  return m[1] + (m[2].replace(/^0+(?=[0-9])/, '') || '0') + (m[3] === undefined ? '' : '.' + m[3]) + (m[4] || '');
}

// fmt shows a number: the server's text as it is.
function fmt(n) { return String(n); }

function short(id) { return id.slice(0, 8); }

function renderValues() {
  const body = $('values').tBodies[0];
  const rows = [...state.values.entries()].reverse();
  body.replaceChildren(...rows.map(([id, v]) => {
    const tr = el('tr', {'data-value-id': id, class: state.selected && state.selected.id === id ? 'selected' : ''},
      el('td', {class: 'id', title: id, text: id}),
      el('td', {class: 'num', text: fmt(v.value)}),
      el('td', {class: 'num', text: v.position}));
    tr.addEventListener('click', () => select(id));
    return tr;
  }));
}

function describe(ev) {
  const d = ev.data;
  switch (ev.action) {
    case 'ValueCreated': return '= ' + fmt(d.value);
    case 'ValueUpdated': return d.operation + ' ' + fmt(d.value) + ' → ' + fmt(d.result);
    case 'CommandRejected': return d.reason + ': ' + d.message;
  }
  return '';
}

function time(ts) {
  const d = new Date(ts);
  return isNaN(d) ? ts : d.toLocaleTimeString([], {hour12: false}) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

function renderEvents() {
  const body = $('events').tBodies[0];
  body.replaceChildren(...state.events.map(({position, ev}) => {
    const tr = el('tr', {'data-position': position, 'data-action': ev.action, class: state.fresh.has(position) ? 'fresh' : ''},
      el('td', {class: 'num', text: position}),
      el('td', {class: ev.action, text: ev.action}),
      el('td', {class: 'id', title: ev.data['value-id'], text: short(ev.data['value-id'])}),
      el('td', {text: describe(ev)}),
      el('td', {text: time(ev.timestamp)}));
    return tr;
  }));
  state.fresh.clear();
}

function renderSelected() {
  const s = state.selected;
  $('selected-empty').hidden = !!s;
  $('selected-body').hidden = !s;
  if (!s) return;
  $('selected-id').textContent = s.id;
  $('selected-value').textContent = s.value ? fmt(s.value.value) : '…';
  $('selected-version').textContent = s.value ? s.value.version : '…';
  $('selected-position').textContent = s.value ? s.value.position : '…';
  $('selected-problem').textContent = s.problem || '';
}

// ---- the selected value's history, and time travel.
function versionsOf(s) {
  let n = 0;
  for (const e of s.history) if (e.version) n = e.version;
  return n;
}

function renderHistory() {
  const s = state.selected;
  $('history').hidden = !s;
  if (!s) return;
  const versions = versionsOf(s);
  const slider = $('history-slider');
  slider.max = String(Math.max(versions, 1));
  slider.disabled = versions < 2;
  const at = s.travel === null ? versions : s.travel;
  if (document.activeElement !== slider) slider.value = String(at);
  const entry = s.history.find(e => e.version === at);
  const shown = s.travelValue && s.travelValue.version === at ? s.travelValue.value : (entry ? entry.value : null);
  $('history-at').textContent = !entry ? '' :
    'version ' + at + ' of ' + versions + (s.travel === null ? ' (now)' : '') + ': ' + fmt(shown) + ' · ' + time(entry.timestamp);
  $('history-list').replaceChildren(...s.history.slice(-MAX_HISTORY).map(e => {
    const what = e.action === 'CommandRejected' ? 'rejected ' + e.reason + ': ' + (e.message || '') :
      e.action === 'ValueCreated' ? '= ' + fmt(e.value) : e.operation + ' ' + fmt(e.operand) + ': ' + fmt(e.before) + ' → ' + fmt(e.value);
    const later = e.version ? e.version > at : s.history.indexOf(e) > s.history.findIndex(x => x.version === at);
    return el('li', {'data-version': e.version || '', 'data-position': e.position,
        class: (e.action === 'CommandRejected' ? 'rejected ' : '') + (e.version === at ? 'at' : later ? 'later' : '')},
      el('span', {class: 'v', text: e.version ? 'v' + e.version : '·'}),
      el('span', {text: what}),
      el('span', {class: 'meta', text: time(e.timestamp)}));
  }));
}

async function loadHistory(s) {
  // The whole history once, then what follows the last entry read; one
  // load at a time per value (a change during a load asks for another).
  if (s.loading) { s.reload = true; return; }
  s.loading = true;
  try {
    do {
      s.reload = false;
      const last = s.history[s.history.length - 1];
      let url = '/values/' + encodeURIComponent(s.id) + '/history?include=rejected&limit=1000';
      if (last) url += last.version ? '&after_version=' + last.version : '&after_position=' + encodeURIComponent(last.position);
      while (url && state.selected === s) {
        const r = await fetch(url, {cache: 'no-store'});
        if (!r.ok) break;
        const j = parseExact(await r.text());
        s.history.push(...j.events);
        url = j.next || null;
      }
    } while (s.reload && state.selected === s);
  } catch (e) { /* the server is away: the value stream retries */ }
  s.loading = false;
  render();
}

$('history-slider').addEventListener('input', async e => {
  const s = state.selected;
  if (!s) return;
  const version = Number(e.target.value);
  s.travel = version >= versionsOf(s) ? null : version; // at the end: follow the value live
  render();
  const r = await fetch('/values/' + encodeURIComponent(s.id) + '?version=' + version, {cache: 'no-store'});
  if (r.ok && state.selected === s) { s.travelValue = parseExact(await r.text()); render(); }
});

// ---- the process's state, from /readyz.
let previous = null;
async function pollReady() {
  try {
    const r = await fetch('/readyz', {cache: 'no-store'});
    const j = await r.json();
    const pill = $('state');
    pill.textContent = r.ok ? 'ready' : 'not ready';
    pill.className = 'pill ' + (r.ok ? 'ready' : 'not-ready');
    $('state-detail').textContent = r.ok ? '' : (j.detail || '');
    const proc = j.processor || {}, view = j.view || {}, log = j.log || {};
    $('lag').textContent = proc.commands_behind ?? '–';
    $('events-read').textContent = view.events_read ?? '–';
    $('backend').textContent = log.backend === 'kafka' ? 'Kafka ' + (log.brokers || '') : (log.backend ? 'embedded log' : '–');
    const now = performance.now();
    if (previous && typeof view.events_read === 'number' && view.events_read >= previous.read) {
      const rate = (view.events_read - previous.read) / ((now - previous.at) / 1000);
      $('throughput').textContent = rate < 10 ? rate.toFixed(1) : Math.round(rate);
    }
    if (typeof view.events_read === 'number') previous = {read: view.events_read, at: now};
    return j;
  } catch (e) {
    $('state').textContent = 'unreachable';
    $('state').className = 'pill not-ready';
    previous = null;
    return null;
  } finally {
    clearTimeout(pollReady.timer);
    pollReady.timer = setTimeout(pollReady, 1000);
  }
}

// ---- authentication.
async function checkSession() {
  const r = await fetch('/session', {cache: 'no-store'});
  if (r.status === 401) return false;
  const j = await r.json();
  state.authRequired = j.auth_required;
  $('logout').hidden = !j.auth_required;
  return true;
}

function showLogin() {
  if (!$('login').open) $('login').showModal();
  $('login-token').focus();
}

$('login-form').addEventListener('submit', async e => {
  e.preventDefault();
  $('login-error').textContent = '';
  const r = await fetch('/session', {
    method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({token: $('login-token').value}),
  });
  if (r.status !== 204) {
    const j = await r.json().catch(() => ({}));
    $('login-error').textContent = r.status === 401 ? 'Wrong token.' : (j.detail || 'Could not log in (' + r.status + ').');
    return;
  }
  $('login-token').value = '';
  $('login').close();
  start();
});

$('logout').addEventListener('click', async () => {
  await fetch('/session', {method: 'DELETE'});
  location.reload();
});

// ---- the event log: the tail, then live.
function nextPosition(id) {
  // The message's id names the last event sent in each partition: start after it.
  return id.split(',').map(part => {
    const [p, o] = part.includes(':') ? part.split(':') : [null, part];
    const next = String(Number(o) + 1);
    return p === null ? next : p + ':' + next;
  }).join(',');
}

async function openEvents() {
  let from = state.lastPosition === null ? null : nextPosition(state.lastPosition);
  if (from === null) {
    // The tail: /readyz gives the view's position in the events log (an
    // offset; on Kafka, transaction markers take offsets too), which on a log
    // of one partition is where the log ends.
    const j = await pollReady();
    const position = j && j.view ? j.view.position : 0;
    from = String(Math.max(0, position - TAIL));
  }
  const es = new EventSource('/subscriptions/events?from=' + encodeURIComponent(from));
  for (const action of ['ValueCreated', 'ValueUpdated', 'CommandRejected']) {
    es.addEventListener(action, onEvent);
  }
  es.onerror = () => {
    // EventSource reconnects by itself (with Last-Event-ID) after a dropped
    // connection; after an HTTP error (503 while the server replays, 401) it
    // gives up, and so do we, for a second.
    if (es.readyState === EventSource.CLOSED) setTimeout(reopen, 1000, openEvents);
  };
}

async function reopen(open) {
  try {
    if (!(await checkSession())) { state.live = false; showLogin(); return; }
  } catch (e) { /* unreachable: try again */ }
  open();
}

function onEvent(e) {
  const ev = parseExact(e.data);
  const position = e.lastEventId;
  state.lastPosition = position;
  state.events.unshift({position, ev});
  if (state.events.length > TAIL) state.events.length = TAIL;
  state.fresh.add(position);
  const id = ev.data['value-id'];
  if (state.selected && state.selected.id === id) loadHistory(state.selected); // rejections too
  if (ev.action === 'ValueCreated' || ev.action === 'ValueUpdated') {
    state.values.delete(id); // re-insert: most recently changed last
    state.values.set(id, {value: ev.action === 'ValueCreated' ? ev.data.value : ev.data.result, position});
    if (state.values.size > MAX_VALUES) state.values.delete(state.values.keys().next().value);
  }
  render();
}

// ---- the selected value, live.
function select(id) {
  if (state.selected && state.selected.id === id) return;
  if (state.selected) state.selected.stream.close();
  $('update-id').value = id;
  const s = {id, value: null, problem: '', history: [], travel: null, travelValue: null};
  s.stream = new EventSource('/subscriptions/values/' + encodeURIComponent(id));
  s.stream.addEventListener('value', e => {
    s.value = {...parseExact(e.data), position: e.lastEventId};
    s.problem = '';
    if (s.value.version > versionsOf(s)) loadHistory(s);
    render();
  });
  s.stream.onerror = () => {
    if (s.stream.readyState !== EventSource.CLOSED || state.selected !== s) return;
    s.problem = 'The value stream stopped (no such value, or the server is away); retrying.';
    render();
    setTimeout(() => { if (state.selected === s) { state.selected = null; select(id); } }, 2000);
  };
  state.selected = s;
  render();
}

// ---- commands and their status.
function addCommand(label) {
  const steps = {};
  const stepNames = ['accepted', 'outcome', 'applied'];
  const li = el('li', {'data-status': 'sending'},
    el('div', {class: 'label', text: label}),
    el('div', {class: 'steps'}, ...stepNames.map(n => (steps[n] = el('span', {class: 'step', 'data-step': n, text: n === 'outcome' ? 'succeeded / rejected' : n})))),
    el('div', {class: 'note'}));
  const list = $('commands');
  list.prepend(li);
  while (list.children.length > MAX_COMMANDS) list.lastChild.remove();
  return {
    li,
    step(name, text, ok = true) {
      steps[name].textContent = text;
      steps[name].className = 'step ' + (ok ? 'done' : 'bad');
    },
    status(s) { li.setAttribute('data-status', s); },
    note(text) { li.querySelector('.note').textContent = text; },
  };
}

async function send(method, url, body, label, onApplied) {
  const card = addCommand(label);
  let r, j;
  try {
    r = await fetch(url, {method, headers: {'Content-Type': 'application/json'}, body});
    j = await r.json().catch(() => ({}));
  } catch (e) {
    card.status('failed'); card.note('The server could not be reached.');
    return;
  }
  if (r.status !== 202) {
    card.status('refused');
    card.step('accepted', 'refused ' + r.status, false);
    card.note(j.detail || j.title || '');
    if (r.status === 401) showLogin();
    return;
  }
  card.li.setAttribute('data-command-id', j.command_id);
  card.note('command ' + j.command_id);
  follow(card, j.command_id, onApplied);
}

function follow(card, commandId, onApplied) {
  const es = new EventSource('/subscriptions/commands/' + encodeURIComponent(commandId));
  let done = false;
  es.addEventListener('accepted', () => { card.step('accepted', 'accepted'); card.status('accepted'); });
  es.addEventListener('succeeded', () => { card.step('outcome', 'succeeded'); card.status('succeeded'); });
  es.addEventListener('rejected', e => {
    const d = JSON.parse(e.data);
    card.step('outcome', 'rejected: ' + d.reason, false);
    card.status('rejected');
    card.note(d.message || d.reason);
  });
  es.addEventListener('applied', e => {
    const d = parseExact(e.data);
    done = true;
    es.close(); // the stream ends after this: no reconnection wanted
    card.step('applied', d.value === undefined ? 'applied' : 'applied: ' + fmt(d.value) + ' (v' + d.version + ')');
    card.status(d.status === 'rejected' ? 'rejected-applied' : 'applied');
    if (d.status === 'succeeded' && onApplied) onApplied(d);
  });
  es.addEventListener('unknown', e => {
    done = true;
    es.close();
    card.status('unknown');
    card.note(JSON.parse(e.data).detail);
  });
  es.onerror = () => {
    if (!done && es.readyState === EventSource.CLOSED) {
      card.note('The status stream stopped; the command is stored and will get its outcome.');
    }
  };
}

$('create-form').addEventListener('submit', e => {
  e.preventDefault();
  const value = jsonNumber($('create-value').value);
  if (value === null) { $('create-value').setCustomValidity('a number, such as 2.5 or 1e-7'); $('create-value').reportValidity(); return; }
  send('POST', '/values', '{"value":' + value + '}', 'create ' + value, d => select(d.value_id));
});

$('update-form').addEventListener('submit', e => {
  e.preventDefault();
  const id = $('update-id').value.trim(), operation = $('update-op').value, value = jsonNumber($('update-operand').value);
  if (value === null) { $('update-operand').setCustomValidity('a number, such as 2.5 or 1e-7'); $('update-operand').reportValidity(); return; }
  send('PUT', '/values/' + encodeURIComponent(id), '{"operation":' + JSON.stringify(operation) + ',"value":' + value + '}',
    operation + ' ' + value + ' on ' + short(id));
});

for (const input of [$('create-value'), $('update-operand')]) {
  input.addEventListener('input', () => input.setCustomValidity(''));
}

// ---- start.
async function start() {
  if (state.live) return;
  let ok;
  try { ok = await checkSession(); } catch (e) { setTimeout(start, 1000); return; }
  if (!ok) { showLogin(); return; }
  state.live = true;
  openEvents();
}

pollReady();
start();
