package main

import (
	"encoding/json"
	"testing"
	"time"
)

// TestOAuthErrorMember: refresh, revocation (RFC 7009) and introspection
// (RFC 7662) errors carry RFC 6749 §5.2's "error" member beside the
// problem's, so OAuth client libraries read them; other endpoints do not.
func TestOAuthErrorMember(t *testing.T) {
	a := startApp(t, appOptions{})
	oauthErr := func(r response) string {
		t.Helper()
		var body struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("body %s: %v", r.Body, err)
		}
		return body.Error
	}
	for _, tt := range []struct {
		name, path, ctype, body string
		status                  int
		want                    string
	}{
		{"RefreshUnknown", "/v1/token/refresh", "application/json", `{"refresh_token":"nope.nope"}`, 400, "invalid_grant"},
		{"RefreshBadForm", "/v1/token/refresh", "application/x-www-form-urlencoded", "grant_type=password", 400, "invalid_request"},
		{"RevokeNoToken", "/v1/token/revoke", "application/x-www-form-urlencoded", "", 400, "invalid_request"},
		{"RevokeNotAForm", "/v1/token/revoke", "application/json", `{}`, 415, "invalid_request"},
		{"IntrospectNoClient", "/v1/token/introspect", "application/x-www-form-urlencoded", "token=x", 401, "invalid_client"},
		{"LoginHasNone", "/v1/login", "application/json", `{"username":"x"}`, 400, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := a.raw(t, tt.path, "", tt.ctype, []byte(tt.body))
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			if got := oauthErr(r); got != tt.want {
				t.Fatalf("error member %q, want %q", got, tt.want)
			}
			if r.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("content type %q", r.Header.Get("Content-Type"))
			}
		})
	}
}

// TestThrottledSpendsNoTokenAttempt: a guess the account's backoff refuses
// (429) is never evaluated, so it costs the mfa_token none of its five
// attempts.
func TestThrottledSpendsNoTokenAttempt(t *testing.T) {
	a := startApp(t, appOptions{})
	u := newTOTPUser(t, a, "patient")
	first := a.mfaToken(t, u.Username, u.Password)
	for i := range 5 {
		a.verify(t, first, wrongCode(u.Secret, a.Clock.step(), i)).wantProblem(t, 401, "mfa_failed")
	}
	second := a.mfaToken(t, u.Username, u.Password)
	for range 6 {
		a.verify(t, second, wrongCode(u.Secret, a.Clock.step(), 9)).wantProblem(t, 429, "rate_limited")
	}
	a.Clock.Advance(2 * time.Second)
	var l loginResult
	a.verify(t, second, u.code(a.Clock.step())).decode(t, 200, &l)
	if l.ACR != "aal2" {
		t.Fatalf("acr %q", l.ACR)
	}
}
