package flows

import (
	"context"
	"errors"
	"time"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

// Authenticate verifies an access token and finds its session live:
// ErrAccessBad or ErrSessionGone otherwise. A DPoP-bound token needs the
// request's proof (cl.Proof, made for this token) of its key, and a Bearer
// token must not come with one: ErrDPoPBound, ErrDPoPUnbound.
func (a *App) Authenticate(ctx context.Context, token string, cl Client) (*Caller, error) {
	claims, err := a.Verifier.Access(token)
	if err != nil {
		return nil, errors.Join(ErrAccessBad, err)
	}
	if err := holdsAccess(claims, cl.Proof); err != nil {
		return nil, err
	}
	sess, err := a.Sessions.Active(ctx, claims.Session)
	if err != nil {
		if errors.Is(err, tokens.ErrSessionEnded) || errors.Is(err, tokens.ErrSessionNotFound) {
			return nil, errors.Join(ErrSessionGone, err)
		}
		return nil, err
	}
	return &Caller{Claims: claims, Session: sess, Client: cl}, nil
}

// StepUp is RFC 9470 step-up for a signed-in session: want is the lowest
// acceptable level (the caller parsed acr_values), maxAge the greatest
// acceptable age of the authentication (nil: none), password the password
// re-entered (nil: none).
//
// If the session already meets the request, the result is tokens at once.
// Otherwise it is an mfa_token bound to the same session offering only the
// factors able to reach the level (mfa.Policy.Offered, as sign-in asks it).
// What the session proved counts only while its authentication is within
// maxAge; after that a key that verifies its user, or the password and a
// second factor, must prove it again — ErrPasswordRequired when only the
// latter can. ErrNoFactorReaches when nothing can.
func (a *App) StepUp(ctx context.Context, c *Caller, want string, maxAge *time.Duration, password *string) (*Outcome, error) {
	if err := a.needProof(c.Client); err != nil {
		return nil, err
	}
	sess := c.Session
	jkt := bindKey(sess.JKT, c.Client.Proof)
	now := a.Now()
	fresh := maxAge == nil || now.Sub(sess.AuthTime) <= *maxAge
	if a.Policy.Satisfies(sess.ACR, want) && fresh && password == nil {
		a.m.stepups.WithLabelValues(want, sess.ACR).Inc()
		t, err := a.issue(sess, "", jkt)
		if err != nil {
			return nil, err
		}
		return &Outcome{Tokens: t}, nil
	}
	u, err := a.Users.User(ctx, sess.UserID)
	if err != nil {
		return nil, err
	}
	have := mfa.Counted(sess.AMR, sess.AuthTime, maxAge, now)
	if password != nil {
		if err := a.checkPassword(ctx, c.Client, u, *password, sess.ID, "step-up"); err != nil {
			return nil, err
		}
		have = append(have, mfa.AMRPassword)
	}
	factors := a.Policy.Offered(u, want, have)
	if len(factors) == 0 {
		if password == nil && len(a.Policy.Offered(u, want, append(have, mfa.AMRPassword))) > 0 {
			return nil, ErrPasswordRequired
		}
		return nil, ErrNoFactorReaches
	}
	pending := tokens.PendingClaims{Subject: u.ID, Session: sess.ID, ACR: want, AMR: have, JKT: jkt}
	if maxAge != nil {
		pending.MaxAge = int64(*maxAge / time.Second)
	}
	tok, claims, err := a.Issuer.Pending(pending)
	if err != nil {
		return nil, err
	}
	if err := a.Pending.Open(ctx, claims.Record, u.ID, now, claims.Expiry.Add(time.Minute)); err != nil {
		return nil, err
	}
	return &Outcome{Pending: &Pending{Token: tok, Expiry: claims.Expiry, Factors: factors}}, nil
}

// require applies the policy's requirement for change (f for a rename or
// removal) to the caller's session as its record says now: an
// *InsufficientError when it is not met.
func (a *App) require(c *Caller, u *mfa.User, ch mfa.Change, f *mfa.Factor) error {
	s := c.Session
	ms := mfa.Session{ID: s.ID, ACR: s.ACR, AuthTime: s.AuthTime, Created: s.CreatedAt}
	now := a.Now()
	r := a.Policy.Requires(u, ch, f, ms, now)
	if a.Policy.Meets(ms, r, now) {
		return nil
	}
	return &InsufficientError{ACR: r.ACR, MaxAge: r.MaxAge}
}
