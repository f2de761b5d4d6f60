package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestForgedTokens presents forged and tampered tokens over HTTP to an
// access-token endpoint (GET /v1/me) and to an mfa_token endpoint (POST
// /v1/mfa/totp/verify). Each forgery starts from a real token of the right
// kind and is wrong in one way; where a forgery needs a valid signature it
// is signed with the server's own key, so the one defect is what is refused.
func TestForgedTokens(t *testing.T) {
	a := startApp(t, appOptions{})
	u := newTOTPUser(t, a, "forge-user")
	var tok loginResult
	a.verify(t, a.mfaToken(t, u.Username, u.Password), u.code(a.Clock.step())).decode(t, http.StatusOK, &tok)
	pending := a.mfaToken(t, u.Username, u.Password)

	kid, serverKey := a.signingKey(t)
	serverPub, serverJWK := a.publicKey(t, kid)
	jwksDoc, _ := a.jwks(t)
	foreign, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	foreignJWK := publicJWKMap(t, &foreign.PublicKey)
	spki, err := x509.MarshalPKIXPublicKey(serverPub)
	if err != nil {
		t.Fatal(err)
	}
	serverPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
	serverPoint, err := serverPub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	serverJWKJSON, err := json.Marshal(serverJWK)
	if err != nil {
		t.Fatal(err)
	}

	// A key server an attacker runs: the service must never fetch from it.
	var fetched atomic.Int32
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{foreignJWK}})
	}))
	t.Cleanup(attacker.Close)

	now := a.Clock.Now().Unix()
	serverSigned := func(t *testing.T, h, c map[string]any) string { return signES256(t, serverKey, h, c) }
	foreignSigned := func(t *testing.T, h, c map[string]any) string { return signES256(t, foreign, h, c) }
	type forgery struct {
		name  string
		build func(t *testing.T, raw string, p jwtParts) string
	}
	edit := func(sign func(*testing.T, map[string]any, map[string]any) string, f func(h, c map[string]any)) func(*testing.T, string, jwtParts) string {
		return func(t *testing.T, _ string, p jwtParts) string {
			h, c := clone(p.Header), clone(p.Claims)
			f(h, c)
			return sign(t, h, c)
		}
	}
	hmacWith := func(key []byte) func(*testing.T, string, jwtParts) string {
		return func(t *testing.T, _ string, p jwtParts) string {
			h := clone(p.Header)
			h["alg"] = "HS256"
			return signHS256(t, key, h, p.Claims)
		}
	}
	forgeries := []forgery{
		{"AlgNone", func(t *testing.T, _ string, p jwtParts) string {
			h := clone(p.Header)
			h["alg"] = "none"
			return unsigned(t, h, p.Claims)
		}},
		{"AlgNoneKeepingSignature", func(t *testing.T, raw string, p jwtParts) string {
			h := clone(p.Header)
			h["alg"] = "none"
			parts := strings.Split(raw, ".")
			return encodeSegment(t, h) + "." + parts[1] + "." + parts[2]
		}},
		{"NoSignature", func(t *testing.T, raw string, _ jwtParts) string { return raw[:strings.LastIndexByte(raw, '.')+1] }},
		{"HS256WithJWKSDocument", hmacWith(jwksDoc)},
		{"HS256WithJWK", hmacWith(serverJWKJSON)},
		{"HS256WithPublicKeyPEM", hmacWith(serverPEM)},
		{"HS256WithPublicKeyPoint", hmacWith(serverPoint)},
		{"UnknownKid", edit(serverSigned, func(h, _ map[string]any) { h["kid"] = "no-such-key" })},
		{"NoKid", edit(serverSigned, func(h, _ map[string]any) { delete(h, "kid") })},
		{"AlgNotTheKeys", func(t *testing.T, raw string, p jwtParts) string {
			h := clone(p.Header)
			h["alg"] = "EdDSA"
			return encodeSegment(t, h) + raw[strings.IndexByte(raw, '.'):]
		}},
		{"ChangedClaimOriginalSignature", func(t *testing.T, raw string, p jwtParts) string {
			c := clone(p.Claims)
			c["sub"] = "someone-else"
			c["acr"] = "aal3"
			parts := strings.Split(raw, ".")
			return parts[0] + "." + encodeSegment(t, c) + "." + parts[2]
		}},
		{"MissingExp", edit(serverSigned, func(_, c map[string]any) { delete(c, "exp") })},
		{"Expired", edit(serverSigned, func(_, c map[string]any) { c["iat"], c["exp"] = now-1500, now-600 })},
		{"IssuedInFuture", edit(serverSigned, func(_, c map[string]any) { c["iat"], c["exp"] = now+600, now+900 })},
		{"WrongIssuer", edit(serverSigned, func(_, c map[string]any) { c["iss"] = "https://evil.example" })},
		{"WrongAudience", edit(serverSigned, func(_, c map[string]any) { c["aud"] = []string{"someone-else"} })},
		{"WrongType", edit(serverSigned, func(h, _ map[string]any) {
			if h["typ"] == "at+jwt" {
				h["typ"] = "mfa-pending+jwt"
			} else {
				h["typ"] = "at+jwt"
			}
		})},
		{"NoType", edit(serverSigned, func(h, _ map[string]any) { delete(h, "typ") })},
		{"CritHeader", edit(serverSigned, func(h, _ map[string]any) { h["crit"], h["x-ext"] = []string{"x-ext"}, true })},
		{"HeaderJWKForeignKey", edit(foreignSigned, func(h, _ map[string]any) { h["jwk"] = foreignJWK })},
		{"HeaderJWKServerSigned", edit(serverSigned, func(h, _ map[string]any) { h["jwk"] = publicJWKMap(t, serverPub) })},
		{"HeaderJKUForeignKey", edit(foreignSigned, func(h, _ map[string]any) {
			h["jku"], h["kid"] = attacker.URL+"/jwks.json", foreignJWK["kid"]
		})},
		{"HeaderJKUServerKid", edit(foreignSigned, func(h, _ map[string]any) { h["jku"] = attacker.URL + "/jwks.json" })},
		{"HeaderJKUServerSigned", edit(serverSigned, func(h, _ map[string]any) { h["jku"] = attacker.URL + "/jwks.json" })},
		{"HeaderX5U", edit(foreignSigned, func(h, _ map[string]any) { h["x5u"] = attacker.URL + "/cert.pem" })},
		{"ForeignKeyServerKid", edit(foreignSigned, func(map[string]any, map[string]any) {})},
	}

	targets := []struct {
		name     string
		base     string
		send     func(t *testing.T, token string) response
		accepted func(r response) bool
	}{
		{"Me", tok.AccessToken,
			func(t *testing.T, token string) response { return a.get(t, "/v1/me", token) },
			func(r response) bool { return r.Status == http.StatusOK }},
		// A malformed code: a token that got through is answered 400 by
		// the handler, before any attempt is spent.
		{"TOTPVerify", pending,
			func(t *testing.T, token string) response { return a.verify(t, token, "x") },
			func(r response) bool { return r.Status == http.StatusBadRequest && r.code() == "invalid_request" }},
	}
	for _, target := range targets {
		t.Run(target.name, func(t *testing.T) {
			base := parseJWT(t, target.base)
			t.Run("ResignedUnchangedAccepted", func(t *testing.T) {
				// Control: the forging machinery makes tokens the server takes.
				if r := target.send(t, serverSigned(t, base.Header, base.Claims)); !target.accepted(r) {
					t.Fatalf("re-signed, unchanged token refused: %d %s", r.Status, r.Body)
				}
			})
			for _, f := range forgeries {
				t.Run(f.name, func(t *testing.T) {
					r := target.send(t, f.build(t, target.base, base))
					r.wantProblem(t, http.StatusUnauthorized, "invalid_token")
					if got := r.Header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
						t.Errorf("WWW-Authenticate = %q, want error=\"invalid_token\"", got)
					}
				})
			}
		})
	}

	t.Run("NeverFetchesHeaderKeys", func(t *testing.T) {
		if n := fetched.Load(); n != 0 {
			t.Errorf("the service fetched the attacker's key URL %d times, want 0", n)
		}
	})

	t.Run("ExpiredByClock", func(t *testing.T) {
		// The real tokens, once the clock passes their exp plus leeway.
		a.Clock.Advance(15*time.Minute + 6*time.Second)
		a.get(t, "/v1/me", tok.AccessToken).wantProblem(t, http.StatusUnauthorized, "invalid_token")
		a.verify(t, pending, "x").wantProblem(t, http.StatusUnauthorized, "invalid_token")
	})
}

// publicJWKMap is the RFC 7517 public JWK of a P-256 key, with the kid
// "attacker".
func publicJWKMap(t *testing.T, pub *ecdsa.PublicKey) map[string]any {
	t.Helper()
	b, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"kty": "EC", "crv": "P-256", "x": seg.EncodeToString(b[1:33]), "y": seg.EncodeToString(b[33:65]),
		"kid": "attacker", "alg": "ES256", "use": "sig"}
}

// TestMFATokenNamesPendingLogin: an mfa_token is good only if a password
// step (or a step-up) issued exactly it. Tokens signed with the service's
// own key but never issued — a fresh jti, or a real token's jti with
// another sub or a raised amr — are refused as invalid_token before any
// attempt is spent, on every endpoint that takes one; the real token is
// untouched by them and still works.
func TestMFATokenNamesPendingLogin(t *testing.T) {
	a := startApp(t, appOptions{})
	u := newTOTPUser(t, a, "pending-owner")
	victim := newTOTPUser(t, a, "pending-victim")
	real := a.mfaToken(t, u.Username, u.Password)
	kid, key := a.signingKey(t)
	base := parseJWT(t, real)
	if base.Header["kid"] != kid {
		t.Fatalf("the mfa_token's kid %v is not the signing key %s", base.Header["kid"], kid)
	}
	forge := func(f func(c map[string]any)) string {
		c := clone(base.Claims)
		f(c)
		return signES256(t, key, base.Header, c)
	}
	forgeries := map[string]string{
		"FreshJTI":         forge(func(c map[string]any) { c["jti"] = "never-issued-" + u.ID }),
		"RealJTIOtherSub":  forge(func(c map[string]any) { c["sub"] = victim.ID }),
		"RealJTIRaisedAMR": forge(func(c map[string]any) { c["amr"] = []string{"pwd", "hwk"} }),
	}
	for name, tok := range forgeries {
		t.Run(name, func(t *testing.T) {
			code := u.code(a.Clock.step())
			if name == "RealJTIOtherSub" {
				code = victim.code(a.Clock.step())
			}
			a.verify(t, tok, code).wantProblem(t, http.StatusUnauthorized, "invalid_token")
			a.post(t, "/v1/mfa/webauthn/options", tok, struct{}{}).wantProblem(t, http.StatusUnauthorized, "invalid_token")
			a.post(t, "/v1/mfa/recovery/verify", tok, map[string]string{"code": u.RecoveryCodes[0]}).
				wantProblem(t, http.StatusUnauthorized, "invalid_token")
		})
	}
	// Nothing was spent: the victim's account budget and the real token's
	// attempts are whole, and the real token and the victim's code work.
	if got, err := a.DB().User(context.Background(), victim.ID); err != nil || got.Attempts.Failures != 0 {
		t.Fatalf("victim after the forgeries: %+v, %v; want no attempt counted", got, err)
	}
	for range 4 {
		a.verify(t, real, "000000") // 4 wrong codes: the 5th attempt must still be there
	}
	a.Clock.Advance(30 * time.Second)
	if r := a.verify(t, real, u.code(a.Clock.step())); r.Status != http.StatusOK {
		t.Fatalf("the real mfa_token after the forgeries and 4 wrong codes: %d %s", r.Status, r.Body)
	}
}
