package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/tokens/guard"
)

// suRewrite sends requests for the test issuer's host to the test App, so
// a resource server can discover the JWKS from the issuer URL as it would
// in production.
type suRewrite struct{ host string }

func (r suRewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Host = r.host
	return http.DefaultTransport.RoundTrip(req)
}

// suResourceServer is an example API guarded by the resource-server
// package, verifying offline against the App's JWKS: /transfer needs aal2
// within 5 minutes, /admin aal3.
func suResourceServer(tb testing.TB, a *testApp) *httptest.Server {
	tb.Helper()
	u, _ := url.Parse(a.base)
	jwks, err := guard.NewJWKS(context.Background(), guard.JWKSConfig{Issuer: testIssuer,
		Client: &http.Client{Transport: suRewrite{u.Host}, Timeout: 10 * time.Second}, Now: a.Clock.Now})
	if err != nil {
		tb.Fatalf("jwks: %v", err)
	}
	tb.Cleanup(func() { _ = jwks.Close() })
	g, err := guard.New(jwks, guard.Config{Issuer: testIssuer, Audience: "stepup", Now: a.Clock.Now})
	if err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := guard.FromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]any{"acr": claims.ACR, "sid": claims.Session})
	})
	mux.Handle("/transfer", g.Require("aal2", 5*time.Minute)(ok))
	mux.Handle("/admin", g.Require("aal3", 0)(ok))
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return srv
}

func suCall(tb testing.TB, srv *httptest.Server, path, token string) *http.Response {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	res.Body.Close()
	return res
}

// suEnroll signs up a user, signs in at aal1 and confirms a TOTP app with
// the code of the previous step; it returns the aal1 tokens, the secret and
// the first recovery codes.
func suEnroll(tb testing.TB, a *testApp, name string) (loginResult, []byte, []string) {
	tb.Helper()
	pw := "pw-" + name + "-correct horse"
	a.signup(tb, name, pw)
	l := a.login(tb, name, pw)
	var enr factorResult
	a.post(tb, "/v1/me/factors/totp", l.AccessToken, nil).decode(tb, http.StatusCreated, &enr)
	secret := decodeBase32(tb, enr.Secret)
	var conf struct {
		Confirmed     bool     `json:"confirmed"`
		RecoveryCodes []string `json:"recovery_codes"`
	}
	a.post(tb, "/v1/me/factors/totp/"+enr.ID+"/confirm", l.AccessToken, codeBody{totpCode(secret, a.Clock.step()-1)}).
		decode(tb, http.StatusOK, &conf)
	if !conf.Confirmed || len(conf.RecoveryCodes) != 10 {
		tb.Fatalf("confirm: confirmed %v with %d recovery codes; want true with 10", conf.Confirmed, len(conf.RecoveryCodes))
	}
	return l, secret, conf.RecoveryCodes
}

type suStepupBody struct {
	ACRValues string  `json:"acr_values"`
	MaxAge    *int64  `json:"max_age,omitempty"`
	Password  *string `json:"password,omitempty"`
}

func TestStepUpLoop(t *testing.T) {
	a := startApp(t, appOptions{})
	api := suResourceServer(t, a)
	l, secret, _ := suEnroll(t, a, "stepper")

	// 1. The aal1 token is challenged by the resource server.
	res := suCall(t, api, "/transfer", l.AccessToken)
	challenge := res.Header.Get("WWW-Authenticate")
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(challenge, `error="insufficient_user_authentication"`) ||
		!strings.Contains(challenge, `acr_values="aal2"`) || !strings.Contains(challenge, `max_age="300"`) {
		t.Fatalf("aal1 token at /transfer: %d %q; want 401 insufficient_user_authentication acr_values aal2 max_age 300", res.StatusCode, challenge)
	}

	// 2. The client steps up through the service, as the challenge says.
	maxAge := int64(300)
	var pending loginResult
	a.post(t, "/v1/stepup", l.AccessToken, suStepupBody{"aal2", &maxAge, nil}).decode(t, http.StatusOK, &pending)
	if pending.Status != "mfa_required" || pending.MFAToken == "" || strings.Join(pending.Factors, ",") != "totp,recovery" {
		t.Fatalf("stepup: %+v; want mfa_required offering totp,recovery", pending)
	}
	var raised loginResult
	a.verify(t, pending.MFAToken, totpCode(secret, a.Clock.step())).decode(t, http.StatusOK, &raised)
	if raised.ACR != "aal2" || strings.Join(raised.AMR, ",") != "pwd,otp,mfa" || raised.RefreshToken != "" {
		t.Fatalf("stepped-up tokens: acr %q amr %v refresh %q; want aal2 [pwd otp mfa] and no new refresh token", raised.ACR, raised.AMR, raised.RefreshToken)
	}
	before := parseJWT(t, l.AccessToken).Claims["sid"]
	if after := parseJWT(t, raised.AccessToken).Claims["sid"]; after != before {
		t.Fatalf("step-up changed the session: sid %v → %v", before, after)
	}

	// 3. The API now answers.
	if res := suCall(t, api, "/transfer", raised.AccessToken); res.StatusCode != http.StatusOK {
		t.Fatalf("aal2 token at /transfer: %d, want 200", res.StatusCode)
	}

	t.Run("MaxAgeChallenge", func(t *testing.T) {
		a.Clock.Advance(6 * time.Minute) // the token is still valid, its authentication too old
		res := suCall(t, api, "/transfer", raised.AccessToken)
		if h := res.Header.Get("WWW-Authenticate"); res.StatusCode != http.StatusUnauthorized || !strings.Contains(h, `max_age="300"`) {
			t.Fatalf("stale token at /transfer: %d %q; want 401 with max_age", res.StatusCode, h)
		}
		// What the session proved is older than max_age, so a TOTP code
		// alone (one factor) cannot make it aal2 again: the password is
		// asked for too.
		a.post(t, "/v1/stepup", raised.AccessToken, suStepupBody{"aal2", &maxAge, nil}).
			wantProblem(t, http.StatusBadRequest, "password_required")
		wrong := "not the password at all"
		a.post(t, "/v1/stepup", raised.AccessToken, suStepupBody{"aal2", &maxAge, &wrong}).
			wantProblem(t, http.StatusBadRequest, "invalid_credentials")
		pw := "pw-stepper-correct horse"
		var again loginResult
		a.post(t, "/v1/stepup", raised.AccessToken, suStepupBody{"aal2", &maxAge, &pw}).decode(t, http.StatusOK, &again)
		if again.Status != "mfa_required" || strings.Join(again.Factors, ",") != "totp,recovery" {
			t.Fatalf("stepup with a stale auth_time and the password: %+v, want mfa_required offering totp,recovery", again)
		}
		var fresh loginResult
		a.verify(t, again.MFAToken, totpCode(secret, a.Clock.step())).decode(t, http.StatusOK, &fresh)
		if res := suCall(t, api, "/transfer", fresh.AccessToken); res.StatusCode != http.StatusOK {
			t.Fatalf("fresh token at /transfer: %d, want 200", res.StatusCode)
		}
		if c := parseJWT(t, fresh.AccessToken).Claims; c["acr"] != "aal2" || fmt.Sprint(c["amr"]) != "[pwd otp mfa]" {
			t.Fatalf("re-authenticated token: acr %v amr %v, want aal2 [pwd otp mfa]", c["acr"], c["amr"])
		}
		var same loginResult
		a.post(t, "/v1/stepup", fresh.AccessToken, suStepupBody{"aal2", &maxAge, nil}).decode(t, http.StatusOK, &same)
		if same.Status != "authenticated" || same.AccessToken == "" {
			t.Fatalf("stepup already satisfied: status %q; want authenticated with a token", same.Status)
		}
	})

	t.Run("AAL3UnreachableWithTOTPOrRecovery", func(t *testing.T) {
		res := a.post(t, "/v1/stepup", raised.AccessToken, suStepupBody{ACRValues: "aal3"})
		res.wantProblem(t, http.StatusForbidden, "unmet_authentication_requirements")
		if res := suCall(t, api, "/admin", raised.AccessToken); res.StatusCode != http.StatusUnauthorized ||
			!strings.Contains(res.Header.Get("WWW-Authenticate"), `acr_values="aal3"`) {
			t.Fatalf("aal2 token at /admin: %d %q; want the aal3 challenge", res.StatusCode, res.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("UnknownACRRefused", func(t *testing.T) {
		a.post(t, "/v1/stepup", raised.AccessToken, suStepupBody{ACRValues: "gold"}).wantProblem(t, http.StatusBadRequest, "invalid_request")
	})
}

func TestRefreshNeverRaises(t *testing.T) {
	a := startApp(t, appOptions{})
	a.signup(t, "plain", "correct horse battery")
	l := a.login(t, "plain", "correct horse battery")
	a.Clock.Advance(2 * time.Minute)
	var r loginResult
	a.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": l.RefreshToken}).decode(t, http.StatusOK, &r)
	was, now := parseJWT(t, l.AccessToken).Claims, parseJWT(t, r.AccessToken).Claims
	if r.ACR != "aal1" || now["acr"] != "aal1" || now["auth_time"] != was["auth_time"] || strings.Join(r.AMR, ",") != "pwd" {
		t.Fatalf("refresh: acr %q/%v auth_time %v→%v amr %v; want aal1, the original auth_time, [pwd]", r.ACR, now["acr"], was["auth_time"], now["auth_time"], r.AMR)
	}
}

// TestSessionEndsEverywhere: logout, revocation and factor removal on one
// instance take effect at once on another sharing the store.
func TestSessionEndsEverywhere(t *testing.T) {
	apps := startApps(t, 2, appOptions{})
	a, b := apps[0], apps[1]

	t.Run("Logout", func(t *testing.T) {
		a.signup(t, "leaver", "correct horse battery")
		l := a.login(t, "leaver", "correct horse battery")
		if r := b.get(t, "/v1/me", l.AccessToken); r.Status != http.StatusOK {
			t.Fatalf("before logout: %d", r.Status)
		}
		if r := a.post(t, "/v1/logout", l.AccessToken, nil); r.Status != http.StatusNoContent {
			t.Fatalf("logout: %d %s", r.Status, r.Body)
		}
		b.get(t, "/v1/me", l.AccessToken).wantProblem(t, http.StatusUnauthorized, "invalid_token")
		b.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": l.RefreshToken}).
			wantProblem(t, http.StatusBadRequest, "invalid_grant")
	})

	t.Run("Revoke", func(t *testing.T) {
		a.signup(t, "revoked", "correct horse battery")
		l := a.login(t, "revoked", "correct horse battery")
		r := b.raw(t, "/v1/token/revoke", "", "application/x-www-form-urlencoded",
			[]byte(url.Values{"token": {l.RefreshToken}}.Encode()))
		if r.Status != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		a.get(t, "/v1/me", l.AccessToken).wantProblem(t, http.StatusUnauthorized, "invalid_token")
		a.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": l.RefreshToken}).
			wantProblem(t, http.StatusBadRequest, "invalid_grant")
		unknown := b.raw(t, "/v1/token/revoke", "", "application/x-www-form-urlencoded", []byte("token=nonsense"))
		if unknown.Status != http.StatusOK {
			t.Fatalf("revoking an unknown token: %d, want 200 (RFC 7009 §2.2)", unknown.Status)
		}
	})

	t.Run("FactorRemoval", func(t *testing.T) {
		l, secret, _ := suEnroll(t, a, "remover")
		other := a.login(t, "remover", "pw-remover-correct horse") // a second session, on another device
		var otherTokens loginResult
		b.verify(t, other.MFAToken, totpCode(secret, a.Clock.step())).decode(t, http.StatusOK, &otherTokens)
		var factors struct {
			Factors []factorResult `json:"factors"`
		}
		a.get(t, "/v1/me/factors", l.AccessToken).decode(t, http.StatusOK, &factors)
		id := factors.Factors[0].ID
		// The aal1 session may not remove it.
		a.send(http.MethodDelete, "/v1/me/factors/"+id, l.AccessToken, "", nil)
		if r, _ := a.send(http.MethodDelete, "/v1/me/factors/"+id, l.AccessToken, "", nil); r.Status != http.StatusUnauthorized ||
			!strings.Contains(r.Header.Get("WWW-Authenticate"), `acr_values="aal2"`) {
			t.Fatalf("remove at aal1: %d %q; want 401 with the aal2 challenge", r.Status, r.Header.Get("WWW-Authenticate"))
		}
		// A fresh aal2 session removes it on instance B...
		a.Clock.Advance(30 * time.Second)
		mt := a.mfaToken(t, "remover", "pw-remover-correct horse")
		var strong loginResult
		a.verify(t, mt, totpCode(secret, a.Clock.step())).decode(t, http.StatusOK, &strong)
		// (it is the last second factor: that takes an explicit ?last=true)
		b.send(http.MethodDelete, "/v1/me/factors/"+id, strong.AccessToken, "", nil)
		if r, _ := b.send(http.MethodDelete, "/v1/me/factors/"+id, strong.AccessToken, "", nil); r.Status != http.StatusConflict || r.code() != "last_factor" {
			t.Fatalf("remove the last factor without ?last=true: %d %s, want 409 last_factor", r.Status, r.Body)
		}
		if r, _ := b.send(http.MethodDelete, "/v1/me/factors/"+id+"?last=true", strong.AccessToken, "", nil); r.Status != http.StatusNoContent {
			t.Fatalf("remove at fresh aal2: %d %s", r.Status, r.Body)
		}
		// ...which ends the other sessions on instance A at once,
		a.get(t, "/v1/me", otherTokens.AccessToken).wantProblem(t, http.StatusUnauthorized, "invalid_token")
		a.get(t, "/v1/me", l.AccessToken).wantProblem(t, http.StatusUnauthorized, "invalid_token")
		// and tokens issued afterwards in the remaining session name no removed method.
		var after loginResult
		a.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": strong.RefreshToken}).decode(t, http.StatusOK, &after)
		if after.ACR != "aal1" || strings.Join(after.AMR, ",") != "pwd" {
			t.Fatalf("after removal: acr %q amr %v; want aal1 [pwd]", after.ACR, after.AMR)
		}
	})
}

func TestRecoveryCodes(t *testing.T) {
	apps := startApps(t, 2, appOptions{})
	a := apps[0]
	_, _, codes := suEnroll(t, a, "recoverer")

	t.Run("UsedConcurrentlyOnce", func(t *testing.T) {
		const n = 10
		tokens := make([]string, n)
		for i := range tokens {
			tokens[i] = a.mfaToken(t, "recoverer", "pw-recoverer-correct horse")
		}
		rs := fanOut(t, n, func(i int) (response, error) {
			return apps[i%2].postJSON("/v1/mfa/recovery/verify", tokens[i], codeBody{codes[0]})
		})
		// Exactly one winner; the others are refused as a wrong code or,
		// once the account's five free attempts are spent, by its backoff.
		if got := tally(rs); got["200 "] != 1 || got["401 mfa_failed"]+got["429 rate_limited"] != n-1 {
			t.Fatalf("one recovery code sent %d times: %v; want exactly one 200", n, got)
		}
		for _, r := range rs {
			if r.Status != http.StatusOK {
				continue
			}
			var tok struct {
				ACR  string   `json:"acr"`
				AMR  []string `json:"amr"`
				Left int      `json:"recovery_codes_remaining"`
			}
			r.decode(t, http.StatusOK, &tok)
			if tok.ACR != "aal2" || strings.Join(tok.AMR, ",") != "pwd,rec,mfa" || tok.Left != 9 {
				t.Fatalf("recovery sign-in: %+v; want aal2 [pwd rec mfa] with 9 left", tok)
			}
		}
	})

	t.Run("MalformedCostsNothing", func(t *testing.T) {
		a.Clock.Advance(16 * time.Minute) // past any backoff the race above left (at most 15 min)
		mt := a.mfaToken(t, "recoverer", "pw-recoverer-correct horse")
		for range 6 { // more than the token's 5 attempts
			a.post(t, "/v1/mfa/recovery/verify", mt, codeBody{"not-a-code"}).wantProblem(t, http.StatusBadRequest, "invalid_request")
		}
		if r := a.post(t, "/v1/mfa/recovery/verify", mt, codeBody{strings.ToUpper(codes[1])}); r.Status != http.StatusOK {
			t.Fatalf("valid code after malformed ones: %d %s", r.Status, r.Body)
		}
	})
}
