package uitest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// TestBrowserDPoP: the page binds its tokens to a non-extractable key of its
// own (RFC 9449), so what a thief copies out of it — the refresh cookie, an
// access token — is worthless elsewhere; and "remember this browser" lets
// the password alone sign in with that key until the browser is forgotten. The service requires server
// nonces, so every proof the page makes goes through use_dpop_nonce once.
//
// The test reads what a thief could: the requests' headers (a fetch
// recorder installed before the page's scripts) and the HttpOnly cookie
// (DevTools). It replays them from Go with net/http, without the key or
// with a key of its own, whose proofs a positive control shows valid.
func TestBrowserDPoP(t *testing.T) {
	t.Parallel()
	chrome := browserChromium(t)
	svc := startService(t, "STEPUP_DPOP_NONCE=on")
	p := browserOpen(t, chrome, svc.Origin, 2*time.Minute)
	if _, err := chromedp.Call(p.ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: dpopRecorder}); err != nil {
		t.Fatal(err)
	}
	p.do(t, chromedp.Reload())
	p.waitVisible(t, "view-signin")

	const user, pw = "dpop-ada", "correct horse battery staple"
	p.fill(t, "#username", user)
	p.fill(t, "#password", pw)
	p.click(t, "#signup")
	browserWant(t, "acr", must(p.signedIn(t)), "aal1")

	// The key in IndexedDB: private, for signing only, and not extractable.
	k := browserEval[struct {
		Extractable bool     `json:"extractable"`
		Type        string   `json:"type"`
		Usages      []string `json:"usages"`
		Export      string   `json:"export"` // what exporting the private key did
		JWK         dpopJWK  `json:"jwk"`
	}](t, p, dpopStoredKey, chromedp.EvalAwaitPromise)
	if k.Extractable || k.Type != "private" || strings.Join(k.Usages, ",") != "sign" || k.Export != "InvalidAccessError" {
		t.Fatalf("stored key: extractable %v, type %q, usages %v, export %q; want a non-extractable private signing key",
			k.Extractable, k.Type, k.Usages, k.Export)
	}
	jkt := k.JWK.thumbprint()

	// The page's access token is bound to that key and sent with the DPoP scheme.
	access := p.lastAccess(t, jkt)

	thief := newDPoPKey(t)
	if thief.jwk.thumbprint() == jkt {
		t.Fatal("the test's key is the page's")
	}
	// Positive control: the test's proofs are valid (a sign-in with one
	// gets a token bound to the test's key), so refusals below are about
	// the key, not a malformed proof.
	if tt := thief.signIn(t, svc.Origin, user, pw); tt != "DPoP" {
		t.Fatalf("sign-in with the test's proof: token_type %q, want DPoP", tt)
	}

	t.Run("StolenAccessToken", func(t *testing.T) {
		for _, tc := range []struct {
			name, auth string
			proof      bool
		}{
			{"Bearer", "Bearer " + access, false},
			{"DPoPWithoutProof", "DPoP " + access, false},
			{"DPoPWithAnotherKey", "DPoP " + access, true},
		} {
			h := http.Header{"Authorization": {tc.auth}}
			if tc.proof {
				h.Set("DPoP", thief.proofWithNonce(t, svc.Origin, http.MethodGet, "/v1/me", access))
			}
			res := dpopDo(t, http.MethodGet, svc.Origin+"/v1/me", h, nil)
			if res.status != http.StatusUnauthorized {
				t.Errorf("%s: GET /v1/me = %d %s, want 401", tc.name, res.status, res.code)
			}
		}
	})

	t.Run("StolenRefreshCookie", func(t *testing.T) {
		cookie := p.refreshCookie(t, svc.Origin)
		for _, withProof := range []bool{false, true} {
			h := http.Header{"Cookie": {cookie}, "Origin": {svc.Origin}, "X-Stepup-Cookie": {"1"}}
			if withProof {
				h.Set("DPoP", thief.proofWithNonce(t, svc.Origin, http.MethodPost, "/v1/token/refresh", ""))
			}
			res := dpopDo(t, http.MethodPost, svc.Origin+"/v1/token/refresh", h, nil)
			if res.status != http.StatusBadRequest || res.code != "invalid_grant" {
				t.Errorf("refresh with the stolen cookie (proof of another key: %v) = %d %s, want 400 invalid_grant",
					withProof, res.status, res.code)
			}
		}
	})

	// The family is intact: a reload resumes the session with a proof of
	// the same key, and the new access token is bound to it too.
	p.do(t, chromedp.Reload())
	browserWant(t, "acr after reload", must(p.signedIn(t)), "aal1")
	refresh := browserEval[string](t, p, `(window.__dpopSeen.filter(r => r.path === '/v1/token/refresh' && r.ok).pop() || {}).dpop || ''`)
	if got := proofJKT(t, refresh); got != jkt {
		t.Errorf("the refresh after the reload proved key %s, want the page's %s", got, jkt)
	}
	p.lastAccess(t, jkt)

	// Password and TOTP: the second factor's token is bound to the same key.
	p.fill(t, "#factor-name", "Phone")
	p.click(t, "#add-totp")
	p.waitVisible(t, "totp-enroll")
	p.waitIdle(t)
	secret := decodeBase32(t, strings.ReplaceAll(p.text(t, "totp-secret"), " ", ""))
	confirmed := totpStep()
	p.fill(t, "#totp-confirm-code", totpCode(secret, confirmed))
	p.click(t, "#totp-confirm")
	p.waitOK(t, `document.querySelector('#factors li[data-kind="totp"][data-confirmed="true"]')`, "the confirmed app")
	p.signOut(t)
	p.passwordStep(t, user, pw)
	p.waitOK(t, `document.getElementById('view-mfa').checkVisibility()`, "the second-factor view")
	p.waitIdle(t)
	p.fill(t, "#totp-code", totpCode(secret, max(totpStep(), confirmed+1)))
	if !p.visible(t, "mfa-remember") {
		t.Fatal("the second-factor step offers no \"remember this browser\"")
	}
	p.click(t, "#mfa-remember")
	p.click(t, "#totp-verify")
	acr, amr := p.signedIn(t)
	browserWant(t, "acr", acr, "aal2")
	browserWant(t, "amr", amr, "pwd otp mfa")
	p.lastAccess(t, jkt)
	if msg := p.statusText(); !strings.Contains(msg, "This browser is remembered") {
		t.Errorf("status %q, want it to say the browser is remembered", msg)
	}

	// Remembered: the password alone signs in with this key (the
	// documented pwd swk mfa at aal2), until the browser is forgotten.
	p.waitOK(t, `document.querySelectorAll('#remembered-list li[data-current="true"]').length === 1`, "this browser remembered")
	p.shot(t, "9-remembered")
	p.signOut(t)
	p.passwordStep(t, user, pw)
	acr, amr = p.signedIn(t)
	browserWant(t, "acr remembered", acr, "aal2")
	browserWant(t, "amr remembered", amr, "pwd swk mfa")
	p.click(t, `#remembered-list li[data-current="true"] .remembered-forget`)
	p.waitOK(t, `document.getElementById('remembered').hidden && document.getElementById('status').textContent.startsWith('Forgot')`,
		"the forgotten browser gone from the list")
	p.signOut(t)
	p.passwordStep(t, user, pw)
	p.waitOK(t, `document.getElementById('view-mfa').checkVisibility()`, "the second factor asked again")
	if n := browserEval[int](t, p, `window.__dpopSeen.filter(r => r.auth.startsWith('Bearer ')).length`); n != 0 {
		t.Errorf("%d requests sent a token with the Bearer scheme", n)
	}
	if n := browserEval[int](t, p, `window.__dpopSeen.filter(r => !r.dpop).length`); n != 0 {
		t.Errorf("%d requests without a DPoP proof", n)
	}
	if probs := p.problems(); len(probs) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(probs, "\n"))
	}
}

// dpopRecorder records, before the page's scripts run, what each of the
// page's API requests sent (as a script injected into the page could read
// it) and whether it succeeded.
const dpopRecorder = `window.__dpopSeen = [];
(() => {
  const f = window.fetch;
  window.fetch = async (u, o) => {
    const h = (o && o.headers) || {};
    const r = { path: String(u), method: (o && o.method) || 'GET', auth: h.Authorization || '', dpop: h.DPoP || '', ok: false };
    window.__dpopSeen.push(r);
    const res = await f.call(window, u, o);
    r.ok = res.ok;
    return res;
  };
})();`

// dpopStoredKey reads the page's key from IndexedDB, tries to export its
// private half, and exports its public half.
const dpopStoredKey = `new Promise((resolve, reject) => {
  const open = indexedDB.open('stepup');
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const get = open.result.transaction('keys').objectStore('keys').get('dpop');
    get.onerror = () => reject(get.error);
    get.onsuccess = async () => {
      const k = get.result;
      let exp = 'exported';
      try { await crypto.subtle.exportKey('jwk', k.privateKey); } catch (e) { exp = e.name; }
      const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', k.publicKey);
      resolve({ extractable: k.privateKey.extractable, type: k.privateKey.type, usages: k.privateKey.usages,
        export: exp, jwk: { kty, crv, x, y } });
    };
  };
})`

// lastAccess returns the access token of the page's last successful request
// with one, after checking it was sent with the DPoP scheme and is bound to
// jkt.
func (p *browserPage) lastAccess(t *testing.T, jkt string) string {
	t.Helper()
	auth := browserEval[string](t, p,
		`(window.__dpopSeen.filter(r => r.ok && r.auth && r.path.startsWith('/v1/me')).pop() || {}).auth || ''`)
	tok, ok := strings.CutPrefix(auth, "DPoP ")
	if !ok {
		t.Fatalf("the page sent its access token as %.12q…, want the DPoP scheme", auth)
	}
	var claims struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	jwtPart(t, tok, 1, &claims)
	if claims.Cnf.JKT != jkt {
		t.Fatalf("access token cnf.jkt = %q, want the page's key %q", claims.Cnf.JKT, jkt)
	}
	return tok
}

// refreshCookie is the page's HttpOnly refresh cookie as a Cookie header.
func (p *browserPage) refreshCookie(t *testing.T, origin string) string {
	t.Helper()
	res, err := chromedp.Call(p.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{origin + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == "__Host-stepup-refresh" && c.HTTPOnly {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatal("no HttpOnly refresh cookie in the browser")
	return ""
}

// proofJKT is the thumbprint of the jwk in a proof's header.
func proofJKT(t *testing.T, proof string) string {
	t.Helper()
	var h struct {
		Typ string  `json:"typ"`
		Alg string  `json:"alg"`
		JWK dpopJWK `json:"jwk"`
	}
	jwtPart(t, proof, 0, &h)
	if h.Typ != "dpop+jwt" || h.Alg != "ES256" {
		t.Errorf("proof header typ %q alg %q", h.Typ, h.Alg)
	}
	return h.JWK.thumbprint()
}

func jwtPart(t *testing.T, jwt string, i int, v any) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %.20q…", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		t.Fatalf("JWS part %d: %v", i, err)
	}
}

// dpopJWK is a public P-256 key as a JWK.
type dpopJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// thumbprint is the RFC 7638 thumbprint: SHA-256 of the required members
// in lexicographic order, no whitespace.
func (k dpopJWK) thumbprint() string {
	b, _ := json.Marshal(struct {
		Crv string `json:"crv"`
		Kty string `json:"kty"`
		X   string `json:"x"`
		Y   string `json:"y"`
	}{k.Crv, k.Kty, k.X, k.Y})
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// dpopKey is the test's own DPoP client: RFC 9449 proofs made here with
// crypto/ecdsa, independent of the service's and the page's code.
type dpopKey struct {
	priv *ecdsa.PrivateKey
	jwk  dpopJWK
}

func newDPoPKey(t *testing.T) *dpopKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := priv.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	return &dpopKey{priv: priv, jwk: dpopJWK{Kty: "EC", Crv: "P-256", X: b64(pt[1:33]), Y: b64(pt[33:])}}
}

// proof signs a proof for method and origin+path; token's hash is ath.
func (k *dpopKey) proof(t *testing.T, origin, method, path, token, nonce string) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	jti := make([]byte, 16)
	rand.Read(jti)
	claims := map[string]any{"jti": b64(jti), "htm": method, "htu": origin + path, "iat": time.Now().Unix()}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		claims["ath"] = b64(sum[:])
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	h, _ := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": k.jwk})
	c, _ := json.Marshal(claims)
	input := b64(h) + "." + b64(c)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64) // JOSE: r || s, 32 bytes each
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64(sig)
}

// proofWithNonce is proof with the service's current nonce, got from a
// first proof's use_dpop_nonce answer (any request that carries a proof
// names it).
func (k *dpopKey) proofWithNonce(t *testing.T, origin, method, path, token string) string {
	t.Helper()
	res := dpopDo(t, http.MethodPost, origin+"/v1/login",
		http.Header{"DPoP": {k.proof(t, origin, http.MethodPost, "/v1/login", "", "")}}, map[string]string{"username": "x", "password": "y"})
	nonce := res.header.Get("DPoP-Nonce")
	if res.code != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("a proof without a nonce: %d %s, nonce %q; want use_dpop_nonce and a nonce", res.status, res.code, nonce)
	}
	return k.proof(t, origin, method, path, token, nonce)
}

// signIn signs in over HTTP with proofs of k and returns the token_type.
func (k *dpopKey) signIn(t *testing.T, origin, user, pw string) string {
	t.Helper()
	res := dpopDo(t, http.MethodPost, origin+"/v1/login",
		http.Header{"DPoP": {k.proofWithNonce(t, origin, http.MethodPost, "/v1/login", "")}}, map[string]string{"username": user, "password": pw})
	if res.status != http.StatusOK {
		t.Fatalf("sign-in with the test's proof: %d %s", res.status, res.code)
	}
	var out struct {
		TokenType string `json:"token_type"`
	}
	json.Unmarshal(res.body, &out)
	return out.TokenType
}

type dpopResponse struct {
	status int
	code   string // the problem's code
	header http.Header
	body   []byte
}

func dpopDo(t *testing.T, method, url string, h http.Header, body any) dpopResponse {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(res.Body)
	var prob struct {
		Code string `json:"code"`
	}
	json.Unmarshal(buf.Bytes(), &prob)
	return dpopResponse{status: res.StatusCode, code: prob.Code, header: res.Header, body: buf.Bytes()}
}

// must keeps the first of two results.
func must[A, B any](a A, _ B) A { return a }
