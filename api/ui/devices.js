// "Your devices" (the user's sessions: list, end one, sign out everywhere;
// the remembered browsers: list, forget one) and account deletion. Ending another session and deleting the account go
// through the same "confirm it's you" panel as the other sensitive changes.

import { ApiError, api } from './api.js';
import { clearAccount, stepUpNeeded, withStepUp } from './account.js';
import { refreshEvents } from './activity.js';
import { forgetTokens, state } from './state.js';
import { $, busy, focus, on, say, show } from './ui.js';

/** A short name for a user agent: browser and system, or the string. */
export function deviceName(ua) {
  if (!ua) return 'Unknown device';
  const browser = [['Edg/', 'Edge'], ['OPR/', 'Opera'], ['Firefox/', 'Firefox'], ['Chrome/', 'Chrome'], ['Safari/', 'Safari']]
    .find(([k]) => ua.includes(k))?.[1];
  const system = [['Android', 'Android'], ['iPhone', 'iPhone'], ['iPad', 'iPad'], ['Windows', 'Windows'],
    ['Mac OS X', 'macOS'], ['CrOS', 'ChromeOS'], ['Linux', 'Linux']].find(([k]) => ua.includes(k))?.[1];
  if (browser && system) return `${browser} on ${system}`;
  return browser || system || (ua.length > 60 ? `${ua.slice(0, 57)}…` : ua);
}

function formatTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** Loads and shows GET /v1/me/sessions, then the remembered browsers. */
export async function loadDevices() {
  const { items } = await api('GET', '/v1/me/sessions', { token: 'access' });
  const ul = $('sessions');
  ul.replaceChildren();
  const tpl = $('session-item');
  for (const s of items || []) {
    const li = tpl.content.firstElementChild.cloneNode(true);
    li.dataset.id = s.id;
    li.dataset.current = String(s.current);
    const name = deviceName(s.user_agent);
    const dev = li.querySelector('.session-device');
    dev.textContent = name;
    if (s.user_agent) dev.title = s.user_agent;
    li.querySelector('.session-this').hidden = !s.current;
    const meta = [`signed in ${formatTime(s.created_at)}`, `last used ${formatTime(s.last_used_at)}`];
    if (s.ip) meta.push(s.ip);
    meta.push(s.acr);
    li.querySelector('.session-meta').textContent = meta.join(' · ');
    const end = li.querySelector('.session-end');
    if (s.current) {
      end.remove(); // "Sign out" at the top ends this one
    } else {
      end.setAttribute('aria-label', `End the session of ${name}, signed in ${formatTime(s.created_at)}`);
      end.addEventListener('click', () => endSession(s, name));
    }
    ul.append(li);
  }
  await loadRemembered();
}

/**
 * Loads and shows GET /v1/me/devices: the browsers whose key skips the
 * second factor (remember_device), this one marked.
 */
async function loadRemembered() {
  const { devices } = await api('GET', '/v1/me/devices', { token: 'access' });
  const ul = $('remembered-list');
  ul.replaceChildren();
  const tpl = $('remembered-item');
  for (const d of devices || []) {
    const li = tpl.content.firstElementChild.cloneNode(true);
    li.dataset.id = d.id;
    li.dataset.current = String(d.current);
    const name = deviceName(d.name);
    const dev = li.querySelector('.remembered-device');
    dev.textContent = name;
    if (d.name) dev.title = d.name;
    li.querySelector('.remembered-this').hidden = !d.current;
    const meta = [`remembered ${formatTime(d.second_factor_at)}`];
    if (d.last_used_at) meta.push(`last used ${formatTime(d.last_used_at)}`);
    meta.push(`until ${formatTime(d.expires_at)}`);
    li.querySelector('.remembered-meta').textContent = meta.join(' · ');
    const forget = li.querySelector('.remembered-forget');
    forget.setAttribute('aria-label', `Forget ${d.current ? 'this browser' : name}, remembered ${formatTime(d.second_factor_at)}`);
    forget.addEventListener('click', () => forgetRemembered(d, name));
    ul.append(li);
  }
  $('remembered').hidden = !ul.children.length;
}

function forgetRemembered(d, name) {
  busy(async () => {
    const r = await withStepUp(() => api('DELETE', `/v1/me/devices/${encodeURIComponent(d.id)}`, { token: 'access' }),
      'Forgetting a remembered browser needs a recent sign-in with a second factor.');
    if (r === stepUpNeeded) return;
    await loadRemembered();
    const title = $('remembered').hidden ? $('devices-title') : $('remembered-title');
    title.setAttribute('tabindex', '-1');
    focus(title);
    say(`Forgot ${d.current ? 'this browser' : name}: its next sign-in needs a second factor again.`, 'success');
  });
}

function endSession(s, name) {
  busy(async () => {
    const r = await withStepUp(() => api('DELETE', `/v1/me/sessions/${encodeURIComponent(s.id)}`, { token: 'access' }),
      'Ending another device’s session needs a recent sign-in with a second factor.');
    if (r === stepUpNeeded) return;
    await loadDevices();
    refreshEvents('session.revoked');
    $('devices-title').setAttribute('tabindex', '-1');
    focus($('devices-title'));
    say(`Ended the session of ${name}. It is signed out everywhere at once.`, 'success');
  });
}

on('devices-refresh', 'click', loadDevices);

/** Forgets this page's session after the server ended it on purpose. */
function leave(message) {
  forgetTokens();
  clearAccount();
  $('password').value = '';
  show('signin', 'username');
  say(message, 'success');
}

on('logout-all', 'click', async () => {
  await api('POST', '/v1/logout', { body: { all: true }, token: 'access' });
  leave('Signed out everywhere: every session of your account has ended.');
});

// ---------------------------------------------------------------- deletion

on('delete-start', 'click', () => {
  $('delete-form').hidden = false;
  $('delete-password').value = '';
  focus($('delete-password'));
  say('Enter your password to delete your account.');
});

$('delete-cancel').addEventListener('click', () => {
  closeDelete();
  focus($('delete-start'));
  say('Your account was not deleted.');
});

export function closeDelete() {
  $('delete-form').hidden = true;
  $('delete-password').value = '';
}

on('delete-form', 'submit', async () => {
  const password = $('delete-password').value;
  if (!password) {
    say('Enter your password.', 'error');
    focus($('delete-password'));
    return;
  }
  let r;
  try {
    r = await withStepUp(() => api('DELETE', '/v1/me', { body: { password }, token: 'access' }),
      'Deleting your account needs a recent sign-in with a second factor.');
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== 'invalid_credentials') throw err;
    $('delete-password').value = '';
    focus($('delete-password'));
    say('That password is not right. Your account was not deleted.', 'error');
    return;
  }
  if (r === stepUpNeeded) return;
  const name = state.username;
  closeDelete();
  leave(`The account “${name}” is deleted. Every device has been signed out.`);
  $('username').value = '';
});
