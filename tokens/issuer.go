package tokens

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxPendingTTL is the longest lifetime DESIGN.md allows an mfa_pending
// token.
const MaxPendingTTL = 5 * time.Minute

// IssuerConfig configures an Issuer. Zero values take the defaults named on
// each field.
type IssuerConfig struct {
	// Issuer is the "iss" of every token (required).
	Issuer string
	// Audiences is the "aud" of access tokens: the resource servers'
	// identifiers (required, none empty, not containing MFAAudience).
	Audiences []string
	// ClientID is the RFC 9068 "client_id" of access tokens (required: a
	// Verifier refuses an access token without it).
	ClientID string
	// AccessTTL is the access-token lifetime (default 15 minutes). A
	// Verifier refuses tokens living longer than its MaxAccessTTL (default
	// DefaultMaxAccessTTL).
	AccessTTL time.Duration
	// PendingTTL is the mfa_pending lifetime (default and maximum 5 minutes).
	PendingTTL time.Duration
	// MFAAudience is the only "aud" of mfa_pending tokens: this service's MFA
	// endpoints (default Issuer + "/v1/mfa").
	MFAAudience string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Rand is the randomness of jti values (default crypto/rand.Reader).
	Rand io.Reader
}

func (c IssuerConfig) withDefaults() IssuerConfig {
	if c.AccessTTL == 0 {
		c.AccessTTL = 15 * time.Minute
	}
	if c.PendingTTL == 0 {
		c.PendingTTL = MaxPendingTTL
	}
	if c.MFAAudience == "" && c.Issuer != "" {
		c.MFAAudience = c.Issuer + "/v1/mfa"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return c
}

// Validate reports whether c (after defaults) is usable.
func (c IssuerConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Issuer == "":
		return errors.New("tokens: issuer is required")
	case len(c.Audiences) == 0 || slices.Contains(c.Audiences, ""):
		return errors.New("tokens: access-token audiences are required and must not be empty strings")
	case c.ClientID == "":
		return errors.New("tokens: issuer needs the access-token client_id")
	case slices.Contains(c.Audiences, c.MFAAudience):
		return fmt.Errorf("tokens: the MFA audience %q must not be an access-token audience", c.MFAAudience)
	case c.AccessTTL <= 0:
		return errors.New("tokens: access-token lifetime must be positive")
	case c.PendingTTL <= 0 || c.PendingTTL > MaxPendingTTL:
		return fmt.Errorf("tokens: mfa_pending lifetime %v must be positive and at most %v", c.PendingTTL, MaxPendingTTL)
	}
	return nil
}

// Issuer signs access and mfa_pending tokens with the current key of a
// KeySet. It is safe for concurrent use.
type Issuer struct {
	keys *KeySet
	cfg  IssuerConfig
}

// NewIssuer returns an Issuer signing with keys. It panics if cfg is invalid
// (see IssuerConfig.Validate) or if a token lifetime exceeds the key set's
// Retain, since tokens would then outlive the key that verifies them.
func NewIssuer(keys *KeySet, cfg IssuerConfig) *Issuer {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	if longest := max(cfg.AccessTTL, cfg.PendingTTL); longest > keys.opts.Retain {
		panic(fmt.Sprintf("tokens: token lifetime %v exceeds key retention %v", longest, keys.opts.Retain))
	}
	cfg.Audiences = slices.Clone(cfg.Audiences)
	return &Issuer{keys: keys, cfg: cfg}
}

// AccessTTL is the lifetime of the access tokens i issues (for expires_in).
func (i *Issuer) AccessTTL() time.Duration { return i.cfg.AccessTTL }

// Access issues an RFC 9068 access token (JOSE typ "at+jwt") for subject sub
// in session sid, authenticated at authTime to level acr by the methods amr.
// It returns the compact token and the claims it carries, with times in whole
// seconds UTC. It returns ErrNoKey if the key set has no signing key, and an
// error if sub, sid or acr is empty or authTime is zero (the Verifier would
// refuse such a token).
func (i *Issuer) Access(sub, sid string, authTime time.Time, acr string, amr []string) (string, AccessClaims, error) {
	return i.BoundAccess(sub, sid, authTime, acr, amr, "")
}

// BoundAccess is Access for a token bound to the DPoP key whose RFC 7638
// thumbprint is jkt (cnf.jkt, RFC 9449 §6.1); an empty jkt is a Bearer
// token, as Access issues.
func (i *Issuer) BoundAccess(sub, sid string, authTime time.Time, acr string, amr []string, jkt string) (string, AccessClaims, error) {
	if sub == "" || sid == "" || acr == "" || authTime.IsZero() {
		return "", AccessClaims{}, errors.New("tokens: access token needs sub, sid, acr and auth_time")
	}
	jti, err := i.jti()
	if err != nil {
		return "", AccessClaims{}, err
	}
	now := seconds(i.cfg.Now())
	c := AccessClaims{
		Issuer:   i.cfg.Issuer,
		Subject:  sub,
		Audience: slices.Clone(i.cfg.Audiences),
		ClientID: i.cfg.ClientID,
		IssuedAt: now,
		Expiry:   seconds(now.Add(i.cfg.AccessTTL)),
		ID:       jti,
		Session:  sid,
		AuthTime: seconds(authTime),
		ACR:      acr,
		AMR:      slices.Clone(amr),
		JKT:      jkt,
	}
	wire := &accessJWT{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    c.Issuer,
			Subject:   c.Subject,
			Audience:  c.Audience,
			IssuedAt:  numeric(c.IssuedAt),
			ExpiresAt: numeric(c.Expiry),
			ID:        c.ID,
		},
		ClientID: c.ClientID,
		SID:      c.Session,
		AuthTime: numeric(c.AuthTime),
		ACR:      c.ACR,
		AMR:      c.AMR,
		Cnf:      bind(jkt),
	}
	token, err := i.sign(TypeAccess, wire)
	if err != nil {
		return "", AccessClaims{}, err
	}
	return token, c, nil
}

// Pending issues an mfa_pending token (JOSE typ "mfa-pending+jwt", scope
// "mfa_pending") from p's Subject, AMR, Session, ACR, MaxAge and JKT (sent
// as cnf.jkt). It sets
// Issuer, Audience (the MFA audience only), IssuedAt, Expiry (PendingTTL)
// and a fresh ID, overwriting whatever p held there, and returns the token
// and the completed claims. Session, ACR (sent as "acr_values") and MaxAge
// are omitted from the token when empty or zero. It returns ErrNoKey if the
// key set has no signing key, and an error if p.Subject is empty or p.MaxAge
// is negative.
func (i *Issuer) Pending(p PendingClaims) (string, PendingClaims, error) {
	if p.Subject == "" || p.MaxAge < 0 {
		return "", PendingClaims{}, errors.New("tokens: mfa_pending token needs sub and a non-negative max_age")
	}
	jti, err := i.jti()
	if err != nil {
		return "", PendingClaims{}, err
	}
	now := seconds(i.cfg.Now())
	p.Issuer = i.cfg.Issuer
	p.Audience = []string{i.cfg.MFAAudience}
	p.IssuedAt = now
	p.Expiry = seconds(now.Add(i.cfg.PendingTTL))
	p.ID = jti
	p.AMR = slices.Clone(p.AMR)
	wire := &pendingJWT{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    p.Issuer,
			Subject:   p.Subject,
			Audience:  p.Audience,
			IssuedAt:  numeric(p.IssuedAt),
			ExpiresAt: numeric(p.Expiry),
			ID:        p.ID,
		},
		Scope:     ScopeMFAPending,
		AMR:       p.AMR,
		SID:       p.Session,
		ACRValues: p.ACR,
		MaxAge:    p.MaxAge,
		Cnf:       bind(p.JKT),
	}
	token, err := i.sign(TypeMFAPending, wire)
	if err != nil {
		return "", PendingClaims{}, err
	}
	p.Record = pendingRecord(p.ID, token)
	return token, p, nil
}

// sign signs claims with the current key, stating typ and kid in the JOSE
// header.
func (i *Issuer) sign(typ string, claims jwt.Claims) (string, error) {
	k, err := i.keys.Signing()
	if err != nil {
		return "", err
	}
	var method jwt.SigningMethod
	switch k.Alg {
	case ES256:
		method = jwt.SigningMethodES256 // needs the *ecdsa.PrivateKey held in k.Private
	case EdDSA:
		method = jwt.SigningMethodEdDSA // needs the ed25519.PrivateKey held in k.Private
	default:
		return "", fmt.Errorf("tokens: key %s has unsupported algorithm %q", k.ID, k.Alg)
	}
	t := jwt.NewWithClaims(method, claims)
	t.Header["typ"] = typ
	t.Header["kid"] = k.ID
	s, err := t.SignedString(k.Private)
	if err != nil {
		return "", fmt.Errorf("tokens: sign with key %s: %w", k.ID, err)
	}
	return s, nil
}

// jti returns 128 random bits, base64url.
func (i *Issuer) jti() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(i.cfg.Rand, b[:]); err != nil {
		return "", fmt.Errorf("tokens: random jti: %w", err)
	}
	return b64.EncodeToString(b[:]), nil
}
