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
	// Leeway is the clock skew allowed on exp and iat (default 5 seconds;
	// negative means none).
	Leeway time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Validate reports whether c is usable: an Issuer and at least one
// non-empty audience.
func (c VerifierConfig) Validate() error {
	if c.Issuer == "" {
		return errors.New("tokens: verifier needs the issuer")
	}
	if len(c.Audiences) == 0 || slices.Contains(c.Audiences, "") {
		return errors.New("tokens: verifier needs access-token audiences, none empty")
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

// Headers refused outright: "crit" because this package understands no
// extension (RFC 7515 §4.1.11), the rest because a key is never taken or
// fetched from the token itself.
var forbiddenHeaders = [...]string{"crit", "jwk", "jku", "x5u", "x5c"}

// Verifier checks access and mfa_pending tokens. It is safe for concurrent
// use; the parsers and key functions are built once.
type Verifier struct {
	keys       KeyResolver
	access     *jwt.Parser
	pending    *jwt.Parser
	accessKey  jwt.Keyfunc
	pendingKey jwt.Keyfunc
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
		keys:    keys,
		access:  jwt.NewParser(append(slices.Clone(common), jwt.WithAudience(slices.Clone(cfg.Audiences)...))...),
		pending: jwt.NewParser(common...), // audience is per call, checked in Pending
	}
	v.accessKey = func(t *jwt.Token) (any, error) { return v.key(t, TypeAccess) }
	v.pendingKey = func(t *jwt.Token) (any, error) { return v.key(t, TypeMFAPending) }
	return v
}

// Access verifies an access token and returns its claims. Besides the
// signature it requires: JOSE typ "at+jwt" (or "application/at+jwt"), a kid
// the resolver knows with that key's own alg, no crit/jwk/jku/x5u/x5c
// header, the configured iss, an aud containing one of the configured
// audiences, exp in the future and iat not in the future (both within
// leeway), and non-empty sub, jti, sid, auth_time and acr.
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
	}
	return c.claims(), nil
}

// Pending verifies an mfa_pending token for the endpoint whose audience is
// audience and returns its claims. It applies the rules of Access except
// that typ must be "mfa-pending+jwt" (or "application/mfa-pending+jwt"), aud
// must contain audience, scope must be exactly "mfa_pending", and sub, jti
// and iat are the required claims. Errors are as for Access; an empty
// audience refuses every token.
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
	}
	return c.claims(), nil
}

// parse runs golang-jwt's parser and maps its errors to the package's.
func (v *Verifier) parse(p *jwt.Parser, token string, claims jwt.Claims, key jwt.Keyfunc) error {
	if len(token) > maxTokenLen {
		return invalid("token too long")
	}
	if _, err := p.ParseWithClaims(token, claims, key); err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return fmt.Errorf("%w: %v", ErrExpired, err)
		}
		return fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	return nil
}

// Reasons a header is refused, returned from the key function (which
// golang-jwt calls after decoding, before checking the signature).
var (
	errType      = errors.New("wrong typ")
	errForbidden = errors.New("forbidden header (crit, jwk, jku, x5u or x5c)")
	errNoKid     = errors.New("missing kid")
	errKid       = errors.New("unknown kid")
	errAlg       = errors.New("alg is not the algorithm of the key")
)

// key checks the JOSE header of t and returns the key pinned to its kid.
func (v *Verifier) key(t *jwt.Token, typ string) (any, error) {
	h := t.Header
	if s, _ := h["typ"].(string); !typeIs(s, typ) {
		return nil, errType
	}
	for _, name := range forbiddenHeaders {
		if _, ok := h[name]; ok {
			return nil, errForbidden
		}
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
