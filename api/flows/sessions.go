package flows

import (
	"context"
	"errors"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

// ErrNoSession says there is no live session with that id for that user
// (another user's session is not told apart from none).
var ErrNoSession = errors.New("flows: no such session")

// SessionInfo is one of a user's sessions ("your devices"): the session
// as stored, and whether it is the one asking.
type SessionInfo struct {
	*tokens.Session
	Current bool
}

// MySessions returns the caller's live sessions, oldest first, the
// caller's own marked Current.
func (a *App) MySessions(ctx context.Context, c *Caller) ([]SessionInfo, error) {
	ss, err := a.Sessions.OfUser(ctx, c.Claims.Subject)
	if err != nil {
		return nil, err
	}
	out := make([]SessionInfo, len(ss))
	for i, s := range ss {
		out[i] = SessionInfo{Session: s, Current: s.ID == c.Session.ID}
	}
	return out, nil
}

// EndMySession ends one of the caller's sessions. Its own is a logout;
// another needs what the policy requires to end one (a fresh aal2 once the
// user has a second factor: *InsufficientError otherwise, and nothing
// changes). ErrNoSession if the user has no live session with that id.
func (a *App) EndMySession(ctx context.Context, c *Caller, sid string) error {
	if sid == c.Session.ID {
		return a.Logout(ctx, c)
	}
	s, err := a.userSession(ctx, c.Claims.Subject, sid)
	if err != nil {
		return err
	}
	u, err := a.Me(ctx, c)
	if err != nil {
		return err
	}
	if err := a.require(c, u, mfa.ChangeEndSession, nil); err != nil {
		return err
	}
	if err := a.Sessions.Revoke(ctx, s.ID); err != nil {
		return err
	}
	a.m.issued.WithLabelValues("session", "revoked").Inc()
	a.event(c.Client, u.ID, s.ID, mfa.EventSessionRevoked, "ended from session "+c.Session.ID)
	return nil
}

// LogoutAll ends every session of the caller's user, the caller's too
// ("sign out everywhere"); the policy asks nothing more of the session.
func (a *App) LogoutAll(ctx context.Context, c *Caller) error {
	u, err := a.Me(ctx, c)
	if err != nil {
		return err
	}
	if err := a.require(c, u, mfa.ChangeEndAllSessions, nil); err != nil {
		return err
	}
	if err := a.Sessions.RevokeAll(ctx, u.ID, ""); err != nil {
		return err
	}
	a.m.issued.WithLabelValues("session", "logout").Inc()
	a.event(c.Client, u.ID, c.Session.ID, mfa.EventLogout, "every session")
	return nil
}

// DeleteMe deletes the caller's account (see DeleteUser for what goes).
// It needs what the policy requires (a fresh aal2 once the user has a
// second factor: *InsufficientError, checked first) and the password
// re-entered, counted like a sign-in: ErrPasswordRejected when wrong, a
// *mfa.ThrottledError past the budgets. A refusal deletes nothing.
func (a *App) DeleteMe(ctx context.Context, c *Caller, password string) error {
	u, err := a.Me(ctx, c)
	if err != nil {
		return err
	}
	if err := a.require(c, u, mfa.ChangeDeleteAccount, nil); err != nil {
		return err
	}
	if err := a.checkPassword(ctx, c.Client, u, password, c.Session.ID, "account deletion"); err != nil {
		return err
	}
	return a.deleteAccount(ctx, c.Client, nil, u.ID, "by its user")
}

// UserSessions returns the live sessions of the user with that id, oldest
// first, for an operator. mfa.ErrNotFound if there is no such user.
func (a *App) UserSessions(ctx context.Context, op Operator, userID string) ([]*tokens.Session, error) {
	if _, err := a.Users.User(ctx, userID); err != nil {
		return nil, err
	}
	return a.Sessions.OfUser(ctx, userID)
}

// EndUserSession ends one session of a user for an operator, with no
// policy check; the security event names the operator. ErrNoSession if
// the user has no live session with that id.
func (a *App) EndUserSession(ctx context.Context, op Operator, userID, sid string) error {
	s, err := a.userSession(ctx, userID, sid)
	if err != nil {
		return err
	}
	if err := a.Sessions.Revoke(ctx, s.ID); err != nil {
		return err
	}
	a.m.issued.WithLabelValues("session", "revoked").Inc()
	a.adminEvent(op, userID, s.ID, mfa.EventSessionRevoked, "by "+op.Name)
	return nil
}

// EndUserSessions ends every session of a user for an operator.
// mfa.ErrNotFound if there is no such user.
func (a *App) EndUserSessions(ctx context.Context, op Operator, userID string) error {
	if _, err := a.Users.User(ctx, userID); err != nil {
		return err
	}
	if err := a.Sessions.RevokeAll(ctx, userID, ""); err != nil {
		return err
	}
	a.m.issued.WithLabelValues("session", "revoked").Inc()
	a.adminEvent(op, userID, "", mfa.EventSessionRevoked, "every session, by "+op.Name)
	return nil
}

// DeleteUser deletes the user with that id for an operator, with no
// policy or password check: the user document (factors, TOTP seeds,
// WebAuthn credentials, recovery codes), every session and its refresh and
// access tokens, the claims on the WebAuthn credential ids, and the
// password budgets of the name, which is free again at once. The security
// events stay for the configured retention under the account's random id,
// ending with account.deleted; none holds the username. mfa.ErrNotFound if
// there is no such user.
func (a *App) DeleteUser(ctx context.Context, op Operator, userID string) error {
	return a.deleteAccount(ctx, Client{}, &op, userID, "by "+op.Name)
}

// deleteAccount removes an account, ordered so that a crash between two
// writes leaves nothing that signs in: the sessions end first (every token
// of the account stops on every instance), then the user document goes
// (with it every factor and recovery code, and the name), then what only
// pointed at it. Once begun it runs to the end whatever the caller's
// context does.
// An operator's deletion (op not nil) is recorded as theirs.
func (a *App) deleteAccount(ctx context.Context, cl Client, op *Operator, userID, by string) error {
	ctx = context.WithoutCancel(ctx)
	if _, err := a.Users.User(ctx, userID); err != nil {
		return err
	}
	// The unconsumed mfa_tokens end before the sessions: a second factor
	// in flight either consumed its token before this (its session existed
	// and ends below) or cannot (finish).
	if err := a.Pending.EndFor(ctx, userID, a.Now()); err != nil {
		return err
	}
	if err := a.Sessions.RevokeAll(ctx, userID, ""); err != nil {
		return err
	}
	// The factors to release are those of the document deleted, so one
	// added meanwhile is released too.
	u, err := a.Users.DeleteUser(ctx, userID)
	if err != nil {
		return err
	}
	// A sign-in that read the user before its deletion may have started a
	// session since the revocation above: this deletes it too.
	if err := a.Sessions.Store.DeleteUserSessions(ctx, userID); err != nil {
		return err
	}
	for _, f := range u.Factors {
		if f.Credential != nil && a.WebAuthn != nil {
			if err := a.WebAuthn.Ceremonies.ReleaseCredential(ctx, f.Credential.ID); err != nil {
				return err
			}
		}
	}
	if err := a.Budgets.Login.DropPrefix(ctx, loginScope(u.Username, "")); err != nil {
		return err
	}
	if err := a.forgetDevices(ctx, userID); err != nil {
		return err
	}
	if err := a.Pending.DropFor(ctx, userID); err != nil {
		return err
	}
	a.m.issued.WithLabelValues("session", "revoked").Inc()
	if op != nil {
		a.adminEvent(*op, userID, "", mfa.EventAccountDeleted, by)
	} else {
		a.event(cl, userID, "", mfa.EventAccountDeleted, by)
	}
	return nil
}

// userSession returns the live session sid of userID, or ErrNoSession.
func (a *App) userSession(ctx context.Context, userID, sid string) (*tokens.Session, error) {
	s, err := a.Sessions.Active(ctx, sid)
	if errors.Is(err, tokens.ErrSessionNotFound) || errors.Is(err, tokens.ErrSessionEnded) || (err == nil && s.UserID != userID) {
		return nil, ErrNoSession
	}
	return s, err
}
