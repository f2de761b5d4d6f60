package uitest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// httpSignIn signs in over HTTP from another "browser" (its own
// User-Agent), as a second device would, and returns its access token.
func httpSignIn(t *testing.T, origin, ua, user, pw string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": pw})
	req, err := http.NewRequest(http.MethodPost, origin+"/v1/login", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", ua)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK || out.AccessToken == "" {
		t.Fatalf("sign-in over HTTP: %d, %v", res.StatusCode, err)
	}
	return out.AccessToken
}

func httpStatus(t *testing.T, origin, path, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, origin+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestBrowserDevices: the page lists the account's sessions (this one
// marked, another made over HTTP named by its user agent), ends the other
// (the list updates; its token stops working), and deletes the account.
func TestBrowserDevices(t *testing.T) {
	t.Parallel()
	chrome := browserChromium(t)
	svc := startService(t)
	p := browserOpen(t, chrome, svc.Origin, 2*time.Minute)
	const user, pw = "devices-ada", "correct horse battery staple"
	p.fill(t, "#username", user)
	p.fill(t, "#password", pw)
	p.click(t, "#signup")
	p.signedIn(t)
	p.waitOK(t, `document.querySelectorAll('#sessions li').length === 1`, "this session in the list")

	other := httpSignIn(t, svc.Origin, "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0", user, pw)
	p.click(t, "#devices-refresh")
	p.waitOK(t, `document.querySelectorAll('#sessions li').length === 2`, "two sessions in the list")
	const otherLi = `document.querySelector('#sessions li[data-current="false"]')`
	browserWant(t, "other device", browserEval[string](t, p, otherLi+`.querySelector('.session-device').textContent`), "Firefox on Linux")
	if !browserEval[bool](t, p, `(li => li.querySelector('.session-this').checkVisibility() && !li.querySelector('.session-end'))(document.querySelector('#sessions li[data-current="true"]'))`) {
		t.Error("this session should be marked \"this device\" and have no End button")
	}
	if browserEval[bool](t, p, otherLi+`.querySelector('.session-this').checkVisibility()`) {
		t.Error("the other session is marked as this device")
	}

	p.click(t, `#sessions li[data-current="false"] .session-end`)
	p.waitOK(t, `document.querySelectorAll('#sessions li').length === 1 && document.querySelector('#sessions li[data-current="true"]')`,
		"the list without the ended session")
	if got := httpStatus(t, svc.Origin, "/v1/me", other); got != http.StatusUnauthorized {
		t.Errorf("the ended session's token on /v1/me: %d, want 401", got)
	}

	p.click(t, "#delete-start")
	p.fill(t, "#delete-password", pw)
	p.click(t, "#delete-confirm")
	p.waitOK(t, `document.getElementById('view-signin').checkVisibility()`, "the sign-in view after deletion")
	if msg := p.statusText(); !strings.Contains(msg, "deleted") {
		t.Errorf("status %q, want it to say the account is deleted", msg)
	}
	p.fill(t, "#username", user)
	p.fill(t, "#password", pw)
	p.click(t, "#login")
	if msg := p.waitError(t); !strings.Contains(msg, "wrong") {
		t.Errorf("signing in to the deleted account: %q, want refused", msg)
	}
	if probs := p.problems(); len(probs) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(probs, "\n"))
	}
}
