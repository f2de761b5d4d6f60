package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stepup-auth/stepup/api"
	"github.com/stepup-auth/stepup/api/flows"
	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/store"
	"github.com/stepup-auth/stepup/tokens"
)

var randRead = rand.Read

// App is the running service: store, keys and HTTP servers wired together:
// the public API on Config.Addr and operations (/metrics) on
// Config.AdminAddr.
type App struct {
	Config Config
	Logger *slog.Logger
	// Now overrides the clock (tests).
	Now func() time.Time

	embedded *store.Embedded
	db       *store.DB
	keys     *tokens.KeySet
	flows    *flows.App
	server   *api.Server
	http     *http.Server
	ln       net.Listener
	admin    *http.Server // nil without an AdminAddr
	adminAPI *api.Server  // its handler: /metrics and the admin API
	adminLn  net.Listener
	cancel   context.CancelFunc
	served   chan error
}

// Open starts everything and begins serving; it returns once the listener
// is bound.
func (a *App) Open(ctx context.Context) error {
	if a.Logger == nil {
		a.Logger = slog.Default()
	}
	if a.Now == nil {
		a.Now = time.Now
	}
	c := a.Config
	log := a.Logger
	aal3, trust, conveyance, err := authenticatorPolicy(c, a.Now(), log)
	if err != nil {
		return err
	}
	policy := mfa.DefaultPolicy
	policy.AAL3 = aal3
	uri := c.MongoURI
	if uri == "" {
		if !store.EmbeddedAvailable {
			return errors.New("STEPUP_MONGODB_URI: required, this binary was built without the embedded store")
		}
		if c.MasterKey == nil {
			key, created, err := masterKeyFile(c.DataDir)
			if err != nil {
				return fmt.Errorf("STEPUP_DATA_DIR: master key: %w", err)
			}
			if created {
				log.Info("generated a master key", "file", c.DataDir+"/master.key",
					"note", "keep it: it decrypts the TOTP seeds and signing keys; set STEPUP_MASTER_KEY to supply your own")
			}
			a.Config.MasterKey, c.MasterKey = key, key
		}
		quiet := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
		e, err := store.StartEmbedded(c.DataDir, "", quiet)
		if err != nil {
			return fmt.Errorf("STEPUP_DATA_DIR: %w", err)
		}
		a.embedded, uri = e, e.URI()
		log.Info("started the embedded MongoDB-compatible store (FerretDB, SQLite) for development and single-node use",
			"data_dir", c.DataDir, "uri", uri,
			"production", "set STEPUP_MONGODB_URI to a MongoDB replica set and STEPUP_MASTER_KEY to share state across instances")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	db, err := store.Open(ctx, store.Config{URI: uri, Database: c.Database, MasterKey: c.MasterKey, Logger: log, Now: a.Now,
		Monitor: storeMonitor(reg), EventRetention: c.EventRetention})
	if err != nil {
		a.closeStore()
		return fmt.Errorf("STEPUP_MONGODB_URI: %w", err)
	}
	a.db = db
	if !db.TTL() {
		db.StartSweeper(time.Minute)
	}

	a.keys = tokens.NewKeySet(db.Keys(), tokens.KeySetOptions{Alg: c.SigningAlg, Now: a.Now, Retain: c.AccessTTL + 10*time.Minute,
		OnError: func(err error) { log.Warn("signing key refresh failed", "err", err) }})
	if err := a.keys.Refresh(ctx); err != nil {
		a.closeStore()
		return fmt.Errorf("signing keys: %w", err)
	}
	signing, _ := a.keys.Signing()
	log.Info("signing key ready", "kid", signing.ID, "alg", signing.Alg)

	mfaAud := c.Issuer + "/v1/mfa"
	issuer := tokens.NewIssuer(a.keys, tokens.IssuerConfig{Issuer: c.Issuer, Audiences: c.Audiences, ClientID: "stepup",
		AccessTTL: c.AccessTTL, MFAAudience: mfaAud, Now: a.Now})
	verifier := tokens.NewVerifier(a.keys, tokens.VerifierConfig{Issuer: c.Issuer, Audiences: c.Audiences, Now: a.Now})
	sessions := tokens.NewSessions(db.Sessions())
	sessions.Now = a.Now
	// Two tabs refreshing at once get one successor (tokens.DefaultGrace).
	sessions.GraceKey = deriveKey(c.MasterKey, "stepup refresh-token grace seal v1")
	if c.SessionMax > 0 {
		sessions.MaxAge = c.SessionMax
	}
	if c.SessionIdle > 0 {
		sessions.RefreshTTL = c.SessionIdle
	}
	recovery := mfa.NewRecovery(db.UsedRecoveryCodes())
	recovery.Key = deriveKey(c.MasterKey, "stepup recovery-code hashes v2")
	budgets := db.Budgets()
	budget := func(free, limit int) *mfa.Budget {
		return &mfa.Budget{Store: budgets, Free: free, Limit: limit, Base: time.Second, Max: 15 * time.Minute,
			Keep: 30 * 24 * time.Hour, Now: a.Now}
	}
	totp := mfa.NewTOTP(issuerName(c.Issuer))
	totp.Now = a.Now
	rp, err := webauthn.New(&webauthn.Config{RPID: c.RPID, RPDisplayName: "stepup", RPOrigins: c.RPOrigins,
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: 5 * time.Minute, TimeoutUVD: 5 * time.Minute},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: 5 * time.Minute, TimeoutUVD: 5 * time.Minute},
		}})
	if err != nil {
		a.closeStore()
		return fmt.Errorf("STEPUP_RP_ID/STEPUP_RP_ORIGINS: %w", err)
	}
	wa := &mfa.WebAuthn{RP: rp, Ceremonies: db.Ceremonies(), Users: db,
		PasskeyKey: deriveKey(c.MasterKey, "stepup passkey ceremonies v1"), PasskeyDone: db.FinishedPasskeys(),
		UserVerification: protocol.UserVerificationRequirement(c.WebAuthnUV),
		Attestation:      protocol.ConveyancePreference(conveyance), Trust: trust, TTL: 5 * time.Minute, Now: a.Now}
	if wa.UserVerification == "" {
		wa.UserVerification = protocol.VerificationPreferred
	}

	// Password failures back off per (name, client address); they never
	// lock there (the account's NIST cap is counted on the user document),
	// and a pair's record is dropped a day after its last attempt.
	loginBudget := budget(10, 1<<30)
	loginBudget.Keep = 24 * time.Hour
	pending := db.PendingTokens()
	tokenBudget := budget(5, 5)
	tokenBudget.Store, tokenBudget.Keep = pending, 10*time.Minute
	// Admin API authentication fails back off per client address, like
	// passwords: never a lock an attacker could set on the real admins.
	adminBudget := budget(10, 1<<30)
	adminBudget.Keep = 24 * time.Hour
	dpop := flows.DPoP{Seen: db.DPoPProofs(), Required: c.DPoPRequired,
		Verifier: tokens.NewDPoPVerifier(tokens.DPoPConfig{Now: a.Now})}
	if c.DPoPNonce {
		// Every instance derives the same key: each accepts every
		// instance's nonces.
		dpop.Nonces = tokens.NewDPoPNonces(deriveKey(c.MasterKey, "stepup dpop nonces v1"), 0, a.Now)
	}
	a.flows = flows.New(flows.Deps{
		Users:    db,
		Password: mfa.NewPassword(mfa.DefaultArgon2, 0, 0),
		TOTP:     totp,
		WebAuthn: wa,
		Recovery: recovery,
		Events:   db.Events(),
		Pending:  pending,
		Budgets: flows.Budgets{
			Token:   tokenBudget,
			Account: budget(5, mfa.NISTMaxFailures),
			Login:   loginBudget, // per (name, address): backoff only; the account's cap is on the user
			Enroll:  budget(5, 10),
			Admin:   adminBudget,
		},
		AdminClients: c.AdminClients,
		Policy:       policy,
		Sessions:     sessions,
		Issuer:       issuer,
		Verifier:     verifier,
		DPoP:         dpop,
		Devices:      db.Devices(),
		RememberFor:  c.RememberDevice,
		MFAAudience:  mfaAud,
		SignupOpen:   c.SignupOpen,
		AnonRate:     c.AnonRate,
		AddrFailures: c.AddrFailures,
		Logger:       log,
		Registry:     reg,
		Now:          a.Now,
	})
	a.server = api.NewServer(api.Config{
		Issuer: c.Issuer, MFAAudience: mfaAud, Audiences: c.Audiences, SignupOpen: c.SignupOpen,
		CORSOrigins: c.CORSOrigins, IntrospectionClients: c.Introspectors,
		TrustedProxies: c.TrustedProxies,
	}, api.Deps{
		App:      a.flows,
		Keys:     a.keys,
		Policy:   policy,
		Ready:    db.Ping,
		Logger:   log,
		Registry: reg,
		Now:      a.Now,
	})

	bg, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go a.keys.Run(bg, time.Minute)

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		a.Close(context.Background())
		return fmt.Errorf("STEPUP_ADDR: %w", err)
	}
	a.ln = ln
	a.http = &http.Server{
		Handler:           a.server,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    4 * api.MaxHeaderBytes, // the API answers past api.MaxHeaderBytes with problem+json
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if c.AdminAddr != "" {
		if a.adminLn, err = net.Listen("tcp", c.AdminAddr); err != nil {
			a.adminLn = nil
			ln.Close() // not yet served: Shutdown would not close it
			a.Close(context.Background())
			return fmt.Errorf("STEPUP_ADMIN_ADDR: %w", err)
		}
		a.adminAPI = a.server.NewAdmin(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		a.admin = &http.Server{
			Handler:           a.adminAPI,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       90 * time.Second,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
	}
	a.served = make(chan error, 2)
	go func() { a.served <- a.http.Serve(ln) }()
	adminAddr := "off"
	if a.admin != nil {
		go func() { a.served <- a.admin.Serve(a.adminLn) }()
		adminAddr = a.adminLn.Addr().String()
	}
	log.Info("stepup is listening", "addr", ln.Addr().String(), "admin_addr", adminAddr, "admin_clients", len(c.AdminClients), "issuer", c.Issuer,
		"signup", map[bool]string{true: "open", false: "closed"}[c.SignupOpen])
	return nil
}

// Addr is the bound listen address.
func (a *App) Addr() string { return a.ln.Addr().String() }

// AdminAddr is the bound operations listen address, or "" when there is none.
func (a *App) AdminAddr() string {
	if a.adminLn == nil {
		return ""
	}
	return a.adminLn.Addr().String()
}

// Server is the HTTP handler (tests list its routes).
func (a *App) Server() *api.Server { return a.server }

// AdminServer is the admin listener's handler (tests list its routes);
// nil without an AdminAddr.
func (a *App) AdminServer() *api.Server { return a.adminAPI }

// Flows is the application behind the handlers.
func (a *App) Flows() *flows.App { return a.flows }

// DB is the open store (tests use it to inspect state).
func (a *App) DB() *store.DB { return a.db }

// Close drains in-flight requests, then stops the store: clients are
// disconnected before the embedded server stops.
func (a *App) Close(ctx context.Context) error {
	var err error
	if a.http != nil {
		err = a.http.Shutdown(ctx)
	}
	if a.admin != nil {
		err = errors.Join(err, a.admin.Shutdown(ctx))
	}
	if a.cancel != nil {
		a.cancel()
	}
	if a.flows != nil {
		a.flows.Close() // writes queued security events while the store is still open
	}
	a.closeStore()
	return err
}

func (a *App) closeStore() {
	if a.db != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = a.db.Close(ctx)
		cancel()
		a.db = nil
	}
	if a.embedded != nil {
		a.embedded.Close()
		a.embedded = nil
	}
}

// deriveKey derives a purpose-bound key from the master key (HMAC-SHA-256
// as a PRF), so no two uses share one key.
func deriveKey(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
