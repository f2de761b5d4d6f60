package mfa

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// TOTP enrolls and verifies RFC 6238 time-based one-time passwords.
//
// Unlike a stateless check (Kratos), every accepted time step is claimed in
// Steps, so a code is accepted at most once per factor, and a step older than
// one already accepted is refused: steps never go backwards.
type TOTP struct {
	Issuer     string // shown by authenticator apps
	Digits     int    // 6 or 8
	Period     uint   // seconds, 30
	Skew       uint   // steps accepted either side of now, 1
	SecretSize int    // bytes, ≥ 20 (160 bits)
	Steps      Claims // accepted time steps
	Now        func() time.Time
	Rand       io.Reader
}

// NewTOTP returns a TOTP with the usual parameters: 6 digits, 30 s, ±1 step,
// 160-bit secrets, SHA-1 (what every authenticator app supports).
func NewTOTP(issuer string, steps Claims) *TOTP {
	return &TOTP{Issuer: issuer, Digits: 6, Period: 30, Skew: 1, SecretSize: 20,
		Steps: steps, Now: time.Now, Rand: rand.Reader}
}

// Enrollment is what a user needs to set up an authenticator app.
type Enrollment struct {
	Secret []byte
	Base32 string
	URI    string // otpauth://totp/…
	Key    *otp.Key
}

// Generate makes a new random seed for account and its otpauth:// URI.
func (t *TOTP) Generate(account string) (Enrollment, error) {
	secret := make([]byte, max(t.SecretSize, 20))
	if _, err := io.ReadFull(t.Rand, secret); err != nil {
		return Enrollment{}, fmt.Errorf("mfa: totp secret: %w", err)
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      t.Issuer,
		AccountName: account,
		Period:      t.Period,
		Secret:      secret,
		Digits:      otp.Digits(t.Digits),
		Algorithm:   otp.AlgorithmSHA1,
		Rand:        t.Rand,
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("mfa: totp key: %w", err)
	}
	return Enrollment{Secret: secret, Base32: b32.EncodeToString(secret), URI: key.URL(), Key: key}, nil
}

// CheckFormat reports whether code is exactly Digits ASCII digits. It
// returns ErrMalformedCode otherwise.
func (t *TOTP) CheckFormat(code string) error {
	if len(code) != t.Digits {
		return ErrMalformedCode
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return ErrMalformedCode
		}
	}
	return nil
}

// Verify checks code against factor f and, if it matches a time step in the
// window, claims that step. It returns the accepted step, or ErrBadCode when
// the code matches no step, its step was accepted before, or a later step was
// accepted already (RFC 6238 §5.2: "the verifier MUST NOT accept the second
// attempt of the OTP after the successful validation"). The caller checks the
// format first (CheckFormat) and holds an attempt slot.
func (t *TOTP) Verify(ctx context.Context, f *Factor, code string) (int64, error) {
	if err := t.CheckFormat(code); err != nil {
		return 0, err
	}
	now := t.Now()
	cur := now.Unix() / int64(t.Period)
	secret := b32.EncodeToString(f.Secret)
	opts := totp.ValidateOpts{Period: t.Period, Digits: otp.Digits(t.Digits), Algorithm: otp.AlgorithmSHA1}
	matched := int64(-1)
	// Walk the whole window without stopping early: the time taken does not
	// say which step matched.
	for s := cur - int64(t.Skew); s <= cur+int64(t.Skew); s++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*int64(t.Period), 0), opts)
		if err != nil {
			return 0, fmt.Errorf("mfa: totp generate: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && matched < 0 {
			matched = s
		}
	}
	if matched < 0 {
		return 0, ErrBadCode
	}
	if err := t.claim(ctx, f.ID, matched, cur); err != nil {
		return 0, err
	}
	return matched, nil
}

// claim inserts the step, then refuses it if a later step of the window was
// accepted already. Insert-then-check makes concurrent acceptance of an older
// step after a newer one impossible: of two racing steps, the later one
// always sees nothing greater and the earlier one either finished first or
// sees the later one.
func (t *TOTP) claim(ctx context.Context, factor string, step, cur int64) error {
	// Keep the record until the step has left every window it can be in.
	expires := time.Unix((step+int64(t.Skew)+2)*int64(t.Period), 0)
	if err := t.Steps.Claim(ctx, StepID(factor, step), expires); err != nil {
		if errors.Is(err, ErrUsed) {
			return ErrBadCode
		}
		return err
	}
	var later []string
	for s := step + 1; s <= cur+int64(t.Skew); s++ {
		later = append(later, StepID(factor, s))
	}
	if len(later) == 0 {
		return nil
	}
	used, err := t.Steps.AnyClaimed(ctx, later...)
	if err != nil {
		return err
	}
	if used {
		return ErrBadCode
	}
	return nil
}

// StepID is the claim key of one accepted time step of one factor.
func StepID(factor string, step int64) string {
	return factor + "|" + strconv.FormatInt(step, 10)
}
