package flows

import (
	"context"
	"errors"
	"strings"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

// ChangePassword sets a new password. It needs the current one (counted
// against the username's password budget) and what the policy requires
// (a fresh aal2 once the user has a second factor); the user's other
// sessions end.
func (a *App) ChangePassword(ctx context.Context, c *Caller, current, next string) error {
	pw, err := mfa.NormalizePassword(next)
	if err != nil {
		return err
	}
	u, err := a.Me(ctx, c)
	if err != nil {
		return err
	}
	if err := mfa.CheckStrength(pw, u.Username); err != nil {
		return err
	}
	if err := a.require(c, u, mfa.ChangePassword, nil); err != nil {
		return err
	}
	if err := a.checkPassword(ctx, c.Client, u, current, c.Session.ID, "password change"); err != nil {
		return err
	}
	hash, err := a.Password.Hash(ctx, pw)
	if err != nil {
		return err
	}
	if err := a.Users.SetPassword(ctx, u.ID, hash); err != nil {
		return err
	}
	if err := a.Sessions.Store.RevokeUserSessions(context.WithoutCancel(ctx), u.ID, c.Session.ID, a.Now()); err != nil {
		return err
	}
	if err := a.forgetDevices(ctx, u.ID); err != nil {
		return err
	}
	a.event(c.Client, u.ID, c.Session.ID, mfa.EventPasswordChanged, "other sessions ended, remembered devices forgotten")
	return nil
}

// Logout ends the caller's session: its refresh family and every access
// token carrying its sid, on every instance at once.
func (a *App) Logout(ctx context.Context, c *Caller) error {
	if err := a.Sessions.Revoke(ctx, c.Session.ID); err != nil {
		return err
	}
	a.event(c.Client, c.Claims.Subject, c.Session.ID, mfa.EventLogout, "")
	a.m.issued.WithLabelValues("session", "logout").Inc()
	return nil
}

// Refresh rotates a refresh token. The new access token keeps the
// session's auth_time, acr and amr; refresh never raises them. A rotated
// token presented again revokes the whole session (tokens.ErrRefreshReused),
// unless the same client (IP address and user agent) presents it within the
// sessions' grace period: it then gets the same successor.
//
// A session bound to a DPoP key refreshes only with a proof of that key;
// without one, or with another key, its token is tokens.ErrRefreshUnknown
// and the session is left as it was.
func (a *App) Refresh(ctx context.Context, cl Client, token string) (*Tokens, error) {
	if err := a.needProof(cl); err != nil {
		return nil, err
	}
	sess, next, err := a.Sessions.RotateBound(ctx, token, tokens.Fingerprint(cl.IP, cl.UserAgent), cl.Proof.JKT())
	if err != nil {
		if errors.Is(err, tokens.ErrRefreshReused) {
			a.m.issued.WithLabelValues("refresh", "reuse_detected").Inc()
			if sess != nil {
				a.event(cl, sess.UserID, sess.ID, mfa.EventRefreshReuse, "session revoked")
			}
			a.Logger.Warn("refresh token reuse; session revoked")
		}
		return nil, err
	}
	a.m.issued.WithLabelValues("refresh", "rotated").Inc()
	return a.issue(sess, next, bindKey(sess.JKT, cl.Proof))
}

// TokenInfo is what a presented token is: the session it belongs to, and
// the access token's claims when it is one (nil for a refresh token).
type TokenInfo struct {
	Session *tokens.Session
	Access  *tokens.AccessClaims
}

// Lookup finds the session of an access token of this issuer or of a
// session's current refresh token; nil for anything else (RFC 7009 and
// 7662 answer unknown tokens like inactive ones).
func (a *App) Lookup(ctx context.Context, token string) (*TokenInfo, error) {
	if strings.Count(token, ".") == 2 {
		ac, err := a.Verifier.Access(token)
		if err != nil {
			return nil, nil
		}
		sess, err := a.Sessions.Store.Session(ctx, ac.Session)
		if errors.Is(err, tokens.ErrSessionNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &TokenInfo{Session: sess, Access: &ac}, nil
	}
	sess, err := a.Sessions.OfRefresh(ctx, token)
	if errors.Is(err, tokens.ErrRefreshUnknown) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &TokenInfo{Session: sess}, nil
}

// Revoke ends the session of a token (RFC 7009 §2.1: revoking either token
// of a session ends the session). Unknown tokens are not an error.
func (a *App) Revoke(ctx context.Context, cl Client, token string) error {
	info, err := a.Lookup(ctx, token)
	if err != nil || info == nil {
		return err
	}
	if err := a.Sessions.Revoke(ctx, info.Session.ID); err != nil {
		return err
	}
	a.m.issued.WithLabelValues("session", "revoked").Inc()
	a.event(cl, info.Session.UserID, info.Session.ID, mfa.EventSessionRevoked, "RFC 7009")
	return nil
}
