package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/api/flows"
	"github.com/stepup-auth/stepup/api/flows/flowstest"
	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/store"
	"github.com/stepup-auth/stepup/tokens"
)

// Handler tests: what is HTTP-specific (decoding, the error table's
// rendering, headers, cookies), over an httptest.Server around NewServer
// with a real flows.App on the real store (storetest), wired as
// cmd/stepup does, on one frozen clock. Password hashes are few: fixture
// users share one precomputed hash, and tokens a test only needs to hold
// are issued as the flows issue them.

const (
	htIssuer   = flowstest.Issuer
	htMFAAud   = flowstest.MFAAudience
	htCORS     = "https://app.example"
	htPassword = flowstest.Password

	htIntrospector, htIntrospectorSecret = "rs", "rs-secret"
)

type htEnv struct {
	*flowstest.Env
	app   *flows.App
	db    *store.DB
	clock *flowstest.Clock
	url   string
}

// newHTEnv starts the server around a flowstest App on a fresh database.
func newHTEnv(t *testing.T) *htEnv {
	t.Helper()
	fe := flowstest.New(t)
	srv := NewServer(Config{Issuer: htIssuer, MFAAudience: htMFAAud, Audiences: []string{"stepup"}, SignupOpen: true,
		CORSOrigins: []string{htCORS}, IntrospectionClients: map[string]string{htIntrospector: htIntrospectorSecret}},
		Deps{App: fe.App, Keys: fe.Keys, Policy: mfa.DefaultPolicy, Ready: fe.DB.Ping, Logger: fe.Logger, Now: fe.Clock.Now})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &htEnv{Env: fe, app: fe.App, db: fe.DB, clock: fe.Clock, url: hs.URL}
}

// user creates a factorless user whose password is htPassword.
func (e *htEnv) user(t *testing.T, name string) *mfa.User { return e.User(t, name, "") }

// access starts a session as the flows do after an authentication that
// proved amr, and returns its access token and session.
func (e *htEnv) access(t *testing.T, userID string, amr ...string) (string, *tokens.Session) {
	t.Helper()
	sess := e.Session(t, userID, amr...)
	return e.Access(t, sess), sess
}

// pending issues the mfa_token Login issues after userID's password.
func (e *htEnv) pending(t *testing.T, userID string) string {
	t.Helper()
	return e.Pending(t, tokens.PendingClaims{Subject: userID, AMR: []string{mfa.AMRPassword}})
}

// htTOTPUser is a user with one confirmed TOTP factor (confirmed with the
// previous step's code) and the aal1 access token that enrolled it.
type htTOTPUser struct {
	*mfa.User
	Secret, FactorID, AAL1 string
}

func (e *htEnv) totpUser(t *testing.T, name string) htTOTPUser {
	t.Helper()
	ctx := context.Background()
	u := e.user(t, name)
	tok, _ := e.access(t, u.ID, "pwd")
	c, err := e.app.Authenticate(ctx, tok, flows.Client{})
	if err != nil {
		t.Fatal(err)
	}
	enr, err := e.app.EnrollTOTP(ctx, c, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.app.ConfirmTOTP(ctx, c, enr.Factor.ID, e.code(t, enr.Secret, -1)); err != nil {
		t.Fatal(err)
	}
	return htTOTPUser{User: u, Secret: enr.Secret, FactorID: enr.Factor.ID, AAL1: tok}
}

// code is the TOTP code of secret k steps from the clock's.
func (e *htEnv) code(t *testing.T, secret string, k int) string { return e.Code(t, secret, k) }

// htReq is one request; Type "" sends no Content-Type.
type htReq struct {
	Method, Path, Token, Type, Body string
	Header                          map[string]string
}

type htReply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (e *htEnv) send(t *testing.T, r htReq) htReply {
	t.Helper()
	var body io.Reader
	if r.Body != "" {
		body = strings.NewReader(r.Body)
	}
	req, err := http.NewRequest(r.Method, e.url+r.Path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != "" {
		req.Header.Set("Content-Type", r.Type)
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return htReply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func (e *htEnv) postJSON(t *testing.T, path, token string, v any) htReply {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return e.send(t, htReq{Method: http.MethodPost, Path: path, Token: token, Type: "application/json", Body: string(b)})
}

type htProblem struct {
	Type, Title, Code, Detail, Instance string
	Status                              int
}

// problem checks r is an RFC 9457 answer with status and code, not cached,
// naming the request, and returns its body.
func (r htReply) problem(t *testing.T, status int, code Code) htProblem {
	t.Helper()
	var p htProblem
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json (status %d, body %s)", ct, r.Status, r.Body)
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.Body, err)
	}
	if r.Status != status || p.Status != status || p.Code != string(code) {
		t.Fatalf("got %d %q (body status %d, detail %q), want %d %q", r.Status, p.Code, p.Status, p.Detail, status, code)
	}
	if p.Type != "about:blank" || p.Title != http.StatusText(status) {
		t.Errorf("type %q title %q, want about:blank %q", p.Type, p.Title, http.StatusText(status))
	}
	if want := "urn:request:" + r.Header.Get("X-Request-Id"); p.Instance != want || want == "urn:request:" {
		t.Errorf("instance %q, want %q", p.Instance, want)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q on a problem, want no-store", cc)
	}
	return p
}

// decodeOK checks r is a 200-class JSON answer with Cache-Control: no-store
// and decodes it into a map.
func (r htReply) decodeOK(t *testing.T, status int) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d (%s), want %d", r.Status, r.Body, status)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	m := map[string]any{}
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	return m
}

// TestHandlersDecodeStrictly sends each JSON endpoint bodies that must be
// refused before the application is asked.
func TestHandlersDecodeStrictly(t *testing.T) {
	e := newHTEnv(t)
	u := e.totpUser(t, "alice")
	aal2, _ := e.access(t, u.ID, "pwd", "otp")
	mfaTok := e.pending(t, u.ID)
	endpoints := []struct {
		name, method, path, token string
	}{
		{"SignUp", http.MethodPost, "/v1/users", ""},
		{"Login", http.MethodPost, "/v1/login", ""},
		{"Refresh", http.MethodPost, "/v1/token/refresh", ""},
		{"VerifyTOTP", http.MethodPost, "/v1/mfa/totp/verify", mfaTok},
		{"VerifyRecovery", http.MethodPost, "/v1/mfa/recovery/verify", mfaTok},
		{"WebAuthnOptions", http.MethodPost, "/v1/mfa/webauthn/options", mfaTok},
		{"StepUp", http.MethodPost, "/v1/stepup", aal2},
		{"EnrollTOTP", http.MethodPost, "/v1/me/factors/totp", aal2},
		{"ConfirmTOTP", http.MethodPost, "/v1/me/factors/totp/" + u.FactorID + "/confirm", aal2},
		{"RenameFactor", http.MethodPatch, "/v1/me/factors/" + u.FactorID, aal2},
		{"RecoveryCodes", http.MethodPost, "/v1/me/recovery-codes", aal2},
		{"ChangePassword", http.MethodPost, "/v1/me/password", aal2},
	}
	bodies := []struct {
		name, ctype, body string
		status            int
		code              Code
		detail            string // "" when not checked
	}{
		{"UnknownField", "application/json", `{"zzz":1}`, 400, CodeInvalidRequest, "unknown field zzz"},
		{"TrailingObject", "application/json", `{}{}`, 400, CodeInvalidRequest, "the body must hold exactly one JSON object"},
		{"TrailingGarbage", "application/json", `{} x`, 400, CodeInvalidRequest, "the body must hold exactly one JSON object"},
		{"NotJSON", "application/json", `{"a":`, 400, CodeInvalidRequest, "the body is not valid JSON"},
		{"NotAnObject", "application/json", `[]`, 400, CodeInvalidRequest, ""},
		{"TextPlain", "text/plain", `{}`, 415, CodeUnsupportedMediaType, "the body must be application/json"},
		{"NoContentType", "", `{}`, 415, CodeUnsupportedMediaType, "the body must be application/json"},
		{"JSONLookalike", "application/jsonx", `{}`, 415, CodeUnsupportedMediaType, "the body must be application/json"},
		{"TooLarge", "application/json", `{"zzz":"` + strings.Repeat("a", maxBody) + `"}`, 413, CodeRequestTooLarge, "the body is too large"},
	}
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			for _, b := range bodies {
				t.Run(b.name, func(t *testing.T) {
					r := e.send(t, htReq{Method: ep.method, Path: ep.path, Token: ep.token, Type: b.ctype, Body: b.body})
					p := r.problem(t, b.status, b.code)
					if b.detail != "" && p.Detail != b.detail {
						t.Errorf("detail %q, want %q", p.Detail, b.detail)
					}
				})
			}
		})
	}
	// Nothing was acted on: the factor kept its name, the token its use.
	if f := mustUser(t, e, u.ID).Factor(u.FactorID); f == nil || f.Name != "Authenticator app" || !f.Confirmed {
		t.Errorf("factor after the refused requests: %+v", f)
	}

	t.Run("EmptyBody", func(t *testing.T) {
		r := e.send(t, htReq{Method: http.MethodPost, Path: "/v1/login", Type: "application/json"})
		if p := r.problem(t, 400, CodeInvalidRequest); p.Detail != "the body is empty" {
			t.Errorf("detail %q, want \"the body is empty\"", p.Detail)
		}
	})
	t.Run("WrongFieldType", func(t *testing.T) {
		r := e.send(t, htReq{Method: http.MethodPost, Path: "/v1/login", Type: "application/json", Body: `{"username":5}`})
		if p := r.problem(t, 400, CodeInvalidRequest); p.Detail != "field username has the wrong type" {
			t.Errorf("detail %q, want \"field username has the wrong type\"", p.Detail)
		}
	})
	t.Run("CharsetParameterAccepted", func(t *testing.T) {
		// Decoded, then refused by the application for the username.
		r := e.send(t, htReq{Method: http.MethodPost, Path: "/v1/users", Type: "application/json; charset=utf-8",
			Body: `{"username":"with space","password":"long enough password"}`})
		if p := r.problem(t, 400, CodeInvalidRequest); !strings.HasPrefix(p.Detail, "username must be") {
			t.Errorf("detail %q, want the username rule", p.Detail)
		}
	})
	t.Run("RefreshForm", func(t *testing.T) {
		form := "application/x-www-form-urlencoded"
		for name, body := range map[string]string{
			"WrongGrant":    "grant_type=password&refresh_token=x",
			"UnknownParam":  "grant_type=refresh_token&refresh_token=x&scope=all",
			"RepeatedParam": "grant_type=refresh_token&refresh_token=x&refresh_token=y",
			"MissingToken":  "grant_type=refresh_token",
			"TokenTooLong":  "grant_type=refresh_token&refresh_token=" + strings.Repeat("a", 257),
			"UnknownToken":  "grant_type=refresh_token&refresh_token=" + url.QueryEscape("sid."+strings.Repeat("A", 43)),
			"EmptyForm":     "",
		} {
			t.Run(name, func(t *testing.T) {
				r := e.send(t, htReq{Method: http.MethodPost, Path: "/v1/token/refresh", Type: form, Body: body})
				switch name {
				case "UnknownToken":
					r.problem(t, 400, CodeInvalidGrant)
				default:
					r.problem(t, 400, CodeInvalidRequest)
				}
			})
		}
	})
}

func mustUser(t *testing.T, e *htEnv, id string) *mfa.User {
	t.Helper()
	u, err := e.db.User(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestProblemRendering checks the error table's rendering: status, code,
// challenge and Retry-After, per handler.
func TestProblemRendering(t *testing.T) {
	e := newHTEnv(t)
	u := e.totpUser(t, "alice")
	aal2, _ := e.access(t, u.ID, "pwd", "otp")
	mfaTok := e.pending(t, u.ID)
	revoked, revokedSess := e.access(t, u.ID, "pwd", "otp")
	if err := e.app.Sessions.Revoke(context.Background(), revokedSess.ID); err != nil {
		t.Fatal(err)
	}
	// A session whose sign-in is one second old (for max_age 0).
	e.clock.Advance(time.Second)

	const (
		realm         = `Bearer realm="stepup"`
		noToken       = `Bearer realm="stepup", DPoP realm="stepup", algs="ES256 EdDSA"`
		badAccess     = `Bearer error="invalid_token", error_description="the access token is invalid or expired"`
		badMFA        = `Bearer error="invalid_token", error_description="the mfa_token is invalid or expired"`
		sessionEnded  = `Bearer error="invalid_token", error_description="the session has ended"`
		malformedAuth = `Bearer error="invalid_request", error_description="the Authorization header must hold one Bearer or DPoP token"`
		insufficient  = `Bearer error="insufficient_user_authentication", ` +
			`error_description="a more recent or stronger authentication is required", acr_values="aal2", max_age="600"`
	)
	tests := []struct {
		name      string
		req       htReq
		status    int
		code      Code
		challenge string // exact WWW-Authenticate; "" for none
	}{
		{"NoToken", htReq{Method: "GET", Path: "/v1/me"}, 401, CodeInvalidToken, noToken},
		{"OtherScheme", htReq{Method: "GET", Path: "/v1/me", Header: map[string]string{"Authorization": "Basic dTpw"}},
			401, CodeInvalidToken, noToken},
		{"GarbageToken", htReq{Method: "GET", Path: "/v1/me", Token: "garbage"}, 401, CodeInvalidToken, badAccess},
		{"MalformedAuthorization", htReq{Method: "GET", Path: "/v1/me", Token: "two words"}, 400, CodeInvalidRequest, malformedAuth},
		{"MFATokenAsAccess", htReq{Method: "GET", Path: "/v1/me", Token: mfaTok}, 401, CodeInvalidToken, badAccess},
		{"AccessAsMFAToken", htReq{Method: "POST", Path: "/v1/mfa/totp/verify", Token: aal2, Type: "application/json",
			Body: `{"code":"123456"}`}, 401, CodeInvalidToken, badMFA},
		{"RevokedSession", htReq{Method: "GET", Path: "/v1/me", Token: revoked}, 401, CodeInvalidToken, sessionEnded},
		{"Insufficient", htReq{Method: "DELETE", Path: "/v1/me/factors/" + u.FactorID + "?last=true", Token: u.AAL1},
			401, CodeInsufficient, insufficient},
		{"WrongCode", htReq{Method: "POST", Path: "/v1/mfa/totp/verify", Token: mfaTok, Type: "application/json",
			Body: `{"code":"` + e.WrongCode(t, u.Secret) + `"}`}, 401, CodeMFAFailed, realm},
		{"MalformedCode", htReq{Method: "POST", Path: "/v1/mfa/totp/verify", Token: mfaTok, Type: "application/json",
			Body: `{"code":"12 456"}`}, 400, CodeInvalidRequest, ""},
		{"LastFactor", htReq{Method: "DELETE", Path: "/v1/me/factors/" + u.FactorID, Token: aal2}, 409, CodeLastFactor, ""},
		{"FactorNotFound", htReq{Method: "GET", Path: "/v1/me/factors/nosuch", Token: aal2}, 404, CodeNotFound, ""},
		{"PasswordRequired", htReq{Method: "POST", Path: "/v1/stepup", Token: aal2, Type: "application/json",
			Body: `{"acr_values":"aal2","max_age":0}`}, 400, CodePasswordRequired, ""},
		{"UnknownACR", htReq{Method: "POST", Path: "/v1/stepup", Token: aal2, Type: "application/json",
			Body: `{"acr_values":"gold"}`}, 400, CodeInvalidRequest, ""},
		{"NoFactorReaches", htReq{Method: "POST", Path: "/v1/stepup", Token: aal2, Type: "application/json",
			Body: `{"acr_values":"aal3"}`}, 403, CodeUnmet, ""},
		{"NegativeMaxAge", htReq{Method: "POST", Path: "/v1/stepup", Token: aal2, Type: "application/json",
			Body: `{"acr_values":"aal2","max_age":-1}`}, 400, CodeInvalidRequest, ""},
		{"UnknownRefreshToken", htReq{Method: "POST", Path: "/v1/token/refresh", Type: "application/json",
			Body: `{"refresh_token":"garbage"}`}, 400, CodeInvalidGrant, ""},
		{"UsernameTaken", htReq{Method: "POST", Path: "/v1/users", Type: "application/json",
			Body: `{"username":"alice","password":"long enough password"}`}, 409, CodeConflict, ""},
		{"NoRoute", htReq{Method: "GET", Path: "/v1/nope"}, 404, CodeNotFound, ""},
		{"MethodNotAllowed", htReq{Method: "GET", Path: "/v1/login"}, 405, CodeMethodNotAllowed, ""},
		{"BadCredentials", htReq{Method: "POST", Path: "/v1/login", Type: "application/json",
			Body: `{"username":"nobody","password":"long enough password"}`}, 401, CodeInvalidCredentials, realm},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.send(t, tc.req)
			p := r.problem(t, tc.status, tc.code)
			if got := r.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			if ra := r.Header.Get("Retry-After"); ra != "" {
				t.Errorf("Retry-After %q on a %d", ra, tc.status)
			}
			if p.Detail == "" || strings.Contains(p.Detail, "flows:") || strings.Contains(p.Detail, "mfa:") ||
				strings.Contains(p.Detail, "tokens:") || strings.Contains(p.Detail, "store:") {
				t.Errorf("detail %q: empty or an internal error", p.Detail)
			}
		})
	}

	t.Run("UsedMFAToken", func(t *testing.T) {
		tok := e.pending(t, u.ID)
		body := map[string]string{"code": e.code(t, u.Secret, 0)}
		e.postJSON(t, "/v1/mfa/totp/verify", tok, body).decodeOK(t, 200)
		body["code"] = e.code(t, u.Secret, 1)
		r := e.postJSON(t, "/v1/mfa/totp/verify", tok, body)
		r.problem(t, 401, CodeInvalidToken)
		if got, want := r.Header.Get("WWW-Authenticate"),
			`Bearer error="invalid_token", error_description="the mfa_token has been used"`; got != want {
			t.Errorf("WWW-Authenticate %q, want %q", got, want)
		}
	})
	t.Run("RateLimited", func(t *testing.T) {
		v := e.totpUser(t, "bob")
		tok := e.pending(t, v.ID)
		bad := map[string]string{"code": e.WrongCode(t, v.Secret)}
		for range 5 {
			e.postJSON(t, "/v1/mfa/totp/verify", tok, bad).problem(t, 401, CodeMFAFailed)
		}
		r := e.postJSON(t, "/v1/mfa/totp/verify", e.pending(t, v.ID), map[string]string{"code": e.code(t, v.Secret, 0)})
		r.problem(t, 429, CodeRateLimited)
		if ra := r.Header.Get("Retry-After"); ra != "1" {
			t.Errorf("Retry-After %q, want 1", ra)
		}
		if ch := r.Header.Get("WWW-Authenticate"); ch != "" {
			t.Errorf("WWW-Authenticate %q on a 429", ch)
		}
		// The spent mfa_token itself is refused as a token.
		r = e.postJSON(t, "/v1/mfa/totp/verify", tok, bad)
		r.problem(t, 401, CodeInvalidToken)
	})
}

// TestTokenResponses: every answer that carries a token is Cache-Control:
// no-store (RFC 6749 §5.1), with the documented members.
func TestTokenResponses(t *testing.T) {
	e := newHTEnv(t)
	e.user(t, "plain")
	u := e.totpUser(t, "alice")

	var refresh string
	t.Run("Login", func(t *testing.T) {
		m := e.postJSON(t, "/v1/login", "", credentials{"plain", htPassword}).decodeOK(t, 200)
		if m["status"] != "authenticated" || m["token_type"] != "Bearer" || m["acr"] != "aal1" || m["expires_in"] != 900.0 ||
			m["access_token"] == nil || m["refresh_token"] == nil {
			t.Fatalf("login answer %v", m)
		}
		refresh = m["refresh_token"].(string)
	})
	t.Run("LoginMFARequired", func(t *testing.T) {
		m := e.postJSON(t, "/v1/login", "", credentials{"alice", htPassword}).decodeOK(t, 200)
		if m["status"] != "mfa_required" || m["mfa_token"] == nil || m["expires_in"] != 300.0 || m["access_token"] != nil {
			t.Fatalf("login answer %v", m)
		}
	})
	t.Run("RefreshJSON", func(t *testing.T) {
		m := e.postJSON(t, "/v1/token/refresh", "", refreshRequest{refresh}).decodeOK(t, 200)
		if m["refresh_token"] == nil || m["refresh_token"] == refresh || m["acr"] != "aal1" {
			t.Fatalf("refresh answer %v", m)
		}
		refresh = m["refresh_token"].(string)
	})
	t.Run("RefreshForm", func(t *testing.T) {
		r := e.send(t, htReq{Method: "POST", Path: "/v1/token/refresh", Type: "application/x-www-form-urlencoded",
			Body: "grant_type=refresh_token&refresh_token=" + url.QueryEscape(refresh)})
		if m := r.decodeOK(t, 200); m["refresh_token"] == nil || m["refresh_token"] == refresh {
			t.Fatalf("refresh answer %v", m)
		}
	})
	t.Run("VerifyTOTP", func(t *testing.T) {
		m := e.postJSON(t, "/v1/mfa/totp/verify", e.pending(t, u.ID), codeRequest{Code: e.code(t, u.Secret, 0)}).decodeOK(t, 200)
		if m["acr"] != "aal2" || m["refresh_token"] == nil {
			t.Fatalf("verify answer %v", m)
		}
	})
	t.Run("StepUp", func(t *testing.T) {
		m := e.postJSON(t, "/v1/stepup", u.AAL1, map[string]string{"acr_values": "aal2"}).decodeOK(t, 200)
		if m["status"] != "mfa_required" || m["factors"] == nil {
			t.Fatalf("step-up answer %v", m)
		}
	})
	t.Run("EnrollTOTP", func(t *testing.T) {
		tok, _ := e.access(t, u.ID, "pwd", "otp")
		m := e.send(t, htReq{Method: "POST", Path: "/v1/me/factors/totp", Token: tok}).decodeOK(t, 201)
		if m["secret"] == nil {
			t.Fatalf("enrollment answer %v", m)
		}
	})
}

// TestRequestID: a sane X-Request-Id is echoed and names the problem; any
// other is replaced.
func TestRequestID(t *testing.T) {
	e := newHTEnv(t)
	tests := []struct {
		name, id string
		echoed   bool
	}{
		{"Sane", "abc-123_XYZ", true},
		{"Max64", strings.Repeat("r", 64), true},
		{"Absent", "", false},
		{"TooLong", strings.Repeat("r", 65), false},
		{"Space", "a b", false},
		{"Quote", `a"b`, false},
		{"NonASCII", "réq", false},
	}
	for _, tc := range tests {
		for _, path := range []string{"/healthz", "/v1/nope"} {
			t.Run(tc.name+path, func(t *testing.T) {
				var hdr map[string]string
				if tc.id != "" {
					hdr = map[string]string{"X-Request-Id": tc.id}
				}
				r := e.send(t, htReq{Method: "GET", Path: path, Header: hdr})
				got := r.Header.Get("X-Request-Id")
				if tc.echoed && got != tc.id {
					t.Fatalf("X-Request-Id %q, want %q echoed", got, tc.id)
				}
				if !tc.echoed && (got == tc.id || len(got) != 16) {
					t.Fatalf("X-Request-Id %q, want a fresh 16-character id", got)
				}
				if path == "/v1/nope" {
					r.problem(t, 404, CodeNotFound) // checks instance is urn:request:<the id>
				}
			})
		}
	}
}

// TestRemoveFactorLastParam: ?last is "true" or absent.
func TestRemoveFactorLastParam(t *testing.T) {
	e := newHTEnv(t)
	u := e.totpUser(t, "alice")
	aal2, _ := e.access(t, u.ID, "pwd", "otp")
	path := "/v1/me/factors/" + u.FactorID
	for _, q := range []string{"?last=bogus", "?last=1", "?last=TRUE", "?last=false", "?last=true%20"} {
		t.Run("Query"+q, func(t *testing.T) {
			r := e.send(t, htReq{Method: "DELETE", Path: path + q, Token: aal2})
			if p := r.problem(t, 400, CodeInvalidRequest); p.Detail != "last must be true or absent" {
				t.Errorf("detail %q", p.Detail)
			}
		})
	}
	t.Run("EmptyIsAbsent", func(t *testing.T) {
		e.send(t, htReq{Method: "DELETE", Path: path + "?last=", Token: aal2}).problem(t, 409, CodeLastFactor)
	})
	if f := mustUser(t, e, u.ID).Factor(u.FactorID); f == nil {
		t.Fatal("a refused removal removed the factor")
	}
	r := e.send(t, htReq{Method: "DELETE", Path: path, Token: aal2})
	r.problem(t, 409, CodeLastFactor)
	r = e.send(t, htReq{Method: "DELETE", Path: path + "?last=true", Token: aal2})
	if r.Status != http.StatusNoContent || len(r.Body) != 0 {
		t.Fatalf("DELETE ?last=true: %d %s, want 204 and no body", r.Status, r.Body)
	}
	e.send(t, htReq{Method: "GET", Path: path, Token: aal2}).problem(t, 404, CodeNotFound)
}

// TestCookieMode: a browser frontend on an allowed origin that asks for
// cookie delivery gets the refresh token in a __Host- cookie, never in the
// body; a cookie refresh needs the origin and the header (CSRF).
func TestCookieMode(t *testing.T) {
	e := newHTEnv(t)
	e.user(t, "plain")
	cookieHdr := func(origin string) map[string]string {
		return map[string]string{"X-Stepup-Cookie": "1", "Origin": origin}
	}
	refreshCookie := func(t *testing.T, r htReply) *http.Cookie {
		t.Helper()
		var found *http.Cookie
		for _, c := range (&http.Response{Header: r.Header}).Cookies() {
			if c.Name == "__Host-stepup-refresh" {
				found = c
			}
		}
		return found
	}
	checkCookie := func(t *testing.T, r htReply) string {
		t.Helper()
		m := r.decodeOK(t, 200)
		if _, ok := m["refresh_token"]; ok {
			t.Errorf("cookie mode: refresh_token in the body")
		}
		if m["access_token"] == nil {
			t.Errorf("cookie mode: no access_token")
		}
		c := refreshCookie(t, r)
		if c == nil {
			t.Fatalf("no __Host-stepup-refresh cookie; Set-Cookie %q", r.Header.Values("Set-Cookie"))
		}
		if c.Value == "" || c.Path != "/" || c.Domain != "" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode ||
			c.MaxAge != 24*3600 {
			t.Errorf("cookie %+v, want a value, Path=/, no Domain, Secure, HttpOnly, SameSite=Strict, Max-Age=86400", c)
		}
		return c.Value
	}

	r := e.send(t, htReq{Method: "POST", Path: "/v1/login", Type: "application/json", Header: cookieHdr(htIssuer),
		Body: `{"username":"plain","password":"` + htPassword + `"}`})
	refresh := checkCookie(t, r)

	// Every token answer follows the same rule; refresh shows it without
	// another password hash.
	tests := []struct {
		name   string
		header map[string]string
		cookie bool
	}{
		{"OwnOrigin", cookieHdr(htIssuer), true},
		{"CORSOrigin", cookieHdr(htCORS), true},
		{"ForeignOrigin", cookieHdr("https://evil.example"), false},
		{"NoOrigin", map[string]string{"X-Stepup-Cookie": "1"}, false},
		{"NoHeader", map[string]string{"Origin": htIssuer}, false},
		{"HeaderNotOne", map[string]string{"X-Stepup-Cookie": "true", "Origin": htIssuer}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.send(t, htReq{Method: "POST", Path: "/v1/token/refresh", Type: "application/json", Header: tc.header,
				Body: `{"refresh_token":"` + refresh + `"}`})
			if tc.cookie {
				refresh = checkCookie(t, r)
				return
			}
			m := r.decodeOK(t, 200)
			if c := refreshCookie(t, r); c != nil {
				t.Errorf("a cookie was set: %+v", c)
			}
			tok, ok := m["refresh_token"].(string)
			if !ok || tok == "" {
				t.Fatalf("no refresh_token in the body: %v", m)
			}
			refresh = tok
		})
	}

	t.Run("CookieRefresh", func(t *testing.T) {
		withCookie := func(h map[string]string) map[string]string {
			out := map[string]string{"Cookie": "__Host-stepup-refresh=" + refresh}
			for k, v := range h {
				out[k] = v
			}
			return out
		}
		// Refused without the CSRF proofs; the token is not spent.
		for name, h := range map[string]map[string]string{
			"NoHeader":      {"Origin": htIssuer},
			"ForeignOrigin": cookieHdr("https://evil.example"),
			"NoOrigin":      {"X-Stepup-Cookie": "1"},
		} {
			t.Run(name, func(t *testing.T) {
				r := e.send(t, htReq{Method: "POST", Path: "/v1/token/refresh", Header: withCookie(h)})
				r.problem(t, 403, CodeCSRF)
			})
		}
		r := e.send(t, htReq{Method: "POST", Path: "/v1/token/refresh", Header: withCookie(cookieHdr(htIssuer))})
		next := checkCookie(t, r)
		if next == refresh {
			t.Errorf("the cookie refresh handed back the same token")
		}
	})
	t.Run("NoCookieNoToken", func(t *testing.T) {
		r := e.send(t, htReq{Method: "POST", Path: "/v1/token/refresh", Header: cookieHdr(htIssuer)})
		if p := r.problem(t, 400, CodeInvalidRequest); p.Detail != "refresh_token is required" {
			t.Errorf("detail %q", p.Detail)
		}
	})
}

// TestDecodeRefusesNull: decode reads "exactly one JSON object" and
// emptyBody accepts "no body or an empty JSON object"; a JSON null is
// neither, and must not be taken for {}.
func TestDecodeRefusesNull(t *testing.T) {
	e := newHTEnv(t)
	u := e.totpUser(t, "alice")
	aal2, _ := e.access(t, u.ID, "pwd", "otp")
	for _, ep := range []struct{ name, path string }{
		{"EnrollTOTP", "/v1/me/factors/totp"},
		{"RecoveryCodes", "/v1/me/recovery-codes"},
	} {
		t.Run(ep.name, func(t *testing.T) {
			r := e.send(t, htReq{Method: http.MethodPost, Path: ep.path, Token: aal2, Type: "application/json", Body: "null"})
			if r.Status != http.StatusBadRequest {
				t.Fatalf("body null: %d (the request was acted on), want 400 invalid_request", r.Status)
			}
			r.problem(t, 400, CodeInvalidRequest)
		})
	}
}

// TestIntrospect: RFC 7662 answers for a registered client — live access
// and refresh tokens are active with their claims; a refresh token past
// its idle limit in a live session, a revoked session's tokens and unknown
// tokens are {"active":false}; a refresh token's exp never passes the
// session's end, even after a rotation.
func TestIntrospect(t *testing.T) {
	e := newHTEnv(t)
	ctx := context.Background()
	u := e.user(t, "alice")
	introspect := func(t *testing.T, id, secret, token string) htReply {
		t.Helper()
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
		return e.send(t, htReq{Method: "POST", Path: "/v1/token/introspect", Type: "application/x-www-form-urlencoded",
			Body: "token=" + url.QueryEscape(token), Header: map[string]string{"Authorization": basic}})
	}
	active := func(t *testing.T, token string) map[string]any {
		t.Helper()
		return introspect(t, htIntrospector, htIntrospectorSecret, token).decodeOK(t, 200)
	}
	start := func(t *testing.T) (*tokens.Session, string) {
		t.Helper()
		sess, refresh, err := e.app.Sessions.Start(ctx, u.ID, e.clock.Now(), "aal1", []string{"pwd"})
		if err != nil {
			t.Fatal(err)
		}
		return sess, refresh
	}

	t.Run("Live", func(t *testing.T) {
		sess, refresh := start(t)
		m := active(t, e.Access(t, sess))
		if m["active"] != true || m["token_type"] != "Bearer" || m["sub"] != u.ID || m["sid"] != sess.ID || m["acr"] != "aal1" {
			t.Errorf("access token: %v", m)
		}
		m = active(t, refresh)
		if m["active"] != true || m["token_type"] != "refresh_token" || m["sub"] != u.ID || m["sid"] != sess.ID ||
			m["exp"] != float64(sess.RefreshExpiresAt.Unix()) {
			t.Errorf("refresh token: %v, want exp %d", m, sess.RefreshExpiresAt.Unix())
		}
	})
	t.Run("WrongClient", func(t *testing.T) {
		_, refresh := start(t)
		introspect(t, htIntrospector, "wrong", refresh).problem(t, 401, CodeInvalidClient)
		introspect(t, "other", htIntrospectorSecret, refresh).problem(t, 401, CodeInvalidClient)
	})
	t.Run("Unknown", func(t *testing.T) {
		for _, tok := range []string{"garbage", "a.b.c", strings.Repeat("A", 43)} {
			if m := active(t, tok); m["active"] != false || len(m) != 1 {
				t.Errorf("%q: %v, want only active false", tok, m)
			}
		}
	})
	t.Run("Revoked", func(t *testing.T) {
		sess, refresh := start(t)
		access := e.Access(t, sess)
		if err := e.app.Sessions.Revoke(ctx, sess.ID); err != nil {
			t.Fatal(err)
		}
		for name, tok := range map[string]string{"Access": access, "Refresh": refresh} {
			if m := active(t, tok); m["active"] != false {
				t.Errorf("%s after revocation: %v", name, m)
			}
		}
	})
	t.Run("RefreshIdleExpired", func(t *testing.T) {
		sess, refresh := start(t)
		e.clock.Advance(sess.RefreshExpiresAt.Sub(e.clock.Now()))
		if !sess.Live(e.clock.Now()) {
			t.Fatal("session ended with its refresh token; the case needs it live")
		}
		if m := active(t, refresh); m["active"] != false {
			t.Errorf("refresh token at its idle limit: %v, want inactive", m)
		}
	})
	t.Run("RefreshExpNotPastSession", func(t *testing.T) {
		s := e.app.Sessions
		ttl, maxAge := s.RefreshTTL, s.MaxAge
		s.RefreshTTL, s.MaxAge = 24*time.Hour, time.Hour
		t.Cleanup(func() { s.RefreshTTL, s.MaxAge = ttl, maxAge })
		sess, refresh := start(t)
		e.clock.Advance(30 * time.Minute)
		_, next, err := s.Rotate(ctx, refresh) // stores now+24h, past the session's end
		if err != nil {
			t.Fatal(err)
		}
		if m := active(t, next); m["active"] != true || m["exp"] != float64(sess.ExpiresAt.Unix()) {
			t.Errorf("rotated refresh token: %v, want exp %d (the session's end)", m, sess.ExpiresAt.Unix())
		}
	})
}
