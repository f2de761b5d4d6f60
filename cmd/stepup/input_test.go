package main

import (
	"bytes"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestUnknownUserLooksLikeWrongPassword compares the answer for a username
// that does not exist with the answer for a wrong password: same status,
// same headers and same body, except the per-request id.
func TestUnknownUserLooksLikeWrongPassword(t *testing.T) {
	a := startApp(t, appOptions{})
	a.signup(t, "known-user", "the right password")

	wrong := a.post(t, "/v1/login", "", credentials{"known-user", "not the password"})
	unknown := a.post(t, "/v1/login", "", credentials{"unknown-user", "not the password"})

	t.Run("Status", func(t *testing.T) {
		if wrong.Status != http.StatusUnauthorized || unknown.Status != wrong.Status {
			t.Errorf("wrong password %d, unknown user %d, want both 401", wrong.Status, unknown.Status)
		}
		wrong.wantProblem(t, http.StatusUnauthorized, "invalid_credentials")
	})
	t.Run("Body", func(t *testing.T) {
		instance := regexp.MustCompile(`"instance":"[^"]*"`)
		w := instance.ReplaceAll(wrong.Body, []byte(`"instance":""`))
		u := instance.ReplaceAll(unknown.Body, []byte(`"instance":""`))
		if !bytes.Equal(w, u) {
			t.Errorf("bodies differ beyond instance:\nwrong password %s\nunknown user   %s", wrong.Body, unknown.Body)
		}
		if bytes.Equal(w, wrong.Body) {
			t.Errorf("body %s has no instance member to ignore", wrong.Body)
		}
	})
	t.Run("Headers", func(t *testing.T) {
		strip := func(h http.Header) http.Header {
			h = h.Clone()
			h.Del("X-Request-Id")
			h.Del("Date")
			return h
		}
		w, u := strip(wrong.Header), strip(unknown.Header)
		if !maps.EqualFunc(w, u, slices.Equal) {
			t.Errorf("headers differ:\nwrong password %v\nunknown user   %v", w, u)
		}
		if wrong.Header.Get("X-Request-Id") == unknown.Header.Get("X-Request-Id") {
			t.Errorf("both answers carry request id %q, want one per request", wrong.Header.Get("X-Request-Id"))
		}
	})
}

// TestStrictInput sends malformed requests. Each is refused with a problem
// answer and changes nothing: afterwards the mfa_token still has all five
// attempts and the account all five unthrottled failures.
func TestStrictInput(t *testing.T) {
	a := startApp(t, appOptions{})
	u := newTOTPUser(t, a, "strict-user")
	s := a.Clock.step()
	tok := a.mfaToken(t, u.Username, u.Password)
	right := u.code(s)
	const jsonType = "application/json"

	big := `{"code":"` + strings.Repeat("1", 64<<10) + `"}`
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"UnknownField", jsonType, `{"code":"` + right + `","remember":true}`, 400, "invalid_request"},
		{"TrailingObject", jsonType, `{"code":"` + right + `"}{"code":"` + right + `"}`, 400, "invalid_request"},
		{"TrailingGarbage", jsonType, `{"code":"` + right + `"} x`, 400, "invalid_request"},
		{"TextPlain", "text/plain", `{"code":"` + right + `"}`, 415, "unsupported_media_type"},
		{"FormEncoded", "application/x-www-form-urlencoded", `code=` + right, 415, "unsupported_media_type"},
		{"NoContentType", "", `{"code":"` + right + `"}`, 415, "unsupported_media_type"},
		{"TooLarge", jsonType, big, 413, "request_too_large"},
		{"EmptyBody", jsonType, ``, 400, "invalid_request"},
		{"Truncated", jsonType, `{"code":"` + right, 400, "invalid_request"},
		{"Array", jsonType, `["` + right + `"]`, 400, "invalid_request"},
		{"Null", jsonType, `null`, 400, "invalid_request"},
		{"CodeAsNumber", jsonType, `{"code":` + strings.TrimLeft(right, "0") + `1}`, 400, "invalid_request"},
		{"CodeAsArray", jsonType, `{"code":["` + right + `"]}`, 400, "invalid_request"},
		{"CodeNull", jsonType, `{"code":null}`, 400, "invalid_request"},
		{"FiveDigits", jsonType, `{"code":"` + right[:5] + `"}`, 400, "invalid_request"},
		{"SevenDigits", jsonType, `{"code":"` + right + `0"}`, 400, "invalid_request"},
		{"Letters", jsonType, `{"code":"12345a"}`, 400, "invalid_request"},
		{"Spaces", jsonType, `{"code":" ` + right[:5] + `"}`, 400, "invalid_request"},
		{"FullwidthDigits", jsonType, `{"code":"１２３４５６"}`, 400, "invalid_request"},
		{"Signed", jsonType, `{"code":"+` + right[:5] + `"}`, 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := a.raw(t, "/v1/mfa/totp/verify", tok, tc.contentType, []byte(tc.body))
			p := r.wantProblem(t, tc.status, tc.code)
			if strings.Contains(p.Detail, right) || strings.Contains(string(r.Body), "１２３") {
				t.Errorf("problem %s echoes the input", r.Body)
			}
		})
	}
	t.Run("NothingSpent", func(t *testing.T) {
		// Four wrong codes, then the right one: the fifth attempt of the
		// token and the fifth free failure of the account are still there.
		for i := range 4 {
			a.verify(t, tok, wrongCode(u.Secret, s, i)).wantProblem(t, http.StatusUnauthorized, "mfa_failed")
		}
		if r := a.verify(t, tok, right); r.Status != http.StatusOK {
			t.Fatalf("right code as fifth attempt: status %d, want 200; %s", r.Status, r.Body)
		}
	})
	t.Run("LoginAndSignupStrictToo", func(t *testing.T) {
		for _, body := range []string{
			`{"username":"strict-user","password":"x","admin":true}`,
			`{"username":"strict-user","password":1234567890}`,
			`{"username":"strict-user","password":"` + u.Password + `"} []`,
		} {
			a.raw(t, "/v1/login", "", jsonType, []byte(body)).wantProblem(t, http.StatusBadRequest, "invalid_request")
			a.raw(t, "/v1/users", "", jsonType, []byte(body)).wantProblem(t, http.StatusBadRequest, "invalid_request")
		}
		a.raw(t, "/v1/users", "", "text/plain", []byte(`{"username":"strict-new","password":"long enough"}`)).
			wantProblem(t, http.StatusUnsupportedMediaType, "unsupported_media_type")
		// The refused sign-up created nothing: the name is still free.
		a.signup(t, "strict-new", "long enough")
	})
	t.Run("UnknownRouteIsProblem", func(t *testing.T) {
		a.get(t, "/v1/nope", "").wantProblem(t, http.StatusNotFound, "not_found")
		r, err := a.send(http.MethodGet, "/v1/login", "", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.wantProblem(t, http.StatusMethodNotAllowed, "method_not_allowed")
	})
}

// TestSignup covers the username and password rules of POST /v1/users.
func TestSignup(t *testing.T) {
	a := startApp(t, appOptions{})
	const pw = "a fine password"

	t.Run("CanonicalNamesConflict", func(t *testing.T) {
		if got := a.signup(t, " Alice ", pw).Username; got != "alice" {
			t.Fatalf("username %q, want alice", got)
		}
		for _, name := range []string{"alice", "ALICE", "ＡＬＩＣＥ", "\tAlice\n"} {
			a.post(t, "/v1/users", "", credentials{name, pw}).wantProblem(t, http.StatusConflict, "conflict")
		}
		if l := a.login(t, "ＡＬＩＣＥ", pw); l.Status != "authenticated" {
			t.Errorf("login as ＡＬＩＣＥ: %+v, want the account alice", l)
		}
	})
	t.Run("BadNamesRefused", func(t *testing.T) {
		for _, name := range []string{"", "   ", "ali ce", "ali\tce", "ali\u0000ce", "ali\u0007ce", "ali\u200bce",
			"ali\u202ece", "ali\u00a0ce", strings.Repeat("a", 129)} {
			r := a.post(t, "/v1/users", "", credentials{name, pw})
			if r.Status != http.StatusBadRequest || r.code() != "invalid_request" {
				t.Errorf("username %q: %d %s, want 400 invalid_request", name, r.Status, r.Body)
			}
		}
	})
	t.Run("PasswordLength", func(t *testing.T) {
		a.post(t, "/v1/users", "", credentials{"short-pw", "1234567"}).wantProblem(t, http.StatusBadRequest, "invalid_request")
		a.post(t, "/v1/users", "", credentials{"long-pw", strings.Repeat("p", 1025)}).wantProblem(t, http.StatusBadRequest, "invalid_request")
		// The bounds themselves are allowed (for passwords hard to guess).
		a.signup(t, "short-pw", "k7#Qv!2z")
		a.signup(t, "long-pw", "x7#Qv!2zw9@Lm4$Tb8&Rn3^Yc"+strings.Repeat("p", 999))
	})
	t.Run("CommonPasswordsRefused", func(t *testing.T) {
		// NIST SP 800-63B §3.1.1.2: a blocklist of common, expected or
		// compromised values (zxcvbn's lists and their variants).
		for _, weak := range []string{"12345678", "password1", "P@ssw0rd1", "qwertyuiop", "common-pw2024"} {
			a.post(t, "/v1/users", "", credentials{"common-pw", weak}).wantProblem(t, http.StatusBadRequest, "invalid_request")
		}
		a.signup(t, "changer", "changer correct horse battery")
		l := a.login(t, "changer", "changer correct horse battery")
		a.post(t, "/v1/me/password", l.AccessToken, map[string]string{"current_password": "changer correct horse battery",
			"new_password": "changer2024"}).wantProblem(t, http.StatusBadRequest, "invalid_request")
		if l2 := a.login(t, "changer", "changer correct horse battery"); l2.Status != "authenticated" {
			t.Fatalf("the old password after a refused change: %+v", l2)
		}
	})
	t.Run("ClosedSignup", func(t *testing.T) {
		closed := startApp(t, appOptions{SignupClosed: true})
		closed.post(t, "/v1/users", "", credentials{"bob", pw}).wantProblem(t, http.StatusForbidden, "signup_closed")
	})
}
