//go:build !noembed

package store

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// EmbeddedAvailable is false in builds with the noembed tag (production
// images), which need a MongoDB URI.
const EmbeddedAvailable = true

// SocketName is the embedded server's Unix socket inside the data folder.
const SocketName = "store.sock"

// Embedded is the in-process MongoDB-compatible server: FerretDB v1 with its
// SQLite handler (our patched copy, third_party/ferretdb), keeping its data in
// a folder. It has no authentication, so it listens only on a Unix socket in
// that folder: the folder is mode 0700 and the socket and database files
// 0600, so only this user's processes can reach it. It is for development
// and single-node use.
type Embedded struct {
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
}

// StartEmbedded starts the embedded server with its data in dir (created,
// or narrowed, to mode 0700), listening on dir/store.sock and, only if tcp
// is not empty, also on that TCP address — which any local process can
// reach without a password. The logger should be at error level: FerretDB
// logs every error reply it sends.
func StartEmbedded(dir, tcp string, logger *slog.Logger) (*Embedded, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store: data dir: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("store: data dir: %w", err)
	}
	if err := os.Chmod(abs, 0o700); err != nil {
		return nil, fmt.Errorf("store: data dir: %w", err)
	}
	sock := filepath.Join(abs, SocketName)
	if len(sock) > 100 { // sun_path is 104–108 bytes
		return nil, fmt.Errorf("store: data dir: the socket path %s is too long for a Unix socket; use a shorter folder", sock)
	}
	if uri, ok := LiveSocket(abs); ok {
		return nil, fmt.Errorf("store: another process serves %s; share it with STEPUP_MONGODB_URI=%s", abs, uri)
	}
	// A socket left by a process that died is in the way of listening.
	if fi, err := os.Lstat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(sock)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{Unix: sock, TCP: tcp},
		Handler:  "sqlite",
		// WAL with synchronous=NORMAL: a commit is durable against a crash
		// of the process, and fsyncs at checkpoints rather than at every
		// commit — like MongoDB's default write concern, which does not
		// wait for the journal (a power cut may lose the last ~100 ms).
		SQLiteURL: "file:" + abs + "/?_pragma=synchronous(NORMAL)",
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
	uri := f.MongoDBURI() // waits until the listeners are up; TCP's when both
	if err := os.Chmod(sock, 0o600); err != nil {
		e.Close()
		return nil, fmt.Errorf("store: socket: %w", err)
	}
	e.uri = uri
	if tcp == "" {
		e.uri = SocketURI(sock)
	}
	return e, nil
}

// LiveSocket returns the URI of the embedded server serving dir, if one
// is running (a stepup or devstore process on this machine).
func LiveSocket(dir string) (string, bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	sock := filepath.Join(abs, SocketName)
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return "", false
	}
	_ = c.Close()
	return SocketURI(sock), true
}

// SocketURI is the connection string of a Unix socket: its path
// percent-encoded as the host.
func SocketURI(path string) string {
	return "mongodb://" + url.PathEscape(path) + "/"
}

// URI is the connection string of the embedded server.
func (e *Embedded) URI() string { return e.uri }

// Close stops the server. Disconnect clients first.
func (e *Embedded) Close() {
	e.cancel()
	<-e.done
}
