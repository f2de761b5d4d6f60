package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestRefreshGrace is the two-tab case over HTTP: one refresh token sent
// twice at once by one browser gets one successor for both and the session
// lives on; the same token from another client, or after the grace period,
// is reuse and ends the session.
//
// It needs the App to give its Sessions a GraceKey; without one the grace
// period is off and TestRefresh covers the behaviour.
func TestRefreshGrace(t *testing.T) {
	a := startApp(t, appOptions{})
	if a.flows.Sessions.GraceKey == nil || a.flows.Sessions.Grace <= 0 {
		t.Skip("refresh grace period off: cmd/stepup/app.go sets no Sessions.GraceKey")
	}
	grace := a.flows.Sessions.Grace
	const name, pw = "two-tabs", "two tabs, one refresh token"
	a.signup(t, name, pw)
	signIn := func(t *testing.T) loginResult {
		t.Helper()
		l := a.login(t, name, pw)
		if l.RefreshToken == "" {
			t.Fatalf("login: %+v, want tokens", l)
		}
		return l
	}
	refresh := func(tok, userAgent string) (response, error) {
		b, _ := json.Marshal(map[string]string{"refresh_token": tok})
		req, err := http.NewRequest(http.MethodPost, a.base+"/v1/token/refresh", bytes.NewReader(b))
		if err != nil {
			return response{}, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", userAgent)
		res, err := a.client.Do(req)
		if err != nil {
			return response{}, err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		return response{Status: res.StatusCode, Header: res.Header, Body: body}, err
	}
	const tab, other = "Mozilla/5.0 (tab)", "curl/8.0"

	t.Run("TwoTabsAtOnce", func(t *testing.T) {
		l := signIn(t)
		const n = 2
		var (
			wg   sync.WaitGroup
			res  [n]response
			errs [n]error
		)
		go1 := make(chan struct{})
		for i := range n {
			wg.Go(func() { <-go1; res[i], errs[i] = refresh(l.RefreshToken, tab) })
		}
		close(go1)
		wg.Wait()
		var got [n]loginResult
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("tab %d: %v", i, errs[i])
			}
			res[i].decode(t, http.StatusOK, &got[i])
		}
		if got[0].RefreshToken == "" || got[0].RefreshToken != got[1].RefreshToken {
			t.Fatalf("refresh tokens %q and %q, want one successor for both tabs", got[0].RefreshToken, got[1].RefreshToken)
		}
		for i := range n {
			if r := a.get(t, "/v1/me", got[i].AccessToken); r.Status != http.StatusOK {
				t.Errorf("tab %d's access token on /v1/me: %d, want 200", i, r.Status)
			}
		}
		var next loginResult
		a.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": got[0].RefreshToken}).decode(t, http.StatusOK, &next)
	})
	for _, tc := range []struct {
		name    string
		after   time.Duration
		replayB string
	}{
		{"OtherClientWithinGrace", time.Second, other},
		{"SameClientAfterGrace", grace, tab},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := signIn(t)
			r, err := refresh(l.RefreshToken, tab)
			if err != nil {
				t.Fatal(err)
			}
			var next loginResult
			r.decode(t, http.StatusOK, &next)
			a.Clock.Advance(tc.after)
			if r, err = refresh(l.RefreshToken, tc.replayB); err != nil {
				t.Fatal(err)
			}
			r.wantProblem(t, http.StatusBadRequest, "invalid_grant")
			a.get(t, "/v1/me", next.AccessToken).wantProblem(t, http.StatusUnauthorized, "invalid_token")
		})
	}
}
