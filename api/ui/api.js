// The JSON API client: problem+json errors, DPoP-bound tokens, and one
// shared refresh of an expired access token.
//
// Every request carries a DPoP proof of this browser's key (dpop.js): the
// service binds the tokens it issues to the key, and a token is sent with
// the DPoP scheme and a proof naming its hash. Where WebCrypto is missing
// (an insecure context) the page falls back to Bearer tokens.

import * as dpop from './dpop.js';
import { state, forgetTokens } from './state.js';

/** An RFC 9457 problem answer, or a transport failure (status 0). */
export class ApiError extends Error {
  constructor(status, code, detail, retryAfter, challenge) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
    this.detail = detail || '';
    this.retryAfter = retryAfter;
    this.challenge = challenge || ''; // WWW-Authenticate
  }
}

const useDPoP = dpop.supported();

/** Whether the page's tokens are bound to its key (not on an insecure origin). */
export const usesDPoP = () => useDPoP;

/**
 * Sends one JSON request. token names the token sent: 'access' (refreshed
 * once on an expired access token), a literal token string (the
 * mfa_token), or none.
 */
export async function api(method, path, { body, token } = {}) {
  const once = async (tok) => {
    const headers = { Accept: 'application/json, application/problem+json', 'X-Stepup-Cookie': '1' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (useDPoP) {
      try {
        headers.DPoP = await dpop.proof(method, path, tok);
      } catch {
        throw new ApiError(0, 'dpop', 'This browser could not sign the request with its key. Reload the page and try again.');
      }
    }
    if (tok) headers.Authorization = `${useDPoP ? 'DPoP' : 'Bearer'} ${tok}`;
    let res;
    try {
      res = await fetch(path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin', cache: 'no-store',
      });
    } catch {
      throw new ApiError(0, 'network', 'The service cannot be reached. Check your connection and try again.');
    }
    if (useDPoP) dpop.observe(res);
    if (res.status === 204) return null;
    const type = res.headers.get('Content-Type') || '';
    const data = type.includes('json') ? await res.json().catch(() => null) : null;
    if (!res.ok) {
      throw new ApiError(res.status, data?.code, data?.detail || data?.title,
        Number(res.headers.get('Retry-After')) || 0, res.headers.get('WWW-Authenticate'));
    }
    return data;
  };
  // A proof refused for a nonce it lacked, or for a clock the answer showed
  // to differ, is made again once with what the answer said. A refused
  // proof spends nothing: the service checks it before anything else.
  const send = async (tok) => {
    const before = dpop.context();
    try {
      return await once(tok);
    } catch (err) {
      const proofRefused = err.code === 'use_dpop_nonce' || err.code === 'invalid_dpop_proof';
      if (!useDPoP || !proofRefused || dpop.context() === before) throw err;
      return once(tok);
    }
  };
  if (token !== 'access') return send(token);
  const used = state.access;
  try {
    return await send(used);
  } catch (err) {
    if (err.status !== 401 || err.code !== 'invalid_token' || !used) throw err;
    // Another call refreshed the token meanwhile (send again with the new
    // one), or the person signed out (give up): no second rotation.
    if (state.access !== used) {
      if (!state.access) throw err;
      return send(state.access);
    }
    await refreshTokens(); // throws a session-ended error when it cannot
    return send(state.access);
  }
}

/** Rotates the refresh token (the cookie's, or the one held). */
export function rotate() {
  const body = state.refresh ? { refresh_token: state.refresh } : undefined;
  state.refresh = null; // a refresh token is single use, whatever happens
  return api('POST', '/v1/token/refresh', { body });
}

let refreshing = null;
let onEnded = () => {};

/** Sets what happens when the session turns out to have ended. */
export function onSessionEnded(fn) {
  onEnded = fn;
}

/**
 * Gets a new access token. Concurrent callers share one rotation: a second
 * rotation of the same refresh token would look like theft and end the
 * session.
 */
export function refreshTokens() {
  refreshing ??= (async () => {
    try {
      const t = await rotate();
      state.access = t.access_token;
      if (t.refresh_token) state.refresh = t.refresh_token;
    } catch (err) {
      if (err.status === 0) throw err;
      forgetTokens();
      onEnded();
      throw new ApiError(401, 'session_ended', 'Your session has ended. Sign in again.');
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}
