//go:build !noembed

package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// EmbeddedAvailable is false in builds with the noembed tag (production
// images), which need a MongoDB URI.
const EmbeddedAvailable = true

// Embedded is the in-process MongoDB-compatible server: FerretDB v1 with its
// SQLite handler, on a loopback port, keeping its data in a folder. It is for
// development and single-node use.
type Embedded struct {
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
}

// StartEmbedded starts the embedded server with its data in dir (created
// with mode 0700) listening on addr ("127.0.0.1:0" picks a free port). The
// logger should be at error level: FerretDB logs every error reply it sends.
func StartEmbedded(dir, addr string, logger *slog.Logger) (*Embedded, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store: data dir: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("store: data dir: %w", err)
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("store: start embedded server: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Embedded{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		_ = f.Run(ctx)
	}()
	e.uri = f.MongoDBURI() // waits until the listener is up
	return e, nil
}

// URI is the connection string of the embedded server.
func (e *Embedded) URI() string { return e.uri }

// Close stops the server. Disconnect clients first.
func (e *Embedded) Close() {
	e.cancel()
	<-e.done
}
