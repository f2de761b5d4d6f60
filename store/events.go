package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/stepup-auth/stepup/mfa"
)

// DefaultEventRetention is how long security events are kept unless
// Config.EventRetention says otherwise.
const DefaultEventRetention = 90 * 24 * time.Hour

type eventDoc struct {
	ID        string    `bson:"_id"`
	UserID    string    `bson:"user_id"`
	SessionID string    `bson:"sid,omitempty"`
	Type      string    `bson:"type"`
	Detail    string    `bson:"detail,omitempty"`
	At        time.Time `bson:"at"`
	IP        string    `bson:"ip,omitempty"`
	UserAgent string    `bson:"ua,omitempty"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// Events implements mfa.EventStore.
type Events struct{ db *DB }

// Events returns the security event store.
func (db *DB) Events() *Events { return &Events{db: db} }

// AddEvents inserts events in one round trip; each expires after the
// configured retention (Config.EventRetention), also when its account is
// deleted: an event holds the account's random id, never its username.
// Inserting an event twice (a retry after a lost answer) is not an error.
func (ev *Events) AddEvents(ctx context.Context, es []mfa.Event) error {
	docs := make([]any, len(es))
	for i, e := range es {
		docs[i] = eventDoc{ID: e.ID, UserID: e.UserID, SessionID: e.SessionID, Type: e.Type, Detail: e.Detail,
			At: e.At.UTC(), IP: e.IP, UserAgent: e.UserAgent, ExpiresAt: e.At.Add(ev.db.eventRetention).UTC()}
	}
	_, err := ev.db.db.Collection(colEvents).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err != nil && !onlyDuplicates(err) {
		return opError(err, "insert events")
	}
	return nil
}

// Events returns a user's newest events: an indexed equality on user_id
// (the embedded engine too), sorted in memory on the embedded engine and by
// the index on MongoDB.
func (ev *Events) Events(ctx context.Context, userID string, limit int) ([]mfa.Event, error) {
	cur, err := ev.db.db.Collection(colEvents).Find(ctx, bson.M{"user_id": userID},
		options.Find().SetSort(bson.D{{Key: "user_id", Value: 1}, {Key: "at", Value: -1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, opError(err, "find events")
	}
	var docs []eventDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, opError(err, "read events")
	}
	out := make([]mfa.Event, len(docs))
	for i, d := range docs {
		out[i] = mfa.Event{ID: d.ID, UserID: d.UserID, SessionID: d.SessionID, Type: d.Type, Detail: d.Detail, At: d.At, IP: d.IP, UserAgent: d.UserAgent}
	}
	return out, nil
}

// onlyDuplicates reports whether every write error of a bulk insert is a
// duplicate key.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 {
			return false
		}
	}
	return true
}
