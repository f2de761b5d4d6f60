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
	// Attempts is the account's second-factor budget: failures since the
	// last success (see UserStore.SpendAttempt).
	Attempts BudgetState
	// PasswordFailures counts consecutive wrong passwords on the account,
	// from every address (the NIST cap; see UserStore.CountPasswordFailure).
	PasswordFailures BudgetState
	// Disabled is set by an administrator: the user cannot sign in by any
	// path until enabled again.
	Disabled bool
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
	// AddedBy is the session that enrolled the factor.
	AddedBy string
	// LastStep is the last accepted TOTP time step; a code is accepted only
	// for a later step (RFC 6238 §5.2), so each is accepted once.
	LastStep int64

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
//
// Every change is an atomic update of the fields it touches, conditional on
// what it depends on (the factor still exists, the step is later, the
// counter grew), so changes to different parts of a user never conflict and
// a removal is never undone by a concurrent write.
type UserStore interface {
	// CreateUser inserts u. Returns ErrUsernameTaken if the canonical
	// username exists already.
	CreateUser(ctx context.Context, u *User) error
	// UserByName returns the user with that canonical username, or ErrNotFound.
	UserByName(ctx context.Context, username string) (*User, error)
	// User returns the user with that id, or ErrNotFound.
	User(ctx context.Context, id string) (*User, error)
	// SpendAttempt counts a second-factor attempt on the user at now if one
	// of gates passes for the user's Attempts, and returns the user after
	// it with ok true; otherwise it counts nothing and returns the user
	// with ok false. ErrNotFound if the user is gone.
	SpendAttempt(ctx context.Context, id string, gates []Gate, now time.Time) (u *User, ok bool, err error)
	// ForgiveAttempts sets the user's second-factor failure count to zero.
	ForgiveAttempts(ctx context.Context, id string) error
	// CountPasswordFailure adds a wrong password to the account's count and
	// returns the count after it. ErrNotFound if the user is gone.
	CountPasswordFailure(ctx context.Context, id string, now time.Time) (BudgetState, error)
	// ForgivePasswordFailures sets the account's wrong-password count to
	// zero.
	ForgivePasswordFailures(ctx context.Context, id string) error
	// SetPassword replaces the password hash. ErrNotFound.
	SetPassword(ctx context.Context, id, hash string) error
	// AddFactor adds f, first dropping enrollments that were never confirmed
	// and were created before staleBefore, if the user then has fewer than
	// max factors; ErrTooManyFactors otherwise, ErrNotFound if the user is
	// gone. With first, a confirmed f is added only while the user has no
	// confirmed factor (ErrNotFirst otherwise): the policy allowed it
	// because there was none.
	AddFactor(ctx context.Context, id string, f Factor, max int, staleBefore time.Time, first bool) error
	// RenameFactor renames a factor. ErrNotEnrolled if it does not exist.
	RenameFactor(ctx context.Context, id, factorID, name string) error
	// RemoveFactor deletes a factor and returns it and the user after the
	// removal; when no confirmed factor remains, the recovery codes go too.
	// Unless last is set, it refuses with ErrLastFactor to remove the last
	// confirmed factor — decided on the state it removes from, atomically.
	// ErrNotEnrolled if the factor does not exist.
	RemoveFactor(ctx context.Context, id, factorID string, last bool) (removed *Factor, after *User, err error)
	// UseStep accepts TOTP time step for the factor at now if it is later
	// than the factor's LastStep (and, with confirm, activates an
	// unconfirmed factor created after staleBefore), records the use and
	// forgives the account's failures — one atomic update. ErrBadCode if
	// the step is not later, ErrNotEnrolled if the factor is gone (or, with
	// confirm, is stale or confirmed already). With first (only with
	// confirm), the factor is activated only while the user has no
	// confirmed factor: ErrNotFirst otherwise.
	UseStep(ctx context.Context, id, factorID string, step int64, now time.Time, confirm bool, staleBefore time.Time, first bool) error
	// UseCredential records a WebAuthn assertion: the new signature counter
	// (accepted only if greater than the stored one, unless both are zero),
	// the backup state and the use, and forgives the account's failures —
	// one atomic update. ErrBadCode if the counter did not grow (a
	// concurrent assertion won), ErrNotEnrolled if the factor is gone.
	UseCredential(ctx context.Context, id, factorID string, count uint32, backupState bool, now time.Time) error
	// FlagCredential marks a credential as possibly cloned.
	FlagCredential(ctx context.Context, id, factorID string) error
	// SetRecoveryCodes replaces the recovery-code hashes.
	SetRecoveryCodes(ctx context.Context, id string, hashes []string) error
	// SetDisabled disables or enables the user. ErrNotFound.
	SetDisabled(ctx context.Context, id string, disabled bool) error
	// ListUsers returns at most limit users whose canonical username
	// begins with prefix and sorts after after (byte order), in username
	// order: a keyset page on the unique username index, so paging while
	// users are created never skips nor repeats a user.
	ListUsers(ctx context.Context, prefix, after string, limit int) ([]*User, error)
	// DeleteUser deletes the user with its factors and recovery codes, and
	// returns the user as it was deleted; its username is free again at
	// once. ErrNotFound if there is none.
	DeleteUser(ctx context.Context, id string) (*User, error)
}
