package mfa

import (
	"context"
	"time"
)

// Claims is a set of single-use keys. A claim is an insert under a unique
// key, the one store operation that is race-safe on every supported server
// (DESIGN.md, "single use is a unique insert"). It is implemented by store.
type Claims interface {
	// Claim records id once. It returns ErrUsed if id is claimed already.
	// The record may be swept after expires.
	Claim(ctx context.Context, id string, expires time.Time) error
	// AnyClaimed reports whether any of ids is claimed.
	AnyClaimed(ctx context.Context, ids ...string) (bool, error)
	// CountClaimed counts how many of ids are claimed.
	CountClaimed(ctx context.Context, ids ...string) (int, error)
}
