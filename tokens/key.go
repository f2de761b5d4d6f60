package tokens

import (
	"context"
	"crypto"
	"time"
)

// Signing algorithms this service can sign with. The verifier pins each key
// id to exactly one of them.
const (
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// Key is one signing key with its lifecycle. A key is published in the JWKS
// from CreatedAt, signs from ActiveAt, and is deleted after RetireAt (by then
// every token it signed has expired).
type Key struct {
	ID        string // kid
	Alg       string // ES256 or EdDSA
	Private   crypto.Signer
	CreatedAt time.Time
	ActiveAt  time.Time
	RetireAt  time.Time // zero while the key is the newest
}

// KeyStore persists signing keys. Implementations encrypt the private key at
// rest. It is declared here, by its consumer, and implemented by store.
type KeyStore interface {
	// Keys returns every stored key, in no particular order.
	Keys(ctx context.Context) ([]Key, error)
	// AddKey inserts a new key; its ID is unique.
	AddKey(ctx context.Context, k Key) error
	// SetRetire records when a key stops being published.
	SetRetire(ctx context.Context, id string, at time.Time) error
	// DeleteKey removes a retired key. Deleting a missing key is not an error.
	DeleteKey(ctx context.Context, id string) error
}
