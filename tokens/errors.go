package tokens

import (
	"errors"
	"fmt"
)

// Errors of issuing and verifying. Verification failures are always
// ErrInvalidToken (errors.Is), so callers can map every failure with one
// check; ErrExpired narrows it for a token that is otherwise well-formed and
// correctly signed, so an RFC 6750 error_description can say so. Neither
// carries a golang-jwt type in its chain that a caller would need to import.
var (
	// ErrInvalidToken means a token was refused: malformed, wrongly typed,
	// unknown key, bad signature, wrong issuer or audience, missing claims.
	ErrInvalidToken = errors.New("tokens: invalid token")

	// ErrExpired means the token's exp (plus leeway) has passed. It is also
	// ErrInvalidToken: errors.Is(ErrExpired, ErrInvalidToken) is true.
	ErrExpired error = &narrowError{msg: "tokens: token expired", parent: ErrInvalidToken}

	// ErrNoKey means the key set holds no key that can sign now (Refresh has
	// not succeeded yet).
	ErrNoKey = errors.New("tokens: no signing key")
)

// narrowError is a sentinel that is also its parent sentinel.
type narrowError struct {
	msg    string
	parent error
}

func (e *narrowError) Error() string { return e.msg }
func (e *narrowError) Unwrap() error { return e.parent }

// invalid returns an error that is ErrInvalidToken and says why, for logs.
// The reason is never meant for the client.
func invalid(reason string) error {
	return fmt.Errorf("%w: %s", ErrInvalidToken, reason)
}
