package store

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// migrate brings documents written by earlier versions to the current
// shape. It is idempotent and runs at every start.
//
// Before the store relied on atomic updates, a user's factors were an
// array rewritten whole with a revision compare-and-set; now they are a map
// keyed by factor id, changed one field at a time.
func (db *DB) migrate(ctx context.Context) error {
	cur, err := db.users().Find(ctx, bson.D{{Key: "factors", Value: bson.D{{Key: "$type", Value: "array"}}}})
	if err != nil {
		return opError(err, "migrate: find users with factor arrays")
	}
	var old []struct {
		ID      string      `bson:"_id"`
		Factors []factorDoc `bson:"factors"`
	}
	if err := cur.All(ctx, &old); err != nil {
		return opError(err, "migrate: read users")
	}
	for _, u := range old {
		m := bson.D{}
		for _, f := range u.Factors {
			m = append(m, bson.E{Key: f.ID, Value: f})
		}
		_, err := db.users().UpdateOne(ctx,
			bson.D{{Key: "_id", Value: u.ID}, {Key: "factors", Value: bson.D{{Key: "$type", Value: "array"}}}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "factors", Value: m}, {Key: "nfactors", Value: int64(len(u.Factors))},
				{Key: "nconfirmed", Value: confirmedCount(u.Factors)},
				{Key: "mfa_fail", Value: int64(0)}}}, {Key: "$unset", Value: bson.D{{Key: "rev", Value: ""}}}})
		if err != nil {
			return opError(err, "migrate user %s", u.ID)
		}
	}
	if len(old) > 0 {
		db.log.Info(fmt.Sprintf("migrated %d users to per-factor documents", len(old)))
	}
	if err := db.migrateConfirmedCount(ctx); err != nil {
		return err
	}
	// mfa_pending tokens' documents moved to the budgets collection, where
	// every token has one from its issue; the old ones (minutes of life
	// left at most) are dropped with their collection.
	if err := db.db.Collection(colUsedOld).Drop(ctx); err != nil {
		return opError(err, "migrate: drop %s", colUsedOld)
	}
	return nil
}

// migrateConfirmedCount sets nconfirmed on users written before it existed.
func (db *DB) migrateConfirmedCount(ctx context.Context) error {
	missing := bson.D{{Key: "nconfirmed", Value: bson.D{{Key: "$exists", Value: false}}}}
	cur, err := db.users().Find(ctx, missing)
	if err != nil {
		return opError(err, "migrate: find users without nconfirmed")
	}
	var docs []userDoc
	if err := cur.All(ctx, &docs); err != nil {
		return opError(err, "migrate: read users")
	}
	for _, d := range docs {
		n := int64(0)
		for _, f := range d.Factors {
			if f.Confirmed {
				n++
			}
		}
		filter := append(bson.D{{Key: "_id", Value: d.ID}}, missing...)
		if _, err := db.users().UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "nconfirmed", Value: n}}}}); err != nil {
			return opError(err, "migrate user %s", d.ID)
		}
	}
	return nil
}

func confirmedCount(fs []factorDoc) int64 {
	n := int64(0)
	for _, f := range fs {
		if f.Confirmed {
			n++
		}
	}
	return n
}
