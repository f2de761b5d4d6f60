package mfa_test

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/mfa"
)

// cheap keeps most tests fast; the cost parameters are not what they test.
var cheap = mfa.Argon2Params{Memory: 64, Time: 1, Threads: 1}

func TestNormalizePassword(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" means ErrInvalidPassword
	}{
		{"SevenCharsRefused", "abcdefg", ""},
		{"EightCharsAccepted", "abcdefgh", "abcdefgh"},
		{"MaxLengthAccepted", strings.Repeat("a", 1024), strings.Repeat("a", 1024)},
		{"OverMaxLengthRefused", strings.Repeat("a", 1025), ""},
		{"EightMultiByteCharsAccepted", strings.Repeat("é", 8), strings.Repeat("é", 8)},
		{"SevenMultiByteCharsRefused", strings.Repeat("é", 7), ""}, // 14 bytes, 7 characters
		{"MaxLengthMultiByteAccepted", strings.Repeat("é", 1024), strings.Repeat("é", 1024)},
		{"OverMaxLengthMultiByteRefused", strings.Repeat("é", 1025), ""},
		{"DecomposedCountedAfterNFKC", strings.Repeat("e\u0301", 8), strings.Repeat("é", 8)},
		{"DecomposedSevenRefused", strings.Repeat("e\u0301", 7), ""}, // 14 code points in, 7 after NFKC
		{"DecomposedMaxLengthAccepted", strings.Repeat("e\u0301", 1024), strings.Repeat("é", 1024)},
		{"LigaturesExpand", strings.Repeat("\ufb00", 4), "ffffffff"}, // 4 characters in, 8 after NFKC
		{"FullWidthFolded", "ｐａｓｓｗｏｒｄ", "password"},
		{"SpacesKept", " pass word ", " pass word "},
		{"CaseKept", "PassWord", "PassWord"},
		{"InvalidUTF8Refused", "password\xff", ""},
		{"EmptyRefused", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mfa.NormalizePassword(tt.in)
			if tt.want == "" {
				if !errors.Is(err, mfa.ErrInvalidPassword) {
					t.Fatalf("NormalizePassword(%.40q) = %.40q, %v; want ErrInvalidPassword", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizePassword(%.40q) = %.40q, %v; want %.40q, nil", tt.in, got, err, tt.want)
			}
		})
	}
}

// phcDefault is the PHC string of DefaultArgon2 with a 16-byte salt and a
// 32-byte key, unpadded standard Base64.
var phcDefault = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestPasswordHashAndVerify(t *testing.T) {
	ctx := context.Background()

	t.Run("DefaultFormat", func(t *testing.T) {
		p := mfa.NewPassword(mfa.DefaultArgon2, 0, 0)
		phc, err := p.Hash(ctx, "correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		if !phcDefault.MatchString(phc) {
			t.Fatalf("Hash: got %q, want the form %s", phc, phcDefault)
		}
		rehash, err := p.Verify(ctx, phc, "correct horse battery")
		if err != nil || rehash {
			t.Fatalf("Verify(right): got rehash=%v, %v; want false, nil", rehash, err)
		}
	})

	p := mfa.NewPassword(cheap, 0, 0)
	phc, err := p.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("RightPassword", func(t *testing.T) {
		rehash, err := p.Verify(ctx, phc, "correct horse battery")
		if err != nil || rehash {
			t.Fatalf("got rehash=%v, %v; want false, nil", rehash, err)
		}
	})

	t.Run("WrongPassword", func(t *testing.T) {
		for _, pw := range []string{"correct horse batterY", "correct horse battery ", "", "correct horse"} {
			rehash, err := p.Verify(ctx, phc, pw)
			if !errors.Is(err, mfa.ErrBadCredentials) || rehash {
				t.Errorf("Verify(%q): got rehash=%v, %v; want false, ErrBadCredentials", pw, rehash, err)
			}
		}
	})

	t.Run("UnknownUser", func(t *testing.T) {
		for _, pw := range []string{"correct horse battery", "", "anything at all"} {
			rehash, err := p.Verify(ctx, "", pw)
			if !errors.Is(err, mfa.ErrBadCredentials) || rehash {
				t.Errorf("Verify(no hash, %q): got rehash=%v, %v; want false, ErrBadCredentials", pw, rehash, err)
			}
		}
	})

	t.Run("Salted", func(t *testing.T) {
		again, err := p.Hash(ctx, "correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		if again == phc {
			t.Fatalf("two hashes of one password are equal: %q", phc)
		}
	})

	t.Run("SaltFromRand", func(t *testing.T) {
		q := mfa.NewPassword(cheap, 0, 0)
		q.Rand = bytes.NewReader(make([]byte, 32))
		a, errA := q.Hash(ctx, "correct horse battery")
		q.Rand = bytes.NewReader(make([]byte, 32))
		b, errB := q.Hash(ctx, "correct horse battery")
		if errA != nil || errB != nil || a != b {
			t.Fatalf("same Rand bytes: got %q, %v and %q, %v; want equal hashes", a, errA, b, errB)
		}
		q.Rand = bytes.NewReader(make([]byte, 3))
		if _, err := q.Hash(ctx, "correct horse battery"); err == nil {
			t.Fatal("short Rand: got nil error, want one")
		}
	})

	t.Run("MalformedHash", func(t *testing.T) {
		for _, bad := range []string{
			"$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + strings.Repeat("A", 43),
			"$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + strings.Repeat("A", 43),
			"$argon2id$v=19$m=64,t=1$c2FsdHNhbHRzYWx0c2FsdA$" + strings.Repeat("A", 43),
			"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$short",
			"$argon2id$v=19$m=64,t=1,p=1$not*base64$" + strings.Repeat("A", 43),
			"$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
			"plaintext",
		} {
			rehash, err := p.Verify(ctx, bad, "correct horse battery")
			if err == nil || rehash {
				t.Errorf("Verify(%q): got rehash=%v, %v; want an error", bad, rehash, err)
			}
		}
	})
}

func TestPasswordRehash(t *testing.T) {
	ctx := context.Background()
	old := mfa.NewPassword(cheap, 0, 0)
	phc, err := old.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		current mfa.Argon2Params
		want    bool
	}{
		{"SameParams", cheap, false},
		{"DefaultParams", mfa.DefaultArgon2, true},
		{"MoreMemory", mfa.Argon2Params{Memory: 128, Time: 1, Threads: 1}, true},
		{"MoreTime", mfa.Argon2Params{Memory: 64, Time: 2, Threads: 1}, true},
		{"MoreThreads", mfa.Argon2Params{Memory: 64, Time: 1, Threads: 2}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mfa.NewPassword(tt.current, 0, 0)
			rehash, err := p.Verify(ctx, phc, "correct horse battery")
			if err != nil || rehash != tt.want {
				t.Fatalf("Verify with current %+v: got rehash=%v, %v; want %v, nil", tt.current, rehash, err, tt.want)
			}
			rehash, err = p.Verify(ctx, phc, "wrong horse battery")
			if !errors.Is(err, mfa.ErrBadCredentials) || rehash {
				t.Fatalf("wrong password: got rehash=%v, %v; want false, ErrBadCredentials", rehash, err)
			}
		})
	}
}

// TestPasswordNFKCEquivalence: the same password typed in composed,
// decomposed or full-width form verifies once normalised.
func TestPasswordNFKCEquivalence(t *testing.T) {
	ctx := context.Background()
	p := mfa.NewPassword(cheap, 0, 0)
	composed := "Cr\u00e8me br\u00fbl\u00e9e 42"
	enrolled, err := mfa.NormalizePassword(composed)
	if err != nil {
		t.Fatal(err)
	}
	phc, err := p.Hash(ctx, enrolled)
	if err != nil {
		t.Fatal(err)
	}
	for name, typed := range map[string]string{
		"Composed":   composed,
		"Decomposed": "Cre\u0300me bru\u0302le\u0301e 42",
		"FullWidth":  "Cr\u00e8me br\u00fbl\u00e9e \uff14\uff12",
	} {
		t.Run(name, func(t *testing.T) {
			n, err := mfa.NormalizePassword(typed)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Verify(ctx, phc, n); err != nil {
				t.Fatalf("Verify(normalised %q): got %v, want nil", typed, err)
			}
		})
	}
	t.Run("UnnormalisedDecomposedDiffers", func(t *testing.T) {
		// Shows the normalisation above is what makes them equal.
		if _, err := p.Verify(ctx, phc, "Cre\u0300me bru\u0302le\u0301e 42"); !errors.Is(err, mfa.ErrBadCredentials) {
			t.Fatalf("got %v, want ErrBadCredentials", err)
		}
	})
}

// TestPasswordUnknownUserDoesTheWork: an unknown user is checked against a
// dummy hash of the current cost, so it takes about as long as a real check.
// The bound is loose (a third) so that only a shortcut fails it.
func TestPasswordUnknownUserDoesTheWork(t *testing.T) {
	ctx := context.Background()
	p := mfa.NewPassword(mfa.Argon2Params{Memory: 8 * 1024, Time: 1, Threads: 1}, 0, 0)
	phc, err := p.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	// Interleaved, best of five each, so both see the same machine load.
	known, unknown := time.Hour, time.Hour
	timeVerify := func(phc string) time.Duration {
		start := time.Now()
		_, _ = p.Verify(ctx, phc, "wrong horse battery")
		return time.Since(start)
	}
	for range 5 {
		known = min(known, timeVerify(phc))
		unknown = min(unknown, timeVerify(""))
	}
	if unknown < known/3 {
		t.Fatalf("unknown user took %v, a known one %v: the answer leaks whether the user exists", unknown, known)
	}
}

// TestPasswordBusy: with one worker and a queue of one, at most two hashes
// are admitted at once; the rest of a burst get ErrBusy at once, without
// waiting for a hash to finish.
func TestPasswordBusy(t *testing.T) {
	const n = 10
	p := mfa.NewPassword(mfa.Argon2Params{Memory: 32 * 1024, Time: 2, Threads: 1}, 1, 1)
	type result struct {
		err  error
		took time.Duration
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			began := time.Now()
			_, err := p.Hash(context.Background(), "correct horse battery")
			results[i] = result{err, time.Since(began)}
		}()
	}
	close(start)
	wg.Wait()

	var done, busy int
	slowestBusy, fastestDone := time.Duration(0), time.Hour
	for _, r := range results {
		switch {
		case r.err == nil:
			done++
			fastestDone = min(fastestDone, r.took)
		case errors.Is(r.err, mfa.ErrBusy):
			busy++
			slowestBusy = max(slowestBusy, r.took)
		default:
			t.Errorf("Hash: got %v, want nil or ErrBusy", r.err)
		}
	}
	if done < 2 || busy == 0 || done+busy != n {
		t.Fatalf("got %d hashed, %d busy; want at least 2 hashed (worker + queue) and the rest busy", done, busy)
	}
	if slowestBusy >= fastestDone {
		t.Fatalf("slowest ErrBusy took %v, the fastest hash %v: busy callers waited", slowestBusy, fastestDone)
	}
}

// TestPasswordCancelWhileQueued: a caller waiting for the busy worker gives
// up with its context's error, before the running hash finishes.
func TestPasswordCancelWhileQueued(t *testing.T) {
	ctx := context.Background()
	heavy := mfa.Argon2Params{Memory: 32 * 1024, Time: 2, Threads: 1}
	slow, err := mfa.NewPassword(heavy, 1, 1).Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}

	// One worker; Verify uses the stored (heavy) cost, Hash the cheap one.
	p := mfa.NewPassword(cheap, 1, 4)
	running := make(chan struct{})
	go func() {
		defer close(running)
		_, _ = p.Verify(ctx, slow, "correct horse battery")
	}()

	for {
		wait, cancel := context.WithCancel(ctx)
		stop := time.AfterFunc(20*time.Millisecond, cancel)
		_, err := p.Hash(wait, "correct horse battery")
		stop.Stop()
		cancel()
		select {
		case <-running:
			t.Fatalf("the heavy hash finished before any queued Hash gave up (last: %v)", err)
		default:
		}
		if err == nil {
			continue // ran before the heavy hash took the worker; try again
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("queued Hash with a cancelled context: got %v, want context.Canceled", err)
		}
		break
	}
	<-running
}

// TestAdmitForShare: one client holds at most PerClient places of the
// hashing queue; another client still gets in; a released place is
// returned to its client.
func TestAdmitForShare(t *testing.T) {
	p := mfa.NewPassword(mfa.Argon2Params{Memory: 64, Time: 1, Threads: 1}, 2, 6) // 8 places, 2 per client
	if p.PerClient != 2 {
		t.Fatalf("PerClient = %d, want 2", p.PerClient)
	}
	var releases []func()
	for i := range 2 {
		r, err := p.AdmitFor("flooder")
		if err != nil {
			t.Fatalf("place %d: %v", i, err)
		}
		releases = append(releases, r)
	}
	if _, err := p.AdmitFor("flooder"); !errors.Is(err, mfa.ErrBusy) {
		t.Fatalf("third place for one client: %v, want ErrBusy", err)
	}
	r, err := p.AdmitFor("owner")
	if err != nil {
		t.Fatalf("another client: %v", err)
	}
	r()
	releases[0]()
	if r, err := p.AdmitFor("flooder"); err != nil {
		t.Fatalf("after a release: %v", err)
	} else {
		r()
	}
	releases[1]()
}
