package flows

import (
	"context"
	"errors"

	"github.com/stepup-auth/stepup/mfa"
)

// Operator is who acts on an account without being its user: an
// administrator, named in the security events.
type Operator struct {
	Name string
}

// Unlock lifts the password and second-factor locks of the user with that
// username.
func (a *App) Unlock(ctx context.Context, op Operator, username string) (*mfa.User, error) {
	u, err := a.userByName(ctx, username)
	if err != nil {
		return nil, err
	}
	if err := a.Users.ForgivePasswordFailures(ctx, u.ID); err != nil {
		return nil, err
	}
	if err := a.Budgets.Login.ResetPrefix(ctx, loginScope(u.Username, "")); err != nil {
		return nil, err
	}
	if err := a.Users.ForgiveAttempts(ctx, u.ID); err != nil {
		return nil, err
	}
	a.event(Client{}, u.ID, "", mfa.EventAdminUnlock, "by "+op.Name)
	return u, nil
}

// Reset removes every second factor and recovery code of the user, ends
// all their sessions and lifts the locks: what an operator does for a user
// who lost their authenticators.
func (a *App) Reset(ctx context.Context, op Operator, username string) (*mfa.User, error) {
	u, err := a.Unlock(ctx, op, username)
	if err != nil {
		return nil, err
	}
	for _, f := range u.Factors {
		if _, _, err := a.Users.RemoveFactor(ctx, u.ID, f.ID, true); err != nil && !errors.Is(err, mfa.ErrNotEnrolled) {
			return nil, err
		}
		if f.Credential != nil {
			if err := a.WebAuthn.Ceremonies.ReleaseCredential(ctx, f.Credential.ID); err != nil {
				return nil, err
			}
		}
	}
	if err := a.Users.SetRecoveryCodes(ctx, u.ID, nil); err != nil {
		return nil, err
	}
	if err := a.Sessions.Store.RevokeUserSessions(ctx, u.ID, "", a.Now()); err != nil {
		return nil, err
	}
	if err := a.forgetDevices(ctx, u.ID); err != nil {
		return nil, err
	}
	a.event(Client{}, u.ID, "", mfa.EventAdminReset, "factors, recovery codes, sessions and remembered devices removed by "+op.Name)
	return u, nil
}

func (a *App) userByName(ctx context.Context, username string) (*mfa.User, error) {
	name, err := mfa.CanonicalUsername(username)
	if err != nil {
		return nil, err
	}
	return a.Users.UserByName(ctx, name)
}
