package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/store"
	"github.com/stepup-auth/stepup/store/storetest"
)

// faultStore is an embedded store of its own, on a fixed loopback port, so
// a test can stop it and start it again at the same address and data.
type faultStore struct {
	dir, addr string
	e         *store.Embedded
}

func (f *faultStore) start(tb testing.TB) {
	tb.Helper()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))
	e, err := store.StartEmbedded(f.dir, f.addr, quiet)
	if err != nil {
		tb.Fatalf("start store: %v", err)
	}
	f.e = e
}

func (f *faultStore) stop() {
	if f.e != nil {
		f.e.Close()
		f.e = nil
	}
}

// TestStoreOutage: while the store is away, requests get a clear 503 and
// /readyz turns false; when it is back, the same instance recovers without a
// restart, and the code and mfa_token interrupted by the outage are
// accepted exactly once.
func TestStoreOutage(t *testing.T) {
	if os.Getenv(storetest.EnvURI) != "" {
		t.Skip("stops and restarts its own embedded store; not applicable to an external MongoDB")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	fs := &faultStore{dir: t.TempDir(), addr: addr}
	fs.start(t)
	t.Cleanup(fs.stop)

	clk := newClock()
	app := &App{Config: Config{Addr: "127.0.0.1:0", Issuer: testIssuer, MongoURI: "mongodb://" + addr + "/", Database: "outage",
		MasterKey: storetest.MasterKey, Audiences: []string{"stepup"}, RPID: "localhost", RPOrigins: []string{testIssuer},
		SignupOpen: true, SigningAlg: "ES256", AccessTTL: 15 * time.Minute, LogLevel: "error"},
		Logger: slog.New(slog.NewTextHandler(tbWriter{t}, &slog.HandlerOptions{Level: slog.LevelError + 4})), Now: clk.Now}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Open(ctx); err != nil {
		t.Fatal(err)
	}
	a := &testApp{App: app, Clock: clk, base: "http://" + app.Addr(), client: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = app.Close(ctx)
	})

	u := newTOTPUser(t, a, "outage")
	mt := a.mfaToken(t, u.Username, u.Password)
	code := u.code(clk.step())

	fs.stop()
	r := a.verify(t, mt, code)
	r.wantProblem(t, http.StatusServiceUnavailable, "unavailable")
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	a.get(t, "/readyz", "").wantProblem(t, http.StatusServiceUnavailable, "unavailable")
	a.post(t, "/v1/login", "", credentials{u.Username, u.Password}).wantProblem(t, http.StatusServiceUnavailable, "unavailable")
	if r := a.get(t, "/healthz", ""); r.Status != http.StatusOK {
		t.Errorf("/healthz during the outage: %d, want 200 (the process is alive)", r.Status)
	}

	fs.start(t)
	a.waitReady(t)
	var tok loginResult
	a.verify(t, mt, code).decode(t, http.StatusOK, &tok)
	if tok.ACR != "aal2" {
		t.Fatalf("after recovery: acr %q, want aal2", tok.ACR)
	}
	a.verify(t, mt, code).wantProblem(t, http.StatusUnauthorized, "invalid_token")
	a.verify(t, a.mfaToken(t, u.Username, u.Password), code).wantProblem(t, http.StatusUnauthorized, "mfa_failed")
}
