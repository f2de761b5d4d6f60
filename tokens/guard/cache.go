package guard

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/stepup-auth/stepup/tokens"
)

// DefaultCacheSize is how many verified tokens a Guard remembers.
const DefaultCacheSize = 10000

// verifiedCache remembers tokens this Guard verified, by SHA-256 of the
// whole token, until they expire: a resource server sees the same access
// token on every request of a session for up to its lifetime, and checking
// its signature once is enough. An entry is used only while its signing key
// is still published (a key withdrawn from the JWKS stops its cached tokens
// at once) and before its exp; the requirement (acr, max_age, amr) is
// assessed on every request.
type verifiedCache struct {
	mu  sync.RWMutex
	m   map[[32]byte]cachedToken
	max int
}

type cachedToken struct {
	claims tokens.AccessClaims
	kid    string
}

func newVerifiedCache(size int) *verifiedCache {
	if size < 0 {
		return nil
	}
	if size == 0 {
		size = DefaultCacheSize
	}
	return &verifiedCache{m: make(map[[32]byte]cachedToken), max: size}
}

func (c *verifiedCache) get(key [32]byte) (cachedToken, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	return e, ok
}

// put stores a verified token; when full it drops expired entries, then if
// need be an arbitrary half, so memory stays bounded under any load.
func (c *verifiedCache) put(key [32]byte, e cachedToken, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, v := range c.m {
			if !now.Before(v.claims.Expiry) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max/2 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = e
}

// headerKid reads the kid of a token the Verifier has just accepted.
func headerKid(tok string) string {
	head, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(raw, &h)
	return h.Kid
}

// cachedVerify returns the claims of tok from the cache when they may be
// reused, else verifies tok and remembers it.
func (g *Guard) cachedVerify(tok string) (tokens.AccessClaims, error) {
	key := sha256.Sum256([]byte(tok))
	if e, ok := g.cache.get(key); ok && g.now().Before(e.claims.Expiry.Add(g.leeway)) {
		if _, _, published := g.keys.Public(e.kid); published {
			return e.claims, nil
		}
	}
	claims, err := g.verifier.Access(tok)
	if err != nil {
		return claims, err
	}
	g.cache.put(key, cachedToken{claims: claims, kid: headerKid(tok)}, g.now())
	return claims, nil
}
