package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/store/storetest"
	"github.com/stepup-auth/stepup/tokens"
)

func TestUsers(t *testing.T) {
	db := storetest.New(t)
	ctx := context.Background()
	u := &mfa.User{ID: "u1", Username: "alice", PasswordHash: "$argon2id$x", CreatedAt: time.Now(),
		Factors: []mfa.Factor{{ID: "f1", Kind: mfa.KindTOTP, Name: "phone", Secret: []byte("seed-seed-seed-seed!")}}}
	if err := db.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	t.Run("DuplicateName", func(t *testing.T) {
		err := db.CreateUser(ctx, &mfa.User{ID: "u2", Username: "alice"})
		if !errors.Is(err, mfa.ErrUsernameTaken) {
			t.Fatalf("got %v, want ErrUsernameTaken", err)
		}
		if _, err := db.User(ctx, "u2"); !errors.Is(err, mfa.ErrNotFound) {
			t.Fatalf("loser's user document left behind: %v", err)
		}
	})
	t.Run("SecretRoundTrip", func(t *testing.T) {
		got, err := db.UserByName(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Factors[0].Secret) != "seed-seed-seed-seed!" {
			t.Fatalf("secret = %q", got.Factors[0].Secret)
		}
	})
	t.Run("StaleRevision", func(t *testing.T) {
		a, _ := db.User(ctx, "u1")
		b, _ := db.User(ctx, "u1")
		a.Factors[0].Name = "a"
		if err := db.UpdateUser(ctx, a); err != nil {
			t.Fatal(err)
		}
		b.Factors[0].Name = "b"
		if err := db.UpdateUser(ctx, b); !errors.Is(err, mfa.ErrConflict) {
			t.Fatalf("got %v, want ErrConflict", err)
		}
	})
	t.Run("UniqueNameRace", func(t *testing.T) {
		const n = 30
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := db.CreateUser(ctx, &mfa.User{ID: "race" + string(rune('a'+i)), Username: "racer"})
				if err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				} else if !errors.Is(err, mfa.ErrUsernameTaken) {
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d sign-ups won the same name, want 1", wins)
		}
	})
}

func TestClaimsRace(t *testing.T) {
	db := storetest.New(t)
	steps := db.Steps()
	ctx := context.Background()
	const n = 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := steps.Claim(ctx, "f|1", time.Now().Add(time.Minute))
			switch {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
			case !errors.Is(err, mfa.ErrUsed):
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d claims won, want 1", wins)
	}
	if ok, err := steps.AnyClaimed(ctx, "f|0", "f|1"); err != nil || !ok {
		t.Fatalf("AnyClaimed = %v, %v", ok, err)
	}
	if ok, err := steps.AnyClaimed(ctx, "f|2"); err != nil || ok {
		t.Fatalf("AnyClaimed(unclaimed) = %v, %v", ok, err)
	}
}

func TestBudgetHints(t *testing.T) {
	db := storetest.New(t)
	b := db.Budgets()
	ctx := context.Background()
	if err := b.Advance(ctx, "s", 5, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Advance(ctx, "s", 3, 2); err != nil { // lower next must not win
		t.Fatal(err)
	}
	next, reset, err := b.Hint(ctx, "s")
	if err != nil || next != 5 || reset != 2 {
		t.Fatalf("Hint = %d, %d, %v; want 5, 2", next, reset, err)
	}
}

func TestSessions(t *testing.T) {
	db := storetest.New(t)
	s := db.Sessions()
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	sess := &tokens.Session{ID: "s1", UserID: "u1", CreatedAt: now, AuthTime: now, ACR: "aal2", AMR: []string{"pwd", "otp", "mfa"}, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSession(ctx, "s1", now); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSession(ctx, "s1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Session(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.RevokedAt.Equal(now) {
		t.Fatalf("RevokedAt = %v, want the first revocation %v", got.RevokedAt, now)
	}
	if err := s.ClaimRotation(ctx, "h", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.ClaimRotation(ctx, "h", now.Add(time.Hour)); !errors.Is(err, tokens.ErrRotated) {
		t.Fatalf("second rotation: %v, want ErrRotated", err)
	}
}

func TestSweep(t *testing.T) {
	db := storetest.New(t)
	ctx := context.Background()
	_ = db.Steps().Claim(ctx, "old", time.Now().Add(-time.Minute))
	_ = db.Steps().Claim(ctx, "new", time.Now().Add(time.Minute))
	n, err := db.Sweep(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	if ok, _ := db.Steps().AnyClaimed(ctx, "new"); !ok {
		t.Fatal("unexpired claim swept")
	}
}
