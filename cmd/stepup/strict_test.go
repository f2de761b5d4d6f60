package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestStrictMembers: member names match exactly, once, never null, and
// required ones are there. encoding/json alone would let
// {"username":"nobody","USERNAME":"victim",…} sign in as victim (names match
// case-insensitively, the last duplicate wins) and take a null password for
// an empty one.
func TestStrictMembers(t *testing.T) {
	a := startApp(t, appOptions{})
	const pw = "victim password correct horse"
	a.signup(t, "victim", pw)
	login := func(body string) response {
		t.Helper()
		return a.raw(t, "/v1/login", "", "application/json", []byte(body))
	}
	for name, body := range map[string]string{
		"CaseVariantWins":   `{"username":"nobody","USERNAME":"victim","password":"` + pw + `"}`,
		"CaseVariantOnly":   `{"Username":"victim","Password":"` + pw + `"}`,
		"DuplicateLastWins": `{"username":"nobody","username":"victim","password":"` + pw + `"}`,
		"NullPassword":      `{"username":"victim","password":null}`,
		"MissingPassword":   `{"username":"victim"}`,
		"NumberPassword":    `{"username":"victim","password":5}`,
		"NullBody":          `null`,
		"ArrayBody":         `[]`,
	} {
		t.Run(name, func(t *testing.T) {
			r := login(body)
			r.wantProblem(t, http.StatusBadRequest, "invalid_request")
			if strings.Contains(string(r.Body), "access_token") {
				t.Fatal("signed in")
			}
		})
	}
	// Nothing was spent: the budget's ten free attempts are all still
	// there (the strict refusals come before the password budget).
	for range 9 {
		a.post(t, "/v1/login", "", credentials{"victim", "wrong password number x"}).
			wantProblem(t, http.StatusUnauthorized, "invalid_credentials")
	}
	if l := a.login(t, "victim", pw); l.Status != "authenticated" {
		t.Fatalf("the right password as the tenth attempt: %+v", l)
	}

	// A code member in another case does not pass as the code.
	u := newTOTPUser(t, a, "coder")
	mt := a.mfaToken(t, u.Username, u.Password)
	body := `{"code":"000000","Code":"` + u.code(a.Clock.step()) + `"}`
	a.raw(t, "/v1/mfa/totp/verify", mt, "application/json", []byte(body)).wantProblem(t, http.StatusBadRequest, "invalid_request")
}

// TestOversized: headers past 16 KiB answer 431 and a form body past its
// cap 413, both as problem+json, not net/http's plain text or a 400.
func TestOversized(t *testing.T) {
	a := startApp(t, appOptions{})
	req, _ := http.NewRequest(http.MethodGet, a.base+"/v1/me", nil)
	req.Header.Set("X-Padding", strings.Repeat("p", 20<<10))
	res, err := a.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("20 KiB of headers: %d %s, want 431 problem+json", res.StatusCode, res.Header.Get("Content-Type"))
	}
	body := "token=" + strings.Repeat("x", 70<<10)
	a.raw(t, "/v1/token/revoke", "", "application/x-www-form-urlencoded", []byte(body)).
		wantProblem(t, http.StatusRequestEntityTooLarge, "request_too_large")
}
