package mfa_test

import (
	"sync"
	"time"
)

// fakeClock is a settable clock shared by the code under test and the store,
// safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// newClock starts a clock at t. Times are whole milliseconds so that they
// survive a BSON round trip unchanged.
func newClock(t time.Time) *fakeClock {
	return &fakeClock{t: t.Truncate(time.Millisecond)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
