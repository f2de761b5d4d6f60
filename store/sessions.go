package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/stepup-auth/stepup/tokens"
)

type sessionDoc struct {
	ID        string    `bson:"_id"`
	UserID    string    `bson:"user_id"`
	CreatedAt time.Time `bson:"created_at"`
	AuthTime  time.Time `bson:"auth_time"`
	ACR       string    `bson:"acr"`
	AMR       []string  `bson:"amr"`
	ExpiresAt time.Time `bson:"expires_at"`
	RevokedAt time.Time `bson:"revoked_at,omitempty"`
}

type refreshDoc struct {
	ID        string    `bson:"_id"` // hex SHA-256 of the token
	SessionID string    `bson:"sid"`
	UserID    string    `bson:"user_id"`
	Parent    string    `bson:"parent"`
	IssuedAt  time.Time `bson:"issued_at"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// Sessions implements tokens.SessionStore.
type Sessions struct{ db *DB }

// Sessions returns the session store.
func (db *DB) Sessions() *Sessions { return &Sessions{db: db} }

// CreateSession inserts s.
func (s *Sessions) CreateSession(ctx context.Context, sess *tokens.Session) error {
	_, err := s.db.db.Collection(colSessions).InsertOne(ctx, sessionDoc{ID: sess.ID, UserID: sess.UserID,
		CreatedAt: sess.CreatedAt.UTC(), AuthTime: sess.AuthTime.UTC(), ACR: sess.ACR, AMR: sess.AMR,
		ExpiresAt: sess.ExpiresAt.UTC()})
	if err != nil {
		return opError(err, "insert session")
	}
	return nil
}

// Session returns the session, or tokens.ErrSessionNotFound.
func (s *Sessions) Session(ctx context.Context, id string) (*tokens.Session, error) {
	var d sessionDoc
	err := s.db.db.Collection(colSessions).FindOne(ctx, bson.M{"_id": id}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, tokens.ErrSessionNotFound
	}
	if err != nil {
		return nil, opError(err, "find session")
	}
	return &tokens.Session{ID: d.ID, UserID: d.UserID, CreatedAt: d.CreatedAt, AuthTime: d.AuthTime, ACR: d.ACR,
		AMR: d.AMR, ExpiresAt: d.ExpiresAt, RevokedAt: d.RevokedAt}, nil
}

// RevokeSession marks the session ended. Setting the same field twice is
// harmless, so concurrent revocations need no guard.
func (s *Sessions) RevokeSession(ctx context.Context, id string, at time.Time) error {
	_, err := s.db.db.Collection(colSessions).UpdateOne(ctx, bson.M{"_id": id, "revoked_at": bson.M{"$exists": false}},
		bson.M{"$set": bson.M{"revoked_at": at.UTC()}})
	if err != nil {
		return opError(err, "revoke session")
	}
	return nil
}

// SetAuth records a step-up; concurrent step-ups each write a complete
// authentication, so the last one wins whole.
func (s *Sessions) SetAuth(ctx context.Context, id string, authTime time.Time, acr string, amr []string) error {
	_, err := s.db.db.Collection(colSessions).UpdateOne(ctx, bson.M{"_id": id},
		bson.M{"$set": bson.M{"auth_time": authTime.UTC(), "acr": acr, "amr": amr}})
	if err != nil {
		return opError(err, "set session auth")
	}
	return nil
}

// AddRefresh inserts a refresh token record.
func (s *Sessions) AddRefresh(ctx context.Context, r tokens.Refresh) error {
	_, err := s.db.db.Collection(colRefresh).InsertOne(ctx, refreshDoc{ID: r.Hash, SessionID: r.SessionID, UserID: r.UserID,
		Parent: r.Parent, IssuedAt: r.IssuedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC()})
	if err != nil {
		return opError(err, "insert refresh token")
	}
	return nil
}

// Refresh returns the record of a token hash, or tokens.ErrRefreshUnknown.
func (s *Sessions) Refresh(ctx context.Context, hash string) (tokens.Refresh, error) {
	var d refreshDoc
	err := s.db.db.Collection(colRefresh).FindOne(ctx, bson.M{"_id": hash}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return tokens.Refresh{}, tokens.ErrRefreshUnknown
	}
	if err != nil {
		return tokens.Refresh{}, opError(err, "find refresh token")
	}
	return tokens.Refresh{Hash: d.ID, SessionID: d.SessionID, UserID: d.UserID, Parent: d.Parent,
		IssuedAt: d.IssuedAt, ExpiresAt: d.ExpiresAt}, nil
}

// ClaimRotation inserts the rotated token's hash; a duplicate is
// tokens.ErrRotated.
func (s *Sessions) ClaimRotation(ctx context.Context, parent string, expires time.Time) error {
	_, err := s.db.db.Collection(colRotations).InsertOne(ctx, claimDoc{ID: parent, At: s.db.now().UTC(), ExpiresAt: expires.UTC()})
	if isDuplicate(err) {
		return tokens.ErrRotated
	}
	if err != nil {
		return opError(err, "claim rotation")
	}
	return nil
}

// Rotated reports whether the token with that hash has been rotated.
func (s *Sessions) Rotated(ctx context.Context, hash string) (bool, error) {
	err := s.db.db.Collection(colRotations).FindOne(ctx, bson.M{"_id": hash}).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, opError(err, "find rotation")
	}
	return true, nil
}

// RevokeUserSessions ends every live session of a user but except. It is
// the one query by a field other than _id (indexed on MongoDB); it runs
// only on rare events such as removing a factor.
func (s *Sessions) RevokeUserSessions(ctx context.Context, userID, except string, at time.Time) error {
	_, err := s.db.db.Collection(colSessions).UpdateMany(ctx,
		bson.M{"user_id": userID, "_id": bson.M{"$ne": except}, "revoked_at": bson.M{"$exists": false}},
		bson.M{"$set": bson.M{"revoked_at": at.UTC()}})
	if err != nil {
		return opError(err, "revoke user sessions")
	}
	return nil
}
