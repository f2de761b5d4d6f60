package mfa

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// NISTMaxFailures is the most consecutive failures NIST SP 800-63B §5.2.2
// allows on one account.
const NISTMaxFailures = 100

// BudgetStore holds attempt slots and, per scope, a hint of where to look.
// It is implemented by store.
type BudgetStore interface {
	Claims
	// Hint returns the scope's next-slot hint and the slot of its last
	// success; zeros when the scope is new.
	Hint(ctx context.Context, scope string) (next, reset int64, err error)
	// Advance raises the scope's hints to at least next and reset (a zero
	// leaves that hint as it is). A lost or late update only makes later
	// attempts look further or count more failures, never fewer.
	Advance(ctx context.Context, scope string, next, reset int64) error
}

// Budget bounds guessing. Every attempt claims the next numbered slot of its
// scope with a unique insert before the guess is evaluated, so a burst of
// parallel attempts, on any number of instances, evaluates exactly as many
// guesses as there are free slots (DESIGN.md: "budgets are claimed slots").
// A success records its slot as the reset point; failures are the slots
// claimed since then.
//
// The first Free failures are unthrottled; each later one waits Base·2ⁿ (at
// most Max) after the previous slot; after Limit failures the scope is locked
// until an administrator resets it.
type Budget struct {
	Store BudgetStore
	Free  int
	Limit int
	Base  time.Duration
	Max   time.Duration
	Keep  time.Duration // how long slot records are kept
	// Hinted scopes keep a hint document; unhinted ones (a token's own
	// budget, a few slots) are walked from 1.
	Hinted bool
	// Now must be the clock the store stamps claims with (store.Config.Now):
	// backoff compares a slot's stamp with it.
	Now func() time.Time
}

// Attempt is a claimed slot.
type Attempt struct {
	Scope string
	Slot  int64
}

// Take claims the next slot of scope. It returns a *ThrottledError while in
// backoff or once the budget is spent.
func (b *Budget) Take(ctx context.Context, scope string) (Attempt, error) {
	var next, reset int64
	if b.Hinted {
		var err error
		if next, reset, err = b.Store.Hint(ctx, scope); err != nil {
			return Attempt{}, err
		}
	}
	k := max(next, reset+1, 1)
	first := k
	now := b.Now()
	for {
		failures := k - 1 - reset
		if failures >= int64(b.Limit) {
			return Attempt{}, &ThrottledError{Locked: true}
		}
		if failures >= int64(b.Free) {
			wait := b.backoff(failures - int64(b.Free))
			prev, err := b.Store.ClaimTime(ctx, slotID(scope, k-1))
			switch {
			case errors.Is(err, ErrNotFound):
			case err != nil:
				return Attempt{}, err
			case now.Before(prev.Add(wait)):
				return Attempt{}, &ThrottledError{RetryAfter: prev.Add(wait).Sub(now)}
			}
		}
		err := b.Store.Claim(ctx, slotID(scope, k), now.Add(b.Keep))
		if err == nil {
			break
		}
		if !errors.Is(err, ErrUsed) {
			return Attempt{}, err
		}
		k++
	}
	// The hint only saves later attempts from walking taken slots, so it is
	// written only when this one had to walk: the usual attempt, right
	// after a success, costs one read and one insert.
	if b.Hinted && k > first {
		if err := b.Store.Advance(ctx, scope, k+1, 0); err != nil {
			return Attempt{}, err
		}
	}
	return Attempt{Scope: scope, Slot: k}, nil
}

// Succeed resets the scope's failure count at a's slot.
func (b *Budget) Succeed(ctx context.Context, a Attempt) error {
	if !b.Hinted {
		return nil
	}
	return b.Store.Advance(ctx, a.Scope, 0, a.Slot)
}

func (b *Budget) backoff(n int64) time.Duration {
	d := b.Base
	for i := int64(0); i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

func slotID(scope string, k int64) string {
	return scope + "|" + strconv.FormatInt(k, 10)
}

// Reset forgives a scope's failures (an administrator's unlock).
func (b *Budget) Reset(ctx context.Context, scope string) error {
	next, _, err := b.Store.Hint(ctx, scope)
	if err != nil {
		return err
	}
	if next <= 1 {
		return nil
	}
	return b.Store.Advance(ctx, scope, 0, next-1)
}
