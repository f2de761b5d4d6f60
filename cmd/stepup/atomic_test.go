package main

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"
)

// Races between writes to one user or one session, over HTTP on several
// instances sharing one database: each change is a field-level conditional
// update, so a removal or a revocation is never undone by a concurrent
// write, and unrelated changes never conflict.

// atSignIn signs u in with the password and the code of the clock's step
// and returns the tokens (a fresh aal2 session).
func atSignIn(tb testing.TB, a *testApp, u totpUser) loginResult {
	tb.Helper()
	var l loginResult
	a.verify(tb, a.mfaToken(tb, u.Username, u.Password), u.code(a.Clock.step())).decode(tb, http.StatusOK, &l)
	if l.ACR != "aal2" || l.AccessToken == "" || l.RefreshToken == "" {
		tb.Fatalf("sign-in: acr %q, access %t, refresh %t; want aal2 with both tokens", l.ACR, l.AccessToken != "", l.RefreshToken != "")
	}
	return l
}

// atEnrollTOTP adds a confirmed TOTP factor named name with a fresh aal2
// access token, confirming it with the code of the clock's step.
func atEnrollTOTP(tb testing.TB, a *testApp, token, name string) (string, []byte) {
	tb.Helper()
	var enr factorResult
	a.post(tb, "/v1/me/factors/totp", token, map[string]string{"name": name}).decode(tb, http.StatusCreated, &enr)
	secret := decodeBase32(tb, enr.Secret)
	var conf factorResult
	a.post(tb, "/v1/me/factors/totp/"+enr.ID+"/confirm", token, codeBody{totpCode(secret, a.Clock.step())}).
		decode(tb, http.StatusOK, &conf)
	if !conf.Confirmed || conf.Name != name {
		tb.Fatalf("confirm: %+v, want a confirmed factor named %q", conf, name)
	}
	return enr.ID, secret
}

// atRename sends PATCH /v1/me/factors/{id}; it never fails the test.
func (a *testApp) atRename(token, id, name string) (response, error) {
	return a.send(http.MethodPatch, "/v1/me/factors/"+id, token, "application/json", []byte(`{"name":"`+name+`"}`))
}

// TestRemovalRacingRenames removes a factor while ten renames of the same
// factor run on three instances. A rename is a $set of the factor's name
// conditional on the factor being there, so one that lands after the
// removal matches nothing (404) and cannot bring the factor back, not even
// as a nameless stub; the removed factor's codes stop working and the
// other factor keeps working.
func TestRemovalRacingRenames(t *testing.T) {
	const trials, renames, instances = 10, 10, 3
	apps := startApps(t, instances, appOptions{})
	a := apps[0]
	u := newTOTPUser(t, a, "removal-race")
	tok := atSignIn(t, a, u).AccessToken
	outcomes := map[string]int{}
	for trial := range trials {
		victim, secret := atEnrollTOTP(t, a, tok, fmt.Sprintf("victim %d", trial))
		rs := fanOut(t, 1+renames, func(i int) (response, error) {
			if i == 0 {
				return apps[0].send(http.MethodDelete, "/v1/me/factors/"+victim, tok, "", nil)
			}
			return apps[i%instances].atRename(tok, victim, fmt.Sprintf("renamed %d-%d", trial, i))
		})
		if rs[0].Status != http.StatusNoContent {
			t.Fatalf("trial %d: DELETE: status %d, want 204; body %s", trial, rs[0].Status, rs[0].Body)
		}
		for i, r := range rs[1:] {
			if r.Status != http.StatusOK && (r.Status != http.StatusNotFound || r.code() != "not_found") {
				t.Errorf("trial %d: rename %d: status %d code %q, want 200 or 404 not_found", trial, i+1, r.Status, r.code())
			}
			outcomes[fmt.Sprintf("%d %s", r.Status, r.code())]++
		}

		for _, b := range apps {
			fs := b.waFactors(t, tok)
			if len(fs) != 1 || fs[0].ID != u.FactorID || fs[0].Name != "Authenticator app" || !fs[0].Confirmed {
				t.Fatalf("trial %d: factors on %s after the race: %+v; want only %s (\"Authenticator app\")", trial, b.base, fs, u.FactorID)
			}
			b.get(t, "/v1/me/factors/"+victim, tok).wantProblem(t, http.StatusNotFound, "not_found")
		}

		// A new step, so both factors have an unused code: the removed
		// factor's is refused, the other's accepted.
		a.Clock.Advance(30 * time.Second)
		s := a.Clock.step()
		b := apps[trial%instances]
		mfa := b.mfaToken(t, u.Username, u.Password)
		b.verify(t, mfa, totpCode(secret, s)).wantProblem(t, http.StatusUnauthorized, "mfa_failed")
		var l loginResult
		b.verify(t, mfa, u.code(s)).decode(t, http.StatusOK, &l)
		tok = l.AccessToken
	}
	t.Logf("renames over %d trials: %v", trials, outcomes)
}

// TestLogoutRacingStepUp ends a session while a step-up of it is being
// verified. Whichever lands first, the session stays ended: the step-up
// raises the session with an update conditional on it being live, and the
// revocation is a field nothing else writes, so neither its refresh token
// nor any access token — one the step-up issued included — works after.
func TestLogoutRacingStepUp(t *testing.T) {
	const trials = 10
	apps := startApps(t, 2, appOptions{})
	a := apps[0]
	var (
		won        int
		verifyTime time.Duration
	)
	for trial := range trials {
		// A session at aal1 (password) of a user with a TOTP app, whose
		// code of the clock's step is unused.
		sess, secret, _ := suEnroll(t, a, fmt.Sprintf("logout-race-%d", trial))
		var pending loginResult
		a.post(t, "/v1/stepup", sess.AccessToken, suStepupBody{ACRValues: "aal2"}).decode(t, http.StatusOK, &pending)
		if pending.Status != "mfa_required" || pending.MFAToken == "" {
			t.Fatalf("trial %d: stepup: %+v, want mfa_required with an mfa_token", trial, pending)
		}
		code := totpCode(secret, a.Clock.step())
		// Released together, the logout nearly always lands before the
		// verify's last write; so from trial 1 on it leaves later and
		// later, by up to 9/8 of the verify's time in trial 0, sweeping
		// the window.
		delay := verifyTime * time.Duration(trial) / (trials - 2)
		rs := fanOut(t, 2, func(i int) (response, error) {
			if i == 0 {
				began := time.Now()
				defer func() {
					if trial == 0 {
						verifyTime = time.Since(began)
					}
				}()
				return apps[trial%2].postJSON("/v1/mfa/totp/verify", pending.MFAToken, codeBody{code})
			}
			time.Sleep(delay) // an offset within the race, not a wait for a server
			return apps[(trial+1)%2].send(http.MethodPost, "/v1/logout", sess.AccessToken, "", nil)
		})
		if rs[1].Status != http.StatusNoContent {
			t.Fatalf("trial %d: logout: status %d, want 204; body %s", trial, rs[1].Status, rs[1].Body)
		}
		access := []string{sess.AccessToken}
		switch v := rs[0]; {
		case v.Status == http.StatusOK:
			var raised loginResult
			v.decode(t, http.StatusOK, &raised)
			if raised.ACR != "aal2" || raised.AccessToken == "" || raised.RefreshToken != "" {
				t.Fatalf("trial %d: step-up tokens %+v, want an aal2 access token and no refresh token", trial, raised)
			}
			access = append(access, raised.AccessToken)
			won++
		case v.Status == http.StatusUnauthorized && v.code() == "invalid_token":
		default:
			t.Fatalf("trial %d: step-up verify: status %d code %q, want 200 or 401 invalid_token; body %s", trial, v.Status, v.code(), v.Body)
		}

		for _, b := range apps {
			r := b.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": sess.RefreshToken})
			if r.Status != http.StatusBadRequest || r.code() != "invalid_grant" {
				t.Errorf("trial %d: refresh on %s after logout: status %d code %q, want 400 invalid_grant", trial, b.base, r.Status, r.code())
			}
			for i, tok := range access {
				if r := b.get(t, "/v1/me", tok); r.Status != http.StatusUnauthorized || r.code() != "invalid_token" {
					t.Errorf("trial %d: access token %d on %s after logout: status %d code %q, want 401 invalid_token",
						trial, i, b.base, r.Status, r.code())
				}
			}
		}
	}
	t.Logf("the step-up answered 200 in %d of %d trials, 401 in the others (verify took %v in trial 0)", won, trials, verifyTime)
}

// TestPasswordChangeRacingRenames changes the password while renames of a
// factor run without pause on three instances: the password and a factor's
// name are different fields, so the change never conflicts (no 409), no
// rename is refused, and both writes survive.
func TestPasswordChangeRacingRenames(t *testing.T) {
	const trials, workers, instances = 4, 6, 3
	apps := startApps(t, instances, appOptions{})
	a := apps[0]
	u := newTOTPUser(t, a, "password-race")
	tok := atSignIn(t, a, u).AccessToken
	renamed := 0
	for trial := range trials {
		next := fmt.Sprintf("new password %d, correct horse", trial)
		var (
			mu      sync.Mutex
			names   = map[string]bool{}
			refused []string
			change  response
			err     error
			wg      sync.WaitGroup
		)
		start, done := make(chan struct{}), make(chan struct{})
		wg.Go(func() {
			<-start
			defer close(done)
			change, err = apps[trial%instances].postJSON("/v1/me/password", tok,
				map[string]string{"current_password": u.Password, "new_password": next})
		})
		for w := range workers {
			wg.Go(func() {
				<-start
				for n := 0; ; n++ {
					select {
					case <-done:
						return
					default:
					}
					name := fmt.Sprintf("name %d-%d-%d", trial, w, n)
					r, err := apps[w%instances].atRename(tok, u.FactorID, name)
					mu.Lock()
					switch {
					case err != nil:
						refused = append(refused, err.Error())
					case r.Status != http.StatusOK:
						refused = append(refused, fmt.Sprintf("%d %s", r.Status, r.Body))
					default:
						names[name] = true
					}
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if err != nil {
			t.Fatalf("trial %d: password change: %v", trial, err)
		}
		if change.Status != http.StatusNoContent {
			t.Fatalf("trial %d: password change: status %d, want 204; body %s", trial, change.Status, change.Body)
		}
		if len(refused) > 0 {
			t.Errorf("trial %d: %d renames refused, want none: %v", trial, len(refused), refused)
		}
		if len(names) == 0 {
			t.Errorf("trial %d: no rename ran during the password change", trial)
		}
		renamed += len(names)
		fs := a.waFactors(t, tok)
		if len(fs) != 1 || !names[fs[0].Name] {
			t.Errorf("trial %d: factors %+v, want the one factor named by one of this trial's renames", trial, fs)
		}
		if l := apps[(trial+1)%instances].login(t, u.Username, next); l.Status != "mfa_required" || l.MFAToken == "" {
			t.Fatalf("trial %d: sign-in with the new password: %+v, want mfa_required", trial, l)
		}
		old := u.Password
		u.Password = next
		if trial == trials-1 {
			a.post(t, "/v1/login", "", credentials{u.Username, old}).wantProblem(t, http.StatusUnauthorized, "invalid_credentials")
		}
	}
	t.Logf("%d renames succeeded during %d password changes", renamed, trials)
}

// atAssertAt signs an assertion carrying exactly counter count.
func atAssertAt(k *waKey, o *virtualwebauthn.AssertionOptions, count uint32) []byte {
	k.cred.Counter = count - 1
	return k.assert(o)
}

// TestWebAuthnSameCounterOnce presents two second-factor assertions that
// carry the same signature counter, each answering its own mfa_token and
// ceremony: the counter is recorded with an update conditional on the
// stored one being lower, so exactly one of them signs in — one after the
// other, and when both are sent at once to two instances.
func TestWebAuthnSameCounterOnce(t *testing.T) {
	const rounds = 4
	apps := startApps(t, 2, appOptions{})
	a := apps[0]
	const username, password = "wa-same-counter", "correct horse battery staple"
	user := a.signup(t, username, password)
	keys := []*waKey{waNewKey(t, user.ID, false)}
	a.waRegister(t, a.login(t, username, password).AccessToken, keys[0], "key 0")
	aal3 := a.waWantTokens(t, a.waSecondFactor(t, a.mfaToken(t, username, password), keys[0]),
		user.ID, "aal3", "pwd", "hwk", "user", "mfa").AccessToken
	for r := 1; r <= rounds; r++ {
		k := waNewKey(t, user.ID, false)
		a.waRegister(t, aal3, k, fmt.Sprintf("key %d", r))
		keys = append(keys, k)
	}

	// ceremonies signs in with the password twice and answers each
	// mfa_token's own ceremony with k at counter count.
	ceremonies := func(t *testing.T, k *waKey, count uint32) (toks []string, bodies [][]byte) {
		toks = loginMany(t, apps, username, password, 2)
		for i, tok := range toks {
			bodies = append(bodies, atAssertAt(k, apps[i].waRequest(t, "/v1/mfa/webauthn/options", tok), count))
		}
		return toks, bodies
	}

	t.Run("OneAfterTheOther", func(t *testing.T) {
		toks, bodies := ceremonies(t, keys[0], 7)
		a.waWantTokens(t, a.raw(t, "/v1/mfa/webauthn/verify", toks[0], "application/json", bodies[0]),
			user.ID, "aal3", "pwd", "hwk", "user", "mfa")
		apps[1].raw(t, "/v1/mfa/webauthn/verify", toks[1], "application/json", bodies[1]).
			wantProblem(t, http.StatusUnauthorized, "mfa_failed")
	})

	t.Run("AtOnce", func(t *testing.T) {
		for r := 1; r <= rounds; r++ {
			toks, bodies := ceremonies(t, keys[r], 3)
			rs := fanOut(t, 2, func(i int) (response, error) {
				return apps[i].send(http.MethodPost, "/v1/mfa/webauthn/verify", toks[i], "application/json", bodies[i])
			})
			if got := tally(rs); got["200 "] != 1 || got["401 mfa_failed"] != 1 {
				t.Errorf("round %d: two assertions with counter 3 at once: %v, want one 200 and one 401 mfa_failed", r, got)
			}
		}
	})
}
