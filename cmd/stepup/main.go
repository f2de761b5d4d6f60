// Command stepup runs the stepup MFA service.
//
//	stepup [serve] [flags]   run the service (the default)
//	stepup devstore [flags]  run the embedded store alone, for several local instances
//	stepup healthcheck       probe the local service (container health checks)
//	stepup admin reset|unlock USERNAME   account recovery by an operator
//
// Configuration comes from STEPUP_* environment variables, mirrored by
// flags except for secrets (environment or file only); see README.md.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "stepup:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "devstore" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return devstore(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "admin" {
		return admin(context.Background(), args[1:])
	}
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck(context.Background(), args[1:])
	}
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	}
	cfg, err := LoadConfig(args, os.Getenv)
	if err != nil {
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	app := &App{Config: cfg, Logger: slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Open(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-app.served:
		app.Logger.Error("server stopped", "err", err)
	}
	app.Logger.Info("shutting down: draining requests")
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return app.Close(shutdown)
}

// issuerName is the label authenticator apps show: the issuer's host name
// (no port: a colon would split the otpauth label).
func issuerName(iss string) string {
	u, err := url.Parse(iss)
	if err != nil || u.Hostname() == "" {
		return "stepup"
	}
	return u.Hostname()
}
