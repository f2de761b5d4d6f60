package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/store/storetest"
)

// TestInstancesStartTogether: instances that start at the same moment on an
// empty store each create a first signing key; a token signed by any of
// them verifies on every other at once, not after the next key refresh.
func TestInstancesStartTogether(t *testing.T) {
	const n = 3
	db, clk := newDatabase(), newClock()
	apps := make([]*App, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		apps[i] = &App{Config: Config{Addr: "127.0.0.1:0", Issuer: testIssuer, MongoURI: storetest.URI(t), Database: db,
			MasterKey: storetest.MasterKey, Audiences: []string{"stepup"}, RPID: "localhost", RPOrigins: []string{testIssuer},
			SignupOpen: true, SigningAlg: "ES256", AccessTTL: 15 * time.Minute, LogLevel: "error"},
			Logger: slog.New(slog.DiscardHandler), Now: clk.Now}
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errs[i] = apps[i].Open(ctx)
		})
	}
	close(start)
	wg.Wait()
	tas := make([]*testApp, n)
	for i, app := range apps {
		if errs[i] != nil {
			t.Fatalf("open instance %d: %v", i, errs[i])
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if i == 0 {
				_ = app.DB().Drop(ctx)
			}
			_ = app.Close(ctx)
		})
		tas[i] = &testApp{App: app, Clock: clk, base: "http://" + app.Addr(), client: &http.Client{Timeout: 30 * time.Second}}
	}
	tas[0].signup(t, "together", "correct horse battery")
	for i, signer := range tas {
		tok := signer.login(t, "together", "correct horse battery").AccessToken
		for j, verifier := range tas {
			if r := verifier.get(t, "/v1/me", tok); r.Status != http.StatusOK {
				t.Errorf("token signed by instance %d (kid %v), refused by instance %d: %d %s",
					i, parseJWT(t, tok).Header["kid"], j, r.Status, r.Body)
			}
		}
	}
}
