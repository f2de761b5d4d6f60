package uitest

import (
	"testing"
	"time"
)

// browserAsYubiKey makes the page's next navigator.credentials.create
// answer as a "YubiKey 5 Series" (AAGUID cb69481e-…): the DevTools virtual
// authenticator has an AAGUID of its own, on no list, so the test writes a
// listed one into the "none" attestation's authenticator data (which
// nothing signs) before the page sends it. A signed (packed) attestation
// would no longer verify, and the registration would fail.
const browserAsYubiKey = `(() => {
  const create = navigator.credentials.create.bind(navigator.credentials);
  const aaguid = [0xcb,0x69,0x48,0x1e,0x8f,0xf7,0x40,0x39,0x93,0xec,0x0a,0x27,0x29,0xa1,0x54,0xa8];
  const dec = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
  const enc = (b) => btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  navigator.credentials.create = async (opts) => {
    const json = (await create(opts)).toJSON();
    const obj = dec(json.response.attestationObject);
    const key = [0x68, ...new TextEncoder().encode('authData')]; // CBOR text "authData"
    const at = obj.findIndex((_, i) => key.every((k, j) => obj[i + j] === k));
    if (at < 0) throw new Error('no authData');
    const head = at + key.length; // a byte string: 0x58 len8 or 0x59 len16
    const data = head + (obj[head] === 0x58 ? 2 : 3);
    obj.set(aaguid, data + 37); // rpIdHash 32, flags 1, signCount 4, then the AAGUID (§6.5.1)
    json.response.attestationObject = enc(obj);
    if (json.response.authenticatorData) {
      const ad = dec(json.response.authenticatorData);
      ad.set(aaguid, 37);
      json.response.authenticatorData = enc(ad);
    }
    return { toJSON: () => json };
  };
  return true;
})()`

// TestBrowserAuthenticatorName: a registered key shows the name of its
// authenticator model, from the service's list, next to its own name.
func TestBrowserAuthenticatorName(t *testing.T) {
	t.Parallel()
	chrome := browserChromium(t)
	svc := startService(t)
	p := browserOpen(t, chrome, svc.Origin, time.Minute)
	p.addAuthenticator(t, false)

	p.fill(t, "#username", "grace")
	p.fill(t, "#password", "correct horse battery staple")
	p.click(t, "#signup")
	p.signedIn(t)
	if !browserEval[bool](t, p, browserAsYubiKey) {
		t.Fatal("could not wrap navigator.credentials.create")
	}
	p.fill(t, "#factor-name", "Desk key")
	p.click(t, "#add-key")
	const item = `#factors li[data-kind="webauthn"]`
	p.waitOK(t, `document.querySelector('`+item+`')`, "the new key in the list")
	browserWant(t, "factor name", browserEval[string](t, p, `document.querySelector('`+item+` .factor-name').textContent`), "Desk key")
	browserWant(t, "authenticator", browserEval[string](t, p, `document.querySelector('`+item+` .factor-authenticator').textContent`), "YubiKey 5 Series")
	if browserEval[bool](t, p, `document.querySelector('`+item+` .factor-authenticator').hidden`) {
		t.Error("the authenticator's name is hidden")
	}
}
