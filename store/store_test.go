package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/store"
	"github.com/stepup-auth/stepup/store/storetest"
	"github.com/stepup-auth/stepup/tokens"
)

// race releases n calls of f at once and counts the nil answers; other
// answers must satisfy ok.
func race(t *testing.T, n int, f func(i int) error, ok func(error) bool) int {
	t.Helper()
	var (
		wins atomic.Int64
		wg   sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			err := f(i)
			switch {
			case err == nil:
				wins.Add(1)
			case !ok(err):
				t.Errorf("call %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return int(wins.Load())
}

func is(target error) func(error) bool { return func(err error) bool { return errors.Is(err, target) } }

var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

func newUser(t *testing.T, db *store.DB, id string, factors ...mfa.Factor) *mfa.User {
	t.Helper()
	u := &mfa.User{ID: id, Username: "name-" + id, PasswordHash: "$argon2id$x", CreatedAt: t0, Factors: factors}
	if err := db.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func totpFactor(id string) mfa.Factor {
	return mfa.Factor{ID: id, Kind: mfa.KindTOTP, Name: id, Confirmed: true, CreatedAt: t0, Secret: []byte("seed-seed-seed-seed!")}
}

func keyFactor(id string, count uint32) mfa.Factor {
	return mfa.Factor{ID: id, Kind: mfa.KindWebAuthn, Name: id, Confirmed: true, CreatedAt: t0,
		Credential: &mfa.Credential{ID: []byte("cred-" + id), PublicKey: []byte{1}, SignCount: count}}
}

func TestUsers(t *testing.T) {
	db := storetest.New(t)
	ctx := context.Background()
	newUser(t, db, "u1", totpFactor("f1"))
	t.Run("DuplicateName", func(t *testing.T) {
		err := db.CreateUser(ctx, &mfa.User{ID: "u2", Username: "name-u1"})
		if !errors.Is(err, mfa.ErrUsernameTaken) {
			t.Fatalf("got %v, want ErrUsernameTaken", err)
		}
		if _, err := db.User(ctx, "u2"); !errors.Is(err, mfa.ErrNotFound) {
			t.Fatalf("loser's user document left behind: %v", err)
		}
	})
	t.Run("SecretRoundTrip", func(t *testing.T) {
		got, err := db.UserByName(ctx, "name-u1")
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Factors[0].Secret) != "seed-seed-seed-seed!" {
			t.Fatalf("secret = %q", got.Factors[0].Secret)
		}
	})
	t.Run("UnknownName", func(t *testing.T) {
		if _, err := db.UserByName(ctx, "nobody"); !errors.Is(err, mfa.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	})
	t.Run("UniqueNameRace", func(t *testing.T) {
		wins := race(t, 30, func(i int) error {
			return db.CreateUser(ctx, &mfa.User{ID: fmt.Sprintf("race%d", i), Username: "racer"})
		}, is(mfa.ErrUsernameTaken))
		if wins != 1 {
			t.Fatalf("%d sign-ups won the same name, want 1", wins)
		}
	})
	t.Run("FactorLimit", func(t *testing.T) {
		newUser(t, db, "lim")
		for i := range 3 {
			if err := db.AddFactor(ctx, "lim", totpFactor(fmt.Sprint("l", i)), 3, t0, false); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.AddFactor(ctx, "lim", totpFactor("l3"), 3, t0, false); !errors.Is(err, mfa.ErrTooManyFactors) {
			t.Fatalf("fourth factor: got %v, want ErrTooManyFactors", err)
		}
		// Stale enrollments make room.
		stale := totpFactor("stale")
		stale.Confirmed = false
		newUser(t, db, "st", stale, totpFactor("s1"), totpFactor("s2"))
		if err := db.AddFactor(ctx, "st", totpFactor("s3"), 3, t0.Add(time.Minute), false); err != nil {
			t.Fatalf("with a stale enrollment: %v", err)
		}
		u, _ := db.User(ctx, "st")
		if u.Factor("stale") != nil || u.Factor("s3") == nil || len(u.Factors) != 3 {
			t.Fatalf("factors after pruning: %+v", u.Factors)
		}
	})
}

// TestUnrelatedChangesDoNotConflict: renames, a password change, recovery
// codes and a TOTP use at once all land; none undoes another.
func TestUnrelatedChangesDoNotConflict(t *testing.T) {
	db := storetest.New(t)
	ctx := context.Background()
	newUser(t, db, "u", totpFactor("a"), totpFactor("b"))
	for round := range 10 {
		step := int64(7 + round)
		ops := []func() error{
			func() error { return db.RenameFactor(ctx, "u", "a", "renamed-a") },
			func() error { return db.RenameFactor(ctx, "u", "b", "renamed-b") },
			func() error { return db.SetPassword(ctx, "u", "$argon2id$new") },
			func() error { return db.SetRecoveryCodes(ctx, "u", []string{"h1", "h2"}) },
			func() error { return db.UseStep(ctx, "u", "a", step, t0, false, time.Time{}, false) },
		}
		if wins := race(t, len(ops), func(i int) error { return ops[i]() }, func(error) bool { return false }); wins != len(ops) {
			t.Fatalf("round %d: %d of %d changes succeeded", round, wins, len(ops))
		}
		u, err := db.User(ctx, "u")
		if err != nil {
			t.Fatal(err)
		}
		if u.Factor("a").Name != "renamed-a" || u.Factor("b").Name != "renamed-b" || u.PasswordHash != "$argon2id$new" ||
			len(u.RecoveryCodes) != 2 || u.Factor("a").LastStep != step {
			t.Fatalf("round %d: a change was lost: %+v", round, u)
		}
		_ = db.RenameFactor(ctx, "u", "a", "a")
		_ = db.RenameFactor(ctx, "u", "b", "b")
		_ = db.SetPassword(ctx, "u", "x")
		_ = db.SetRecoveryCodes(ctx, "u", nil)
	}
}

// TestRemovalNeverUndone: a factor removed while it is being renamed stays
// removed, in every round.
func TestRemovalNeverUndone(t *testing.T) {
	db := storetest.New(t)
	ctx := context.Background()
	for round := range 20 {
		id := fmt.Sprint("u", round)
		newUser(t, db, id, totpFactor("keep"), totpFactor("gone"))
		race(t, 21, func(i int) error {
			if i == 0 {
				_, _, err := db.RemoveFactor(ctx, id, "gone", true)
				return err
			}
			return db.RenameFactor(ctx, id, "gone", fmt.Sprint("name", i))
		}, is(mfa.ErrNotEnrolled))
		u, err := db.User(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		// Nothing of it may come back, not even a stub a rename recreated.
		if u.Factor("gone") != nil || u.Factor("keep") == nil || len(u.Factors) != 1 {
			t.Fatalf("round %d: factors after remove racing renames: %+v", round, u.Factors)
		}
	}
}

// TestRemoveLastDropsRecovery: removing the last confirmed factor drops the
// recovery codes in the same update; removing another keeps them.
func TestRemoveLastDropsRecovery(t *testing.T) {
	db := storetest.New(t)
	ctx := context.Background()
	newUser(t, db, "u", totpFactor("a"), totpFactor("b"))
	_ = db.SetRecoveryCodes(ctx, "u", []string{"h"})
	if _, _, err := db.RemoveFactor(ctx, "u", "a", true); err != nil {
		t.Fatal(err)
	}
	if u, _ := db.User(ctx, "u"); len(u.RecoveryCodes) != 1 {
		t.Fatalf("recovery codes after removing one of two factors: %v", u.RecoveryCodes)
	}
	if _, _, err := db.RemoveFactor(ctx, "u", "b", true); err != nil {
		t.Fatal(err)
	}
	if u, _ := db.User(ctx, "u"); len(u.RecoveryCodes) != 0 || len(u.Factors) != 0 {
		t.Fatalf("after removing the last factor: %+v", u)
	}
	if _, _, err := db.RemoveFactor(ctx, "u", "b", true); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("second removal: got %v, want ErrNotEnrolled", err)
	}
}

// TestUseStep: a step is accepted once and never an earlier one, whatever
// the race; confirmation activates a fresh enrollment once.
func TestUseStep(t *testing.T) {
	db := storetest.New(t)
	ctx := context.Background()
	t.Run("RaceSameStep", func(t *testing.T) {
		for round := range 20 {
			id := fmt.Sprint("same", round)
			newUser(t, db, id, totpFactor("f"))
			wins := race(t, 50, func(int) error { return db.UseStep(ctx, id, "f", 100, t0, false, time.Time{}, false) }, is(mfa.ErrBadCode))
			if wins != 1 {
				t.Fatalf("round %d: %d winners for one step, want 1", round, wins)
			}
		}
	})
	t.Run("NeverBackwards", func(t *testing.T) {
		newUser(t, db, "back", totpFactor("f"))
		if err := db.UseStep(ctx, "back", "f", 101, t0, false, time.Time{}, false); err != nil {
			t.Fatal(err)
		}
		if err := db.UseStep(ctx, "back", "f", 100, t0, false, time.Time{}, false); !errors.Is(err, mfa.ErrBadCode) {
			t.Fatalf("earlier step: got %v, want ErrBadCode", err)
		}
	})
	t.Run("Confirm", func(t *testing.T) {
		f := totpFactor("new")
		f.Confirmed = false
		newUser(t, db, "conf", f)
		if err := db.UseStep(ctx, "conf", "new", 5, t0, false, time.Time{}, false); !errors.Is(err, mfa.ErrNotEnrolled) {
			t.Fatalf("sign-in with an unconfirmed factor: got %v, want ErrNotEnrolled", err)
		}
		if err := db.UseStep(ctx, "conf", "new", 5, t0, true, t0.Add(time.Minute), false); !errors.Is(err, mfa.ErrNotEnrolled) {
			t.Fatalf("stale confirmation: got %v, want ErrNotEnrolled", err)
		}
		wins := race(t, 20, func(int) error { return db.UseStep(ctx, "conf", "new", 5, t0, true, t0, false) },
			func(err error) bool { return errors.Is(err, mfa.ErrAlreadyConfirmed) || errors.Is(err, mfa.ErrBadCode) })
		if wins != 1 {
			t.Fatalf("%d confirmations, want 1", wins)
		}
		if err := db.UseStep(ctx, "conf", "new", 5, t0, false, time.Time{}, false); !errors.Is(err, mfa.ErrBadCode) {
			t.Fatalf("the confirming step again: got %v, want ErrBadCode", err)
		}
	})
	t.Run("ForgivesAttempts", func(t *testing.T) {
		newUser(t, db, "fg", totpFactor("f"))
		gates := []mfa.Gate{{Min: 0, Max: 5}}
		for range 3 {
			if _, ok, err := db.SpendAttempt(ctx, "fg", gates, t0); err != nil || !ok {
				t.Fatal(ok, err)
			}
		}
		if err := db.UseStep(ctx, "fg", "f", 9, t0, false, time.Time{}, false); err != nil {
			t.Fatal(err)
		}
		if u, _ := db.User(ctx, "fg"); u.Attempts.Failures != 0 {
			t.Fatalf("failures after a success: %d", u.Attempts.Failures)
		}
	})
}

// TestUseCredentialRace: two (or fifty) assertions carrying the same
// counter: one is recorded, the others refused.
func TestUseCredentialRace(t *testing.T) {
	db := storetest.New(t)
	ctx := context.Background()
	for round := range 10 {
		id := fmt.Sprint("k", round)
		newUser(t, db, id, keyFactor("key", 3))
		wins := race(t, 50, func(int) error { return db.UseCredential(ctx, id, "key", 4, false, t0) }, is(mfa.ErrBadCode))
		if wins != 1 {
			t.Fatalf("round %d: %d assertions with counter 4 accepted, want 1", round, wins)
		}
	}
	newUser(t, db, "zero", keyFactor("key", 0))
	for range 2 {
		if err := db.UseCredential(ctx, "zero", "key", 0, false, t0); err != nil {
			t.Fatalf("counterless authenticator: %v", err)
		}
	}
	if err := db.FlagCredential(ctx, "zero", "key"); err != nil {
		t.Fatal(err)
	}
	if err := db.UseCredential(ctx, "zero", "key", 0, false, t0); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("flagged credential: got %v, want ErrNotEnrolled", err)
	}
}

// TestSpendAttemptExact: a burst against the account's budget counts
// exactly as many attempts as the gates allow.
func TestSpendAttemptExact(t *testing.T) {
	db := storetest.New(t)
	ctx := context.Background()
	newUser(t, db, "u")
	gates := []mfa.Gate{{Min: 0, Max: 5}}
	for round := range 5 {
		wins := race(t, 50, func(int) error {
			_, ok, err := db.SpendAttempt(ctx, "u", gates, t0)
			if err == nil && !ok {
				return errThrottled
			}
			return err
		}, is(errThrottled))
		if wins != 5 {
			t.Fatalf("round %d: %d attempts counted, want 5", round, wins)
		}
		if err := db.ForgiveAttempts(ctx, "u"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := db.SpendAttempt(ctx, "gone", gates, t0); !errors.Is(err, mfa.ErrNotFound) {
		t.Fatalf("unknown user: got %v, want ErrNotFound", err)
	}
}

var errThrottled = errors.New("throttled")

func TestSessions(t *testing.T) {
	db := storetest.New(t)
	s := db.Sessions()
	ctx := context.Background()
	now := t0
	mk := func(id string) {
		t.Helper()
		sess := &tokens.Session{ID: id, UserID: "u1", CreatedAt: now, AuthTime: now, ACR: "aal2", AMR: []string{"pwd", "otp", "mfa"},
			ExpiresAt: now.Add(time.Hour), RefreshHash: "h0", RefreshIssuedAt: now, RefreshExpiresAt: now.Add(time.Hour)}
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("RevokeOnce", func(t *testing.T) {
		mk("s1")
		_ = s.RevokeSession(ctx, "s1", now)
		_ = s.RevokeSession(ctx, "s1", now.Add(time.Minute))
		got, err := s.Session(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		if !got.RevokedAt.Equal(now) {
			t.Fatalf("RevokedAt = %v, want the first revocation %v", got.RevokedAt, now)
		}
		if _, err := s.SetAuth(ctx, "s1", now, "aal3", nil, now); !errors.Is(err, tokens.ErrSessionEnded) {
			t.Fatalf("SetAuth on a revoked session: got %v, want ErrSessionEnded", err)
		}
		if _, err := s.RotateRefresh(ctx, "s1", "h0", "h1", "", now.Add(time.Hour), now, nil); !errors.Is(err, tokens.ErrRefreshUnknown) {
			t.Fatalf("rotation of a revoked session: got %v, want ErrRefreshUnknown", err)
		}
	})
	t.Run("RevokeRacingStepUp", func(t *testing.T) {
		for round := range 20 {
			id := fmt.Sprint("r", round)
			mk(id)
			race(t, 20, func(i int) error {
				if i == 0 {
					return s.RevokeSession(ctx, id, now)
				}
				_, err := s.SetAuth(ctx, id, now, "aal3", []string{"hwk"}, now)
				return err
			}, is(tokens.ErrSessionEnded))
			got, _ := s.Session(ctx, id)
			if got.RevokedAt.IsZero() {
				t.Fatalf("round %d: a step-up undid the revocation", round)
			}
		}
	})
	t.Run("RotationOneWinner", func(t *testing.T) {
		for round := range 10 {
			id := fmt.Sprint("rot", round)
			mk(id)
			wins := race(t, 30, func(i int) error {
				_, err := s.RotateRefresh(ctx, id, "h0", fmt.Sprint("h", i+1), "", now.Add(time.Hour), now, nil)
				return err
			}, is(tokens.ErrRefreshUnknown))
			if wins != 1 {
				t.Fatalf("round %d: %d rotations of one token, want 1", round, wins)
			}
		}
	})
}

func TestSweep(t *testing.T) {
	cfg := storetest.Config(t)
	now := t0
	cfg.Now = func() time.Time { return now }
	db := storetest.Open(t, cfg)
	ctx := context.Background()
	b := db.Budgets()
	gates := []mfa.Gate{{Min: 0, Max: 5}}
	if _, _, err := b.Spend(ctx, "old", gates, now, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Spend(ctx, "new", gates, now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	n, err := db.Sweep(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	if st, _ := b.Budget(ctx, "new"); st.Failures != 1 {
		t.Fatal("unexpired budget swept")
	}
	if st, _ := b.Budget(ctx, "old"); st.Failures != 0 {
		t.Fatal("expired budget kept")
	}
}

// TestEventRetention: an event is kept for Config.EventRetention, then
// swept (on MongoDB the TTL index deletes it at the same expires_at).
func TestEventRetention(t *testing.T) {
	cfg := storetest.Config(t)
	now := t0
	cfg.Now = func() time.Time { return now }
	cfg.EventRetention = 2 * time.Hour
	db := storetest.Open(t, cfg)
	ctx := context.Background()
	if err := db.Events().AddEvents(ctx, []mfa.Event{{ID: "e1", UserID: "u1", Type: mfa.EventLogout, At: t0}}); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		evs, err := db.Events().Events(ctx, "u1", 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	now = t0.Add(2*time.Hour - time.Second)
	if _, err := db.Sweep(ctx); err != nil || count() != 1 {
		t.Fatalf("within the retention: %d events, %v; want it kept", count(), err)
	}
	now = t0.Add(2*time.Hour + time.Second)
	if _, err := db.Sweep(ctx); err != nil || count() != 0 {
		t.Fatalf("past the retention: %d events, %v; want it swept", count(), err)
	}
}

// TestDeleteUserAndSessions: DeleteUser returns what it deleted and frees
// the name; UserSessions lists only the user's live sessions, oldest
// first; DeleteUserSessions removes the user's sessions and no other's.
func TestDeleteUserAndSessions(t *testing.T) {
	db := storetest.New(t)
	ctx := context.Background()
	u := newUser(t, db, "u1", totpFactor("f1"))
	newUser(t, db, "u2")
	ss := db.Sessions()
	start := func(id, user string, at time.Time, revoked bool) {
		s := &tokens.Session{ID: id, UserID: user, CreatedAt: at, AuthTime: at, ACR: "aal1", AMR: []string{"pwd"},
			ExpiresAt: t0.Add(time.Hour), RefreshHash: id, RefreshIssuedAt: at, RefreshExpiresAt: t0.Add(time.Hour),
			Device: tokens.Device{UserAgent: "ua-" + id, IP: "192.0.2.1"}}
		if err := ss.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		if revoked {
			if err := ss.RevokeSession(ctx, id, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	start("b", "u1", t0.Add(time.Minute), false)
	start("a", "u1", t0, false)
	start("gone", "u1", t0, true)
	start("other", "u2", t0, false)
	got, err := ss.UserSessions(ctx, "u1", t0.Add(2*time.Minute))
	if err != nil || len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" || got[0].Device.UserAgent != "ua-a" || got[0].Device.IP != "192.0.2.1" {
		t.Fatalf("UserSessions = %v, %v; want a then b with their devices", got, err)
	}
	if got, _ := ss.UserSessions(ctx, "u1", t0.Add(2*time.Hour)); len(got) != 0 {
		t.Fatalf("past their end: %d sessions listed, want none", len(got))
	}

	del, err := db.DeleteUser(ctx, "u1")
	if err != nil || del.ID != u.ID || len(del.Factors) != 1 {
		t.Fatalf("DeleteUser = %+v, %v; want the user with its factor", del, err)
	}
	if _, err := db.DeleteUser(ctx, "u1"); !errors.Is(err, mfa.ErrNotFound) {
		t.Fatalf("DeleteUser again: %v, want ErrNotFound", err)
	}
	if err := db.CreateUser(ctx, &mfa.User{ID: "u3", Username: u.Username, CreatedAt: t0}); err != nil {
		t.Fatalf("the name after deletion: %v", err)
	}
	if err := ss.DeleteUserSessions(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "gone"} {
		if _, err := ss.Session(ctx, id); !errors.Is(err, tokens.ErrSessionNotFound) {
			t.Errorf("session %s after DeleteUserSessions: %v", id, err)
		}
	}
	if _, err := ss.Session(ctx, "other"); err != nil {
		t.Errorf("another user's session: %v", err)
	}
}
