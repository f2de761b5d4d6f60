package mfa

import (
	"context"
	"time"
)

// User is an account: a canonical username, a password hash and the factors
// enrolled for the second step.
type User struct {
	ID           string
	Username     string // canonical form, see CanonicalUsername
	PasswordHash string // PHC string, see Password
	Factors      []Factor
	// RecoveryCodes are the hashes of the current set; see Recovery.
	RecoveryCodes []string
	CreatedAt     time.Time
	// Rev guards updates: UpdateUser succeeds only if the stored revision is
	// still Rev, and then increments it.
	Rev int64
}

// Kind names a kind of second factor.
type Kind string

// The kinds of second factor.
const (
	KindTOTP     Kind = "totp"
	KindWebAuthn Kind = "webauthn"
)

// Factor is one enrolled authenticator. Secret material is plaintext here;
// the store encrypts it at rest.
type Factor struct {
	ID         string
	Kind       Kind
	Name       string
	Confirmed  bool
	CreatedAt  time.Time
	LastUsedAt time.Time // zero until first use

	// TOTP: the shared seed (raw bytes, not base32).
	Secret []byte
	// WebAuthn: the credential record.
	Credential *Credential
}

// Factor returns the user's factor with the given id, or nil.
func (u *User) Factor(id string) *Factor {
	for i := range u.Factors {
		if u.Factors[i].ID == id {
			return &u.Factors[i]
		}
	}
	return nil
}

// Confirmed returns the confirmed factors, optionally only of the given kind.
func (u *User) Confirmed(kind Kind) []Factor {
	var out []Factor
	for _, f := range u.Factors {
		if f.Confirmed && (kind == "" || f.Kind == kind) {
			out = append(out, f)
		}
	}
	return out
}

// UserStore persists users. It is implemented by store.
type UserStore interface {
	// CreateUser inserts u. Returns ErrUsernameTaken if the canonical
	// username exists already.
	CreateUser(ctx context.Context, u *User) error
	// UserByName returns the user with that canonical username, or ErrNotFound.
	UserByName(ctx context.Context, username string) (*User, error)
	// User returns the user with that id, or ErrNotFound.
	User(ctx context.Context, id string) (*User, error)
	// UpdateUser writes u if the stored revision is still u.Rev, and
	// increments u.Rev. Returns ErrConflict if another write came first and
	// ErrNotFound if the user is gone.
	UpdateUser(ctx context.Context, u *User) error
}
