package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/mfa"
)

// BenchmarkScale measures how a sign-in (password step, then TOTP verify)
// grows with the number of users on the store. Users are seeded through
// the store with one precomputed password hash — signing 10,000 up over
// HTTP would cost 10,000 argon2id hashes — then sign-ins go over HTTP.
//
//	go test -run XXX -bench Scale -benchtime 40x ./cmd/stepup/
func BenchmarkScale(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			a := startApp(b, appOptions{})
			users := scaleSeed(b, a, n)
			b.ResetTimer()
			for i := range b.N {
				u := users[(i*7919)%len(users)]
				b.StopTimer()
				a.Clock.Advance(30 * time.Second) // a fresh time step for every sign-in
				b.StartTimer()
				l := a.login(b, u.Username, "scale password")
				var tok loginResult
				a.verify(b, l.MFAToken, totpCode(u.Factors[0].Secret, a.Clock.step())).decode(b, http.StatusOK, &tok)
			}
		})
	}
}

// scaleSeed inserts n users, each with a confirmed TOTP factor.
func scaleSeed(b *testing.B, a *testApp, n int) []*mfa.User {
	b.Helper()
	pw := mfa.NewPassword(mfa.DefaultArgon2, 0, 0)
	hash, err := pw.Hash(context.Background(), "scale password")
	if err != nil {
		b.Fatal(err)
	}
	users := make([]*mfa.User, n)
	now := a.Clock.Now()
	for i := range n {
		secret := make([]byte, 20)
		_, _ = rand.Read(secret)
		u := &mfa.User{ID: fmt.Sprintf("scale-%06d", i), Username: fmt.Sprintf("scale-%06d", i), PasswordHash: hash, CreatedAt: now,
			Factors: []mfa.Factor{{ID: fmt.Sprintf("f%06d", i), Kind: mfa.KindTOTP, Name: "app", Confirmed: true, CreatedAt: now, Secret: secret}}}
		if err := a.DB().CreateUser(context.Background(), u); err != nil {
			b.Fatal(err)
		}
		users[i] = u
	}
	return users
}
