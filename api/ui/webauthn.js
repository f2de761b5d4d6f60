// WebAuthn JSON helpers. The server sends options with binary members as
// base64url (as go-webauthn emits them) and takes the PublicKeyCredential
// JSON of WebAuthn Level 3 (§5.1.8, toJSON()). Browsers that have the Level 3
// methods (Chromium, Firefox, Safari 18+) use them; the fallback below does
// the same conversion by hand for older ones.

/** Decodes base64url (padding optional) to bytes. */
export function fromB64u(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Encodes bytes (ArrayBuffer or view) as unpadded base64url. */
export function toB64u(buf) {
  const bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const withIds = (list) => list?.map((c) => ({ ...c, id: fromB64u(c.id) }));

/** PublicKeyCredentialCreationOptions from the server's JSON. */
export function creationOptions(json) {
  if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function') {
    return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  }
  const o = { ...json, challenge: fromB64u(json.challenge), user: { ...json.user, id: fromB64u(json.user.id) } };
  if (json.excludeCredentials) o.excludeCredentials = withIds(json.excludeCredentials);
  return o;
}

/** PublicKeyCredentialRequestOptions from the server's JSON. */
export function requestOptions(json) {
  if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function') {
    return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  }
  const o = { ...json, challenge: fromB64u(json.challenge) };
  if (json.allowCredentials) o.allowCredentials = withIds(json.allowCredentials);
  return o;
}

/** The JSON form of a PublicKeyCredential, as toJSON() gives it. */
export function credentialJSON(cred) {
  if (typeof cred.toJSON === 'function') return cred.toJSON();
  const r = cred.response;
  const response = { clientDataJSON: toB64u(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toB64u(r.attestationObject);
    if (typeof r.getTransports === 'function') response.transports = r.getTransports();
  } else {
    response.authenticatorData = toB64u(r.authenticatorData);
    response.signature = toB64u(r.signature);
    if (r.userHandle) response.userHandle = toB64u(r.userHandle);
  }
  const out = {
    id: cred.id,
    rawId: toB64u(cred.rawId),
    type: cred.type,
    response,
    clientExtensionResults: cred.getClientExtensionResults(),
  };
  if (cred.authenticatorAttachment) out.authenticatorAttachment = cred.authenticatorAttachment;
  return out;
}

/** Whether this browser can use WebAuthn at all. */
export const supported = () => typeof window.PublicKeyCredential === 'function' && !!navigator.credentials;

/** A person-readable sentence for a DOMException from create() or get(). */
export function describeError(err, creating) {
  switch (err?.name) {
    case 'NotAllowedError':
      return creating
        ? 'The security key prompt was cancelled, timed out, or the key could not verify you. Try again.'
        : 'No passkey or security key was used: the prompt was cancelled, timed out, or the key could not verify you (PIN or biometrics). Try again.';
    case 'InvalidStateError':
      return 'This security key or passkey is registered already.';
    case 'NotSupportedError':
      return 'This security key does not support what the service asks for. Try another one.';
    case 'SecurityError':
      return 'The browser refused the request for this site (it needs HTTPS or localhost and a matching domain).';
    case 'AbortError':
      return 'The security key prompt was closed.';
    default:
      return 'The security key or passkey did not answer. Try again.';
  }
}
