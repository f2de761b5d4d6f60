package mfa

import (
	"context"
	"time"
)

// NISTMaxFailures is the most consecutive failures NIST SP 800-63B §5.2.2
// allows on one account.
const NISTMaxFailures = 100

// Gate is one condition under which a budget allows another attempt: the
// scope's failure count is in [Min, Max) and, unless Before is zero, its last
// attempt was at or before Before. A budget is a list of gates; an attempt
// passes if any gate does.
type Gate struct {
	Min, Max int64
	Before   time.Time
}

// BudgetState is what a store knows of one scope.
type BudgetState struct {
	Failures int64     // attempts since the last success, this one included
	Last     time.Time // when the last attempt was counted
}

// BudgetStore counts attempts, one document per scope. It is implemented by
// store.
type BudgetStore interface {
	// Spend counts one attempt on scope at now if one of gates passes, in
	// one atomic conditional update (an upsert for a new scope), and
	// returns the state after it with ok true. When no gate passes it
	// counts nothing and returns the current state with ok false. The
	// scope's record may be deleted after expires.
	Spend(ctx context.Context, scope string, gates []Gate, now, expires time.Time) (st BudgetState, ok bool, err error)
	// Forgive sets the scope's failure count to zero.
	Forgive(ctx context.Context, scope string) error
	// Refund takes one counted attempt back (never below zero).
	Refund(ctx context.Context, scope string) error
	// ForgivePrefix sets the failure count of every scope that begins with
	// prefix to zero (an operator's unlock of all of a name's scopes).
	ForgivePrefix(ctx context.Context, prefix string) error
	// DropPrefix deletes every scope that begins with prefix (a deleted
	// account's name leaves nothing behind).
	DropPrefix(ctx context.Context, prefix string) error
}

// PendingStore holds, per mfa_pending token, its attempt budget and its
// consumption, in one document that exists from the token's issue: Spend
// refuses a consumed token with ErrUsed, so a used token takes no more
// guesses, a token no login issued (whatever its signature) with
// ErrNotFound, and a token ended by EndFor with ErrEnded (also from Consume
// and Consumed). It is implemented by store.
type PendingStore interface {
	BudgetStore
	// Open records a token just issued to subject, and forgives the budget
	// scopes in forgive (of the BudgetStore kept in the same store) in the
	// same round trip: the password step's success.
	Open(ctx context.Context, id, subject string, now, expires time.Time, forgive ...string) error
	// EndFor marks every unconsumed token of subject used: none of them can
	// finish a sign-in any more (a disabled or deleted account).
	EndFor(ctx context.Context, subject string, now time.Time) error
	// DropFor deletes every token record of subject (a deleted account).
	DropFor(ctx context.Context, subject string) error
	// Consume marks the token used, atomically: ErrUsed if it was already,
	// ErrNotFound if it was never opened.
	Consume(ctx context.Context, id string, now, expires time.Time) error
	// Consumed reports whether the token was consumed; ErrNotFound if it
	// was never opened.
	Consumed(ctx context.Context, id string) (bool, error)
}

// Budget bounds guessing. Every attempt is counted, atomically and before
// the guess is evaluated, by one conditional update of its scope's document
// that also checks the budget allows it; so a burst of parallel attempts on
// any number of instances evaluates exactly as many guesses as the budget
// allows. A success forgives the count.
//
// The first Free failures are unthrottled; after that each attempt waits
// Base·2ⁿ (at most Max) after the previous one; after Limit failures the
// scope is locked until an administrator forgives it.
type Budget struct {
	Store BudgetStore
	Free  int
	Limit int
	Base  time.Duration
	Max   time.Duration
	Keep  time.Duration // how long a scope's record is kept after its last attempt
	// Now must be the clock the store compares with.
	Now func() time.Time
}

// Attempt is a counted attempt.
type Attempt struct {
	Scope string
	Slot  int64 // its number among the failures since the last success
}

// Take counts an attempt on scope. It returns a *ThrottledError while in
// backoff or once the budget is spent.
func (b *Budget) Take(ctx context.Context, scope string) (Attempt, error) {
	now := b.Now()
	st, ok, err := b.Store.Spend(ctx, scope, b.Gates(now), now, now.Add(b.Keep))
	if err != nil {
		return Attempt{}, err
	}
	if !ok {
		return Attempt{}, b.Refusal(st, now)
	}
	return Attempt{Scope: scope, Slot: st.Failures}, nil
}

// Succeed forgives the scope's failures.
func (b *Budget) Succeed(ctx context.Context, a Attempt) error {
	return b.Store.Forgive(ctx, a.Scope)
}

// Refund takes back attempt a, which was counted but never evaluated
// (another budget refused the request).
func (b *Budget) Refund(ctx context.Context, a Attempt) error {
	return b.Store.Refund(ctx, a.Scope)
}

// ResetPrefix forgives the failures of every scope beginning with prefix.
func (b *Budget) ResetPrefix(ctx context.Context, prefix string) error {
	return b.Store.ForgivePrefix(ctx, prefix)
}

// DropPrefix forgets every scope beginning with prefix.
func (b *Budget) DropPrefix(ctx context.Context, prefix string) error {
	return b.Store.DropPrefix(ctx, prefix)
}

// Reset forgives a scope's failures (an administrator's unlock).
func (b *Budget) Reset(ctx context.Context, scope string) error {
	return b.Store.Forgive(ctx, scope)
}

// Gates is the budget as conditions a store can check atomically at now:
// the free attempts, one gate per backoff step, and one for every count at
// the longest wait; nothing passes at Limit or beyond.
func (b *Budget) Gates(now time.Time) []Gate {
	gates := []Gate{{Min: 0, Max: int64(min(b.Free, b.Limit))}}
	for n := int64(b.Free); n < int64(b.Limit); n++ {
		wait := b.backoff(n - int64(b.Free))
		if wait >= b.Max {
			gates = append(gates, Gate{Min: n, Max: int64(b.Limit), Before: now.Add(-b.Max)})
			break
		}
		gates = append(gates, Gate{Min: n, Max: n + 1, Before: now.Add(-wait)})
	}
	return gates
}

// Refusal explains why no gate passed for st at now.
func (b *Budget) Refusal(st BudgetState, now time.Time) error {
	if st.Failures >= int64(b.Limit) {
		return &ThrottledError{Locked: true}
	}
	wait := time.Duration(0)
	if st.Failures >= int64(b.Free) {
		wait = b.backoff(st.Failures - int64(b.Free))
	}
	// A gate that failed only by a clock tick still gets a positive wait.
	return &ThrottledError{RetryAfter: max(st.Last.Add(wait).Sub(now), time.Millisecond)}
}

func (b *Budget) backoff(n int64) time.Duration {
	d := b.Base
	for i := int64(0); i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}
