package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/stepup-auth/stepup/store"
)

// devstore runs the embedded MongoDB-compatible server alone, so several
// stepup instances on this machine can share it:
//
//	stepup devstore --data ./devstore
//
// It has no authentication, so it listens on a Unix socket inside its data
// folder (folder 0700, socket 0600): only this user's processes reach it.
// --tcp adds a loopback TCP listener, which every local process can reach.
func devstore(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("stepup devstore", flag.ContinueOnError)
	dir := fs.String("data", "./devstore", "data folder; the socket is <data>/"+store.SocketName)
	tcp := fs.String("tcp", "", "also listen on this loopback TCP address, WITHOUT authentication: any local process can then read and write every account")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tcp != "" {
		host, _, err := net.SplitHostPort(*tcp)
		if err != nil {
			return fmt.Errorf("--tcp: must be host:port, got %q", *tcp)
		}
		if !isLoopback(host) {
			return fmt.Errorf("--tcp: the dev store has no authentication; use a loopback address such as 127.0.0.1:27017")
		}
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	e, err := store.StartEmbedded(*dir, *tcp, logger)
	if err != nil {
		return err
	}
	defer e.Close()
	fmt.Fprintf(os.Stderr, "stepup devstore: embedded MongoDB-compatible store (FerretDB, SQLite) in %s\n", *dir)
	if *tcp != "" {
		fmt.Fprintf(os.Stderr, "  WARNING: also listening on %s without authentication: every local process can read and change all accounts\n", *tcp)
	}
	sock, _ := store.LiveSocket(*dir)
	fmt.Fprintf(os.Stderr, "  for development on one machine; share it with: STEPUP_MONGODB_URI=%s STEPUP_MASTER_KEY=<one key for all instances>\n", sock)
	<-ctx.Done()
	return nil
}
