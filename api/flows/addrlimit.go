package flows

import (
	"context"
	"sync"
	"time"

	"github.com/stepup-auth/stepup/mfa"
)

// The per-address limit on wrong passwords at sign-in (Deps.AddrFailures),
// Auth0's "suspicious IP throttling": an address that sprays passwords over
// many names gets a few guesses per name from the per-(name, address)
// backoff, and this caps its wrong passwords over every name together.
//
// The count is a budget document per (address, hour) in the store, so all
// instances add to one count; it is written only when a password is wrong,
// so a sign-in that succeeds costs no extra round trip. Each instance
// learns from the count it writes that the address has reached the limit
// and then refuses its sign-ins, before any hash, until the hour ends. An
// instance that has not yet seen a failure of that address this hour
// evaluates one more, so a flood spread over n instances gets at most the
// limit plus, per instance, the attempts it had in flight (an address
// holds at most a few places in the hashing queue).

// addrWindow is how long one count runs.
const addrWindow = time.Hour

// maxBlocked bounds the addresses an instance remembers as blocked (about
// 100 bytes each); past it, expired ones are dropped first.
const maxBlocked = 1 << 16

// blockedAddrs is an instance's memory of the addresses over the limit.
type blockedAddrs struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// wait is how long ip stays blocked after now; 0 if it is not.
func (b *blockedAddrs) wait(ip string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	until, ok := b.until[ip]
	if !ok {
		return 0
	}
	if !until.After(now) {
		delete(b.until, ip)
		return 0
	}
	return until.Sub(now)
}

// block remembers ip as blocked until until.
func (b *blockedAddrs) block(ip string, until, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.until == nil {
		b.until = map[string]time.Time{}
	}
	if _, ok := b.until[ip]; !ok && len(b.until) >= maxBlocked {
		for k, t := range b.until {
			if !t.After(now) {
				delete(b.until, k)
			}
		}
		for k := range b.until {
			if len(b.until) < maxBlocked {
				break
			}
			delete(b.until, k)
		}
	}
	b.until[ip] = until
}

func addrScope(ip string, window time.Time) string {
	return "pwdaddr|" + ip + "|" + window.Format("2006010215")
}

// addrRefusal refuses a sign-in from an address this instance knows to be
// over the limit this hour.
func (a *App) addrRefusal(cl Client) error {
	if a.AddrFailures <= 0 || cl.IP == "" {
		return nil
	}
	if wait := a.blocked.wait(cl.IP, a.Now()); wait > 0 {
		return &mfa.ThrottledError{RetryAfter: wait}
	}
	return nil
}

// countAddrFailure adds a wrong password to its address's count this hour,
// and remembers the address as blocked when the count reaches the limit.
// An error is only logged (the per-name budgets still hold).
func (a *App) countAddrFailure(ctx context.Context, cl Client) {
	if a.AddrFailures <= 0 || cl.IP == "" {
		return
	}
	now := a.Now()
	window := now.Truncate(addrWindow)
	limit := int64(a.AddrFailures)
	st, ok, err := a.Budgets.Login.Store.Spend(ctx, addrScope(cl.IP, window),
		[]mfa.Gate{{Min: 0, Max: limit}}, now, window.Add(2*addrWindow))
	if err != nil {
		a.Logger.Warn("address failure not counted", "err", err)
		return
	}
	if !ok || st.Failures >= limit {
		a.blocked.block(cl.IP, window.Add(addrWindow), now)
	}
}
