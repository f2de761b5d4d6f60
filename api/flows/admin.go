package flows

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

// Operator is who acts on an account without being its user: an
// administrator, named in the security events (Event.Actor).
type Operator struct {
	Name   string // "admin client ops", "stepup admin (alice)"
	Client Client // where the request came from; zero for the command line
}

// AdminClient is a client of the admin API (STEPUP_ADMIN_CLIENTS). Only
// the SHA-256 of its secret is kept: the secrets are long random strings
// (at least 32 characters), for which a fast hash is enough, and the
// configured secret itself is not held in memory.
type AdminClient struct {
	ID         string
	SecretHash [32]byte
	ReadOnly   bool // may only read (GET)
}

// HashAdminSecret is what AdminClient.SecretHash holds.
func HashAdminSecret(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

func adminScope(ip string) string { return "admin|" + ip }

// AdminLogin authenticates an admin client from the HTTP Basic credentials
// of a request from cl; write says whether the request changes anything.
//
// Every attempt is first counted on the client address's budget
// (Budgets.Admin, one atomic conditional update, before the secret is
// compared), so guessing a secret from an address backs off like guessing
// a password: a *mfa.ThrottledError then, whatever the credentials. The
// secret is compared as a SHA-256 digest in constant time against every
// client, so the time taken tells neither the secret's length nor which
// ids exist. ErrAdminAuth for wrong credentials; ErrReadOnlyClient for a
// read-only client that asks to write.
func (a *App) AdminLogin(ctx context.Context, cl Client, id, secret string, write bool) (Operator, error) {
	var attempt mfa.Attempt
	if a.Budgets.Admin != nil {
		var err error
		if attempt, err = a.Budgets.Admin.Take(ctx, adminScope(cl.IP)); err != nil {
			a.throttled(err)
			return Operator{}, err
		}
	}
	got := HashAdminSecret(secret)
	var match *AdminClient
	for i := range a.AdminClients {
		c := &a.AdminClients[i]
		if subtle.ConstantTimeCompare(c.SecretHash[:], got[:])&subtle.ConstantTimeCompare([]byte(c.ID), []byte(id)) == 1 {
			match = c
		}
	}
	if match == nil {
		// The id is not logged: it may be a secret typed in the wrong place.
		a.Logger.Warn("admin client authentication failed", "ip", cl.IP)
		return Operator{}, ErrAdminAuth
	}
	if a.Budgets.Admin != nil {
		if err := a.Budgets.Admin.Succeed(ctx, attempt); err != nil {
			return Operator{}, err
		}
	}
	if write && match.ReadOnly {
		return Operator{}, ErrReadOnlyClient
	}
	return Operator{Name: "admin client " + match.ID, Client: cl}, nil
}

// adminEvent records an administrator's action on a user: the actor is
// the operator, the address and user agent are the operator's.
func (a *App) adminEvent(op Operator, userID, sid, typ, detail string) {
	ua := op.Client.UserAgent
	if len(ua) > 256 {
		ua = ua[:256]
	}
	a.events.add(mfa.Event{ID: a.Rand(12), UserID: userID, SessionID: sid, Type: typ, Detail: detail,
		At: a.Now(), IP: op.Client.IP, UserAgent: ua, Actor: op.Name})
}

// Page sizes of the admin lists.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// Cursors are opaque to clients: base64url of a kind and a position, so
// a cursor of one list is refused by the other.
func encodeCursor(kind, pos string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + pos))
}

func decodeCursor(kind, cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return "", ErrBadCursor
	}
	pos, ok := strings.CutPrefix(string(raw), kind+":")
	if !ok || pos == "" {
		return "", ErrBadCursor
	}
	return pos, nil
}

func pageSize(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultPageSize, nil
	case limit < 1 || limit > MaxPageSize:
		return 0, ErrBadLimit
	}
	return limit, nil
}

// ListUsers is a page of users whose canonical username begins with prefix
// (canonicalised like a username; empty for all), in username order, and
// the cursor of the next page ("" after the last). The cursor holds the
// last username of the page: pages are a keyset walk of the unique
// username index, so users created meanwhile never cause a gap or a
// duplicate.
func (a *App) ListUsers(ctx context.Context, prefix, cursor string, limit int) ([]*mfa.User, string, error) {
	n, err := pageSize(limit)
	if err != nil {
		return nil, "", err
	}
	if prefix != "" {
		if prefix, err = mfa.CanonicalUsername(prefix); err != nil {
			return nil, "", err
		}
	}
	after, err := decodeCursor("u", cursor)
	if err != nil {
		return nil, "", err
	}
	us, err := a.Users.ListUsers(ctx, prefix, after, n+1)
	if err != nil {
		return nil, "", err
	}
	if len(us) <= n {
		return us, "", nil
	}
	us = us[:n]
	return us, encodeCursor("u", us[n-1].Username), nil
}

// UserInfo is what an administrator sees of a user (never a secret).
type UserInfo struct {
	User              *mfa.User
	RecoveryCodesLeft int
	// PasswordLockedUntil is when the password path reopens after NIST's
	// cap of consecutive failures; zero when it is open.
	PasswordLockedUntil time.Time
	// SecondFactorLocked: the account's second-factor budget is spent;
	// only an unlock lifts it.
	SecondFactorLocked bool
	// Sessions are the user's live sessions, oldest first.
	Sessions []*tokens.Session
	// LastSignIn is when the user last signed in (the newest
	// login.success event kept); zero if never within the retention.
	LastSignIn time.Time
}

// UserInfo returns the user with that id, its lock state, its live
// sessions and its last sign-in.
func (a *App) UserInfo(ctx context.Context, id string) (*UserInfo, error) {
	u, err := a.Users.User(ctx, id)
	if err != nil {
		return nil, err
	}
	info := &UserInfo{User: u}
	if info.Sessions, err = a.Sessions.OfUser(ctx, id); err != nil {
		return nil, err
	}
	last, err := a.Deps.Events.Last(ctx, id, mfa.EventLoginSuccess)
	if err != nil {
		return nil, err
	}
	if last != nil {
		info.LastSignIn = last.At
	}
	if len(u.RecoveryCodes) > 0 {
		if info.RecoveryCodesLeft, err = a.Recovery.Remaining(ctx, u); err != nil {
			return nil, err
		}
	}
	var th *mfa.ThrottledError
	if errors.As(a.passwordLocked(u), &th) {
		info.PasswordLockedUntil = a.Now().Add(th.RetryAfter)
	}
	info.SecondFactorLocked = a.Budgets.Account != nil && u.Attempts.Failures >= int64(a.Budgets.Account.Limit)
	return info, nil
}

// CreateUser creates an account whatever the sign-up setting: an
// administrator's, for deployments with closed sign-up.
func (a *App) CreateUser(ctx context.Context, op Operator, username, password string) (*mfa.User, error) {
	u, err := a.createUser(ctx, Client{}, username, password)
	if err != nil {
		return nil, err
	}
	a.adminEvent(op, u.ID, "", mfa.EventAdminCreated, "by "+op.Name)
	return u, nil
}

// DisableUser disables the user's account: first the flag, which every
// sign-in path checks (password, passkey, a pending second factor, and
// for a password alone or a passkey once more after a session is created,
// see admitted); then the user's unconsumed mfa_tokens end; then every
// session of the user ends, on every instance at once (access tokens are
// checked against their session on each request; refresh needs a live
// session). The order closes the race with a sign-in in flight: its
// session is either created before the sessions are ended (and ended with
// them) or sees the flag — a second factor's session is inserted before
// its token is consumed (finish), so it either was, or its token was ended.
func (a *App) DisableUser(ctx context.Context, op Operator, id string) (*mfa.User, error) {
	if err := a.Users.SetDisabled(ctx, id, true); err != nil {
		return nil, err
	}
	ctx = context.WithoutCancel(ctx)
	if err := a.Pending.EndFor(ctx, id, a.Now()); err != nil {
		return nil, err
	}
	if err := a.Sessions.Store.RevokeUserSessions(ctx, id, "", a.Now()); err != nil {
		return nil, err
	}
	a.adminEvent(op, id, "", mfa.EventAdminDisabled, "sessions ended by "+op.Name)
	return a.Users.User(ctx, id)
}

// EnableUser lets a disabled user sign in again.
func (a *App) EnableUser(ctx context.Context, op Operator, id string) (*mfa.User, error) {
	if err := a.Users.SetDisabled(ctx, id, false); err != nil {
		return nil, err
	}
	a.adminEvent(op, id, "", mfa.EventAdminEnabled, "by "+op.Name)
	return a.Users.User(ctx, id)
}

// Unlock lifts the password and second-factor locks of the user with that
// username (the command line names users).
func (a *App) Unlock(ctx context.Context, op Operator, username string) (*mfa.User, error) {
	u, err := a.userByName(ctx, username)
	if err != nil {
		return nil, err
	}
	return a.UnlockUser(ctx, op, u.ID)
}

// UnlockUser lifts the password and second-factor locks of the user with
// that id.
func (a *App) UnlockUser(ctx context.Context, op Operator, id string) (*mfa.User, error) {
	u, err := a.unlock(ctx, id)
	if err != nil {
		return nil, err
	}
	a.adminEvent(op, u.ID, "", mfa.EventAdminUnlock, "by "+op.Name)
	return u, nil
}

func (a *App) unlock(ctx context.Context, id string) (*mfa.User, error) {
	u, err := a.Users.User(ctx, id)
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
	return a.Users.User(ctx, id)
}

// Reset is ResetUser for the user with that username.
func (a *App) Reset(ctx context.Context, op Operator, username string) (*mfa.User, error) {
	u, err := a.userByName(ctx, username)
	if err != nil {
		return nil, err
	}
	return a.ResetUser(ctx, op, u.ID)
}

// ResetUser removes every second factor and recovery code of the user,
// ends all their sessions and lifts the locks: what an operator does for a
// user who lost their authenticators.
func (a *App) ResetUser(ctx context.Context, op Operator, id string) (*mfa.User, error) {
	u, err := a.unlock(ctx, id)
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
	a.adminEvent(op, u.ID, "", mfa.EventAdminReset, "factors, recovery codes, sessions and remembered devices removed by "+op.Name)
	return a.Users.User(ctx, id)
}

// UserByName finds a user by username (canonicalised).
func (a *App) UserByName(ctx context.Context, username string) (*mfa.User, error) {
	return a.userByName(ctx, username)
}

func (a *App) userByName(ctx context.Context, username string) (*mfa.User, error) {
	name, err := mfa.CanonicalUsername(username)
	if err != nil {
		return nil, err
	}
	return a.Users.UserByName(ctx, name)
}

// EventSettle is how long after a feed sequence number was taken a gap
// at it is taken as never to be filled (store.Events.Feed): the writer
// makes one insert attempt per number, bounded by a 5-second timeout (a
// retry takes new numbers), so five minutes leave room for that and for
// clocks of different instances that disagree by up to a few minutes.
// Only an event write that failed leaves a gap; the feed waits at most
// this long behind one.
const EventSettle = 5 * time.Minute

// EventFilter selects events of the feed.
type EventFilter struct {
	UserID string
	Type   string
	Since  time.Time
}

// EventFeed is a page of the feed of every security event, in the order
// they were written (a sequence the store gives each event), and the
// cursor to poll next. A client that follows the cursor receives every
// event exactly once: the page never passes an event that may still be
// written (EventSettle). The feed has no end; the cursor is always given,
// and an empty page means nothing new yet.
func (a *App) EventFeed(ctx context.Context, f EventFilter, cursor string, limit int) ([]mfa.Event, string, error) {
	n, err := pageSize(limit)
	if err != nil {
		return nil, "", err
	}
	pos, err := decodeCursor("e", cursor)
	if err != nil {
		return nil, "", err
	}
	var after int64
	if pos != "" {
		if after, err = strconv.ParseInt(pos, 10, 64); err != nil || after < 0 {
			return nil, "", ErrBadCursor
		}
	}
	es, next, err := a.Deps.Events.Feed(ctx, mfa.EventQuery{After: after, UserID: f.UserID, Type: f.Type, Since: f.Since,
		Limit: n, SettledBefore: a.Now().Add(-EventSettle)})
	if err != nil {
		return nil, "", err
	}
	return es, encodeCursor("e", strconv.FormatInt(next, 10)), nil
}
