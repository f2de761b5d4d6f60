package flows

import (
	"errors"
	"strconv"
	"time"
)

// Errors of the flows, beside mfa's and tokens' sentinels. api maps each to
// one problem (its error table); none carries a secret.
var (
	// The presented mfa_token.
	ErrPendingUsed  = errors.New("flows: the mfa_token has been used")
	ErrPendingSpent = errors.New("flows: the mfa_token has no attempts left")
	ErrPendingUser  = errors.New("flows: the mfa_token's user is gone")
	ErrPendingBad   = errors.New("flows: the mfa_token is invalid or expired")
	// errPendingUnknown joins ErrPendingBad for a token no login issued:
	// its signature is valid, but the store has no record of it.
	errPendingUnknown = errors.New("flows: the mfa_token names no pending login")
	// The presented access token.
	ErrAccessBad     = errors.New("flows: the access token is invalid or expired")
	ErrSessionGone   = errors.New("flows: the session has ended")
	ErrStepUpSession = errors.New("flows: the session being stepped up has ended")
	// Levels.
	ErrFactorCannotReach = errors.New("flows: that factor cannot reach the requested level")
	ErrNoFactorReaches   = errors.New("flows: no enrolled factor can reach the requested level")
	ErrPasswordRequired  = errors.New("flows: the password is needed again")
	// Something in the body of a request with a valid access token was
	// wrong (not the token itself).
	ErrCodeRejected         = errors.New("flows: the code was not accepted")
	ErrPasswordRejected     = errors.New("flows: the password is wrong")
	ErrRegistrationRejected = errors.New("flows: the security key or passkey was not accepted")
	// Changes.
	ErrLastFactor   = errors.New("flows: it is the last second factor")
	ErrCredTaken    = errors.New("flows: the credential is registered already")
	ErrNoFactorYet  = errors.New("flows: recovery codes need a second factor first")
	ErrSignupClosed = errors.New("flows: sign-up is closed")
	// ErrAccountDisabled: an administrator disabled the account. Said only
	// to whoever proved to be the user (the right password, a passkey, an
	// mfa_token), so it tells nobody else the name exists.
	ErrAccountDisabled = errors.New("flows: the account is disabled")
	// The admin API.
	ErrAdminAuth      = errors.New("flows: admin client authentication failed")
	ErrReadOnlyClient = errors.New("flows: the admin client is read-only")
	ErrBadCursor      = errors.New("flows: the cursor is not one this list gave")
	ErrBadLimit       = errors.New("flows: the page size is out of range")
)

// InsufficientError says the caller's session does not meet what a change
// requires (RFC 9470): a level reached within MaxAge.
type InsufficientError struct {
	ACR    string
	MaxAge time.Duration
}

func (e *InsufficientError) Error() string {
	return "flows: needs " + e.ACR + " within " + strconv.Itoa(int(e.MaxAge.Seconds())) + "s"
}
