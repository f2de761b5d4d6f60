package guard

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stepup-auth/stepup/tokens"
	"github.com/stepup-auth/stepup/tokens/guard/guardtest"
)

// benchDPoP runs the guard middleware over b.N requests of one DPoP-bound
// token, each with its own proof (made before the clock starts: a client
// signs its proofs, the resource server verifies them). cacheSize is the
// verified-token cache, as in benchGuard; the proof is verified on every
// request whatever the cache.
func benchDPoP(b *testing.B, cacheSize int) {
	s := guardtest.NewServer(b, guardtest.Options{})
	j := newJWKS(b, s, nil)
	g, err := New(j, Config{Issuer: s.URL, Audience: s.Audience, Now: s.Now, CacheSize: cacheSize,
		URL: publicURL, ReplayCacheSize: b.N + 1})
	if err != nil {
		b.Fatal(err)
	}
	k := guardtest.NewDPoPKey(b, tokens.ES256)
	tok := s.BoundToken(b, k, "aal2", []string{"pwd", "otp", "mfa"}, s.Now())
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := g.Require("aal2", 0)(ok)
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		r := httptest.NewRequest(http.MethodGet, "/resource", nil)
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("DPoP", k.Proof(b, guardtest.Proof{Method: "GET", URL: publicURL + "/resource", Token: tok, IAT: s.Now()}))
		reqs[i] = r
	}
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	report := measure(b, 1)
	for i := 0; i < b.N; i++ {
		h.ServeHTTP(w, reqs[i])
		if w.code != http.StatusNoContent {
			b.Fatalf("status %d", w.code)
		}
	}
	report()
}

// BenchmarkGuardVerifyDPoP is BenchmarkGuardVerify for a DPoP-bound token
// with a fresh proof: the token's signature and the proof's (both ES256),
// the proof's checks and the replay cache.
func BenchmarkGuardVerifyDPoP(b *testing.B) { benchDPoP(b, -1) }

// BenchmarkGuardVerifyDPoPCached is BenchmarkGuardVerifyCached with DPoP:
// the token is in the verified-token cache, each proof is still verified.
func BenchmarkGuardVerifyDPoPCached(b *testing.B) { benchDPoP(b, 0) }
