package mfa

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// KindRecovery names recovery codes where factor kinds are listed.
const KindRecovery = "recovery"

// RecoveryCount is how many codes a set has.
const RecoveryCount = 10

var recoveryEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Recovery generates and spends recovery codes. A code carries 120 random
// bits (24 base32 characters, shown in six groups of four); only an
// HMAC-SHA-256 of it under a server secret (Key, derived from the master
// key, so a stolen database alone cannot test guesses) and the user id is
// stored — at that entropy a slow hash adds nothing. Spending a code is a
// unique insert of its hash, so a code works once even when sent twice at
// the same instant to two instances. Codes made before (80 bits, 16
// characters, hashed under the user id alone) still work until replaced.
type Recovery struct {
	Used Claims
	Rand io.Reader
	// Key is the HMAC key of the stored hashes, at least 32 bytes. Without
	// one (tests) a fixed key is used.
	Key []byte
}

// NewRecovery returns a Recovery using crypto/rand.
func NewRecovery(used Claims) *Recovery { return &Recovery{Used: used, Rand: rand.Reader} }

// RecoveryBytes is the randomness of a code: 120 bits.
const RecoveryBytes = 15

// Generate returns a new set: the codes to show once and the hashes to
// store in User.RecoveryCodes.
func (r *Recovery) Generate(userID string) (codes, hashes []string, err error) {
	for range RecoveryCount {
		b := make([]byte, RecoveryBytes)
		if _, err := io.ReadFull(r.Rand, b); err != nil {
			return nil, nil, fmt.Errorf("mfa: recovery code: %w", err)
		}
		s := strings.ToLower(recoveryEncoding.EncodeToString(b))
		var groups []string
		for i := 0; i < len(s); i += 4 {
			groups = append(groups, s[i:i+4])
		}
		codes = append(codes, strings.Join(groups, "-"))
		hashes = append(hashes, r.hash(userID, s))
	}
	return codes, hashes, nil
}

// Use spends one of u's codes. It returns ErrMalformedRecovery for a string
// that cannot be a code, and ErrBadCode for a wrong or already used one.
// Hyphens, spaces and case are ignored. Every stored hash is compared, in
// constant time each, whichever matches.
func (r *Recovery) Use(ctx context.Context, u *User, code string) error {
	norm, err := NormalizeRecoveryCode(code)
	if err != nil {
		return err
	}
	h := r.hash(u.ID, norm)
	found := false
	for _, stored := range u.RecoveryCodes {
		if hmac.Equal([]byte(stored), []byte(h)) {
			found = true
		}
	}
	if !found {
		return ErrBadCode
	}
	err = r.Used.Claim(ctx, recoveryClaim(u.ID, h), time.Now().AddDate(100, 0, 0))
	if errors.Is(err, ErrUsed) {
		return ErrBadCode
	}
	return err
}

// NormalizeRecoveryCode returns the canonical form of a code as typed:
// hyphens, spaces and case are ignored. It returns ErrMalformedRecovery
// for a string that cannot be a code (24 characters, or 16 for a code made
// before codes grew to 120 bits).
func NormalizeRecoveryCode(code string) (string, error) {
	if len(code) > 64 {
		return "", ErrMalformedRecovery
	}
	norm := strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(code))
	if len(norm) != 24 && len(norm) != 16 {
		return "", ErrMalformedRecovery
	}
	if _, err := recoveryEncoding.DecodeString(strings.ToUpper(norm)); err != nil {
		return "", ErrMalformedRecovery
	}
	return norm, nil
}

// Remaining counts u's unused codes.
func (r *Recovery) Remaining(ctx context.Context, u *User) (int, error) {
	if len(u.RecoveryCodes) == 0 {
		return 0, nil
	}
	ids := make([]string, len(u.RecoveryCodes))
	for i, h := range u.RecoveryCodes {
		ids[i] = recoveryClaim(u.ID, h)
	}
	used, err := r.Used.CountClaimed(ctx, ids...)
	if err != nil {
		return 0, err
	}
	return len(ids) - used, nil
}

// testRecoveryKey is the key of a Recovery built without one (tests).
var testRecoveryKey = []byte("stepup test recovery-code key, not for production use")

// hash is the stored form of a normalized code: keyed by the server secret
// and the user for 24-character codes; 16-character codes (made before
// 120-bit codes) keep their old, user-keyed form so they still work.
func (r *Recovery) hash(userID, norm string) string {
	if len(norm) == 16 {
		m := hmac.New(sha256.New, []byte("stepup recovery code|"+userID))
		m.Write([]byte(norm))
		return hex.EncodeToString(m.Sum(nil))
	}
	key := r.Key
	if len(key) == 0 {
		key = testRecoveryKey
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("v2|" + userID + "|" + norm))
	return hex.EncodeToString(m.Sum(nil))
}

func recoveryClaim(userID, hash string) string { return "rec|" + userID + "|" + hash }
