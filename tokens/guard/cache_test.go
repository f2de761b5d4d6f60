package guard

import (
	"crypto"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/tokens"
	"github.com/stepup-auth/stepup/tokens/guard/guardtest"
)

// withdrawable is a key source whose keys can be withdrawn, as when a
// compromised key leaves the JWKS.
type withdrawable struct {
	tokens.KeyResolver
	gone atomic.Bool
}

func (w *withdrawable) Public(kid string) (crypto.PublicKey, string, bool) {
	if w.gone.Load() {
		return nil, "", false
	}
	return w.KeyResolver.Public(kid)
}

func TestVerifiedCache(t *testing.T) {
	s := guardtest.NewServer(t, guardtest.Options{})
	keys := &withdrawable{KeyResolver: newJWKS(t, s, nil)}
	g, err := New(keys, Config{Issuer: s.URL, Audience: s.Audience, Now: s.Now})
	if err != nil {
		t.Fatal(err)
	}
	aal2 := s.Token(t, "aal2", []string{"pwd", "otp", "mfa"}, s.Now())
	h := g.Require("aal2", 0)(echo)

	if w := serve(h, "Bearer "+aal2); w.Code != http.StatusOK {
		t.Fatalf("first use: %d", w.Code)
	}
	if w := serve(h, "Bearer "+aal2); w.Code != http.StatusOK {
		t.Fatalf("cached use: %d", w.Code)
	}

	t.Run("RequirementStillAssessed", func(t *testing.T) {
		if w := serve(g.Require("aal3", 0)(echo), "Bearer "+aal2); w.Code != http.StatusUnauthorized {
			t.Fatalf("cached aal2 token at an aal3 route: %d, want 401", w.Code)
		}
		if w := serve(g.RequireAMR("hwk")(echo), "Bearer "+aal2); w.Code != http.StatusUnauthorized {
			t.Fatalf("cached otp token at a hwk route: %d, want 401", w.Code)
		}
	})

	t.Run("WithdrawnKeyStopsCachedTokens", func(t *testing.T) {
		keys.gone.Store(true)
		defer keys.gone.Store(false)
		if w := serve(h, "Bearer "+aal2); w.Code != http.StatusUnauthorized {
			t.Fatalf("cached token after its key was withdrawn: %d, want 401", w.Code)
		}
	})

	t.Run("ExpiredCachedTokenRefused", func(t *testing.T) {
		if w := serve(h, "Bearer "+aal2); w.Code != http.StatusOK {
			t.Fatalf("before expiry: %d", w.Code)
		}
		s.Advance(time.Hour)
		if w := serve(h, "Bearer "+aal2); w.Code != http.StatusUnauthorized {
			t.Fatalf("cached token after expiry: %d, want 401", w.Code)
		}
	})
}

func TestVerifiedCacheBounded(t *testing.T) {
	c := newVerifiedCache(100)
	now := time.Now()
	for i := range 1000 {
		var k [32]byte
		k[0], k[1] = byte(i), byte(i>>8)
		c.put(k, cachedToken{claims: tokens.AccessClaims{Expiry: now.Add(time.Hour)}}, now)
		if len(c.m) > 100 {
			t.Fatalf("cache holds %d entries, want at most 100", len(c.m))
		}
	}
	if newVerifiedCache(-1) != nil {
		t.Fatal("a negative size must disable the cache")
	}
}
