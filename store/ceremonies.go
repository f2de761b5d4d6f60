package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/stepup-auth/stepup/mfa"
)

type ceremonyDoc struct {
	ID        string    `bson:"_id"` // the challenge
	Kind      string    `bson:"kind"`
	UserID    string    `bson:"user_id"`
	Binding   string    `bson:"binding"`
	Session   []byte    `bson:"session"`
	ExpiresAt time.Time `bson:"expires_at"`
}

type credOwnerDoc struct {
	ID     string    `bson:"_id"` // base64url credential id
	UserID string    `bson:"user_id"`
	At     time.Time `bson:"at"`
}

// Ceremonies implements mfa.CeremonyStore: WebAuthn ceremony state keyed by
// challenge, and the global index of credential ids (unique _id, so a
// credential id can belong to one user only, whatever the race).
type Ceremonies struct{ db *DB }

// Ceremonies returns the WebAuthn ceremony store.
func (db *DB) Ceremonies() *Ceremonies { return &Ceremonies{db: db} }

// SaveCeremony inserts c.
func (cs *Ceremonies) SaveCeremony(ctx context.Context, c mfa.Ceremony) error {
	_, err := cs.db.db.Collection(colCeremony).InsertOne(ctx, ceremonyDoc{ID: c.Challenge, Kind: c.Kind, UserID: c.UserID,
		Binding: c.Binding, Session: c.Session, ExpiresAt: c.ExpiresAt.UTC()})
	if err != nil {
		return opError(err, "insert ceremony")
	}
	return nil
}

// TakeCeremony deletes and returns the ceremony if challenge, kind, user
// and binding match and it has not expired: one findOneAndDelete, so of two
// racing finishes only one gets it.
func (cs *Ceremonies) TakeCeremony(ctx context.Context, challenge, kind, userID, binding string, now time.Time) (mfa.Ceremony, error) {
	filter := bson.D{{Key: "_id", Value: challenge}, {Key: "kind", Value: kind}, {Key: "user_id", Value: userID},
		{Key: "binding", Value: binding}, {Key: "expires_at", Value: bson.D{{Key: "$gt", Value: now.UTC()}}}}
	var d ceremonyDoc
	err := cs.db.db.Collection(colCeremony).FindOneAndDelete(ctx, filter).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return mfa.Ceremony{}, mfa.ErrNotFound
	}
	if err != nil {
		return mfa.Ceremony{}, opError(err, "take ceremony")
	}
	return mfa.Ceremony{Challenge: d.ID, Kind: d.Kind, UserID: d.UserID, Binding: d.Binding, Session: d.Session, ExpiresAt: d.ExpiresAt}, nil
}

// ClaimCredential records the owner of a credential id; a duplicate is
// mfa.ErrUsed.
func (cs *Ceremonies) ClaimCredential(ctx context.Context, id []byte, userID string) error {
	_, err := cs.db.db.Collection(colCreds).InsertOne(ctx, credOwnerDoc{ID: mfa.CredentialKey(id), UserID: userID, At: cs.db.now().UTC()})
	if isDuplicate(err) {
		return mfa.ErrUsed
	}
	if err != nil {
		return opError(err, "claim credential")
	}
	return nil
}

// ReleaseCredential forgets a credential id.
func (cs *Ceremonies) ReleaseCredential(ctx context.Context, id []byte) error {
	_, err := cs.db.db.Collection(colCreds).DeleteOne(ctx, bson.M{"_id": mfa.CredentialKey(id)})
	if err != nil {
		return opError(err, "release credential")
	}
	return nil
}

// FinishedPasskeys holds the challenges of finished usernameless passkey
// ceremonies (mfa.WebAuthn.PasskeyDone), each until its expires_at. They
// share the ceremony collection, which is swept already (TTL index or
// sweeper); a claim carries no kind, so TakeCeremony never returns one, and
// its id, a 54-byte sealed challenge, never equals a stored ceremony's
// 32-byte one.
func (db *DB) FinishedPasskeys() *Claims {
	return &Claims{db: db, coll: db.db.Collection(colCeremony)}
}

// Count returns how many documents the ceremony collection holds. Tests
// use it to show what a request costs the store.
func (cs *Ceremonies) Count(ctx context.Context) (int64, error) {
	n, err := cs.db.db.Collection(colCeremony).CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, opError(err, "count ceremonies")
	}
	return n, nil
}
