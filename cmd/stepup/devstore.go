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
//	stepup devstore --addr 127.0.0.1:27017 --data ./devstore
//
// It has no authentication, so it listens on loopback addresses only.
func devstore(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("stepup devstore", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:27017", "loopback address to listen on")
	dir := fs.String("data", "./devstore", "data folder")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("--addr: must be host:port, got %q", *addr)
	}
	if !isLoopback(host) {
		return fmt.Errorf("--addr: the dev store has no authentication; use a loopback address such as 127.0.0.1:27017")
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	e, err := store.StartEmbedded(*dir, *addr, logger)
	if err != nil {
		return err
	}
	defer e.Close()
	fmt.Fprintf(os.Stderr, "stepup devstore: embedded MongoDB-compatible store (FerretDB, SQLite) in %s\n", *dir)
	fmt.Fprintf(os.Stderr, "  for development on one machine; share it with: STEPUP_MONGODB_URI=%s STEPUP_MASTER_KEY=<one key for all instances>\n", e.URI())
	<-ctx.Done()
	return nil
}
