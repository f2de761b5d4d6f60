// "Recent security activity": the caller's events (GET /v1/me/events), one
// sentence each, newest first, those of this session marked. The service
// writes events off the request path, so the event of an action may land a
// few milliseconds after the action's answer: a load that expects one polls
// briefly until it is there.

import { api } from './api.js';
import { state } from './state.js';
import { $, describe, on, say } from './ui.js';

/** How many events show before "Show all". */
const FIRST = 10;

/** Pauses between the polls of a load that waits for an event: 1.85 s at most. */
const RETRY_MS = [100, 250, 500, 1000];

const factorKind = { totp: 'authenticator app', webauthn: 'security key or passkey' };
const mfaKind = { totp: 'authenticator app code', webauthn: 'security key or passkey', 'recovery code': 'recovery code' };

const paren = (text, extra) => (extra ? `${text} (${extra})` : text);

/** "aal2 pwd,otp,mfa" → "aal2: pwd, otp, mfa". */
function assurance(detail) {
  const [acr, amr] = (detail || '').split(' ');
  if (!acr) return '';
  return amr ? `${acr}: ${amr.split(',').join(', ')}` : acr;
}

/** "totp f_123" → "authenticator app". */
const kindOf = (detail) => factorKind[(detail || '').split(' ')[0]] || '';

/** The sentence for each event type, from its detail. */
const sentences = {
  'login.success': (d) => paren('Signed in', assurance(d)),
  'login.failure': (d) => (d === 'password change' ? 'Wrong current password when changing the password' : 'Failed sign-in'),
  'mfa.failure': (d) => paren('Second factor not accepted', mfaKind[d] || d),
  'factor.added': (d) => paren('Added a factor', kindOf(d)),
  'factor.removed': (d) => paren('Removed a factor', kindOf(d)),
  'session.step_up': (d) => paren('Stepped up', assurance(d)),
  'recovery_code.used': (d) => paren('Used a recovery code', d),
  'recovery_codes.replaced': () => 'Created new recovery codes',
  'refresh_token.reused': () => 'Refresh token reuse detected — session ended',
  'account.throttled': (d) => paren('Too many failed attempts', d),
  'session.logout': () => 'Signed out',
  'session.revoked': () => 'Session ended by an app',
  'password.changed': (d) => paren('Password changed', d),
  'account.reset': () => 'Account reset by an administrator',
  'device.remembered': () => 'Remembered a browser: the password alone signs in there',
  'device.forgotten': () => 'Forgot a remembered browser',
};

/** Events worth a second look: shown in the danger color (the words say it too). */
const warn = new Set(['login.failure', 'mfa.failure', 'refresh_token.reused', 'account.throttled', 'account.reset']);

export function eventSentence(e) {
  const f = sentences[e.type];
  return f ? f(e.detail || '') : paren(e.type || 'Unknown event', e.detail);
}

/**
 * A short name for a User-Agent: "Chrome 126 on Android", "Safari 17 on
 * iPhone", "curl 8.5.0". The full string is the element's title.
 */
export function shortAgent(ua) {
  if (!ua) return '';
  const browsers = [
    [/\bEdg(?:e|A|iOS)?\/(\d+)/, 'Edge'],
    [/\b(?:OPR|Opera)\/(\d+)/, 'Opera'],
    [/\bSamsungBrowser\/(\d+)/, 'Samsung Internet'],
    [/\b(?:Firefox|FxiOS)\/(\d+)/, 'Firefox'],
    [/\bHeadlessChrome\/(\d+)/, 'Headless Chrome'],
    [/\b(?:Chrome|CriOS|Chromium)\/(\d+)/, 'Chrome'],
    [/\bVersion\/(\d+)[^ ]* (?:Mobile\/\S+ )?Safari\//, 'Safari'],
  ];
  let browser = '';
  for (const [re, name] of browsers) {
    const m = ua.match(re);
    if (m) {
      browser = `${name} ${m[1]}`;
      break;
    }
  }
  const systems = [[/iPhone/, 'iPhone'], [/iPad/, 'iPad'], [/Android/, 'Android'], [/CrOS/, 'ChromeOS'],
    [/Windows/, 'Windows'], [/Macintosh|Mac OS X/, 'macOS'], [/Linux/, 'Linux']];
  const os = systems.find(([re]) => re.test(ua))?.[1] || '';
  if (browser) return os ? `${browser} on ${os}` : browser;
  if (/^Mozilla\//.test(ua)) return os ? `A browser on ${os}` : 'A browser';
  // Another client: its first product token.
  const tok = ua.match(/^([A-Za-z][\w.-]*)(?:\/([\w.-]+))?/);
  const s = tok ? [tok[1], tok[2]].filter(Boolean).join(' ') : ua;
  return s.length > 40 ? `${s.slice(0, 39)}…` : s;
}

function formatWhen(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso || '' : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

const keyOf = (e) => [e.at, e.type, e.sid || '', e.detail || ''].join('|');

function tally(keys) {
  const n = new Map();
  for (const k of keys) n.set(k, (n.get(k) || 0) + 1);
  return n;
}

let generation = 0; // bumped by every load and by sign-out: an older load drops its answer
let shown = []; // the events on the page
let expanded = false;

/**
 * Loads and shows the events. expect, an event type, makes the load poll
 * (for under 2 s) until an event of that type, of this session, that was not
 * on the page before is in the list. Returns the failure, if it failed;
 * failures also show in the section, never in the page's status.
 */
export async function refreshEvents(expect) {
  const gen = ++generation;
  const before = tally(shown.map(keyOf));
  const list = $('events');
  list.setAttribute('aria-busy', 'true');
  if (shown.length === 0) note('Loading…');
  try {
    for (let i = 0; ; i++) {
      const events = (await api('GET', '/v1/me/events', { token: 'access' }))?.events || [];
      if (gen !== generation) return null;
      const found = !expect || newEvent(events, before, expect);
      const last = found || i >= RETRY_MS.length;
      if (events.length > 0 || last) render(events);
      if (last) return null;
      await new Promise((r) => { setTimeout(r, RETRY_MS[i]); });
      if (gen !== generation) return null;
    }
  } catch (err) {
    if (gen !== generation) return null;
    note(`Your recent activity could not be loaded. ${describe(err)}`);
    return err;
  } finally {
    if (gen === generation) list.removeAttribute('aria-busy');
  }
}

function newEvent(events, before, type) {
  const now = tally(events.filter((e) => e.type === type && e.sid && e.sid === state.sid).map(keyOf));
  return [...now].some(([k, n]) => n > (before.get(k) || 0));
}

function note(text) {
  $('events-note').textContent = text;
  $('events-note').hidden = !text;
}

function render(events) {
  const same = events.length === shown.length && events.every((e, i) => keyOf(e) === keyOf(shown[i]));
  shown = events;
  note(events.length ? '' : 'No activity yet.');
  if (same && $('events').children.length > 0) return; // nothing new: leave the list (and a reader's place) alone
  draw();
}

function draw() {
  const tpl = $('event-item');
  const visible = expanded ? shown : shown.slice(0, FIRST);
  $('events').replaceChildren(...visible.map((e) => {
    const li = tpl.content.firstElementChild.cloneNode(true);
    li.dataset.type = e.type;
    const current = !!e.sid && e.sid === state.sid;
    li.dataset.current = String(current);
    if (warn.has(e.type)) li.dataset.tone = 'warn';
    li.querySelector('.event-text').textContent = eventSentence(e);
    li.querySelector('.event-this').hidden = !current;
    const time = li.querySelector('.event-time');
    time.dateTime = e.at;
    time.textContent = formatWhen(e.at);
    const where = [e.ip, shortAgent(e.user_agent)].filter(Boolean).join(' · ');
    const w = li.querySelector('.event-where');
    w.textContent = where;
    w.hidden = !where;
    if (e.user_agent) w.title = e.user_agent;
    return li;
  }));
  const more = $('events-more');
  more.hidden = shown.length <= FIRST;
  more.setAttribute('aria-expanded', String(expanded));
  more.textContent = expanded ? 'Show fewer' : `Show all ${shown.length}`;
}

$('events-more').addEventListener('click', () => {
  expanded = !expanded;
  draw();
});

on('events-refresh', 'click', async () => {
  const err = await refreshEvents();
  if (err) {
    say(`Your recent activity could not be loaded. ${describe(err)}`, 'error');
    return;
  }
  say(`Recent activity updated: ${shown.length} event${shown.length === 1 ? '' : 's'}.`);
});

/** Forgets the events shown (sign-out). */
export function clearActivity() {
  generation++;
  shown = [];
  expanded = false;
  $('events').replaceChildren();
  $('events').removeAttribute('aria-busy');
  $('events-more').hidden = true;
  note('');
}
