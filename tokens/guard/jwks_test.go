package guard

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stepup-auth/stepup/tokens"
	"github.com/stepup-auth/stepup/tokens/guard/guardtest"
)

var enc = base64.RawURLEncoding

// ecJWK is the public JWK of k under kid, with extra members appended.
func ecJWK(t testing.TB, kid string, k *ecdsa.PrivateKey, extra string) string {
	t.Helper()
	p, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`{"kty":"EC","crv":"P-256","x":%q,"y":%q,"kid":%q%s}`,
		enc.EncodeToString(p[1:33]), enc.EncodeToString(p[33:]), kid, extra)
}

func TestParseJWKS(t *testing.T) {
	ec := newP256(t)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ed := enc.EncodeToString(edPub)
	p, _ := ec.PublicKey.Bytes()
	x, y := enc.EncodeToString(p[1:33]), enc.EncodeToString(p[33:])
	offCurve := enc.EncodeToString(append(p[1:32:32], p[32]^1))

	tests := []struct {
		name string
		key  string
		alg  string // "" when the key must be skipped
	}{
		{"ECWithAlg", ecJWK(t, "k", ec, `,"alg":"ES256","use":"sig"`), tokens.ES256},
		{"ECWithoutAlg", ecJWK(t, "k", ec, ``), tokens.ES256},
		{"ECKeyOpsVerify", ecJWK(t, "k", ec, `,"key_ops":["verify"]`), tokens.ES256},
		{"ECWithPrivateMemberIgnored", ecJWK(t, "k", ec, `,"d":"AAAA"`), tokens.ES256},
		{"ECOtherAlg", ecJWK(t, "k", ec, `,"alg":"ES384"`), ""},
		{"ECUseEnc", ecJWK(t, "k", ec, `,"use":"enc"`), ""},
		{"ECKeyOpsSign", ecJWK(t, "k", ec, `,"key_ops":["sign"]`), ""},
		{"ECNoKid", strings.Replace(ecJWK(t, "k", ec, ``), `"kid":"k"`, `"kid":""`, 1), ""},
		{"ECOtherCurve", strings.Replace(ecJWK(t, "k", ec, ``), "P-256", "P-384", 1), ""},
		{"ECOffCurve", fmt.Sprintf(`{"kty":"EC","crv":"P-256","x":%q,"y":%q,"kid":"k"}`, x, offCurve), ""},
		{"ECShortX", fmt.Sprintf(`{"kty":"EC","crv":"P-256","x":%q,"y":%q,"kid":"k"}`, enc.EncodeToString(p[2:33]), y), ""},
		{"ECPaddedX", fmt.Sprintf(`{"kty":"EC","crv":"P-256","x":%q,"y":%q,"kid":"k"}`, x+"=", y), ""},
		{"ECWrongMemberType", `{"kty":"EC","crv":"P-256","x":1,"y":2,"kid":"k"}`, ""},
		{"Ed25519", fmt.Sprintf(`{"kty":"OKP","crv":"Ed25519","x":%q,"kid":"k","alg":"EdDSA"}`, ed), tokens.EdDSA},
		{"Ed25519WithoutAlg", fmt.Sprintf(`{"kty":"OKP","crv":"Ed25519","x":%q,"kid":"k"}`, ed), tokens.EdDSA},
		{"X25519", fmt.Sprintf(`{"kty":"OKP","crv":"X25519","x":%q,"kid":"k"}`, ed), ""},
		{"Ed25519AlgES256", fmt.Sprintf(`{"kty":"OKP","crv":"Ed25519","x":%q,"kid":"k","alg":"ES256"}`, ed), ""},
		{"RSA", `{"kty":"RSA","n":"sXch","e":"AQAB","kid":"k","alg":"RS256"}`, ""},
		{"Oct", `{"kty":"oct","k":"c2VjcmV0","kid":"k","alg":"HS256"}`, ""},
	}
	other := ecJWK(t, "other", newP256(t), "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := parseJWKS([]byte(`{"keys":[` + tt.key + `,` + other + `]}`))
			if err != nil {
				t.Fatalf("parseJWKS: %v", err)
			}
			k, ok := keys["k"]
			if tt.alg == "" {
				if ok {
					t.Fatalf("key kept as %s, want skipped", k.alg)
				}
			} else if !ok || k.alg != tt.alg {
				t.Fatalf("key = %+v, %v; want alg %s", k, ok, tt.alg)
			}
			if _, ok := keys["other"]; !ok {
				t.Error("the other, good key was lost")
			}
		})
	}

	t.Run("DuplicateKidDropped", func(t *testing.T) {
		keys, err := parseJWKS([]byte(`{"keys":[` + ecJWK(t, "k", ec, "") + `,` + ecJWK(t, "k", newP256(t), "") + `,` + other + `]}`))
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Sorted(maps.Keys(keys)); !slices.Equal(got, []string{"other"}) {
			t.Errorf("kids = %v, want [other]", got)
		}
	})
	t.Run("KeyMatches", func(t *testing.T) {
		keys, _ := parseJWKS([]byte(`{"keys":[` + ecJWK(t, "k", ec, "") + `]}`))
		if pub, ok := keys["k"].key.(*ecdsa.PublicKey); !ok || !pub.Equal(&ec.PublicKey) {
			t.Errorf("key = %v, want %v", keys["k"].key, ec.PublicKey)
		}
	})
	for name, doc := range map[string]string{
		"NotJSON":    `keys`,
		"NoKeys":     `{}`,
		"EmptyKeys":  `{"keys":[]}`,
		"OnlyRSA":    `{"keys":[{"kty":"RSA","n":"sXch","e":"AQAB","kid":"k"}]}`,
		"KeysObject": `{"keys":{}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseJWKS([]byte(doc)); err == nil {
				t.Error("parseJWKS succeeded, want error")
			}
		})
	}
}

func TestMetadataURL(t *testing.T) {
	const suffix = "/.well-known/oauth-authorization-server"
	tests := []struct{ issuer, want string }{
		{"https://as.example.com", "https://as.example.com" + suffix},
		{"https://as.example.com/", "https://as.example.com" + suffix},
		{"https://as.example.com/tenant/1", "https://as.example.com" + suffix + "/tenant/1"},
		{"https://as.example.com:8443/t/", "https://as.example.com:8443" + suffix + "/t"},
		{"http://localhost:8080", "http://localhost:8080" + suffix},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080" + suffix},
		{"http://[::1]:8080", "http://[::1]:8080" + suffix},
		{"http://as.example.com", ""},
		{"http://10.0.0.1", ""},
		{"ftp://as.example.com", ""},
		{"https://as.example.com?x=1", ""},
		{"https://as.example.com#f", ""},
		{"https://user@as.example.com", ""},
		{"/relative", ""},
	}
	for _, tt := range tests {
		got, err := metadataURL(tt.issuer)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("metadataURL(%q) = %q, %v; want %q", tt.issuer, got, err, tt.want)
		}
	}
}

func TestJWKSConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  JWKSConfig
		ok   bool
	}{
		{"Minimal", JWKSConfig{Issuer: "https://as.example.com"}, true},
		{"NoIssuer", JWKSConfig{}, false},
		{"PlainHTTPIssuer", JWKSConfig{Issuer: "http://as.example.com"}, false},
		{"PlainHTTPMetadata", JWKSConfig{Issuer: "https://as.example.com", MetadataURL: "http://as.example.com/m"}, false},
		{"RefreshBelowMin", JWKSConfig{Issuer: "https://as.example.com", RefreshInterval: time.Second, MinRefreshInterval: time.Minute}, false},
		{"NegativeTimeout", JWKSConfig{Issuer: "https://as.example.com", Timeout: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// fakeAS is an authorization server whose documents a test writes. base is
// the server's own URL, the expected issuer.
type fakeAS struct {
	*httptest.Server
	meta func(w http.ResponseWriter, r *http.Request, base string)
	jwks func(w http.ResponseWriter, r *http.Request)
}

func newFakeAS(t *testing.T, meta func(w http.ResponseWriter, r *http.Request, base string), jwks func(w http.ResponseWriter, r *http.Request)) *fakeAS {
	f := &fakeAS{meta: meta, jwks: jwks}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case wellKnown:
			f.meta(w, r, "http://"+r.Host)
		case "/jwks":
			f.jwks(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func metaJSON(issuer, jwksURI string) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, _ *http.Request, base string) {
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, strings.ReplaceAll(issuer, "BASE", base), strings.ReplaceAll(jwksURI, "BASE", base))
	}
}

func TestDiscovery(t *testing.T) {
	key := newP256(t)
	goodJWKS := func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"keys":[`+ecJWK(t, "k1", key, `,"alg":"ES256","use":"sig"`)+`]}`)
	}
	status := func(code int) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
	}
	huge := func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("a", maxDocument) + `"}`))
	}
	tests := []struct {
		name    string
		meta    func(http.ResponseWriter, *http.Request, string)
		jwks    func(http.ResponseWriter, *http.Request)
		wantErr string // "" for success
	}{
		{"OK", metaJSON("BASE", "BASE/jwks"), goodJWKS, ""},
		{"IssuerMismatch", metaJSON("https://evil.example.com", "BASE/jwks"), goodJWKS, "names issuer"},
		{"IssuerTrailingSlash", metaJSON("BASE/", "BASE/jwks"), goodJWKS, "names issuer"},
		{"JWKSURIPlainHTTP", metaJSON("BASE", "http://keys.example.com/jwks"), goodJWKS, "must use https"},
		{"JWKSURIRelative", metaJSON("BASE", "/jwks"), goodJWKS, "jwks_uri"},
		{"JWKSURIMissing", metaJSON("BASE", ""), goodJWKS, "no jwks_uri"},
		{"MetadataNotFound", func(w http.ResponseWriter, r *http.Request, _ string) { http.NotFound(w, r) }, goodJWKS, "404"},
		{"MetadataNotJSON", func(w http.ResponseWriter, _ *http.Request, _ string) { fmt.Fprint(w, "<html>") }, goodJWKS, "decode metadata"},
		{"MetadataTooLarge", func(w http.ResponseWriter, r *http.Request, _ string) { huge(w, r) }, goodJWKS, "larger than"},
		{"MetadataRedirectToPlainHTTP", func(w http.ResponseWriter, r *http.Request, _ string) {
			http.Redirect(w, r, "http://as.example.com/meta", http.StatusFound)
		}, goodJWKS, "must use https"},
		{"JWKSStatus500", metaJSON("BASE", "BASE/jwks"), status(500), "500"},
		{"JWKSTooLarge", metaJSON("BASE", "BASE/jwks"), huge, "larger than"},
		{"JWKSNoUsableKey", metaJSON("BASE", "BASE/jwks"), func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, `{"keys":[{"kty":"RSA","n":"sXch","e":"AQAB","kid":"r"}]}`)
		}, "no usable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, tt.meta, tt.jwks)
			j, err := NewJWKS(context.Background(), JWKSConfig{Issuer: as.URL})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewJWKS: %v", err)
				}
				defer j.Close()
				if _, alg, ok := j.Public("k1"); !ok || alg != tokens.ES256 {
					t.Errorf("Public(k1) = %s, %v; want ES256, true", alg, ok)
				}
				return
			}
			if err == nil {
				j.Close()
				t.Fatalf("NewJWKS succeeded, want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestDiscoveryTimeout(t *testing.T) {
	as := newFakeAS(t, func(_ http.ResponseWriter, r *http.Request, _ string) { <-r.Context().Done() }, nil)
	start := time.Now()
	_, err := NewJWKS(context.Background(), JWKSConfig{Issuer: as.URL, Timeout: 100 * time.Millisecond})
	if err == nil {
		t.Fatal("NewJWKS succeeded against a server that never answers")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("NewJWKS took %v, want about the 100ms timeout", d)
	}
}

// A new key appears: the first token it signed costs one fetch, the next
// none.
func TestKeyRotation(t *testing.T) {
	s := guardtest.NewServer(t, guardtest.Options{})
	g, j := newGuard(t, s)
	h := g.Require("aal2", 0)(echo)
	if w := serve(h, "Bearer "+s.Token(t, "aal2", []string{"otp"}, s.Now())); w.Code != 200 {
		t.Fatalf("before rotation: status %d", w.Code)
	}
	newKid := s.Rotate(t)
	if _, ok := (*j.keys.Load())[newKid]; ok {
		t.Fatal("new kid cached before any refresh; the test proves nothing")
	}
	before := s.JWKSFetches()
	tok := s.Token(t, "aal2", []string{"otp"}, s.Now())
	if kidOf(t, tok) != newKid {
		t.Fatal("token not signed by the new key")
	}
	for i := range 3 {
		if w := serve(h, "Bearer "+tok); w.Code != 200 {
			t.Fatalf("request %d after rotation: status %d, body %s", i, w.Code, w.Body)
		}
	}
	if got := s.JWKSFetches() - before; got != 1 {
		t.Errorf("JWKS fetches after rotation = %d, want 1", got)
	}
}

// Bursts of tokens with made-up kids cost at most one fetch per
// MinRefreshInterval, however many arrive at once.
func TestUnknownKidBurst(t *testing.T) {
	s := guardtest.NewServer(t, guardtest.Options{})
	g, _ := newGuard(t, s)
	h := g.Require("", 0)(echo)
	key := newP256(t)
	const n = 200
	toks := make([]string, n)
	for i := range toks {
		var kid [12]byte
		_, _ = rand.Read(kid[:])
		toks[i] = forge(t, jwt.SigningMethodES256, key, map[string]any{"kid": enc.EncodeToString(kid[:])}, validClaims(s))
	}

	burst := func() (fetches int64) {
		before := s.JWKSFetches()
		start := make(chan struct{})
		var wg sync.WaitGroup
		var bad atomic.Int64
		for _, tok := range toks {
			wg.Go(func() {
				<-start
				w := serve(h, "Bearer "+tok)
				if w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
					bad.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if b := bad.Load(); b != 0 {
			t.Errorf("%d requests not answered 401 invalid_token", b)
		}
		return s.JWKSFetches() - before
	}

	t.Run("WithinIntervalOfStart", func(t *testing.T) {
		if got := burst(); got != 0 {
			t.Errorf("fetches = %d, want 0 (the start-up fetch was under MinRefreshInterval ago)", got)
		}
	})
	t.Run("AfterInterval", func(t *testing.T) {
		s.Advance(30 * time.Second)
		if got := burst(); got != 1 {
			t.Errorf("fetches = %d, want 1", got)
		}
	})
	t.Run("RightAfter", func(t *testing.T) {
		s.Advance(29 * time.Second)
		if got := burst(); got != 0 {
			t.Errorf("fetches = %d, want 0", got)
		}
	})
	t.Run("NextInterval", func(t *testing.T) {
		s.Advance(time.Second)
		if got := burst(); got != 1 {
			t.Errorf("fetches = %d, want 1", got)
		}
	})
}

// Concurrent misses while a fetch is running wait for it and share it.
func TestConcurrentMissesShareFetch(t *testing.T) {
	key := newP256(t)
	release := make(chan struct{})
	var fetches atomic.Int64
	published := atomic.Pointer[string]{}
	first := `{"keys":[` + ecJWK(t, "old", key, "") + `]}`
	published.Store(&first)
	as := newFakeAS(t, metaJSON("BASE", "BASE/jwks"), func(w http.ResponseWriter, _ *http.Request) {
		if fetches.Add(1) > 1 {
			<-release // hold the refresh until every caller is waiting
		}
		fmt.Fprint(w, *published.Load())
	})
	var now atomic.Int64 // seconds; a miss may refresh once the clock has moved 30s
	clock := func() time.Time { return time.Unix(now.Load(), 0) }
	j, err := NewJWKS(context.Background(), JWKSConfig{Issuer: as.URL, RefreshInterval: time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	now.Add(60)
	second := `{"keys":[` + ecJWK(t, "old", key, "") + `,` + ecJWK(t, "new", key, "") + `]}`
	published.Store(&second)

	const n = 50
	var wg sync.WaitGroup
	var found atomic.Int64
	for range n {
		wg.Go(func() {
			if _, _, ok := j.Public("new"); ok {
				found.Add(1)
			}
		})
	}
	// Wait until the one fetch is in the handler, then let it finish.
	for deadline := time.Now().Add(5 * time.Second); fetches.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatal("no refresh started")
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if got := fetches.Load(); got != 2 {
		t.Errorf("fetches = %d, want 2 (start-up and one shared refresh)", got)
	}
	if got := found.Load(); got != n {
		t.Errorf("%d of %d callers found the new key", got, n)
	}
}

func TestBackgroundRefresh(t *testing.T) {
	s := guardtest.NewServer(t, guardtest.Options{})
	var errs atomic.Int64
	j, err := NewJWKS(context.Background(), JWKSConfig{
		Issuer: s.URL, RefreshInterval: 10 * time.Millisecond, MinRefreshInterval: time.Millisecond,
		OnError: func(error) { errs.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); s.JWKSFetches() < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("background fetches = %d after 5s, want ≥ 3", s.JWKSFetches())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	_ = j.Close() // idempotent
	after := s.JWKSFetches()
	if _, _, ok := j.Public("unknown"); ok {
		t.Error("Public(unknown) = ok")
	}
	if s.JWKSFetches() != after {
		t.Error("a closed JWKS fetched")
	}
	if errs.Load() != 0 {
		t.Errorf("OnError called %d times", errs.Load())
	}
	if s.MetadataFetches() != 1 {
		t.Errorf("metadata fetches = %d, want 1", s.MetadataFetches())
	}
}

// A failed refresh is reported and keeps the keys.
func TestFailedRefreshKeepsKeys(t *testing.T) {
	key := newP256(t)
	var failing atomic.Bool
	as := newFakeAS(t, metaJSON("BASE", "BASE/jwks"), func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		fmt.Fprint(w, `{"keys":[`+ecJWK(t, "k1", key, "")+`]}`)
	})
	var mu sync.Mutex
	var reported []error
	j, err := NewJWKS(context.Background(), JWKSConfig{Issuer: as.URL, MinRefreshInterval: time.Nanosecond, RefreshInterval: time.Hour,
		OnError: func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	failing.Store(true)
	if _, _, ok := j.Public("k2"); ok {
		t.Fatal("Public(k2) = ok")
	}
	if _, _, ok := j.Public("k1"); !ok {
		t.Error("k1 lost after a failed refresh")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || !strings.Contains(reported[0].Error(), "502") {
		t.Errorf("OnError got %v, want one 502 error", reported)
	}
}

func TestEdDSAServer(t *testing.T) {
	s := guardtest.NewServer(t, guardtest.Options{Alg: tokens.EdDSA})
	g, j := newGuard(t, s)
	tok := s.Token(t, "aal2", []string{"otp"}, s.Now())
	if _, alg, ok := j.Public(kidOf(t, tok)); !ok || alg != tokens.EdDSA {
		t.Fatalf("Public = %s, %v; want EdDSA", alg, ok)
	}
	if w := serve(g.Require("aal2", 0)(echo), "Bearer "+tok); w.Code != 200 {
		t.Errorf("status = %d, body %s", w.Code, w.Body)
	}
}

var _ tokens.KeyResolver = (*JWKS)(nil)

func TestZeroJWKS(t *testing.T) {
	var j JWKS
	if _, _, ok := j.Public("k"); ok {
		t.Error("zero JWKS found a key")
	}
	if err := j.Close(); err != nil {
		t.Error(err)
	}
}
