// DPoP (RFC 9449): the page proves, on every request, that it holds this
// browser's own key, so the tokens the service binds to that key — the
// access token in memory and the refresh token in the HttpOnly cookie — are
// worthless when copied anywhere else.
//
// The key is a WebCrypto ECDSA P-256 key made non-extractable: scripts can
// sign with it but never read it. It is made once per browser profile and
// kept in IndexedDB (a CryptoKey is structured-cloneable, so it is stored
// and read back without ever being exported), which lets a reload resume a
// session bound to it. Only the public half is ever exported, as the proof's
// jwk.

const DB = 'stepup';
const STORE = 'keys';
const ID = 'dpop';
const ALG = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGN = { name: 'ECDSA', hash: 'SHA-256' }; // WebCrypto signs raw r||s: the JOSE form already

const enc = new TextEncoder();

/** base64url without padding (RFC 7515 §2) of bytes or a buffer. */
function b64u(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Runs fn(store) in one IndexedDB transaction; resolves with the request's result. */
function idb(mode, fn) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(DB, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(STORE);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      let req;
      try {
        req = fn(db.transaction(STORE, mode).objectStore(STORE));
      } catch (err) {
        db.close();
        reject(err);
        return;
      }
      req.onsuccess = () => { db.close(); resolve(req.result); };
      req.onerror = (e) => { e.preventDefault(); db.close(); reject(req.error); };
    };
  });
}

/**
 * This profile's key pair: the stored one, or a new one stored with add()
 * (so two tabs starting at once agree on the first one stored). Without
 * IndexedDB (some private modes) the key lives in this page only, and a
 * reload then ends the session bound to it.
 */
async function loadPair() {
  try {
    const stored = await idb('readonly', (s) => s.get(ID));
    if (stored) return stored;
  } catch { /* no IndexedDB: a key for this page only, below */ }
  const pair = await crypto.subtle.generateKey(ALG, false, ['sign']);
  try {
    await idb('readwrite', (s) => s.add(pair, ID));
  } catch {
    // Another tab stored its key first (use that one), or nothing can be
    // stored (use this one while the page lives).
    try {
      const stored = await idb('readonly', (s) => s.get(ID));
      if (stored) return stored;
    } catch { /* not stored */ }
  }
  return pair;
}

let keyPromise = null;

/** The key and its public JWK (kty, crv, x, y: nothing private). */
function key() {
  keyPromise ??= (async () => {
    const pair = await loadPair();
    const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', pair.publicKey);
    return { privateKey: pair.privateKey, jwk: { kty, crv, x, y } };
  })();
  keyPromise.catch(() => { keyPromise = null; });
  return keyPromise;
}

/** Whether this browser can make proofs (WebCrypto needs a secure context). */
export const supported = () => !!globalThis.crypto?.subtle;

let nonce = ''; // the last DPoP-Nonce the service sent
let skew = 0; // the service's clock minus ours, in seconds, from its Date header

/**
 * Notes what an answer says for the next proofs: the server's nonce, and its
 * clock (a proof's iat must be within a minute of it, whatever this
 * computer's clock says; the Date header is to the second, so only a
 * difference of more than 2 s counts).
 */
export function observe(res) {
  const n = res.headers.get('DPoP-Nonce');
  if (n) nonce = n;
  const date = Date.parse(res.headers.get('Date') || '');
  if (Number.isNaN(date)) return;
  const s = Math.round((date - Date.now()) / 1000);
  if (Math.abs(s - skew) > 2) skew = s;
}

/**
 * What the proofs depend on that the service tells: a proof refused after
 * this changed is worth one retry (RFC 9449 §8: use_dpop_nonce).
 */
export const context = () => `${nonce} ${skew}`;

/**
 * A proof for one request: method and path (of this origin, which is the
 * service's issuer), and the token sent with it, whose hash becomes ath.
 */
export async function proof(method, path, token) {
  const { privateKey, jwk } = await key();
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk };
  const claims = {
    jti: b64u(crypto.getRandomValues(new Uint8Array(16))),
    htm: method,
    htu: location.origin + path.replace(/[?#].*$/, ''),
    iat: Math.floor(Date.now() / 1000) + skew,
  };
  if (token) claims.ath = b64u(await crypto.subtle.digest('SHA-256', enc.encode(token)));
  if (nonce) claims.nonce = nonce;
  const input = `${b64u(enc.encode(JSON.stringify(header)))}.${b64u(enc.encode(JSON.stringify(claims)))}`;
  const sig = await crypto.subtle.sign(SIGN, privateKey, enc.encode(input));
  return `${input}.${b64u(sig)}`;
}
