package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// "Your devices" over HTTP on several instances: a user signed in from two
// browsers lists and ends sessions, and "sign out everywhere".

// browser is one client: its own User-Agent on every request.
type browser struct {
	ua string
}

// do sends one request as the browser: v marshalled as JSON (nil: no body).
func (b browser) do(tb testing.TB, a *testApp, method, path, token string, v any) response {
	tb.Helper()
	var rd io.Reader
	if v != nil {
		j, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if v != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("User-Agent", b.ua)
	res, err := a.client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: body}
}

// signInTOTP signs u in from b on a with the password and the code of
// step: aal2 tokens.
func (b browser) signInTOTP(tb testing.TB, a *testApp, u totpUser, step int64) loginResult {
	tb.Helper()
	var l loginResult
	b.do(tb, a, http.MethodPost, "/v1/login", "", credentials{u.Username, u.Password}).decode(tb, http.StatusOK, &l)
	if l.Status != "mfa_required" {
		tb.Fatalf("login: %+v, want mfa_required", l)
	}
	var out loginResult
	b.do(tb, a, http.MethodPost, "/v1/mfa/totp/verify", l.MFAToken, codeBody{u.code(step)}).decode(tb, http.StatusOK, &out)
	if out.ACR != "aal2" || out.RefreshToken == "" {
		tb.Fatalf("verify: %+v, want aal2 tokens", out)
	}
	return out
}

type sessionResult struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	AuthTime   time.Time `json:"auth_time"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	ACR        string    `json:"acr"`
	AMR        []string  `json:"amr"`
	Current    bool      `json:"current"`
}

func (a *testApp) sessions(tb testing.TB, access string) []sessionResult {
	tb.Helper()
	var out struct {
		Items []sessionResult `json:"items"`
	}
	a.get(tb, "/v1/me/sessions", access).decode(tb, http.StatusOK, &out)
	return out.Items
}

func sid(tb testing.TB, access string) string {
	tb.Helper()
	s, _ := parseJWT(tb, access).Claims["sid"].(string)
	if s == "" {
		tb.Fatal("access token without sid")
	}
	return s
}

// wantWorks checks that l's access token and refresh token work on every
// instance (the refresh token is not rotated: introspection says active).
func wantAccessWorks(tb testing.TB, apps []*testApp, access string) {
	tb.Helper()
	for i, a := range apps {
		if r := a.get(tb, "/v1/me", access); r.Status != http.StatusOK {
			tb.Fatalf("instance %d: /v1/me with a live session's token: %d %s", i, r.Status, r.Body)
		}
	}
}

// wantEnded checks that a session's access token is refused on every
// instance, on every route that takes one, and its refresh token too.
func wantEnded(tb testing.TB, apps []*testApp, access, refresh string) {
	tb.Helper()
	for i, a := range apps {
		for _, rt := range a.Server().Routes() {
			method, path := rt[0], rt[1]
			if !strings.HasPrefix(path, "/v1/me") && path != "/v1/stepup" && path != "/v1/logout" {
				continue
			}
			path = strings.ReplaceAll(strings.ReplaceAll(path, ":id", "x"), "*path", "x")
			r, err := a.send(method, path, access, "application/json", []byte(`{}`))
			if err != nil {
				tb.Fatal(err)
			}
			if r.Status != http.StatusUnauthorized || r.code() != "invalid_token" {
				tb.Fatalf("instance %d: %s %s with an ended session's access token: %d %s, want 401 invalid_token", i, method, path, r.Status, r.Body)
			}
		}
		if refresh != "" {
			a.post(tb, "/v1/token/refresh", "", map[string]string{"refresh_token": refresh}).wantProblem(tb, http.StatusBadRequest, "invalid_grant")
		}
	}
}

// TestYourDevices: a user with TOTP signs in from two browsers (on
// different instances); each lists both sessions, its own marked current;
// ending the other needs a fresh aal2 (the RFC 9470 challenge otherwise,
// and nothing ends); once ended, the other's access and refresh tokens are
// refused on every instance and every route; {"all": true} ends the rest.
func TestYourDevices(t *testing.T) {
	apps := startApps(t, 3, appOptions{})
	a0, a1, a2 := apps[0], apps[1], apps[2]
	u := newTOTPUser(t, a0, "devices-alice")
	firefox, chrome := browser{"Mozilla/5.0 Firefox/140.0"}, browser{"Mozilla/5.0 Chrome/140.0"}
	step := a0.Clock.step()
	ff := firefox.signInTOTP(t, a0, u, step)
	ch := chrome.signInTOTP(t, a1, u, step+1)

	t.Run("ListFromEither", func(t *testing.T) {
		for _, c := range []struct {
			app    *testApp
			access string
		}{{a2, ff.AccessToken}, {a0, ch.AccessToken}} {
			items := c.app.sessions(t, c.access)
			byID := map[string]sessionResult{}
			for _, s := range items {
				byID[s.ID] = s
			}
			f, okF := byID[sid(t, ff.AccessToken)]
			g, okG := byID[sid(t, ch.AccessToken)]
			if len(items) != 3 || !okF || !okG { // and the enrolment's sign-in
				t.Fatalf("sessions %+v: want 3, the two browsers' among them", items)
			}
			if f.Current != (c.access == ff.AccessToken) || g.Current != (c.access == ch.AccessToken) {
				t.Errorf("current: firefox %v, chrome %v; asked with the %s token", f.Current, g.Current, map[bool]string{true: "firefox", false: "chrome"}[c.access == ff.AccessToken])
			}
			if f.UserAgent != firefox.ua || g.UserAgent != chrome.ua || f.IP != "127.0.0.1" || f.ACR != "aal2" ||
				strings.Join(f.AMR, ",") != "pwd,otp,mfa" || f.CreatedAt.IsZero() || !f.LastUsedAt.Equal(f.CreatedAt) {
				t.Errorf("firefox %+v / chrome %+v: want their user agents, 127.0.0.1, aal2 pwd,otp,mfa, last used at sign-in", f, g)
			}
		}
	})

	a0.Clock.Advance(11 * time.Minute) // firefox's aal2 is no longer fresh
	t.Run("OtherNeedsFreshAAL2", func(t *testing.T) {
		r := firefox.do(t, a1, http.MethodDelete, "/v1/me/sessions/"+sid(t, ch.AccessToken), ff.AccessToken, nil)
		waWantStepUp(t, r, "aal2")
		if !strings.Contains(r.Header.Get("WWW-Authenticate"), `max_age="600"`) {
			t.Errorf("challenge %q, want max_age=600", r.Header.Get("WWW-Authenticate"))
		}
		wantAccessWorks(t, apps, ch.AccessToken)
	})

	// Firefox steps up (a new aal2 on the same session) and ends Chrome.
	var raised loginResult
	var pending loginResult
	maxAge, pw := int64(600), u.Password // its sign-in is too old to count: the password again
	firefox.do(t, a2, http.MethodPost, "/v1/stepup", ff.AccessToken, suStepupBody{"aal2", &maxAge, &pw}).decode(t, http.StatusOK, &pending)
	firefox.do(t, a2, http.MethodPost, "/v1/mfa/totp/verify", pending.MFAToken, codeBody{u.code(a0.Clock.step())}).decode(t, http.StatusOK, &raised)
	t.Run("EndOther", func(t *testing.T) {
		if r := firefox.do(t, a2, http.MethodDelete, "/v1/me/sessions/"+sid(t, ch.AccessToken), raised.AccessToken, nil); r.Status != http.StatusNoContent {
			t.Fatalf("end chrome: %d %s", r.Status, r.Body)
		}
		wantEnded(t, apps, ch.AccessToken, ch.RefreshToken)
		wantAccessWorks(t, apps, raised.AccessToken)
		items := a1.sessions(t, raised.AccessToken)
		if len(items) != 2 {
			t.Fatalf("after ending chrome: %d sessions, want 2", len(items))
		}
		for _, s := range items {
			if s.ID == sid(t, ch.AccessToken) {
				t.Fatal("the ended session is still listed")
			}
		}
		firefox.do(t, a0, http.MethodDelete, "/v1/me/sessions/"+sid(t, ch.AccessToken), raised.AccessToken, nil).
			wantProblem(t, http.StatusNotFound, "not_found")
	})

	t.Run("LogoutBodyStrict", func(t *testing.T) {
		for _, body := range []string{`{"all":"yes"}`, `{"All":true}`, `{"all":true,"x":1}`, `{"all":true,"all":false}`, `{"all":null}`, `[]`, `{} {}`} {
			r, err := a0.send(http.MethodPost, "/v1/logout", raised.AccessToken, "application/json", []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			r.wantProblem(t, http.StatusBadRequest, "invalid_request")
		}
		r, err := a0.send(http.MethodPost, "/v1/logout", raised.AccessToken, "text/plain", []byte(`{"all":true}`))
		if err != nil {
			t.Fatal(err)
		}
		r.wantProblem(t, http.StatusUnsupportedMediaType, "unsupported_media_type")
		wantAccessWorks(t, apps, raised.AccessToken)
	})

	t.Run("LogoutAll", func(t *testing.T) {
		safari := browser{"Safari/19"}
		sa := safari.signInTOTP(t, a2, u, a0.Clock.step()+1)
		// {} and {"all": false} are the caller's session alone.
		if r := safari.do(t, a0, http.MethodPost, "/v1/logout", sa.AccessToken, map[string]bool{"all": false}); r.Status != http.StatusNoContent {
			t.Fatalf("logout: %d %s", r.Status, r.Body)
		}
		wantEnded(t, apps, sa.AccessToken, sa.RefreshToken)
		wantAccessWorks(t, apps, raised.AccessToken)
		if n := len(a0.sessions(t, raised.AccessToken)); n != 2 {
			t.Fatalf("after safari's logout: %d sessions, want 2", n)
		}

		if r := firefox.do(t, a1, http.MethodPost, "/v1/logout", raised.AccessToken, map[string]bool{"all": true}); r.Status != http.StatusNoContent {
			t.Fatalf("logout all: %d %s", r.Status, r.Body)
		}
		wantEnded(t, apps, raised.AccessToken, ff.RefreshToken)
		a0.Clock.Advance(30 * time.Second) // the next unused TOTP step is in the window
		var tok loginResult
		a2.verify(t, a2.mfaToken(t, u.Username, u.Password), u.code(a0.Clock.step()+1)).decode(t, http.StatusOK, &tok)
		if items := a0.sessions(t, tok.AccessToken); len(items) != 1 || !items[0].Current {
			t.Fatalf("after sign out everywhere and a new sign-in: %+v, want that sign-in alone", items)
		}
	})
}
