package mfa_test

import (
	"context"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stepup-auth/stepup/mfa"
)

// The usernameless ceremony keeps no state before proof: its challenge is
// the state, sealed under WebAuthn.PasskeyKey, and only a verified
// assertion writes (the claim that makes it single use).

// documents counts the documents of every collection of e's database.
func (e *waEnv) documents(t *testing.T) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	names, err := e.raw.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int64, len(names))
	for _, n := range names {
		c, err := e.raw.Collection(n).CountDocuments(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		out[n] = c
	}
	return out
}

func sameCounts(a, b map[string]int64) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

func TestWebAuthnPasskeyStateless(t *testing.T) {
	t.Run("BeginWritesNothing", func(t *testing.T) {
		e := waNewEnv(t)
		u := e.newUser(t)
		e.enroll(t, u, waPasskey(t, u, false))
		ctx := context.Background()
		before, err := e.db.Ceremonies().Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		all := e.documents(t)
		seen := map[string]bool{}
		for range 50 {
			o := e.beginPasskey(t)
			if len(o.Challenge) < 16 || seen[string(o.Challenge)] {
				t.Fatalf("challenge %x: want ≥16 bytes, never repeated", o.Challenge)
			}
			seen[string(o.Challenge)] = true
		}
		after, err := e.db.Ceremonies().Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if after != before {
			t.Errorf("ceremony documents %d after 50 BeginPasskey, want %d", after, before)
		}
		if got := e.documents(t); !sameCounts(got, all) {
			t.Errorf("documents per collection %v after 50 BeginPasskey, want %v", got, all)
		}
	})

	t.Run("OneClaimAfterProof", func(t *testing.T) {
		e := waNewEnv(t)
		u := e.newUser(t)
		k := waPasskey(t, u, false)
		e.enroll(t, u, k)
		ctx := context.Background()
		before, _ := e.db.Ceremonies().Count(ctx)
		if _, _, _, err := e.wa.FinishPasskey(ctx, k.assert(waRP, e.beginPasskey(t))); err != nil {
			t.Fatal(err)
		}
		if after, _ := e.db.Ceremonies().Count(ctx); after != before+1 {
			t.Errorf("ceremony documents %d after a sign-in, want %d (one claim)", after, before+1)
		}
	})

	// Every refusal below is ErrCeremony, leaves the user as stored and
	// writes nothing.
	for _, tc := range []struct {
		name    string
		options func(e *waEnv, t *testing.T) *virtualwebauthn.AssertionOptions
		advance time.Duration
	}{
		{name: "TamperedChallenge", options: func(e *waEnv, t *testing.T) *virtualwebauthn.AssertionOptions {
			o := e.beginPasskey(t)
			o.Challenge = append([]byte(nil), o.Challenge...)
			o.Challenge[len(o.Challenge)/2] ^= 0x01
			return o
		}},
		{name: "TruncatedChallenge", options: func(e *waEnv, t *testing.T) *virtualwebauthn.AssertionOptions {
			o := e.beginPasskey(t)
			o.Challenge = o.Challenge[:len(o.Challenge)-1]
			return o
		}},
		{name: "RandomChallenge", options: func(e *waEnv, t *testing.T) *virtualwebauthn.AssertionOptions {
			o := e.beginPasskey(t)
			o.Challenge = make([]byte, len(o.Challenge))
			return o
		}},
		{name: "SealedWithAnotherKey", options: func(e *waEnv, t *testing.T) *virtualwebauthn.AssertionOptions {
			other := *e.wa
			other.PasskeyKey = waPasskeyKey()
			e2 := *e
			e2.wa = &other
			return e2.beginPasskey(t)
		}},
		{name: "Expired", advance: waTTL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := waNewEnv(t)
			u := e.newUser(t)
			k := waPasskey(t, u, false)
			u, _ = e.enroll(t, u, k)
			var o *virtualwebauthn.AssertionOptions
			if tc.options != nil {
				o = tc.options(e, t)
			} else {
				o = e.beginPasskey(t)
			}
			body := k.assert(waRP, o)
			e.clk.Advance(tc.advance)
			before := e.documents(t)
			_, _, _, err := e.wa.FinishPasskey(context.Background(), body)
			waWantErr(t, err, mfa.ErrCeremony)
			e.unchanged(t, u)
			if got := e.documents(t); !sameCounts(got, before) {
				t.Errorf("documents %v after a refused sign-in, want %v", got, before)
			}
		})
	}

	t.Run("JustBeforeExpiry", func(t *testing.T) {
		e := waNewEnv(t)
		u := e.newUser(t)
		k := waPasskey(t, u, false)
		e.enroll(t, u, k)
		body := k.assert(waRP, e.beginPasskey(t))
		e.clk.Advance(waTTL - time.Millisecond)
		if _, _, _, err := e.wa.FinishPasskey(context.Background(), body); err != nil {
			t.Fatalf("FinishPasskey 1 ms before expiry: %v", err)
		}
	})

	t.Run("ReplayRefusedOnceUsed", func(t *testing.T) {
		e := waNewEnv(t)
		u := e.newUser(t)
		k := waPasskey(t, u, false) // counter stays 0: only the claim stops a replay
		e.enroll(t, u, k)
		o := e.beginPasskey(t)
		body := k.assert(waRP, o)
		if _, _, _, err := e.wa.FinishPasskey(context.Background(), body); err != nil {
			t.Fatal(err)
		}
		for _, again := range [][]byte{body, k.assert(waRP, o)} {
			_, _, _, err := e.wa.FinishPasskey(context.Background(), again)
			waWantErr(t, err, mfa.ErrCeremony)
		}
	})

	t.Run("FailedAssertionDoesNotUseTheChallenge", func(t *testing.T) {
		e := waNewEnv(t)
		u := e.newUser(t)
		k := waPasskey(t, u, false)
		e.enroll(t, u, k)
		o := e.beginPasskey(t)
		k.auth.Options.UserNotVerified = true
		_, _, _, err := e.wa.FinishPasskey(context.Background(), k.assert(waRP, o))
		waWantErr(t, err, mfa.ErrCeremony)
		k.auth.Options.UserNotVerified = false
		if _, _, _, err := e.wa.FinishPasskey(context.Background(), k.assert(waRP, o)); err != nil {
			t.Errorf("a verified assertion after a refused one: %v", err)
		}
	})

	t.Run("NoKey", func(t *testing.T) {
		e := waNewEnv(t)
		e.wa.PasskeyKey = nil
		if _, err := e.wa.BeginPasskey(context.Background()); err == nil {
			t.Error("BeginPasskey without a key: no error")
		}
	})
}
