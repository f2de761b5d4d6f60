package guard

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stepup-auth/stepup/tokens"
)

// DPoP (RFC 9449) on the resource server. A token bound to a key (cnf.jkt)
// is accepted only with the DPoP authorization scheme and a proof of that
// key for this request (htm, htu, a fresh iat, ath the token's hash), whose
// jti this Guard has not seen before.
//
// What the jti replay cache protects, and what not: it is in memory, per
// Guard (per instance of the resource server). A copied proof is refused
// by the instance that saw it first; another instance behind the same load
// balancer would accept it once more within the proof's lifetime
// (DPoPMaxAge, default 60 s, plus 5 s of clock leeway), and only for the
// same method and URL and the same access token, since the proof signs
// those. An attacker who can copy requests can usually copy their answers
// too, so the gain is small; where it matters, route a client to one
// instance (sticky sessions), shorten DPoPMaxAge, or check proofs at one
// shared place (the authorization server keeps its proofs' jtis in its
// store for exactly that reason). The cache never grows past
// ReplayCacheSize: when it is full of unexpired entries, new proofs are
// refused (fail closed) until entries expire.

// DefaultReplayCacheSize is how many proofs a Guard remembers at most: at
// the default 65 s lifetime, about 1,500 proofs a second.
const DefaultReplayCacheSize = 100000

// replayCache remembers proof ids until they expire.
type replayCache struct {
	mu  sync.Mutex
	m   map[string]time.Time
	max int
}

func newReplayCache(size int) *replayCache {
	if size <= 0 {
		size = DefaultReplayCacheSize
	}
	return &replayCache{m: make(map[string]time.Time), max: size}
}

// use records id until until and reports whether it was new; it reports
// false too when the cache is full of live entries.
func (c *replayCache) use(id string, until, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, seen := c.m[id]; seen && now.Before(exp) {
		return false
	}
	if len(c.m) >= c.max {
		for k, exp := range c.m {
			if !now.Before(exp) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			return false
		}
	}
	c.m[id] = until
	return true
}

// dpopCheck holds a request with the DPoP scheme, or a bound token, to RFC
// 9449 §7.1. claims are the verified token's; proofSeen says an Authorize
// of this Guard already checked this request's proof.
func (g *Guard) dpopCheck(r *http.Request, scheme, tok string, c tokens.AccessClaims, req Requirement, proofSeen bool) *Challenge {
	switch {
	case scheme == SchemeBearer && c.JKT != "":
		return g.dpopRefusal(CodeInvalidToken, "the access token is DPoP-bound: send it with the DPoP scheme and a proof", ErrDPoPBound)
	case scheme == SchemeBearer && req.DPoP:
		return g.dpopRefusal(CodeInvalidToken, "this resource requires a DPoP-bound access token and proof", ErrDPoPRequired)
	case scheme == SchemeBearer:
		return nil
	case g.dpop == nil:
		return g.dpopRefusal(CodeInvalidToken, "DPoP is not accepted here", ErrDPoPRequired)
	case c.JKT == "":
		return g.dpopRefusal(CodeInvalidToken, "the access token is not DPoP-bound: send it as a Bearer token", ErrDPoPRequired)
	case proofSeen:
		return nil
	}
	vals := r.Header.Values("DPoP")
	if len(vals) != 1 {
		return g.dpopRefusal(CodeInvalidProof, "one DPoP proof is required", errors.Join(tokens.ErrDPoPProof, errors.New("no or several DPoP headers")))
	}
	p, err := g.dpop.Verify(vals[0], tokens.DPoPRequest{Method: r.Method, URL: g.url + r.URL.EscapedPath(), AccessToken: tok})
	if err != nil {
		return g.dpopRefusal(CodeInvalidProof, "the DPoP proof is invalid or not for this request", err)
	}
	if p.JKT != c.JKT {
		return g.dpopRefusal(CodeInvalidToken, "the DPoP proof is not signed by the access token's key", ErrDPoPBound)
	}
	if !g.replays.use(p.Replay, p.Until, g.now()) {
		return g.dpopRefusal(CodeInvalidProof, "the DPoP proof was used before", ErrDPoPReplay)
	}
	return nil
}

func (g *Guard) dpopRefusal(code, desc string, err error) *Challenge {
	return &Challenge{Status: http.StatusUnauthorized, Code: code, Description: desc, Realm: g.realm, DPoP: true, Err: err}
}

// baseURL checks Config.URL: an absolute http(s) URL without query or
// fragment; the trailing slash is dropped.
func baseURL(s string) (string, bool) {
	if s == "" {
		return "", true
	}
	if !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "http://") || strings.ContainsAny(s, "?#") {
		return "", false
	}
	return strings.TrimRight(s, "/"), true
}
