package guard

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stepup-auth/stepup/tokens/guard/guardtest"
)

// discard is a ResponseWriter that keeps nothing, so the benchmarks measure
// the guard rather than a recorder.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

// benchGuard returns a handler behind Require("aal2", 0) and a request
// carrying a valid ES256 access token.
func benchGuard(b *testing.B, cacheSize int) (http.Handler, *http.Request) {
	s := guardtest.NewServer(b, guardtest.Options{})
	j := newJWKS(b, s, nil)
	g, err := New(j, Config{Issuer: s.URL, Audience: s.Audience, Now: s.Now, CacheSize: cacheSize})
	if err != nil {
		b.Fatal(err)
	}
	tok := s.Token(b, "aal2", []string{"pwd", "otp", "mfa"}, s.Now())
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, found := FromContext(r.Context()); !found {
			b.Error("no claims")
		}
		w.WriteHeader(http.StatusNoContent)
	})
	r := httptest.NewRequest(http.MethodGet, "/resource", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return g.Require("aal2", 0)(ok), r
}

// measure starts measuring; the function it returns reports, besides
// ns/op, the wall-clock rate per core (tokens/s/core: b.N over elapsed time
// over the cores used) and the CPU cost (cpu-ns/op: process CPU time per
// token, GC included; tokens/cpu-s: its inverse, tokens per CPU-second).
// The CPU figures hold up on a busy machine, where wall time does not.
func measure(b *testing.B, cores int) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/float64(cores), "tokens/s/core")
		if start < 0 || b.N == 0 {
			return
		}
		perOp := float64(cpuTime()-start) / float64(b.N)
		b.ReportMetric(perOp, "cpu-ns/op")
		b.ReportMetric(1e9/perOp, "tokens/cpu-s")
	}
}

// BenchmarkGuardVerify is the full middleware path for a token seen for the
// first time (the verified-token cache off): header parsing, JWT decoding,
// the pinned-key lookup in the JWKS cache, the ES256 signature check, the
// claim checks, the acr ladder and the context.
func BenchmarkGuardVerify(b *testing.B) {
	h, r := benchGuard(b, -1)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	report := measure(b, 1)
	for b.Loop() {
		h.ServeHTTP(w, r)
		if w.code != http.StatusNoContent {
			b.Fatalf("status %d", w.code)
		}
	}
	report()
}

// BenchmarkGuardVerifyCached is the same path for a token seen before, as
// on every request of a session after its first: the signature check is
// skipped, the requirement is still assessed.
func BenchmarkGuardVerifyCached(b *testing.B) {
	h, r := benchGuard(b, 0)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	report := measure(b, 1)
	for b.Loop() {
		h.ServeHTTP(w, r)
		if w.code != http.StatusNoContent {
			b.Fatalf("status %d", w.code)
		}
	}
	report()
}

func BenchmarkGuardVerifyParallel(b *testing.B) {
	h, r := benchGuard(b, -1)
	b.ReportAllocs()
	report := measure(b, runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		w := &discard{h: http.Header{}}
		for pb.Next() {
			h.ServeHTTP(w, r)
			if w.code != http.StatusNoContent {
				b.Errorf("status %d", w.code)
				return
			}
		}
	})
	report()
}

// BenchmarkRawECDSAVerifyP256 is the floor BenchmarkGuardVerify is measured
// against: SHA-256 of an access token's signing input and one P-256
// signature check, nothing else.
func BenchmarkRawECDSAVerifyP256(b *testing.B) {
	s := guardtest.NewServer(b, guardtest.Options{})
	tok := s.Token(b, "aal2", []string{"pwd", "otp", "mfa"}, s.Now())
	input := []byte(tok[:strings.LastIndexByte(tok, '.')])
	priv := newP256(b)
	sum := sha256.Sum256(input)
	sig, err := ecdsa.SignASN1(rand.Reader, priv, sum[:])
	if err != nil {
		b.Fatal(err)
	}
	pub := &priv.PublicKey
	b.ReportAllocs()
	report := measure(b, 1)
	for b.Loop() {
		h := sha256.Sum256(input)
		if !ecdsa.VerifyASN1(pub, h[:], sig) {
			b.Fatal("verify failed")
		}
	}
	report()
}

func BenchmarkRawECDSAVerifyP256Parallel(b *testing.B) {
	priv := newP256(b)
	input := make([]byte, 600) // the size of an access token's signing input
	sum := sha256.Sum256(input)
	sig, err := ecdsa.SignASN1(rand.Reader, priv, sum[:])
	if err != nil {
		b.Fatal(err)
	}
	pub := &priv.PublicKey
	b.ReportAllocs()
	report := measure(b, runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h := sha256.Sum256(input)
			if !ecdsa.VerifyASN1(pub, h[:], sig) {
				b.Error("verify failed")
				return
			}
		}
	})
	report()
}

// BenchmarkGuardRefuseUnknownKid is what a token with a made-up kid costs
// once the refresh budget is spent: no fetch, no signature check.
func BenchmarkGuardRefuseUnknownKid(b *testing.B) {
	s := guardtest.NewServer(b, guardtest.Options{})
	g, _ := newGuard(b, s)
	tok := forge(b, jwt.SigningMethodES256, newP256(b), map[string]any{"kid": "made-up"}, validClaims(s))
	h := g.Require("aal2", 0)(echo)
	r := httptest.NewRequest(http.MethodGet, "/resource", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
		if w.code != http.StatusUnauthorized {
			b.Fatalf("status %d", w.code)
		}
	}
	if n := s.JWKSFetches(); n != 1 {
		b.Errorf("JWKS fetches = %d, want the start-up fetch only", n)
	}
}
