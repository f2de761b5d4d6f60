// Package flows is stepup's application: sign-in, the second factors,
// step-up, enrollment and factor management, recovery codes, password
// change, sessions and the operator's unlock and reset, as plain Go methods
// that take a context and plain values and return results and errors.
//
// The HTTP handlers in package api decode a request, call one method of App
// and encode its result; `stepup admin` calls the same methods. The policy
// (what a level needs, what is offered, what a change requires) is asked of
// mfa.Policy and nowhere else. flows imports mfa and tokens, never store (it
// is handed implementations of the interfaces they declare) and never Gin.
package flows

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

// The scopes of the budgets kept in the budget store: a username's
// passwords (whether or not the user exists), an enrollment's confirmation
// codes. The account's second-factor budget is on the user; an
// mfa_token's on its own document.
func loginScope(username, client string) string { return "pwd|" + username + "|" + client }
func enrollScope(factorID string) string        { return "enroll|" + factorID }

// Budgets are the attempt budgets, each a named value.
type Budgets struct {
	Token   *mfa.Budget // per mfa_token (on Deps.Pending)
	Account *mfa.Budget // per account, second factors: gates for UserStore.SpendAttempt
	Login   *mfa.Budget // per username, passwords
	Enroll  *mfa.Budget // per TOTP enrollment being confirmed
	Admin   *mfa.Budget // per client address, admin API authentication
}

// Deps is what an App is built from.
type Deps struct {
	Users    mfa.UserStore
	Password *mfa.Password
	TOTP     *mfa.TOTP
	WebAuthn *mfa.WebAuthn
	Recovery *mfa.Recovery
	Events   mfa.EventStore
	Pending  mfa.PendingStore // per mfa_pending token: attempts and consumption
	Budgets  Budgets
	Policy   mfa.Policy
	Sessions *tokens.Sessions
	Issuer   *tokens.Issuer
	Verifier *tokens.Verifier
	DPoP     DPoP // RFC 9449 proofs (dpop.go)
	// Devices keeps remembered devices (devices.go), each for RememberFor
	// after its second factor; nil or 0 turns remembering off.
	Devices     mfa.DeviceStore
	RememberFor time.Duration

	MFAAudience string // aud of mfa_pending tokens
	SignupOpen  bool
	// PasswordLock is how long the password path of an account stays closed
	// after NIST's cap of consecutive wrong passwords (mfa.NISTMaxFailures,
	// from every address together); then one attempt per PasswordLock, until
	// a success or an operator's unlock resets the count. Default 1 hour.
	PasswordLock time.Duration
	// AnonRate is how many requests per minute one client address may make
	// to each anonymous endpoint (Anonymous); 0 is no limit. The count is a
	// budget document per (endpoint, address, minute) in the store, so all
	// instances share it.
	AnonRate int
	// AddrFailures is how many wrong passwords one client address may
	// give at sign-in in an hour, over every username together (0: no
	// limit); past it the address's password sign-ins are refused until
	// the hour ends (addrlimit.go).
	AddrFailures int
	// AdminClients may call the admin API (AdminLogin).
	AdminClients []AdminClient

	Logger   *slog.Logger
	Registry *prometheus.Registry // counters are registered here when set
	Now      func() time.Time
	Rand     func(n int) string // random base64url string of n bytes
}

// App is the application. Its methods are safe for concurrent use.
type App struct {
	Deps
	m       *metrics
	events  *recorder
	blocked blockedAddrs   // addresses over AddrFailures, as this instance knows
	bg      sync.WaitGroup // writes done off the request path
}

// New returns an App; Close it to write the queued security events.
func New(d Deps) *App {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = randomID
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.DPoP.Verifier == nil {
		d.DPoP.Verifier = tokens.NewDPoPVerifier(tokens.DPoPConfig{Now: d.Now})
	}
	if d.PasswordLock == 0 {
		d.PasswordLock = time.Hour
	}
	a := &App{Deps: d, m: newMetrics(d.Registry)}
	a.events = newRecorder(d.Events, func(msg string, args ...any) { a.Logger.Warn(msg, args...) })
	return a
}

// Close waits for background counting, writes the queued security events
// and stops their writers.
func (a *App) Close() {
	a.bg.Wait()
	a.events.close()
}

// Client is who is asking. IP and UserAgent are for security events (and
// the refresh grace period's fingerprint), never trusted for a decision;
// Proof is the request's verified DPoP proof (App.Proof), nil without one.
type Client struct {
	IP        string
	UserAgent string
	Proof     *Proof
	// RememberDevice asks, with a second factor, to remember the key of
	// Proof (devices.go).
	RememberDevice bool
}

// device is what a session keeps of the client that signed it in.
func (cl Client) device() tokens.Device {
	return tokens.Device{UserAgent: cl.UserAgent, IP: cl.IP}
}

// Caller is a signed-in session presenting an access token.
type Caller struct {
	Claims  tokens.AccessClaims
	Session *tokens.Session
	Client  Client
}

// Tokens is a completed authentication.
type Tokens struct {
	Session      *tokens.Session
	Access       string
	AccessExpiry time.Time
	Refresh      string // empty after a step-up: the session's refresh token still works
	// JKT is the DPoP key the access token is bound to (token_type DPoP);
	// empty for a Bearer token.
	JKT string
	// RecoveryLeft is set after a recovery code was used.
	RecoveryLeft *int
	// Remembered: the device (the DPoP key) was remembered now.
	Remembered bool
}

// Pending says a second factor is required.
type Pending struct {
	Token   string
	Expiry  time.Time
	Factors []string
}

// Outcome is either tokens or a pending second factor.
type Outcome struct {
	Tokens  *Tokens
	Pending *Pending
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// event records a security event about userID.
func (a *App) event(cl Client, userID, sid, typ, detail string) {
	if userID == "" {
		return
	}
	ua := cl.UserAgent
	if len(ua) > 256 {
		ua = ua[:256]
	}
	a.events.add(mfa.Event{ID: a.Rand(12), UserID: userID, SessionID: sid, Type: typ, Detail: detail,
		At: a.Now(), IP: cl.IP, UserAgent: ua})
}

// issue signs an access token for sess, bound to the DPoP key jkt when set.
func (a *App) issue(sess *tokens.Session, refresh, jkt string) (*Tokens, error) {
	access, claims, err := a.Issuer.BoundAccess(sess.UserID, sess.ID, sess.AuthTime, sess.ACR, sess.AMR, jkt)
	if err != nil {
		return nil, err
	}
	a.m.issued.WithLabelValues("access", "issued").Inc()
	return &Tokens{Session: sess, Access: access, AccessExpiry: claims.Expiry, Refresh: refresh, JKT: jkt}, nil
}

// start begins a session for a finished authentication, bound to the key
// the request proved, if any. The user was read before the factor was
// checked (a password hash takes tens of milliseconds): if the account was
// deleted meanwhile, the deletion may have swept the sessions before this
// one was inserted, so the user is read again after the insert (admitted)
// and the session ended if it is gone — gone is then the answer (what a
// wrong credential answers) — or disabled meanwhile (ErrAccountDisabled).
func (a *App) start(ctx context.Context, cl Client, userID string, as mfa.Assurance, gone error) (*Tokens, error) {
	return a.startAt(ctx, cl, userID, as, a.Now(), gone)
}

// startAt is start for an authentication at authTime.
func (a *App) startAt(ctx context.Context, cl Client, userID string, as mfa.Assurance, authTime time.Time, gone error) (*Tokens, error) {
	jkt := cl.Proof.JKT()
	sess, refresh, err := a.Sessions.StartBound(ctx, cl.device(), userID, authTime, as.ACR, as.AMR, jkt)
	if err != nil {
		return nil, err
	}
	if err := a.admitted(ctx, cl, sess, gone); err != nil {
		return nil, err
	}
	a.event(cl, userID, sess.ID, mfa.EventLoginSuccess, describe(as))
	return a.issue(sess, refresh, jkt)
}

// admitted checks, after a new session was created, that its user still
// exists and is not disabled; otherwise it ends the session and returns
// ErrAccountDisabled, or gone for a user removed meanwhile. A password
// alone and a passkey pass here. Read after the session exists, the user
// cannot have been disabled unseen: DisableUser sets the flag before it
// ends the user's sessions, so a session created before the flag was set
// is ended by it, and one created after sees it. It costs one read per
// such sign-in, none per request. A second factor needs no such read: its
// session is inserted before its mfa_token is consumed, and a disable or
// deletion ends the user's tokens before their sessions (finish).
func (a *App) admitted(ctx context.Context, cl Client, sess *tokens.Session, gone error) error {
	u, err := a.Users.User(ctx, sess.UserID)
	switch {
	case errors.Is(err, mfa.ErrNotFound):
		err = gone
	case err != nil:
	case u.Disabled:
		err = ErrAccountDisabled
		a.event(cl, u.ID, sess.ID, mfa.EventLoginFailure, "account disabled")
	default:
		return nil
	}
	a.abandon(ctx, sess)
	return err
}

func describe(as mfa.Assurance) string {
	out := as.ACR
	for i, m := range as.AMR {
		if i == 0 {
			out += " "
		} else {
			out += ","
		}
		out += m
	}
	return out
}

// throttled counts a refusal by an attempt budget and reports whether err
// was one.
func (a *App) throttled(err error) bool {
	if _, ok := err.(*mfa.ThrottledError); ok {
		a.m.lockouts.Inc()
		return true
	}
	return false
}

// Anonymous endpoints a client address is rate-limited on.
const (
	AnonSignUp     = "signup"
	AnonPasskey    = "passkey"
	AnonIntrospect = "introspect"
)

// Anonymous counts one request of a client to an anonymous endpoint and
// refuses it (a *mfa.ThrottledError with the seconds to the next minute)
// past AnonRate in the current minute. It costs one conditional update
// per request, and the store at most one small document per (endpoint,
// address, minute), swept after two minutes.
func (a *App) Anonymous(ctx context.Context, endpoint string, cl Client) error {
	if a == nil || a.AnonRate <= 0 || a.Budgets.Login == nil {
		return nil
	}
	now := a.Now()
	minute := now.Truncate(time.Minute)
	scope := "anon|" + endpoint + "|" + cl.IP + "|" + minute.Format("200601021504")
	gates := []mfa.Gate{{Min: 0, Max: int64(a.AnonRate)}}
	if _, ok, err := a.Budgets.Login.Store.Spend(ctx, scope, gates, now, minute.Add(2*time.Minute)); err != nil || ok {
		return err
	}
	a.m.lockouts.Inc()
	return &mfa.ThrottledError{RetryAfter: minute.Add(time.Minute).Sub(now)}
}
