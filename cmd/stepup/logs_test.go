package main

import (
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stepup-auth/stepup/tokens"
)

// TestLogsHoldNoSecrets runs a full flow, with failures of every kind, while
// the App logs at debug level as JSON into a buffer; then no password,
// code, TOTP secret, refresh token or JWT may appear in the log.
func TestLogsHoldNoSecrets(t *testing.T) {
	var logs syncBuffer
	a := startApp(t, appOptions{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	const username, password, wrongPassword = "logged-user", "hunter2 is not a password", "hunter3 is not either"
	var secrets []string // literal strings that must not appear
	var codes []string   // six-digit codes, matched as whole numbers
	keep := func(s ...string) { secrets = append(secrets, s...) }
	keepJWT := func(tok string) { keep(tok, tok[strings.LastIndexByte(tok, '.')+1:]) }
	keep(password, wrongPassword)

	a.signup(t, username, password)
	aal1 := a.login(t, username, password)
	keepJWT(aal1.AccessToken)
	keep(aal1.RefreshToken)
	var enr factorResult
	a.post(t, "/v1/me/factors/totp", aal1.AccessToken, nil).decode(t, http.StatusCreated, &enr)
	secret := decodeBase32(t, enr.Secret)
	keep(enr.Secret, enr.URI, hex.EncodeToString(secret), base64.StdEncoding.EncodeToString(secret),
		base64.RawURLEncoding.EncodeToString(secret))
	s := a.Clock.step()
	bad := wrongCode(secret, s, 0)
	codes = append(codes, bad, totpCode(secret, s-1), totpCode(secret, s))

	// A wrong code at confirmation is 400 there: the access token was fine.
	a.post(t, "/v1/me/factors/totp/"+enr.ID+"/confirm", aal1.AccessToken, codeBody{bad}).
		wantProblem(t, http.StatusBadRequest, "mfa_failed")
	var conf factorResult
	a.post(t, "/v1/me/factors/totp/"+enr.ID+"/confirm", aal1.AccessToken, codeBody{totpCode(secret, s-1)}).
		decode(t, http.StatusOK, &conf)
	if len(conf.RecoveryCodes) == 0 {
		t.Fatalf("confirmation %+v brought no recovery codes", conf)
	}
	for _, rc := range conf.RecoveryCodes {
		keep(rc, strings.ReplaceAll(rc, "-", ""), strings.ToUpper(strings.ReplaceAll(rc, "-", "")))
	}
	a.post(t, "/v1/login", "", credentials{username, wrongPassword}).wantProblem(t, http.StatusUnauthorized, "invalid_credentials")
	a.post(t, "/v1/login", "", credentials{"nobody-" + username, password}).wantProblem(t, http.StatusUnauthorized, "invalid_credentials")
	mfaToken := a.mfaToken(t, username, password)
	keepJWT(mfaToken)
	a.verify(t, mfaToken, bad).wantProblem(t, http.StatusUnauthorized, "mfa_failed")
	a.raw(t, "/v1/mfa/totp/verify", mfaToken, "application/json", []byte(`{"code":"`+totpCode(secret, s)+`","x":1}`)).
		wantProblem(t, http.StatusBadRequest, "invalid_request")
	var aal2 loginResult
	a.verify(t, mfaToken, totpCode(secret, s)).decode(t, http.StatusOK, &aal2)
	keepJWT(aal2.AccessToken)
	keep(aal2.RefreshToken)
	a.verify(t, mfaToken, totpCode(secret, s+1)).wantProblem(t, http.StatusUnauthorized, "invalid_token")
	a.get(t, "/v1/me", aal2.AccessToken[:len(aal2.AccessToken)-4]+"AAAA").wantProblem(t, http.StatusUnauthorized, "invalid_token")
	a.get(t, "/v1/me", mfaToken).wantProblem(t, http.StatusUnauthorized, "invalid_token")
	var rotated loginResult
	a.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": aal2.RefreshToken}).decode(t, http.StatusOK, &rotated)
	keepJWT(rotated.AccessToken)
	keep(rotated.RefreshToken)
	a.Clock.Advance(tokens.DefaultGrace) // past the two-tabs grace: a reuse
	a.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": aal2.RefreshToken}).
		wantProblem(t, http.StatusBadRequest, "invalid_grant")
	// A recovery code: one wrong, one right; then sign out.
	recToken := a.mfaToken(t, username, password)
	keepJWT(recToken)
	a.post(t, "/v1/mfa/recovery/verify", recToken, codeBody{"aaaa-bbbb-cccc-dddd"}).
		wantProblem(t, http.StatusUnauthorized, "mfa_failed")
	var rec loginResult
	a.post(t, "/v1/mfa/recovery/verify", recToken, codeBody{conf.RecoveryCodes[0]}).decode(t, http.StatusOK, &rec)
	keepJWT(rec.AccessToken)
	keep(rec.RefreshToken)
	if r := a.post(t, "/v1/logout", rec.AccessToken, nil); r.Status/100 != 2 {
		t.Fatalf("logout: status %d, want 2xx; %s", r.Status, r.Body)
	}

	out := logs.String()
	t.Run("LogsCaptured", func(t *testing.T) {
		// The scan below means something only if the failures were logged.
		for _, want := range []string{`"level":"DEBUG"`, `"code":"mfa_failed"`, `"code":"invalid_token"`, "refresh token reuse"} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %s; log:\n%s", want, out)
			}
		}
	})
	t.Run("NoSecrets", func(t *testing.T) {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("log contains secret %.20q…", s)
			}
		}
		for _, c := range codes {
			// As a whole number, and not as a fraction or a JSON number
			// (a duration in nanoseconds may have six digits too).
			if regexp.MustCompile(`(^|[^0-9.:])` + c + `([^0-9]|$)`).MatchString(out) {
				t.Errorf("log contains code %s", c)
			}
		}
	})
}
