package guard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stepup-auth/stepup/tokens"
)

// DefaultLevels is the default acr ladder, lowest first (DESIGN.md).
var DefaultLevels = []string{"aal1", "aal2", "aal3"}

// Config configures a Guard. Zero values take the defaults named on each
// field.
type Config struct {
	// Issuer is the required "iss" of access tokens (required).
	Issuer string
	// Audience is this resource server's identifier; a token's "aud" must
	// contain it (required).
	Audience string
	// Levels is the acr ladder, lowest first (default DefaultLevels). A
	// token whose acr is not on it satisfies no acr requirement.
	Levels []string
	// Realm is the realm of every challenge (default Audience).
	Realm string
	// Leeway is the clock skew allowed on exp, iat and auth_time and on
	// MaxLifetime (default 5 seconds; negative means none). max_age is
	// checked without leeway.
	Leeway time.Duration
	// MaxLifetime is the longest lifetime (exp - iat) of an accepted access
	// token (default tokens.DefaultMaxAccessTTL, one hour; negative is
	// invalid).
	MaxLifetime time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// CacheSize is how many verified tokens to remember until they expire,
	// so a token seen again skips the signature check (default
	// DefaultCacheSize; negative disables the cache). Cached tokens are used
	// only while their signing key is still published.
	CacheSize int
	// OnChallenge, if set, is called with every challenge Authorize returns
	// (and so every refusal of the middlewares), for logging: the
	// challenge's Err says why.
	OnChallenge func(r *http.Request, c *Challenge)

	// URL is this resource server's public base URL
	// (scheme://host[:port][/prefix]). Setting it accepts DPoP (RFC 9449):
	// a proof's htu must be URL and the request's path — never a URL built
	// from the Host header. Empty: no DPoP, and a DPoP-bound token is
	// refused whatever its scheme.
	URL string
	// DPoPMaxAge is how old a proof's iat may be (default 60 seconds).
	DPoPMaxAge time.Duration
	// ReplayCacheSize bounds the in-memory record of proof jtis (default
	// DefaultReplayCacheSize); see dpop.go for what it does and does not
	// protect across several instances.
	ReplayCacheSize int
}

// Validate reports whether c (after defaults) is usable: issuer and
// audience set; levels non-empty, distinct, and each a non-empty run of
// printable ASCII without space, quote or backslash (RFC 6749 NQCHAR, so it
// can travel in acr_values); a realm without quote or backslash.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Issuer == "":
		return errors.New("guard: the issuer is required")
	case c.Audience == "":
		return errors.New("guard: the audience is required")
	case c.MaxLifetime < 0:
		return errors.New("guard: the maximum token lifetime must not be negative")
	case !quotable(c.Realm, true):
		return fmt.Errorf("guard: realm %q must be printable ASCII without quote or backslash", c.Realm)
	}
	if _, ok := baseURL(c.URL); !ok {
		return fmt.Errorf("guard: URL %q must be an absolute http(s) URL without query or fragment", c.URL)
	}
	for i, l := range c.Levels {
		if !quotable(l, false) || l == "" {
			return fmt.Errorf("guard: acr level %q must be printable ASCII without space, quote or backslash", l)
		}
		if slices.Contains(c.Levels[:i], l) {
			return fmt.Errorf("guard: acr level %q is on the ladder twice", l)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if len(c.Levels) == 0 {
		c.Levels = DefaultLevels
	}
	if c.Realm == "" {
		c.Realm = c.Audience
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// quotable reports whether s can go inside a challenge's quoted-string
// unescaped: printable ASCII without '"' or '\', and without space unless
// space is allowed.
func quotable(s string, space bool) bool {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\' || (ch == ' ' && !space) {
			return false
		}
	}
	return true
}

// Requirement is what a route demands of the caller's access token beyond
// being valid.
type Requirement struct {
	// ACR is the lowest acceptable level on the ladder; empty accepts any.
	ACR string
	// MaxAge is the longest time since auth_time; 0 means no limit.
	// Otherwise it must be at least one second (it is sent in seconds).
	MaxAge time.Duration
	// AMR lists methods that must all be in the token's amr (RFC 8176),
	// e.g. "hwk".
	AMR []string
	// DPoP refuses Bearer tokens: only a DPoP-bound token with its proof
	// (needs Config.URL).
	DPoP bool
}

// Guard checks the access tokens of requests to a resource server and
// answers a token that falls short with the RFC 6750 or RFC 9470 challenge.
// It is safe for concurrent use.
type Guard struct {
	verifier    *tokens.Verifier
	keys        tokens.KeyResolver
	cache       *verifiedCache // nil when disabled
	levels      []string
	rank        map[string]int
	realm       string
	leeway      time.Duration
	now         func() time.Time
	onChallenge func(*http.Request, *Challenge)
	url         string               // public base URL; "" without DPoP
	dpop        *tokens.DPoPVerifier // nil without DPoP
	replays     *replayCache
}

// New returns a Guard that verifies access tokens with keys from keys
// (usually a *JWKS) through a tokens.Verifier for cfg.Issuer and
// cfg.Audience. It returns an error if keys is nil or cfg is invalid (see
// Config.Validate).
func New(keys tokens.KeyResolver, cfg Config) (*Guard, error) {
	if keys == nil {
		return nil, errors.New("guard: a key source is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	g := &Guard{
		verifier: tokens.NewVerifier(keys, tokens.VerifierConfig{
			Issuer: cfg.Issuer, Audiences: []string{cfg.Audience}, Leeway: cfg.Leeway,
			MaxAccessTTL: cfg.MaxLifetime, Now: cfg.Now,
		}),
		keys:        keys,
		cache:       newVerifiedCache(cfg.CacheSize),
		levels:      slices.Clone(cfg.Levels),
		rank:        make(map[string]int, len(cfg.Levels)),
		realm:       cfg.Realm,
		leeway:      max(cfg.Leeway, 0),
		now:         cfg.Now,
		onChallenge: cfg.OnChallenge,
	}
	if cfg.Leeway == 0 {
		g.leeway = 5 * time.Second // the Verifier's default
	}
	for i, l := range g.levels {
		g.rank[l] = i
	}
	if g.url, _ = baseURL(cfg.URL); g.url != "" {
		g.dpop = tokens.NewDPoPVerifier(tokens.DPoPConfig{MaxAge: cfg.DPoPMaxAge, Leeway: g.leeway, Now: cfg.Now})
		g.replays = newReplayCache(cfg.ReplayCacheSize)
	}
	return g, nil
}

// Validate reports whether req can ever be met: ACR empty or on the ladder,
// MaxAge 0 or at least one second, AMR values non-empty printable ASCII
// without space, quote or backslash.
func (g *Guard) Validate(req Requirement) error {
	if _, ok := g.rank[req.ACR]; req.ACR != "" && !ok {
		return fmt.Errorf("guard: acr %q is not on the ladder %v", req.ACR, g.levels)
	}
	if req.MaxAge != 0 && req.MaxAge < time.Second {
		return fmt.Errorf("guard: max age %v must be 0 or at least one second", req.MaxAge)
	}
	for _, m := range req.AMR {
		if m == "" || !quotable(m, false) {
			return fmt.Errorf("guard: amr value %q must be printable ASCII without space, quote or backslash", m)
		}
	}
	if req.DPoP && g.dpop == nil {
		return errors.New("guard: a route requiring DPoP needs Config.URL")
	}
	return nil
}

// Check verifies the Bearer access token of r and holds it to req. It
// returns the token's claims, or a challenge to answer with and zero claims:
//   - no Bearer credentials: 401, no error code (RFC 6750 §3.1), Err ErrNoToken;
//   - a repeated or malformed Authorization header: 400 invalid_request, Err ErrMalformed;
//   - a token the tokens.Verifier refuses (signature, kid, alg, typ, a
//     header member other than alg, kid and typ, a duplicated member, a
//     claim of the wrong JSON type, iss, aud, exp, required claims such as
//     client_id, a lifetime over MaxLifetime, iat or auth_time in the
//     future): 401 invalid_token, Err the verifier's error
//     (tokens.ErrInvalidToken; tokens.ErrExpired when expired);
//   - a valid token whose acr is below req.ACR (or not on the ladder), whose
//     auth_time is older than req.MaxAge, or whose amr lacks a value of
//     req.AMR: 401 insufficient_user_authentication with acr_values and
//     max_age from req (RFC 9470 §3), Err ErrInsufficient.
//
// Check does not validate req: a requirement Validate refuses is never met.
// It takes no key from the request other than through the Guard's key
// source, and calls no hook; see Authorize for that.
func (g *Guard) Check(r *http.Request, req Requirement) (tokens.AccessClaims, *Challenge) {
	_, c, ch := g.check(r, req)
	return c, ch
}

// Authorize is Check for middlewares: on success it returns r carrying the
// verified claims in its context (see FromContext); otherwise it returns a
// nil request and the challenge, after passing it to Config.OnChallenge.
// A request that an Authorize of this Guard already admitted with the same
// token is not verified again, so guards can be stacked at the cost of one
// signature check.
func (g *Guard) Authorize(r *http.Request, req Requirement) (*http.Request, *Challenge) {
	tok, c, ch := g.check(r, req)
	if ch != nil {
		if g.onChallenge != nil {
			g.onChallenge(r, ch)
		}
		return nil, ch
	}
	if v, ok := r.Context().Value(ctxKey{}).(*verified); ok && v.guard == g && v.token == tok {
		return r, nil
	}
	return r.WithContext(context.WithValue(r.Context(), ctxKey{}, &verified{guard: g, token: tok, claims: c})), nil
}

// Middleware returns net/http middleware that lets through only requests
// whose token meets req (see Check) and answers the others with the
// challenge. The handler finds the claims with FromContext. It panics if
// req is invalid (see Validate): a route that can never be reached is a
// wiring mistake, caught at start-up.
func (g *Guard) Middleware(req Requirement) func(http.Handler) http.Handler {
	if err := g.Validate(req); err != nil {
		panic(err)
	}
	req.AMR = slices.Clone(req.AMR)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r2, ch := g.Authorize(r, req)
			if ch != nil {
				ch.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r2)
		})
	}
}

// Require is Middleware for a token of level acr or higher whose
// auth_time is at most maxAge old (0: any age). It panics if acr is neither
// empty nor on the ladder, or if maxAge is below one second but not 0.
func (g *Guard) Require(acr string, maxAge time.Duration) func(http.Handler) http.Handler {
	return g.Middleware(Requirement{ACR: acr, MaxAge: maxAge})
}

// RequireAMR is Middleware for a token whose amr holds every one of values.
// It panics if a value is empty or contains a space, quote or backslash.
func (g *Guard) RequireAMR(values ...string) func(http.Handler) http.Handler {
	return g.Middleware(Requirement{AMR: values})
}

// check does the work of Check and also returns the token.
func (g *Guard) check(r *http.Request, req Requirement) (string, tokens.AccessClaims, *Challenge) {
	scheme, tok, ch := g.credentials(r, req)
	if ch != nil {
		return "", tokens.AccessClaims{}, ch
	}
	dpop := scheme == SchemeDPoP || req.DPoP
	c, err := g.verify(r.Context(), tok)
	if err != nil {
		ch := g.invalidToken(err, errors.Is(err, tokens.ErrExpired))
		ch.DPoP = dpop
		return "", tokens.AccessClaims{}, ch
	}
	if ch := g.dpopCheck(r, scheme, tok, c, req, g.admitted(r, tok)); ch != nil {
		return "", tokens.AccessClaims{}, ch
	}
	if ch := g.assess(c, req); ch != nil {
		ch.DPoP = dpop || c.JKT != ""
		return "", tokens.AccessClaims{}, ch
	}
	return tok, c, nil
}

// admitted reports whether an Authorize of g already admitted this request
// with tok (and so checked and used up its DPoP proof).
func (g *Guard) admitted(r *http.Request, tok string) bool {
	v, ok := r.Context().Value(ctxKey{}).(*verified)
	return ok && v.guard == g && v.token == tok
}

// verify returns the claims of tok, reusing those an earlier Authorize of g
// put in ctx for the same token while it has not expired.
func (g *Guard) verify(ctx context.Context, tok string) (tokens.AccessClaims, error) {
	if v, ok := ctx.Value(ctxKey{}).(*verified); ok && v.guard == g && v.token == tok &&
		g.now().Before(v.claims.Expiry.Add(g.leeway)) {
		return v.claims, nil
	}
	if g.cache != nil {
		return g.cachedVerify(tok)
	}
	return g.verifier.Access(tok)
}

// assess holds verified claims to req.
func (g *Guard) assess(c tokens.AccessClaims, req Requirement) *Challenge {
	if req.ACR != "" {
		want, ok := g.rank[req.ACR]
		have, known := g.rank[c.ACR]
		if !ok || !known || have < want {
			return g.insufficient(req, "authentication level "+req.ACR+" or higher is required")
		}
	}
	if req.MaxAge > 0 && g.now().Sub(c.AuthTime) > req.MaxAge {
		return g.insufficient(req, "a more recent authentication is required")
	}
	for _, m := range req.AMR {
		if !slices.Contains(c.AMR, m) {
			return g.insufficient(req, "authentication with "+strings.Join(req.AMR, ", ")+" is required")
		}
	}
	return nil
}

// credentials returns the scheme and token of r's Authorization header,
// or the challenge Credentials' error calls for: with DPoP accepted, a
// missing token is answered with both challenges (one when the route
// requires DPoP).
func (g *Guard) credentials(r *http.Request, req Requirement) (string, string, *Challenge) {
	scheme, tok, err := Credentials(r)
	switch {
	case errors.Is(err, ErrNoToken):
		ch := g.noToken()
		ch.DPoP, ch.AlsoDPoP = req.DPoP, g.dpop != nil
		return "", "", ch
	case err != nil:
		return "", "", g.malformed(err.Error())
	}
	return scheme, tok, nil
}

// BearerToken returns the token of r's Authorization header (RFC 6750
// §2.1). Another scheme counts as no Bearer credentials (ErrNoToken); a
// repeated header, or a token that is not a b64token, is ErrMalformed.
// Tokens in the query or body (§2.2, §2.3) are not accepted. A server that
// verifies its tokens itself (stepup's own API) parses with it too.
func BearerToken(r *http.Request) (string, error) {
	scheme, tok, err := Credentials(r)
	if err == nil && scheme != SchemeBearer {
		return "", ErrNoToken
	}
	return tok, err
}

// The authorization schemes Credentials reads.
const (
	SchemeBearer = "Bearer" // RFC 6750
	SchemeDPoP   = "DPoP"   // RFC 9449 §7.1
)

// Credentials returns the scheme (SchemeBearer or SchemeDPoP, whatever the
// case sent) and the token of r's Authorization header. Another scheme
// counts as no credentials (ErrNoToken); a repeated header, or a token
// that is not a b64token, is ErrMalformed.
func Credentials(r *http.Request) (scheme, token string, err error) {
	vals := r.Header["Authorization"]
	switch len(vals) {
	case 0:
		return "", "", ErrNoToken
	case 1:
	default:
		return "", "", fmt.Errorf("%w: repeated Authorization header", ErrMalformed)
	}
	scheme, tok, _ := strings.Cut(vals[0], " ")
	switch {
	case strings.EqualFold(scheme, SchemeBearer):
		scheme = SchemeBearer
	case strings.EqualFold(scheme, SchemeDPoP):
		scheme = SchemeDPoP
	default:
		return "", "", ErrNoToken
	}
	tok = strings.TrimLeft(tok, " ")
	if !isB64Token(tok) {
		return "", "", fmt.Errorf("%w: credentials are not a b64token", ErrMalformed)
	}
	return scheme, tok, nil
}

// isB64Token reports whether s matches RFC 6750 §2.1
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	end := len(strings.TrimRight(s, "="))
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		ch := s[i]
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		case ch == '-', ch == '.', ch == '_', ch == '~', ch == '+', ch == '/':
		default:
			return false
		}
	}
	return true
}

// ctxKey keys the verified token in a request context.
type ctxKey struct{}

// verified is what Authorize puts in the context.
type verified struct {
	guard  *Guard
	token  string
	claims tokens.AccessClaims
}

// FromContext returns the access-token claims a Guard verified for the
// request whose context is ctx, and whether there are any.
func FromContext(ctx context.Context) (tokens.AccessClaims, bool) {
	v, ok := ctx.Value(ctxKey{}).(*verified)
	if !ok {
		return tokens.AccessClaims{}, false
	}
	return v.claims, true
}
