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

// Recovery generates and spends recovery codes. A code carries 80 random
// bits (16 base32 characters, shown in four groups); only an HMAC-SHA-256
// of it, keyed by the user id, is stored — at that entropy a slow hash adds
// nothing. Spending a code is a unique insert of its hash, so a code works
// once even when sent twice at the same instant to two instances.
type Recovery struct {
	Used Claims
	Rand io.Reader
}

// NewRecovery returns a Recovery using crypto/rand.
func NewRecovery(used Claims) *Recovery { return &Recovery{Used: used, Rand: rand.Reader} }

// Generate returns a new set: the codes to show once and the hashes to
// store in User.RecoveryCodes.
func (r *Recovery) Generate(userID string) (codes, hashes []string, err error) {
	for range RecoveryCount {
		b := make([]byte, 10)
		if _, err := io.ReadFull(r.Rand, b); err != nil {
			return nil, nil, fmt.Errorf("mfa: recovery code: %w", err)
		}
		s := strings.ToLower(recoveryEncoding.EncodeToString(b))
		code := s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
		codes = append(codes, code)
		hashes = append(hashes, recoveryHash(userID, s))
	}
	return codes, hashes, nil
}

// Use spends one of u's codes. It returns ErrMalformedRecovery for a string
// that cannot be a code, and ErrBadCode for a wrong or already used one.
// Hyphens, spaces and case are ignored.
func (r *Recovery) Use(ctx context.Context, u *User, code string) error {
	norm, err := NormalizeRecoveryCode(code)
	if err != nil {
		return err
	}
	h := recoveryHash(u.ID, norm)
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
// for a string that cannot be a code.
func NormalizeRecoveryCode(code string) (string, error) {
	if len(code) > 64 {
		return "", ErrMalformedRecovery
	}
	norm := strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(code))
	if len(norm) != 16 {
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

func recoveryHash(userID, norm string) string {
	m := hmac.New(sha256.New, []byte("stepup recovery code|"+userID))
	m.Write([]byte(norm))
	return hex.EncodeToString(m.Sum(nil))
}

func recoveryClaim(userID, hash string) string { return "rec|" + userID + "|" + hash }
