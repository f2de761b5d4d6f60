package tokens

import (
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// KeySetOptions configures a KeySet. Zero values take the defaults named on
// each field.
type KeySetOptions struct {
	// Alg is the algorithm of newly generated keys: ES256 (default) or
	// EdDSA. Changing it rotates promptly: the next Refresh generates a key
	// of the new algorithm, published Publish ahead of signing; keys of the
	// old algorithm keep verifying until they retire.
	Alg string
	// Rotation is how long a key signs before its successor takes over
	// (default 30 days).
	Rotation time.Duration
	// Publish is how long a new key is published in the JWKS before it
	// signs (default 10 minutes), so that every instance and every resource
	// server's JWKS cache knows it first. It must be shorter than Rotation,
	// and Run's interval should be well below it.
	Publish time.Duration
	// Retain is how long a superseded key stays published after its
	// successor starts signing (default 1 hour). It must be at least the
	// longest token lifetime plus verifier leeway and clock skew; NewIssuer
	// checks the lifetimes.
	Retain time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Rand is the randomness for key generation (default crypto/rand.Reader).
	Rand io.Reader
	// OnError, if set, receives the error of each failed Refresh done by Run,
	// so the caller can log it. Run itself logs nothing.
	OnError func(error)
}

// withDefaults returns o with zero values replaced by defaults.
func (o KeySetOptions) withDefaults() KeySetOptions {
	if o.Alg == "" {
		o.Alg = ES256
	}
	if o.Rotation == 0 {
		o.Rotation = 30 * 24 * time.Hour
	}
	if o.Publish == 0 {
		o.Publish = 10 * time.Minute
	}
	if o.Retain == 0 {
		o.Retain = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	return o
}

// Validate reports whether o (after defaults) is usable: a supported Alg,
// positive durations, and Publish shorter than Rotation.
func (o KeySetOptions) Validate() error {
	o = o.withDefaults()
	switch {
	case o.Alg != ES256 && o.Alg != EdDSA:
		return fmt.Errorf("tokens: key algorithm %q: want %s or %s", o.Alg, ES256, EdDSA)
	case o.Rotation < 0 || o.Publish < 0 || o.Retain < 0:
		return errors.New("tokens: key rotation, publish and retain durations must not be negative")
	case o.Publish >= o.Rotation:
		return fmt.Errorf("tokens: key publish lead time %v must be shorter than rotation %v", o.Publish, o.Rotation)
	}
	return nil
}

// KeySet holds the signing keys in memory, keeps them in step with a
// KeyStore, and publishes their public halves as a JWKS.
//
// Lifecycle of a key: generated and published (CreatedAt), signing from
// ActiveAt, superseded when a newer key becomes active, still published for
// Retain after that, then deleted. Several instances may share one store and
// race to create a key; both keys are then published, and every instance
// signs with the same one: the newest whose ActiveAt has come, ties broken by
// the greater ID.
//
// Signing, Public and JWKS read an immutable snapshot; they never touch the
// store and are safe for concurrent use.
type KeySet struct {
	store KeyStore
	opts  KeySetOptions

	mu    sync.Mutex // serialises Refresh
	state atomic.Pointer[keyState]

	missMu     sync.Mutex // serialises reloads for unknown kids
	lastReload time.Time  // wall clock of the last such reload
}

// missInterval bounds how often an unknown kid makes Public reload the keys
// from the store: another instance's new key is found within one round
// trip, and a flood of made-up kids costs at most one load per interval.
const missInterval = time.Second

// keyState is one immutable snapshot of the published keys.
type keyState struct {
	keys   []Key                // newest first: ActiveAt, then ID, descending
	public map[string]publicKey // by kid
	jwks   []byte
}

type publicKey struct {
	key      crypto.PublicKey
	alg      string
	retireAt time.Time
}

var emptyJWKS = []byte(`{"keys":[]}`)

// NewKeySet returns a key set backed by store. It holds no key until the
// first successful Refresh. It panics if opts is invalid (see
// KeySetOptions.Validate); check configuration with Validate first.
func NewKeySet(store KeyStore, opts KeySetOptions) *KeySet {
	if err := opts.Validate(); err != nil {
		panic(err)
	}
	s := &KeySet{store: store, opts: opts.withDefaults()}
	s.state.Store(&keyState{public: map[string]publicKey{}, jwks: emptyJWKS})
	return s
}

// Refresh loads the keys from the store and brings them up to date: it
// deletes keys whose RetireAt has passed; generates a key that signs at once
// if none can sign now; generates the next key, active Publish from now, when
// the newest key has signed for Rotation-Publish (or has another algorithm
// than Alg) and no newer key is pending; and sets each superseded key's
// RetireAt to its successor's ActiveAt plus Retain. Keys the package cannot
// use (unknown algorithm, wrong private key type) are ignored, not deleted.
//
// It returns the store's error, wrapped, if any store call fails; the keys in
// memory are then left as they were, except that a key this call added to
// the store is published.
func (s *KeySet) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	now := s.opts.Now()
	keys, err := s.load(ctx, now)
	if err != nil {
		return err
	}
	if activeAt, ok := s.nextKey(keys, now); ok {
		k, err := s.newKey(now, activeAt)
		if err != nil {
			return err
		}
		if err := s.store.AddKey(ctx, k); err != nil {
			return fmt.Errorf("tokens: add key: %w", err)
		}
		keys = append(keys, k)
		// Read again, so a key another instance added meanwhile is seen too
		// and every instance settles on the same signing key.
		again, err := s.load(ctx, now)
		if err != nil {
			s.publish(keys)
			return err
		}
		if !slices.ContainsFunc(again, func(x Key) bool { return x.ID == k.ID }) {
			again = append(again, k) // store not yet showing its own write
		}
		keys = again
	}
	if err := s.retire(ctx, keys); err != nil {
		return err
	}
	s.publish(keys)
	return nil
}

// load lists the store, deletes retired keys and returns the usable rest in
// ascending order (ActiveAt, then ID).
func (s *KeySet) load(ctx context.Context, now time.Time) ([]Key, error) {
	all, err := s.store.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("tokens: load keys: %w", err)
	}
	keys := make([]Key, 0, len(all))
	for _, k := range all {
		if !k.RetireAt.IsZero() && !now.Before(k.RetireAt) {
			if err := s.store.DeleteKey(ctx, k.ID); err != nil {
				return nil, fmt.Errorf("tokens: delete retired key %s: %w", k.ID, err)
			}
			continue
		}
		if _, ok := usablePublic(k); ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, compareKeys)
	return keys, nil
}

// compareKeys orders keys by ActiveAt, then ID.
func compareKeys(a, b Key) int {
	if c := a.ActiveAt.Compare(b.ActiveAt); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// nextKey decides whether a key must be generated, and when it activates.
// keys is in ascending order.
func (s *KeySet) nextKey(keys []Key, now time.Time) (time.Time, bool) {
	if len(keys) == 0 || keys[0].ActiveAt.After(now) {
		return now, true // nothing can sign now
	}
	newest := keys[len(keys)-1]
	if newest.ActiveAt.After(now) {
		return time.Time{}, false // a successor is already pending
	}
	if newest.Alg != s.opts.Alg || now.Sub(newest.ActiveAt) >= s.opts.Rotation-s.opts.Publish {
		return now.Add(s.opts.Publish), true
	}
	return time.Time{}, false
}

// newKey generates a key of the configured algorithm; its kid is the RFC 7638
// thumbprint of its public key. Times are whole seconds, which every store
// keeps exactly.
func (s *KeySet) newKey(now, activeAt time.Time) (Key, error) {
	priv, err := generateSigner(s.opts.Alg, s.opts.Rand)
	if err != nil {
		return Key{}, fmt.Errorf("tokens: generate key: %w", err)
	}
	kid, err := thumbprint(priv.Public())
	if err != nil {
		return Key{}, err
	}
	return Key{
		ID:        kid,
		Alg:       s.opts.Alg,
		Private:   priv,
		CreatedAt: now.Truncate(time.Second),
		ActiveAt:  activeAt.Truncate(time.Second),
	}, nil
}

// retire sets RetireAt of every key that has a successor to the successor's
// ActiveAt plus Retain. It only ever moves RetireAt later (two instances that
// saw different successors agree on the safer, later time). keys is in
// ascending order and is updated in place.
func (s *KeySet) retire(ctx context.Context, keys []Key) error {
	for i := 0; i+1 < len(keys); i++ {
		want := keys[i+1].ActiveAt.Add(s.opts.Retain)
		if !keys[i].RetireAt.IsZero() && want.Sub(keys[i].RetireAt) <= time.Second {
			continue
		}
		if err := s.store.SetRetire(ctx, keys[i].ID, want); err != nil {
			return fmt.Errorf("tokens: retire key %s: %w", keys[i].ID, err)
		}
		keys[i].RetireAt = want
	}
	return nil
}

// publish swaps in a snapshot of keys (ascending order, all usable).
func (s *KeySet) publish(keys []Key) {
	st := &keyState{
		keys:   make([]Key, 0, len(keys)),
		public: make(map[string]publicKey, len(keys)),
	}
	pubs := make([]crypto.PublicKey, 0, len(keys))
	for i := len(keys) - 1; i >= 0; i-- {
		k := keys[i]
		pub, ok := usablePublic(k)
		if !ok {
			continue
		}
		if _, dup := st.public[k.ID]; dup {
			continue
		}
		st.keys = append(st.keys, k)
		pubs = append(pubs, pub)
		st.public[k.ID] = publicKey{key: pub, alg: k.Alg, retireAt: k.RetireAt}
	}
	jwks, err := encodeJWKS(st.keys, pubs)
	if err != nil {
		// Unreachable: usablePublic admits only keys publicJWK encodes.
		jwks = s.state.Load().jwks
	}
	st.jwks = jwks
	s.state.Store(st)
}

// Run calls Refresh every interval until ctx is done, then returns. A
// failed Refresh keeps the keys in memory and is reported to
// KeySetOptions.OnError, if set; Run logs nothing. It does not refresh at
// once: call Refresh before Run to fail fast at start. An interval ≤ 0 means
// the smaller of one minute and Publish/2.
func (s *KeySet) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = min(time.Minute, s.opts.Publish/2)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Refresh(ctx); err != nil && s.opts.OnError != nil && ctx.Err() == nil {
				s.opts.OnError(err)
			}
		}
	}
}

// Signing returns the key to sign with now: the newest key whose ActiveAt
// has come and whose RetireAt has not, ties broken by the greater ID. It
// returns ErrNoKey if there is none (no successful Refresh yet).
func (s *KeySet) Signing() (Key, error) {
	st := s.state.Load()
	now := s.opts.Now()
	for i := range st.keys {
		k := &st.keys[i]
		if !k.ActiveAt.After(now) && (k.RetireAt.IsZero() || now.Before(k.RetireAt)) {
			return *k, nil
		}
	}
	return Key{}, ErrNoKey
}

// Public returns the public key published under kid and the one algorithm
// it verifies, or ok == false if kid is unknown or its key has retired. It
// implements KeyResolver.
//
// An unknown kid makes it reload the keys from the store, at most once per
// missInterval (wall clock) for the whole set: instances that started
// together each create a first key, and a token signed with another
// instance's key must verify here without waiting for the next Refresh.
func (s *KeySet) Public(kid string) (key crypto.PublicKey, alg string, ok bool) {
	if p, ok := s.lookup(kid); ok {
		return p.key, p.alg, true
	}
	s.missMu.Lock()
	defer s.missMu.Unlock()
	if _, ok := s.lookup(kid); !ok { // another caller's reload may have found it
		s.reloadLocked()
	}
	if p, ok := s.lookup(kid); ok {
		return p.key, p.alg, true
	}
	return nil, "", false
}

// Reload reads the keys from the store again, at most once per missInterval
// (wall clock), without generating or retiring any: the JWKS endpoint calls
// it so that it also lists keys other instances created since the last
// Refresh. A failed load keeps the keys in memory.
func (s *KeySet) Reload() {
	s.missMu.Lock()
	defer s.missMu.Unlock()
	s.reloadLocked()
}

func (s *KeySet) reloadLocked() {
	if time.Since(s.lastReload) < missInterval {
		return
	}
	s.lastReload = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if keys, err := s.load(ctx, s.opts.Now()); err == nil {
		s.publish(keys)
	}
}

func (s *KeySet) lookup(kid string) (publicKey, bool) {
	p, ok := s.state.Load().public[kid]
	if !ok || (!p.retireAt.IsZero() && !s.opts.Now().Before(p.retireAt)) {
		return publicKey{}, false
	}
	return p, true
}

// JWKS returns the RFC 7517 JSON Web Key Set of the published keys, newest
// first, with public members only (kty, crv, x, y for EC; kty, crv, x for
// OKP) plus kid, use "sig" and alg. The bytes are built at Refresh and
// shared: callers must not modify them. Before the first Refresh it is
// {"keys":[]}.
func (s *KeySet) JWKS() []byte {
	return s.state.Load().jwks
}
