package tokens

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// memStore is a KeyStore in memory. It stands in for store's implementation
// only because KeyStore is this package's own interface; the service's real
// store is tested against MongoDB in store/.
type memStore struct {
	mu   sync.Mutex
	keys map[string]Key
	fail error // returned by every call when set
}

func newMemStore() *memStore { return &memStore{keys: map[string]Key{}} }

func (m *memStore) Keys(context.Context) ([]Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	out := make([]Key, 0, len(m.keys))
	for _, k := range m.keys {
		out = append(out, k)
	}
	return out, nil
}

func (m *memStore) AddKey(_ context.Context, k Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if _, dup := m.keys[k.ID]; dup {
		return errors.New("memstore: duplicate key id")
	}
	m.keys[k.ID] = k
	return nil
}

func (m *memStore) SetRetire(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if k, ok := m.keys[id]; ok {
		k.RetireAt = at
		m.keys[id] = k
	}
	return nil
}

func (m *memStore) DeleteKey(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	delete(m.keys, id)
	return nil
}

func (m *memStore) get(id string) (Key, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	return k, ok
}

func (m *memStore) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const (
	testIssuer   = "https://auth.example.com"
	testAudience = "https://api.example.com"
	testMFAAud   = testIssuer + "/v1/mfa"
)

// fixture is one service instance: keys, issuer and verifier on one clock.
type fixture struct {
	clock  *clock
	store  *memStore
	keys   *KeySet
	issuer *Issuer
	verify *Verifier
}

func newFixture(t testing.TB, alg string) *fixture {
	t.Helper()
	f := &fixture{clock: newClock(), store: newMemStore()}
	f.keys = NewKeySet(f.store, KeySetOptions{Alg: alg, Now: f.clock.Now})
	if err := f.keys.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	f.issuer = NewIssuer(f.keys, IssuerConfig{
		Issuer: testIssuer, Audiences: []string{testAudience}, ClientID: "spa", Now: f.clock.Now,
	})
	f.verify = NewVerifier(f.keys, VerifierConfig{
		Issuer: testIssuer, Audiences: []string{"other", testAudience}, Now: f.clock.Now,
	})
	return f
}

// access issues a typical access token.
func (f *fixture) access(t testing.TB) (string, AccessClaims) {
	t.Helper()
	tok, c, err := f.issuer.Access("user-1", "sess-1", f.clock.Now().Add(-time.Minute), "aal2", []string{"pwd", "otp", "mfa"})
	if err != nil {
		t.Fatalf("Access: %v", err)
	}
	return tok, c
}

// pending issues a typical step-up mfa_pending token.
func (f *fixture) pending(t testing.TB) (string, PendingClaims) {
	t.Helper()
	tok, c, err := f.issuer.Pending(PendingClaims{Subject: "user-1", AMR: []string{"pwd"}, Session: "sess-1", ACR: "aal3", MaxAge: 300})
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	return tok, c
}

func (f *fixture) signing(t testing.TB) Key {
	t.Helper()
	k, err := f.keys.Signing()
	if err != nil {
		t.Fatalf("Signing: %v", err)
	}
	return k
}
