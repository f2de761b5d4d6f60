//go:build noembed

package store

import (
	"errors"
	"log/slog"
)

// EmbeddedAvailable is false in this build: it was built with the noembed tag
// and needs a MongoDB URI.
const EmbeddedAvailable = false

// Embedded is not part of this build.
type Embedded struct{}

// StartEmbedded always fails in a noembed build.
func StartEmbedded(dir, tcp string, logger *slog.Logger) (*Embedded, error) {
	return nil, errors.New("store: this binary was built without the embedded store (noembed); set STEPUP_MONGODB_URI")
}

// URI is empty.
func (e *Embedded) URI() string { return "" }

// Close does nothing.
func (e *Embedded) Close() {}

// LiveSocket finds nothing in this build.
func LiveSocket(dir string) (string, bool) { return "", false }
