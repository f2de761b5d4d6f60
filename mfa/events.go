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
	EventAdminCreated      = "account.created"
	EventAdminDisabled     = "account.disabled"
	EventAdminEnabled      = "account.enabled"
	// EventAccountDeleted is the last event of an account; its events are
	// kept for the configured retention, under the account's random id
	// only (no event holds a username).
	EventAccountDeleted = "account.deleted"
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
	// Actor names who acted when it was not the user: an administrator
	// ("admin client ops"). Empty for the user's own actions.
	Actor string
	// Seq is the event's place in the feed of every event (EventStore.Feed),
	// given by the store when it is written; 0 before that.
	Seq int64
}

// EventQuery selects a page of the feed of every event: those after the
// cursor After (a Seq), optionally of one user, of one type, at or after
// Since, at most Limit.
type EventQuery struct {
	After  int64
	UserID string
	Type   string
	Since  time.Time
	Limit  int
	// SettledBefore is the reader's now less the time after which a
	// sequence number that was given out but never written is known never
	// to be written (see store.Events.Feed).
	SettledBefore time.Time
}

// EventStore keeps events. It is implemented by store.
type EventStore interface {
	// AddEvents stores events; storing one that exists already (a retry) is
	// not an error.
	AddEvents(ctx context.Context, es []Event) error
	// Events returns a user's newest events first, at most limit.
	Events(ctx context.Context, userID string, limit int) ([]Event, error)
	// Last returns the user's newest event of type typ, or nil.
	Last(ctx context.Context, userID, typ string) (*Event, error)
	// Feed returns the events of q in sequence order and the cursor to
	// continue from: every event is in the feed exactly once, and a page
	// never passes a sequence number that may still be written, so a
	// reader following the cursor misses nothing written late.
	Feed(ctx context.Context, q EventQuery) (events []Event, next int64, err error)
}
