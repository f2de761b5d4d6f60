// Package storetest gives tests a real MongoDB-compatible database: the
// embedded FerretDB server, started once per test binary in a temporary
// folder, or the MongoDB named by STEPUP_TEST_MONGODB_URI. Each call to New
// gets a database of its own, dropped when the test ends. There is no fake.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/store"
)

// EnvURI names a real MongoDB to test against instead of the embedded one.
const EnvURI = "STEPUP_TEST_MONGODB_URI"

var (
	once     sync.Once
	uri      string
	startErr error
)

// URI returns the connection string of the test server, starting the
// embedded one on first use. The embedded server lives until the test
// binary exits; its folder is in the system temp dir.
func URI(tb testing.TB) string {
	tb.Helper()
	once.Do(func() {
		if u := os.Getenv(EnvURI); u != "" {
			uri = u
			return
		}
		dir, err := os.MkdirTemp("", "stepup-storetest-")
		if err != nil {
			startErr = err
			return
		}
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
		e, err := store.StartEmbedded(dir, "", logger)
		if err != nil {
			startErr = err
			return
		}
		uri = e.URI()
	})
	if startErr != nil {
		tb.Fatalf("storetest: start store: %v", startErr)
	}
	return uri
}

// MasterKey is a fixed test master key.
var MasterKey = []byte("0123456789abcdef0123456789abcdef")

// Config returns a store configuration for a fresh database of the test
// server. Several DBs opened with it share the database (several instances).
func Config(tb testing.TB) store.Config {
	tb.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return store.Config{URI: URI(tb), Database: "t_" + hex.EncodeToString(b), MasterKey: MasterKey,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}
}

// New opens a fresh database for tb and drops it when tb ends.
func New(tb testing.TB) *store.DB {
	tb.Helper()
	return Open(tb, Config(tb))
}

// Open opens cfg and closes it when tb ends; the first Open of a database
// also drops it then.
func Open(tb testing.TB, cfg store.Config) *store.DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, cfg)
	if err != nil {
		tb.Fatalf("storetest: open: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = db.Drop(ctx)
		_ = db.Close(ctx)
	})
	return db
}
