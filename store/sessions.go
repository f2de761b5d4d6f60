package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/stepup-auth/stepup/tokens"
)

type sessionDoc struct {
	ID               string       `bson:"_id"`
	UserID           string       `bson:"user_id"`
	CreatedAt        time.Time    `bson:"created_at"`
	AuthTime         time.Time    `bson:"auth_time"`
	ACR              string       `bson:"acr"`
	AMR              []string     `bson:"amr"`
	ExpiresAt        time.Time    `bson:"expires_at"`
	RevokedAt        time.Time    `bson:"revoked_at,omitempty"`
	RefreshHash      string       `bson:"refresh"`
	RefreshIssuedAt  time.Time    `bson:"refresh_iat"`
	RefreshExpiresAt time.Time    `bson:"refresh_exp"`
	Handover         *handoverDoc `bson:"handover,omitempty"`
	UserAgent        string       `bson:"ua,omitempty"`
	IP               string       `bson:"ip,omitempty"`
	JKT              string       `bson:"jkt,omitempty"` // DPoP key thumbprint; absent: bearer
}

// handoverDoc is tokens.Handover: the sealed successor of the last rotation
// for its grace period.
type handoverDoc struct {
	From   string    `bson:"from"`
	Sealed []byte    `bson:"sealed"`
	Client string    `bson:"client"`
	At     time.Time `bson:"at"`
}

type rotationDoc struct {
	ID        string    `bson:"_id"` // hash of the rotated token
	SessionID string    `bson:"sid"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// Sessions implements tokens.SessionStore. Every change is an update of the
// fields it concerns, conditional on the session being live where that
// matters, so a revocation is never undone by a concurrent step-up or
// rotation.
type Sessions struct{ db *DB }

// Sessions returns the session store.
func (db *DB) Sessions() *Sessions { return &Sessions{db: db} }

func (s *Sessions) coll() *mongo.Collection { return s.db.db.Collection(colSessions) }

// CreateSession inserts s with its first refresh token's hash.
func (s *Sessions) CreateSession(ctx context.Context, sess *tokens.Session) error {
	_, err := s.coll().InsertOne(ctx, sessionDoc{ID: sess.ID, UserID: sess.UserID,
		CreatedAt: sess.CreatedAt.UTC(), AuthTime: sess.AuthTime.UTC(), ACR: sess.ACR, AMR: sess.AMR,
		ExpiresAt: sess.ExpiresAt.UTC(), RefreshHash: sess.RefreshHash, RefreshIssuedAt: sess.RefreshIssuedAt.UTC(),
		RefreshExpiresAt: sess.RefreshExpiresAt.UTC(), UserAgent: sess.Device.UserAgent, IP: sess.Device.IP, JKT: sess.JKT})
	if err != nil {
		return opError(err, "insert session")
	}
	return nil
}

// Session returns the session, or tokens.ErrSessionNotFound.
func (s *Sessions) Session(ctx context.Context, id string) (*tokens.Session, error) {
	var d sessionDoc
	err := s.coll().FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, tokens.ErrSessionNotFound
	}
	if err != nil {
		return nil, opError(err, "find session")
	}
	return d.session(), nil
}

// session decodes d. A rotation stores refresh_exp unclamped (the update
// cannot read expires_at), so the session's end is applied here, once: a
// refresh token never outlives its session.
func (d *sessionDoc) session() *tokens.Session {
	sess := &tokens.Session{ID: d.ID, UserID: d.UserID, CreatedAt: d.CreatedAt, AuthTime: d.AuthTime, ACR: d.ACR,
		AMR: d.AMR, ExpiresAt: d.ExpiresAt, RevokedAt: d.RevokedAt, RefreshHash: d.RefreshHash,
		RefreshIssuedAt: d.RefreshIssuedAt, RefreshExpiresAt: d.RefreshExpiresAt,
		Device: tokens.Device{UserAgent: d.UserAgent, IP: d.IP}, JKT: d.JKT}
	if sess.RefreshExpiresAt.After(sess.ExpiresAt) {
		sess.RefreshExpiresAt = sess.ExpiresAt
	}
	if h := d.Handover; h != nil {
		sess.Handover = &tokens.Handover{From: h.From, Sealed: h.Sealed, Client: h.Client, At: h.At}
	}
	return sess
}

// live is the filter of a session that can still be used at now.
func live(id string, now time.Time) bson.D {
	return bson.D{{Key: "_id", Value: id}, {Key: "revoked_at", Value: bson.D{{Key: "$exists", Value: false}}},
		{Key: "expires_at", Value: bson.D{{Key: "$gt", Value: now.UTC()}}}}
}

// RevokeSession sets revoked_at once; it is the only write that touches it.
func (s *Sessions) RevokeSession(ctx context.Context, id string, at time.Time) error {
	_, err := s.coll().UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "revoked_at", Value: bson.D{{Key: "$exists", Value: false}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: at.UTC()}}}})
	if err != nil {
		return opError(err, "revoke session")
	}
	return nil
}

// SetAuth records an authentication in a live session: one
// findOneAndUpdate that matches nothing once the session is revoked.
func (s *Sessions) SetAuth(ctx context.Context, id string, authTime time.Time, acr string, amr []string, now time.Time) (*tokens.Session, error) {
	var d sessionDoc
	err := s.coll().FindOneAndUpdate(ctx, live(id, now),
		bson.D{{Key: "$set", Value: bson.D{{Key: "auth_time", Value: authTime.UTC()}, {Key: "acr", Value: acr}, {Key: "amr", Value: amr}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		if _, err := s.Session(ctx, id); err != nil {
			return nil, err
		}
		return nil, tokens.ErrSessionEnded
	}
	if err != nil {
		return nil, opError(err, "set session auth")
	}
	return d.session(), nil
}

// RotateRefresh is the compare-and-set of the current refresh token;
// the handover h is set (or cleared) in the same update, so whoever loses
// the compare-and-set and reads the session sees it.
func (s *Sessions) RotateRefresh(ctx context.Context, id, old, next, jkt string, nextExpires, now time.Time, h *tokens.Handover) (*tokens.Session, error) {
	filter := append(live(id, now), bson.E{Key: "refresh", Value: old},
		bson.E{Key: "refresh_exp", Value: bson.D{{Key: "$gt", Value: now.UTC()}}})
	// A session bound to a DPoP key rotates only for a proof of that key.
	unbound := bson.D{{Key: "jkt", Value: bson.D{{Key: "$exists", Value: false}}}}
	if jkt == "" {
		filter = append(filter, unbound[0])
	} else {
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{unbound, bson.D{{Key: "jkt", Value: jkt}}}})
	}
	// refresh_exp may lie past expires_at; every use also requires the
	// session live, so the earlier of the two applies.
	set := bson.D{{Key: "refresh", Value: next}, {Key: "refresh_iat", Value: now.UTC()}, {Key: "refresh_exp", Value: nextExpires.UTC()}}
	update := bson.D{{Key: "$unset", Value: bson.D{{Key: "handover", Value: ""}}}}
	if h != nil {
		set = append(set, bson.E{Key: "handover", Value: handoverDoc{From: h.From, Sealed: h.Sealed, Client: h.Client, At: h.At.UTC()}})
		update = nil
	}
	update = append(update, bson.E{Key: "$set", Value: set})
	var d sessionDoc
	err := s.coll().FindOneAndUpdate(ctx, filter, update,
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, tokens.ErrRefreshUnknown
	}
	if err != nil {
		return nil, opError(err, "rotate refresh token")
	}
	return d.session(), nil
}

// RecordRotation inserts the rotated token's hash.
func (s *Sessions) RecordRotation(ctx context.Context, hash, id string, expires time.Time) error {
	_, err := s.db.db.Collection(colRotations).InsertOne(ctx, rotationDoc{ID: hash, SessionID: id, ExpiresAt: expires.UTC()})
	if err != nil && !isDuplicate(err) {
		return opError(err, "record rotation")
	}
	return nil
}

// Rotated returns the session of a rotated token hash.
func (s *Sessions) Rotated(ctx context.Context, hash string) (string, error) {
	var d rotationDoc
	err := s.db.db.Collection(colRotations).FindOne(ctx, bson.D{{Key: "_id", Value: hash}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", tokens.ErrRefreshUnknown
	}
	if err != nil {
		return "", opError(err, "find rotation")
	}
	return d.SessionID, nil
}

// RevokeUserSessions ends every live session of a user but except: an
// indexed lookup by user_id, run only on rare events (password change,
// factor removal).
func (s *Sessions) RevokeUserSessions(ctx context.Context, userID, except string, at time.Time) error {
	_, err := s.coll().UpdateMany(ctx,
		bson.D{{Key: "user_id", Value: userID}, {Key: "_id", Value: bson.D{{Key: "$ne", Value: except}}},
			{Key: "revoked_at", Value: bson.D{{Key: "$exists", Value: false}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: at.UTC()}}}})
	if err != nil {
		return opError(err, "revoke user sessions")
	}
	return nil
}

// UserSessions returns the user's live sessions, oldest first: an indexed
// equality on user_id; the few sessions of one user are filtered and
// sorted here.
func (s *Sessions) UserSessions(ctx context.Context, userID string, now time.Time) ([]*tokens.Session, error) {
	cur, err := s.coll().Find(ctx, bson.D{{Key: "user_id", Value: userID}})
	if err != nil {
		return nil, opError(err, "find sessions of user %s", userID)
	}
	var docs []sessionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, opError(err, "read sessions of user %s", userID)
	}
	out := make([]*tokens.Session, 0, len(docs))
	for i := range docs {
		if sess := docs[i].session(); sess.Live(now) {
			out = append(out, sess)
		}
	}
	slices.SortFunc(out, func(a, b *tokens.Session) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// DeleteUserSessions deletes every session document of a user.
func (s *Sessions) DeleteUserSessions(ctx context.Context, userID string) error {
	if _, err := s.coll().DeleteMany(ctx, bson.D{{Key: "user_id", Value: userID}}); err != nil {
		return opError(err, "delete sessions of user %s", userID)
	}
	return nil
}
