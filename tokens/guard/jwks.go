package guard

import (
	"context"
	"crypto"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// JWKSConfig configures a JWKS. Zero values take the defaults named on each
// field.
type JWKSConfig struct {
	// Issuer is the authorization server's issuer identifier, e.g.
	// "https://auth.example.com" (required). The metadata document must name
	// exactly this issuer.
	Issuer string
	// MetadataURL is where the RFC 8414 metadata document is (default:
	// derived from Issuer as RFC 8414 §3.1 says, e.g.
	// "https://auth.example.com/.well-known/oauth-authorization-server").
	MetadataURL string
	// RefreshInterval is how often the key set is fetched in the background
	// (default 5 minutes). It must not be less than MinRefreshInterval.
	RefreshInterval time.Duration
	// MinRefreshInterval is the least time between two fetches of the key
	// set, whatever causes them (default 30 seconds). A token naming an
	// unknown kid causes a fetch only when the last one started at least this
	// long ago.
	MinRefreshInterval time.Duration
	// Timeout bounds each fetch, connection to body (default 10 seconds). It
	// is also the Client's Timeout when that is zero.
	Timeout time.Duration
	// Client makes the requests (default: a client with Timeout). It is
	// copied; the copy refuses redirects to URLs that are neither https nor
	// loopback http, and more than three redirects.
	Client *http.Client
	// Now is the clock that spaces fetches (default time.Now).
	Now func() time.Time
	// OnError, if set, receives the error of each failed fetch after the
	// first, so the caller can log it; the keys held are kept. The JWKS
	// itself logs nothing.
	OnError func(error)
}

func (c JWKSConfig) withDefaults() JWKSConfig {
	if c.RefreshInterval == 0 {
		c.RefreshInterval = 5 * time.Minute
	}
	if c.MinRefreshInterval == 0 {
		c.MinRefreshInterval = 30 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports whether c (after defaults) is usable: an issuer that is
// an https (or loopback http) URL, a metadata URL of the same kind, and
// positive intervals with RefreshInterval ≥ MinRefreshInterval.
func (c JWKSConfig) Validate() error {
	c = c.withDefaults()
	if c.Issuer == "" {
		return errors.New("guard: JWKS needs the issuer")
	}
	if _, err := metadataURL(c.Issuer); err != nil {
		return err
	}
	if c.MetadataURL != "" {
		if _, err := checkURL(c.MetadataURL); err != nil {
			return err
		}
	}
	switch {
	case c.RefreshInterval < 0 || c.MinRefreshInterval < 0 || c.Timeout < 0:
		return errors.New("guard: JWKS intervals and timeout must be positive")
	case c.RefreshInterval < c.MinRefreshInterval:
		return errors.New("guard: JWKS RefreshInterval must not be less than MinRefreshInterval")
	}
	return nil
}

// JWKS is a key source for a tokens.Verifier: the authorization server's
// published signing keys, found through its RFC 8414 metadata, fetched as
// an RFC 7517 JWK Set and cached. It implements tokens.KeyResolver.
//
// The keys are refreshed every RefreshInterval in the background, and when
// a token names a kid not in the cache, but never more than once per
// MinRefreshInterval: concurrent misses share one fetch, and a burst of
// tokens with made-up kids costs the server at most one request per
// interval. The only URLs fetched are the configured metadata URL and the
// jwks_uri it names; nothing named in a token is ever fetched.
//
// The metadata document is read once, by NewJWKS: a jwks_uri that changes
// takes a restart. A JWKS is safe for concurrent use. Close stops its
// background refresh. The zero JWKS holds no key and never fetches.
type JWKS struct {
	client  *http.Client
	uri     string // jwks_uri
	every   time.Duration
	spacing time.Duration
	timeout time.Duration
	now     func() time.Time
	onError func(error)

	keys atomic.Pointer[map[string]pinnedKey]

	mu       sync.Mutex    // guards inflight and last
	inflight chan struct{} // closed when the running fetch ends; nil if none
	last     time.Time     // start of the latest fetch

	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	done      chan struct{} // closed when the background loop has returned
	closeOnce sync.Once
}

// NewJWKS discovers the jwks_uri from the metadata document, fetches the
// key set once, and starts refreshing it in the background. ctx bounds only
// this first discovery and fetch; the JWKS lives until Close.
//
// It returns an error if cfg is invalid (see JWKSConfig.Validate), if the
// metadata cannot be fetched, names another issuer, or has no acceptable
// jwks_uri (https, or http to a loopback host), or if the key set cannot be
// fetched or holds no usable key (EC P-256 for ES256 or OKP Ed25519 for
// EdDSA, meant for signatures, with a kid).
func NewJWKS(ctx context.Context, cfg JWKSConfig) (*JWKS, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	metaURL := cfg.MetadataURL
	if metaURL == "" {
		metaURL, _ = metadataURL(cfg.Issuer) // checked by Validate
	}
	client := newClient(cfg.Client, cfg.Timeout)

	first, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	uri, err := discover(first, client, metaURL, cfg.Issuer)
	if err != nil {
		return nil, err
	}
	j := &JWKS{
		client:  client,
		uri:     uri,
		every:   cfg.RefreshInterval,
		spacing: cfg.MinRefreshInterval,
		timeout: cfg.Timeout,
		now:     cfg.Now,
		onError: cfg.OnError,
		done:    make(chan struct{}),
	}
	j.last = j.now()
	if err := j.fetch(first); err != nil {
		return nil, err
	}
	j.ctx, j.cancel = context.WithCancel(context.Background())
	go j.run()
	return j, nil
}

// Public returns the key published under kid and the one algorithm it is
// bound to. If kid is not cached it refreshes the set first, unless a fetch
// started less than MinRefreshInterval ago; if a fetch is running it waits
// for that one. ok is false if kid is still unknown. It implements
// tokens.KeyResolver.
func (j *JWKS) Public(kid string) (key crypto.PublicKey, alg string, ok bool) {
	k, ok := j.lookup(kid)
	if !ok {
		j.refresh()
		k, ok = j.lookup(kid)
	}
	return k.key, k.alg, ok
}

func (j *JWKS) lookup(kid string) (pinnedKey, bool) {
	m := j.keys.Load()
	if m == nil {
		return pinnedKey{}, false
	}
	k, ok := (*m)[kid]
	return k, ok
}

// Close stops the background refresh and waits for it to end. Public keeps
// answering from the cached keys but fetches no more. Close is idempotent.
func (j *JWKS) Close() error {
	j.closeOnce.Do(func() {
		if j.cancel != nil {
			j.cancel()
			<-j.done
		}
	})
	return nil
}

// run refreshes every interval until Close.
func (j *JWKS) run() {
	defer close(j.done)
	t := time.NewTicker(j.every)
	defer t.Stop()
	for {
		select {
		case <-j.ctx.Done():
			return
		case <-t.C:
			j.refresh()
		}
	}
}

// refresh fetches the key set, unless a fetch is running (it then waits
// for that one to end) or the last one started less than MinRefreshInterval
// ago (it then returns at once). This is the single place that fetches
// after NewJWKS, so the spacing holds for background and on-demand fetches
// alike. The failure of a fetch is reported to OnError; the cached keys stay.
func (j *JWKS) refresh() {
	j.mu.Lock()
	if wait := j.inflight; wait != nil {
		j.mu.Unlock()
		<-wait
		return
	}
	if j.ctx == nil || j.ctx.Err() != nil { // zero or closed
		j.mu.Unlock()
		return
	}
	now := j.now()
	if now.Sub(j.last) < j.spacing {
		j.mu.Unlock()
		return
	}
	j.last = now
	done := make(chan struct{})
	j.inflight = done
	j.mu.Unlock()

	ctx, cancel := context.WithTimeout(j.ctx, j.timeout)
	err := j.fetch(ctx)
	cancel()

	j.mu.Lock()
	j.inflight = nil
	j.mu.Unlock()
	close(done)

	if err != nil && j.onError != nil && j.ctx.Err() == nil {
		j.onError(err)
	}
}

// fetch gets and parses the key set and, if it holds a usable key, replaces
// the cache with it.
func (j *JWKS) fetch(ctx context.Context) error {
	body, err := get(ctx, j.client, j.uri)
	if err != nil {
		return err
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return err
	}
	j.keys.Store(&keys)
	return nil
}
