// Status messages, views, focus and busy state: what every part of the page
// shares.

import { ApiError } from './api.js';

export const $ = (id) => document.getElementById(id);

const friendly = {
  invalid_credentials: 'The username or password is wrong.',
  mfa_failed: 'That second factor was not accepted. Try again.',
  signup_closed: 'Sign-up is closed on this service. Ask an administrator for an account.',
  internal_error: 'Something went wrong on our side. Try again in a moment.',
};

/** Shows a message in the live region. tone: info, success or error. */
export function say(text, tone = 'info') {
  const s = $('status');
  s.dataset.tone = tone;
  s.textContent = text;
}

function sentence(s) {
  if (!s) return '';
  s = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

/** The message for an ApiError or any other failure. */
export function describe(err) {
  if (!(err instanceof ApiError)) return 'Something went wrong. Try again.';
  let msg;
  if (err.code === 'mfa_failed' && err.detail.includes('security key')) {
    msg = `${sentence(err.detail)} Try again, or use another factor.`;
  } else {
    msg = friendly[err.code] || sentence(err.detail) || `The request failed (HTTP ${err.status}).`;
  }
  if (err.code === 'rate_limited' && err.retryAfter) {
    msg += ` Wait ${err.retryAfter} second${err.retryAfter === 1 ? '' : 's'}.`;
  }
  return msg;
}

export function fail(err) {
  say(describe(err), 'error');
}

const views = ['signin', 'mfa', 'account'];

/** Shows one view and moves focus to its heading (or to focusId). */
export function show(view, focusId) {
  for (const v of views) $(`view-${v}`).hidden = v !== view;
  const signedIn = view === 'account';
  $('logout').hidden = !signedIn;
  $('who').hidden = !signedIn;
  document.title = { signin: 'stepup — sign in', mfa: 'stepup — second factor', account: 'stepup — your account' }[view];
  const target = $(focusId) || $(`view-${view}`).querySelector('h1');
  focus(target);
}

let pendingFocus = null;

/** Whether el is in the document and rendered. */
export const shown = (el) => !!el?.isConnected &&
  (typeof el.checkVisibility === 'function' ? el.checkVisibility() : el.getClientRects().length > 0);

/**
 * Moves focus to el. A button disabled while an action runs cannot take
 * focus; it gets it when the action ends.
 */
export function focus(el) {
  if (!el) return;
  el.focus();
  pendingFocus = document.activeElement === el ? null : el;
}

/** Runs an action with every button disabled, so a double click sends once. */
export async function busy(fn) {
  const main = $('main');
  if (main.getAttribute('aria-busy') === 'true') return;
  main.setAttribute('aria-busy', 'true');
  const before = document.activeElement;
  const buttons = [...document.querySelectorAll('button:not([disabled])')];
  buttons.forEach((b) => { b.disabled = true; });
  try {
    await fn();
  } catch (err) {
    fail(err);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    main.removeAttribute('aria-busy');
    // A disabled button loses focus: give focus where the action sent it,
    // or back to where it was.
    const want = pendingFocus;
    pendingFocus = null;
    const lost = !document.activeElement || document.activeElement === document.body;
    if (shown(want)) want.focus();
    else if (lost && shown(before)) before.focus();
  }
}

export function on(id, event, fn) {
  $(id).addEventListener(event, (e) => {
    if (event === 'submit') e.preventDefault();
    busy(() => fn(e));
  });
}
