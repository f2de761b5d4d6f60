package tokens

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// published decodes a JWKS document into its members, by kid.
func published(t *testing.T, doc []byte) map[string]map[string]any {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatalf("JWKS is not JSON: %v\n%s", err, doc)
	}
	out := map[string]map[string]any{}
	for _, k := range set.Keys {
		kid, _ := k["kid"].(string)
		out[kid] = k
	}
	return out
}

// assertPublicOnly checks every JWK has exactly the public members of its
// type, and so no "d".
func assertPublicOnly(t *testing.T, doc []byte) {
	t.Helper()
	for kid, k := range published(t, doc) {
		want := []string{"alg", "crv", "kid", "kty", "use", "x", "y"}
		if k["kty"] == "OKP" {
			want = []string{"alg", "crv", "kid", "kty", "use", "x"}
		}
		var got []string
		for name := range k {
			got = append(got, name)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("key %s has members %v, want %v", kid, got, want)
		}
		if _, ok := k["d"]; ok {
			t.Errorf("key %s publishes its private member d", kid)
		}
		if k["use"] != "sig" {
			t.Errorf("key %s use = %v, want sig", kid, k["use"])
		}
	}
}

func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ES256)
	other := NewKeySet(f.store, KeySetOptions{Now: f.clock.Now}) // a second instance
	otherVerify := NewVerifier(other, VerifierConfig{Issuer: testIssuer, Audiences: []string{testAudience}, Now: f.clock.Now})
	const (
		rotation = 30 * 24 * time.Hour
		publish  = 10 * time.Minute
		retain   = time.Hour
	)

	first := f.signing(t)
	if !first.ActiveAt.Equal(f.clock.Now()) {
		t.Fatalf("first key ActiveAt = %v, want now %v (signs at once)", first.ActiveAt, f.clock.Now())
	}
	if n := len(published(t, f.keys.JWKS())); n != 1 {
		t.Fatalf("JWKS has %d keys, want 1", n)
	}

	t.Run("NoNewKeyBeforeRotationIsDue", func(t *testing.T) {
		f.clock.Advance(rotation - publish - time.Second)
		if err := f.keys.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if n := f.store.len(); n != 1 {
			t.Errorf("store has %d keys, want 1", n)
		}
	})

	var next Key
	t.Run("NewKeyPublishedBeforeItSigns", func(t *testing.T) {
		f.clock.Advance(time.Second)
		if err := f.keys.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if n := f.store.len(); n != 2 {
			t.Fatalf("store has %d keys, want 2", n)
		}
		if got := f.signing(t); got.ID != first.ID {
			t.Errorf("signing key = %s, want the old %s until the new one is active", got.ID, first.ID)
		}
		keys := published(t, f.keys.JWKS())
		if len(keys) != 2 {
			t.Fatalf("JWKS has %d keys, want 2", len(keys))
		}
		for kid := range keys {
			if kid != first.ID {
				next, _ = f.store.get(kid)
			}
		}
		if want := f.clock.Now().Add(publish); !next.ActiveAt.Equal(want) {
			t.Errorf("new key ActiveAt = %v, want %v", next.ActiveAt, want)
		}
		old, _ := f.store.get(first.ID)
		if want := next.ActiveAt.Add(retain); !old.RetireAt.Equal(want) {
			t.Errorf("old key RetireAt = %v, want %v", old.RetireAt, want)
		}
		// The other instance learns the key during the lead time.
		if err := other.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := other.Public(next.ID); !ok {
			t.Error("other instance does not know the new key before it signs")
		}
		if n := f.store.len(); n != 2 {
			t.Errorf("other instance's Refresh made %d keys, want 2", n)
		}
	})

	oldToken, _ := f.access(t)

	t.Run("NewKeySignsAtActiveAt", func(t *testing.T) {
		f.clock.Advance(publish)
		if got := f.signing(t); got.ID != next.ID {
			t.Fatalf("signing key = %s, want the new %s", got.ID, next.ID)
		}
		if got, _ := other.Signing(); got.ID != next.ID {
			t.Errorf("other instance signs with %s, want %s", got.ID, next.ID)
		}
		newToken, _ := f.access(t)
		for name, v := range map[string]*Verifier{"self": f.verify, "other": otherVerify} {
			if _, err := v.Access(newToken); err != nil {
				t.Errorf("%s: new-key token refused: %v", name, err)
			}
			if _, err := v.Access(oldToken); err != nil {
				t.Errorf("%s: old-key token refused while still valid: %v", name, err)
			}
		}
	})

	t.Run("OldKeyPublishedUntilRetire", func(t *testing.T) {
		f.clock.Advance(retain - time.Second)
		if err := f.keys.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := published(t, f.keys.JWKS())[first.ID]; !ok {
			t.Error("old key left the JWKS before RetireAt")
		}
		if _, _, ok := f.keys.Public(first.ID); !ok {
			t.Error("old key stopped verifying before RetireAt")
		}
	})

	t.Run("OldKeyGoneAfterRetire", func(t *testing.T) {
		f.clock.Advance(time.Second)
		if _, _, ok := f.keys.Public(first.ID); ok {
			t.Error("old key still verifies at RetireAt (before any Refresh)")
		}
		if err := f.keys.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		keys := published(t, f.keys.JWKS())
		if _, ok := keys[first.ID]; ok || len(keys) != 1 {
			t.Errorf("JWKS = %v, want only the new key", keys)
		}
		if _, ok := f.store.get(first.ID); ok {
			t.Error("retired key not deleted from the store")
		}
		assertPublicOnly(t, f.keys.JWKS())
	})
}

func TestJWKS(t *testing.T) {
	t.Run("EmptyBeforeRefresh", func(t *testing.T) {
		ks := NewKeySet(newMemStore(), KeySetOptions{})
		if got := string(ks.JWKS()); got != `{"keys":[]}` {
			t.Errorf("JWKS = %s", got)
		}
		if _, err := ks.Signing(); !errors.Is(err, ErrNoKey) {
			t.Errorf("Signing error = %v, want ErrNoKey", err)
		}
	})
	for _, tt := range []struct{ alg, kty, crv string }{{ES256, "EC", "P-256"}, {EdDSA, "OKP", "Ed25519"}} {
		t.Run(tt.alg+"PublicMembersOnly", func(t *testing.T) {
			f := newFixture(t, tt.alg)
			doc := f.keys.JWKS()
			assertPublicOnly(t, doc)
			k := published(t, doc)[f.signing(t).ID]
			if k["kty"] != tt.kty || k["crv"] != tt.crv || k["alg"] != tt.alg {
				t.Errorf("JWK = %v, want kty %s crv %s alg %s", k, tt.kty, tt.crv, tt.alg)
			}
			// The kid is the RFC 7638 thumbprint of the published members.
			pub, _, _ := f.keys.Public(f.signing(t).ID)
			if tp, _ := thumbprint(pub); tp != f.signing(t).ID {
				t.Errorf("kid %s is not the thumbprint %s", f.signing(t).ID, tp)
			}
		})
	}
}

func TestECCoordinatesAreFixedLength(t *testing.T) {
	// Find a key whose x or y has a leading zero byte (1 in 128 do), the
	// case big.Int.Bytes would shorten.
	for range 5000 {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		point, _ := priv.PublicKey.Bytes()
		if point[1] != 0 && point[33] != 0 {
			continue
		}
		j, err := publicJWK(&priv.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		x, _ := b64.DecodeString(j.X)
		y, _ := b64.DecodeString(j.Y)
		if len(x) != 32 || len(y) != 32 {
			t.Errorf("coordinates are %d and %d bytes, want 32", len(x), len(y))
		}
		return
	}
	t.Fatal("no key with a leading zero coordinate in 5000 tries")
}

func TestThumbprintRFC8037Vector(t *testing.T) {
	// RFC 8037 Appendix A.2 and A.3.
	x, err := b64.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if err != nil {
		t.Fatal(err)
	}
	got, err := thumbprint(ed25519.PublicKey(x))
	if want := "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; err != nil || got != want {
		t.Errorf("thumbprint = %q, %v; want %q", got, err, want)
	}
}

func TestConcurrentFirstStartAgreesOnSigningKey(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	store := newMemStore()
	const n = 8
	sets := make([]*KeySet, n)
	for i := range sets {
		sets[i] = NewKeySet(store, KeySetOptions{Now: c.Now})
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, ks := range sets {
		wg.Go(func() {
			<-start
			errs[i] = ks.Refresh(ctx)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	if store.len() < 1 || store.len() > n {
		t.Fatalf("store has %d keys, want 1..%d", store.len(), n)
	}
	// After one more refresh every instance publishes every key and signs
	// with the same one.
	var want string
	for i, ks := range sets {
		if err := ks.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if got := len(published(t, ks.JWKS())); got != store.len() {
			t.Errorf("instance %d publishes %d keys, store has %d", i, got, store.len())
		}
		k, err := ks.Signing()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			want = k.ID
		} else if k.ID != want {
			t.Errorf("instance %d signs with %s, instance 0 with %s", i, k.ID, want)
		}
	}
	if store.len() > 1 {
		t.Logf("%d instances raced and created %d keys", n, store.len())
	}
}

func TestAlgorithmChangeRotatesWithOverlap(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ES256)
	old := f.signing(t)
	ed := NewKeySet(f.store, KeySetOptions{Alg: EdDSA, Now: f.clock.Now})
	if err := ed.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if k, _ := ed.Signing(); k.ID != old.ID {
		t.Errorf("signing switched to %s at once, want %s until the EdDSA key is active", k.Alg, old.Alg)
	}
	f.clock.Advance(10 * time.Minute)
	k, err := ed.Signing()
	if err != nil || k.Alg != EdDSA {
		t.Errorf("after the lead time signing key = %s %v, want EdDSA", k.Alg, err)
	}
}

func TestRefreshStoreFailure(t *testing.T) {
	f := newFixture(t, ES256)
	before := f.signing(t)
	boom := errors.New("store down")
	f.store.fail = boom
	defer func() { f.store.fail = nil }()
	if err := f.keys.Refresh(context.Background()); !errors.Is(err, boom) {
		t.Errorf("Refresh error = %v, want it to wrap the store's", err)
	}
	if got := f.signing(t); got.ID != before.ID {
		t.Errorf("signing key = %s after a failed refresh, want %s kept", got.ID, before.ID)
	}
}

func TestUnusableStoredKeysAreIgnored(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	store := newMemStore()
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	bad := []Key{
		{ID: "wrong-type", Alg: ES256, Private: edPriv, ActiveAt: c.Now()},
		{ID: "unknown-alg", Alg: "RS256", Private: edPriv, ActiveAt: c.Now()},
	}
	for _, k := range bad {
		_ = store.AddKey(ctx, k)
	}
	ks := NewKeySet(store, KeySetOptions{Now: c.Now})
	if err := ks.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	k, err := ks.Signing()
	if err != nil || k.Alg != ES256 || k.ID == "wrong-type" {
		t.Fatalf("Signing = %s %s %v, want a fresh ES256 key", k.ID, k.Alg, err)
	}
	for _, b := range bad {
		if _, _, ok := ks.Public(b.ID); ok {
			t.Errorf("unusable key %s is published", b.ID)
		}
	}
}

func TestRunRefreshesUntilDone(t *testing.T) {
	store := newMemStore()
	ks := NewKeySet(store, KeySetOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		ks.Run(ctx, time.Millisecond)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := ks.Signing(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run never refreshed")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
}

func TestRacedKeysTieBrokenByGreaterID(t *testing.T) {
	// Two instances created a first key in the same second: both are kept
	// and published, the greater ID signs, the other retires after Retain.
	ctx := context.Background()
	c := newClock()
	store := newMemStore()
	var ids []string
	for range 2 {
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		kid, _ := thumbprint(&priv.PublicKey)
		ids = append(ids, kid)
		if err := store.AddKey(ctx, Key{ID: kid, Alg: ES256, Private: priv, CreatedAt: c.Now(), ActiveAt: c.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(ids)
	ks := NewKeySet(store, KeySetOptions{Now: c.Now})
	if err := ks.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if k, _ := ks.Signing(); k.ID != ids[1] {
		t.Errorf("signing key = %s, want the greater ID %s", k.ID, ids[1])
	}
	if n := len(published(t, ks.JWKS())); n != 2 {
		t.Errorf("JWKS has %d keys, want both", n)
	}
	if k, _ := store.get(ids[0]); !k.RetireAt.Equal(c.Now().Add(time.Hour)) {
		t.Errorf("loser RetireAt = %v, want ActiveAt + Retain", k.RetireAt)
	}
	if n := store.len(); n != 2 {
		t.Errorf("store has %d keys, want no third", n)
	}
}
