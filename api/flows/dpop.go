package flows

import (
	"context"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

// DPoP (RFC 9449) in the flows: a request may come with a proof of
// possession of a key (App.Proof checks it and makes it single use);
// whatever it then obtains — an mfa_token, a session's refresh token, an
// access token — is bound to that key, and every later use of it needs a
// proof of the same key.

// DPoP is the DPoP configuration of an App.
type DPoP struct {
	// Verifier checks proofs (default: tokens.NewDPoPVerifier with its
	// defaults on the App's clock).
	Verifier *tokens.DPoPVerifier
	// Nonces, when set, makes every proof carry a current server nonce
	// (RFC 9449 §8); nil: nonces are not used.
	Nonces *tokens.DPoPNonces
	// Seen records accepted proofs until they expire, so each is used once
	// across every instance. Without it every proof is refused.
	Seen mfa.Claims
	// Required refuses to issue any token without a proof.
	Required bool
}

// Errors of DPoP, beside tokens.ErrDPoPProof and tokens.ErrDPoPNonce.
var (
	// ErrDPoPRequired: the service issues tokens only to a proof of a key.
	ErrDPoPRequired = errors.New("flows: a DPoP proof is required")
	// ErrDPoPReplay: the proof was used before.
	ErrDPoPReplay = errors.New("flows: the DPoP proof was used before")
	// ErrDPoPUnavailable: proofs are not accepted (no replay store).
	ErrDPoPUnavailable = errors.New("flows: DPoP is not configured")
	// ErrDPoPBound: a token bound to a DPoP key came without a proof of
	// that key (or, for an access token, not with the DPoP scheme).
	ErrDPoPBound = errors.New("flows: the token is bound to a DPoP key this request did not prove")
	// ErrDPoPUnbound: a Bearer token was presented with the DPoP scheme.
	ErrDPoPUnbound = errors.New("flows: the token presented with the DPoP scheme is not DPoP-bound")
)

// Proof is a verified DPoP proof of one request; only App.Proof and
// App.CheckProof make one.
type Proof struct {
	jkt    string
	access bool // made for an access token sent with the DPoP scheme (ath checked)
	// replay and until are what UseProof records; used once it has.
	replay string
	until  time.Time
	used   bool
}

// JKT is the thumbprint of the proven key; "" for a nil Proof.
func (p *Proof) JKT() string {
	if p == nil {
		return ""
	}
	return p.jkt
}

// ProofRequest is a request's DPoP header and what its proof must be for.
type ProofRequest struct {
	Header string // the value of the one DPoP header; "" when there is none
	Method string
	URL    string // the public URL: the configured issuer and the path
	// AccessToken is the token sent with the DPoP authorization scheme;
	// the proof's ath must be its hash. Empty otherwise.
	AccessToken string
}

// Proof checks the DPoP proof of a request and uses it up. It returns nil
// and no error when there is no proof (unless one is needed: an access
// token sent with the DPoP scheme); tokens.ErrDPoPProof for a proof that is
// wrong in any way, tokens.ErrDPoPNonce for one without a current nonce
// (NonceNow says which), ErrDPoPReplay for one used before (on any
// instance).
//
// The jti is recorded last, after every other check, so a refused proof
// costs no write.
func (a *App) Proof(ctx context.Context, r ProofRequest) (*Proof, error) {
	p, err := a.CheckProof(r)
	if err != nil || p == nil {
		return p, err
	}
	if err := a.UseProof(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// CheckProof is Proof without using the proof up: every check, no write.
// A request that presents a token checks the token before it calls
// UseProof, so a stranger's self-signed proof never costs the store a
// write.
func (a *App) CheckProof(r ProofRequest) (*Proof, error) {
	if r.Header == "" {
		if r.AccessToken != "" {
			return nil, errors.Join(tokens.ErrDPoPProof, errors.New("the DPoP scheme without a proof"))
		}
		return nil, nil
	}
	if a.DPoP.Seen == nil {
		return nil, ErrDPoPUnavailable
	}
	p, err := a.DPoP.Verifier.Verify(r.Header, tokens.DPoPRequest{Method: r.Method, URL: r.URL, AccessToken: r.AccessToken})
	if err != nil {
		a.m.dpop.WithLabelValues("invalid").Inc()
		return nil, err
	}
	if a.DPoP.Nonces != nil && !a.DPoP.Nonces.Valid(p.Nonce) {
		a.m.dpop.WithLabelValues("nonce").Inc()
		return nil, tokens.ErrDPoPNonce
	}
	return &Proof{jkt: p.JKT, access: r.AccessToken != "", replay: p.Replay, until: p.Until}, nil
}

// UseProof records a checked proof as used, on every instance: ErrDPoPReplay
// if it was before. A nil proof needs nothing.
func (a *App) UseProof(ctx context.Context, p *Proof) error {
	if p == nil || p.used {
		return nil
	}
	if err := a.DPoP.Seen.Claim(ctx, p.replay, p.until); err != nil {
		if errors.Is(err, mfa.ErrUsed) {
			a.m.dpop.WithLabelValues("replay").Inc()
			return ErrDPoPReplay
		}
		return err
	}
	p.used = true
	a.m.dpop.WithLabelValues("accepted").Inc()
	return nil
}

// NonceNow is the server nonce to send in DPoP-Nonce, "" when nonces are
// off.
func (a *App) NonceNow() string {
	if a.DPoP.Nonces == nil {
		return ""
	}
	return a.DPoP.Nonces.Current()
}

// NoncesOn reports whether proofs must carry a server nonce.
func (a *App) NoncesOn() bool { return a.DPoP.Nonces != nil }

// needProof refuses a token-issuing request without a proof when DPoP is
// required.
func (a *App) needProof(cl Client) error {
	if a.DPoP.Required && cl.Proof == nil {
		return ErrDPoPRequired
	}
	return nil
}

// sameKey reports whether the request proved the key jkt.
func sameKey(p *Proof, jkt string) bool {
	return p != nil && subtle.ConstantTimeCompare([]byte(p.jkt), []byte(jkt)) == 1
}

// holdsAccess checks an access token's binding against the request: a
// bound token needs the DPoP scheme and a proof of its key; a Bearer token
// must not come with the DPoP scheme (RFC 9449 §7.1).
func holdsAccess(c tokens.AccessClaims, p *Proof) error {
	switch {
	case c.JKT != "" && (p == nil || !p.access || !sameKey(p, c.JKT)):
		return ErrDPoPBound
	case c.JKT == "" && p != nil && p.access:
		return ErrDPoPUnbound
	}
	return nil
}

// holdsPending checks an mfa_token's binding: a token issued to a proof
// needs a proof of the same key.
func holdsPending(pc tokens.PendingClaims, p *Proof) error {
	if pc.JKT != "" && !sameKey(p, pc.JKT) {
		return ErrDPoPBound
	}
	return nil
}

// bindKey is the key tokens of a session are bound to: the session's own,
// or else the key the request proved ("" for none: Bearer).
func bindKey(sessionJKT string, p *Proof) string {
	if sessionJKT != "" {
		return sessionJKT
	}
	return p.JKT()
}
