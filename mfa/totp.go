package mfa

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// TOTP enrolls and verifies RFC 6238 time-based one-time passwords.
//
// Unlike a stateless check (Kratos), Match only says which time step a code
// is for; the caller accepts it with UserStore.UseStep, an atomic update that
// takes a step only if it is later than the factor's last accepted one, so a
// code is accepted at most once per factor and steps never go backwards.
type TOTP struct {
	Issuer     string // shown by authenticator apps
	Digits     int    // 6 or 8
	Period     uint   // seconds, 30
	Skew       uint   // steps accepted either side of now, 1
	SecretSize int    // bytes, ≥ 20 (160 bits)
	Now        func() time.Time
	Rand       io.Reader
}

// NewTOTP returns a TOTP with the usual parameters: 6 digits, 30 s, ±1 step,
// 160-bit secrets, SHA-1 (what every authenticator app supports).
func NewTOTP(issuer string) *TOTP {
	return &TOTP{Issuer: issuer, Digits: 6, Period: 30, Skew: 1, SecretSize: 20,
		Now: time.Now, Rand: rand.Reader}
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

// Match returns the time step of the window around now whose code is code
// for factor f, or ErrBadCode. It does not accept the step: the caller does,
// with UserStore.UseStep, which refuses a step that is not later than the
// last one accepted (RFC 6238 §5.2: "the verifier MUST NOT accept the second
// attempt of the OTP after the successful validation"). The caller checks
// the format first (CheckFormat) and holds an attempt.
func (t *TOTP) Match(f *Factor, code string) (int64, error) {
	if err := t.CheckFormat(code); err != nil {
		return 0, err
	}
	cur := t.Now().Unix() / int64(t.Period)
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
	return matched, nil
}

// MatchAny returns the first confirmed TOTP factor of u whose code is code,
// and its step. Every factor is tried, so the time taken does not say which.
func (t *TOTP) MatchAny(u *User, code string) (*Factor, int64, error) {
	var (
		found *Factor
		step  int64
	)
	for i := range u.Factors {
		f := &u.Factors[i]
		if !f.Confirmed || f.Kind != KindTOTP {
			continue
		}
		s, err := t.Match(f, code)
		if err == nil && found == nil {
			found, step = f, s
		} else if err != nil && !errors.Is(err, ErrBadCode) {
			return nil, 0, err
		}
	}
	if found == nil {
		return nil, 0, ErrBadCode
	}
	return found, step, nil
}
