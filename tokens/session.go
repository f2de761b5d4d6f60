package tokens

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Session errors.
var (
	ErrSessionNotFound = errors.New("tokens: session not found")
	ErrSessionEnded    = errors.New("tokens: session ended")
	ErrRefreshUnknown  = errors.New("tokens: refresh token unknown or expired")
	// ErrRefreshReused means a rotated refresh token came back: the whole
	// family (the session) has been revoked.
	ErrRefreshReused = errors.New("tokens: refresh token reused; session revoked")
)

// Session is one sign-in: the refresh-token family and the access tokens
// issued from it share its id (sid). Refresh never raises ACR, AMR or
// AuthTime; only a new interactive factor does. The session holds the hash
// of its one current refresh token, so rotation is one compare-and-set.
type Session struct {
	ID        string
	UserID    string
	CreatedAt time.Time
	AuthTime  time.Time
	ACR       string
	AMR       []string
	ExpiresAt time.Time // absolute limit
	RevokedAt time.Time // zero while live
	// JKT is the RFC 7638 thumbprint of the DPoP key the session's refresh
	// tokens are bound to (RFC 9449 §5): only a proof of that key refreshes
	// it, and its access tokens carry it as cnf.jkt. Empty: bearer.
	JKT string

	// Device is where the session was signed in from, as the client said
	// (shown to its user; never trusted for a decision).
	Device Device

	RefreshHash      string    // hex SHA-256 of the current refresh token
	RefreshIssuedAt  time.Time // when it was issued
	RefreshExpiresAt time.Time // idle limit of the current refresh token, never after ExpiresAt

	// Handover is left by the rotation that issued the current refresh
	// token when a grace period is on; nil otherwise.
	Handover *Handover
}

// Device is the client a session was signed in from: its user agent (at
// most MaxUserAgent bytes) and address.
type Device struct {
	UserAgent string
	IP        string
}

// MaxUserAgent bounds the user agent a session keeps.
const MaxUserAgent = 256

// LastUsed is when the session was last used to get tokens: its sign-in
// or the last rotation of its refresh token (a step-up does not count, nor
// does presenting an access token, which costs no write).
func (s *Session) LastUsed() time.Time {
	if s.RefreshIssuedAt.After(s.CreatedAt) {
		return s.RefreshIssuedAt
	}
	return s.CreatedAt
}

// Handover is what a rotation leaves in the session so that its
// predecessor, presented again within the grace period by the same client,
// gets the same successor: it is replaced by the next rotation, so it only
// ever hands over the current refresh token.
type Handover struct {
	From   string    // hash of the rotated (predecessor) token
	Sealed []byte    // the successor (the current token), AES-256-GCM under Sessions.GraceKey
	Client string    // fingerprint of the client that rotated
	At     time.Time // when
}

// Live reports whether s can still be used at now.
func (s *Session) Live(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt)
}

// Holds reports whether a request that proved the DPoP key jkt ("" for
// none) may use s's refresh token: s is not bound, or bound to jkt.
func (s *Session) Holds(jkt string) bool {
	return s.JKT == "" || subtle.ConstantTimeCompare([]byte(s.JKT), []byte(jkt)) == 1
}

// RefreshLive reports whether hash is the session's current refresh token
// and usable at now.
func (s *Session) RefreshLive(hash string, now time.Time) bool {
	return s.Live(now) && s.RefreshHash == hash && now.Before(s.RefreshExpiresAt)
}

// SessionStore persists sessions. It is implemented by store.
type SessionStore interface {
	// CreateSession inserts s, with its first refresh token's hash.
	CreateSession(ctx context.Context, s *Session) error
	// Session returns the session, or ErrSessionNotFound.
	Session(ctx context.Context, id string) (*Session, error)
	// RevokeSession marks the session ended at at. Idempotent; nothing
	// written later brings it back.
	RevokeSession(ctx context.Context, id string, at time.Time) error
	// SetAuth records a new interactive authentication (step-up, or a
	// downgrade after a factor was removed) in a session that is live at
	// now, and returns the session after it; ErrSessionEnded if it is not
	// live, ErrSessionNotFound if it does not exist.
	SetAuth(ctx context.Context, id string, authTime time.Time, acr string, amr []string, now time.Time) (*Session, error)
	// RotateRefresh replaces the session's refresh token old (a hash)
	// with next, if old is current and unexpired, the session live at now
	// and either not bound to a DPoP key or bound to jkt — one atomic
	// compare-and-set that also sets the session's Handover to h (clears it
	// when h is nil) — and returns the session after it. ErrRefreshUnknown
	// otherwise.
	RotateRefresh(ctx context.Context, id, old, next, jkt string, nextExpires, now time.Time, h *Handover) (*Session, error)
	// RecordRotation remembers, until expires, that the refresh token with
	// that hash was rotated away from session id.
	RecordRotation(ctx context.Context, hash, id string, expires time.Time) error
	// Rotated returns the session a rotated token hash belonged to, or
	// ErrRefreshUnknown.
	Rotated(ctx context.Context, hash string) (string, error)
	// RevokeUserSessions ends every live session of a user but except.
	RevokeUserSessions(ctx context.Context, userID, except string, at time.Time) error
	// UserSessions returns the user's sessions that are live at now
	// (neither revoked nor past their absolute limit), oldest first.
	UserSessions(ctx context.Context, userID string, now time.Time) ([]*Session, error)
	// DeleteUserSessions deletes every session of a user, live or not
	// (the account is being deleted).
	DeleteUserSessions(ctx context.Context, userID string) error
}

// Sessions starts sessions and rotates their refresh tokens.
//
// A refresh token is "<sid>.<secret>": the session id says which document
// to look at, the 256-bit secret is what proves possession; only the
// SHA-256 of the whole token is stored.
//
// Grace is the reuse interval: a rotated token presented again within it by
// the client that rotated it (two tabs refreshing at once, a retry after a
// lost response) gets the same successor instead of ending the session. It
// needs GraceKey, a 32-byte AES-256 key that seals the successor in the
// session; a nil GraceKey or a zero Grace turns it off.
type Sessions struct {
	Store      SessionStore
	RefreshTTL time.Duration // idle limit: a refresh token unused this long expires
	MaxAge     time.Duration // absolute session limit
	Grace      time.Duration // reuse interval for the same client; 0: none
	GraceKey   []byte        // 32 bytes; nil: no grace
	Now        func() time.Time
	Rand       io.Reader
}

// DefaultGrace covers concurrent refreshes of one browser and a retry after
// a lost answer (a round trip, seconds at worst on a poor network), while
// leaving a thief replaying a stolen token only seconds, and only from the
// victim's address and user agent, before reuse revokes the family.
const DefaultGrace = 10 * time.Second

// NewSessions returns Sessions with a 24 h idle limit, a 30-day absolute
// limit and a DefaultGrace reuse interval (off until GraceKey is set).
func NewSessions(store SessionStore) *Sessions {
	return &Sessions{Store: store, RefreshTTL: 24 * time.Hour, MaxAge: 30 * 24 * time.Hour, Grace: DefaultGrace,
		Now: time.Now, Rand: rand.Reader}
}

// Start creates a session for a completed authentication, with its first
// refresh token: one insert.
func (s *Sessions) Start(ctx context.Context, userID string, authTime time.Time, acr string, amr []string) (*Session, string, error) {
	return s.StartBound(ctx, Device{}, userID, authTime, acr, amr, "")
}

// StartOn is Start recording the device the user signed in on (its user
// agent cut to MaxUserAgent bytes).
func (s *Sessions) StartOn(ctx context.Context, d Device, userID string, authTime time.Time, acr string, amr []string) (*Session, string, error) {
	return s.StartBound(ctx, d, userID, authTime, acr, amr, "")
}

// StartBound is StartOn for a session bound to the DPoP key whose
// thumbprint is jkt ("" for none): its refresh token is refreshed only with
// a proof of that key.
func (s *Sessions) StartBound(ctx context.Context, d Device, userID string, authTime time.Time, acr string, amr []string, jkt string) (*Session, string, error) {
	id, err := s.random(16)
	if err != nil {
		return nil, "", err
	}
	return s.start(ctx, id, d, userID, authTime, acr, amr, jkt)
}

// StartWithID is Start with a session id chosen by the caller.
func (s *Sessions) StartWithID(ctx context.Context, id, userID string, authTime time.Time, acr string, amr []string) (*Session, string, error) {
	return s.start(ctx, id, Device{}, userID, authTime, acr, amr, "")
}

func (s *Sessions) start(ctx context.Context, id string, d Device, userID string, authTime time.Time, acr string, amr []string, jkt string) (*Session, string, error) {
	now := s.Now()
	d.UserAgent = truncateUTF8(d.UserAgent, MaxUserAgent)
	sess := &Session{ID: id, UserID: userID, CreatedAt: now, AuthTime: authTime, ACR: acr, AMR: amr, ExpiresAt: now.Add(s.MaxAge),
		Device: d, JKT: jkt}
	token, err := s.newToken(sess)
	if err != nil {
		return nil, "", err
	}
	sess.RefreshHash, sess.RefreshIssuedAt, sess.RefreshExpiresAt = HashRefresh(token), now, s.idle(sess, now)
	if err := s.Store.CreateSession(ctx, sess); err != nil {
		return nil, "", err
	}
	return sess, token, nil
}

// Rotate is RotateFrom without a client: no grace period applies.
func (s *Sessions) Rotate(ctx context.Context, token string) (*Session, string, error) {
	return s.RotateFrom(ctx, token, "")
}

// RotateFrom exchanges a refresh token for a new one of the same session
// with one compare-and-set on the session, then remembers the old token's
// hash for reuse detection. client is the presenting client's Fingerprint
// ("" for none).
//
// It returns ErrRefreshUnknown for an unknown, expired or superseded token
// or an ended session, and ErrRefreshReused — after revoking the session,
// which it returns too — when the token was rotated before: whoever
// presents it second, thief or owner, ends the family. The one exception is
// the grace period: the token rotated into the current one, presented again
// by the same client within Grace of that rotation, gets the current token
// back (the same successor; nothing is written).
func (s *Sessions) RotateFrom(ctx context.Context, token, client string) (*Session, string, error) {
	return s.RotateBound(ctx, token, client, "")
}

// RotateBound is RotateFrom for a request that proved possession of the
// DPoP key whose thumbprint is jkt ("" for none). A session bound to a key
// rotates only for that key; for any other (or none) its token is
// ErrRefreshUnknown and nothing changes: the family is not revoked, not
// even for a rotated token, since whoever lacks the key cannot use the
// session anyway and must not be able to end it.
func (s *Sessions) RotateBound(ctx context.Context, token, client, jkt string) (*Session, string, error) {
	sid, ok := RefreshSession(token)
	if !ok {
		return nil, "", ErrRefreshUnknown
	}
	hash := HashRefresh(token)
	now := s.Now()
	next, err := s.newToken(&Session{ID: sid})
	if err != nil {
		return nil, "", err
	}
	var h *Handover
	if s.graceOn(client) {
		sealed, err := s.seal(next, sid, hash)
		if err != nil {
			return nil, "", err
		}
		h = &Handover{From: hash, Sealed: sealed, Client: client, At: now}
	}
	sess, err := s.Store.RotateRefresh(ctx, sid, hash, HashRefresh(next), jkt, now.Add(s.RefreshTTL), now, h)
	if errors.Is(err, ErrRefreshUnknown) {
		return s.presentedAgain(ctx, sid, hash, client, jkt, now)
	}
	if err != nil {
		return nil, "", err
	}
	// Remember the old hash until the session ends; if this write is lost,
	// reusing the old token is still refused (it is not current), only not
	// recognised as reuse.
	if err := s.Store.RecordRotation(ctx, hash, sid, sess.ExpiresAt); err != nil {
		return nil, "", err
	}
	return sess, next, nil
}

// presentedAgain answers a token that is not the session's current one.
// If it was rotated away from the session — known from the session's
// handover when the grace period is on (written with the rotation itself,
// so never missed), else from the rotations — it is either within the
// grace period (the current token is handed back) or reuse (the session is
// revoked). Otherwise it is unknown.
func (s *Sessions) presentedAgain(ctx context.Context, sid, hash, client, jkt string, now time.Time) (*Session, string, error) {
	reused := false
	var sess *Session
	if s.graceOn(client) {
		var err error
		sess, err = s.Store.Session(ctx, sid)
		if errors.Is(err, ErrSessionNotFound) {
			return nil, "", ErrRefreshUnknown
		}
		if err != nil {
			return nil, "", err
		}
		if !sess.Holds(jkt) {
			return nil, "", ErrRefreshUnknown
		}
		if h := sess.Handover; h != nil && h.From == hash {
			if next, ok := s.inGrace(sess, client, now); ok {
				return sess, next, nil
			}
			reused = true
		}
	}
	if !reused {
		if owner, err := s.Store.Rotated(ctx, hash); err != nil || owner != sid {
			return nil, "", ErrRefreshUnknown
		}
		if sess == nil {
			got, err := s.Store.Session(ctx, sid)
			if err != nil {
				return nil, "", ErrRefreshUnknown
			}
			if !got.Holds(jkt) {
				return nil, "", ErrRefreshUnknown
			}
		}
	}
	if err := s.Store.RevokeSession(ctx, sid, now); err != nil {
		return nil, "", err
	}
	sess, err := s.Store.Session(ctx, sid)
	if err != nil {
		return nil, "", err
	}
	return sess, "", ErrRefreshReused
}

// inGrace returns the session's current refresh token, unsealed from its
// handover, if client made that rotation less than Grace before now and
// the session and the token are still live.
func (s *Sessions) inGrace(sess *Session, client string, now time.Time) (string, bool) {
	h := sess.Handover
	if subtle.ConstantTimeCompare([]byte(h.Client), []byte(client)) != 1 || !now.Before(h.At.Add(s.Grace)) {
		return "", false
	}
	next, err := s.open(h.Sealed, sess.ID, h.From)
	if err != nil || !sess.RefreshLive(HashRefresh(next), now) {
		return "", false // a changed GraceKey; the successor expired or the session ended
	}
	return next, true
}

func (s *Sessions) graceOn(client string) bool {
	return s.Grace > 0 && s.GraceKey != nil && client != ""
}

// seal encrypts a successor token under GraceKey, bound to its session and
// predecessor (the associated data), so it opens nowhere else.
func (s *Sessions) seal(next, sid, from string) ([]byte, error) {
	aead, err := s.aead()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(next)+aead.Overhead())
	if _, err := io.ReadFull(s.Rand, nonce); err != nil {
		return nil, fmt.Errorf("tokens: random: %w", err)
	}
	return aead.Seal(nonce, nonce, []byte(next), []byte(sid+"."+from)), nil
}

func (s *Sessions) open(sealed []byte, sid, from string) (string, error) {
	aead, err := s.aead()
	if err != nil {
		return "", err
	}
	n := aead.NonceSize()
	if len(sealed) < n {
		return "", errors.New("tokens: sealed refresh token too short")
	}
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(sid+"."+from))
	if err != nil {
		return "", fmt.Errorf("tokens: open sealed refresh token: %w", err)
	}
	return string(plain), nil
}

func (s *Sessions) aead() (cipher.AEAD, error) {
	if len(s.GraceKey) != 32 {
		return nil, errors.New("tokens: Sessions.GraceKey must be 32 bytes")
	}
	block, err := aes.NewCipher(s.GraceKey)
	if err != nil {
		return nil, fmt.Errorf("tokens: grace key: %w", err)
	}
	return cipher.NewGCM(block)
}

// Fingerprint identifies a client for the grace period of RotateFrom: the
// SHA-256 of its parts (say, IP address and user agent), each
// length-prefixed so that no two lists of parts collide.
func Fingerprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Raise records a step-up in a live session: refresh tokens of the family
// then carry the new auth_time, acr and amr. It returns ErrSessionEnded if
// the session is no longer live; a concurrent revocation always wins.
func (s *Sessions) Raise(ctx context.Context, id string, authTime time.Time, acr string, amr []string) (*Session, error) {
	return s.Store.SetAuth(ctx, id, authTime, acr, amr, s.Now())
}

// Revoke ends a session: its refresh family and access tokens.
func (s *Sessions) Revoke(ctx context.Context, id string) error {
	return s.Store.RevokeSession(ctx, id, s.Now())
}

// OfUser returns the user's live sessions, oldest first: those neither
// revoked nor past their absolute limit. A session whose refresh token
// idled out is still listed: its last access tokens work until they expire.
func (s *Sessions) OfUser(ctx context.Context, userID string) ([]*Session, error) {
	return s.Store.UserSessions(ctx, userID, s.Now())
}

// RevokeAll ends every session of a user but except ("" for none).
func (s *Sessions) RevokeAll(ctx context.Context, userID, except string) error {
	return s.Store.RevokeUserSessions(ctx, userID, except, s.Now())
}

// Active returns the session if it is live, ErrSessionEnded if not.
func (s *Sessions) Active(ctx context.Context, id string) (*Session, error) {
	sess, err := s.Store.Session(ctx, id)
	if err != nil {
		return nil, err
	}
	if !sess.Live(s.Now()) {
		return nil, ErrSessionEnded
	}
	return sess, nil
}

// OfRefresh returns the session whose current refresh token is token, or
// ErrRefreshUnknown (introspection, revocation).
func (s *Sessions) OfRefresh(ctx context.Context, token string) (*Session, error) {
	sid, ok := RefreshSession(token)
	if !ok {
		return nil, ErrRefreshUnknown
	}
	sess, err := s.Store.Session(ctx, sid)
	if errors.Is(err, ErrSessionNotFound) {
		return nil, ErrRefreshUnknown
	}
	if err != nil {
		return nil, err
	}
	if sess.RefreshHash != HashRefresh(token) {
		return nil, ErrRefreshUnknown
	}
	return sess, nil
}

func (s *Sessions) idle(sess *Session, now time.Time) time.Time {
	return time.Unix(0, min(now.Add(s.RefreshTTL).UnixNano(), sess.ExpiresAt.UnixNano()))
}

func (s *Sessions) newToken(sess *Session) (string, error) {
	secret, err := s.random(32)
	if err != nil {
		return "", err
	}
	return sess.ID + "." + secret, nil
}

func (s *Sessions) random(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.Rand, b); err != nil {
		return "", fmt.Errorf("tokens: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// RefreshSession returns the session id a refresh token names.
func RefreshSession(token string) (string, bool) {
	sid, secret, ok := strings.Cut(token, ".")
	if !ok || len(sid) == 0 || len(sid) > 64 || len(secret) != 43 || strings.Contains(secret, ".") {
		return "", false
	}
	return sid, true
}

// HashRefresh is the stored form of a refresh token.
func HashRefresh(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
