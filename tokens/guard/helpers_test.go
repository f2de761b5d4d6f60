package guard

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stepup-auth/stepup/tokens/guard/guardtest"
)

// newJWKS starts a JWKS over s's metadata on s's clock, with background
// refresh far enough away not to interfere. mod, if set, adjusts the config.
func newJWKS(t testing.TB, s *guardtest.Server, mod func(*JWKSConfig)) *JWKS {
	t.Helper()
	cfg := JWKSConfig{Issuer: s.URL, RefreshInterval: time.Hour, Now: s.Now}
	if mod != nil {
		mod(&cfg)
	}
	j, err := NewJWKS(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewJWKS: %v", err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

// newGuard returns a Guard for s's tokens, over a fresh JWKS.
func newGuard(t testing.TB, s *guardtest.Server) (*Guard, *JWKS) {
	t.Helper()
	j := newJWKS(t, s, nil)
	g, err := New(j, Config{Issuer: s.URL, Audience: s.Audience, Now: s.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g, j
}

// echo answers 200 with the subject and acr it finds in the context.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, ok := FromContext(r.Context())
	if !ok {
		http.Error(w, "no claims in context", http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "%s %s %v", c.Subject, c.ACR, c.AMR)
})

// serve sends a GET with the given Authorization header values to h.
func serve(h http.Handler, authorization ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/resource", nil)
	for _, a := range authorization {
		r.Header.Add("Authorization", a)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// problemOf decodes the problem+json body of w.
func problemOf(t *testing.T, w *httptest.ResponseRecorder) problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body %q: %v", w.Body, err)
	}
	return p
}

// validClaims are the claims of a well-formed access token from s.
func validClaims(s *guardtest.Server) jwt.MapClaims {
	now := s.Now()
	return jwt.MapClaims{
		"iss": s.URL, "sub": guardtest.Subject, "aud": []string{s.Audience},
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": "jti-1", "sid": guardtest.Session,
		"auth_time": now.Unix(), "acr": "aal3", "amr": []string{"hwk", "user", "mfa"},
	}
}

// forge signs claims with key under method, with typ at+jwt and the given
// extra header members: a token the server never issued.
func forge(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["typ"] = "at+jwt"
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("forge: %v", err)
	}
	return s
}

func newP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// kidOf returns the kid in the JOSE header of tok.
func kidOf(t testing.TB, tok string) string {
	t.Helper()
	seg, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// countingKeys counts the lookups of a KeyResolver, i.e. the tokens the
// Verifier got as far as checking.
type countingKeys struct {
	*JWKS
	n atomic.Int64
}

func (c *countingKeys) Public(kid string) (crypto.PublicKey, string, bool) {
	c.n.Add(1)
	return c.JWKS.Public(kid)
}
