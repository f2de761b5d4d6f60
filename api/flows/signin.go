package flows

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

// SignUp creates an account. It returns ErrSignupClosed when sign-up is
// off, mfa.ErrInvalidUsername or mfa.ErrInvalidPassword for input that
// breaks the rules, and mfa.ErrUsernameTaken.
func (a *App) SignUp(ctx context.Context, cl Client, username, password string) (*mfa.User, error) {
	if !a.SignupOpen {
		return nil, ErrSignupClosed
	}
	return a.createUser(ctx, cl, username, password)
}

func (a *App) createUser(ctx context.Context, cl Client, username, password string) (*mfa.User, error) {
	name, err := mfa.CanonicalUsername(username)
	if err != nil {
		return nil, err
	}
	pw, err := mfa.NormalizePassword(password)
	if err != nil {
		return nil, err
	}
	if err := mfa.CheckStrength(pw, name); err != nil {
		return nil, err
	}
	// One client holds at most a few places in the hashing queue.
	release, err := a.Password.AdmitFor(cl.IP)
	if err != nil {
		return nil, err
	}
	defer release()
	hash, err := a.Password.HashAdmitted(ctx, pw)
	if err != nil {
		return nil, err
	}
	u := &mfa.User{ID: a.Rand(16), Username: name, PasswordHash: hash, CreatedAt: a.Now()}
	if err := a.Users.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	// What this address's sign-in attempts on the name counted before it
	// existed does not survive its sign-up (the account's own count starts
	// at zero with it).
	if err := a.Budgets.Login.Reset(ctx, loginScope(name, cl.IP)); err != nil {
		a.Logger.Warn("password budget not reset at sign-up", "err", err)
	}
	return u, nil
}

// Login is the password step. A user without a confirmed second factor
// gets tokens at aal1; anyone else an mfa_token and the factors the policy
// offers (an empty list when none is usable: then only an administrator
// helps — never the password alone).
//
// Unknown user and wrong password give the same error after the same work:
// an attempt on the budget of this name from this client address, one
// read, one argon2id hash; a wrong password on an account is counted
// toward its cap after the answer. It returns mfa.ErrBusy (before spending
// anything) when the hasher is saturated, a *mfa.ThrottledError, or
// mfa.ErrBadCredentials.
//
// The budgets (README, "Attempt budgets"): failures back off per (name,
// address), so a guesser elsewhere never slows the owner down; an
// account's consecutive failures from every address together close its
// password path at NIST's cap of 100 for PasswordLock (then one attempt per
// PasswordLock) until a success or an operator resets it — and a passkey
// still signs in. A name that does not exist has no account count at all.
func (a *App) Login(ctx context.Context, cl Client, username, password string) (*Outcome, error) {
	name, err := mfa.CanonicalUsername(username)
	if err != nil {
		return nil, err
	}
	if len(password) > 4*mfa.MaxPasswordLen {
		return nil, mfa.ErrInvalidPassword
	}
	pw, _ := mfa.NormalizePassword(password) // a wrong-length password simply fails to match
	if err := a.needProof(cl); err != nil {
		return nil, err
	}
	if err := a.addrRefusal(cl); err != nil {
		a.throttled(err)
		return nil, err
	}
	// A place in the hashing queue first: a server too busy to check the
	// password answers without spending the user's password budget.
	release, err := a.Password.AdmitFor(cl.IP)
	if err != nil {
		return nil, err
	}
	defer release()
	// The budget attempt and the user are fetched at once (independent
	// round trips); both are in hand before the password is checked.
	var (
		attempt mfa.Attempt
		takeErr error
		u       *mfa.User
		wg      sync.WaitGroup
	)
	wg.Go(func() { attempt, takeErr = a.Budgets.Login.Take(ctx, loginScope(name, cl.IP)) })
	u, err = a.Users.UserByName(ctx, name)
	wg.Wait()
	if takeErr != nil {
		a.throttled(takeErr)
		return nil, takeErr
	}
	phc := ""
	switch {
	case err == nil:
		phc = u.PasswordHash
	case errors.Is(err, mfa.ErrNotFound):
		u = nil
	default:
		return nil, err
	}
	if u != nil {
		if err := a.passwordLocked(u); err != nil {
			_ = a.Budgets.Login.Refund(context.WithoutCancel(ctx), attempt) // not evaluated
			a.throttled(err)
			return nil, err
		}
	}
	rehash, err := a.Password.VerifyAdmitted(ctx, phc, pw)
	if err != nil {
		if errors.Is(err, mfa.ErrBadCredentials) {
			a.m.verified("pwd", false)
			a.countAddrFailure(ctx, cl)
			if u != nil {
				a.event(cl, u.ID, "", mfa.EventLoginFailure, "password")
				a.countPasswordFailure(ctx, cl, u, false)
			}
		}
		return nil, err
	}
	a.m.verified("pwd", true)
	if u.Disabled {
		_ = a.Budgets.Login.Succeed(context.WithoutCancel(ctx), attempt) // the password was right
		a.event(cl, u.ID, "", mfa.EventLoginFailure, "account disabled")
		return nil, ErrAccountDisabled
	}
	if u.PasswordFailures.Failures > 0 {
		wg.Go(func() {
			if err := a.Users.ForgivePasswordFailures(context.WithoutCancel(ctx), u.ID); err != nil {
				a.Logger.Warn("password failures not reset", "user", u.ID, "err", err)
			}
		})
	}
	defer wg.Wait()
	if rehash {
		a.upgradeHash(context.WithoutCancel(ctx), u, pw)
	}
	if len(u.Confirmed("")) == 0 {
		// Forgiving the budget overlaps the session's start; an error is
		// only logged (a lost reset counts more failures, never fewer).
		wg.Go(func() {
			if err := a.Budgets.Login.Succeed(context.WithoutCancel(ctx), attempt); err != nil {
				a.Logger.Warn("password budget not reset", "user", u.ID, "err", err)
			}
		})
		t, err := a.start(ctx, cl, u.ID, a.Policy.PasswordOnly(), mfa.ErrBadCredentials)
		if err != nil {
			return nil, err
		}
		return &Outcome{Tokens: t}, nil
	}
	// A remembered device — a grant for the DPoP key this request proved,
	// made after a real second factor — stands in for the second factor,
	// at the level mfa.Policy.RememberedDevice gives and with the auth_time
	// of that real second factor.
	dev, err := a.rememberedDevice(ctx, cl, u)
	if err != nil {
		return nil, err
	}
	if dev != nil {
		wg.Go(func() {
			if err := a.Budgets.Login.Succeed(context.WithoutCancel(ctx), attempt); err != nil {
				a.Logger.Warn("password budget not reset", "user", u.ID, "err", err)
			}
			if err := a.Deps.Devices.UseDevice(context.WithoutCancel(ctx), dev.ID, a.Now()); err != nil {
				a.Logger.Warn("device use not recorded", "user", u.ID, "err", err)
			}
		})
		t, err := a.startAt(ctx, cl, u.ID, a.Policy.RememberedDevice(), dev.FactorAt, mfa.ErrBadCredentials)
		if err != nil {
			return nil, err
		}
		return &Outcome{Tokens: t}, nil
	}
	have := []string{mfa.AMRPassword}
	// The mfa_token is bound to the key this request proved, if any: the
	// second factor must come with a proof of the same key.
	tok, claims, err := a.Issuer.Pending(tokens.PendingClaims{Subject: u.ID, AMR: have, JKT: cl.Proof.JKT()})
	if err != nil {
		return nil, err
	}
	// The token's record (its attempts, its consumption: a token without
	// one is refused) and the budget's forgiveness, in one round trip.
	if err := a.Pending.Open(ctx, claims.Record, u.ID, a.Now(), claims.Expiry.Add(time.Minute), attempt.Scope); err != nil {
		return nil, err
	}
	factors := a.Policy.Offered(u, a.Policy.Levels[1], have)
	if factors == nil {
		factors = []string{}
	}
	return &Outcome{Pending: &Pending{Token: tok, Expiry: claims.Expiry, Factors: factors}}, nil
}

// upgradeHash re-hashes a password whose stored cost parameters are out of
// date. Failure leaves the old, still valid hash.
func (a *App) upgradeHash(ctx context.Context, u *mfa.User, pw string) {
	hash, err := a.Password.Hash(ctx, pw)
	if err != nil {
		return
	}
	if err := a.Users.SetPassword(ctx, u.ID, hash); err != nil {
		a.Logger.Debug("password hash upgrade skipped", "user", u.ID, "err", err)
	}
}

// checkPassword checks u's password again for a signed-in session (a
// password change, a step-up), counted like a sign-in: on the budget of
// this name from this address, and on the account's cap. A wrong one is
// ErrPasswordRejected: the bearer token itself is fine.
func (a *App) checkPassword(ctx context.Context, cl Client, u *mfa.User, password, sid, what string) error {
	if err := a.passwordLocked(u); err != nil {
		a.throttled(err)
		return err
	}
	attempt, err := a.Budgets.Login.Take(ctx, loginScope(u.Username, cl.IP))
	if err != nil {
		a.throttled(err)
		return err
	}
	pw, _ := mfa.NormalizePassword(password)
	if _, err := a.Password.Verify(ctx, u.PasswordHash, pw); err != nil {
		if errors.Is(err, mfa.ErrBadCredentials) {
			a.event(cl, u.ID, sid, mfa.EventLoginFailure, what)
			a.countPasswordFailure(ctx, cl, u, true)
			return ErrPasswordRejected
		}
		return err
	}
	if u.PasswordFailures.Failures > 0 {
		if err := a.Users.ForgivePasswordFailures(ctx, u.ID); err != nil {
			return err
		}
	}
	return a.Budgets.Login.Succeed(ctx, attempt)
}

// passwordLocked refuses the password of an account past NIST's cap of
// consecutive failures until PasswordLock has passed since the last one.
func (a *App) passwordLocked(u *mfa.User) error {
	f := u.PasswordFailures
	if f.Failures < mfa.NISTMaxFailures {
		return nil
	}
	if wait := f.Last.Add(a.PasswordLock).Sub(a.Now()); wait > 0 {
		return &mfa.ThrottledError{Locked: true, RetryAfter: wait}
	}
	return nil
}

// countPasswordFailure adds a wrong password to the account's count — after
// the answer for a sign-in, so an existing name's answer takes no longer
// than an unknown one's — and tells the user when the count reaches the
// cap.
func (a *App) countPasswordFailure(ctx context.Context, cl Client, u *mfa.User, now bool) {
	count := func() {
		st, err := a.Users.CountPasswordFailure(context.WithoutCancel(ctx), u.ID, a.Now())
		if err != nil {
			a.Logger.Warn("password failure not counted", "user", u.ID, "err", err)
			return
		}
		if st.Failures == mfa.NISTMaxFailures {
			a.event(cl, u.ID, "", mfa.EventLockout, fmt.Sprintf("password sign-in closed after %d failures in a row; it reopens after %v, or an operator unlocks it; a passkey still signs in",
				mfa.NISTMaxFailures, a.PasswordLock))
		}
	}
	if now {
		count()
		return
	}
	a.bg.Go(count)
}
