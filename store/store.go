// Package store persists stepup's state in MongoDB (or the embedded
// MongoDB-compatible server) through the official v2 driver. It implements
// the interfaces that mfa and tokens declare, encrypts secrets at rest, and
// translates driver errors into their sentinels here and only here.
//
// It relies on MongoDB's single-document guarantees, which the embedded
// engine honours too once patched (third_party/ferretdb/PATCHES.md): a
// unique insert makes a thing single-use; a conditional update or
// findOneAndUpdate of the fields a change concerns makes counters, budgets,
// compare-and-set and revocation atomic, and keeps unrelated changes from
// conflicting. There are no multi-document transactions. Every hot lookup is
// by _id or an indexed equality (username, user_id). See DESIGN.md,
// "Storage".
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Collection names.
const (
	colUsers     = "users"
	colUsedOld   = "mfa_tokens" // mfa_pending tokens' documents before they moved to budgets
	colBudgets   = "budgets"
	colKeys      = "keys"
	colSessions  = "sessions"
	colRotations = "rotations"
	colCeremony  = "webauthn_ceremonies"
	colCreds     = "webauthn_credentials"
	colRecovery  = "recovery_used"
	colEvents    = "events"
	colCounters  = "counters"
	colDPoP      = "dpop_proofs" // DPoP proofs seen, by key and jti, until they expire
	colDevices   = "devices"     // remembered devices (DPoP keys), by mfa.DeviceID
)

// expiring lists the collections whose documents carry expires_at and are
// deleted after it, by a TTL index or by the sweeper.
var expiring = []string{colBudgets, colSessions, colRotations, colCeremony, colEvents, colDPoP, colDevices}

// Config is what Open needs.
type Config struct {
	URI       string // mongodb://…; the database is the URI's path, default "stepup"
	Database  string // overrides the URI's database
	MasterKey []byte // 32 bytes, AES-256-GCM key for secrets at rest
	Logger    *slog.Logger
	Monitor   *event.CommandMonitor // optional, counts round trips in tests and benchmarks
	Now       func() time.Time
	// EventRetention is how long a security event is kept (deleted after
	// it by the TTL index or the sweeper); DefaultEventRetention when zero.
	EventRetention time.Duration
}

// DB is an open database.
type DB struct {
	client *mongo.Client
	db     *mongo.Database
	seal   *sealer
	log    *slog.Logger
	now    func() time.Time

	eventRetention time.Duration

	// ttl is false when the server lacks TTL indexes (FerretDB); then
	// Sweep deletes expired documents.
	ttl bool

	stopSweep context.CancelFunc
	sweepDone sync.WaitGroup
}

// Open connects, checks the server answers, and creates the indexes.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	seal, err := newSealer(cfg.MasterKey)
	if err != nil {
		return nil, err
	}
	name := cfg.Database
	if name == "" {
		name = databaseFromURI(cfg.URI)
	}
	opts := options.Client().ApplyURI(cfg.URI).
		SetServerSelectionTimeout(5 * time.Second).
		SetTimeout(10 * time.Second).
		SetBSONOptions(&options.BSONOptions{UseLocalTimeZone: false})
	if cfg.Monitor != nil {
		opts.SetMonitor(cfg.Monitor)
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, opError(err, "connect")
	}
	if cfg.EventRetention <= 0 {
		cfg.EventRetention = DefaultEventRetention
	}
	db := &DB{client: client, db: client.Database(name), seal: seal, log: cfg.Logger, now: cfg.Now, eventRetention: cfg.EventRetention}
	if err := db.Ping(ctx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	if err := db.createIndexes(ctx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	return db, nil
}

// Ping checks the server answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.client.Ping(ctx, nil); err != nil {
		return opError(err, "ping")
	}
	return nil
}

// Close stops the sweeper and disconnects.
func (db *DB) Close(ctx context.Context) error {
	if db.stopSweep != nil {
		db.stopSweep()
		db.sweepDone.Wait()
	}
	if err := db.client.Disconnect(ctx); err != nil {
		return opError(err, "disconnect")
	}
	return nil
}

// createIndexes declares a TTL index on expires_at for every expiring
// collection, and the indexes of the lookups that are not by _id. The
// embedded engine answers TTL indexes with NotImplemented; then the
// sweeper runs instead.
func (db *DB) createIndexes(ctx context.Context) error {
	db.ttl = true
	for _, name := range expiring {
		ttl := mongo.IndexModel{
			Keys:    bson.D{{Key: "expires_at", Value: 1}},
			Options: options.Index().SetExpireAfterSeconds(0).SetName("expires_at_ttl"),
		}
		_, err := db.db.Collection(name).Indexes().CreateOne(ctx, ttl)
		if err == nil {
			continue
		}
		if !isNotImplemented(err) {
			return opError(err, "create TTL index on %s", name)
		}
		// Without TTL indexes (the embedded engine) the sweeper deletes
		// expired documents. It cannot use an index on expires_at there
		// (range filters are not pushed down), so none is kept: it would
		// only cost every write of these collections an index update.
		db.ttl = false
	}
	indexes := []struct {
		coll  string
		model mongo.IndexModel
	}{
		{colUsers, mongo.IndexModel{Keys: bson.D{{Key: "username", Value: 1}}, Options: options.Index().SetName("username").SetUnique(true)}},
		{colSessions, mongo.IndexModel{Keys: bson.D{{Key: "user_id", Value: 1}}, Options: options.Index().SetName("user_id")}},
		// An mfa_pending token's user (PendingTokens.EndFor).
		{colBudgets, mongo.IndexModel{Keys: bson.D{{Key: "sub", Value: 1}}, Options: options.Index().SetName("sub")}},
		{colEvents, mongo.IndexModel{Keys: bson.D{{Key: "user_id", Value: 1}}, Options: options.Index().SetName("user_id")}},
		// The feed's order (Events.Feed); not unique, as events written
		// before it existed have no number.
		{colEvents, mongo.IndexModel{Keys: bson.D{{Key: "seq", Value: 1}}, Options: options.Index().SetName("seq")}},
		{colDevices, mongo.IndexModel{Keys: bson.D{{Key: "user_id", Value: 1}}, Options: options.Index().SetName("user_id")}},
	}
	for _, ix := range indexes {
		if _, err := db.db.Collection(ix.coll).Indexes().CreateOne(ctx, ix.model); err != nil {
			return opError(err, "create index on %s", ix.coll)
		}
	}
	return db.migrate(ctx)
}

// TTL reports whether the server deletes expired documents itself.
func (db *DB) TTL() bool { return db.ttl }

// StartSweeper deletes expired documents every interval when the server has
// no TTL indexes. It is a no-op on MongoDB.
func (db *DB) StartSweeper(every time.Duration) {
	if db.ttl || db.stopSweep != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	db.stopSweep = cancel
	db.sweepDone.Add(1)
	go func() {
		defer db.sweepDone.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if n, err := db.Sweep(ctx); err != nil && ctx.Err() == nil {
					db.log.Warn("sweep expired documents", "err", err)
				} else if n > 0 {
					db.log.Debug("swept expired documents", "count", n)
				}
			}
		}
	}()
}

// Sweep deletes documents whose expires_at has passed and returns how many.
// It reads the ids first and deletes them by _id in batches, so no write
// holds a collection while a scan runs (the embedded engine serialises the
// writes of one collection; see PATCHES.md).
func (db *DB) Sweep(ctx context.Context) (int64, error) {
	var total int64
	now := db.now()
	for _, name := range expiring {
		coll := db.db.Collection(name)
		expired := bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: now}}}}
		cur, err := coll.Find(ctx, expired, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			return total, opError(err, "sweep %s", name)
		}
		var ids []struct {
			ID any `bson:"_id"`
		}
		err = cur.All(ctx, &ids)
		if err != nil {
			return total, opError(err, "sweep %s", name)
		}
		for len(ids) > 0 {
			n := min(len(ids), 500)
			batch := make(bson.A, n)
			for i := range n {
				batch[i] = ids[i].ID
			}
			ids = ids[n:]
			res, err := coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: batch}}}, expired[0]})
			if err != nil {
				return total, opError(err, "sweep %s", name)
			}
			total += res.DeletedCount
		}
	}
	return total, nil
}

// Drop deletes the whole database. Tests use it.
func (db *DB) Drop(ctx context.Context) error {
	return db.db.Drop(ctx)
}

func databaseFromURI(uri string) string {
	// Not net/url: a Unix socket's host is percent-encoded
	// (mongodb://%2Fpath%2Fstore.sock/db), which url.Parse refuses.
	_, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return "stepup"
	}
	rest, _, _ = strings.Cut(rest, "?")
	if _, path, ok := strings.Cut(rest, "/"); ok && path != "" {
		if name, err := url.PathUnescape(path); err == nil {
			return name
		}
	}
	return "stepup"
}

func isNotImplemented(err error) bool {
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return ce.Code == 238 || ce.Name == "NotImplemented"
	}
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(238)
}

// isDuplicate reports a unique-key violation. FerretDB reports a duplicate
// caused by $set with code 1, not 11000; inserts use 11000 everywhere.
func isDuplicate(err error) bool {
	return mongo.IsDuplicateKeyError(err)
}

// unavailableError marks a failure to reach the server (network error,
// timeout, no server selectable). api answers it with 503 by asking for the
// Unavailable method, without importing this package.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string     { return e.err.Error() }
func (e *unavailableError) Unwrap() error     { return e.err }
func (e *unavailableError) Unavailable() bool { return true }

// opError adds context to a driver error and marks connectivity failures.
func opError(err error, format string, args ...any) error {
	wrapped := fmt.Errorf("store: "+format+": %w", append(args, err)...)
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, mongo.ErrClientDisconnected) || isSelectionError(err) {
		return &unavailableError{wrapped}
	}
	return wrapped
}

func isSelectionError(err error) bool {
	return err != nil && strings.Contains(err.Error(), "server selection error")
}
