package main

import (
	"net/http"
	"strings"
	"testing"
)

// The page itself is driven in Chromium by the nested module api/uitest
// (its own go.mod, so chromedp stays out of this one). What it is served
// with needs no browser, and is checked here.

// TestUIHeaders checks what the page is served with: the strict CSP, and
// module scripts and styles with types a nosniff browser accepts.
func TestUIHeaders(t *testing.T) {
	a := startApp(t, appOptions{})
	r := a.get(t, "/ui/", "")
	if r.Status != http.StatusOK {
		t.Fatalf("GET /ui/ = %d", r.Status)
	}
	csp := r.Header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
		"connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %q", csp, d)
		}
	}
	body := string(r.Body)
	for _, bad := range []string{"<script>", " style=", " onclick=", " onsubmit=", " onload=", "javascript:"} {
		if strings.Contains(body, bad) {
			t.Errorf("index.html has inline %q, which the CSP blocks", bad)
		}
	}
	for _, f := range []struct{ path, ctype string }{
		{"/ui/app.js", "text/javascript"},
		{"/ui/webauthn.js", "text/javascript"},
		{"/ui/api.js", "text/javascript"},
		{"/ui/ui.js", "text/javascript"},
		{"/ui/state.js", "text/javascript"},
		{"/ui/account.js", "text/javascript"},
		{"/ui/activity.js", "text/javascript"},
		{"/ui/devices.js", "text/javascript"},
		{"/ui/dpop.js", "text/javascript"},
		{"/ui/style.css", "text/css"},
	} {
		r := a.get(t, f.path, "")
		if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), f.ctype) {
			t.Errorf("GET %s = %d %q, want 200 %s", f.path, r.Status, r.Header.Get("Content-Type"), f.ctype)
		}
		if r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s without nosniff", f.path)
		}
	}
}
