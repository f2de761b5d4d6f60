package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

// loginFrom signs in as if from client address ip (X-Forwarded-For from a
// trusted proxy).
func (a *testApp) loginFrom(tb testing.TB, ip, username, password string) response {
	tb.Helper()
	b, _ := json.Marshal(credentials{username, password})
	req, _ := http.NewRequest(http.MethodPost, a.base+"/v1/login", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", ip)
	res, err := a.client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return response{Status: res.StatusCode, Header: res.Header, Body: body}
}

// TestGuesserCannotLockOutTheOwner: password failures back off per (name,
// address), so 200 wrong passwords from one address leave the owner at
// another address signing in at once; the account's cap (100 in a row from
// everywhere) closes the password path for an hour only, a passkey still
// signs in meanwhile, and the user is told.
func TestGuesserCannotLockOutTheOwner(t *testing.T) {
	a := startApp(t, appOptions{TrustedProxies: []string{"127.0.0.1"}})
	const owner, attacker = "198.51.100.7", "203.0.113.66"
	const pw = "owner password correct horse"
	su := a.signup(t, "target", pw)
	key := waNewKey(t, su.ID, false)
	a.waRegister(t, a.login(t, "target", pw).AccessToken, key, "key")

	t.Run("BackoffIsPerAddress", func(t *testing.T) {
		statuses := map[int]int{}
		for range 200 {
			statuses[a.loginFrom(t, attacker, "target", "wrong guess number x").Status]++
		}
		if statuses[401] != 10 || statuses[429] != 190 {
			t.Fatalf("attacker's 200 guesses: %v, want 10 evaluated and 190 throttled", statuses)
		}
		if r := a.loginFrom(t, owner, "target", pw); r.Status != http.StatusOK {
			t.Fatalf("the owner elsewhere: %d %s, want 200 at once", r.Status, r.Body)
		}
	})

	t.Run("CapClosesThePasswordForAnHour", func(t *testing.T) {
		// 100 failures in a row, waiting out each backoff (15 min at most).
		for i := 0; i < 100; {
			r := a.loginFrom(t, attacker, "target", "wrong guess number x")
			switch r.Status {
			case http.StatusUnauthorized:
				i++
			case http.StatusTooManyRequests:
				a.Clock.Advance(15 * time.Minute)
			default:
				t.Fatalf("guess %d: %d %s", i, r.Status, r.Body)
			}
		}
		// A sign-in's failure is counted on the account after the answer.
		waitFor(t, func() bool {
			u, err := a.DB().UserByName(context.Background(), "target")
			return err == nil && u.PasswordFailures.Failures == 100
		}, "the 100th failure to be counted")
		r := a.loginFrom(t, owner, "target", pw)
		r.wantProblem(t, http.StatusTooManyRequests, "account_locked")
		if r.Header.Get("Retry-After") == "" {
			t.Error("account_locked without Retry-After")
		}
		// A passkey always signs in.
		a.waWantTokens(t, a.waPasskeySignIn(t, key), su.ID, "aal3", "hwk", "user", "mfa")
		// The path reopens by itself after an hour.
		a.Clock.Advance(time.Hour)
		var l loginResult
		a.loginFrom(t, owner, "target", pw).decode(t, http.StatusOK, &l)
		waitFor(t, func() bool {
			evs := a.poEventsAt(t, a.waWantTokens(t, a.waPasskeySignIn(t, key), su.ID, "aal3", "hwk", "user", "mfa").AccessToken)
			return slices.Contains(evs, "account.throttled")
		}, "the lockout's security event")
	})

	t.Run("UnknownNameAccumulatesNothing", func(t *testing.T) {
		for i := 0; i < 100; i++ {
			if r := a.loginFrom(t, attacker, "newcomer", "wrong guess number x"); r.Status == http.StatusTooManyRequests {
				a.Clock.Advance(15 * time.Minute)
			}
		}
		a.signup(t, "newcomer", "newcomer correct horse battery")
		if r := a.loginFrom(t, owner, "newcomer", "newcomer correct horse battery"); r.Status != http.StatusOK {
			t.Fatalf("sign-in after sign-up: %d %s", r.Status, r.Body)
		}
	})
}

// poEventsAt lists the event types the access token's user sees.
func (a *testApp) poEventsAt(tb testing.TB, token string) []string { return a.poEvents(tb, token) }

// TestAnonymousRateLimit: one address may make STEPUP_ANON_RATE requests a
// minute to each anonymous endpoint, counted in the store for every
// instance; past it, 429 with Retry-After; other addresses are not
// affected, and the next minute starts afresh.
func TestAnonymousRateLimit(t *testing.T) {
	apps := startApps(t, 2, appOptions{TrustedProxies: []string{"127.0.0.1"}, AnonRate: 5})
	from := func(a *testApp, ip, path string) response {
		req, _ := http.NewRequest(http.MethodPost, a.base+path, nil)
		req.Header.Set("X-Forwarded-For", ip)
		res, err := a.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return response{Status: res.StatusCode, Header: res.Header, Body: b}
	}
	for i := range 5 {
		if r := from(apps[i%2], "203.0.113.9", "/v1/passkeys/options"); r.Status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
		}
	}
	r := from(apps[1], "203.0.113.9", "/v1/passkeys/options")
	r.wantProblem(t, http.StatusTooManyRequests, "rate_limited")
	if r.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if r := from(apps[0], "198.51.100.7", "/v1/passkeys/options"); r.Status != http.StatusOK {
		t.Fatalf("another address: %d", r.Status)
	}
	apps[0].Clock.Advance(time.Minute)
	if r := from(apps[0], "203.0.113.9", "/v1/passkeys/options"); r.Status != http.StatusOK {
		t.Fatalf("the next minute: %d", r.Status)
	}
}

// TestAddressFailureLimit: one address spraying wrong passwords over many
// names is stopped after STEPUP_ADDR_FAILURES of them in the hour, on every
// instance (each evaluates at most one more before it learns of the count
// in the store), with 429 and Retry-After even for a right password; the
// owner elsewhere is untouched, successes never count, and the address
// signs in again the next hour.
func TestAddressFailureLimit(t *testing.T) {
	const limit = 6
	apps := startApps(t, 2, appOptions{TrustedProxies: []string{"127.0.0.1"}, AddrFailures: limit})
	a, b := apps[0], apps[1]
	const sprayer, owner, office = "203.0.113.9", "198.51.100.20", "192.0.2.44"
	const pw = "sprayed owner password correct"
	a.signup(t, "sprayed", pw)

	// Successes from one address (an office behind one NAT) never count.
	for i := range 3 * limit {
		if r := apps[i%2].loginFrom(t, office, "sprayed", pw); r.Status != http.StatusOK {
			t.Fatalf("sign-in %d from the office: %d %s", i, r.Status, r.Body)
		}
	}
	// The spray: one wrong password per name, the real one among them.
	for i := range limit {
		name := "nobody-" + strconv.Itoa(i)
		if i == 3 {
			name = "sprayed"
		}
		a.loginFrom(t, sprayer, name, "wrong password number one").wantProblem(t, http.StatusUnauthorized, "invalid_credentials")
	}
	refused := func(app *testApp) {
		t.Helper()
		r := app.loginFrom(t, sprayer, "sprayed", pw)
		r.wantProblem(t, http.StatusTooManyRequests, "rate_limited")
		if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > 3600 {
			t.Errorf("Retry-After %q, want 1–3600 s", r.Header.Get("Retry-After"))
		}
	}
	refused(a)
	// The second instance has not seen this address fail: it evaluates one
	// more (wrong) password, learns the count from the store, and refuses.
	b.loginFrom(t, sprayer, "nobody-x", "wrong password number one").wantProblem(t, http.StatusUnauthorized, "invalid_credentials")
	refused(b)
	refused(b)
	for _, app := range apps {
		if r := app.loginFrom(t, owner, "sprayed", pw); r.Status != http.StatusOK {
			t.Fatalf("the owner at another address: %d %s", r.Status, r.Body)
		}
	}
	// The next hour the address starts again.
	a.Clock.Advance(time.Hour)
	for _, app := range apps {
		if r := app.loginFrom(t, sprayer, "sprayed", pw); r.Status != http.StatusOK {
			t.Fatalf("the sprayer's address the next hour: %d %s", r.Status, r.Body)
		}
	}
}

// TestPasswordSuccessForgives: a right password forgives the (name,
// address) budget also when it leads to a second factor (the forgiveness
// rides on the write that records the mfa_token), so the owner's earlier
// typos do not add up across sign-ins.
func TestPasswordSuccessForgives(t *testing.T) {
	a := startApp(t, appOptions{TrustedProxies: []string{"127.0.0.1"}})
	u := newTOTPUser(t, a, "typo-prone")
	const ip = "198.51.100.77"
	for round := range 2 {
		for range 9 {
			a.loginFrom(t, ip, u.Username, "not the password at all").wantProblem(t, http.StatusUnauthorized, "invalid_credentials")
		}
		var l loginResult
		a.loginFrom(t, ip, u.Username, u.Password).decode(t, http.StatusOK, &l)
		if l.MFAToken == "" {
			t.Fatalf("round %d: no mfa_token", round)
		}
	}
	for range 10 {
		a.loginFrom(t, ip, u.Username, "not the password at all").wantProblem(t, http.StatusUnauthorized, "invalid_credentials")
	}
	a.loginFrom(t, ip, u.Username, "not the password at all").wantProblem(t, http.StatusTooManyRequests, "rate_limited")
}
