package mfa

import (
	"errors"
	"strconv"
	"time"
)

// Sentinel errors. api maps them to problem codes; they never carry secrets.
var (
	ErrNotFound          = errors.New("mfa: not found")
	ErrUsernameTaken     = errors.New("mfa: username taken")
	ErrTooManyFactors    = errors.New("mfa: too many factors")
	ErrNotFirst          = errors.New("mfa: the user has a confirmed factor already")
	ErrLastFactor        = errors.New("mfa: the last confirmed factor")
	ErrUsed              = errors.New("mfa: already used")
	ErrEnded             = errors.New("mfa: ended with its account") // an mfa_token, by PendingStore.EndFor
	ErrInvalidUsername   = errors.New("mfa: invalid username")
	ErrInvalidPassword   = errors.New("mfa: password does not meet the rules")
	ErrBadCredentials    = errors.New("mfa: invalid credentials")
	ErrBadCode           = errors.New("mfa: code not accepted")
	ErrMalformedCode     = errors.New("mfa: malformed code")
	ErrMalformedRecovery = errors.New("mfa: malformed recovery code")
	ErrBudgetSpent       = errors.New("mfa: attempt budget spent")
	ErrNotEnrolled       = errors.New("mfa: no such factor")
	ErrAlreadyConfirmed  = errors.New("mfa: factor already confirmed")
	ErrBusy              = errors.New("mfa: too many concurrent password hashes")
)

// ThrottledError says an account budget is in backoff or locked. RetryAfter
// is zero when the lock does not lift by itself.
type ThrottledError struct {
	RetryAfter time.Duration
	Locked     bool
}

func (e *ThrottledError) Error() string {
	if e.Locked {
		return "mfa: account locked"
	}
	return "mfa: throttled for " + strconv.Itoa(int(e.RetryAfter.Seconds())) + "s"
}
