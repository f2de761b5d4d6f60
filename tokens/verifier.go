package tokens

import (
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// KeyResolver finds the public key a token names by kid. *KeySet implements
// it; a resource server can implement it over a fetched JWKS. It must return
// exactly one algorithm per kid: the verifier refuses a token whose header
// alg differs from it.
type KeyResolver interface {
	Public(kid string) (key crypto.PublicKey, alg string, ok bool)
}

// VerifierConfig configures a Verifier. Zero values take the defaults named
// on each field.
type VerifierConfig struct {
	// Issuer is the required "iss" (required).
	Issuer string
	// Audiences are the accepted access-token audiences: a token is accepted
	// if its "aud" contains any of them (required).
	Audiences []string
	// Leeway is the clock skew allowed on exp, iat and auth_time, and on
	// the lifetimes below (default 5 seconds; negative means none).
	Leeway time.Duration
	// MaxAccessTTL is the longest lifetime (exp - iat) of an accepted
	// access token (default 1 hour, the longest access-token lifetime the
	// service can be configured with; negative is invalid).
	MaxAccessTTL time.Duration
	// MaxPendingTTL is the longest lifetime of an accepted mfa_pending
	// token (default MaxPendingTTL, the longest an Issuer issues; negative
	// is invalid).
	MaxPendingTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DefaultMaxAccessTTL is the default VerifierConfig.MaxAccessTTL.
const DefaultMaxAccessTTL = time.Hour

// Validate reports whether c is usable: an Issuer and at least one
// non-empty audience.
func (c VerifierConfig) Validate() error {
	if c.Issuer == "" {
		return errors.New("tokens: verifier needs the issuer")
	}
	if len(c.Audiences) == 0 || slices.Contains(c.Audiences, "") {
		return errors.New("tokens: verifier needs access-token audiences, none empty")
	}
	if c.MaxAccessTTL < 0 || c.MaxPendingTTL < 0 {
		return errors.New("tokens: verifier token lifetimes must not be negative")
	}
	return nil
}

// maxTokenLen bounds the work spent on a presented token before its
// signature is known to be good. Our tokens are well under 1 KiB.
const maxTokenLen = 8 << 10

// validAlgs are the algorithms any key can have. The per-key pin is checked
// against the resolver in keyfunc; this list only stops "none", HMAC and
// RSA before the key is even looked up.
var validAlgs = []string{ES256, EdDSA}

// Verifier checks access and mfa_pending tokens. It is safe for concurrent
// use; the parsers and key functions are built once.
type Verifier struct {
	keys       KeyResolver
	access     *jwt.Parser
	pending    *jwt.Parser
	accessKey  jwt.Keyfunc
	pendingKey jwt.Keyfunc
	leeway     time.Duration
	maxAccess  time.Duration
	maxPending time.Duration
	now        func() time.Time
}

// NewVerifier returns a Verifier that takes keys from keys. It panics if cfg
// is invalid (see VerifierConfig.Validate).
func NewVerifier(keys KeyResolver, cfg VerifierConfig) *Verifier {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	switch {
	case cfg.Leeway == 0:
		cfg.Leeway = 5 * time.Second
	case cfg.Leeway < 0:
		cfg.Leeway = 0
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxAccessTTL == 0 {
		cfg.MaxAccessTTL = DefaultMaxAccessTTL
	}
	if cfg.MaxPendingTTL == 0 {
		cfg.MaxPendingTTL = MaxPendingTTL
	}
	common := []jwt.ParserOption{
		jwt.WithValidMethods(validAlgs),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithStrictDecoding(),
	}
	v := &Verifier{
		keys:       keys,
		access:     jwt.NewParser(append(slices.Clone(common), jwt.WithAudience(slices.Clone(cfg.Audiences)...))...),
		pending:    jwt.NewParser(common...), // audience is per call, checked in Pending
		leeway:     cfg.Leeway,
		maxAccess:  cfg.MaxAccessTTL,
		maxPending: cfg.MaxPendingTTL,
		now:        cfg.Now,
	}
	v.accessKey = func(t *jwt.Token) (any, error) { return v.key(t, TypeAccess) }
	v.pendingKey = func(t *jwt.Token) (any, error) { return v.key(t, TypeMFAPending) }
	return v
}

// Access verifies an access token and returns its claims. Besides the
// signature it requires: a JOSE header of exactly alg, kid and typ (no
// crit, b64, zip, cty, jwk, jku, x5u, x5c or other member), typ "at+jwt"
// (or "application/at+jwt"), a kid the resolver knows with that key's own
// alg; no duplicated member in header or payload, and every registered
// claim of its JSON type (strings; numbers for exp, iat, nbf, auth_time and
// max_age; aud a string or array of strings; amr an array of strings); the
// configured iss, an aud containing one of the configured audiences, exp in
// the future and iat not in the future (both within leeway); non-empty sub,
// client_id, jti, sid and acr; exp after iat by at most MaxAccessTTL (plus
// leeway); auth_time present, not in the future and not after iat (within
// leeway).
//
// Every refusal is ErrInvalidToken; an expired token is ErrExpired, which is
// also ErrInvalidToken. The error text names the reason, for logs only.
func (v *Verifier) Access(token string) (AccessClaims, error) {
	var c accessJWT
	if err := v.parse(v.access, token, &c, v.accessKey); err != nil {
		return AccessClaims{}, err
	}
	switch {
	case c.Subject == "":
		return AccessClaims{}, invalid("missing sub")
	case c.ClientID == "":
		return AccessClaims{}, invalid("missing client_id")
	case c.ID == "":
		return AccessClaims{}, invalid("missing jti")
	case c.IssuedAt == nil:
		return AccessClaims{}, invalid("missing iat")
	case c.SID == "":
		return AccessClaims{}, invalid("missing sid")
	case c.AuthTime == nil:
		return AccessClaims{}, invalid("missing auth_time")
	case c.ACR == "":
		return AccessClaims{}, invalid("missing acr")
	case c.Cnf != nil && c.Cnf.JKT == "":
		return AccessClaims{}, invalid("cnf without jkt")
	}
	if err := v.lifetime(&c.RegisteredClaims, v.maxAccess); err != nil {
		return AccessClaims{}, err
	}
	switch {
	case c.AuthTime.After(v.now().Add(v.leeway)):
		return AccessClaims{}, invalid("auth_time is in the future")
	case c.AuthTime.After(c.IssuedAt.Add(v.leeway)):
		return AccessClaims{}, invalid("auth_time is after iat")
	}
	return c.claims(), nil
}

// Pending verifies an mfa_pending token for the endpoint whose audience is
// audience and returns its claims. It applies the rules of Access except
// that typ must be "mfa-pending+jwt" (or "application/mfa-pending+jwt"), aud
// must contain audience, scope must be exactly "mfa_pending", sub, jti and
// iat are the required claims, and the lifetime is bounded by
// MaxPendingTTL. Errors are as for Access; an empty audience refuses every
// token.
func (v *Verifier) Pending(token, audience string) (PendingClaims, error) {
	if audience == "" {
		return PendingClaims{}, invalid("no audience to check")
	}
	var c pendingJWT
	if err := v.parse(v.pending, token, &c, v.pendingKey); err != nil {
		return PendingClaims{}, err
	}
	switch {
	case !slices.Contains(c.Audience, audience):
		return PendingClaims{}, invalid("wrong aud")
	case c.Scope != ScopeMFAPending:
		return PendingClaims{}, invalid("wrong scope")
	case c.Subject == "":
		return PendingClaims{}, invalid("missing sub")
	case c.ID == "":
		return PendingClaims{}, invalid("missing jti")
	case c.IssuedAt == nil:
		return PendingClaims{}, invalid("missing iat")
	case c.Cnf != nil && c.Cnf.JKT == "":
		return PendingClaims{}, invalid("cnf without jkt")
	}
	if err := v.lifetime(&c.RegisteredClaims, v.maxPending); err != nil {
		return PendingClaims{}, err
	}
	pc := c.claims()
	pc.Record = pendingRecord(pc.ID, token)
	return pc, nil
}

// parse runs golang-jwt's parser and maps its errors to the package's.
func (v *Verifier) parse(p *jwt.Parser, token string, claims jwt.Claims, key jwt.Keyfunc) error {
	if len(token) > maxTokenLen {
		return invalid("token too long")
	}
	if err := checkJSON(token); err != nil {
		return err
	}
	if _, err := p.ParseWithClaims(token, claims, key); err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return fmt.Errorf("%w: %v", ErrExpired, err)
		}
		return fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	return nil
}

// lifetime refuses a token whose exp is not after its iat, or later than
// limit (plus leeway) after it. Both claims are present.
func (v *Verifier) lifetime(c *jwt.RegisteredClaims, limit time.Duration) error {
	switch d := c.ExpiresAt.Sub(c.IssuedAt.Time); {
	case d <= 0:
		return invalid("exp is not after iat")
	case d > limit+v.leeway:
		return invalid(fmt.Sprintf("lifetime %v exceeds %v", d, limit))
	}
	return nil
}

// Reasons a header is refused, returned from the key function (which
// golang-jwt calls after decoding, before checking the signature). Header
// members other than alg, kid and typ never get this far (checkJSON).
var (
	errType  = errors.New("wrong typ")
	errNoKid = errors.New("missing kid")
	errKid   = errors.New("unknown kid")
	errAlg   = errors.New("alg is not the algorithm of the key")
)

// key checks the JOSE header of t and returns the key pinned to its kid.
func (v *Verifier) key(t *jwt.Token, typ string) (any, error) {
	h := t.Header
	if s, _ := h["typ"].(string); !typeIs(s, typ) {
		return nil, errType
	}
	kid, _ := h["kid"].(string)
	if kid == "" {
		return nil, errNoKid
	}
	pub, alg, ok := v.keys.Public(kid)
	if !ok {
		return nil, errKid
	}
	if t.Method == nil || t.Method.Alg() != alg {
		return nil, errAlg
	}
	return pub, nil
}

// typeIs reports whether the typ header s names the media type want, with
// or without the "application/" prefix, ignoring case (RFC 7515 §4.1.9,
// RFC 9068 §4).
func typeIs(s, want string) bool {
	const prefix = "application/"
	if len(s) == len(prefix)+len(want) && strings.EqualFold(s[:len(prefix)], prefix) {
		s = s[len(prefix):]
	}
	return strings.EqualFold(s, want)
}
