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
	Actor     string    `bson:"actor,omitempty"`
	ExpiresAt time.Time `bson:"expires_at"`
	// Seq is the event's place in the feed, SeqAt when the writer took it
	// (its own clock). Events written before the feed existed have neither
	// and are not in it.
	Seq   int64     `bson:"seq,omitempty"`
	SeqAt time.Time `bson:"seq_at,omitempty"`
}

func (d *eventDoc) event() mfa.Event {
	return mfa.Event{ID: d.ID, UserID: d.UserID, SessionID: d.SessionID, Type: d.Type, Detail: d.Detail, At: d.At,
		IP: d.IP, UserAgent: d.UserAgent, Actor: d.Actor, Seq: d.Seq}
}

// counterDoc is a named sequence in the counters collection.
type counterDoc struct {
	ID  string `bson:"_id"`
	Seq int64  `bson:"seq"`
}

// Events implements mfa.EventStore.
type Events struct{ db *DB }

// Events returns the security event store.
func (db *DB) Events() *Events { return &Events{db: db} }

// AddEvents takes len(es) numbers of the feed's sequence (one atomic $inc
// of a counter) and inserts the events with them in one more round trip;
// each expires after the configured retention (Config.EventRetention), also
// when its account is deleted: an event holds the account's random id,
// never its username. Inserting an event twice (a retry after a
// lost answer) is not an error: the copy already written keeps its number,
// and the numbers this call took for it are never written (see Feed).
func (ev *Events) AddEvents(ctx context.Context, es []mfa.Event) error {
	at := ev.db.now().UTC()
	var c counterDoc
	err := ev.db.db.Collection(colCounters).FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: "events"}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "seq", Value: int64(len(es))}}}},
		options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&c)
	if err != nil {
		return opError(err, "take event sequence numbers")
	}
	first := c.Seq - int64(len(es)) + 1
	docs := make([]any, len(es))
	for i, e := range es {
		docs[i] = eventDoc{ID: e.ID, UserID: e.UserID, SessionID: e.SessionID, Type: e.Type, Detail: e.Detail,
			At: e.At.UTC(), IP: e.IP, UserAgent: e.UserAgent, Actor: e.Actor, ExpiresAt: e.At.Add(ev.db.eventRetention).UTC(),
			Seq: first + int64(i), SeqAt: at}
	}
	_, err = ev.db.db.Collection(colEvents).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
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
	for i := range docs {
		out[i] = docs[i].event()
	}
	return out, nil
}

// Last returns the user's newest event of a type: an indexed equality on
// user_id, like Events.
func (ev *Events) Last(ctx context.Context, userID, typ string) (*mfa.Event, error) {
	var d eventDoc
	err := ev.db.db.Collection(colEvents).FindOne(ctx, bson.D{{Key: "user_id", Value: userID}, {Key: "type", Value: typ}},
		options.FindOne().SetSort(bson.D{{Key: "user_id", Value: 1}, {Key: "at", Value: -1}})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, opError(err, "find last event")
	}
	e := d.event()
	return &e, nil
}

// feedWindow is how many sequence numbers past the cursor one Feed call
// looks at.
const feedWindow = 1000

// Feed returns a page of the feed of every event, in sequence order.
//
// Why a sequence and not the time: an event is stamped when it happens,
// then queued and written later, in batches, by whichever instance it
// happened on; an event stamped earlier can land after a later one has
// been read, so a cursor on the time would step over it. The numbers come
// from one counter, taken by the writer just before its insert, so a
// number is given out before every greater one (in real time). A reader
// sees numbers in order and stops at the first missing one — a batch
// still being written — unless that gap is settled: a number after it was
// taken before q.SettledBefore, so the gap's own number was taken earlier
// still, and its insert (one attempt, bounded by the writer's timeout; a
// retry takes new numbers) has ended, written or not. A missing number is
// then skipped for good: nothing can fill it later. So the cursor (the
// last number a page covers) never passes an event that is still to come,
// and never returns one twice.
//
// It makes two queries: the numbers (and their times) of up to feedWindow
// events past q.After, to find how far the feed is settled, then the page
// of events up to there that match q's filters.
func (ev *Events) Feed(ctx context.Context, q mfa.EventQuery) ([]mfa.Event, int64, error) {
	coll := ev.db.db.Collection(colEvents)
	after := bson.D{{Key: "seq", Value: bson.D{{Key: "$gt", Value: q.After}}}}
	cur, err := coll.Find(ctx, after, options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetLimit(feedWindow).
		SetProjection(bson.D{{Key: "seq", Value: 1}, {Key: "seq_at", Value: 1}}))
	if err != nil {
		return nil, 0, opError(err, "read the event sequence")
	}
	var seqs []struct {
		Seq   int64     `bson:"seq"`
		SeqAt time.Time `bson:"seq_at"`
	}
	if err := cur.All(ctx, &seqs); err != nil {
		return nil, 0, opError(err, "read the event sequence")
	}
	settled := q.After
	for _, s := range seqs {
		if s.Seq != settled+1 && s.SeqAt.After(q.SettledBefore) {
			break // a number before s may still be written
		}
		settled = s.Seq
	}
	if settled == q.After {
		return nil, q.After, nil
	}
	filter := bson.D{{Key: "seq", Value: bson.D{{Key: "$gt", Value: q.After}, {Key: "$lte", Value: settled}}}}
	if q.UserID != "" {
		filter = append(filter, bson.E{Key: "user_id", Value: q.UserID})
	}
	if q.Type != "" {
		filter = append(filter, bson.E{Key: "type", Value: q.Type})
	}
	if !q.Since.IsZero() {
		filter = append(filter, bson.E{Key: "at", Value: bson.D{{Key: "$gte", Value: q.Since.UTC()}}})
	}
	cur, err = coll.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetLimit(int64(q.Limit)))
	if err != nil {
		return nil, 0, opError(err, "read the event feed")
	}
	var docs []eventDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, 0, opError(err, "read the event feed")
	}
	out := make([]mfa.Event, len(docs))
	for i := range docs {
		out[i] = docs[i].event()
	}
	next := settled
	if len(out) == q.Limit {
		next = out[len(out)-1].Seq
	}
	return out, next, nil
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
