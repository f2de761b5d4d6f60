package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestSameCodeRace sends one valid TOTP code with 30 different mfa_tokens at
// once, spread over three App instances sharing one database: the code's
// time step is a unique insert, so exactly one sign-in succeeds.
//
// The others are refused either as a failed factor (401 mfa_failed) or, once
// five guesses have been spent, by the account's back-off (429
// rate_limited): the account budget (Free 5) counts every losing attempt, as
// it should, since a loser cannot be told from a guess.
func TestSameCodeRace(t *testing.T) {
	const n, instances = 30, 3
	apps := startApps(t, instances, appOptions{})
	u := newTOTPUser(t, apps[0], "race-user")
	mfaTokens := loginMany(t, apps, u.Username, u.Password, n)
	code := u.code(apps[0].Clock.step())

	rs := fanOut(t, n, func(i int) (response, error) {
		return apps[i%instances].postJSON("/v1/mfa/totp/verify", mfaTokens[i], codeBody{code})
	})
	got := tally(rs)
	t.Logf("outcomes: %v", got)
	if got["200 "] != 1 {
		t.Errorf("%d sign-ins succeeded, want exactly 1 (%v)", got["200 "], got)
	}
	if got["401 mfa_failed"] < 1 {
		t.Errorf("no loser was evaluated (%v): the race did not happen", got)
	}
	if others := n - got["200 "] - got["401 mfa_failed"] - got["429 rate_limited"]; others != 0 {
		t.Errorf("%d answers were neither 200, 401 mfa_failed nor 429 rate_limited: %v", others, got)
	}
	for _, r := range rs {
		if r.Status == http.StatusOK {
			var tok loginResult
			r.decode(t, http.StatusOK, &tok)
			for _, a := range apps {
				if me := a.get(t, "/v1/me", tok.AccessToken); me.Status != http.StatusOK {
					t.Errorf("winner's access token on instance %s: status %d, want 200", a.base, me.Status)
				}
			}
		}
	}
}

// loginMany signs in n times, one goroutine per instance, and returns the
// mfa_tokens. Never more than one login per instance runs at once, so the
// password budget (10 unthrottled failures in flight) is never touched.
func loginMany(tb testing.TB, apps []*testApp, username, password string, n int) []string {
	tb.Helper()
	out := make([]string, n)
	errs := make([]string, n)
	var wg sync.WaitGroup
	for w, a := range apps {
		wg.Go(func() {
			for i := w; i < n; i += len(apps) {
				r, err := a.postJSON("/v1/login", "", credentials{username, password})
				var l loginResult
				switch {
				case err != nil:
					errs[i] = err.Error()
				case r.Status != http.StatusOK:
					errs[i] = strconv.Itoa(r.Status) + " " + string(r.Body)
				case json.Unmarshal(r.Body, &l) != nil || l.Status != "mfa_required":
					errs[i] = "not mfa_required: " + string(r.Body)
				default:
					out[i] = l.MFAToken
				}
				if out[i] == "" && errs[i] == "" {
					errs[i] = "no mfa_token in " + string(r.Body)
				}
			}
		})
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			tb.Fatalf("login %d: %s", i, e)
		}
	}
	return out
}

// TestBudgets shows the attempt budgets hold under concurrent bursts: each
// burst evaluates exactly as many guesses as its budget has slots, and what
// is refused after that is refused even when it is right.
func TestBudgets(t *testing.T) {
	a := startApp(t, appOptions{})

	t.Run("TokenBudget", func(t *testing.T) {
		u := newTOTPUser(t, a, "token-budget")
		s := a.Clock.step()
		tok := a.mfaToken(t, u.Username, u.Password)
		rs := fanOut(t, 20, func(i int) (response, error) {
			return a.postJSON("/v1/mfa/totp/verify", tok, codeBody{wrongCode(u.Secret, s, i)})
		})
		got := tally(rs)
		if got["401 mfa_failed"] != 5 || got["401 invalid_token"] != 15 {
			t.Errorf("burst of 20 wrong codes on one mfa_token: %v, want 5 evaluated (401 mfa_failed) and 15 refused (401 invalid_token)", got)
		}
		for _, r := range rs {
			if r.code() == "invalid_token" {
				if p := r.problem(t); p.Detail != "the mfa_token has no attempts left" {
					t.Errorf("detail %q, want the mfa_token has no attempts left", p.Detail)
				}
			}
		}
		a.Clock.Advance(2 * time.Second) // past the account's first back-off step
		a.verify(t, tok, u.code(s)).wantProblem(t, http.StatusUnauthorized, "invalid_token")
		// Control: the same code was right, with a token that has attempts.
		if r := a.verify(t, a.mfaToken(t, u.Username, u.Password), u.code(s)); r.Status != http.StatusOK {
			t.Fatalf("right code with a fresh mfa_token: status %d, want 200; %s", r.Status, r.Body)
		}
	})

	t.Run("AccountBudget", func(t *testing.T) {
		u := newTOTPUser(t, a, "account-budget")
		s := a.Clock.step()
		toks := make([]string, 4) // 4 tokens × 5 slots: the token budgets never bind
		for i := range toks {
			toks[i] = a.mfaToken(t, u.Username, u.Password)
		}
		rs := fanOut(t, 20, func(i int) (response, error) {
			return a.postJSON("/v1/mfa/totp/verify", toks[i%len(toks)], codeBody{wrongCode(u.Secret, s, i)})
		})
		got := tally(rs)
		if got["401 mfa_failed"] != 5 || got["429 rate_limited"] != 15 {
			t.Errorf("burst of 20 wrong codes on 4 tokens: %v, want exactly 5 evaluated (401 mfa_failed), 15 throttled (429)", got)
		}
		for _, r := range rs {
			if r.Status == http.StatusTooManyRequests {
				if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 {
					t.Errorf("429 with Retry-After %q, want whole seconds ≥ 1", r.Header.Get("Retry-After"))
				}
			}
		}
		fresh := a.mfaToken(t, u.Username, u.Password)
		r := a.verify(t, fresh, u.code(s))
		r.wantProblem(t, http.StatusTooManyRequests, "rate_limited")
		ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil || ra < 1 || ra > 60 {
			t.Fatalf("Retry-After %q, want 1–60 seconds", r.Header.Get("Retry-After"))
		}
		// Control: after the back-off the same code on the same token works,
		// so the 429 spent neither the code's step nor the token.
		a.Clock.Advance(time.Duration(ra) * time.Second)
		if r := a.verify(t, fresh, u.code(s)); r.Status != http.StatusOK {
			t.Fatalf("right code after Retry-After: status %d, want 200; %s", r.Status, r.Body)
		}
	})

	t.Run("PasswordBudget", func(t *testing.T) {
		const name, pw = "password-budget", "the right password"
		a.signup(t, name, pw)
		rs := fanOut(t, 16, func(i int) (response, error) {
			return a.postJSON("/v1/login", "", credentials{name, "wrong password " + strconv.Itoa(i)})
		})
		got := tally(rs)
		// A burst beyond the hasher's queue (NumCPU-sized) is answered 503
		// overloaded before any budget slot is spent; the budget evaluates
		// at most its 10 free guesses and throttles only after all 10.
		evaluated := got["401 invalid_credentials"]
		if evaluated > 10 || evaluated+got["503 overloaded"]+got["429 rate_limited"] != 16 ||
			(got["429 rate_limited"] > 0 && evaluated != 10) {
			t.Fatalf("burst of 16 wrong passwords: %v, want at most 10 evaluated, 429 only after 10", got)
		}
		// Top up one at a time: the budget throttles after exactly 10.
		for i := 0; ; i++ {
			r := a.post(t, "/v1/login", "", credentials{name, "another wrong password " + strconv.Itoa(i)})
			if r.Status == http.StatusTooManyRequests {
				break
			}
			r.wantProblem(t, http.StatusUnauthorized, "invalid_credentials")
			if evaluated++; evaluated > 10 {
				t.Fatalf("%d wrong passwords evaluated, want the budget to stop at 10", evaluated)
			}
		}
		if evaluated != 10 {
			t.Fatalf("throttled after %d wrong passwords, want 10", evaluated)
		}
		r := a.post(t, "/v1/login", "", credentials{name, pw})
		r.wantProblem(t, http.StatusTooManyRequests, "rate_limited")
		ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil || ra < 1 || ra > 60 {
			t.Fatalf("Retry-After %q, want 1–60 seconds", r.Header.Get("Retry-After"))
		}
		a.Clock.Advance(time.Duration(ra) * time.Second)
		if l := a.login(t, name, pw); l.Status != "authenticated" {
			t.Fatalf("right password after Retry-After: %+v, want authenticated", l)
		}
	})
}
