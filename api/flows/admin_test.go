package flows_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stepup-auth/stepup/api/flows"
	"github.com/stepup-auth/stepup/mfa"
)

// checkDead fails t unless the tokens of t are refused: the access token
// (its session ended) and the refresh token.
func (e *env) checkDead(t *testing.T, what string, tok *flows.Tokens) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.app.Authenticate(ctx, tok.Access, flows.Client{}); !errors.Is(err, flows.ErrSessionGone) {
		t.Errorf("%s: the access token: %v, want ErrSessionGone", what, err)
	}
	if tok.Refresh != "" {
		if _, err := e.app.Refresh(ctx, flows.Client{}, tok.Refresh); err == nil {
			t.Errorf("%s: the refresh token still works", what)
		}
	}
}

// TestDisableRacesSignIn: an operator disables a user while the user signs
// in — with the password alone (the hash takes tens of milliseconds after
// the user was read) and with a second factor after an mfa_token. Either
// the sign-in is refused, or its session is already dead: no order of the
// two leaves a disabled user signed in.
func TestDisableRacesSignIn(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	op := flows.Operator{Name: "ops"}
	refused, won := 0, 0
	for round := range 6 {
		u := e.user(t, fmt.Sprintf("racer%d", round))
		var out *flows.Outcome
		errs := race(func(i int) error {
			if i == 0 {
				var err error
				out, err = e.app.Login(ctx, flows.Client{}, u.Username, password)
				return err
			}
			_, err := e.app.DisableUser(ctx, op, u.ID)
			return err
		})
		if errs[1] != nil {
			t.Fatalf("round %d: DisableUser: %v", round, errs[1])
		}
		if errs[0] != nil {
			if !errors.Is(errs[0], flows.ErrAccountDisabled) {
				t.Fatalf("round %d: Login: %v, want tokens or ErrAccountDisabled", round, errs[0])
			}
			refused++
			continue
		}
		won++
		e.checkDead(t, fmt.Sprintf("round %d, password", round), out.Tokens)
	}

	for round := range 6 {
		u := e.totpUser(t, fmt.Sprintf("second%d", round))
		pc, _ := e.pending(t, u.Username)
		var tok *flows.Tokens
		code := e.code(t, u.Secret, 0)
		errs := race(func(i int) error {
			if i == 0 {
				var err error
				tok, err = e.app.VerifyTOTP(ctx, flows.Client{}, pc, code)
				return err
			}
			_, err := e.app.DisableUser(ctx, op, u.ID)
			return err
		})
		if errs[1] != nil {
			t.Fatalf("round %d: DisableUser: %v", round, errs[1])
		}
		if errs[0] != nil {
			if !errors.Is(errs[0], flows.ErrAccountDisabled) {
				t.Fatalf("round %d: VerifyTOTP: %v, want tokens or ErrAccountDisabled", round, errs[0])
			}
			refused++
			continue
		}
		won++
		e.checkDead(t, fmt.Sprintf("round %d, TOTP", round), tok)
	}
	t.Logf("%d sign-ins refused, %d got tokens that were dead at once", refused, won)
	// Enabled again, the user signs in.
	u := e.user(t, "back")
	if _, err := e.app.DisableUser(ctx, op, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.app.Login(ctx, flows.Client{}, u.Username, password); !errors.Is(err, flows.ErrAccountDisabled) {
		t.Fatalf("Login while disabled: %v", err)
	}
	if _, err := e.app.Login(ctx, flows.Client{}, u.Username, "not the password"); !errors.Is(err, mfa.ErrBadCredentials) {
		t.Fatalf("wrong password while disabled: %v, want ErrBadCredentials (nothing told)", err)
	}
	if _, err := e.app.EnableUser(ctx, op, u.ID); err != nil {
		t.Fatal(err)
	}
	if out, err := e.app.Login(ctx, flows.Client{}, u.Username, password); err != nil || out.Tokens == nil {
		t.Fatalf("Login after enable: %+v, %v", out, err)
	}
}

// TestDisableBetweenFactorAndSession: the interleaving a race rarely hits,
// made to happen: the user's code was accepted (the user read before the
// disable), then the whole disable runs, then the sign-in inserts its
// session. The sign-in must be refused and leave nothing live: the disable
// ended the user's mfa_tokens before their sessions, so this one cannot be
// consumed. The same for a deletion.
func TestDisableBetweenFactorAndSession(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	op := flows.Operator{Name: "ops"}
	for _, c := range []struct {
		name string
		act  func(userID string) error
		want error
	}{
		{"Disable", func(id string) error { _, err := e.app.DisableUser(ctx, op, id); return err }, flows.ErrAccountDisabled},
		{"Delete", func(id string) error { return e.app.DeleteUser(ctx, op, id) }, flows.ErrPendingUser},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := e.totpUser(t, "between-"+strings.ToLower(c.name))
			pc, _ := e.pending(t, u.Username)
			undo := flows.SetBeforeSecondFactorSession(func(id string) {
				if err := c.act(id); err != nil {
					t.Errorf("%s: %v", c.name, err)
				}
			})
			tok, err := e.app.VerifyTOTP(ctx, flows.Client{}, pc, e.code(t, u.Secret, 0))
			undo()
			if !errors.Is(err, c.want) {
				t.Fatalf("VerifyTOTP: %+v, %v; want %v", tok, err, c.want)
			}
			ss, err := e.app.Sessions.OfUser(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(ss) != 0 {
				t.Fatalf("%d live sessions after the %s, want none", len(ss), c.name)
			}
		})
	}
}

// TestDisableAfterConsume: the other interleaving, made to happen — the
// mfa_token is consumed, then the whole disable (or deletion) runs, then
// the sign-in hands out its tokens. They must be dead: the session was
// inserted before the consumption, so the disable's end of the user's
// sessions found it. (Inserted after the consumption, it would be live.)
func TestDisableAfterConsume(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	op := flows.Operator{Name: "ops"}
	for _, c := range []struct {
		name string
		act  func(userID string) error
	}{
		{"disable", func(id string) error { _, err := e.app.DisableUser(ctx, op, id); return err }},
		{"delete", func(id string) error { return e.app.DeleteUser(ctx, op, id) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := e.totpUser(t, "after-"+c.name)
			pc, _ := e.pending(t, u.Username)
			undo := flows.SetAfterSecondFactorConsume(func(id string) {
				if err := c.act(id); err != nil {
					t.Errorf("%s: %v", c.name, err)
				}
			})
			tok, err := e.app.VerifyTOTP(ctx, flows.Client{}, pc, e.code(t, u.Secret, 0))
			undo()
			if err != nil {
				t.Fatalf("VerifyTOTP: %v (the token was consumed: tokens, dead, are expected)", err)
			}
			e.checkDead(t, c.name, tok)
			if ss, err := e.app.Sessions.OfUser(ctx, u.ID); err != nil || len(ss) != 0 {
				t.Fatalf("%d live sessions after the %s (%v), want none", len(ss), c.name, err)
			}
		})
	}
}
