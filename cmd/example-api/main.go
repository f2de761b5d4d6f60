// Command example-api is a small resource server protected by package
// guard, to show a service demanding assurance levels from stepup tokens:
//
//	GET  /public    no token
//	GET  /profile   aal1 or higher
//	POST /transfer  aal2 or higher, authenticated within 5 minutes
//	GET  /admin     aal3
//
// Each answers JSON with the claims it saw; a token that falls short gets
// the RFC 9470 challenge telling the client what to step up to. Both Bearer
// tokens and DPoP-bound tokens (RFC 9449: "Authorization: DPoP <token>"
// with a DPoP proof whose htu is EXAMPLE_URL and the path) are accepted; a
// DPoP-bound token sent as a Bearer token is refused.
//
// Environment: EXAMPLE_STEPUP, the stepup issuer whose metadata and keys it
// uses (default http://localhost:8080); EXAMPLE_ADDR, the listen address
// (default :8090); EXAMPLE_AUDIENCE, this server's audience (default
// "stepup", one of stepup's STEPUP_AUDIENCES); EXAMPLE_URL, the public base
// URL clients use, which DPoP proofs name (default http://localhost:8090).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/stepup-auth/stepup/tokens"
	"github.com/stepup-auth/stepup/tokens/guard"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, nil); err != nil {
		fmt.Fprintln(os.Stderr, "example-api:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done. ready, if set, gets the listening address.
func run(ctx context.Context, getenv func(string) string, ready func(addr string)) error {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	issuer := strings.TrimSuffix(env("EXAMPLE_STEPUP", "http://localhost:8080"), "/")
	addr := env("EXAMPLE_ADDR", ":8090")
	audience := env("EXAMPLE_AUDIENCE", "stepup")
	public := env("EXAMPLE_URL", "http://localhost:8090")
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	keys, err := guard.NewJWKS(ctx, guard.JWKSConfig{
		Issuer:  issuer,
		OnError: func(err error) { log.Warn("key refresh failed; keeping the cached keys", "err", err) },
	})
	if err != nil {
		return fmt.Errorf("EXAMPLE_STEPUP=%s: cannot load the keys (is stepup running there?): %w", issuer, err)
	}
	defer keys.Close()
	g, err := guard.New(keys, guard.Config{
		Issuer: issuer, Audience: audience, URL: public,
		OnChallenge: func(r *http.Request, c *guard.Challenge) {
			log.Info("refused", "method", r.Method, "path", r.URL.Path, "code", c.Code, "why", c.Err)
		},
	})
	if err != nil {
		return fmt.Errorf("EXAMPLE_AUDIENCE=%s, EXAMPLE_URL=%s: %w", audience, public, err)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("EXAMPLE_ADDR=%s: %w", addr, err)
	}
	srv := &http.Server{Handler: newHandler(g), ReadHeaderTimeout: 5 * time.Second}
	log.Info("example-api listening", "addr", ln.Addr().String(), "issuer", issuer, "audience", audience)
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newHandler mounts the routes behind g.
func newHandler(g *guard.Guard) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /public", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]string{"message": "public: no token needed"})
	})
	mux.Handle("GET /profile", g.Require("aal1", 0)(showClaims("profile")))
	mux.Handle("POST /transfer", g.Require("aal2", 5*time.Minute)(showClaims("transfer accepted")))
	mux.Handle("GET /admin", g.Require("aal3", 0)(showClaims("admin")))
	return mux
}

// seen is the JSON form of the claims a route saw.
type seen struct {
	Message  string    `json:"message"`
	Subject  string    `json:"sub"`
	Session  string    `json:"sid"`
	ClientID string    `json:"client_id,omitempty"`
	ACR      string    `json:"acr"`
	AMR      []string  `json:"amr"`
	AuthTime time.Time `json:"auth_time"`
	Expiry   time.Time `json:"exp"`
}

func showClaims(message string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := guard.FromContext(r.Context()) // always there behind a guard
		writeJSON(w, toSeen(message, c))
	})
}

func toSeen(message string, c tokens.AccessClaims) seen {
	return seen{Message: message, Subject: c.Subject, Session: c.Session, ClientID: c.ClientID,
		ACR: c.ACR, AMR: c.AMR, AuthTime: c.AuthTime, Expiry: c.Expiry}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
