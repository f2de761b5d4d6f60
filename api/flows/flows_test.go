package flows_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/api/flows"
	"github.com/stepup-auth/stepup/api/flows/flowstest"
	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/store"
	"github.com/stepup-auth/stepup/tokens"
)

// The flows' decisions, on a real App over the real store (storetest),
// wired as cmd/stepup does, with one frozen clock. WebAuthn is left nil:
// nothing here touches it. Password hashes are few (argon2id at the default
// cost): fixture users share one precomputed hash, and sessions that a test
// only needs to exist are started directly, as the flows start them.

const password = flowstest.Password

var (
	amrPwd  = []string{"pwd"}
	amrTOTP = []string{"pwd", "otp", "mfa"}
)

type env struct {
	*flowstest.Env
	app   *flows.App
	db    *store.DB
	clock *flowstest.Clock
}

// newEnv builds the App as cmd/stepup's App.Open does (flowstest).
func newEnv(t *testing.T) *env {
	t.Helper()
	fe := flowstest.New(t)
	return &env{Env: fe, app: fe.App, db: fe.DB, clock: fe.Clock}
}

// user creates a factorless user whose password is password.
func (e *env) user(t *testing.T, name string) *mfa.User { return e.User(t, name, "") }

// signIn starts a session for userID, as the flows start one after an
// authentication that proved amr, and presents its access token.
func (e *env) signIn(t *testing.T, userID string, amr ...string) *flows.Caller {
	t.Helper()
	return e.present(t, e.Session(t, userID, amr...))
}

// present issues an access token of sess and authenticates it.
func (e *env) present(t *testing.T, sess *tokens.Session) *flows.Caller {
	t.Helper()
	c, err := e.app.Authenticate(context.Background(), e.Access(t, sess), flows.Client{})
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return c
}

// code is the TOTP code of secret (base32) at k steps from the clock's.
func (e *env) code(t *testing.T, secret string, k int) string { return e.Code(t, secret, k) }

// totpUser is a user with one confirmed TOTP factor (confirmed with the
// code of the step before the clock's) and recovery codes, and the aal1
// session that enrolled it.
type totpUser struct {
	*mfa.User
	Secret   string
	FactorID string
	Recovery []string
	Enroller *flows.Caller
}

func (e *env) totpUser(t *testing.T, name string) totpUser {
	t.Helper()
	ctx := context.Background()
	u := e.user(t, name)
	c := e.signIn(t, u.ID, "pwd")
	enr, err := e.app.EnrollTOTP(ctx, c, "")
	if err != nil {
		t.Fatalf("EnrollTOTP: %v", err)
	}
	f, codes, err := e.app.ConfirmTOTP(ctx, c, enr.Factor.ID, e.code(t, enr.Secret, -1))
	if err != nil {
		t.Fatalf("ConfirmTOTP: %v", err)
	}
	if !f.Confirmed || len(codes) != mfa.RecoveryCount {
		t.Fatalf("first factor: confirmed %v, %d recovery codes; want true, %d", f.Confirmed, len(codes), mfa.RecoveryCount)
	}
	return totpUser{User: u, Secret: enr.Secret, FactorID: enr.Factor.ID, Recovery: codes, Enroller: c}
}

// pending logs in with the password (one hash) and returns the verified
// mfa_token claims.
func (e *env) pending(t *testing.T, username string) (tokens.PendingClaims, *flows.Pending) {
	t.Helper()
	out, err := e.app.Login(context.Background(), flows.Client{}, username, password)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if out.Pending == nil {
		t.Fatalf("Login gave tokens, want a pending second factor")
	}
	pc, err := e.app.PendingToken(out.Pending.Token)
	if err != nil {
		t.Fatalf("PendingToken: %v", err)
	}
	return pc, out.Pending
}

func (e *env) storedUser(t *testing.T, id string) *mfa.User {
	t.Helper()
	u, err := e.db.User(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (e *env) storedSession(t *testing.T, id string) *tokens.Session {
	t.Helper()
	s, err := e.db.Sessions().Session(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// insufficient checks err is an *InsufficientError asking for acr within
// maxAge.
func insufficient(t *testing.T, err error, acr string, maxAge time.Duration) {
	t.Helper()
	var ie *flows.InsufficientError
	if !errors.As(err, &ie) {
		t.Fatalf("got %v, want *flows.InsufficientError", err)
	}
	if ie.ACR != acr || ie.MaxAge != maxAge {
		t.Fatalf("InsufficientError{%s, %v}, want {%s, %v}", ie.ACR, ie.MaxAge, acr, maxAge)
	}
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.user(t, "plain")
	withTOTP := e.totpUser(t, "withtotp")
	unconfirmed := e.user(t, "unconfirmed")
	if _, err := e.app.EnrollTOTP(ctx, e.signIn(t, unconfirmed.ID, "pwd"), ""); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, username, password string
		wantErr                  error
		wantACR                  string   // tokens at this level
		wantFactors              []string // or a pending second factor offering these
	}{
		{name: "NoFactor", username: "plain", password: password, wantACR: "aal1"},
		{name: "CanonicalName", username: "PLAIN", password: password, wantACR: "aal1"},
		{name: "UnconfirmedEnrollmentOnly", username: "unconfirmed", password: password, wantACR: "aal1"},
		{name: "TOTPFactor", username: "withtotp", password: password, wantFactors: []string{"totp", "recovery"}},
		{name: "WrongPassword", username: "plain", password: "wrong horse battery", wantErr: mfa.ErrBadCredentials},
		{name: "UnknownUser", username: "nobody", password: password, wantErr: mfa.ErrBadCredentials},
		{name: "InvalidUsername", username: "with space", password: password, wantErr: mfa.ErrInvalidUsername},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.app.Login(ctx, flows.Client{IP: "192.0.2.1"}, tc.username, tc.password)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || out != nil {
					t.Fatalf("Login = %+v, %v; want %v", out, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Login: %v", err)
			}
			if tc.wantACR != "" {
				if out.Pending != nil || out.Tokens == nil {
					t.Fatalf("Login = %+v, want tokens", out)
				}
				s := out.Tokens.Session
				if s.ACR != tc.wantACR || !slices.Equal(s.AMR, amrPwd) || out.Tokens.Refresh == "" || out.Tokens.Access == "" {
					t.Fatalf("tokens at %s %v (refresh %q), want %s %v and a refresh token", s.ACR, s.AMR, out.Tokens.Refresh,
						tc.wantACR, amrPwd)
				}
				c, err := e.app.Authenticate(ctx, out.Tokens.Access, flows.Client{})
				if err != nil || c.Claims.ACR != tc.wantACR || c.Claims.Session != s.ID {
					t.Fatalf("Authenticate(access) = %+v, %v", c, err)
				}
				return
			}
			if out.Tokens != nil || out.Pending == nil {
				t.Fatalf("Login = %+v, want a pending second factor", out)
			}
			if !slices.Equal(out.Pending.Factors, tc.wantFactors) {
				t.Errorf("factors %v, want %v", out.Pending.Factors, tc.wantFactors)
			}
			pc, err := e.app.PendingToken(out.Pending.Token)
			if err != nil {
				t.Fatalf("PendingToken: %v", err)
			}
			if pc.Subject != withTOTP.ID || !slices.Equal(pc.AMR, amrPwd) || pc.Session != "" || pc.ACR != "" {
				t.Errorf("mfa_token claims %+v, want sub %s amr [pwd] and no session or acr", pc, withTOTP.ID)
			}
			if _, err := e.app.Authenticate(ctx, out.Pending.Token, flows.Client{}); !errors.Is(err, flows.ErrAccessBad) {
				t.Errorf("the mfa_token as an access token: %v, want ErrAccessBad", err)
			}
		})
	}
}

func TestVerifyTOTP(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.totpUser(t, "alice")

	pc, _ := e.pending(t, u.Username)
	tok, err := e.app.VerifyTOTP(ctx, flows.Client{}, pc, e.code(t, u.Secret, 0))
	if err != nil {
		t.Fatalf("VerifyTOTP: %v", err)
	}
	if s := tok.Session; s.ACR != "aal2" || !slices.Equal(s.AMR, amrTOTP) || s.UserID != u.ID || tok.Refresh == "" {
		t.Fatalf("tokens at %s %v for %s (refresh %q), want aal2 %v for %s with a refresh token", s.ACR, s.AMR, s.UserID,
			tok.Refresh, amrTOTP, u.ID)
	}
	if got := e.storedSession(t, tok.Session.ID); got.ACR != "aal2" || !slices.Equal(got.AMR, amrTOTP) {
		t.Errorf("stored session %s %v, want aal2 %v", got.ACR, got.AMR, amrTOTP)
	}

	t.Run("TokenUsedTwice", func(t *testing.T) {
		_, err := e.app.VerifyTOTP(ctx, flows.Client{}, pc, e.code(t, u.Secret, 1))
		if !errors.Is(err, flows.ErrPendingUsed) {
			t.Fatalf("second use of the mfa_token: %v, want ErrPendingUsed", err)
		}
	})

	// A second sign-in, one mfa_token for the rest.
	pc2, _ := e.pending(t, u.Username)
	tests := []struct {
		name    string
		code    string
		wantErr error
	}{
		{"SameCodeAgain", e.code(t, u.Secret, 0), mfa.ErrBadCode},
		{"OlderCode", e.code(t, u.Secret, -1), mfa.ErrBadCode},
		{"WrongCode", e.WrongCode(t, u.Secret), mfa.ErrBadCode},
		{"Malformed", "12345", mfa.ErrMalformedCode},
		{"NotDigits", "12345a", mfa.ErrMalformedCode},
		{"NextStep", e.code(t, u.Secret, 1), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := e.app.VerifyTOTP(ctx, flows.Client{}, pc2, tc.code)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("VerifyTOTP = %v, want %v", err, tc.wantErr)
			}
			if err == nil && tok.Session.ACR != "aal2" {
				t.Fatalf("tokens at %s, want aal2", tok.Session.ACR)
			}
		})
	}

	t.Run("BadTokens", func(t *testing.T) {
		for name, token := range map[string]string{"Garbage": "garbage", "AccessToken": tok.Access} {
			if _, err := e.app.PendingToken(token); !errors.Is(err, flows.ErrPendingBad) {
				t.Errorf("%s: PendingToken = %v, want ErrPendingBad", name, err)
			}
		}
	})
}

func TestStepUp(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.totpUser(t, "alice")
	c := e.signIn(t, u.ID, "pwd", "otp") // aal2, authenticated now
	authTime := c.Session.AuthTime
	minute, hour := time.Minute, time.Hour
	e.clock.Advance(2 * time.Minute)
	pw, wrong := password, "wrong horse battery"

	tests := []struct {
		name        string
		caller      *flows.Caller
		want        string
		maxAge      *time.Duration
		password    *string
		wantErr     error
		wantTokens  bool
		wantFactors []string
		wantAMR     []string // of the mfa_token
	}{
		{name: "AlreadyMet", caller: c, want: "aal2", wantTokens: true},
		{name: "LowerLevel", caller: c, want: "aal1", wantTokens: true},
		{name: "WithinMaxAge", caller: c, want: "aal2", maxAge: &hour, wantTokens: true},
		{name: "MaxAgePassed", caller: c, want: "aal2", maxAge: &minute, wantErr: flows.ErrPasswordRequired},
		{name: "MaxAgePassedWithPassword", caller: c, want: "aal2", maxAge: &minute, password: &pw,
			wantFactors: []string{"totp", "recovery"}, wantAMR: amrPwd},
		{name: "MaxAgePassedWrongPassword", caller: c, want: "aal2", maxAge: &minute, password: &wrong,
			wantErr: flows.ErrPasswordRejected},
		{name: "FromAAL1", caller: u.Enroller, want: "aal2", wantFactors: []string{"totp", "recovery"}, wantAMR: amrPwd},
		{name: "AAL3WithTOTPOnly", caller: c, want: "aal3", wantErr: flows.ErrNoFactorReaches},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.app.StepUp(ctx, tc.caller, tc.want, tc.maxAge, tc.password)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("StepUp = %+v, %v; want %v", out, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("StepUp: %v", err)
			}
			if tc.wantTokens {
				if out.Tokens == nil || out.Tokens.Refresh != "" || out.Tokens.Session.ID != tc.caller.Session.ID ||
					!out.Tokens.Session.AuthTime.Equal(authTime) {
					t.Fatalf("StepUp = %+v, want an access token of the same session, its auth_time unchanged, no refresh token", out)
				}
				return
			}
			if out.Pending == nil {
				t.Fatalf("StepUp = %+v, want a pending second factor", out)
			}
			if !slices.Equal(out.Pending.Factors, tc.wantFactors) {
				t.Errorf("factors %v, want %v", out.Pending.Factors, tc.wantFactors)
			}
			pc, err := e.app.PendingToken(out.Pending.Token)
			if err != nil {
				t.Fatal(err)
			}
			wantMaxAge := int64(0)
			if tc.maxAge != nil {
				wantMaxAge = int64(*tc.maxAge / time.Second)
			}
			if pc.Session != tc.caller.Session.ID || pc.ACR != tc.want || !slices.Equal(pc.AMR, tc.wantAMR) || pc.MaxAge != wantMaxAge {
				t.Errorf("mfa_token sid %q acr %q amr %v max_age %d; want %q %q %v %d", pc.Session, pc.ACR, pc.AMR, pc.MaxAge,
					tc.caller.Session.ID, tc.want, tc.wantAMR, wantMaxAge)
			}
		})
	}

	t.Run("CompleteWithPassword", func(t *testing.T) {
		out, err := e.app.StepUp(ctx, c, "aal2", &minute, &pw)
		if err != nil || out.Pending == nil {
			t.Fatalf("StepUp = %+v, %v", out, err)
		}
		pc, err := e.app.PendingToken(out.Pending.Token)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := e.app.VerifyTOTP(ctx, flows.Client{}, pc, e.code(t, u.Secret, 0))
		if err != nil {
			t.Fatalf("VerifyTOTP: %v", err)
		}
		s := tok.Session
		if s.ID != c.Session.ID || tok.Refresh != "" || s.ACR != "aal2" || !slices.Equal(s.AMR, amrTOTP) ||
			!s.AuthTime.Equal(e.clock.Now()) {
			t.Fatalf("step-up gave session %s at %s %v auth_time %v (refresh %q); want %s at aal2 %v auth_time now, no refresh token",
				s.ID, s.ACR, s.AMR, s.AuthTime, tok.Refresh, c.Session.ID, amrTOTP)
		}
		// The raised session now meets the max_age again without a password.
		again, err := e.app.StepUp(ctx, e.present(t, e.storedSession(t, c.Session.ID)), "aal2", &minute, nil)
		if err != nil || again.Tokens == nil {
			t.Fatalf("StepUp after the step-up = %+v, %v; want tokens", again, err)
		}
	})
}

func TestRemoveFactor(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.totpUser(t, "alice")
	fresh := e.signIn(t, u.ID, "pwd", "otp")
	other := e.signIn(t, u.ID, "pwd", "otp")

	t.Run("NoSuchFactor", func(t *testing.T) {
		if err := e.app.RemoveFactor(ctx, fresh, "nosuch", true); !errors.Is(err, mfa.ErrNotEnrolled) {
			t.Fatalf("RemoveFactor = %v, want mfa.ErrNotEnrolled", err)
		}
	})
	t.Run("FromAAL1", func(t *testing.T) {
		insufficient(t, e.app.RemoveFactor(ctx, u.Enroller, u.FactorID, true), "aal2", 10*time.Minute)
	})
	t.Run("LastWithoutLast", func(t *testing.T) {
		if err := e.app.RemoveFactor(ctx, fresh, u.FactorID, false); !errors.Is(err, flows.ErrLastFactor) {
			t.Fatalf("RemoveFactor = %v, want ErrLastFactor", err)
		}
		if got := e.storedUser(t, u.ID); len(got.Confirmed("")) != 1 {
			t.Fatalf("the refused removal removed the factor")
		}
	})
	t.Run("StaleAAL2", func(t *testing.T) {
		e.clock.Advance(11 * time.Minute)
		defer e.clock.Advance(-11 * time.Minute)
		insufficient(t, e.app.RemoveFactor(ctx, fresh, u.FactorID, true), "aal2", 10*time.Minute)
	})
	t.Run("Last", func(t *testing.T) {
		if err := e.app.RemoveFactor(ctx, fresh, u.FactorID, true); err != nil {
			t.Fatalf("RemoveFactor(last): %v", err)
		}
		got := e.storedUser(t, u.ID)
		if len(got.Factors) != 0 || len(got.RecoveryCodes) != 0 {
			t.Errorf("after removing the last factor: %d factors, %d recovery codes; want none", len(got.Factors), len(got.RecoveryCodes))
		}
		// The caller's session no longer names otp; the others ended.
		if s := e.storedSession(t, fresh.Session.ID); s.ACR != "aal1" || !slices.Equal(s.AMR, amrPwd) || !s.RevokedAt.IsZero() {
			t.Errorf("caller's session after the removal: %s %v revoked %v; want aal1 [pwd], live", s.ACR, s.AMR, s.RevokedAt)
		}
		for _, s := range []*tokens.Session{other.Session, u.Enroller.Session} {
			if got := e.storedSession(t, s.ID); got.RevokedAt.IsZero() {
				t.Errorf("another session (%s) of the user is still live", s.ID)
			}
		}
	})
}

// TestRemoveFactorUndoWindow: a session older than a factor another
// session added may remove it at any level, within the undo window.
func TestRemoveFactorUndoWindow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.user(t, "alice")
	owner := e.signIn(t, u.ID, "pwd")
	e.clock.Advance(time.Second)
	thief := e.signIn(t, u.ID, "pwd")
	enr, err := e.app.EnrollTOTP(ctx, thief, "thief")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.app.ConfirmTOTP(ctx, thief, enr.Factor.ID, e.code(t, enr.Secret, 0)); err != nil {
		t.Fatal(err)
	}
	insufficient(t, e.app.RemoveFactor(ctx, thief, enr.Factor.ID, true), "aal2", 10*time.Minute)
	if err := e.app.RemoveFactor(ctx, owner, enr.Factor.ID, true); err != nil {
		t.Fatalf("the older aal1 session removing the newer factor: %v", err)
	}
	if _, err := e.app.Authenticate(ctx, e.Access(t, thief.Session), flows.Client{}); !errors.Is(err, flows.ErrSessionGone) {
		t.Errorf("the adding session after the undo: %v, want ErrSessionGone", err)
	}
}

// TestConfirmAfterFirstFactor: an enrollment started before the user's
// first factor cannot be confirmed after it from an aal1 session.
func TestConfirmAfterFirstFactor(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.user(t, "alice")
	a := e.signIn(t, u.ID, "pwd")
	b := e.signIn(t, u.ID, "pwd")
	enrA, err := e.app.EnrollTOTP(ctx, a, "a")
	if err != nil {
		t.Fatal(err)
	}
	enrB, err := e.app.EnrollTOTP(ctx, b, "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, codes, err := e.app.ConfirmTOTP(ctx, b, enrB.Factor.ID, e.code(t, enrB.Secret, 0)); err != nil || len(codes) != mfa.RecoveryCount {
		t.Fatalf("ConfirmTOTP(first factor) = %d codes, %v", len(codes), err)
	}

	insufficient(t, func() error {
		_, _, err := e.app.ConfirmTOTP(ctx, a, enrA.Factor.ID, e.code(t, enrA.Secret, 0))
		return err
	}(), "aal2", 10*time.Minute)
	if f := e.storedUser(t, u.ID).Factor(enrA.Factor.ID); f == nil || f.Confirmed {
		t.Fatalf("enrollment A after the refusal: %+v, want present and unconfirmed", f)
	}
	_, err = e.app.EnrollTOTP(ctx, a, "again")
	insufficient(t, err, "aal2", 10*time.Minute)

	t.Run("FromFreshAAL2", func(t *testing.T) {
		c := e.signIn(t, u.ID, "pwd", "otp")
		f, codes, err := e.app.ConfirmTOTP(ctx, c, enrA.Factor.ID, e.code(t, enrA.Secret, 0))
		if err != nil || !f.Confirmed || codes != nil {
			t.Fatalf("ConfirmTOTP = %+v, %d codes, %v; want confirmed, no new recovery codes", f, len(codes), err)
		}
		if _, _, err := e.app.ConfirmTOTP(ctx, c, enrA.Factor.ID, e.code(t, enrA.Secret, 1)); !errors.Is(err, mfa.ErrAlreadyConfirmed) {
			t.Fatalf("ConfirmTOTP again = %v, want mfa.ErrAlreadyConfirmed", err)
		}
	})
}

func TestOperator(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	op := flows.Operator{Name: "ops"}

	t.Run("UnlockPassword", func(t *testing.T) {
		// A hash of a legacy, cheap cost: wrong guesses cost little here.
		cheap, err := mfa.NewPassword(mfa.Argon2Params{Memory: 64, Time: 1, Threads: 1}, 1, 1).Hash(ctx, password)
		if err != nil {
			t.Fatal(err)
		}
		u := e.User(t, "locked", cheap)
		for i := range 10 {
			if _, err := e.app.Login(ctx, flows.Client{}, "locked", "wrong horse battery"); !errors.Is(err, mfa.ErrBadCredentials) {
				t.Fatalf("wrong password %d: %v, want ErrBadCredentials", i, err)
			}
		}
		var th *mfa.ThrottledError
		if _, err := e.app.Login(ctx, flows.Client{}, "locked", password); !errors.As(err, &th) || th.Locked || th.RetryAfter != time.Second {
			t.Fatalf("the right password after 10 failures: %v, want throttled for 1s", err)
		}
		if _, err := e.app.Unlock(ctx, op, "LOCKED"); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
		out, err := e.app.Login(ctx, flows.Client{}, "locked", password)
		if err != nil || out.Tokens == nil {
			t.Fatalf("Login after Unlock = %+v, %v; want tokens", out, err)
		}
		// The legacy hash was upgraded on that sign-in.
		if got := e.storedUser(t, u.ID).PasswordHash; got == cheap {
			t.Errorf("legacy hash kept after a successful sign-in")
		}
	})

	u := e.totpUser(t, "bob")
	t.Run("UnlockSecondFactor", func(t *testing.T) {
		pc, _ := e.pending(t, u.Username)
		bad := e.WrongCode(t, u.Secret)
		for i := range 5 {
			if _, err := e.app.VerifyTOTP(ctx, flows.Client{}, pc, bad); !errors.Is(err, mfa.ErrBadCode) {
				t.Fatalf("wrong code %d: %v, want ErrBadCode", i, err)
			}
		}
		pc2, _ := e.pending(t, u.Username)
		var th *mfa.ThrottledError
		if _, err := e.app.VerifyTOTP(ctx, flows.Client{}, pc2, e.code(t, u.Secret, 0)); !errors.As(err, &th) || th.Locked {
			t.Fatalf("the right code after 5 failures: %v, want throttled", err)
		}
		if _, err := e.app.Unlock(ctx, op, u.Username); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
		tok, err := e.app.VerifyTOTP(ctx, flows.Client{}, pc2, e.code(t, u.Secret, 0))
		if err != nil || tok.Session.ACR != "aal2" {
			t.Fatalf("VerifyTOTP after Unlock = %v; want aal2 tokens", err)
		}
	})
	t.Run("Reset", func(t *testing.T) {
		live := e.signIn(t, u.ID, "pwd", "otp")
		access := e.Access(t, live.Session)
		got, err := e.app.Reset(ctx, op, u.Username)
		if err != nil || got.ID != u.ID {
			t.Fatalf("Reset = %v, %v", got, err)
		}
		stored := e.storedUser(t, u.ID)
		if len(stored.Factors) != 0 || len(stored.RecoveryCodes) != 0 {
			t.Errorf("after Reset: %d factors, %d recovery codes; want none", len(stored.Factors), len(stored.RecoveryCodes))
		}
		if _, err := e.app.Authenticate(ctx, access, flows.Client{}); !errors.Is(err, flows.ErrSessionGone) {
			t.Errorf("a session after Reset: %v, want ErrSessionGone", err)
		}
		out, err := e.app.Login(ctx, flows.Client{}, u.Username, password)
		if err != nil || out.Tokens == nil || out.Tokens.Session.ACR != "aal1" {
			t.Fatalf("Login after Reset = %+v, %v; want aal1 tokens", out, err)
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		if _, err := e.app.Unlock(ctx, op, "nobody"); !errors.Is(err, mfa.ErrNotFound) {
			t.Errorf("Unlock(nobody) = %v, want mfa.ErrNotFound", err)
		}
		if _, err := e.app.Reset(ctx, op, "with space"); !errors.Is(err, mfa.ErrInvalidUsername) {
			t.Errorf("Reset(invalid) = %v, want mfa.ErrInvalidUsername", err)
		}
	})
}

// race runs f(0) and f(1) released at once from a closed channel.
func race(f func(i int) error) [2]error {
	var (
		errs [2]error
		wg   sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range 2 {
		wg.Go(func() { <-start; errs[i] = f(i) })
	}
	close(start)
	wg.Wait()
	return errs
}

// TestConfirmFirstFactorRace: two aal1 sessions of a user without a second
// factor confirm their own enrollments at once. The policy lets the first
// factor in from any session and the next only from a fresh aal2, checked
// again at confirmation; so exactly one may win, and the recovery codes
// shown must be the ones that work.
func TestConfirmFirstFactorRace(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for round := range 5 {
		u := e.user(t, "race"+string(rune('a'+round)))
		var (
			callers [2]*flows.Caller
			enr     [2]*flows.TOTPEnrollment
			codes   [2][]string
		)
		for i := range 2 {
			callers[i] = e.signIn(t, u.ID, "pwd")
			en, err := e.app.EnrollTOTP(ctx, callers[i], "")
			if err != nil {
				t.Fatal(err)
			}
			enr[i] = en
		}
		otps := [2]string{e.code(t, enr[0].Secret, 0), e.code(t, enr[1].Secret, 0)}
		errs := race(func(i int) error {
			var err error
			_, codes[i], err = e.app.ConfirmTOTP(ctx, callers[i], enr[i].Factor.ID, otps[i])
			return err
		})
		wins := 0
		for i, err := range errs {
			var ie *flows.InsufficientError
			switch {
			case err == nil:
				wins++
			case !errors.As(err, &ie):
				t.Fatalf("round %d: confirmation %d: %v, want nil or *InsufficientError", round, i, err)
			}
		}
		confirmed := len(e.storedUser(t, u.ID).Confirmed(""))
		if wins != 1 || confirmed != 1 {
			t.Errorf("round %d: %d aal1 confirmations succeeded, %d factors confirmed; want exactly 1 (the second needs a fresh aal2)",
				round, wins, confirmed)
		}
		// Whatever was shown as recovery codes must work.
		for i, cs := range codes {
			if len(cs) == 0 {
				continue
			}
			tok := e.Pending(t, tokens.PendingClaims{Subject: u.ID, AMR: amrPwd})
			pc, err := e.app.PendingToken(tok)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.app.VerifyRecovery(ctx, flows.Client{}, pc, cs[0]); err != nil {
				t.Errorf("round %d: a recovery code shown to confirmation %d does not work: %v", round, i, err)
			}
		}
	}
}

// TestRemoveTwoFactorsRace: a fresh aal2 session removes both of the
// user's two factors at once, without ?last=true. Exactly one removal may
// succeed; the other is the last factor (ErrLastFactor), and the session
// names only methods the user still has.
func TestRemoveTwoFactorsRace(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for round := range 5 {
		u := e.totpUser(t, "rm"+string(rune('a'+round)))
		c := e.signIn(t, u.ID, "pwd", "otp")
		second, err := e.app.EnrollTOTP(ctx, c, "second")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.app.ConfirmTOTP(ctx, c, second.Factor.ID, e.code(t, second.Secret, 0)); err != nil {
			t.Fatal(err)
		}
		ids := [2]string{u.FactorID, second.Factor.ID}
		errs := race(func(i int) error { return e.app.RemoveFactor(ctx, c, ids[i], false) })
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, flows.ErrLastFactor):
				t.Fatalf("round %d: removal %d: %v, want nil or ErrLastFactor", round, i, err)
			}
		}
		left := e.storedUser(t, u.ID)
		s := e.storedSession(t, c.Session.ID)
		if wins != 1 || len(left.Confirmed("")) != 1 {
			t.Errorf("round %d: %d removals without ?last=true succeeded, %d factors left (session now %s %v); want 1 and 1",
				round, wins, len(left.Confirmed("")), s.ACR, s.AMR)
		}
		if len(left.Confirmed("")) == 0 && (s.ACR != "aal1" || !slices.Equal(s.AMR, amrPwd)) {
			t.Errorf("round %d: no factor left but the session is %s %v, want aal1 [pwd]", round, s.ACR, s.AMR)
		}
	}
}
