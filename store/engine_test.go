package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/stepup-auth/stepup/store/storetest"
)

// The tests in this file speak to the server with the driver alone: they
// check the MongoDB semantics the store relies on, which the unpatched
// embedded engine lacked (third_party/ferretdb/PATCHES.md).

// rawDB opens a fresh database through the store (so its indexes exist)
// and returns a plain driver handle on it.
func rawDB(t *testing.T) *mongo.Database {
	t.Helper()
	cfg := storetest.Config(t)
	storetest.Open(t, cfg)
	client, err := mongo.Connect(options.Client().ApplyURI(cfg.URI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client.Database(cfg.Database)
}

// TestConditionalUpdateOneWinner: 50 concurrent conditional
// findOneAndUpdate on one document, 20 rounds: exactly one winner each.
// Unpatched FerretDB v1.24.2 had several winners in 49–50 of 50 rounds.
func TestConditionalUpdateOneWinner(t *testing.T) {
	coll := rawDB(t).Collection("cas")
	ctx := context.Background()
	for round := range 20 {
		id := fmt.Sprint("doc", round)
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "state", Value: "open"}}); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 50 {
			wg.Go(func() {
				<-start
				err := coll.FindOneAndUpdate(ctx,
					bson.D{{Key: "_id", Value: id}, {Key: "state", Value: "open"}},
					bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: "taken"}, {Key: "by", Value: i}}}}).Err()
				switch err {
				case nil:
					wins.Add(1)
				case mongo.ErrNoDocuments:
				default:
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if got := wins.Load(); got != 1 {
			t.Fatalf("round %d: %d winners, want exactly 1", round, got)
		}
	}
}

// TestIncNeverLost: 4 clients × 50 $inc on one document end at exactly 200
// (unpatched: 44–104).
func TestIncNeverLost(t *testing.T) {
	coll := rawDB(t).Collection("inc")
	ctx := context.Background()
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "n"}, {Key: "n", Value: int64(0)}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			<-start
			for range 50 {
				if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "n"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	var doc struct{ N int64 }
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "n"}}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.N != 200 {
		t.Fatalf("n = %d after 4×50 $inc, want 200", doc.N)
	}
}

// TestHotQueriesUseIndexes runs explain on every query shape of a hot path
// and fails on a collection scan: "SCAN" in the embedded engine's SQLite
// plan, COLLSCAN on MongoDB.
func TestHotQueriesUseIndexes(t *testing.T) {
	db := rawDB(t)
	ctx := context.Background()
	now := time.Now().UTC()
	// Enough documents that a scan and a search differ, in every collection.
	for _, c := range []string{"users", "budgets", "mfa_tokens", "sessions", "rotations", "webauthn_ceremonies", "recovery_used", "events"} {
		var docs []any
		for i := range 50 {
			docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprint(c, i)}, {Key: "user_id", Value: fmt.Sprint("u", i)},
				{Key: "username", Value: fmt.Sprint("name", i)}, {Key: "expires_at", Value: now}})
		}
		if _, err := db.Collection(c).InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	live := bson.D{{Key: "$exists", Value: false}}
	gates := bson.A{bson.D{{Key: "fail", Value: bson.D{{Key: "$gte", Value: 0}, {Key: "$lt", Value: 5}}}},
		bson.D{{Key: "fail", Value: bson.D{{Key: "$exists", Value: false}}}}}
	shapes := []struct {
		name, coll string
		filter     bson.D
	}{
		{"UserByID", "users", bson.D{{Key: "_id", Value: "users1"}}},
		{"UserByName", "users", bson.D{{Key: "username", Value: "name1"}}},
		{"SpendAttempt", "users", bson.D{{Key: "_id", Value: "users1"}, {Key: "$or", Value: gates}}},
		{"UseStep", "users", bson.D{{Key: "_id", Value: "users1"}, {Key: "factors.f.kind", Value: "totp"},
			{Key: "factors.f.last_step", Value: bson.D{{Key: "$lt", Value: 9}}}}},
		{"BudgetSpend", "budgets", bson.D{{Key: "_id", Value: "budgets1"}, {Key: "$or", Value: gates}}},
		{"TokenSpend", "mfa_tokens", bson.D{{Key: "_id", Value: "mfa_tokens1"}, {Key: "$or", Value: gates}, {Key: "used", Value: live}}},
		{"TokenConsume", "mfa_tokens", bson.D{{Key: "_id", Value: "mfa_tokens1"}, {Key: "used", Value: live}}},
		{"Session", "sessions", bson.D{{Key: "_id", Value: "sessions1"}}},
		{"RotateRefresh", "sessions", bson.D{{Key: "_id", Value: "sessions1"}, {Key: "revoked_at", Value: live},
			{Key: "expires_at", Value: bson.D{{Key: "$gt", Value: now}}}, {Key: "refresh", Value: "h"}}},
		{"UserSessions", "sessions", bson.D{{Key: "user_id", Value: "u1"}, {Key: "_id", Value: bson.D{{Key: "$ne", Value: "x"}}},
			{Key: "revoked_at", Value: live}}},
		{"SessionsOfUser", "sessions", bson.D{{Key: "user_id", Value: "u1"}}}, // list, and delete with the account
		{"Rotated", "rotations", bson.D{{Key: "_id", Value: "rotations1"}}},
		{"TakeCeremony", "webauthn_ceremonies", bson.D{{Key: "_id", Value: "webauthn_ceremonies1"}, {Key: "kind", Value: "mfa"},
			{Key: "user_id", Value: "u1"}, {Key: "binding", Value: "j"}, {Key: "expires_at", Value: bson.D{{Key: "$gt", Value: now}}}}},
		{"RecoveryCount", "recovery_used", bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{"recovery_used1", "recovery_used2"}}}}}},
		{"Events", "events", bson.D{{Key: "user_id", Value: "u1"}}},
		{"SweepBatch", "sessions", bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{"sessions1", "sessions2"}}}},
			{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: now}}}}},
	}
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			var res bson.M
			err := db.RunCommand(ctx, bson.D{{Key: "explain", Value: bson.D{{Key: "find", Value: s.coll}, {Key: "filter", Value: s.filter}}}}).Decode(&res)
			if err != nil {
				t.Fatal(err)
			}
			plan := fmt.Sprint(res["queryPlanner"])
			t.Logf("%s: %s", s.name, plan)
			if strings.Contains(plan, "detail=SCAN") || strings.Contains(plan, "COLLSCAN") {
				t.Fatalf("%s on %s scans the collection:\n%s", s.filter, s.coll, plan)
			}
			if !strings.Contains(plan, "SEARCH") && !strings.Contains(plan, "IXSCAN") && !strings.Contains(plan, "IDHACK") &&
				!strings.Contains(plan, "EXPRESS") {
				t.Fatalf("%s on %s: no index use in the plan:\n%s", s.filter, s.coll, plan)
			}
		})
	}
}
