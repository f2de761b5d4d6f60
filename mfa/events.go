package mfa

import (
	"context"
	"time"
)

// Security event types.
const (
	EventLoginSuccess  = "login.success"
	EventLoginFailure  = "login.failure"
	EventMFAFailure    = "mfa.failure"
	EventFactorAdded   = "factor.added"
	EventFactorRemoved = "factor.removed"
	// EventLastFactorRemoved follows EventFactorRemoved when no second
	// factor is left: the account is back to the password alone.
	EventLastFactorRemoved = "factor.last_removed"
	EventStepUp            = "session.step_up"
	EventRecoveryUsed      = "recovery_code.used"
	EventRecoveryNew       = "recovery_codes.replaced"
	EventRefreshReuse      = "refresh_token.reused"
	EventLockout           = "account.throttled"
	EventLogout            = "session.logout"
	EventSessionRevoked    = "session.revoked"
	EventPasswordChanged   = "password.changed"
	EventAdminReset        = "account.reset"
	EventAdminUnlock       = "account.unlocked"
	// Remembered devices (a DPoP key that skips the second factor).
	EventDeviceRemembered = "device.remembered"
	EventDeviceForgotten  = "device.forgotten"
)

// Event is one security-relevant thing that happened to an account. It
// never holds a secret: no password, code, token or seed.
type Event struct {
	ID        string
	UserID    string
	SessionID string
	Type      string
	Detail    string // e.g. the factor kind or id; never a secret
	At        time.Time
	IP        string
	UserAgent string
}

// EventStore keeps events. It is implemented by store.
type EventStore interface {
	// AddEvents stores events; storing one that exists already (a retry) is
	// not an error.
	AddEvents(ctx context.Context, es []Event) error
	// Events returns a user's newest events first, at most limit.
	Events(ctx context.Context, userID string, limit int) ([]Event, error)
}
