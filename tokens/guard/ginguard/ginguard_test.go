package ginguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/tokens/guard"
	"github.com/stepup-auth/stepup/tokens/guard/ginguard"
	"github.com/stepup-auth/stepup/tokens/guard/guardtest"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	m.Run()
}

func newEngine(t *testing.T) (*gin.Engine, *guardtest.Server, *[]error) {
	t.Helper()
	s := guardtest.NewServer(t, guardtest.Options{})
	keys, err := guard.NewJWKS(context.Background(), guard.JWKSConfig{Issuer: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = keys.Close() })
	g, err := guard.New(keys, guard.Config{Issuer: s.URL, Audience: s.Audience, Now: s.Now})
	if err != nil {
		t.Fatal(err)
	}
	var logged []error
	r := gin.New()
	r.Use(func(c *gin.Context) { // what a logging middleware sees
		c.Next()
		for _, e := range c.Errors {
			logged = append(logged, e.Err)
		}
	})
	show := func(c *gin.Context) {
		claims, ok := ginguard.Claims(c)
		if !ok {
			c.Status(http.StatusInternalServerError)
			return
		}
		c.JSON(http.StatusOK, gin.H{"sub": claims.Subject, "acr": claims.ACR})
	}
	r.GET("/profile", ginguard.Require(g, "aal1", 0), show)
	r.POST("/transfer", ginguard.Require(g, "aal2", 5*time.Minute), show)
	r.DELETE("/keys", ginguard.Require(g, "aal2", 0), ginguard.RequireAMR(g, "hwk"), show)
	return r, s, &logged
}

func do(r http.Handler, method, path, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

func TestGinGuard(t *testing.T) {
	r, s, logged := newEngine(t)
	now := s.Now()
	aal1 := s.Token(t, "aal1", []string{"pwd"}, now)
	aal2 := s.Token(t, "aal2", []string{"pwd", "otp", "mfa"}, now)
	stale := s.Token(t, "aal2", []string{"pwd", "otp", "mfa"}, now.Add(-10*time.Minute))
	hwk := s.Token(t, "aal3", []string{"pwd", "hwk", "mfa"}, now)

	tests := []struct {
		name, method, path, token string
		status                    int
		challenge                 string
	}{
		{"ProfileAAL1", "GET", "/profile", aal1, 200, ""},
		{"ProfileNoToken", "GET", "/profile", "", 401, `Bearer realm="stepup"`},
		{"ProfileBadToken", "GET", "/profile", "x.y.z", 401,
			`Bearer realm="stepup", error="invalid_token", error_description="the access token is invalid"`},
		{"TransferAAL1", "POST", "/transfer", aal1, 401,
			`Bearer realm="stepup", error="insufficient_user_authentication", error_description="authentication level aal2 or higher is required", acr_values="aal2", max_age="300"`},
		{"TransferStale", "POST", "/transfer", stale, 401,
			`Bearer realm="stepup", error="insufficient_user_authentication", error_description="a more recent authentication is required", acr_values="aal2", max_age="300"`},
		{"TransferAAL2", "POST", "/transfer", aal2, 200, ""},
		{"KeysOTP", "DELETE", "/keys", aal2, 401,
			`Bearer realm="stepup", error="insufficient_user_authentication", error_description="authentication with hwk is required"`},
		{"KeysHWK", "DELETE", "/keys", hwk, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			*logged = nil
			w := do(r, tt.method, tt.path, tt.token)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.status, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate:\n got %s\nwant %s", got, tt.challenge)
			}
			var body map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if tt.status == 200 {
				if body["sub"] != guardtest.Subject {
					t.Errorf("body = %v, want sub %s", body, guardtest.Subject)
				}
				if len(*logged) != 0 {
					t.Errorf("errors recorded on success: %v", *logged)
				}
				return
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if body["status"] != float64(tt.status) || body["code"] == nil || body["sub"] != nil {
				t.Errorf("problem = %v", body)
			}
			var ch *guard.Challenge
			if len(*logged) != 1 || !errors.As((*logged)[0], &ch) {
				t.Errorf("recorded errors = %v, want one *guard.Challenge", *logged)
			}
		})
	}
}

func TestRequirePanicsOnUnknownLevel(t *testing.T) {
	g, err := guard.New(&guard.JWKS{}, guard.Config{Issuer: "https://as.example.com", Audience: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	ginguard.Require(g, "AAL2", 0)
}

// ginguard reaches no part of the stepup server: of this module it imports
// tokens and guard only.
func TestDependencies(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	out, err := exec.Command(gotool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const module = "github.com/stepup-auth/stepup"
	sawGin := false
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "github.com/gin-gonic/gin":
			sawGin = true
		case dep == module || strings.HasPrefix(dep, module+"/"):
			switch strings.TrimPrefix(dep, module+"/") {
			case "tokens", "tokens/guard", "tokens/guard/ginguard":
			default:
				t.Errorf("ginguard depends on %s", dep)
			}
		}
	}
	if !sawGin {
		t.Error("go list did not show gin; the check is not looking at ginguard")
	}
}
