package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/tokens/guard"
	"github.com/stepup-auth/stepup/tokens/guard/guardtest"
)

func TestRoutes(t *testing.T) {
	s := guardtest.NewServer(t, guardtest.Options{})
	keys, err := guard.NewJWKS(context.Background(), guard.JWKSConfig{Issuer: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	g, err := guard.New(keys, guard.Config{Issuer: s.URL, Audience: "stepup", Now: s.Now, URL: "http://localhost:8090"})
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(g)
	now := s.Now()
	aal1 := s.Token(t, "aal1", []string{"pwd"}, now)
	aal2 := s.Token(t, "aal2", []string{"pwd", "otp", "mfa"}, now)
	stale := s.Token(t, "aal2", []string{"pwd", "otp", "mfa"}, now.Add(-6*time.Minute))
	aal3 := s.Token(t, "aal3", []string{"pwd", "hwk", "mfa"}, now)

	const insufficient = `Bearer realm="stepup", error="insufficient_user_authentication", error_description=`
	tests := []struct {
		name, method, path, token string
		status                    int
		challenge                 string // "" for none
		acr                       string // acr echoed on 200
	}{
		{"PublicNoToken", "GET", "/public", "", 200, "", ""},
		{"ProfileNoToken", "GET", "/profile", "", 401, `Bearer realm="stepup"`, ""},
		{"ProfileAAL1", "GET", "/profile", aal1, 200, "", "aal1"},
		{"TransferAAL1", "POST", "/transfer", aal1, 401,
			insufficient + `"authentication level aal2 or higher is required", acr_values="aal2", max_age="300"`, ""},
		{"TransferStaleAAL2", "POST", "/transfer", stale, 401,
			insufficient + `"a more recent authentication is required", acr_values="aal2", max_age="300"`, ""},
		{"TransferAAL2", "POST", "/transfer", aal2, 200, "", "aal2"},
		{"TransferGET", "GET", "/transfer", aal2, 405, "", ""},
		{"AdminAAL2", "GET", "/admin", aal2, 401,
			insufficient + `"authentication level aal3 or higher is required", acr_values="aal3"`, ""},
		{"AdminAAL3", "GET", "/admin", aal3, 200, "", "aal3"},
		{"AdminBadToken", "GET", "/admin", aal3[:len(aal3)-4] + "AAAA", 401,
			`Bearer realm="stepup", error="invalid_token", error_description="the access token is invalid"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.token != "" {
				r.Header.Set("Authorization", "Bearer "+tt.token)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.status, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate:\n got %s\nwant %s", got, tt.challenge)
			}
			if tt.acr == "" {
				return
			}
			var got seen
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if got.ACR != tt.acr || got.Subject != guardtest.Subject || got.Session != guardtest.Session || !got.AuthTime.Equal(now) {
				t.Errorf("claims seen = %+v", got)
			}
		})
	}
}

// TestDPoP: the routes take a DPoP-bound token with the DPoP scheme and a
// proof for the public URL, refuse it as a Bearer token, and still take
// Bearer tokens.
func TestDPoP(t *testing.T) {
	s := guardtest.NewServer(t, guardtest.Options{})
	keys, err := guard.NewJWKS(context.Background(), guard.JWKSConfig{Issuer: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	g, err := guard.New(keys, guard.Config{Issuer: s.URL, Audience: "stepup", Now: s.Now, URL: "http://localhost:8090"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newHandler(g))
	defer srv.Close()
	k := guardtest.NewDPoPKey(t, "ES256")
	tok := s.BoundToken(t, k, "aal2", []string{"pwd", "otp", "mfa"}, s.Now())
	send := func(method, path, auth, proof string) *http.Response {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		req.Header.Set("Authorization", auth)
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	proof := k.Proof(t, guardtest.Proof{Method: "POST", URL: "http://localhost:8090/transfer", Token: tok, IAT: s.Now()})
	if res := send("POST", "/transfer", "DPoP "+tok, proof); res.StatusCode != 200 {
		t.Fatalf("DPoP: status %d, WWW-Authenticate %q", res.StatusCode, res.Header.Values("WWW-Authenticate"))
	}
	res := send("POST", "/transfer", "Bearer "+tok, "")
	if ch := res.Header.Get("WWW-Authenticate"); res.StatusCode != 401 || !strings.HasPrefix(ch, `DPoP realm="stepup", algs="ES256 EdDSA", error="invalid_token"`) {
		t.Fatalf("bound token as Bearer: status %d, WWW-Authenticate %q", res.StatusCode, ch)
	}
	if res := send("GET", "/profile", "Bearer "+s.Token(t, "aal1", []string{"pwd"}, s.Now()), ""); res.StatusCode != 200 {
		t.Fatalf("Bearer: status %d", res.StatusCode)
	}
}

// The real program: configured from the environment, it discovers the keys,
// listens, serves and shuts down on cancel.
func TestRun(t *testing.T) {
	s := guardtest.NewServer(t, guardtest.Options{})
	env := map[string]string{"EXAMPLE_STEPUP": s.URL + "/", "EXAMPLE_ADDR": "127.0.0.1:0"}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, func(a string) { addrc <- a }) }()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not listening after 10s")
	}

	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/public", ""); code != 200 || !strings.Contains(body, "public") {
		t.Errorf("/public = %d %s", code, body)
	}
	// The process runs on the real clock; the token is issued on the
	// stand-in's, which started at the same second.
	if code, body := get("/profile", s.Token(t, "aal1", []string{"pwd"}, s.Now())); code != 200 || !strings.Contains(body, `"acr":"aal1"`) {
		t.Errorf("/profile = %d %s", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run returned %v after cancel", err)
	}
}

func TestRunFailsWithoutStepup(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	env := map[string]string{"EXAMPLE_STEPUP": dead.URL, "EXAMPLE_ADDR": "127.0.0.1:0"}
	err := run(context.Background(), func(k string) string { return env[k] }, nil)
	if err == nil || !strings.Contains(err.Error(), "EXAMPLE_STEPUP") {
		t.Errorf("run = %v, want an error naming EXAMPLE_STEPUP", err)
	}
}
