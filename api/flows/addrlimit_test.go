package flows

import (
	"strconv"
	"testing"
	"time"
)

// TestBlockedAddrsBounded: an instance remembers at most maxBlocked
// addresses, dropping expired ones first, and forgets one when its hour is
// over.
func TestBlockedAddrsBounded(t *testing.T) {
	var b blockedAddrs
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := range maxBlocked {
		b.block("10.0."+strconv.Itoa(i), now.Add(time.Minute), now)
	}
	b.block("old", now.Add(time.Second), now)
	if len(b.until) != maxBlocked {
		t.Fatalf("%d remembered, want the cap %d", len(b.until), maxBlocked)
	}
	later := now.Add(2 * time.Second)
	if w := b.wait("old", later); w != 0 {
		t.Fatalf("an expired block still waits %v", w)
	}
	b.block("new", later.Add(time.Hour), later)
	if w := b.wait("new", later); w != time.Hour {
		t.Fatalf("new block waits %v, want 1h", w)
	}
	if len(b.until) > maxBlocked {
		t.Fatalf("%d remembered, over the cap %d", len(b.until), maxBlocked)
	}
}
