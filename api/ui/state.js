// The page's state. The access token lives in memory only; the refresh
// token travels in the service's HttpOnly cookie (cookie mode), so `refresh`
// stays null unless a service answers without setting the cookie.

export const state = {
  access: null, // access token
  refresh: null, // refresh token, only if the service did not set its cookie
  mfaToken: null, // mfa_pending token between the password and the second factor
  steppingUp: false, // the second-factor view confirms a signed-in session
  stepUp: null, // {acr, maxAge} of the last RFC 9470 challenge
  enrolling: null, // id of the TOTP factor being confirmed
  username: '',
  sid: null, // the session's id (GET /v1/me), to mark its events
};

/** Forgets every token and flow in progress. */
export function forgetTokens() {
  state.access = state.refresh = state.mfaToken = state.stepUp = state.enrolling = null;
  state.steppingUp = false;
}
