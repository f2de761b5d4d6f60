package main

import (
	"bufio"
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// rtCount reads how many store commands the App has sent, from its own
// /metrics (the driver's command monitor feeds that histogram).
func rtCount(tb testing.TB, a *testApp) int {
	tb.Helper()
	r := a.get(tb, "/metrics", "")
	total := 0
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
		total += int(n)
	}
	return total
}

// TestRoundTrips counts the store round trips of each step of a sign-in,
// so a change that adds one is seen. The bounds are today's counts plus the
// one asynchronous security-event insert that may land in the window; the
// table in docs/PERFORMANCE.md explains each round trip.
func TestRoundTrips(t *testing.T) {
	a := startApp(t, appOptions{})
	u := newTOTPUser(t, a, "counter")
	step := func(name string, bound int, f func()) {
		t.Helper()
		before := rtCount(t, a)
		f()
		got := rtCount(t, a) - before
		t.Logf("%-22s %2d store round trips", name, got)
		if got > bound {
			t.Errorf("%s: %d store round trips, want at most %d", name, got, bound)
		}
	}
	var l loginResult
	step("password (mfa_required)", 5, func() {
		l = a.login(t, u.Username, u.Password)
	})
	var tok loginResult
	step("totp verify", 13, func() {
		a.verify(t, l.MFAToken, u.code(a.Clock.step())).decode(t, http.StatusOK, &tok)
	})
	step("refresh", 5, func() {
		a.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": tok.RefreshToken}).decode(t, http.StatusOK, &tok)
	})
	step("GET /v1/me", 2, func() {
		if r := a.get(t, "/v1/me", tok.AccessToken); r.Status != http.StatusOK {
			t.Fatalf("me: %d", r.Status)
		}
	})
}
