package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/store/storetest"
)

// TestEventFeedGaps: a sequence number taken by a writer whose insert has
// not landed yet holds the feed back — the cursor never passes it — until
// either the event lands (then it is delivered, once) or a later number is
// older than the settle time (then nothing can fill it any more, and it is
// skipped). The in-flight writer is played by the test on the raw
// collections, with the documents the store writes.
func TestEventFeedGaps(t *testing.T) {
	ctx := context.Background()
	now := t0
	cfg := storetest.Config(t)
	cfg.Now = func() time.Time { return now }
	db := storetest.Open(t, cfg)
	ev := db.Events()
	client, err := mongo.Connect(options.Client().ApplyURI(cfg.URI))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	raw := client.Database(cfg.Database)

	add := func(ids ...string) {
		t.Helper()
		var es []mfa.Event
		for _, id := range ids {
			es = append(es, mfa.Event{ID: id, UserID: "u", Type: mfa.EventLoginSuccess, At: now})
		}
		if err := ev.AddEvents(ctx, es); err != nil {
			t.Fatal(err)
		}
	}
	// take plays a writer that took n numbers at now and has not inserted
	// yet; land inserts its events with them.
	take := func(n int64) int64 {
		t.Helper()
		var c struct {
			Seq int64 `bson:"seq"`
		}
		if err := raw.Collection("counters").FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: "events"}},
			bson.D{{Key: "$inc", Value: bson.D{{Key: "seq", Value: n}}}},
			options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&c); err != nil {
			t.Fatal(err)
		}
		return c.Seq - n + 1
	}
	land := func(first int64, takenAt time.Time, ids ...string) {
		t.Helper()
		for i, id := range ids {
			if _, err := raw.Collection("events").InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "user_id", Value: "u"},
				{Key: "type", Value: mfa.EventLoginSuccess}, {Key: "at", Value: takenAt}, {Key: "expires_at", Value: takenAt.Add(time.Hour)},
				{Key: "seq", Value: first + int64(i)}, {Key: "seq_at", Value: takenAt}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	feed := func(after int64) ([]string, int64) {
		t.Helper()
		es, next, err := ev.Feed(ctx, mfa.EventQuery{After: after, Limit: 100, SettledBefore: now.Add(-5 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range es {
			ids = append(ids, e.ID)
		}
		return ids, next
	}
	want := func(got []string, want ...string) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("feed %q, want %q", got, want)
		}
	}

	add("a", "b")       // 1, 2
	late := take(2)     // 3, 4: in flight
	add("e")            // 5
	ids, cur := feed(0) // stops before 3
	want(ids, "a", "b")
	if ids, next := feed(cur); len(ids) != 0 || next != cur {
		t.Fatalf("behind the gap: %q, next %d; want nothing and the same cursor %d", ids, next, cur)
	}
	land(late, now, "c", "d") // the late writer lands
	ids, cur = feed(cur)
	want(ids, "c", "d", "e")

	take(1)  // 6: a writer that took a number and failed
	add("g") // 7
	ids, next := feed(cur)
	want(ids) // not settled yet
	now = now.Add(5*time.Minute + time.Second)
	ids, next = feed(next) // 7 was taken over 5 minutes ago: 6 can no longer come
	want(ids, "g")
	if ids, _ := feed(next); len(ids) != 0 {
		t.Fatalf("after the end: %q", ids)
	}
	// Filters apply within the settled range; the cursor still moves on.
	es, n, err := ev.Feed(ctx, mfa.EventQuery{After: 0, Limit: 100, Type: "nope", SettledBefore: now.Add(-5 * time.Minute)})
	if err != nil || len(es) != 0 || n != 7 {
		t.Fatalf("filtered feed: %d events, next %d, %v; want none and 7", len(es), n, err)
	}
	// A retried batch keeps the numbers of what landed the first time (g
	// stays 7); the number it took again for g (8) is a gap that settles.
	add("g", "h")
	ids, _ = feed(7)
	want(ids)
	now = now.Add(5*time.Minute + time.Second)
	ids, _ = feed(7)
	want(ids, "h")
}
