package flows_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/api/flows"
	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

// login signs in with the password (one hash) from client cl and presents
// the access token it got.
func (e *env) login(t *testing.T, username string, cl flows.Client) (*flows.Caller, *flows.Tokens) {
	t.Helper()
	ctx := context.Background()
	out, err := e.app.Login(ctx, cl, username, password)
	if err != nil || out.Tokens == nil {
		t.Fatalf("Login = %+v, %v; want tokens", out, err)
	}
	c, err := e.app.Authenticate(ctx, out.Tokens.Access, cl)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return c, out.Tokens
}

func (e *env) live(t *testing.T, sid string) bool {
	t.Helper()
	return e.storedSession(t, sid).Live(e.clock.Now())
}

// TestMySessions: two sign-ins from two browsers; each lists both, marks
// its own, and shows where it was signed in and when it was last used (a
// refresh moves that).
func TestMySessions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.user(t, "alice")
	firefox := flows.Client{IP: "192.0.2.1", UserAgent: "Firefox/140"}
	chrome := flows.Client{IP: "198.51.100.7", UserAgent: "Chrome/140 " + strings.Repeat("x", 300)}
	a, _ := e.login(t, u.Username, firefox)
	e.clock.Advance(time.Minute)
	b, bt := e.login(t, u.Username, chrome)
	other := e.user(t, "mallory")
	e.signIn(t, other.ID, "pwd")

	for _, c := range []*flows.Caller{a, b} {
		got, err := e.app.MySessions(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != a.Session.ID || got[1].ID != b.Session.ID {
			t.Fatalf("MySessions: %d sessions, want a's and b's, oldest first", len(got))
		}
		for _, s := range got {
			if s.Current != (s.ID == c.Session.ID) {
				t.Errorf("session %s: Current %v from %s", s.ID, s.Current, c.Session.ID)
			}
		}
		if d := got[0].Device; d.IP != firefox.IP || d.UserAgent != firefox.UserAgent {
			t.Errorf("first device %+v, want %+v", d, firefox)
		}
		if d := got[1].Device; d.IP != chrome.IP || len(d.UserAgent) != tokens.MaxUserAgent || !strings.HasPrefix(chrome.UserAgent, d.UserAgent) {
			t.Errorf("second device %q (%d bytes), want the user agent cut to %d", d.IP, len(d.UserAgent), tokens.MaxUserAgent)
		}
		if got[0].ACR != "aal1" || len(got[0].AMR) != 1 || got[0].AMR[0] != "pwd" {
			t.Errorf("acr/amr %s %v, want aal1 [pwd]", got[0].ACR, got[0].AMR)
		}
	}

	created := b.Session.CreatedAt
	e.clock.Advance(time.Hour)
	if _, err := e.app.Refresh(ctx, flows.Client{}, bt.Refresh); err != nil {
		t.Fatal(err)
	}
	got, err := e.app.MySessions(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if !got[1].LastUsed().Equal(created.Add(time.Hour)) || !got[0].LastUsed().Equal(got[0].CreatedAt) {
		t.Errorf("last used %v and %v; want the refresh's time for b, the sign-in's for a", got[1].LastUsed(), got[0].LastUsed())
	}

	// An ended session is no longer listed.
	if err := e.app.Logout(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.app.MySessions(ctx, a); len(got) != 1 || !got[0].Current {
		t.Errorf("after b's logout: %d sessions, want a's alone", len(got))
	}
}

// TestEndMySession: ending another session needs a fresh aal2 once the
// user has a second factor, and a refusal ends nothing; one's own is a
// logout; another user's session is not found.
func TestEndMySession(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.totpUser(t, "alice")
	phone := e.signIn(t, u.ID, amrTOTP...)
	laptop := e.signIn(t, u.ID, amrTOTP...)
	stranger := e.signIn(t, e.user(t, "mallory").ID, "pwd")

	t.Run("AAL1Refused", func(t *testing.T) {
		weak := e.signIn(t, u.ID, "pwd")
		insufficient(t, e.app.EndMySession(ctx, weak, laptop.Session.ID), "aal2", 10*time.Minute)
		if !e.live(t, laptop.Session.ID) {
			t.Fatal("a refused request ended the session")
		}
	})
	t.Run("StaleAAL2Refused", func(t *testing.T) {
		e.clock.Advance(11 * time.Minute)
		stale := e.present(t, e.storedSession(t, phone.Session.ID))
		insufficient(t, e.app.EndMySession(ctx, stale, laptop.Session.ID), "aal2", 10*time.Minute)
		if !e.live(t, laptop.Session.ID) {
			t.Fatal("a refused request ended the session")
		}
	})
	fresh := e.signIn(t, u.ID, amrTOTP...)
	t.Run("AnotherUsersSession", func(t *testing.T) {
		if err := e.app.EndMySession(ctx, fresh, stranger.Session.ID); !errors.Is(err, flows.ErrNoSession) {
			t.Fatalf("got %v, want ErrNoSession", err)
		}
		if !e.live(t, stranger.Session.ID) {
			t.Fatal("another user's session ended")
		}
		if err := e.app.EndMySession(ctx, fresh, "no-such-session"); !errors.Is(err, flows.ErrNoSession) {
			t.Fatalf("unknown id: got %v, want ErrNoSession", err)
		}
	})
	t.Run("FreshAAL2Ends", func(t *testing.T) {
		if err := e.app.EndMySession(ctx, fresh, laptop.Session.ID); err != nil {
			t.Fatal(err)
		}
		if e.live(t, laptop.Session.ID) || !e.live(t, fresh.Session.ID) {
			t.Fatal("want the laptop's session ended and the caller's live")
		}
		if err := e.app.EndMySession(ctx, fresh, laptop.Session.ID); !errors.Is(err, flows.ErrNoSession) {
			t.Fatalf("ending it again: %v, want ErrNoSession", err)
		}
	})
	t.Run("OwnIsLogout", func(t *testing.T) {
		weak := e.signIn(t, u.ID, "pwd")
		if err := e.app.EndMySession(ctx, weak, weak.Session.ID); err != nil {
			t.Fatal(err)
		}
		if e.live(t, weak.Session.ID) {
			t.Fatal("own session still live")
		}
	})
	t.Run("NoFactorAnySession", func(t *testing.T) {
		p := e.user(t, "plain")
		one, two := e.signIn(t, p.ID, "pwd"), e.signIn(t, p.ID, "pwd")
		e.clock.Advance(time.Hour)
		if err := e.app.EndMySession(ctx, one, two.Session.ID); err != nil {
			t.Fatal(err)
		}
		if e.live(t, two.Session.ID) {
			t.Fatal("session still live")
		}
	})
}

// TestLogoutAll: every session of the user ends, the caller's too, from
// any session; other users' sessions stay.
func TestLogoutAll(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.totpUser(t, "alice")
	a, b := e.signIn(t, u.ID, "pwd"), e.signIn(t, u.ID, amrTOTP...)
	stranger := e.signIn(t, e.user(t, "mallory").ID, "pwd")
	if err := e.app.LogoutAll(ctx, a); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*flows.Caller{a, b, u.Enroller} {
		if e.live(t, s.Session.ID) {
			t.Errorf("session %s still live", s.Session.ID)
		}
	}
	if !e.live(t, stranger.Session.ID) {
		t.Error("another user's session ended")
	}
}

// TestDeleteMe: the policy and the password guard deletion; a refusal
// deletes nothing, a wrong password is counted; then everything of the
// account is gone, the name is free and shares nothing with the old one,
// and the events are kept without the name.
func TestDeleteMe(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.totpUser(t, "alice")
	other := e.signIn(t, u.ID, amrTOTP...)

	weak := e.signIn(t, u.ID, "pwd")
	insufficient(t, e.app.DeleteMe(ctx, weak, password), "aal2", 10*time.Minute)
	if got := e.storedUser(t, u.ID); len(got.Factors) != 1 {
		t.Fatal("refused for the level, but the user changed")
	}

	c := e.signIn(t, u.ID, amrTOTP...)
	// A wrong password from another address too, kept on that address's
	// budget after the right one forgives this one's.
	guesser := flows.Client{IP: "203.0.113.9"}
	elsewhere := *c
	elsewhere.Client = guesser
	if err := e.app.DeleteMe(ctx, &elsewhere, "not the password at all"); !errors.Is(err, flows.ErrPasswordRejected) {
		t.Fatalf("wrong password: %v, want ErrPasswordRejected", err)
	}
	if err := e.app.DeleteMe(ctx, c, "wrong horse battery staple"); !errors.Is(err, flows.ErrPasswordRejected) {
		t.Fatalf("wrong password: %v, want ErrPasswordRejected", err)
	}
	if got := e.storedUser(t, u.ID); got.PasswordFailures.Failures != 2 || len(got.Factors) != 1 {
		t.Fatalf("after two wrong passwords: %d failures counted, %d factors; want 2, 1", got.PasswordFailures.Failures, len(got.Factors))
	}
	if st, _ := e.db.Budgets().Budget(ctx, "pwd|alice|"); st.Failures != 1 {
		t.Fatalf("the wrong password on this address's budget: %d, want 1", st.Failures)
	}
	if !e.live(t, other.Session.ID) {
		t.Fatal("a refused deletion ended a session")
	}

	e.clock.Advance(time.Second) // events in a known order
	if err := e.app.DeleteMe(ctx, c, password); err != nil {
		t.Fatal(err)
	}
	e.app.Close() // write the queued events
	if _, err := e.db.User(ctx, u.ID); !errors.Is(err, mfa.ErrNotFound) {
		t.Fatalf("user after deletion: %v, want ErrNotFound", err)
	}
	for _, s := range []*flows.Caller{c, other, weak, u.Enroller} {
		if _, err := e.db.Sessions().Session(ctx, s.Session.ID); !errors.Is(err, tokens.ErrSessionNotFound) {
			t.Errorf("session %s after deletion: %v, want ErrSessionNotFound", s.Session.ID, err)
		}
		if _, err := e.app.Authenticate(ctx, e.Access(t, s.Session), flows.Client{}); !errors.Is(err, flows.ErrSessionGone) {
			t.Errorf("an access token after deletion: %v, want ErrSessionGone", err)
		}
	}
	if st, err := e.db.Budgets().Budget(ctx, "pwd|alice|"+guesser.IP); err != nil || st.Failures != 0 {
		t.Errorf("the name's password budget after deletion: %+v, %v; want none", st, err)
	}

	evs, err := e.app.Events(ctx, u.ID, 100)
	if err != nil || len(evs) == 0 {
		t.Fatalf("events after deletion: %d, %v; want them kept", len(evs), err)
	}
	if evs[0].Type != mfa.EventAccountDeleted || evs[0].Detail != "by its user" {
		t.Errorf("newest event %s %q, want %s by its user", evs[0].Type, evs[0].Detail, mfa.EventAccountDeleted)
	}
	for _, ev := range evs {
		if strings.Contains(strings.ToLower(ev.Detail+ev.UserID+ev.Type+ev.UserAgent), "alice") {
			t.Errorf("event %s holds the username: %+v", ev.Type, ev)
		}
	}
}

// TestDeleteNewAccountSameName: the name is free at once; the new account
// is another user, and the old one's sessions do not become its.
func TestDeleteNewAccountSameName(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.totpUser(t, "alice")
	c := e.signIn(t, u.ID, amrTOTP...)
	old := e.Access(t, c.Session)
	if err := e.app.DeleteMe(ctx, c, password); err != nil {
		t.Fatal(err)
	}
	nu, err := e.app.SignUp(ctx, flows.Client{}, "Alice", password)
	if err != nil {
		t.Fatalf("sign-up with the freed name: %v", err)
	}
	if nu.ID == u.ID || len(nu.Factors) != 0 || len(nu.RecoveryCodes) != 0 {
		t.Fatalf("new account %s with %d factors, %d recovery codes; want a new id and nothing", nu.ID, len(nu.Factors), len(nu.RecoveryCodes))
	}
	if _, err := e.app.Authenticate(ctx, old, flows.Client{}); !errors.Is(err, flows.ErrSessionGone) {
		t.Errorf("old access token: %v, want ErrSessionGone", err)
	}
	out, err := e.app.Login(ctx, flows.Client{}, "alice", password)
	if err != nil || out.Tokens == nil || out.Tokens.Session.UserID != nu.ID {
		t.Fatalf("sign-in to the new account: %+v, %v; want aal1 tokens of the new user", out, err)
	}
}

// TestOperatorSessions: an operator lists, ends one and ends all of a
// user's sessions and deletes a user, with no policy check, named in the
// events; unknown users and sessions are not found.
func TestOperatorSessions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	op := flows.Operator{Name: "ops-alice"}
	u := e.totpUser(t, "bob")
	a, b := e.signIn(t, u.ID, "pwd"), e.signIn(t, u.ID, "pwd")
	stranger := e.signIn(t, e.user(t, "mallory").ID, "pwd")

	got, err := e.app.UserSessions(ctx, op, u.ID)
	if err != nil || len(got) != 3 {
		t.Fatalf("UserSessions: %d, %v; want 3 (enroller, a, b)", len(got), err)
	}
	if _, err := e.app.UserSessions(ctx, op, "nobody"); !errors.Is(err, mfa.ErrNotFound) {
		t.Errorf("UserSessions(nobody): %v, want mfa.ErrNotFound", err)
	}
	if err := e.app.EndUserSession(ctx, op, u.ID, stranger.Session.ID); !errors.Is(err, flows.ErrNoSession) {
		t.Errorf("another user's session: %v, want ErrNoSession", err)
	}
	if !e.live(t, stranger.Session.ID) {
		t.Fatal("another user's session ended")
	}
	if err := e.app.EndUserSession(ctx, op, u.ID, a.Session.ID); err != nil {
		t.Fatal(err)
	}
	if e.live(t, a.Session.ID) || !e.live(t, b.Session.ID) {
		t.Fatal("want a ended, b live")
	}
	e.clock.Advance(time.Second) // events in a known order
	if err := e.app.EndUserSessions(ctx, op, u.ID); err != nil {
		t.Fatal(err)
	}
	if e.live(t, b.Session.ID) || e.live(t, u.Enroller.Session.ID) || !e.live(t, stranger.Session.ID) {
		t.Fatal("want every session of the user ended, and only theirs")
	}
	if err := e.app.EndUserSessions(ctx, op, "nobody"); !errors.Is(err, mfa.ErrNotFound) {
		t.Errorf("EndUserSessions(nobody): %v, want mfa.ErrNotFound", err)
	}

	e.clock.Advance(time.Second)
	if err := e.app.DeleteUser(ctx, op, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.User(ctx, u.ID); !errors.Is(err, mfa.ErrNotFound) {
		t.Fatalf("user after DeleteUser: %v", err)
	}
	if err := e.app.DeleteUser(ctx, op, u.ID); !errors.Is(err, mfa.ErrNotFound) {
		t.Errorf("deleting again: %v, want mfa.ErrNotFound", err)
	}
	e.app.Close()
	evs, err := e.app.Events(ctx, u.ID, 100)
	if err != nil || len(evs) == 0 || evs[0].Type != mfa.EventAccountDeleted || evs[0].Detail != "by ops-alice" {
		t.Fatalf("newest event %+v, %v; want account.deleted by ops-alice", evs, err)
	}
	var ended []string
	for _, ev := range evs {
		if ev.Type == mfa.EventSessionRevoked {
			ended = append(ended, ev.Detail)
		}
	}
	if len(ended) != 2 || ended[0] != "every session, by ops-alice" || ended[1] != "by ops-alice" {
		t.Errorf("session events %q, want both naming the operator", ended)
	}
}

// TestDeleteRacesSignIn: a password sign-in that read the user just before
// an operator deleted it must not leave a usable session behind (the hash
// takes tens of milliseconds, the deletion a few): either it fails, or its
// tokens are dead.
func TestDeleteRacesSignIn(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	op := flows.Operator{Name: "ops"}
	for round := range 5 {
		u := e.user(t, "racer"+strings.Repeat("x", round))
		var out *flows.Outcome
		errs := race(func(i int) error {
			if i == 0 {
				var err error
				out, err = e.app.Login(ctx, flows.Client{}, u.Username, password)
				return err
			}
			return e.app.DeleteUser(ctx, op, u.ID)
		})
		if errs[1] != nil {
			t.Fatalf("round %d: DeleteUser: %v", round, errs[1])
		}
		if errs[0] != nil {
			if !errors.Is(errs[0], mfa.ErrBadCredentials) {
				t.Fatalf("round %d: Login: %v, want tokens or ErrBadCredentials", round, errs[0])
			}
			continue
		}
		if _, err := e.app.Authenticate(ctx, out.Tokens.Access, flows.Client{}); !errors.Is(err, flows.ErrSessionGone) {
			t.Errorf("round %d: the racing sign-in's access token: %v, want ErrSessionGone", round, err)
		}
		if _, err := e.app.Refresh(ctx, flows.Client{}, out.Tokens.Refresh); err == nil {
			t.Errorf("round %d: the racing sign-in's refresh token still works", round)
		}
	}
}
