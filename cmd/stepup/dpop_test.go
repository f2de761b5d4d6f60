package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The DPoP client of these tests is independent of the service's code:
// proofs are made and thumbprints computed with go-jose.

// dpopKey is a client's DPoP key.
type dpopKey struct {
	signer jose.Signer
	jkt    string // RFC 7638 thumbprint, by go-jose
	n      int
}

func newDPoPKey(tb testing.TB, alg jose.SignatureAlgorithm) *dpopKey {
	tb.Helper()
	var priv, pub any
	switch alg {
	case jose.ES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		priv, pub = k, &k.PublicKey
	case jose.EdDSA:
		p, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		priv, pub = k, p
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: priv},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		tb.Fatal(err)
	}
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		tb.Fatal(err)
	}
	return &dpopKey{signer: signer, jkt: base64.RawURLEncoding.EncodeToString(tp)}
}

// proofOpts vary a proof.
type proofOpts struct {
	iat   time.Time // zero: now on the app's clock
	jti   string    // "": a fresh one
	ath   string    // the access token whose hash goes in ath; "" none
	rawAt string    // an ath value as is (wrong on purpose)
	nonce string
}

// proof makes a DPoP proof for method and the public URL of path.
func (k *dpopKey) proof(tb testing.TB, a *testApp, method, path string, o proofOpts) string {
	tb.Helper()
	if o.iat.IsZero() {
		o.iat = a.Clock.Now()
	}
	if o.jti == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		o.jti = base64.RawURLEncoding.EncodeToString(b)
	}
	claims := map[string]any{"jti": o.jti, "htm": method, "htu": testIssuer + path, "iat": o.iat.Unix()}
	if o.ath != "" {
		sum := sha256.Sum256([]byte(o.ath))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if o.rawAt != "" {
		claims["ath"] = o.rawAt
	}
	if o.nonce != "" {
		claims["nonce"] = o.nonce
	}
	payload, _ := json.Marshal(claims)
	jws, err := k.signer.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// request sends one request with an optional Authorization value and DPoP
// proof; body (if not nil) is sent as JSON.
func (a *testApp) request(tb testing.TB, method, path, authorization, proof string, body any) response {
	tb.Helper()
	r, err := a.requestErr(method, path, authorization, proof, body)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (a *testApp) requestErr(method, path, authorization, proof string, body any) (response, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	res, err := a.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

// jwtClaims decodes the payload of a JWT without verifying it.
func jwtClaims(tb testing.TB, tok string) map[string]any {
	tb.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		tb.Fatalf("not a JWT: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// boundTo fails tb unless the token response is DPoP and its access token
// carries cnf.jkt of k.
func boundTo(tb testing.TB, l loginResult, k *dpopKey) {
	tb.Helper()
	if l.TokenType != "DPoP" {
		tb.Fatalf("token_type = %q, want DPoP", l.TokenType)
	}
	cnf, _ := jwtClaims(tb, l.AccessToken)["cnf"].(map[string]any)
	if cnf == nil || cnf["jkt"] != k.jkt {
		tb.Fatalf("cnf = %v, want jkt %s (go-jose's thumbprint)", cnf, k.jkt)
	}
}

// dpopLogin signs in with a proof of k and wants tokens.
func (a *testApp) dpopLogin(tb testing.TB, k *dpopKey, username, password string) loginResult {
	tb.Helper()
	var out loginResult
	a.request(tb, "POST", "/v1/login", "", k.proof(tb, a, "POST", "/v1/login", proofOpts{}),
		credentials{username, password}).decode(tb, http.StatusOK, &out)
	return out
}

// wantChallenge fails tb unless r is 401 with code and a DPoP challenge
// with that error.
func wantDPoPChallenge(tb testing.TB, r response, code string) {
	tb.Helper()
	r.wantProblem(tb, http.StatusUnauthorized, code)
	ch := r.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(ch, `DPoP algs="ES256 EdDSA"`) || !strings.Contains(ch, `error="`+code+`"`) {
		tb.Fatalf("WWW-Authenticate = %q, want a DPoP challenge with algs and error=%q", ch, code)
	}
}

// TestDPoPAccessToken: a sign-in with a proof gets an access token bound
// to the key; the service's own endpoints then take it only with the DPoP
// scheme and a fresh, correct proof of that key.
func TestDPoPAccessToken(t *testing.T) {
	a := startApp(t, appOptions{})
	a.signup(t, "dora", "dora's correct horse battery")
	k := newDPoPKey(t, jose.ES256)
	l := a.dpopLogin(t, k, "dora", "dora's correct horse battery")
	boundTo(t, l, k)
	at := l.AccessToken
	me := func(method, path string, o proofOpts) string { return k.proof(t, a, method, path, o) }

	t.Run("RightProof", func(t *testing.T) {
		a.request(t, "GET", "/v1/me", "DPoP "+at, me("GET", "/v1/me", proofOpts{ath: at}), nil).
			decode(t, http.StatusOK, &meResult{})
	})
	t.Run("AsBearer", func(t *testing.T) {
		wantDPoPChallenge(t, a.request(t, "GET", "/v1/me", "Bearer "+at, "", nil), "invalid_token")
		// A proof does not help a bound token sent as a Bearer token.
		wantDPoPChallenge(t, a.request(t, "GET", "/v1/me", "Bearer "+at, me("GET", "/v1/me", proofOpts{ath: at}), nil),
			"invalid_token")
	})
	t.Run("DPoPSchemeWithoutProof", func(t *testing.T) {
		wantDPoPChallenge(t, a.request(t, "GET", "/v1/me", "DPoP "+at, "", nil), "invalid_dpop_proof")
	})
	refused := []struct {
		name  string
		proof string
	}{
		{"OtherMethod", me("POST", "/v1/me", proofOpts{ath: at})},
		{"OtherPath", me("GET", "/v1/me/factors", proofOpts{ath: at})},
		// The URL the client reached (the listener) is not the public
		// URL: htu is compared with the configured issuer, never Host.
		{"HostHeaderURL", func() string {
			claims := map[string]any{"jti": "host-1", "htm": "GET", "htu": a.base + "/v1/me", "iat": a.Clock.Now().Unix(),
				"ath": tokenHash(at)}
			return k.sign(t, claims)
		}()},
		{"StaleIat", me("GET", "/v1/me", proofOpts{ath: at, iat: a.Clock.Now().Add(-2 * time.Minute)})},
		{"FutureIat", me("GET", "/v1/me", proofOpts{ath: at, iat: a.Clock.Now().Add(time.Minute)})},
		{"NoAth", me("GET", "/v1/me", proofOpts{})},
		{"WrongAth", me("GET", "/v1/me", proofOpts{rawAt: tokenHash(at + "x")})},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			wantDPoPChallenge(t, a.request(t, "GET", "/v1/me", "DPoP "+at, tc.proof, nil), "invalid_dpop_proof")
		})
	}
	t.Run("OtherKey", func(t *testing.T) {
		other := newDPoPKey(t, jose.EdDSA)
		wantDPoPChallenge(t, a.request(t, "GET", "/v1/me", "DPoP "+at, other.proof(t, a, "GET", "/v1/me", proofOpts{ath: at}), nil),
			"invalid_token")
	})
	t.Run("ReplayedJTI", func(t *testing.T) {
		p := me("GET", "/v1/me", proofOpts{ath: at})
		a.request(t, "GET", "/v1/me", "DPoP "+at, p, nil).decode(t, http.StatusOK, &meResult{})
		wantDPoPChallenge(t, a.request(t, "GET", "/v1/me", "DPoP "+at, p, nil), "invalid_dpop_proof")
	})
	t.Run("BearerTokenWithDPoPScheme", func(t *testing.T) {
		b := a.login(t, "dora", "dora's correct horse battery") // no proof: a Bearer token
		if b.TokenType != "Bearer" {
			t.Fatalf("token_type = %q without a proof, want Bearer", b.TokenType)
		}
		if _, ok := jwtClaims(t, b.AccessToken)["cnf"]; ok {
			t.Fatal("a Bearer token carries cnf")
		}
		a.get(t, "/v1/me", b.AccessToken).decode(t, http.StatusOK, &meResult{})
		r := a.request(t, "GET", "/v1/me", "DPoP "+b.AccessToken, me("GET", "/v1/me", proofOpts{ath: b.AccessToken}), nil)
		r.wantProblem(t, http.StatusUnauthorized, "invalid_token")
	})
	t.Run("Introspection", func(t *testing.T) {
		// another App on the same store, with an introspection client
		b := startApp(t, appOptions{Database: a.Config.Database, Clock: a.Clock,
			Introspectors: map[string]string{"rs": "introspection-secret-1"}})
		req, _ := http.NewRequest("POST", b.base+"/v1/token/introspect", strings.NewReader("token="+at))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("rs", "introspection-secret-1")
		res, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var got struct {
			Active    bool              `json:"active"`
			TokenType string            `json:"token_type"`
			Cnf       map[string]string `json:"cnf"`
		}
		if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if !got.Active || got.TokenType != "DPoP" || got.Cnf["jkt"] != k.jkt {
			t.Fatalf("introspection = %+v, want active DPoP with cnf.jkt %s", got, k.jkt)
		}
	})
}

func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// sign signs claims as they are.
func (k *dpopKey) sign(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	payload, _ := json.Marshal(claims)
	jws, err := k.signer.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestDPoPRefresh: a bound refresh token refreshes only with a proof of
// its key; without one, or with another key, it is refused and the
// session stays as it was; with the key, a new bound pair.
func TestDPoPRefresh(t *testing.T) {
	a := startApp(t, appOptions{})
	a.signup(t, "rita", "rita's correct horse battery")
	k := newDPoPKey(t, jose.EdDSA)
	l := a.dpopLogin(t, k, "rita", "rita's correct horse battery")
	boundTo(t, l, k)
	other := newDPoPKey(t, jose.ES256)
	body := map[string]string{"refresh_token": l.RefreshToken}
	refresh := func(key *dpopKey, body any) response {
		proof := ""
		if key != nil {
			proof = key.proof(t, a, "POST", "/v1/token/refresh", proofOpts{})
		}
		return a.request(t, "POST", "/v1/token/refresh", "", proof, body)
	}
	refresh(nil, body).wantProblem(t, http.StatusBadRequest, "invalid_grant")
	refresh(other, body).wantProblem(t, http.StatusBadRequest, "invalid_grant")

	var next loginResult
	refresh(k, body).decode(t, http.StatusOK, &next)
	boundTo(t, next, k)
	if next.RefreshToken == "" || next.RefreshToken == l.RefreshToken {
		t.Fatalf("refresh token %q: want a new one", next.RefreshToken)
	}
	a.request(t, "GET", "/v1/me", "DPoP "+next.AccessToken, k.proof(t, a, "GET", "/v1/me", proofOpts{ath: next.AccessToken}), nil).
		decode(t, http.StatusOK, &meResult{})

	// The rotated token again, from the same client within the grace
	// period, but without the key (or with another): refused, and the
	// family is not revoked — the thief cannot end the owner's session.
	refresh(nil, body).wantProblem(t, http.StatusBadRequest, "invalid_grant")
	refresh(other, body).wantProblem(t, http.StatusBadRequest, "invalid_grant")
	a.Clock.Advance(time.Minute) // past the grace period: now it is reuse, for a key holder only
	refresh(other, body).wantProblem(t, http.StatusBadRequest, "invalid_grant")
	var third loginResult
	refresh(k, map[string]string{"refresh_token": next.RefreshToken}).decode(t, http.StatusOK, &third)
	boundTo(t, third, k)

	// The key holder presenting a rotated token is reuse: the family ends.
	refresh(k, body).wantProblem(t, http.StatusBadRequest, "invalid_grant")
	refresh(k, map[string]string{"refresh_token": third.RefreshToken}).wantProblem(t, http.StatusBadRequest, "invalid_grant")
}

// TestDPoPMFAToken: the mfa_token of a password step with a proof needs a
// proof of the same key; refusals spend none of its five attempts.
func TestDPoPMFAToken(t *testing.T) {
	a := startApp(t, appOptions{})
	u := newTOTPUser(t, a, "mona")
	k := newDPoPKey(t, jose.ES256)
	var l loginResult
	a.request(t, "POST", "/v1/login", "", k.proof(t, a, "POST", "/v1/login", proofOpts{}), credentials{u.Username, u.Password}).
		decode(t, http.StatusOK, &l)
	if l.Status != "mfa_required" {
		t.Fatalf("status %q, want mfa_required", l.Status)
	}
	if cnf, _ := jwtClaims(t, l.MFAToken)["cnf"].(map[string]any); cnf["jkt"] != k.jkt {
		t.Fatalf("mfa_token cnf = %v, want jkt %s", cnf, k.jkt)
	}
	other := newDPoPKey(t, jose.EdDSA)
	code := codeBody{u.code(a.Clock.step())}
	for range 6 { // more than the token's five attempts
		wantDPoPChallenge(t, a.request(t, "POST", "/v1/mfa/totp/verify", "Bearer "+l.MFAToken, "", code), "invalid_token")
		wantDPoPChallenge(t, a.request(t, "POST", "/v1/mfa/totp/verify", "Bearer "+l.MFAToken,
			other.proof(t, a, "POST", "/v1/mfa/totp/verify", proofOpts{}), code), "invalid_token")
	}
	var done loginResult
	a.request(t, "POST", "/v1/mfa/totp/verify", "DPoP "+l.MFAToken,
		k.proof(t, a, "POST", "/v1/mfa/totp/verify", proofOpts{ath: l.MFAToken}), code).decode(t, http.StatusOK, &done)
	boundTo(t, done, k)
	if done.ACR != "aal2" {
		t.Fatalf("acr %q, want aal2", done.ACR)
	}

	t.Run("StepUp", func(t *testing.T) {
		a.Clock.Advance(40 * time.Second) // a new TOTP step
		maxAge := 10
		var up loginResult
		a.request(t, "POST", "/v1/stepup", "DPoP "+done.AccessToken,
			k.proof(t, a, "POST", "/v1/stepup", proofOpts{ath: done.AccessToken}),
			map[string]any{"acr_values": "aal2", "max_age": maxAge, "password": u.Password}).decode(t, http.StatusOK, &up)
		if up.Status != "mfa_required" {
			t.Fatalf("step-up status %q, want mfa_required", up.Status)
		}
		code := codeBody{u.code(a.Clock.step())}
		wantDPoPChallenge(t, a.request(t, "POST", "/v1/mfa/totp/verify", "Bearer "+up.MFAToken, "", code), "invalid_token")
		var raised loginResult
		a.request(t, "POST", "/v1/mfa/totp/verify", "Bearer "+up.MFAToken,
			k.proof(t, a, "POST", "/v1/mfa/totp/verify", proofOpts{}), code).decode(t, http.StatusOK, &raised)
		boundTo(t, raised, k)
		if at := int64(jwtClaims(t, raised.AccessToken)["auth_time"].(float64)); at != a.Clock.Now().Unix() {
			t.Fatalf("auth_time %d, want now %d", at, a.Clock.Now().Unix())
		}
	})
}

// TestDPoPReplayAcrossInstances: a proof is used once, whichever instance
// sees it, even when copies arrive at once.
func TestDPoPReplayAcrossInstances(t *testing.T) {
	apps := startApps(t, 2, appOptions{})
	a, b := apps[0], apps[1]
	a.signup(t, "ivy", "ivy's correct horse battery")
	k := newDPoPKey(t, jose.ES256)
	l := a.dpopLogin(t, k, "ivy", "ivy's correct horse battery")

	p := k.proof(t, a, "GET", "/v1/me", proofOpts{ath: l.AccessToken})
	a.request(t, "GET", "/v1/me", "DPoP "+l.AccessToken, p, nil).decode(t, http.StatusOK, &meResult{})
	wantDPoPChallenge(t, b.request(t, "GET", "/v1/me", "DPoP "+l.AccessToken, p, nil), "invalid_dpop_proof")

	// Eight copies of one fresh proof at once, four on each instance.
	p = k.proof(t, a, "GET", "/v1/me", proofOpts{ath: l.AccessToken})
	rs := fanOut(t, 8, func(i int) (response, error) {
		return apps[i%2].requestErr("GET", "/v1/me", "DPoP "+l.AccessToken, p, nil)
	})
	got := tally(rs)
	if got["200 "] != 1 || got["401 invalid_dpop_proof"] != 7 {
		t.Fatalf("outcomes %v, want exactly one 200 and seven 401 invalid_dpop_proof", got)
	}

	// A login proof used on one instance is refused by the other.
	lp := k.proof(t, a, "POST", "/v1/login", proofOpts{})
	a.request(t, "POST", "/v1/login", "", lp, credentials{"ivy", "ivy's correct horse battery"}).decode(t, http.StatusOK, &loginResult{})
	b.request(t, "POST", "/v1/login", "", lp, credentials{"ivy", "ivy's correct horse battery"}).
		wantProblem(t, http.StatusBadRequest, "invalid_dpop_proof")
}

// TestDPoPNonce: with server nonces on, a proof without one is answered
// with use_dpop_nonce and a DPoP-Nonce, which every instance accepts on
// the retry, until it is two slots old.
func TestDPoPNonce(t *testing.T) {
	apps := startApps(t, 2, appOptions{DPoPNonce: true})
	a, b := apps[0], apps[1]
	a.signup(t, "nina", "nina's correct horse battery")
	k := newDPoPKey(t, jose.ES256)
	creds := credentials{"nina", "nina's correct horse battery"}

	r := a.request(t, "POST", "/v1/login", "", k.proof(t, a, "POST", "/v1/login", proofOpts{}), creds)
	r.wantProblem(t, http.StatusBadRequest, "use_dpop_nonce")
	nonce := r.Header.Get("DPoP-Nonce")
	if nonce == "" {
		t.Fatal("use_dpop_nonce without a DPoP-Nonce header")
	}
	var l loginResult
	b.request(t, "POST", "/v1/login", "", k.proof(t, b, "POST", "/v1/login", proofOpts{nonce: nonce}), creds).
		decode(t, http.StatusOK, &l)
	boundTo(t, l, k)

	// The resource side: 401 with a DPoP challenge and the nonce.
	r = b.request(t, "GET", "/v1/me", "DPoP "+l.AccessToken, k.proof(t, b, "GET", "/v1/me", proofOpts{ath: l.AccessToken}), nil)
	wantDPoPChallenge(t, r, "use_dpop_nonce")
	if r.Header.Get("DPoP-Nonce") == "" {
		t.Fatal("use_dpop_nonce without a DPoP-Nonce header")
	}
	a.request(t, "GET", "/v1/me", "DPoP "+l.AccessToken,
		k.proof(t, a, "GET", "/v1/me", proofOpts{ath: l.AccessToken, nonce: r.Header.Get("DPoP-Nonce")}), nil).
		decode(t, http.StatusOK, &meResult{})

	t.Run("Forged", func(t *testing.T) {
		forged := nonce[:len(nonce)-2] + "AA"
		wantDPoPChallenge(t, a.request(t, "GET", "/v1/me", "DPoP "+l.AccessToken,
			k.proof(t, a, "GET", "/v1/me", proofOpts{ath: l.AccessToken, nonce: forged}), nil), "use_dpop_nonce")
	})
	t.Run("Expired", func(t *testing.T) {
		a.Clock.Advance(11 * time.Minute) // two 5-minute slots later
		r := a.request(t, "POST", "/v1/token/refresh", "", k.proof(t, a, "POST", "/v1/token/refresh", proofOpts{nonce: nonce}),
			map[string]string{"refresh_token": l.RefreshToken})
		r.wantProblem(t, http.StatusBadRequest, "use_dpop_nonce")
		var next loginResult
		b.request(t, "POST", "/v1/token/refresh", "",
			k.proof(t, b, "POST", "/v1/token/refresh", proofOpts{nonce: r.Header.Get("DPoP-Nonce")}),
			map[string]string{"refresh_token": l.RefreshToken}).decode(t, http.StatusOK, &next)
		boundTo(t, next, k)
	})
}

// TestDPoPRequired: with STEPUP_DPOP=required no token is issued without
// a proof.
func TestDPoPRequired(t *testing.T) {
	a := startApp(t, appOptions{DPoPRequired: true})
	a.signup(t, "rex", "rex's correct horse battery")
	a.post(t, "/v1/login", "", credentials{"rex", "rex's correct horse battery"}).
		wantProblem(t, http.StatusBadRequest, "invalid_dpop_proof")
	k := newDPoPKey(t, jose.ES256)
	l := a.dpopLogin(t, k, "rex", "rex's correct horse battery")
	boundTo(t, l, k)
	a.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": l.RefreshToken}).
		wantProblem(t, http.StatusBadRequest, "invalid_dpop_proof")
	var md map[string]any
	if err := json.Unmarshal(a.get(t, "/.well-known/oauth-authorization-server", "").Body, &md); err != nil {
		t.Fatal(err)
	}
	if algs, _ := md["dpop_signing_alg_values_supported"].([]any); len(algs) != 2 || algs[0] != "ES256" || algs[1] != "EdDSA" {
		t.Fatalf("dpop_signing_alg_values_supported = %v, want [ES256 EdDSA]", md["dpop_signing_alg_values_supported"])
	}
}

// TestDPoPConfig: the two settings, their defaults, and a one-line error
// naming the variable for a wrong value.
func TestDPoPConfig(t *testing.T) {
	c, err := LoadConfig(nil, env(nil))
	if err != nil || c.DPoPRequired || c.DPoPNonce {
		t.Fatalf("defaults: %+v, %v; want DPoP optional, nonces off", c, err)
	}
	c, err = LoadConfig([]string{"-dpop", "required", "-dpop-nonce", "on"}, env(nil))
	if err != nil || !c.DPoPRequired || !c.DPoPNonce {
		t.Fatalf("flags: %v; want DPoP required, nonces on", err)
	}
	if c, err := LoadConfig(nil, env(nil)); err != nil || c.RememberDevice != 720*time.Hour {
		t.Fatalf("STEPUP_REMEMBER_DEVICE default %v, %v; want 720h", c.RememberDevice, err)
	}
	if c, err := LoadConfig(nil, env(map[string]string{"STEPUP_REMEMBER_DEVICE": "0"})); err != nil || c.RememberDevice != 0 {
		t.Fatalf("STEPUP_REMEMBER_DEVICE=0: %v, %v; want off", c.RememberDevice, err)
	}
	for name, val := range map[string]string{"STEPUP_DPOP": "yes", "STEPUP_DPOP_NONCE": "true", "STEPUP_REMEMBER_DEVICE": "5m"} {
		_, err := LoadConfig(nil, env(map[string]string{name: val}))
		if err == nil || !strings.HasPrefix(err.Error(), name+": must be ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s=%s: error %v, want one line naming %s", name, val, err, name)
		}
	}
}

// TestDPoPWebAuthn: a passkey sign-in with a proof, and a security key as
// the second factor of a password step with a proof, give tokens bound to
// the key; the bound mfa_token refuses a verify without the proof and
// still takes the assertion after it.
func TestDPoPWebAuthn(t *testing.T) {
	a := startApp(t, appOptions{})
	const pw = "wendy's correct horse battery"
	user := a.signup(t, "wendy", pw)
	passkey := waNewKey(t, user.ID, true)
	a.waRegister(t, a.login(t, "wendy", pw).AccessToken, passkey, "phone")
	k := newDPoPKey(t, jose.EdDSA)

	body := passkey.assert(a.waRequest(t, "/v1/passkeys/options", ""))
	var l loginResult
	a.request(t, "POST", "/v1/passkeys/verify", "", k.proof(t, a, "POST", "/v1/passkeys/verify", proofOpts{}), json.RawMessage(body)).
		decode(t, http.StatusOK, &l)
	boundTo(t, l, k)

	var m loginResult
	a.request(t, "POST", "/v1/login", "", k.proof(t, a, "POST", "/v1/login", proofOpts{}), credentials{"wendy", pw}).
		decode(t, http.StatusOK, &m)
	body = passkey.assert(a.waRequest(t, "/v1/mfa/webauthn/options", m.MFAToken))
	wantDPoPChallenge(t, a.request(t, "POST", "/v1/mfa/webauthn/verify", "Bearer "+m.MFAToken, "", json.RawMessage(body)),
		"invalid_token")
	var done loginResult
	a.request(t, "POST", "/v1/mfa/webauthn/verify", "Bearer "+m.MFAToken,
		k.proof(t, a, "POST", "/v1/mfa/webauthn/verify", proofOpts{}), json.RawMessage(body)).decode(t, http.StatusOK, &done)
	boundTo(t, done, k)
}

// BenchmarkRefreshDPoP is BenchmarkRefresh with a DPoP proof on every
// refresh (made before the clock starts): on top of the rotation, the
// proof's check and its jti's unique insert in the store, and a bound
// access token.
func BenchmarkRefreshDPoP(b *testing.B) {
	a := startApp(b, appOptions{})
	a.signup(b, "bench-dpop", "bench-dpop correct horse battery")
	k := newDPoPKey(b, jose.ES256)
	l := a.dpopLogin(b, k, "bench-dpop", "bench-dpop correct horse battery")
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i] = k.proof(b, a, "POST", "/v1/token/refresh", proofOpts{})
	}
	refresh := l.RefreshToken
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := a.requestErr("POST", "/v1/token/refresh", "", proofs[i], map[string]string{"refresh_token": refresh})
		if err != nil || r.Status != http.StatusOK {
			b.Fatalf("refresh: %v %d %s", err, r.Status, r.Body)
		}
		var next loginResult
		r.decode(b, http.StatusOK, &next)
		refresh = next.RefreshToken
	}
}

// TestDPoPNoWriteBeforeToken: a stranger's self-signed proof with a token
// that does not verify costs the store nothing — the token is checked
// before the proof's jti is recorded — at the access-token and the
// mfa_token endpoints alike; a real token's proof is recorded once.
func TestDPoPNoWriteBeforeToken(t *testing.T) {
	a := startApp(t, appOptions{})
	k := newDPoPKey(t, jose.ES256)
	proofs := func() int64 {
		t.Helper()
		client, err := mongo.Connect(options.Client().ApplyURI(a.Config.MongoURI))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = client.Disconnect(context.Background()) }()
		n, err := client.Database(a.Config.Database).Collection("dpop_proofs").CountDocuments(context.Background(), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	const forged = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	for range 10 {
		r := a.request(t, "GET", "/v1/me", "DPoP "+forged, k.proof(t, a, "GET", "/v1/me", proofOpts{ath: forged}), nil)
		r.wantProblem(t, http.StatusUnauthorized, "invalid_token")
		r = a.request(t, "POST", "/v1/mfa/totp/verify", "DPoP "+forged,
			k.proof(t, a, "POST", "/v1/mfa/totp/verify", proofOpts{ath: forged}), codeBody{"123456"})
		r.wantProblem(t, http.StatusUnauthorized, "invalid_token")
	}
	if n := proofs(); n != 0 {
		t.Fatalf("%d proofs recorded for tokens that did not verify, want 0", n)
	}
	a.signup(t, "proof-owner", "proof owner password correct")
	l := a.dpopLogin(t, k, "proof-owner", "proof owner password correct")
	if r := a.request(t, "GET", "/v1/me", "DPoP "+l.AccessToken, k.proof(t, a, "GET", "/v1/me", proofOpts{ath: l.AccessToken}), nil); r.Status != http.StatusOK {
		t.Fatalf("/v1/me with the right proof: %d %s", r.Status, r.Body)
	}
	if n := proofs(); n != 2 {
		t.Fatalf("%d proofs recorded, want 2 (the sign-in's and /v1/me's)", n)
	}
}
