// Copyright 2021 FerretDB Inc.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

package ferretdb_test

// stepup patch: end-to-end tests and benchmark of the stepup patches (see PATCHES.md),
// through a real in-process FerretDB with the SQLite backend and the MongoDB Go driver.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// stepupClients is the number of separate clients (connection pools) used by the race tests,
// so that concurrent operations come through different client connections.
const stepupClients = 5

// stepupStart starts FerretDB with the SQLite backend in a new directory
// and returns the given number of connected clients' databases.
func stepupStart(tb testing.TB, listener ferretdb.ListenerConfig, n int) []*mongo.Database {
	tb.Helper()

	dir := tb.TempDir()

	if listener.TCP == "" && listener.Unix == "" {
		listener.TCP = "127.0.0.1:0"
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  listener,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
	})
	require.NoError(tb, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)

	go func() { done <- f.Run(ctx) }()

	uri := f.MongoDBURI()

	var dbs []*mongo.Database

	for range n {
		client, err := mongo.Connect(ctx, options.Client().ApplyURI(uri))
		require.NoError(tb, err)

		dbs = append(dbs, client.Database("stepup"))
	}

	tb.Cleanup(func() {
		for _, db := range dbs {
			_ = db.Client().Disconnect(context.Background())
		}

		cancel()
		require.NoError(tb, <-done)
	})

	return dbs
}

// bd returns bson.D of the given key, value pairs.
func bd(pairs ...any) bson.D {
	res := make(bson.D, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		res = append(res, bson.E{Key: pairs[i].(string), Value: pairs[i+1]})
	}

	return res
}

// stepupRun runs fn(i) in n goroutines started at once and waits for them.
func stepupRun(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})

	for i := range n {
		wg.Add(1)

		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}

	close(start)
	wg.Wait()
}

// TestStepupConditionalUpdateRace checks that of 50 concurrent conditional updates of one document
// exactly one wins, for findOneAndUpdate and for updateOne, 20 rounds each.
func TestStepupConditionalUpdateRace(t *testing.T) {
	ctx := context.Background()
	dbs := stepupStart(t, ferretdb.ListenerConfig{}, stepupClients)
	colls := make([]*mongo.Collection, len(dbs))

	for i, db := range dbs {
		colls[i] = db.Collection("race")
	}

	const rounds, workers = 20, 50

	var famWinners, updWinners []int64

	defer func() {
		t.Logf("findOneAndUpdate winners per round: %v", famWinners)
		t.Logf("updateOne modified per round: %v", updWinners)
	}()

	for round := range rounds {
		id := fmt.Sprintf("fam-%d", round)
		_, err := colls[0].InsertOne(ctx, bd("_id", id, "state", "open"))
		require.NoError(t, err)

		var winners atomic.Int32

		stepupRun(workers, func(i int) {
			err := colls[i%len(colls)].FindOneAndUpdate(ctx,
				bd("_id", id, "state", "open"),
				bd("$set", bd("state", "taken", "by", i)),
			).Err()

			switch {
			case err == nil:
				winners.Add(1)
			case errors.Is(err, mongo.ErrNoDocuments):
			default:
				t.Error(err)
			}
		})

		famWinners = append(famWinners, int64(winners.Load()))
		assert.Equal(t, int32(1), winners.Load(), "findOneAndUpdate round %d", round)

		id = fmt.Sprintf("upd-%d", round)
		_, err = colls[0].InsertOne(ctx, bd("_id", id, "state", "open"))
		require.NoError(t, err)

		var modified atomic.Int64

		stepupRun(workers, func(i int) {
			res, err := colls[i%len(colls)].UpdateOne(ctx,
				bd("_id", id, "state", "open"),
				bd("$set", bd("state", "taken", "by", i)),
			)
			if !assert.NoError(t, err) {
				return
			}

			modified.Add(res.ModifiedCount)
		})

		updWinners = append(updWinners, modified.Load())
		assert.Equal(t, int64(1), modified.Load(), "updateOne round %d", round)
	}
}

// TestStepupIncRace checks that 4 goroutines doing 50 $inc each end at exactly 200.
func TestStepupIncRace(t *testing.T) {
	ctx := context.Background()
	dbs := stepupStart(t, ferretdb.ListenerConfig{}, 4)

	_, err := dbs[0].Collection("inc").InsertOne(ctx, bd("_id", "counter", "n", int32(0)))
	require.NoError(t, err)

	stepupRun(4, func(i int) {
		c := dbs[i].Collection("inc")

		for range 50 {
			_, err := c.UpdateOne(ctx, bd("_id", "counter"), bd("$inc", bd("n", int32(1))))
			assert.NoError(t, err)
		}
	})

	var res struct {
		N int32 `bson:"n"`
	}
	require.NoError(t, dbs[0].Collection("inc").FindOne(ctx, bd("_id", "counter")).Decode(&res))
	t.Logf("n after 4x50 $inc: %d", res.N)
	assert.Equal(t, int32(200), res.N)
}

// TestStepupUpsertDeleteRace checks concurrent upserts by a non-_id filter (one document)
// and concurrent findOneAndDelete / deleteOne (one winner).
func TestStepupUpsertDeleteRace(t *testing.T) {
	ctx := context.Background()
	dbs := stepupStart(t, ferretdb.ListenerConfig{}, stepupClients)

	for round := range 5 {
		user := fmt.Sprintf("u%d", round)

		stepupRun(50, func(i int) {
			_, err := dbs[i%len(dbs)].Collection("ups").UpdateOne(ctx,
				bd("user", user),
				bd("$setOnInsert", bd("by", i)),
				options.Update().SetUpsert(true),
			)
			assert.NoError(t, err)
		})

		n, err := dbs[0].Collection("ups").CountDocuments(ctx, bd("user", user))
		require.NoError(t, err)
		assert.Equal(t, int64(1), n, "upsert round %d", round)

		id := fmt.Sprintf("del-%d", round)
		_, err = dbs[0].Collection("del").InsertMany(ctx, []any{
			bd("_id", id+"a", "state", "open"),
			bd("_id", id+"b", "state", "open"),
		})
		require.NoError(t, err)

		var fadWinners atomic.Int32
		var deleted atomic.Int64

		stepupRun(50, func(i int) {
			c := dbs[i%len(dbs)].Collection("del")

			if i%2 == 0 {
				err := c.FindOneAndDelete(ctx, bd("_id", id+"a", "state", "open")).Err()
				if err == nil {
					fadWinners.Add(1)
				} else if !errors.Is(err, mongo.ErrNoDocuments) {
					t.Error(err)
				}

				return
			}

			res, err := c.DeleteOne(ctx, bd("_id", id+"b", "state", "open"))
			if assert.NoError(t, err) {
				deleted.Add(res.DeletedCount)
			}
		})

		assert.Equal(t, int32(1), fadWinners.Load(), "findOneAndDelete round %d", round)
		assert.Equal(t, int64(1), deleted.Load(), "deleteOne round %d", round)
	}
}

// TestStepupLockDropRename checks that writers holding the collection lock
// and concurrent drop / rename / dropDatabase do not deadlock.
func TestStepupLockDropRename(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	dbs := stepupStart(t, ferretdb.ListenerConfig{}, stepupClients)

	var stop atomic.Bool

	stepupRun(21, func(i int) {
		db := dbs[i%len(dbs)]

		if i == 20 {
			defer stop.Store(true)

			for j := range 30 {
				_ = db.Collection("lock").Drop(ctx)
				_, _ = db.Collection("lock").InsertOne(ctx, bd("_id", "x", "n", int32(0)))
				_ = db.Client().Database("admin").RunCommand(ctx, bd(
					"renameCollection", "stepup.lock", "to", fmt.Sprintf("stepup.lock%d", j), "dropTarget", true,
				)).Err()
				_ = db.Collection(fmt.Sprintf("lock%d", j)).Drop(ctx)

				if j%10 == 9 {
					_ = db.Drop(ctx)
				}
			}

			return
		}

		c := db.Collection("lock")

		for !stop.Load() && ctx.Err() == nil {
			switch i % 4 {
			case 0:
				_, _ = c.UpdateOne(ctx, bd("_id", "x"), bd("$inc", bd("n", int32(1))), options.Update().SetUpsert(true))
			case 1:
				_ = c.FindOneAndUpdate(ctx, bd("_id", "x"), bd("$inc", bd("n", int32(1)))).Err()
			case 2:
				_, _ = c.DeleteOne(ctx, bd("_id", "y"))
			case 3:
				_, _ = c.InsertOne(ctx, bd("n", int32(i)))
			}
		}
	})

	require.NoError(t, ctx.Err(), "deadlock?")

	// the server still works
	_, err := dbs[0].Collection("after").InsertOne(context.Background(), bd("_id", "ok"))
	require.NoError(t, err)
}

// TestStepupSecondaryIndex checks find / count / update / delete / aggregate with the secondary index pushdown
// when the indexed field is an array in some documents, and explain's filterPushdown and plan.
func TestStepupSecondaryIndex(t *testing.T) {
	ctx := context.Background()
	db := stepupStart(t, ferretdb.ListenerConfig{}, 1)[0]
	c := db.Collection("sec")

	_, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bd("user_id", 1)})
	require.NoError(t, err)

	_, err = c.InsertMany(ctx, []any{
		bd("_id", "1", "user_id", "u1", "kind", "totp"),
		bd("_id", "2", "user_id", bson.A{"u0", "u1"}, "kind", "totp"),
		bd("_id", "3", "user_id", bson.A{"u2", "u3"}, "kind", "totp"),
		bd("_id", "4", "user_id", "u2", "kind", "totp"),
		bd("_id", "5", "user_id", "u1", "kind", "webauthn"),
		bd("_id", "6", "user_id", bson.A{"u1"}, "kind", "webauthn"),
		bd("_id", "7", "kind", "totp"),
	})
	require.NoError(t, err)

	filter := bd("user_id", "u1", "kind", "totp")

	ids := func(cur *mongo.Cursor, err error) []string {
		require.NoError(t, err)

		var docs []struct {
			ID string `bson:"_id"`
		}
		require.NoError(t, cur.All(ctx, &docs))

		var res []string
		for _, d := range docs {
			res = append(res, d.ID)
		}

		return res
	}

	opts := options.Find().SetSort(bd("_id", 1))
	assert.Equal(t, []string{"1", "2"}, ids(c.Find(ctx, filter, opts)))
	assert.Equal(t, []string{"1", "2", "5", "6"}, ids(c.Find(ctx, bd("user_id", "u1"), opts)))
	assert.Equal(t, []string{"1", "2"}, ids(c.Aggregate(ctx, bson.A{
		bd("$match", filter), bd("$sort", bd("_id", 1)),
	})))

	n, err := c.CountDocuments(ctx, filter)
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)

	var explain bson.M
	err = db.RunCommand(ctx, bd("explain", bd("find", "sec", "filter", filter))).Decode(&explain)
	require.NoError(t, err)
	assert.Equal(t, true, explain["filterPushdown"])
	assert.Contains(t, fmt.Sprint(explain["queryPlanner"]), "MULTI-INDEX OR")
	assert.Contains(t, fmt.Sprint(explain["queryPlanner"]), "USING INDEX")
	assert.NotContains(t, fmt.Sprint(explain["queryPlanner"]), "SCAN")

	err = db.RunCommand(ctx, bd("explain", bd("find", "sec", "filter", bd("kind", "totp", "_id", "2")))).Decode(&explain)
	require.NoError(t, err)
	assert.Equal(t, true, explain["filterPushdown"])
	assert.Contains(t, fmt.Sprint(explain["queryPlanner"]), "USING INDEX")

	res, err := c.UpdateMany(ctx, filter, bd("$set", bd("seen", true)))
	require.NoError(t, err)
	assert.Equal(t, int64(2), res.MatchedCount)

	dres, err := c.DeleteMany(ctx, bd("user_id", "u1", "kind", "webauthn"))
	require.NoError(t, err)
	assert.Equal(t, int64(2), dres.DeletedCount)

	assert.Equal(t, []string{"1", "2", "3", "4", "7"}, ids(c.Find(ctx, bd(), opts)))
	assert.Equal(t, []string{"1", "2"}, ids(c.Find(ctx, bd("seen", true), opts)))
}

// TestStepupPrivateFiles checks that the Unix socket is 0600 as soon as ferretdb.New returns
// and that the SQLite files are 0600.
func TestStepupPrivateFiles(t *testing.T) {
	ctx := context.Background()

	// 0700, as the caller must guarantee; lowercase because driver v1 lowercases unix socket paths
	// (v2 does not); both drivers need the path to end with "sock"
	sockDir, err := os.MkdirTemp("", "stepupsock")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })

	sock := filepath.Join(sockDir, "ferretdb.sock")
	dataDir := t.TempDir()

	fi, err := os.Stat(sockDir)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o700), fi.Mode().Perm())

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{Unix: sock},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler:   "sqlite",
		SQLiteURL: "file:" + dataDir + "/",
	})
	require.NoError(t, err)

	fi, err = os.Stat(sock)
	require.NoError(t, err)
	assert.Equal(t, fs.ModeSocket, fi.Mode().Type())
	assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error)

	go func() { done <- f.Run(runCtx) }()

	client, err := mongo.Connect(ctx, options.Client().ApplyURI(f.MongoDBURI()))
	require.NoError(t, err)

	_, err = client.Database("stepup").Collection("c").InsertOne(ctx, bd("_id", "x"))
	require.NoError(t, err)

	entries, err := os.ReadDir(dataDir)
	require.NoError(t, err)

	var names []string

	for _, e := range entries {
		fi, err := e.Info()
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm(), e.Name())

		names = append(names, e.Name())
	}

	assert.Contains(t, strings.Join(names, " "), "stepup.sqlite-wal")

	require.NoError(t, client.Disconnect(ctx))
	cancel()
	require.NoError(t, <-done)
}

// BenchmarkStepupFindOneByID measures findOne({_id}) at 1k and 10k documents.
func BenchmarkStepupFindOneByID(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("docs=%d", n), func(b *testing.B) {
			ctx := context.Background()
			c := stepupStart(b, ferretdb.ListenerConfig{}, 1)[0].Collection("bench")

			docs := make([]any, n)
			for i := range docs {
				docs[i] = bd("_id", fmt.Sprintf("user-%06d", i), "user_id", fmt.Sprintf("u%d", i%100), "name", strings.Repeat("x", 100), "n", int32(i))
			}

			_, err := c.InsertMany(ctx, docs)
			require.NoError(b, err)

			b.ResetTimer()

			for i := 0; i < b.N; i++ {
				id := fmt.Sprintf("user-%06d", (i*7919)%n)
				if err := c.FindOne(ctx, bd("_id", id)).Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStepupFindByIndexedField measures find({user_id, kind}) returning 10 of 10k documents,
// with a single-field index on user_id.
func BenchmarkStepupFindByIndexedField(b *testing.B) {
	ctx := context.Background()
	c := stepupStart(b, ferretdb.ListenerConfig{}, 1)[0].Collection("bench")

	_, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bd("user_id", 1)})
	require.NoError(b, err)

	const n = 10000

	docs := make([]any, n)
	for i := range docs {
		docs[i] = bd(
			"_id", fmt.Sprintf("f-%06d", i),
			"user_id", fmt.Sprintf("u%d", i%1000),
			"kind", "totp",
			"name", strings.Repeat("x", 100),
		)
	}

	_, err = c.InsertMany(ctx, docs)
	require.NoError(b, err)

	b.ResetTimer()

	for i := 0; i < b.N; i++ {
		cur, err := c.Find(ctx, bd("user_id", fmt.Sprintf("u%d", (i*7919)%1000), "kind", "totp"))
		require.NoError(b, err)

		var res []bson.M
		require.NoError(b, cur.All(ctx, &res))
		require.Len(b, res, 10)
	}
}
