package mfa

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"time"
)

// A remembered device is a DPoP key (RFC 9449) — for the built-in page a
// non-extractable WebCrypto key — that a user proved possession of when
// completing a real second factor and asked to remember. A later password
// sign-in with a proof of that key skips the second factor. There is no
// bearer "remember me" token: without the key the grant is worthless.

// Device is a grant for one key of one user.
type Device struct {
	ID         string    // DeviceID(UserID, JKT)
	UserID     string    //
	JKT        string    // RFC 7638 thumbprint of the DPoP key
	Name       string    // the user agent that asked, for the user's list
	CreatedAt  time.Time // when it was remembered (the last time)
	FactorAt   time.Time // when the real second factor that granted it was verified
	LastUsedAt time.Time // the last sign-in that used it; zero if none
	ExpiresAt  time.Time
}

// DeviceID names the grant of key jkt for user: a digest, so ids reveal
// nothing and one key has one grant per user.
func DeviceID(userID, jkt string) string {
	sum := sha256.Sum256([]byte(userID + "|" + jkt))
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

// DeviceStore keeps remembered devices. It is implemented by store.
type DeviceStore interface {
	// RememberDevice inserts d, or replaces the grant with its ID.
	RememberDevice(ctx context.Context, d *Device) error
	// Device returns the grant id if it has not expired at now, or
	// ErrNotFound.
	Device(ctx context.Context, id string, now time.Time) (*Device, error)
	// UseDevice records a sign-in with grant id at at.
	UseDevice(ctx context.Context, id string, at time.Time) error
	// Devices lists userID's grants live at now, newest first.
	Devices(ctx context.Context, userID string, now time.Time) ([]Device, error)
	// ForgetDevice deletes userID's grant id; ErrNotFound if there is none.
	ForgetDevice(ctx context.Context, userID, id string) error
	// ForgetDevices deletes every grant of userID.
	ForgetDevices(ctx context.Context, userID string) error
}

// RememberedDevice is what a password sign-in with a remembered device
// proves: the password now and possession of the device's key now — a
// non-exportable key is a cryptographic software authenticator (NIST SP
// 800-63B §5.1.7), so two factors: aal2, amr pwd, swk, mfa. Never aal3 (a
// software key is not a hardware one), and never more: the real second
// factor that granted the device is not claimed again (no otp, hwk or rec).
// Its auth_time is that real second factor's time, not now (FactorAt), so a
// max_age shorter than the time since then is not met and a step-up asks
// for a real factor again.
func (p Policy) RememberedDevice() Assurance { return p.Assess(AMRPassword, AMRSoftware) }
