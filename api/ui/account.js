// The signed-in view: what the token says, the factors (list, rename,
// remove), enrollment of TOTP apps and security keys, recovery codes, and the
// "confirm it's you" panel that an RFC 9470 challenge opens. The recent
// security activity is in activity.js.

import * as wa from './webauthn.js';
import { ApiError, api, refreshTokens } from './api.js';
import { clearActivity, refreshEvents } from './activity.js';
import { closeDelete, loadDevices } from './devices.js';
import { state } from './state.js';
import { $, busy, focus, on, say, show } from './ui.js';

const acrText = {
  aal1: 'password only',
  aal2: 'two factors',
  aal3: 'two factors, one a device-bound key',
};

const amrText = {
  pwd: 'password',
  otp: 'one-time code',
  hwk: 'device-bound key',
  swk: 'synced or software key',
  user: 'user verified (PIN or biometrics)',
  mfa: 'more than one factor',
  rec: 'recovery code',
};

const kindText = { totp: 'Authenticator app', webauthn: 'Security key or passkey' };

export async function loadAccount() {
  const [me, list] = await Promise.all([api('GET', '/v1/me', { token: 'access' }),
    api('GET', '/v1/me/factors', { token: 'access' })]);
  renderMe(me);
  renderFactors(list);
  await loadDevices();
}

/**
 * Shows the account view and (re)loads the recent activity, without waiting
 * for it. expect: the type of the event that what just happened wrote.
 */
export function showAccount(expect) {
  show('account');
  refreshEvents(expect);
}

function renderMe(me) {
  state.username = me.username;
  state.sid = me.sid || null;
  $('who').textContent = me.username;
  $('me-username').textContent = me.username;
  $('me-acr').textContent = me.acr;
  $('me-acr').dataset.acr = me.acr;
  $('me-acr-text').textContent = acrText[me.acr] ? `(${acrText[me.acr]})` : '';
  const amr = $('me-amr');
  amr.replaceChildren();
  (me.amr || []).forEach((m, i) => {
    if (i > 0) amr.append(' ');
    const chip = document.createElement('abbr');
    chip.className = 'chip';
    chip.textContent = m;
    chip.title = amrText[m] || m;
    amr.append(chip);
  });
  const t = $('me-auth-time');
  t.dateTime = me.auth_time;
  t.textContent = formatTime(me.auth_time);
}

function formatTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** Renders GET /v1/me/factors: the factors and the recovery-code count. */
function renderFactors(list) {
  const factors = list.factors || [];
  renderRecoveryCount(factors.some((f) => f.confirmed), list.recovery_codes_remaining);
  const ul = $('factors');
  ul.replaceChildren();
  $('factors-empty').hidden = factors.length > 0;
  const tpl = $('factor-item');
  const confirmed = factors.filter((f) => f.confirmed).length;
  for (const f of factors) {
    // Removing the last second factor leaves the password alone: the
    // question says so, and the request says it was meant (?last=true).
    f.last = f.confirmed && confirmed === 1;
    const li = tpl.content.firstElementChild.cloneNode(true);
    li.dataset.id = f.id;
    li.dataset.kind = f.kind;
    li.dataset.confirmed = String(f.confirmed);
    li.querySelector('.factor-name').textContent = f.name;
    li.querySelector('.factor-kind').textContent = kindText[f.kind] || f.kind;
    const meta = [`added ${formatTime(f.created_at)}`];
    if (f.last_used_at) meta.push(`last used ${formatTime(f.last_used_at)}`);
    if (!f.confirmed) meta.unshift('not confirmed yet');
    li.querySelector('.factor-meta').textContent = meta.join(' · ');
    const label = `${f.name} (${kindText[f.kind] || f.kind})`;
    li.querySelector('.rename').setAttribute('aria-label', `Rename ${label}`);
    li.querySelector('.remove').setAttribute('aria-label', `Remove ${label}`);
    li.querySelector('.rename-input').value = f.name;
    li.querySelector('.remove-question').textContent = f.last
      ? `Remove “${f.name}”? It is your last second factor: you will sign in with your password alone.`
      : `Remove “${f.name}”? You will no longer be able to sign in with it.`;
    wireFactor(li, f);
    ul.append(li);
  }
}

function wireFactor(li, f) {
  const q = (sel) => li.querySelector(sel);
  const form = q('.rename-form');
  const confirm = q('.remove-confirm');
  q('.rename').addEventListener('click', () => {
    confirm.hidden = true;
    form.hidden = false;
    focus(q('.rename-input'));
    q('.rename-input').select();
  });
  q('.rename-cancel').addEventListener('click', () => {
    form.hidden = true;
    focus(q('.rename'));
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(async () => {
      const name = q('.rename-input').value.trim();
      if (!name) {
        say('Enter a name.', 'error');
        focus(q('.rename-input'));
        return;
      }
      const done = await withStepUp(() => api('PATCH', `/v1/me/factors/${encodeURIComponent(f.id)}`,
        { body: { name }, token: 'access' }));
      if (done === stepUpNeeded) return;
      await reloadFactors(f.id, '.rename');
      say(`Renamed to “${name}”.`, 'success');
    });
  });
  q('.remove').addEventListener('click', () => {
    form.hidden = true;
    confirm.hidden = false;
    focus(q('.remove-no'));
  });
  q('.remove-no').addEventListener('click', () => {
    confirm.hidden = true;
    focus(q('.remove'));
  });
  q('.remove-yes').addEventListener('click', () => busy(async () => {
    const last = f.last ? '?last=true' : '';
    const removed = await withStepUp(() => api('DELETE', `/v1/me/factors/${encodeURIComponent(f.id)}${last}`, { token: 'access' }),
      `Removing “${f.name}” needs a recent sign-in at the level it provides.`);
    if (removed === stepUpNeeded) {
      confirm.hidden = true;
      return;
    }
    try {
      // Removing a factor may downgrade this session (or end it): a fresh
      // access token shows what the sign-in still proves.
      await refreshTokens();
      await loadAccount();
      refreshEvents('factor.removed');
    } catch (err) {
      if (err.code !== 'session_ended') throw err;
      say(`Removed “${f.name}”. You were signed out to be safe: sign in again.`, 'success');
      return;
    }
    $('factors-title').setAttribute('tabindex', '-1');
    focus($('factors-title'));
    say(`Removed “${f.name}”.`, 'success');
  }));
}

async function reloadFactors(focusId, focusSel) {
  renderFactors(await api('GET', '/v1/me/factors', { token: 'access' }));
  if (focusId) focus($('factors').querySelector(`li[data-id="${CSS.escape(focusId)}"] ${focusSel}`));
}

// ---------------------------------------------------------------- step-up

export const stepUpNeeded = Symbol('step-up needed');

/**
 * Runs fn; an RFC 9470 insufficient_user_authentication answer opens the
 * "confirm it's you" panel instead of failing.
 */
export async function withStepUp(fn, why) {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== 'insufficient_user_authentication') throw err;
    state.stepUp = parseChallenge(err.challenge);
    $('stepup-text').textContent = `${why || 'This change needs a recent sign-in with a second factor.'} ` +
      'Confirm it’s you with a second factor, then make the change again.';
    $('stepup').hidden = false;
    focus($('stepup-title'));
    say('Confirm it’s you to make this change.', 'error');
    return stepUpNeeded;
  }
}

/** The acr_values and max_age of an RFC 9470 challenge. */
function parseChallenge(header) {
  const param = (name) => (header || '').match(new RegExp(`${name}="([^"]*)"`))?.[1];
  const maxAge = Number.parseInt(param('max_age'), 10);
  return { acr: param('acr_values') || 'aal2', maxAge: Number.isFinite(maxAge) ? maxAge : 300 };
}

$('stepup-cancel').addEventListener('click', () => {
  $('stepup').hidden = true;
  $('stepup-password-row').hidden = true;
  $('stepup-password').value = '';
  $('factors-title').setAttribute('tabindex', '-1');
  focus($('factors-title'));
});

// ---------------------------------------------------------------- enrollment

function newFactorName() {
  const name = $('factor-name').value.trim();
  return name || undefined;
}

on('add-totp', 'click', async () => {
  const name = newFactorName();
  const enr = await withStepUp(() => api('POST', '/v1/me/factors/totp', { body: name ? { name } : {}, token: 'access' }),
    'Adding another factor needs a recent sign-in with a second factor.');
  if (enr === stepUpNeeded) return;
  state.enrolling = enr.id;
  $('totp-qr').src = enr.qr_png;
  $('totp-secret').textContent = enr.secret.replace(/(.{4})(?=.)/g, '$1 ');
  $('totp-confirm-code').value = '';
  $('totp-enroll').hidden = false;
  focus($('totp-enroll-title'));
  say('Scan the QR code, then enter the code your app shows.');
  await reloadFactors();
});

on('totp-confirm-form', 'submit', async () => {
  const code = $('totp-confirm-code').value.replace(/\s+/g, '');
  if (!/^[0-9]{6}$/.test(code)) {
    say('Enter the 6 digits your authenticator app shows.', 'error');
    focus($('totp-confirm-code'));
    return;
  }
  let f;
  try {
    f = await api('POST', `/v1/me/factors/totp/${encodeURIComponent(state.enrolling)}/confirm`, { body: { code }, token: 'access' });
  } catch (err) {
    $('totp-confirm-code').value = '';
    focus($('totp-confirm-code'));
    if (err.code === 'not_found') {
      say('This enrollment has expired. Start again.', 'error');
      return;
    }
    throw err;
  }
  closeEnrollment();
  $('factor-name').value = '';
  await reloadFactors();
  refreshEvents('factor.added');
  say('Authenticator app added. You can use its codes to sign in.', 'success');
  if (f.recovery_codes) firstRecoveryCodes(f.recovery_codes);
});

export function closeEnrollment() {
  state.enrolling = null;
  $('totp-enroll').hidden = true;
  $('totp-qr').removeAttribute('src');
  $('totp-secret').textContent = '';
}

$('totp-enroll-cancel').addEventListener('click', () => {
  closeEnrollment();
  focus($('add-totp'));
  say('Enrollment cancelled; the unconfirmed app is dropped after 15 minutes.');
});

on('add-key', 'click', async () => {
  if (!wa.supported()) {
    say('This browser cannot use security keys or passkeys.', 'error');
    return;
  }
  const name = newFactorName();
  const opts = await withStepUp(() => api('POST', '/v1/me/factors/webauthn/options', { token: 'access' }),
    'Adding another factor needs a recent sign-in with a second factor.');
  if (opts === stepUpNeeded) return;
  say('Follow your browser’s prompt to create a passkey or touch your security key…');
  let cred;
  try {
    cred = await navigator.credentials.create({ publicKey: wa.creationOptions(opts.publicKey) });
  } catch (err) {
    say(wa.describeError(err, true), 'error');
    return;
  }
  const body = wa.credentialJSON(cred);
  if (name) body.name = name;
  const f = await withStepUp(() => api('POST', '/v1/me/factors/webauthn', { body, token: 'access' }),
    'Adding another factor needs a recent sign-in with a second factor.');
  if (f === stepUpNeeded) return;
  $('factor-name').value = '';
  await reloadFactors();
  refreshEvents('factor.added');
  say(`“${f.name}” added. You can use it to sign in.`, 'success');
  if (f.recovery_codes) firstRecoveryCodes(f.recovery_codes);
});

// ---------------------------------------------------------------- recovery codes

/** The first factor brings the first recovery codes. */
function firstRecoveryCodes(codes) {
  showRecoveryCodes(codes);
  say(`${$('status').textContent} Save these recovery codes too: they are shown only now.`, 'success');
}

function renderRecoveryCount(hasFactor, left) {
  $('recovery').hidden = !hasFactor;
  if (typeof left !== 'number') {
    $('recovery-count').textContent = '';
    return;
  }
  $('recovery-count').textContent = left === 0
    ? 'You have no unused recovery codes.'
    : `You have ${left} unused recovery code${left === 1 ? '' : 's'}.`;
}

/** Shows a new set of recovery codes, this once. */
function showRecoveryCodes(codes) {
  const ol = $('recovery-list');
  ol.replaceChildren(...codes.map((c) => {
    const li = document.createElement('li');
    li.textContent = c;
    return li;
  }));
  $('recovery').hidden = false;
  $('recovery-panel').hidden = false;
  focus($('recovery-panel-title'));
}

on('recovery-new', 'click', async () => {
  const r = await withStepUp(() => api('POST', '/v1/me/recovery-codes', { token: 'access' }),
    'Creating new recovery codes needs a recent sign-in with a second factor.');
  if (r === stepUpNeeded) return;
  await reloadFactors();
  refreshEvents('recovery_codes.replaced');
  showRecoveryCodes(r.recovery_codes);
  say('New recovery codes created; the old ones no longer work. Save these now.', 'success');
});

$('recovery-done').addEventListener('click', () => {
  $('recovery-panel').hidden = true;
  $('recovery-list').replaceChildren();
  focus($('recovery-new'));
});

/** Clears what the signed-in view showed of the last session. */
export function clearAccount() {
  closeEnrollment();
  $('stepup').hidden = true;
  $('recovery-panel').hidden = true;
  $('recovery-list').replaceChildren();
  clearActivity();
  closeDelete();
  $('sessions').replaceChildren();
  state.sid = null;
}
