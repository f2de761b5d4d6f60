package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/store/storetest"
	"github.com/stepup-auth/stepup/tokens"
)

// BenchmarkStoreOps times one store round trip of each kind a second
// factor makes, on 1,000 users: the floor under the service's figures.
//
//	go test -run XXX -bench StoreOps -benchmem ./store/
func BenchmarkStoreOps(b *testing.B) {
	db := storetest.New(b)
	ctx := context.Background()
	const n = 1000
	for i := range n {
		u := &mfa.User{ID: fmt.Sprint("u", i), Username: fmt.Sprint("name", i), PasswordHash: "$argon2id$x", CreatedAt: t0,
			Factors: []mfa.Factor{totpFactor("f")}}
		if err := db.CreateUser(ctx, u); err != nil {
			b.Fatal(err)
		}
	}
	seq := 0 // unique ids and steps across the benchmark's runs
	gates := (&mfa.Budget{Free: 5, Limit: 100, Base: time.Second, Max: 15 * time.Minute}).Gates(t0)
	b.Run("FindUserByID", func(b *testing.B) {
		for i := range b.N {
			if _, err := db.User(ctx, fmt.Sprint("u", i%n)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("UserByName", func(b *testing.B) {
		for i := range b.N {
			if _, err := db.UserByName(ctx, fmt.Sprint("name", i%n)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SpendAttempt", func(b *testing.B) {
		for i := range b.N {
			if _, _, err := db.SpendAttempt(ctx, fmt.Sprint("u", i%n), gates, t0); err != nil {
				b.Fatal(err)
			}
			if i%n == n-1 {
				b.StopTimer()
				for k := range n {
					_ = db.ForgiveAttempts(ctx, fmt.Sprint("u", k))
				}
				b.StartTimer()
			}
		}
	})
	b.Run("UseStep", func(b *testing.B) {
		for i := range b.N {
			seq++
			if err := db.UseStep(ctx, fmt.Sprint("u", i%n), "f", int64(1000+seq), t0, false, time.Time{}, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	tb := db.PendingTokens()
	b.Run("TokenSpendAndConsume", func(b *testing.B) {
		for range b.N {
			seq++
			id := fmt.Sprint("jti", seq)
			b.StopTimer()
			if err := tb.Open(ctx, id, "u1", t0, t0.Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, _, err := tb.Spend(ctx, id, []mfa.Gate{{Min: 0, Max: 5}}, t0, t0.Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
			if err := tb.Consume(ctx, id, t0, t0.Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
	})
	s := db.Sessions()
	b.Run("SessionInsert", func(b *testing.B) {
		for range b.N {
			seq++
			sess := &tokens.Session{ID: fmt.Sprint("s", seq), UserID: "u1", CreatedAt: t0, AuthTime: t0, ACR: "aal2",
				AMR: []string{"pwd", "otp", "mfa"}, ExpiresAt: t0.Add(time.Hour), RefreshHash: "h", RefreshExpiresAt: t0.Add(time.Hour)}
			if err := s.CreateSession(ctx, sess); err != nil {
				b.Fatal(err)
			}
		}
	})
}
