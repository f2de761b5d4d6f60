package guard

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stepup-auth/stepup/tokens"
	"github.com/stepup-auth/stepup/tokens/guard/guardtest"
)

func TestRequire(t *testing.T) {
	s := guardtest.NewServer(t, guardtest.Options{})
	g, _ := newGuard(t, s)
	now := s.Now()
	otp := []string{"pwd", "otp", "mfa"}
	hwk := []string{"pwd", "hwk", "mfa"}

	const (
		aal2Needed = `Bearer realm="stepup", error="insufficient_user_authentication", error_description="authentication level aal2 or higher is required", acr_values="aal2"`
		aal3Needed = `Bearer realm="stepup", error="insufficient_user_authentication", error_description="authentication level aal3 or higher is required", acr_values="aal3"`
		tooOld     = `Bearer realm="stepup", error="insufficient_user_authentication", error_description="a more recent authentication is required", acr_values="aal2", max_age="300"`
		hwkNeeded  = `Bearer realm="stepup", error="insufficient_user_authentication", error_description="authentication with hwk is required"`
	)
	tests := []struct {
		name      string
		mw        func(http.Handler) http.Handler
		acr       string
		amr       []string
		authTime  time.Time
		status    int
		challenge string
	}{
		{"AAL2PassesAAL2", g.Require("aal2", 0), "aal2", otp, now, 200, ""},
		{"AAL3PassesAAL2", g.Require("aal2", 0), "aal3", hwk, now, 200, ""},
		{"AAL1PassesEmptyACR", g.Require("", 0), "aal1", []string{"pwd"}, now, 200, ""},
		{"AAL1FailsAAL2", g.Require("aal2", 0), "aal1", []string{"pwd"}, now, 401, aal2Needed},
		{"AAL2FailsAAL3", g.Require("aal3", 0), "aal2", otp, now, 401, aal3Needed},
		{"UnknownACRFailsAAL1", g.Require("aal1", 0), "aal9", otp, now, 401,
			strings.ReplaceAll(aal2Needed, "aal2", "aal1")},
		{"UnknownACRPassesEmptyACR", g.Require("", 0), "aal9", otp, now, 200, ""},
		{"FreshAuthPassesMaxAge", g.Require("aal2", 5*time.Minute), "aal2", otp, now.Add(-4 * time.Minute), 200, ""},
		{"AuthAtMaxAgePasses", g.Require("aal2", 5*time.Minute), "aal2", otp, now.Add(-5 * time.Minute), 200, ""},
		{"StaleAuthFailsMaxAge", g.Require("aal2", 5*time.Minute), "aal2", otp, now.Add(-5*time.Minute - time.Second), 401, tooOld},
		{"LowAndStaleNamesBoth", g.Require("aal2", 5*time.Minute), "aal1", []string{"pwd"}, now.Add(-time.Hour), 401,
			strings.Replace(tooOld, "a more recent authentication is required", "authentication level aal2 or higher is required", 1)},
		{"OTPFailsHWK", g.RequireAMR("hwk"), "aal2", otp, now, 401, hwkNeeded},
		{"HWKPassesHWK", g.RequireAMR("hwk"), "aal3", hwk, now, 200, ""},
		{"AllAMRRequired", g.RequireAMR("hwk", "user"), "aal3", hwk, now, 401,
			strings.Replace(hwkNeeded, "with hwk", "with hwk, user", 1)},
		{"CombinedPasses", g.Middleware(Requirement{ACR: "aal3", MaxAge: time.Minute, AMR: []string{"hwk"}}), "aal3", hwk, now, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := s.Token(t, tt.acr, tt.amr, tt.authTime)
			w := serve(tt.mw(echo), "Bearer "+tok)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.status, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate:\n got %s\nwant %s", got, tt.challenge)
			}
			if tt.status == 200 {
				if want := guardtest.Subject + " " + tt.acr; !strings.HasPrefix(w.Body.String(), want) {
					t.Errorf("body = %q, want prefix %q", w.Body, want)
				}
				return
			}
			p := problemOf(t, w)
			if p.Code != CodeInsufficient || p.Status != 401 || p.Title != "Unauthorized" {
				t.Errorf("problem = %+v, want code %s, status 401", p, CodeInsufficient)
			}
		})
	}
}

func TestRequireProblemBody(t *testing.T) {
	s := guardtest.NewServer(t, guardtest.Options{})
	g, _ := newGuard(t, s)
	tok := s.Token(t, "aal1", []string{"pwd"}, s.Now())
	w := serve(g.Require("aal2", 5*time.Minute)(echo), "Bearer "+tok)
	p := problemOf(t, w)
	want := problem{Type: "about:blank", Title: "Unauthorized", Status: 401, Code: CodeInsufficient,
		Detail: "authentication level aal2 or higher is required", ACRValues: "aal2", MaxAge: 300}
	if p != want {
		t.Errorf("problem:\n got %+v\nwant %+v", p, want)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
}

func TestRefusedTokens(t *testing.T) {
	s := guardtest.NewServer(t, guardtest.Options{})
	g, _ := newGuard(t, s)
	h := g.Require("aal1", 0)(echo)
	valid := s.Token(t, "aal2", []string{"pwd", "otp", "mfa"}, s.Now())
	kid := kidOf(t, valid)

	// A token signed by another key under the server's kid.
	forged := forge(t, jwt.SigningMethodES256, newP256(t), map[string]any{"kid": kid}, validClaims(s))
	// The server's token with its payload changed from aal2 to aal3.
	parts := strings.Split(valid, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"aal2"`, `"aal3"`, 1)))
	tampered := strings.Join(parts, ".")
	// An HMAC token keyed with the public kid: alg confusion.
	hmac := forge(t, jwt.SigningMethodHS256, []byte(kid), map[string]any{"kid": kid}, validClaims(s))
	// A token from another authorization server.
	other := guardtest.NewServer(t, guardtest.Options{})
	foreign := other.Token(t, "aal3", []string{"hwk"}, other.Now())
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)

	const (
		noToken   = `Bearer realm="stepup"`
		invalid   = `Bearer realm="stepup", error="invalid_token", error_description="the access token is invalid"`
		expired   = `Bearer realm="stepup", error="invalid_token", error_description="the access token expired"`
		malformed = `Bearer realm="stepup", error="invalid_request", error_description="the Authorization header must hold one Bearer token"`
	)
	tests := []struct {
		name      string
		header    []string
		status    int
		code      string
		challenge string
		err       error
	}{
		{"NoHeader", nil, 401, CodeInvalidToken, noToken, ErrNoToken},
		{"BasicScheme", []string{"Basic dXNlcjpwdw=="}, 401, CodeInvalidToken, noToken, ErrNoToken},
		{"EmptyBearer", []string{"Bearer "}, 400, CodeInvalidRequest, malformed, ErrMalformed},
		{"BearerOnly", []string{"Bearer"}, 400, CodeInvalidRequest, malformed, ErrMalformed},
		{"TwoTokens", []string{"Bearer " + valid + " " + valid}, 400, CodeInvalidRequest, malformed, ErrMalformed},
		{"TwoHeaders", []string{"Bearer " + valid, "Bearer " + valid}, 400, CodeInvalidRequest, malformed, ErrMalformed},
		{"Garbage", []string{"Bearer abc"}, 401, CodeInvalidToken, invalid, tokens.ErrInvalidToken},
		{"ForgedSignature", []string{"Bearer " + forged}, 401, CodeInvalidToken, invalid, tokens.ErrInvalidToken},
		{"TamperedPayload", []string{"Bearer " + tampered}, 401, CodeInvalidToken, invalid, tokens.ErrInvalidToken},
		{"HMACWithKid", []string{"Bearer " + hmac}, 401, CodeInvalidToken, invalid, tokens.ErrInvalidToken},
		{"EdDSAUnderES256Kid", []string{"Bearer " + forge(t, jwt.SigningMethodEdDSA, edPriv, map[string]any{"kid": kid}, validClaims(s))},
			401, CodeInvalidToken, invalid, tokens.ErrInvalidToken},
		{"UnknownKid", []string{"Bearer " + forge(t, jwt.SigningMethodES256, newP256(t), map[string]any{"kid": "nope"}, validClaims(s))},
			401, CodeInvalidToken, invalid, tokens.ErrInvalidToken},
		{"OtherServer", []string{"Bearer " + foreign}, 401, CodeInvalidToken, invalid, tokens.ErrInvalidToken},
		{"LowercaseScheme", []string{"bearer " + valid}, 200, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(h, tt.header...)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.status, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate:\n got %s\nwant %s", got, tt.challenge)
			}
			if tt.status == 200 {
				return
			}
			if p := problemOf(t, w); p.Code != tt.code || p.Status != tt.status {
				t.Errorf("problem = %+v, want code %s status %d", p, tt.code, tt.status)
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, a := range tt.header {
				r.Header.Add("Authorization", a)
			}
			if _, ch := g.Check(r, Requirement{}); !errors.Is(ch, tt.err) {
				t.Errorf("Check error = %v, want %v", ch, tt.err)
			}
		})
	}

	t.Run("Expired", func(t *testing.T) {
		tok := s.Token(t, "aal2", []string{"pwd", "otp", "mfa"}, s.Now())
		s.Advance(15*time.Minute + 6*time.Second) // lifetime plus leeway
		w := serve(h, "Bearer "+tok)
		if w.Code != 401 || w.Header().Get("WWW-Authenticate") != expired {
			t.Fatalf("got %d %q, want 401 %q", w.Code, w.Header().Get("WWW-Authenticate"), expired)
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		if _, ch := g.Check(r, Requirement{}); !errors.Is(ch, tokens.ErrExpired) {
			t.Errorf("Check error = %v, want ErrExpired", ch)
		}
	})
}

func TestWrongAudience(t *testing.T) {
	s := guardtest.NewServer(t, guardtest.Options{Audience: "billing"})
	j := newJWKS(t, s, nil)
	g, err := New(j, Config{Issuer: s.URL, Audience: "orders", Now: s.Now})
	if err != nil {
		t.Fatal(err)
	}
	w := serve(g.Require("", 0)(echo), "Bearer "+s.Token(t, "aal3", []string{"hwk"}, s.Now()))
	if w.Code != 401 || problemOf(t, w).Code != CodeInvalidToken {
		t.Fatalf("status %d body %s, want 401 invalid_token", w.Code, w.Body)
	}
	if got, want := w.Header().Get("WWW-Authenticate"), `Bearer realm="orders", error="invalid_token", error_description="the access token is invalid"`; got != want {
		t.Errorf("WWW-Authenticate = %s, want %s", got, want)
	}
}

// A token naming a key location in its header is refused, and the location
// is never fetched.
func TestNeverFetchesTokenURLs(t *testing.T) {
	var hits atomic.Int64
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer trap.Close()
	s := guardtest.NewServer(t, guardtest.Options{})
	g, _ := newGuard(t, s)
	key := newP256(t)
	for _, member := range []string{"jku", "x5u"} {
		t.Run(member, func(t *testing.T) {
			s.Advance(time.Hour) // a refresh would be allowed
			tok := forge(t, jwt.SigningMethodES256, key, map[string]any{"kid": "trap", member: trap.URL + "/jwks.json"}, validClaims(s))
			if w := serve(g.Require("", 0)(echo), "Bearer "+tok); w.Code != 401 {
				t.Fatalf("status = %d, want 401", w.Code)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the URL in the token was fetched %d times", n)
	}
}

func TestContextCarriesClaims(t *testing.T) {
	s := guardtest.NewServer(t, guardtest.Options{})
	g, _ := newGuard(t, s)
	authTime := s.Now().Add(-time.Minute)
	tok := s.Token(t, "aal2", []string{"pwd", "otp", "mfa"}, authTime)
	var got tokens.AccessClaims
	var ok bool
	h := g.Require("aal2", 0)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got, ok = FromContext(r.Context())
	}))
	if w := serve(h, "Bearer "+tok); w.Code != 200 {
		t.Fatalf("status = %d; body %s", w.Code, w.Body)
	}
	if !ok {
		t.Fatal("FromContext found no claims")
	}
	if got.Subject != guardtest.Subject || got.Session != guardtest.Session || got.ACR != "aal2" ||
		strings.Join(got.AMR, " ") != "pwd otp mfa" || !got.AuthTime.Equal(authTime) || got.Issuer != s.URL {
		t.Errorf("claims = %+v", got)
	}
	if _, ok := FromContext(context.Background()); ok {
		t.Error("FromContext found claims in an empty context")
	}
}

// Stacked guards verify the signature once.
func TestStackedVerifiesOnce(t *testing.T) {
	s := guardtest.NewServer(t, guardtest.Options{})
	keys := &countingKeys{JWKS: newJWKS(t, s, nil)}
	g, err := New(keys, Config{Issuer: s.URL, Audience: s.Audience, Now: s.Now})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Require("aal2", 0)(g.RequireAMR("hwk")(echo))
	if w := serve(h, "Bearer "+s.Token(t, "aal3", []string{"hwk", "mfa"}, s.Now())); w.Code != 200 {
		t.Fatalf("status = %d; body %s", w.Code, w.Body)
	}
	if n := keys.n.Load(); n != 1 {
		t.Errorf("key lookups = %d, want 1", n)
	}
	// The inner guard still holds the token to its own requirement.
	if w := serve(h, "Bearer "+s.Token(t, "aal2", []string{"otp", "mfa"}, s.Now())); w.Code != 401 {
		t.Errorf("status = %d, want 401", w.Code)
	}
}

func TestOnChallenge(t *testing.T) {
	s := guardtest.NewServer(t, guardtest.Options{})
	var seen []error
	g, err := New(newJWKS(t, s, nil), Config{Issuer: s.URL, Audience: s.Audience, Now: s.Now,
		OnChallenge: func(_ *http.Request, c *Challenge) { seen = append(seen, c.Err) }})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Require("aal2", 0)(echo)
	serve(h)
	serve(h, "Bearer "+s.Token(t, "aal1", []string{"pwd"}, s.Now()))
	serve(h, "Bearer "+s.Token(t, "aal2", []string{"otp"}, s.Now()))
	if len(seen) != 2 || !errors.Is(seen[0], ErrNoToken) || !errors.Is(seen[1], ErrInsufficient) {
		t.Errorf("OnChallenge saw %v, want [ErrNoToken ErrInsufficient]", seen)
	}
}

func TestCustomLadder(t *testing.T) {
	s := guardtest.NewServer(t, guardtest.Options{})
	g, err := New(newJWKS(t, s, nil), Config{Issuer: s.URL, Audience: s.Audience, Now: s.Now,
		Levels: []string{"bronze", "silver", "gold"}, Realm: "vault"})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Require("silver", 0)(echo)
	if w := serve(h, "Bearer "+s.Token(t, "gold", nil, s.Now())); w.Code != 200 {
		t.Errorf("gold: status = %d, want 200", w.Code)
	}
	w := serve(h, "Bearer "+s.Token(t, "aal3", nil, s.Now()))
	want := `Bearer realm="vault", error="insufficient_user_authentication", error_description="authentication level silver or higher is required", acr_values="silver"`
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != want {
		t.Errorf("aal3: got %d %s, want 401 %s", w.Code, w.Header().Get("WWW-Authenticate"), want)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"Minimal", Config{Issuer: "https://a", Audience: "x"}, true},
		{"NoIssuer", Config{Audience: "x"}, false},
		{"NoAudience", Config{Issuer: "https://a"}, false},
		{"QuoteInRealm", Config{Issuer: "https://a", Audience: "x", Realm: `a"b`}, false},
		{"QuoteInAudienceRealm", Config{Issuer: "https://a", Audience: `x"`}, false},
		{"SpaceInLevel", Config{Issuer: "https://a", Audience: "x", Levels: []string{"a b"}}, false},
		{"EmptyLevel", Config{Issuer: "https://a", Audience: "x", Levels: []string{"a", ""}}, false},
		{"DuplicateLevel", Config{Issuer: "https://a", Audience: "x", Levels: []string{"a", "b", "a"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
			if _, err := New(&JWKS{}, tt.cfg); (err == nil) != tt.ok {
				t.Errorf("New() = %v, want ok %v", err, tt.ok)
			}
		})
	}
	if _, err := New(nil, Config{Issuer: "https://a", Audience: "x"}); err == nil {
		t.Error("New(nil keys) succeeded")
	}
}

func TestBadRequirementPanics(t *testing.T) {
	g, err := New(&JWKS{}, Config{Issuer: "https://a", Audience: "x"})
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(){
		"UnknownACR":    func() { g.Require("aal4", 0) },
		"SubSecondAge":  func() { g.Require("aal1", 500*time.Millisecond) },
		"NegativeAge":   func() { g.Require("aal1", -time.Second) },
		"EmptyAMR":      func() { g.RequireAMR("") },
		"QuotedAMR":     func() { g.RequireAMR(`h"wk`) },
		"SpaceInAMR":    func() { g.RequireAMR("hwk user") },
		"GinStyleLevel": func() { g.Middleware(Requirement{ACR: "AAL2"}) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}

// Claims cached in the context by Authorize are reused only for the same
// token, and only while it has not expired.
func TestContextCacheBound(t *testing.T) {
	s := guardtest.NewServer(t, guardtest.Options{})
	g, _ := newGuard(t, s)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+s.Token(t, "aal3", []string{"hwk"}, s.Now()))
	admitted, ch := g.Authorize(r, Requirement{ACR: "aal3"})
	if ch != nil {
		t.Fatalf("Authorize: %v", ch)
	}

	t.Run("OtherToken", func(t *testing.T) {
		r2 := admitted.Clone(admitted.Context())
		r2.Header.Set("Authorization", "Bearer "+s.Token(t, "aal1", []string{"pwd"}, s.Now()))
		if _, ch := g.Check(r2, Requirement{ACR: "aal2"}); !errors.Is(ch, ErrInsufficient) {
			t.Errorf("Check = %v, want ErrInsufficient from the new token", ch)
		}
	})
	t.Run("OtherGuard", func(t *testing.T) {
		other, err := New(newJWKS(t, s, nil), Config{Issuer: s.URL, Audience: "orders", Now: s.Now})
		if err != nil {
			t.Fatal(err)
		}
		if _, ch := other.Check(admitted, Requirement{}); !errors.Is(ch, tokens.ErrInvalidToken) {
			t.Errorf("Check = %v, want ErrInvalidToken (wrong audience for this guard)", ch)
		}
	})
	t.Run("Expired", func(t *testing.T) {
		s.Advance(time.Hour)
		if _, ch := g.Check(admitted, Requirement{}); !errors.Is(ch, tokens.ErrExpired) {
			t.Errorf("Check = %v, want ErrExpired", ch)
		}
	})
}
