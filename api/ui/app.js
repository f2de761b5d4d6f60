// stepup's built-in page: sign-up, sign-in with a second factor or a
// passkey, step-up, enrollment and factor management. It calls only the
// public JSON API, as any frontend would. The access token lives in memory
// only; the refresh token travels in the service's HttpOnly cookie (cookie
// mode: the X-Stepup-Cookie header), out of reach of scripts, which also lets
// a reload resume the session.

import * as wa from './webauthn.js';
import { ApiError, api, onSessionEnded, rotate, usesDPoP } from './api.js';
import { clearAccount, loadAccount, showAccount } from './account.js';
import { state, forgetTokens } from './state.js';
import { $, fail, focus, on, say, show } from './ui.js';

// ---------------------------------------------------------------- sign-in

function readCredentials() {
  const username = $('username').value.trim();
  const password = $('password').value;
  if (!username) {
    say('Enter your username.', 'error');
    focus($('username'));
    return null;
  }
  if (!password) {
    say('Enter your password.', 'error');
    focus($('password'));
    return null;
  }
  return { username, password };
}

async function signIn(creds) {
  const r = await api('POST', '/v1/login', { body: creds });
  $('password').value = '';
  state.username = creds.username;
  if (r.status === 'mfa_required') {
    state.mfaToken = r.mfa_token;
    showMFA(r.factors || []);
    return;
  }
  await signedIn(r);
}

/** Shows the second-factor view for the factors the mfa_token accepts. */
function showMFA(factors, stepUp = false) {
  state.steppingUp = stepUp;
  const totp = factors.includes('totp');
  const key = factors.includes('webauthn');
  const recovery = factors.includes('recovery');
  const onlyRecovery = recovery && !totp && !key;
  $('mfa-intro').textContent = stepUp
    ? 'To make this change, confirm it’s you with one of your second factors.'
    : 'Your password was right. Now use one of your second factors.';
  $('mfa-totp').hidden = !totp;
  $('mfa-webauthn').hidden = !key;
  $('mfa-or').hidden = !(totp && key);
  $('webauthn-verify').classList.toggle('primary', !totp);
  $('mfa-recovery-offer').hidden = !recovery || onlyRecovery;
  $('mfa-recovery').hidden = !onlyRecovery;
  $('recovery-verify').classList.toggle('primary', onlyRecovery);
  $('mfa-none').hidden = totp || key || recovery;
  // A remembered browser is one whose DPoP key the service knows: only
  // when signing in, not when confirming a change.
  $('mfa-remember-row').hidden = stepUp || !usesDPoP() || !(totp || key || recovery);
  $('mfa-remember').checked = false;
  $('totp-code').value = '';
  $('recovery-code').value = '';
  show('mfa', totp ? 'totp-code' : key ? 'webauthn-verify' : onlyRecovery ? 'recovery-code' : undefined);
  say(totp && key ? 'Enter a code from your app, or use your security key.'
    : totp ? 'Enter the code from your authenticator app.'
      : key ? 'Use your security key or passkey.'
        : onlyRecovery ? 'Enter one of your recovery codes.' : 'No second factor is available.');
}

/**
 * Stores the tokens of a finished sign-in or step-up and opens the account
 * view. A step-up answer has no refresh token: the session's one still works.
 * wrote: whether the service recorded a sign-in or step-up event (a step-up
 * that the session's last sign-in already satisfied records none).
 */
async function signedIn(t, wrote = true) {
  const stepUp = state.steppingUp;
  state.access = t.access_token;
  if (t.refresh_token) state.refresh = t.refresh_token;
  state.mfaToken = null;
  state.steppingUp = false;
  state.stepUp = null;
  $('stepup').hidden = true;
  await loadAccount();
  showAccount(wrote ? (stepUp ? 'session.step_up' : 'login.success') : undefined);
  let msg = stepUp ? 'Confirmed: you can make the change now.' : 'You’re signed in.';
  const left = t.recovery_codes_remaining;
  if (typeof left === 'number') {
    msg += ` You have ${left} recovery code${left === 1 ? '' : 's'} left.`;
    if (left < 3) msg += ' Create new ones below.';
  }
  if (t.device_remembered) msg += ' This browser is remembered: next time your password is enough here.';
  say(msg, 'success');
}

/** body, asking to remember this browser when the person ticked the box. */
function withRemember(body) {
  return !$('mfa-remember-row').hidden && $('mfa-remember').checked ? { ...body, remember_device: true } : body;
}

/**
 * A request to remember the browser that the service refused (it does not
 * remember devices): nothing was spent; the box goes, and the service's
 * reason is shown.
 */
function rememberRefused(err, body) {
  if (body.remember_device && err instanceof ApiError && err.status === 400 && err.code === 'invalid_request') {
    $('mfa-remember').checked = false;
    $('mfa-remember-row').hidden = true;
  }
}

/**
 * An mfa_token that is spent, used or expired ends the attempt: back to the
 * password, or to the account for a step-up.
 */
function mfaTokenDead(err) {
  if (err instanceof ApiError && err.status === 401 && err.code === 'invalid_token') {
    state.mfaToken = null;
    if (state.steppingUp) {
      state.steppingUp = false;
      showAccount();
      say('That confirmation took too long or had too many tries. Try the change again.', 'error');
    } else {
      show('signin', 'password');
      say('That sign-in took too long or had too many tries. Enter your password again.', 'error');
    }
    return true;
  }
  return false;
}

on('signin-form', 'submit', async () => {
  const creds = readCredentials();
  if (creds) await signIn(creds);
});

on('signup', 'click', async () => {
  const creds = readCredentials();
  if (!creds) return;
  if ([...creds.password].length < 8) {
    say('Choose a password of at least 8 characters.', 'error');
    focus($('password'));
    return;
  }
  await api('POST', '/v1/users', { body: creds });
  say('Account created. Signing you in…', 'success');
  await signIn(creds);
});

on('mfa-totp', 'submit', async () => {
  const code = $('totp-code').value.replace(/\s+/g, '');
  if (!/^[0-9]{6}$/.test(code)) {
    say('Enter the 6 digits your authenticator app shows.', 'error');
    focus($('totp-code'));
    return;
  }
  const body = withRemember({ code });
  try {
    await signedIn(await api('POST', '/v1/mfa/totp/verify', { body, token: state.mfaToken }));
  } catch (err) {
    if (mfaTokenDead(err)) return;
    rememberRefused(err, body);
    $('totp-code').value = '';
    focus($('totp-code'));
    throw err;
  }
});

on('webauthn-verify', 'click', async () => {
  if (!wa.supported()) {
    say('This browser cannot use security keys.', 'error');
    return;
  }
  let body = {};
  try {
    const opts = await api('POST', '/v1/mfa/webauthn/options', { token: state.mfaToken });
    const cred = await getCredential(opts);
    if (!cred) return;
    body = withRemember(cred);
    await signedIn(await api('POST', '/v1/mfa/webauthn/verify', { body, token: state.mfaToken }));
  } catch (err) {
    if (mfaTokenDead(err)) return;
    rememberRefused(err, body);
    throw err;
  }
});

on('passkey-login', 'click', async () => {
  if (!wa.supported()) {
    say('This browser cannot use passkeys.', 'error');
    return;
  }
  const opts = await api('POST', '/v1/passkeys/options');
  const cred = await getCredential(opts);
  if (!cred) return;
  await signedIn(await api('POST', '/v1/passkeys/verify', { body: cred }));
});

/** Runs navigator.credentials.get; null (with a message) when the person or key declined. */
async function getCredential(opts) {
  say('Follow your browser’s prompt to use your security key or passkey…');
  try {
    const cred = await navigator.credentials.get({ publicKey: wa.requestOptions(opts.publicKey) });
    return wa.credentialJSON(cred);
  } catch (err) {
    say(wa.describeError(err, false), 'error');
    return null;
  }
}

$('recovery-show').addEventListener('click', () => {
  $('mfa-recovery-offer').hidden = true;
  $('mfa-recovery').hidden = false;
  focus($('recovery-code'));
});

on('mfa-recovery', 'submit', async () => {
  const code = $('recovery-code').value.trim();
  const n = code.replace(/[\s-]/g, '').length;
  if (n !== 24 && n !== 16) { // 16: codes made before codes grew to 120 bits
    say('A recovery code has 24 letters and digits, like abcd-efgh-ijkl-mnop-qrst-uvwx.', 'error');
    focus($('recovery-code'));
    return;
  }
  const body = withRemember({ code });
  try {
    await signedIn(await api('POST', '/v1/mfa/recovery/verify', { body, token: state.mfaToken }));
  } catch (err) {
    if (mfaTokenDead(err)) return;
    rememberRefused(err, body);
    focus($('recovery-code'));
    $('recovery-code').select();
    throw err;
  }
});

$('mfa-cancel').addEventListener('click', () => {
  state.mfaToken = null;
  if (state.steppingUp) {
    state.steppingUp = false;
    showAccount();
    say('Not confirmed; nothing was changed.');
    return;
  }
  show('signin', 'username');
  say('Sign-in cancelled.');
});

// ---------------------------------------------------------------- step-up

on('stepup-confirm', 'click', async () => {
  const want = state.stepUp || { acr: 'aal2', maxAge: 300 };
  const body = { acr_values: want.acr, max_age: want.maxAge };
  const row = $('stepup-password-row');
  if (!row.hidden) {
    body.password = $('stepup-password').value;
    if (!body.password) {
      say('Enter your password.', 'error');
      focus($('stepup-password'));
      return;
    }
  }
  let r;
  try {
    r = await api('POST', '/v1/stepup', { body, token: 'access' });
  } catch (err) {
    // The sign-in is older than the change allows: the password is asked
    // for again, with the second factor after it.
    if (err.code === 'password_required' || (err.code === 'invalid_credentials' && !row.hidden)) {
      row.hidden = false;
      $('stepup-password').value = '';
      focus($('stepup-password'));
      say(err.code === 'password_required' ? 'Enter your password, then confirm with a second factor.'
        : 'That password is not right. Try again.', 'error');
      return;
    }
    throw err;
  }
  row.hidden = true;
  $('stepup-password').value = '';
  state.steppingUp = true;
  if (r.status === 'authenticated') {
    await signedIn(r, false);
    return;
  }
  state.mfaToken = r.mfa_token;
  showMFA(r.factors || [], true);
});

// ---------------------------------------------------------------- sign-out

async function signOut() {
  if (state.access) {
    // Ends the session on the server (and its cookie); the page forgets the
    // tokens either way.
    try { await api('POST', '/v1/logout', { token: 'access' }); } catch { /* forgotten anyway */ }
  }
  forgetTokens();
  clearAccount();
}

on('logout', 'click', async () => {
  await signOut();
  $('password').value = '';
  show('signin', 'username');
  say('Signed out.');
});

/** Resumes the session of the refresh cookie, if there is one. */
async function resume() {
  let t;
  try {
    t = await rotate();
  } catch {
    return; // no session to resume: stay on the sign-in view
  }
  if (state.access) return; // signed in meanwhile
  state.access = t.access_token;
  if (t.refresh_token) state.refresh = t.refresh_token;
  try {
    await loadAccount();
  } catch (err) {
    forgetTokens();
    fail(err);
    return;
  }
  showAccount();
  say('Welcome back: you are still signed in.', 'success');
}

onSessionEnded(() => {
  clearAccount();
  $('username').value = state.username;
  show('signin', 'password');
});

if (!wa.supported()) $('passkey-login').hidden = true;
show('signin', 'username');
resume();
