package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/stepup-auth/stepup/mfa"
)

type claimDoc struct {
	ID        string    `bson:"_id"`
	At        time.Time `bson:"at"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// Claims is a set of single-use keys in one collection; it implements
// mfa.Claims.
type Claims struct {
	db   *DB
	coll *mongo.Collection
}

// Claim inserts id; a duplicate key is mfa.ErrUsed.
func (c *Claims) Claim(ctx context.Context, id string, expires time.Time) error {
	_, err := c.coll.InsertOne(ctx, claimDoc{ID: id, At: c.db.now().UTC(), ExpiresAt: expires.UTC()})
	if isDuplicate(err) {
		return mfa.ErrUsed
	}
	if err != nil {
		return opError(err, "claim %s", c.coll.Name())
	}
	return nil
}

// AnyClaimed reports whether any of ids is claimed.
func (c *Claims) AnyClaimed(ctx context.Context, ids ...string) (bool, error) {
	filter := bson.M{"_id": ids[0]}
	if len(ids) > 1 {
		filter = bson.M{"_id": bson.M{"$in": ids}}
	}
	err := c.coll.FindOne(ctx, filter).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, opError(err, "find claims in %s", c.coll.Name())
	}
	return true, nil
}

// CountClaimed counts how many of ids are claimed.
func (c *Claims) CountClaimed(ctx context.Context, ids ...string) (int, error) {
	n, err := c.coll.CountDocuments(ctx, bson.M{"_id": bson.M{"$in": ids}})
	if err != nil {
		return 0, opError(err, "count claims in %s", c.coll.Name())
	}
	return int(n), nil
}

// DPoPProofs holds the DPoP proofs the service accepted (RFC 9449 §11.1),
// each by tokens.DPoPProof.Replay until its Until: a unique insert, so a
// proof is used once across every instance.
func (db *DB) DPoPProofs() *Claims {
	return &Claims{db: db, coll: db.db.Collection(colDPoP)}
}

// UsedRecoveryCodes holds the hashes of spent recovery codes.
func (db *DB) UsedRecoveryCodes() *Claims {
	return &Claims{db: db, coll: db.db.Collection(colRecovery)}
}
