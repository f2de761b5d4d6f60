package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// The tests in this file are the attacks of the flows issue, over real
// HTTP: each fails on a service that decides the policy in more than one
// place, or not at all.

// poEnroll starts a TOTP enrollment with token and returns its id and seed.
func (a *testApp) poEnroll(tb testing.TB, token string) (string, []byte) {
	tb.Helper()
	var enr factorResult
	a.post(tb, "/v1/me/factors/totp", token, nil).decode(tb, http.StatusCreated, &enr)
	return enr.ID, decodeBase32(tb, enr.Secret)
}

func (a *testApp) poFactors(tb testing.TB, token string) []factorResult {
	tb.Helper()
	var fs struct {
		Factors []factorResult `json:"factors"`
	}
	a.get(tb, "/v1/me/factors", token).decode(tb, http.StatusOK, &fs)
	return fs.Factors
}

func (a *testApp) poEvents(tb testing.TB, token string) []string {
	tb.Helper()
	var evs struct {
		Events []struct {
			Type string `json:"type"`
		} `json:"events"`
	}
	a.get(tb, "/v1/me/events", token).decode(tb, http.StatusOK, &evs)
	var out []string
	for _, e := range evs.Events {
		out = append(out, e.Type)
	}
	return out
}

// TestConfirmAppliesEnrollmentPolicy (hole 1): a thief with the password
// starts a TOTP enrollment while the victim has no factor; the victim then
// enables their own; confirming the thief's older enrollment with the
// password-only session must be refused, as starting a new one is.
func TestConfirmAppliesEnrollmentPolicy(t *testing.T) {
	a := startApp(t, appOptions{})
	const name, pw = "victim1", "victim one correct horse"
	a.signup(t, name, pw)
	thief := a.login(t, name, pw)
	thiefID, thiefSeed := a.poEnroll(t, thief.AccessToken)
	owner := a.login(t, name, pw)
	ownerID, ownerSeed := a.poEnroll(t, owner.AccessToken)
	a.post(t, "/v1/me/factors/totp/"+ownerID+"/confirm", owner.AccessToken, codeBody{totpCode(ownerSeed, a.Clock.step())}).
		decode(t, http.StatusOK, &factorResult{})
	// A new enrollment by the thief is refused...
	a.post(t, "/v1/me/factors/totp", thief.AccessToken, nil).wantProblem(t, http.StatusUnauthorized, "insufficient_user_authentication")
	// ...and so is confirming the one started before.
	r := a.post(t, "/v1/me/factors/totp/"+thiefID+"/confirm", thief.AccessToken, codeBody{totpCode(thiefSeed, a.Clock.step())})
	r.wantProblem(t, http.StatusUnauthorized, "insufficient_user_authentication")
	if h := r.Header.Get("WWW-Authenticate"); !strings.Contains(h, `acr_values="aal2"`) {
		t.Errorf("challenge %q, want acr_values aal2", h)
	}
	for _, f := range a.poFactors(t, owner.AccessToken) {
		if f.Confirmed && f.ID != ownerID {
			t.Fatalf("the thief's factor %s is confirmed", f.ID)
		}
	}
}

// TestStepUpCountsOnlyWhatIsWithinMaxAge (hole 2): after a passkey sign-in,
// a step-up to aal3 with max_age=0 answered by a security key without user
// verification proves one factor: it must not come back aal3 with mfa.
func TestStepUpCountsOnlyWhatIsWithinMaxAge(t *testing.T) {
	a := startApp(t, appOptions{})
	const name, pw = "passkeyuser", "passkey user correct horse"
	su := a.signup(t, name, pw)
	key := waNewKey(t, su.ID, false)
	a.waRegister(t, a.login(t, name, pw).AccessToken, key, "key")
	pass := a.waWantTokens(t, a.waPasskeySignIn(t, key), su.ID, "aal3", "hwk", "user", "mfa")
	a.Clock.Advance(time.Minute)
	zero := int64(0)
	var pending loginResult
	a.post(t, "/v1/stepup", pass.AccessToken, suStepupBody{"aal3", &zero, nil}).decode(t, http.StatusOK, &pending)
	if pending.Status != "mfa_required" || !slices.Equal(pending.Factors, []string{"webauthn"}) {
		t.Fatalf("step-up: %+v, want mfa_required offering webauthn", pending)
	}
	if amr := waClaims(t, pending.MFAToken)["amr"]; amr != nil && fmt.Sprint(amr) != "[]" {
		t.Fatalf("mfa_token amr %v: nothing of a session older than max_age=0 counts", amr)
	}
	// The ceremony requires user verification: the key alone is then the
	// whole authentication.
	opts := a.waRequest(t, "/v1/mfa/webauthn/options", pending.MFAToken)
	key.auth.Options.UserNotVerified = true
	r := a.raw(t, "/v1/mfa/webauthn/verify", pending.MFAToken, "application/json", key.assert(opts))
	key.auth.Options.UserNotVerified = false
	if r.Status == http.StatusOK {
		t.Fatalf("a key without user verification stepped up to: %s", r.Body)
	}
	r.wantProblem(t, http.StatusUnauthorized, "mfa_failed")
	// With user verification it is a multi-factor authenticator: aal3.
	a.waWantTokens(t, a.waSecondFactor(t, pending.MFAToken, key), su.ID, "aal3", "hwk", "user", "mfa")
}

// TestRemovalNeedsTheFactorsLevel (hole 3): an aal2 session (TOTP, or a
// recovery code) cannot remove a device-bound key, the user's only aal3
// factor; an aal3 session can.
func TestRemovalNeedsTheFactorsLevel(t *testing.T) {
	a := startApp(t, appOptions{})
	u := newTOTPUser(t, a, "keyowner")
	key := waNewKey(t, u.ID, false)
	a.Clock.Advance(30 * time.Second)
	totpSession := atSignIn(t, a, u)
	keyF := a.waRegister(t, totpSession.AccessToken, key, "desk key")
	waWantStepUp(t, a.waDelete(t, "/v1/me/factors/"+keyF.ID, totpSession.AccessToken), "aal3")
	waWantStepUp(t, a.waPatch(t, "/v1/me/factors/"+keyF.ID, totpSession.AccessToken, []byte(`{"name":"old junk"}`)), "aal3")

	var rec loginResult
	a.post(t, "/v1/mfa/recovery/verify", a.mfaToken(t, u.Username, u.Password), codeBody{u.RecoveryCodes[0]}).decode(t, http.StatusOK, &rec)
	waWantStepUp(t, a.waDelete(t, "/v1/me/factors/"+keyF.ID, rec.AccessToken), "aal3")
	if fs := a.poFactors(t, rec.AccessToken); len(fs) != 2 {
		t.Fatalf("%d factors after refused removals, want 2", len(fs))
	}
	aal3 := a.waWantTokens(t, a.waSecondFactor(t, a.mfaToken(t, u.Username, u.Password), key), u.ID, "aal3", "pwd", "hwk", "user", "mfa")
	if r := a.waDelete(t, "/v1/me/factors/"+keyF.ID, aal3.AccessToken); r.Status != http.StatusNoContent {
		t.Fatalf("remove at fresh aal3: %d %s", r.Status, r.Body)
	}
}

// TestLastFactorRemovalIsDeliberate: removing the last second factor needs
// ?last=true and leaves its own security event.
func TestLastFactorRemovalIsDeliberate(t *testing.T) {
	a := startApp(t, appOptions{})
	u := newTOTPUser(t, a, "lastone")
	a.Clock.Advance(30 * time.Second)
	s := atSignIn(t, a, u)
	a.waDelete(t, "/v1/me/factors/"+u.FactorID, s.AccessToken).wantProblem(t, http.StatusConflict, "last_factor")
	a.waDelete(t, "/v1/me/factors/"+u.FactorID+"?last=yes", s.AccessToken).wantProblem(t, http.StatusBadRequest, "invalid_request")
	if r := a.waDelete(t, "/v1/me/factors/"+u.FactorID+"?last=true", s.AccessToken); r.Status != http.StatusNoContent {
		t.Fatalf("remove with ?last=true: %d %s", r.Status, r.Body)
	}
	l := a.login(t, u.Username, u.Password)
	if l.Status != "authenticated" || l.ACR != "aal1" {
		t.Fatalf("sign-in after removing the last factor: %+v", l)
	}
	waitFor(t, func() bool { return slices.Contains(a.poEvents(t, l.AccessToken), "factor.last_removed") },
		"a factor.last_removed security event")
}

// TestOwnerUndoesThiefsFactor (hole 4): a password thief enables TOTP on a
// password-only account; the owner's session, older than that factor, sees
// it and removes it without being able to step up; after the undo window
// it could not.
func TestOwnerUndoesThiefsFactor(t *testing.T) {
	a := startApp(t, appOptions{})
	const name, pw = "owner4", "owner four correct horse"
	a.signup(t, name, pw)
	owner := a.login(t, name, pw)
	a.Clock.Advance(time.Minute)
	thief := a.login(t, name, pw)
	id, seed := a.poEnroll(t, thief.AccessToken)
	var conf factorResult
	a.post(t, "/v1/me/factors/totp/"+id+"/confirm", thief.AccessToken, codeBody{totpCode(seed, a.Clock.step())}).
		decode(t, http.StatusOK, &conf)
	if len(conf.RecoveryCodes) == 0 {
		t.Fatal("the thief's first factor should bring recovery codes")
	}
	// The owner sees the new factor and the event,
	fs := a.poFactors(t, owner.AccessToken)
	if len(fs) != 1 || fs[0].ID != id || !fs[0].Confirmed {
		t.Fatalf("owner's factor list %+v, want the thief's confirmed factor", fs)
	}
	waitFor(t, func() bool { return slices.Contains(a.poEvents(t, owner.AccessToken), "factor.added") }, "a factor.added event")
	// cannot step up (the factor is the thief's),
	a.post(t, "/v1/stepup", owner.AccessToken, suStepupBody{"aal2", nil, nil}).decode(t, http.StatusOK, &loginResult{})
	// but removes it at aal1 within the window.
	if r := a.waDelete(t, "/v1/me/factors/"+id+"?last=true", owner.AccessToken); r.Status != http.StatusNoContent {
		t.Fatalf("owner removes the thief's factor: %d %s", r.Status, r.Body)
	}
	if l := a.login(t, name, pw); l.Status != "authenticated" {
		t.Fatalf("sign-in after the undo: %+v, want password-only again", l)
	}
	// The session that added a factor has no such right, nor has anyone
	// once the window has passed.
	a.Clock.Advance(time.Minute)
	again := a.login(t, name, pw)
	id2, seed2 := a.poEnroll(t, again.AccessToken)
	a.post(t, "/v1/me/factors/totp/"+id2+"/confirm", again.AccessToken, codeBody{totpCode(seed2, a.Clock.step())}).
		decode(t, http.StatusOK, &factorResult{})
	a.waDelete(t, "/v1/me/factors/"+id2+"?last=true", again.AccessToken).wantProblem(t, http.StatusUnauthorized, "insufficient_user_authentication")
	a.Clock.Advance(25 * time.Hour)
	r := a.waDelete(t, "/v1/me/factors/"+id2+"?last=true", owner.AccessToken)
	if r.Status == http.StatusNoContent {
		t.Fatal("an old session removed a factor after the undo window")
	}
}

// TestLoginAndStepUpOfferTheSame (hole 5): a user whose only key is flagged
// and who has recovery codes is offered recovery at sign-in and at step-up
// alike, and the code works on that mfa_token.
func TestLoginAndStepUpOfferTheSame(t *testing.T) {
	a := startApp(t, appOptions{})
	const name, pw = "flagged", "flagged user correct horse"
	su := a.signup(t, name, pw)
	key := waNewKey(t, su.ID, false)
	l := a.login(t, name, pw)
	keyF := a.waRegister(t, l.AccessToken, key, "key")
	var codes struct {
		Codes []string `json:"recovery_codes"`
	}
	aal3 := a.waWantTokens(t, a.waSecondFactor(t, a.mfaToken(t, name, pw), key), su.ID, "aal3", "pwd", "hwk", "user", "mfa")
	a.post(t, "/v1/me/recovery-codes", aal3.AccessToken, nil).decode(t, http.StatusCreated, &codes)
	if err := a.DB().FlagCredential(context.Background(), su.ID, keyF.ID); err != nil {
		t.Fatal(err)
	}
	login := a.login(t, name, pw)
	if !slices.Equal(login.Factors, []string{"recovery"}) {
		t.Fatalf("login offers %v, want [recovery]", login.Factors)
	}
	var rec loginResult
	a.post(t, "/v1/mfa/recovery/verify", login.MFAToken, codeBody{codes.Codes[0]}).decode(t, http.StatusOK, &rec)
	zero := int64(0)
	var step loginResult
	pwCopy := pw
	a.post(t, "/v1/stepup", rec.AccessToken, suStepupBody{"aal2", &zero, &pwCopy}).decode(t, http.StatusOK, &step)
	if !slices.Equal(step.Factors, login.Factors) {
		t.Fatalf("step-up offers %v, login %v: they must agree", step.Factors, login.Factors)
	}
	a.post(t, "/v1/mfa/recovery/verify", step.MFAToken, codeBody{codes.Codes[1]}).decode(t, http.StatusOK, &loginResult{})
}

// TestFreshnessOfSensitiveChanges (hole 6): new recovery codes and a
// password change need a fresh aal2 once the user has a second factor.
func TestFreshnessOfSensitiveChanges(t *testing.T) {
	a := startApp(t, appOptions{})
	u := newTOTPUser(t, a, "fresh6")
	a.Clock.Advance(30 * time.Second)
	s := atSignIn(t, a, u)
	a.Clock.Advance(11 * time.Minute) // past the 10 minutes; the access token (15 min) still valid
	a.post(t, "/v1/me/recovery-codes", s.AccessToken, nil).wantProblem(t, http.StatusUnauthorized, "insufficient_user_authentication")
	change := map[string]string{"current_password": u.Password, "new_password": "a brand new correct horse"}
	a.post(t, "/v1/me/password", s.AccessToken, change).wantProblem(t, http.StatusUnauthorized, "insufficient_user_authentication")

	a.Clock.Advance(30 * time.Second)
	fresh := atSignIn(t, a, u)
	a.Clock.Advance(30 * time.Second)
	keep := atSignIn(t, a, u)
	a.post(t, "/v1/me/recovery-codes", fresh.AccessToken, nil).decode(t, http.StatusCreated, &struct{}{})
	wrong := map[string]string{"current_password": "not the password", "new_password": "a brand new correct horse"}
	a.post(t, "/v1/me/password", fresh.AccessToken, wrong).wantProblem(t, http.StatusBadRequest, "invalid_credentials")
	if r := a.post(t, "/v1/me/password", fresh.AccessToken, change); r.Status != http.StatusNoContent {
		t.Fatalf("password change at fresh aal2: %d %s", r.Status, r.Body)
	}
	a.get(t, "/v1/me", keep.AccessToken).wantProblem(t, http.StatusUnauthorized, "invalid_token")
	if r := a.get(t, "/v1/me", fresh.AccessToken); r.Status != http.StatusOK {
		t.Fatalf("the changing session should stay: %d", r.Status)
	}
	a.post(t, "/v1/login", "", credentials{u.Username, u.Password}).wantProblem(t, http.StatusUnauthorized, "invalid_credentials")
	if l := a.login(t, u.Username, "a brand new correct horse"); l.Status != "mfa_required" {
		t.Fatalf("sign-in with the new password: %+v", l)
	}

	// A password-only user changes the password with any session.
	b := startApp(t, appOptions{})
	b.signup(t, "plain", "plain user correct horse")
	pl := b.login(t, "plain", "plain user correct horse")
	b.Clock.Advance(14 * time.Minute) // stale, the access token still valid
	if r := b.post(t, "/v1/me/password", pl.AccessToken, map[string]string{"current_password": "plain user correct horse",
		"new_password": "plain user new horse"}); r.Status != http.StatusNoContent {
		t.Fatalf("password-only user, old session: %d %s", r.Status, r.Body)
	}
}

// TestCookieCSRF: a refresh that relies on the cookie needs the
// X-Stepup-Cookie header and an allowed Origin.
func TestCookieCSRF(t *testing.T) {
	a := startApp(t, appOptions{})
	a.signup(t, "cookie", "cookie user correct horse")
	do := func(path string, body any, hdr map[string]string) response {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = strings.NewReader(string(b))
		}
		req, _ := http.NewRequest(http.MethodPost, a.base+path, rd)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := a.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return response{Status: res.StatusCode, Header: res.Header, Body: b}
	}
	good := map[string]string{"X-Stepup-Cookie": "1", "Origin": testIssuer}
	r := do("/v1/login", credentials{"cookie", "cookie user correct horse"}, good)
	var l loginResult
	r.decode(t, http.StatusOK, &l)
	if l.RefreshToken != "" {
		t.Fatal("cookie mode put the refresh token in the body")
	}
	var cookie string
	for _, c := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "__Host-stepup-refresh=") {
			cookie = strings.SplitN(c, ";", 2)[0]
		}
	}
	if cookie == "" {
		t.Fatalf("no refresh cookie: %v", r.Header.Values("Set-Cookie"))
	}
	for name, hdr := range map[string]map[string]string{
		"NoHeader":      {"Cookie": cookie, "Origin": testIssuer},
		"NoOrigin":      {"Cookie": cookie, "X-Stepup-Cookie": "1"},
		"ForeignOrigin": {"Cookie": cookie, "X-Stepup-Cookie": "1", "Origin": "https://evil.example"},
		"WrongHeader":   {"Cookie": cookie, "X-Stepup-Cookie": "true", "Origin": testIssuer},
	} {
		t.Run(name, func(t *testing.T) {
			do("/v1/token/refresh", nil, hdr).wantProblem(t, http.StatusForbidden, "csrf_check_failed")
		})
	}
	ok := map[string]string{"Cookie": cookie, "X-Stepup-Cookie": "1", "Origin": testIssuer}
	if r := do("/v1/token/refresh", nil, ok); r.Status != http.StatusOK {
		t.Fatalf("a proper cookie refresh: %d %s", r.Status, r.Body)
	}
}

// waitFor polls cond (security events are written off the request path).
func waitFor(tb testing.TB, cond func() bool, what string) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
