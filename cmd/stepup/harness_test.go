package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/store/storetest"
)

// The end-to-end harness: real App instances on 127.0.0.1:0, talking to the
// real MongoDB-compatible store (storetest), reached over HTTP only.

// testIssuer is the issuer every test App uses; it need not match the port.
const testIssuer = "http://localhost:8080"

// clock is a frozen, shareable clock. Every test App runs on one, so TOTP
// steps, token times and budget back-off are deterministic; it only moves
// when a test advances it.
type clock struct{ ns atomic.Int64 }

// newClock starts 10 s into the current 30 s TOTP step, so a test may advance
// it by up to 19 s without changing step.
func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Unix(time.Now().Unix()/30*30+10, 0).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// step is the TOTP time step of c's now.
func (c *clock) step() int64 { return c.Now().Unix() / 30 }

// appOptions varies a test App. The zero value is an open-sign-up App on a
// fresh database with its own frozen clock and logs at error level to the
// test log.
type appOptions struct {
	Database     string       // shared by several instances; empty: a fresh one
	Clock        *clock       // shared by several instances; nil: a fresh one
	SignupClosed bool         // SignupOpen false
	Logger       *slog.Logger // nil: error level, to the test log
	// TrustedProxies lets a test speak for several client addresses
	// through X-Forwarded-For.
	TrustedProxies []string
	AnonRate       int // requests per minute per address on anonymous endpoints; 0: no limit
	AddrFailures   int // wrong passwords per hour per address at sign-in; 0: no limit
	// Configure changes the configuration further before the App opens.
	Configure func(*Config)
	// AdminClients, as STEPUP_ADMIN_CLIENTS, turns on the admin listener
	// on 127.0.0.1:0 with those clients.
	AdminClients string

	// DPoP and introspection (dpop_test.go).
	DPoPRequired  bool              // STEPUP_DPOP=required
	DPoPNonce     bool              // STEPUP_DPOP_NONCE=on
	Introspectors map[string]string // RFC 7662 clients
	// RememberDevice is STEPUP_REMEMBER_DEVICE (0: off).
	RememberDevice time.Duration
}

// testApp is one running App and a client for it.
type testApp struct {
	*App
	Clock  *clock
	base   string
	client *http.Client
}

// newDatabase names a fresh database.
func newDatabase() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "e2e_" + hex.EncodeToString(b)
}

// startApp starts an App, waits until /readyz answers 200, and stops it when
// tb ends. The instance that creates a database drops it at the end, after
// every other instance on it has closed (cleanups run last-in, first-out).
func startApp(tb testing.TB, o appOptions) *testApp {
	tb.Helper()
	owner := o.Database == ""
	if owner {
		o.Database = newDatabase()
	}
	if o.Clock == nil {
		o.Clock = newClock()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	app := &App{
		Config: Config{
			Addr:           "127.0.0.1:0",
			Issuer:         testIssuer,
			MongoURI:       storetest.URI(tb),
			Database:       o.Database,
			MasterKey:      storetest.MasterKey,
			Audiences:      []string{"stepup"},
			RPID:           "localhost",
			RPOrigins:      []string{testIssuer},
			SignupOpen:     !o.SignupClosed,
			SigningAlg:     "ES256",
			TrustedProxies: o.TrustedProxies,
			AnonRate:       o.AnonRate,
			AddrFailures:   o.AddrFailures,
			AccessTTL:      15 * time.Minute,
			LogLevel:       "error",
			DPoPRequired:   o.DPoPRequired,
			DPoPNonce:      o.DPoPNonce,
			Introspectors:  o.Introspectors,
			RememberDevice: o.RememberDevice,
		},
		Logger: o.Logger,
		Now:    o.Clock.Now,
	}
	if o.Configure != nil {
		o.Configure(&app.Config)
	}
	if o.AdminClients != "" {
		clients, err := parseAdminClients(o.AdminClients)
		if err != nil {
			tb.Fatalf("admin clients: %v", err)
		}
		app.Config.AdminAddr, app.Config.AdminClients = "127.0.0.1:0", clients
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Open(ctx); err != nil {
		tb.Fatalf("open app: %v", err)
	}
	ta := &testApp{App: app, Clock: o.Clock, base: "http://" + app.Addr(),
		client: &http.Client{Timeout: 30 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ta.client.CloseIdleConnections()
		if owner && app.DB() != nil {
			_ = app.DB().Drop(ctx)
		}
		if err := app.Close(ctx); err != nil {
			tb.Errorf("close app: %v", err)
		}
	})
	ta.waitReady(tb)
	return ta
}

// startApps starts n instances on one database and one clock.
func startApps(tb testing.TB, n int, o appOptions) []*testApp {
	tb.Helper()
	first := startApp(tb, o)
	apps := []*testApp{first}
	o.Database, o.Clock = first.Config.Database, first.Clock
	for len(apps) < n {
		apps = append(apps, startApp(tb, o))
	}
	return apps
}

// waitReady polls /readyz; it never sleeps longer than a few milliseconds.
func (a *testApp) waitReady(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		r, err := a.send(http.MethodGet, "/readyz", "", "", nil)
		if err == nil && r.Status == http.StatusOK {
			return
		}
		last = fmt.Sprint(r.Status, err)
		time.Sleep(5 * time.Millisecond)
	}
	tb.Fatalf("app at %s not ready: %s", a.base, last)
}

// tbWriter sends log lines to the test log.
type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// response is a finished HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// problemBody is an RFC 9457 answer.
type problemBody struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Code     string `json:"code"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
}

// problem decodes r as problem+json, failing tb if it is not one.
func (r response) problem(tb testing.TB) problemBody {
	tb.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		tb.Fatalf("Content-Type = %q, want application/problem+json (status %d, body %s)", ct, r.Status, r.Body)
	}
	var p problemBody
	if err := json.Unmarshal(r.Body, &p); err != nil {
		tb.Fatalf("problem body %q: %v", r.Body, err)
	}
	if p.Code == "" || p.Status != r.Status {
		tb.Fatalf("problem %s: want a code and status %d", r.Body, r.Status)
	}
	return p
}

// code is the problem code of r, or "" when r is not a problem answer. It
// is safe to call from any goroutine.
func (r response) code() string {
	var p problemBody
	if r.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(r.Body, &p) != nil {
		return ""
	}
	return p.Code
}

// decode unmarshals r's JSON body into v, failing tb on any other status
// than want.
func (r response) decode(tb testing.TB, want int, v any) {
	tb.Helper()
	if r.Status != want {
		tb.Fatalf("status = %d, want %d; body %s", r.Status, want, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("Content-Type = %q, want application/json", ct)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.Body, err)
	}
}

// wantProblem fails tb unless r is a problem answer with status and code.
func (r response) wantProblem(tb testing.TB, status int, code string) problemBody {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	p := r.problem(tb)
	if p.Code != code {
		tb.Fatalf("code = %q, want %q; body %s", p.Code, code, r.Body)
	}
	return p
}

// send makes one request. body is sent as is with contentType; token, if
// set, goes in a Bearer Authorization header. It never fails the test, so
// goroutines may call it.
func (a *testApp) send(method, path, token, contentType string, body []byte) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		return response{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := a.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

// postJSON sends v marshalled as application/json, or no body at all for
// a nil v (a JSON null is refused: it is not an object); it never fails the
// test.
func (a *testApp) postJSON(path, token string, v any) (response, error) {
	if v == nil {
		return a.send(http.MethodPost, path, token, "", nil)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return response{}, err
	}
	return a.send(http.MethodPost, path, token, "application/json", b)
}

// post is postJSON that fails tb on a transport error.
func (a *testApp) post(tb testing.TB, path, token string, v any) response {
	tb.Helper()
	r, err := a.postJSON(path, token, v)
	if err != nil {
		tb.Fatalf("POST %s: %v", path, err)
	}
	return r
}

// get sends a GET with an optional bearer token.
func (a *testApp) get(tb testing.TB, path, token string) response {
	tb.Helper()
	r, err := a.send(http.MethodGet, path, token, "", nil)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	return r
}

// raw sends body as is.
func (a *testApp) raw(tb testing.TB, path, token, contentType string, body []byte) response {
	tb.Helper()
	r, err := a.send(http.MethodPost, path, token, contentType, body)
	if err != nil {
		tb.Fatalf("POST %s: %v", path, err)
	}
	return r
}

// The service's JSON answers, as the tests read them.
type (
	signupResult struct {
		ID       string `json:"id"`
		Username string `json:"username"`
	}
	loginResult struct {
		Status       string   `json:"status"`
		MFAToken     string   `json:"mfa_token"`
		Factors      []string `json:"factors"`
		TokenType    string   `json:"token_type"`
		AccessToken  string   `json:"access_token"`
		ExpiresIn    int      `json:"expires_in"`
		RefreshToken string   `json:"refresh_token"`
		ACR          string   `json:"acr"`
		AMR          []string `json:"amr"`
	}
	factorResult struct {
		ID         string     `json:"id"`
		Kind       string     `json:"kind"`
		Name       string     `json:"name"`
		Confirmed  bool       `json:"confirmed"`
		CreatedAt  time.Time  `json:"created_at"`
		LastUsedAt *time.Time `json:"last_used_at"`
		Secret     string     `json:"secret"`
		URI        string     `json:"otpauth_uri"`
		QR         string     `json:"qr_png"`
		// RecoveryCodes come once, with the user's first confirmed factor.
		RecoveryCodes []string `json:"recovery_codes"`
		// Authenticator is a WebAuthn factor's model, from its AAGUID;
		// Attested says its attestation was trusted at registration.
		Authenticator *string `json:"authenticator"`
		Attested      bool    `json:"attested"`
	}
	meResult struct {
		ID       string    `json:"id"`
		Username string    `json:"username"`
		SID      string    `json:"sid"`
		ACR      string    `json:"acr"`
		AMR      []string  `json:"amr"`
		AuthTime time.Time `json:"auth_time"`
	}
)

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type codeBody struct {
	Code string `json:"code"`
}

// signup creates a user and returns its id.
func (a *testApp) signup(tb testing.TB, username, password string) signupResult {
	tb.Helper()
	var out signupResult
	a.post(tb, "/v1/users", "", credentials{username, password}).decode(tb, http.StatusCreated, &out)
	return out
}

// login runs the password step and wants 200.
func (a *testApp) login(tb testing.TB, username, password string) loginResult {
	tb.Helper()
	var out loginResult
	a.post(tb, "/v1/login", "", credentials{username, password}).decode(tb, http.StatusOK, &out)
	return out
}

// mfaToken signs in with the password and returns the mfa_token.
func (a *testApp) mfaToken(tb testing.TB, username, password string) string {
	tb.Helper()
	l := a.login(tb, username, password)
	if l.Status != "mfa_required" || l.MFAToken == "" {
		tb.Fatalf("login: status %q, mfa_token %q; want mfa_required with a token", l.Status, l.MFAToken)
	}
	return l.MFAToken
}

// verify sends a TOTP code with an mfa_token.
func (a *testApp) verify(tb testing.TB, mfaToken, code string) response {
	tb.Helper()
	return a.post(tb, "/v1/mfa/totp/verify", mfaToken, codeBody{code})
}

// totpUser is a signed-up user with one confirmed TOTP factor.
type totpUser struct {
	ID, Username, Password string
	FactorID               string
	Secret                 []byte
	Base32                 string
	RecoveryCodes          []string
}

// code is the user's TOTP code for step.
func (u totpUser) code(step int64) string { return totpCode(u.Secret, step) }

// newTOTPUser signs up username, enrolls a TOTP factor and confirms it with
// the code of the step before the clock's (so the current and next steps
// remain unused). It costs two password hashes.
func newTOTPUser(tb testing.TB, a *testApp, username string) totpUser {
	tb.Helper()
	pw := "pw-" + username + "-correct horse"
	su := a.signup(tb, username, pw)
	l := a.login(tb, username, pw)
	if l.Status != "authenticated" {
		tb.Fatalf("first login: status %q, want authenticated", l.Status)
	}
	var enr factorResult
	a.post(tb, "/v1/me/factors/totp", l.AccessToken, nil).decode(tb, http.StatusCreated, &enr)
	secret := decodeBase32(tb, enr.Secret)
	var conf factorResult
	a.post(tb, "/v1/me/factors/totp/"+enr.ID+"/confirm", l.AccessToken, codeBody{totpCode(secret, a.Clock.step()-1)}).
		decode(tb, http.StatusOK, &conf)
	if !conf.Confirmed {
		tb.Fatalf("confirm: factor not confirmed: %+v", conf)
	}
	return totpUser{ID: su.ID, Username: su.Username, Password: pw, FactorID: enr.ID, Secret: secret, Base32: enr.Secret,
		RecoveryCodes: conf.RecoveryCodes}
}

// wrongCode returns a well-formed code that matches none of the steps
// around the clock for secret.
func wrongCode(secret []byte, step int64, salt int) string {
	for i := salt; ; i++ {
		c := fmt.Sprintf("%06d", (i*7919+104729)%1000000)
		ok := true
		for s := step - 2; s <= step+2; s++ {
			if totpCode(secret, s) == c {
				ok = false
			}
		}
		if ok {
			return c
		}
	}
}

// fanOut runs n calls of f at once: every goroutine waits on one closed
// channel, so the requests leave together. It returns the responses in
// index order; a transport error fails tb.
func fanOut(tb testing.TB, n int, f func(i int) (response, error)) []response {
	tb.Helper()
	out := make([]response, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			out[i], errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("request %d: %v", i, err)
		}
	}
	return out
}

// tally counts responses by "status code" (e.g. "401 mfa_failed", "200 ").
func tally(rs []response) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		m[fmt.Sprintf("%d %s", r.Status, r.code())]++
	}
	return m
}
