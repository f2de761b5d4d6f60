// Package guardtest runs a stand-in stepup authorization server for tests
// of resource servers that use package guard: an httptest server that
// publishes RFC 8414 metadata and a JWKS from a real tokens.KeySet, and a
// real tokens.Issuer that signs access tokens (Bearer or DPoP-bound), all
// on a settable clock. DPoPKey mints a client's DPoP proofs.
//
// Only the key storage is in memory; keys, signatures and the JWKS are the
// tokens package's own. Like guard, it depends on the standard library and
// package tokens and golang-jwt (which signs the DPoP proofs) only.
package guardtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/tokens"
)

// Subject and Session are the sub and sid of every token the Server issues.
const (
	Subject = "user-1"
	Session = "sess-1"
)

// Key lifecycle of the Server: Rotate advances the clock by Rotation.
const (
	rotation = time.Hour
	publish  = time.Minute
	retain   = 30 * time.Minute
)

// Options configures a Server.
type Options struct {
	// Audience is the aud of access tokens (default "stepup").
	Audience string
	// Alg is the signing algorithm: tokens.ES256 (default) or tokens.EdDSA.
	Alg string
}

// Server is a running stand-in authorization server. URL is its issuer
// identifier: a loopback http URL, which guard accepts.
type Server struct {
	URL      string
	Audience string

	srv     *httptest.Server
	clock   clock
	keys    *tokens.KeySet
	issuer  *tokens.Issuer
	jwksHit atomic.Int64
	metaHit atomic.Int64
}

// NewServer starts a Server with one signing key; tb's cleanup closes it.
// Its clock starts at the current time, truncated to the second.
func NewServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := Start(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Start is NewServer outside a test (in an example, say): the caller must
// Close the Server. It returns an error if opts.Alg is not supported.
func Start(opts Options) (*Server, error) {
	if opts.Audience == "" {
		opts.Audience = "stepup"
	}
	s := &Server{Audience: opts.Audience}
	s.clock.t = time.Now().Truncate(time.Second)
	ksOpts := tokens.KeySetOptions{Alg: opts.Alg, Rotation: rotation, Publish: publish, Retain: retain, Now: s.Now}
	if err := ksOpts.Validate(); err != nil {
		return nil, fmt.Errorf("guardtest: %w", err)
	}
	s.keys = tokens.NewKeySet(&memKeys{keys: map[string]tokens.Key{}}, ksOpts)
	if err := s.keys.Refresh(context.Background()); err != nil {
		return nil, fmt.Errorf("guardtest: key refresh: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, _ *http.Request) {
		s.metaHit.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                            s.URL,
			"jwks_uri":                          s.URL + "/.well-known/jwks.json",
			"acr_values_supported":              []string{"aal1", "aal2", "aal3"},
			"dpop_signing_alg_values_supported": tokens.DPoPAlgs,
		})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		s.jwksHit.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(s.keys.JWKS())
	})
	// Everything the handlers read is set before the server starts.
	s.srv = httptest.NewUnstartedServer(mux)
	s.URL = "http://" + s.srv.Listener.Addr().String()
	s.issuer = tokens.NewIssuer(s.keys, tokens.IssuerConfig{
		Issuer: s.URL, Audiences: []string{s.Audience}, ClientID: "guardtest", Now: s.Now,
	})
	s.srv.Start()
	return s, nil
}

// MetadataURL is where the RFC 8414 metadata document is.
func (s *Server) MetadataURL() string { return s.URL + "/.well-known/oauth-authorization-server" }

// Now is the Server's clock; give it to guard.Config.Now too.
func (s *Server) Now() time.Time { return s.clock.now() }

// Advance moves the clock forward by d.
func (s *Server) Advance(d time.Duration) { s.clock.advance(d) }

// Issue returns an access token for Subject in Session with level acr,
// methods amr and authentication time authTime. It fails only if acr is
// empty or authTime is zero.
func (s *Server) Issue(acr string, amr []string, authTime time.Time) (string, error) {
	tok, _, err := s.issuer.Access(Subject, Session, authTime, acr, amr)
	return tok, err
}

// Token is Issue for tests: a failure is fatal to tb.
func (s *Server) Token(tb testing.TB, acr string, amr []string, authTime time.Time) string {
	tb.Helper()
	tok, err := s.Issue(acr, amr, authTime)
	if err != nil {
		tb.Fatalf("guardtest: issue token: %v", err)
	}
	return tok
}

// Rotate replaces the signing key the way the service does: it advances the
// clock until rotation is due, publishes the next key, advances the clock by
// the publication lead time (one minute), and makes that key the signing key.
// Tokens issued before are expired afterwards (the clock moved an hour).
// It returns the new key's kid.
func (s *Server) Rotate(tb testing.TB) string {
	tb.Helper()
	for _, d := range []time.Duration{rotation - publish, publish} {
		s.Advance(d)
		if err := s.keys.Refresh(context.Background()); err != nil {
			tb.Fatalf("guardtest: rotate: %v", err)
		}
	}
	k, err := s.keys.Signing()
	if err != nil {
		tb.Fatalf("guardtest: rotate: %v", err)
	}
	return k.ID
}

// JWKSFetches is how many times the JWKS has been served.
func (s *Server) JWKSFetches() int64 { return s.jwksHit.Load() }

// MetadataFetches is how many times the metadata document has been served.
func (s *Server) MetadataFetches() int64 { return s.metaHit.Load() }

// Close shuts the server down; NewServer's cleanup does it too. It is
// idempotent.
func (s *Server) Close() { s.srv.Close() }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// memKeys is a tokens.KeyStore in memory: the stand-in for the service's
// MongoDB key storage, the only part of the server not real here.
type memKeys struct {
	mu   sync.Mutex
	keys map[string]tokens.Key
}

func (m *memKeys) Keys(context.Context) ([]tokens.Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]tokens.Key, 0, len(m.keys))
	for _, k := range m.keys {
		out = append(out, k)
	}
	return out, nil
}

func (m *memKeys) AddKey(_ context.Context, k tokens.Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.keys[k.ID]; dup {
		return errors.New("guardtest: duplicate key id")
	}
	m.keys[k.ID] = k
	return nil
}

func (m *memKeys) SetRetire(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.keys[id]; ok {
		k.RetireAt = at
		m.keys[id] = k
	}
	return nil
}

func (m *memKeys) DeleteKey(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.keys, id)
	return nil
}
