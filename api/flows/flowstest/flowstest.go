// Package flowstest gives tests a real flows.App: on the real store
// (storetest), wired as cmd/stepup's App.Open wires it, on one frozen
// clock. WebAuthn is left nil. Password hashes are expensive, so fixture
// users share one precomputed hash of Password.
package flowstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/stepup-auth/stepup/api/flows"
	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/store"
	"github.com/stepup-auth/stepup/store/storetest"
	"github.com/stepup-auth/stepup/tokens"
)

// The settings every Env uses.
const (
	Issuer      = "http://localhost:8080"
	MFAAudience = Issuer + "/v1/mfa"
	Password    = "correct horse battery staple"
)

// Clock is a frozen clock that moves only when a test advances it. It
// starts 10 s into a TOTP step, so up to 19 s may pass in the same step.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a Clock at 2030-01-01 12:00:10 UTC.
func NewClock() *Clock {
	c := &Clock{}
	c.ns.Store(time.Date(2030, 1, 1, 12, 0, 10, 0, time.UTC).UnixNano())
	return c
}

// Now is the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// Env is one App on a fresh database.
type Env struct {
	App    *flows.App
	DB     *store.DB
	Clock  *Clock
	Keys   *tokens.KeySet
	Logger *slog.Logger
}

// Hash is the argon2id hash of Password at the default cost, computed once.
var Hash = sync.OnceValues(func() (string, error) {
	return mfa.NewPassword(mfa.DefaultArgon2, 0, 0).Hash(context.Background(), Password)
})

// New builds the App as cmd/stepup's App.Open does, on a fresh database,
// and closes it when tb ends (before the store: cleanups run last-in,
// first-out).
func New(tb testing.TB) *Env {
	tb.Helper()
	ctx := context.Background()
	db := storetest.New(tb)
	c := NewClock()
	keys := tokens.NewKeySet(db.Keys(), tokens.KeySetOptions{Now: c.Now, Retain: 25 * time.Minute})
	if err := keys.Refresh(ctx); err != nil {
		tb.Fatalf("flowstest: keys: %v", err)
	}
	sessions := tokens.NewSessions(db.Sessions())
	sessions.Now = c.Now
	budgets := db.Budgets()
	budget := func(free, limit int) *mfa.Budget {
		return &mfa.Budget{Store: budgets, Free: free, Limit: limit, Base: time.Second, Max: 15 * time.Minute,
			Keep: 30 * 24 * time.Hour, Now: c.Now}
	}
	tp := mfa.NewTOTP("stepup")
	tp.Now = c.Now
	pending := db.PendingTokens()
	tokenBudget := budget(5, 5)
	tokenBudget.Store, tokenBudget.Keep = pending, 10*time.Minute
	logger := slog.New(slog.DiscardHandler)
	app := flows.New(flows.Deps{
		Users:    db,
		Password: mfa.NewPassword(mfa.DefaultArgon2, 0, 0),
		TOTP:     tp,
		Recovery: mfa.NewRecovery(db.UsedRecoveryCodes()),
		Events:   db.Events(),
		Pending:  pending,
		Budgets: flows.Budgets{Token: tokenBudget, Account: budget(5, mfa.NISTMaxFailures),
			Login: budget(10, 1<<30), Enroll: budget(5, 10)},
		Policy:   mfa.DefaultPolicy,
		Sessions: sessions,
		Issuer: tokens.NewIssuer(keys, tokens.IssuerConfig{Issuer: Issuer, Audiences: []string{"stepup"}, ClientID: "stepup",
			AccessTTL: 15 * time.Minute, MFAAudience: MFAAudience, Now: c.Now}),
		Verifier:    tokens.NewVerifier(keys, tokens.VerifierConfig{Issuer: Issuer, Audiences: []string{"stepup"}, Now: c.Now}),
		DPoP:        flows.DPoP{Seen: db.DPoPProofs(), Verifier: tokens.NewDPoPVerifier(tokens.DPoPConfig{Now: c.Now})},
		MFAAudience: MFAAudience,
		SignupOpen:  true,
		Logger:      logger,
		Now:         c.Now,
	})
	tb.Cleanup(app.Close)
	return &Env{App: app, DB: db, Clock: c, Keys: keys, Logger: logger}
}

// User creates a factorless user named name whose password hash is hash,
// or Hash (of Password) when hash is "".
func (e *Env) User(tb testing.TB, name, hash string) *mfa.User {
	tb.Helper()
	if hash == "" {
		h, err := Hash()
		if err != nil {
			tb.Fatalf("flowstest: hash: %v", err)
		}
		hash = h
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	u := &mfa.User{ID: hex.EncodeToString(b), Username: name, PasswordHash: hash, CreatedAt: e.Clock.Now()}
	if err := e.DB.CreateUser(context.Background(), u); err != nil {
		tb.Fatalf("flowstest: create user: %v", err)
	}
	return u
}

// Session starts a session for userID, as the flows start one after an
// authentication that proved amr.
func (e *Env) Session(tb testing.TB, userID string, amr ...string) *tokens.Session {
	tb.Helper()
	as := mfa.DefaultPolicy.Assess(amr...)
	sess, _, err := e.App.Sessions.Start(context.Background(), userID, e.Clock.Now(), as.ACR, as.AMR)
	if err != nil {
		tb.Fatalf("flowstest: start session: %v", err)
	}
	return sess
}

// Access issues an access token of sess, as the flows issue one.
func (e *Env) Access(tb testing.TB, sess *tokens.Session) string {
	tb.Helper()
	a, _, err := e.App.Issuer.Access(sess.UserID, sess.ID, sess.AuthTime, sess.ACR, sess.AMR)
	if err != nil {
		tb.Fatalf("flowstest: access token: %v", err)
	}
	return a
}

// Code is the TOTP code of secret (base32) k steps from the clock's.
func (e *Env) Code(tb testing.TB, secret string, k int) string {
	tb.Helper()
	c, err := totp.GenerateCodeCustom(secret, e.Clock.Now().Add(time.Duration(k)*30*time.Second),
		totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		tb.Fatalf("flowstest: code: %v", err)
	}
	return c
}

// WrongCode is a well-formed code of secret that matches no step near the
// clock.
func (e *Env) WrongCode(tb testing.TB, secret string) string {
	tb.Helper()
	near := map[string]bool{}
	for k := -3; k <= 3; k++ {
		near[e.Code(tb, secret, k)] = true
	}
	for _, c := range []string{"000000", "123456", "999999", "424242"} {
		if !near[c] {
			return c
		}
	}
	tb.Fatal("flowstest: no wrong code")
	return ""
}

// Pending issues and records an mfa_token for userID after amr, as the
// password step (or a step-up, with pc's Session and ACR) does.
func (e *Env) Pending(tb testing.TB, pc tokens.PendingClaims) string {
	tb.Helper()
	tok, claims, err := e.App.Issuer.Pending(pc)
	if err != nil {
		tb.Fatalf("flowstest: mfa_token: %v", err)
	}
	if err := e.App.Pending.Open(context.Background(), claims.Record, pc.Subject, e.Clock.Now(), claims.Expiry.Add(time.Minute)); err != nil {
		tb.Fatalf("flowstest: open mfa_token: %v", err)
	}
	return tok
}
