package tokens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// Session errors.
var (
	ErrSessionNotFound = errors.New("tokens: session not found")
	ErrSessionEnded    = errors.New("tokens: session ended")
	ErrRefreshUnknown  = errors.New("tokens: refresh token unknown or expired")
	// ErrRefreshReused means a rotated refresh token came back: the whole
	// family (the session) has been revoked.
	ErrRefreshReused = errors.New("tokens: refresh token reused; session revoked")
	ErrRotated       = errors.New("tokens: refresh token rotated already")
)

// Session is one sign-in: the refresh-token family and the access tokens
// issued from it share its id (sid). Refresh never raises ACR, AMR or
// AuthTime; only a new interactive factor does.
type Session struct {
	ID        string
	UserID    string
	CreatedAt time.Time
	AuthTime  time.Time
	ACR       string
	AMR       []string
	ExpiresAt time.Time // absolute limit
	RevokedAt time.Time // zero while live
}

// Live reports whether s can still be used at now.
func (s *Session) Live(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt)
}

// Refresh is the stored form of an opaque refresh token: only its hash.
type Refresh struct {
	Hash      string // hex SHA-256 of the token
	SessionID string
	UserID    string
	Parent    string // hash of the token it replaced; its own hash for a root
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// SessionStore persists sessions and refresh tokens. It is implemented by
// store.
type SessionStore interface {
	// CreateSession inserts s.
	CreateSession(ctx context.Context, s *Session) error
	// Session returns the session, or ErrSessionNotFound.
	Session(ctx context.Context, id string) (*Session, error)
	// RevokeSession marks the session ended at at. Idempotent.
	RevokeSession(ctx context.Context, id string, at time.Time) error
	// SetAuth records a new interactive authentication in the session
	// (step-up): auth time, acr and amr replace the old ones.
	SetAuth(ctx context.Context, id string, authTime time.Time, acr string, amr []string) error
	// AddRefresh inserts a refresh token record.
	AddRefresh(ctx context.Context, r Refresh) error
	// Refresh returns the record of a token hash, or ErrRefreshUnknown.
	Refresh(ctx context.Context, hash string) (Refresh, error)
	// ClaimRotation records that the token with hash parent has been
	// rotated. It returns ErrRotated if it was rotated before.
	ClaimRotation(ctx context.Context, parent string, expires time.Time) error
	// Rotated reports whether the token with that hash has been rotated.
	Rotated(ctx context.Context, hash string) (bool, error)
	// RevokeUserSessions ends every live session of a user but except.
	RevokeUserSessions(ctx context.Context, userID, except string, at time.Time) error
}

// Sessions starts sessions and rotates their refresh tokens.
type Sessions struct {
	Store      SessionStore
	RefreshTTL time.Duration // idle limit: a refresh token unused this long expires
	MaxAge     time.Duration // absolute session limit
	Now        func() time.Time
	Rand       io.Reader
}

// NewSessions returns Sessions with a 24 h idle limit and a 30-day absolute
// limit.
func NewSessions(store SessionStore) *Sessions {
	return &Sessions{Store: store, RefreshTTL: 24 * time.Hour, MaxAge: 30 * 24 * time.Hour, Now: time.Now, Rand: rand.Reader}
}

// Start creates a session for a completed authentication and its first
// refresh token.
func (s *Sessions) Start(ctx context.Context, userID string, authTime time.Time, acr string, amr []string) (*Session, string, error) {
	id, err := s.random(16)
	if err != nil {
		return nil, "", err
	}
	now := s.Now()
	sess := &Session{ID: id, UserID: userID, CreatedAt: now, AuthTime: authTime, ACR: acr, AMR: amr, ExpiresAt: now.Add(s.MaxAge)}
	// The two inserts are independent and run at once; a refresh record
	// whose session insert failed is never handed out and expires.
	var (
		token      string
		refreshErr error
		done       = make(chan struct{})
	)
	go func() {
		defer close(done)
		token, refreshErr = s.issue(ctx, sess, "")
	}()
	err = s.Store.CreateSession(ctx, sess)
	<-done
	if err != nil {
		return nil, "", err
	}
	if refreshErr != nil {
		return nil, "", refreshErr
	}
	return sess, token, nil
}

// Rotate exchanges a refresh token for a new one of the same session. It
// returns ErrRefreshUnknown for an unknown or expired token, ErrSessionEnded
// for a revoked or expired session, and ErrRefreshReused — after revoking the
// session, which it returns too — when the token was rotated before.
func (s *Sessions) Rotate(ctx context.Context, token string) (*Session, string, error) {
	hash := HashRefresh(token)
	r, err := s.Store.Refresh(ctx, hash)
	if err != nil {
		return nil, "", err
	}
	now := s.Now()
	if !now.Before(r.ExpiresAt) {
		return nil, "", ErrRefreshUnknown
	}
	sess, err := s.Store.Session(ctx, r.SessionID)
	if err != nil {
		return nil, "", err
	}
	if !sess.Live(now) {
		return nil, "", ErrSessionEnded
	}
	if err := s.Store.ClaimRotation(ctx, hash, sess.ExpiresAt); err != nil {
		if errors.Is(err, ErrRotated) {
			if err := s.Store.RevokeSession(ctx, sess.ID, now); err != nil {
				return nil, "", err
			}
			return sess, "", ErrRefreshReused
		}
		return nil, "", err
	}
	next, err := s.issue(ctx, sess, hash)
	if err != nil {
		return nil, "", err
	}
	return sess, next, nil
}

// Raise records a step-up in a live session: refresh tokens of the family
// then carry the new auth_time, acr and amr. It returns ErrSessionEnded if
// the session is no longer live.
func (s *Sessions) Raise(ctx context.Context, id string, authTime time.Time, acr string, amr []string) (*Session, error) {
	sess, err := s.Active(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.Store.SetAuth(ctx, id, authTime, acr, amr); err != nil {
		return nil, err
	}
	sess.AuthTime, sess.ACR, sess.AMR = authTime, acr, amr
	return sess, nil
}

// Revoke ends a session: its refresh family and access tokens.
func (s *Sessions) Revoke(ctx context.Context, id string) error {
	return s.Store.RevokeSession(ctx, id, s.Now())
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

func (s *Sessions) issue(ctx context.Context, sess *Session, parent string) (string, error) {
	token, err := s.random(32)
	if err != nil {
		return "", err
	}
	hash := HashRefresh(token)
	if parent == "" {
		parent = hash
	}
	now := s.Now()
	exp := min(now.Add(s.RefreshTTL).UnixNano(), sess.ExpiresAt.UnixNano())
	err = s.Store.AddRefresh(ctx, Refresh{Hash: hash, SessionID: sess.ID, UserID: sess.UserID, Parent: parent,
		IssuedAt: now, ExpiresAt: time.Unix(0, exp)})
	if err != nil {
		return "", err
	}
	return token, nil
}

func (s *Sessions) random(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.Rand, b); err != nil {
		return "", fmt.Errorf("tokens: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashRefresh is the stored form of a refresh token.
func HashRefresh(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
