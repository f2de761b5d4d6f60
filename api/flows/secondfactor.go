package flows

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

// PendingToken verifies an mfa_pending token (ErrPendingBad). Whether it
// was used is checked by the step that spends it.
func (a *App) PendingToken(token string) (tokens.PendingClaims, error) {
	pc, err := a.Verifier.Pending(token, a.MFAAudience)
	if err != nil {
		return tokens.PendingClaims{}, errors.Join(ErrPendingBad, err)
	}
	return pc, nil
}

// VerifyTOTP is the TOTP second factor.
//
// Order matters: the code's format is checked before anything is spent;
// then one attempt of the token's budget and one of the account's are
// counted (each an atomic conditional update, so a burst evaluates exactly
// as many guesses as the budgets allow); then the code's time step is taken
// with one conditional update that accepts only a step later than the last
// (single use, never backwards) and records the use; last the mfa_token is
// consumed atomically, so of two racing winners only one gets tokens.
func (a *App) VerifyTOTP(ctx context.Context, cl Client, pc tokens.PendingClaims, code string) (*Tokens, error) {
	if err := a.TOTP.CheckFormat(code); err != nil {
		return nil, err
	}
	if err := a.reaches(pc, string(mfa.KindTOTP)); err != nil {
		return nil, err
	}
	u, err := a.spendAttempt(ctx, cl, pc)
	if err != nil {
		return nil, err
	}
	f, step, err := a.TOTP.MatchAny(u, code)
	if err == nil {
		err = a.Users.UseStep(ctx, u.ID, f.ID, step, a.Now(), false, time.Time{}, false)
		if errors.Is(err, mfa.ErrNotEnrolled) {
			err = mfa.ErrBadCode // removed meanwhile
		}
	}
	if err != nil {
		if errors.Is(err, mfa.ErrBadCode) {
			a.m.verified("totp", false)
			a.event(cl, u.ID, pc.Session, mfa.EventMFAFailure, "totp")
		}
		return nil, err
	}
	a.m.verified("totp", true)
	return a.finish(ctx, cl, pc, u, nil, mfa.AMROTP)
}

// VerifyRecovery is a recovery code as the second factor: it shares the
// account's failure budget, proves "rec" (never otp or hwk) and says how
// many codes remain.
func (a *App) VerifyRecovery(ctx context.Context, cl Client, pc tokens.PendingClaims, code string) (*Tokens, error) {
	if _, err := mfa.NormalizeRecoveryCode(code); err != nil {
		return nil, err
	}
	if err := a.reaches(pc, mfa.KindRecovery); err != nil {
		return nil, err
	}
	u, err := a.spendAttempt(ctx, cl, pc)
	if err != nil {
		return nil, err
	}
	if err := a.Recovery.Use(ctx, u, code); err != nil {
		a.m.verified("recovery", false)
		a.event(cl, u.ID, pc.Session, mfa.EventMFAFailure, "recovery code")
		return nil, err
	}
	a.m.verified("recovery", true)
	if err := a.Users.ForgiveAttempts(ctx, u.ID); err != nil {
		return nil, err
	}
	left, err := a.Recovery.Remaining(ctx, u)
	if err != nil {
		return nil, err
	}
	a.event(cl, u.ID, pc.Session, mfa.EventRecoveryUsed, strconv.Itoa(left)+" left")
	return a.finish(ctx, cl, pc, u, &left, mfa.AMRRecovery)
}

// WebAuthnOptions starts a second-factor assertion bound to the mfa_token.
// A step-up to the top level offers only the keys that can reach it
// (Policy.ReachesTop); when nothing known counts (no password in this
// flow), the key must verify its user to be a second factor of its own.
func (a *App) WebAuthnOptions(ctx context.Context, pc tokens.PendingClaims) (*protocol.CredentialAssertion, error) {
	used, err := a.Pending.Consumed(ctx, pc.Record)
	if err != nil {
		return nil, a.pendingRefusal(ctx, pc.Subject, err)
	}
	if used {
		return nil, ErrPendingUsed
	}
	u, err := a.Users.User(ctx, pc.Subject)
	if errors.Is(err, mfa.ErrNotFound) {
		return nil, ErrPendingUser
	}
	if err != nil {
		return nil, err
	}
	var only func(*mfa.Credential) bool
	if pc.ACR != "" && a.Policy.Level(pc.ACR) >= 2 {
		only = a.Policy.ReachesTop
	}
	requireUV := !slices.Contains(pc.AMR, mfa.AMRPassword) && !slices.Contains(pc.AMR, mfa.AMRUser)
	return a.WebAuthn.BeginLogin(ctx, u, pc.Record, only, requireUV)
}

// VerifyWebAuthn is a WebAuthn assertion as the second factor; acr and amr
// follow what this assertion's flags (BE, UV) proved. Every failure is
// mfa.ErrCeremony, whatever the cause.
func (a *App) VerifyWebAuthn(ctx context.Context, cl Client, pc tokens.PendingClaims, body []byte) (*Tokens, error) {
	u, err := a.spendAttempt(ctx, cl, pc)
	if err != nil {
		return nil, err
	}
	_, as, err := a.WebAuthn.FinishLogin(ctx, u, pc.Record, body)
	if err != nil {
		a.m.verified("webauthn", false)
		a.event(cl, u.ID, pc.Session, mfa.EventMFAFailure, "webauthn")
		return nil, err
	}
	a.m.verified("webauthn", true)
	return a.finish(ctx, cl, pc, u, nil, a.Policy.WebAuthnMethods(as)...)
}

// PasskeyOptions starts a usernameless passkey sign-in.
func (a *App) PasskeyOptions(ctx context.Context) (*protocol.CredentialAssertion, error) {
	return a.WebAuthn.BeginPasskey(ctx)
}

// VerifyPasskey finishes a usernameless sign-in: a passkey with user
// verification is both factors at once.
func (a *App) VerifyPasskey(ctx context.Context, cl Client, body []byte) (*Tokens, error) {
	if err := a.needProof(cl); err != nil {
		return nil, err
	}
	u, _, as, err := a.WebAuthn.FinishPasskey(ctx, body)
	if err != nil {
		a.m.verified("passkey", false)
		return nil, err
	}
	a.m.verified("passkey", true)
	return a.start(ctx, cl, u.ID, a.Policy.Passkey(as), mfa.ErrCeremony)
}

// spendAttempt counts an attempt on the mfa_token's budget (a spent or
// consumed token is dead) and then on the account's, which returns the user
// in the same round trip. The token's attempt comes first, so a dead token
// spends nothing of the account's budget.
func (a *App) spendAttempt(ctx context.Context, cl Client, pc tokens.PendingClaims) (*mfa.User, error) {
	// A token bound to a DPoP key is worthless without a proof of that
	// key: refused before anything is spent.
	if err := holdsPending(pc, cl.Proof); err != nil {
		return nil, err
	}
	if err := a.needProof(cl); err != nil {
		return nil, err
	}
	if err := a.mayRemember(cl); err != nil {
		return nil, err
	}
	tokAttempt, err := a.Budgets.Token.Take(ctx, pc.Record)
	if err != nil {
		var th *mfa.ThrottledError
		if errors.As(err, &th) {
			return nil, ErrPendingSpent
		}
		return nil, a.pendingRefusal(ctx, pc.Subject, err)
	}
	now := a.Now()
	u, ok, err := a.Users.SpendAttempt(ctx, pc.Subject, a.Budgets.Account.Gates(now), now)
	if errors.Is(err, mfa.ErrNotFound) {
		return nil, ErrPendingUser
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		// The account's backoff refused the guess before it was evaluated:
		// the token's attempt is given back, so waiting out the backoff does
		// not cost the user their mfa_token.
		if rerr := a.Budgets.Token.Refund(context.WithoutCancel(ctx), tokAttempt); rerr != nil {
			a.Logger.Warn("mfa_token attempt not refunded", "err", rerr)
		}
		err := a.Budgets.Account.Refusal(u.Attempts, now)
		a.throttled(err)
		a.event(cl, pc.Subject, pc.Session, mfa.EventLockout, "second factor")
		return nil, err
	}
	if u.Disabled {
		// Disabled after this token's password step: DisableUser ended the
		// tokens it found, and this one was recorded after it looked.
		return nil, ErrAccountDisabled
	}
	return u, nil
}

// beforeSecondFactorSession, when set (by this package's tests only), runs
// after a second factor was accepted and before its session is created:
// the one moment a disable or a deletion can slip in unseen by the reads
// that came before.
var beforeSecondFactorSession func(userID string)

// afterSecondFactorConsume, when set (by this package's tests only), runs
// once a second factor's mfa_token is consumed, before its tokens are
// handed out: a disable or a deletion slipping in there must still end the
// session (it was inserted before the consumption).
var afterSecondFactorConsume func(userID string)

// pendingRefusal is the answer to an mfa_token whose record the store
// refused: used, ended with its account (PendingStore.EndFor), or absent —
// never opened by a login, or dropped with a deleted account
// (PendingStore.DropFor). Where the account matters, it is read (on this
// failure path only).
func (a *App) pendingRefusal(ctx context.Context, userID string, err error) error {
	ended := errors.Is(err, mfa.ErrEnded)
	switch {
	case errors.Is(err, mfa.ErrUsed):
		return ErrPendingUsed
	case !ended && !errors.Is(err, mfa.ErrNotFound):
		return err
	}
	u, uerr := a.Users.User(ctx, userID)
	switch {
	case errors.Is(uerr, mfa.ErrNotFound):
		return ErrPendingUser
	case !ended:
		return errors.Join(ErrPendingBad, errPendingUnknown)
	case uerr != nil:
		return uerr
	case u.Disabled:
		return ErrAccountDisabled
	}
	return ErrPendingUsed // disabled, then enabled again: the token stays ended
}

// abandon ends a session that will not be handed out; if its user was
// deleted meanwhile, the document goes too (nothing of a deleted account
// stays).
func (a *App) abandon(ctx context.Context, sess *tokens.Session) {
	ctx = context.WithoutCancel(ctx)
	if err := a.Sessions.Revoke(ctx, sess.ID); err != nil {
		a.Logger.Warn("a session not handed out was not ended", "session", sess.ID, "err", err)
	}
	if _, err := a.Users.User(ctx, sess.UserID); errors.Is(err, mfa.ErrNotFound) {
		_ = a.Sessions.Store.DeleteUserSessions(ctx, sess.UserID)
	}
}

// reaches refuses, before any attempt is spent, a kind of factor that
// cannot reach, on top of what the mfa_token carries as still counted, the
// level a step-up asks for (TOTP and recovery codes never reach aal3).
func (a *App) reaches(pc tokens.PendingClaims, kind string) error {
	if pc.ACR != "" && !a.Policy.CanReach(kind, pc.AMR, pc.ACR) {
		return ErrFactorCannotReach
	}
	return nil
}

// finish consumes the mfa_token and issues tokens: a new session after a
// password, or the same session raised after a step-up, at the level of
// what the token still counted and this factor proved (mfa.Policy.Assess).
// The factor's use and the account's budget reset were recorded by the
// update that accepted the factor.
func (a *App) finish(ctx context.Context, cl Client, pc tokens.PendingClaims, u *mfa.User, recoveryLeft *int, proved ...string) (*Tokens, error) {
	as := a.Policy.Assess(append(slices.Clone(pc.AMR), proved...)...)
	if pc.ACR != "" && !a.Policy.Satisfies(as.ACR, pc.ACR) {
		return nil, ErrFactorCannotReach
	}
	now := a.Now()
	// A new session is handed out only if this request consumed the token
	// (an unused session has a refresh token nobody knows, and is
	// abandoned). A step-up changes an existing session, after the token.
	var (
		sess    *tokens.Session
		refresh string
		err     error
	)
	// The new session is bound to the key of the mfa_token, or else to the
	// key this request proved (holdsPending made them one when both exist).
	jkt := bindKey(pc.JKT, cl.Proof)
	if beforeSecondFactorSession != nil {
		beforeSecondFactorSession(u.ID)
	}
	if pc.Session == "" {
		// The session is inserted before the token is consumed: a disable
		// or a deletion first ends the user's unconsumed tokens
		// (PendingStore.EndFor) and then their sessions, so a session
		// whose token was consumed existed before its sessions were ended
		// (and was ended with them), and a later one fails to consume.
		if sess, refresh, err = a.Sessions.StartBound(ctx, cl.device(), u.ID, now, as.ACR, as.AMR, jkt); err != nil {
			return nil, err
		}
	}
	if err := a.Pending.Consume(ctx, pc.Record, now, pc.Expiry.Add(time.Minute)); err != nil {
		if sess != nil {
			a.abandon(ctx, sess)
		}
		return nil, a.pendingRefusal(ctx, u.ID, err)
	}
	if afterSecondFactorConsume != nil {
		afterSecondFactorConsume(u.ID)
	}
	if pc.Session == "" {
		a.event(cl, u.ID, sess.ID, mfa.EventLoginSuccess, describe(as))
		t, err := a.issue(sess, refresh, jkt)
		if t != nil {
			t.RecoveryLeft = recoveryLeft
			t.Remembered = cl.RememberDevice && a.remember(ctx, cl, u.ID, now)
		}
		return t, err
	}
	sess, err = a.Sessions.Raise(ctx, pc.Session, now, as.ACR, as.AMR)
	if err != nil {
		if errors.Is(err, tokens.ErrSessionEnded) || errors.Is(err, tokens.ErrSessionNotFound) {
			err = errors.Join(ErrStepUpSession, err)
		}
		return nil, err
	}
	a.m.stepups.WithLabelValues(pc.ACR, as.ACR).Inc()
	a.event(cl, u.ID, sess.ID, mfa.EventStepUp, describe(as))
	t, err := a.issue(sess, "", bindKey(sess.JKT, cl.Proof))
	if t != nil {
		t.RecoveryLeft = recoveryLeft
		t.Remembered = cl.RememberDevice && a.remember(ctx, cl, u.ID, now)
	}
	return t, err
}
