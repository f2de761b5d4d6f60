package main

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rtCount reads how many store commands the App has sent, by command, from
// its own /metrics on the operations listener (the driver's command monitor
// feeds that histogram).
func rtCount(tb testing.TB, a *testApp) map[string]int {
	tb.Helper()
	r := a.adminGet(tb, "/metrics")
	if r.Status != http.StatusOK {
		tb.Fatalf("/metrics: %d %s", r.Status, r.Body)
	}
	out := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "stepup_store_command_duration_seconds_count{") {
			continue
		}
		n, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			tb.Fatalf("metrics line %q: %v", line, err)
		}
		cmd := line[strings.Index(line, `command="`)+9:]
		out[cmd[:strings.IndexByte(cmd, '"')]] += int(n)
	}
	return out
}

// TestRoundTrips counts the store round trips of each step of a sign-in,
// so a change that adds one is seen. The targets are the store issue's (a
// verify ≤ 6, a password step ≤ 3, refresh ≤ 3), plus, where the step
// records a security event, the asynchronous event write that may land in
// the window (two round trips since the admin event feed: the sequence
// numbers, then the insert), plus, for a verify that starts a session,
// the one read of the user after the session exists that lets an
// administrator's disable win every race with a sign-in (issue 11; it
// overlaps the mfa_token's consumption, so it adds no latency).
// docs/PERFORMANCE.md explains each round trip.
func TestRoundTrips(t *testing.T) {
	a := startAdminApp(t)
	u := newTOTPUser(t, a, "counter")
	step := func(name string, bound int, f func()) {
		t.Helper()
		before := rtCount(t, a)
		f()
		after := rtCount(t, a)
		got := 0
		var by []string
		for cmd, n := range after {
			if d := n - before[cmd]; d > 0 {
				got += d
				by = append(by, cmd+"×"+strconv.Itoa(d))
			}
		}
		slices.Sort(by)
		t.Logf("%-24s %2d store round trips: %s", name, got, strings.Join(by, " "))
		if got > bound {
			t.Errorf("%s: %d store round trips, want at most %d", name, got, bound)
		}
	}
	// settle waits until the user's first n security events are stored:
	// a step measures its own round trips, not the asynchronous writes of
	// what came before it.
	settle := func(n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			evs, err := a.DB().Events().Events(context.Background(), u.ID, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d security events stored, want %d", len(evs), n)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	settle(2) // the first sign-in, the TOTP factor
	var l loginResult
	step("password (mfa_required)", 3, func() {
		l = a.login(t, u.Username, u.Password)
	})
	var tok loginResult
	step("totp verify", 6+1+2, func() {
		a.verify(t, l.MFAToken, u.code(a.Clock.step())).decode(t, http.StatusOK, &tok)
	})
	settle(3) // the sign-in
	step("refresh", 3, func() {
		a.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": tok.RefreshToken}).decode(t, http.StatusOK, &tok)
	})
	step("GET /v1/me", 2, func() {
		if r := a.get(t, "/v1/me", tok.AccessToken); r.Status != http.StatusOK {
			t.Fatalf("me: %d", r.Status)
		}
	})
	// A WebAuthn second factor: a security key registered by the same user.
	k := waNewKey(t, u.ID, false)
	a.waRegister(t, tok.AccessToken, k, "key")
	l = a.login(t, u.Username, u.Password)
	opts := a.waRequest(t, "/v1/mfa/webauthn/options", l.MFAToken)
	body := k.assert(opts)
	settle(4) // the key
	step("webauthn verify", 6+1+2, func() {
		if r := a.send2(t, "/v1/mfa/webauthn/verify", l.MFAToken, body); r.Status != http.StatusOK {
			t.Fatalf("webauthn verify: %d %s", r.Status, r.Body)
		}
	})
}

// send2 posts a raw JSON body.
func (a *testApp) send2(tb testing.TB, path, token string, body []byte) response {
	tb.Helper()
	return a.raw(tb, path, token, "application/json", body)
}
