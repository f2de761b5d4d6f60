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

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
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
// verify ≤ 6, a password step ≤ 3, refresh ≤ 3). A step that records a
// security event does not wait for it: the event is written off the
// request path, by the batching writer, in two round trips of its own (the
// feed's sequence numbers, then the insert). The count waits for that
// write to land and leaves it out, exactly, so what is checked is the
// step's own. docs/PERFORMANCE.md explains each round trip.
func TestRoundTrips(t *testing.T) {
	a := startAdminApp(t)
	u := newTOTPUser(t, a, "counter")
	// stored waits until the user has n security events stored. It reads
	// through a client of its own, which the App's count does not see.
	observer, err := mongo.Connect(options.Client().ApplyURI(a.Config.MongoURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = observer.Disconnect(context.Background()) })
	eventsColl := observer.Database(a.Config.Database).Collection("events")
	stored := func(n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, err := eventsColl.CountDocuments(context.Background(), bson.D{{Key: "user_id", Value: u.ID}})
			if err != nil {
				t.Fatal(err)
			}
			if got >= int64(n) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d security events stored, want %d", got, n)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	events := 2 // the first sign-in, the TOTP factor
	stored(events)
	// step runs f, which records newEvents security events, and checks
	// its own round trips against bound.
	step := func(name string, bound, newEvents int, f func()) {
		t.Helper()
		before := rtCount(t, a)
		f()
		events += newEvents
		stored(events)
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
		own := got - 2*newEvents
		t.Logf("%-24s %2d store round trips (%d with its security event's write): %s", name, own, got, strings.Join(by, " "))
		if own > bound {
			t.Errorf("%s: %d store round trips, want at most %d", name, own, bound)
		}
	}
	var l loginResult
	step("password (mfa_required)", 3, 0, func() {
		l = a.login(t, u.Username, u.Password)
	})
	var tok loginResult
	step("totp verify", 6, 1, func() {
		a.verify(t, l.MFAToken, u.code(a.Clock.step())).decode(t, http.StatusOK, &tok)
	})
	step("refresh", 3, 0, func() {
		a.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": tok.RefreshToken}).decode(t, http.StatusOK, &tok)
	})
	step("GET /v1/me", 2, 0, func() {
		if r := a.get(t, "/v1/me", tok.AccessToken); r.Status != http.StatusOK {
			t.Fatalf("me: %d", r.Status)
		}
	})
	// A WebAuthn second factor: a security key registered by the same user.
	k := waNewKey(t, u.ID, false)
	a.waRegister(t, tok.AccessToken, k, "key")
	events++
	stored(events)
	l = a.login(t, u.Username, u.Password)
	opts := a.waRequest(t, "/v1/mfa/webauthn/options", l.MFAToken)
	body := k.assert(opts)
	step("webauthn verify", 6, 1, func() {
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
