package store

import (
	"context"
	"crypto"
	"crypto/x509"

	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stepup-auth/stepup/tokens"
)

type keyDoc struct {
	ID        string    `bson:"_id"`
	Alg       string    `bson:"alg"`
	Private   []byte    `bson:"private"` // sealed PKCS #8
	CreatedAt time.Time `bson:"created_at"`
	ActiveAt  time.Time `bson:"active_at"`
	RetireAt  time.Time `bson:"retire_at,omitempty"`
}

// Keys implements tokens.KeyStore; private keys are sealed under the master
// key with the kid as associated data.
type Keys struct{ db *DB }

// Keys returns the signing-key store.
func (db *DB) Keys() *Keys { return &Keys{db: db} }

// Keys returns every stored key.
func (k *Keys) Keys(ctx context.Context) ([]tokens.Key, error) {
	cur, err := k.db.db.Collection(colKeys).Find(ctx, bson.M{})
	if err != nil {
		return nil, opError(err, "find keys")
	}
	var docs []keyDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, opError(err, "read keys")
	}
	out := make([]tokens.Key, 0, len(docs))
	for _, d := range docs {
		der, err := k.db.seal.open(d.Private, "key|"+d.ID)
		if err != nil {
			return nil, err
		}
		priv, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, opError(err, "parse key %s", d.ID)
		}
		signer, ok := priv.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("store: key %s is not a signer", d.ID)
		}
		out = append(out, tokens.Key{ID: d.ID, Alg: d.Alg, Private: signer, CreatedAt: d.CreatedAt, ActiveAt: d.ActiveAt, RetireAt: d.RetireAt})
	}
	return out, nil
}

// AddKey inserts a key.
func (k *Keys) AddKey(ctx context.Context, key tokens.Key) error {
	der, err := x509.MarshalPKCS8PrivateKey(key.Private)
	if err != nil {
		return opError(err, "marshal key")
	}
	sealed, err := k.db.seal.seal(der, "key|"+key.ID)
	if err != nil {
		return err
	}
	_, err = k.db.db.Collection(colKeys).InsertOne(ctx, keyDoc{ID: key.ID, Alg: key.Alg, Private: sealed,
		CreatedAt: key.CreatedAt.UTC(), ActiveAt: key.ActiveAt.UTC(), RetireAt: key.RetireAt.UTC()})
	if err != nil {
		return opError(err, "insert key")
	}
	return nil
}

// SetRetire records when the key stops being published.
func (k *Keys) SetRetire(ctx context.Context, id string, at time.Time) error {
	_, err := k.db.db.Collection(colKeys).UpdateOne(ctx, bson.M{"_id": id}, bson.M{"$set": bson.M{"retire_at": at.UTC()}})
	if err != nil {
		return opError(err, "retire key %s", id)
	}
	return nil
}

// DeleteKey removes a key; a missing key is not an error.
func (k *Keys) DeleteKey(ctx context.Context, id string) error {
	_, err := k.db.db.Collection(colKeys).DeleteOne(ctx, bson.M{"_id": id})
	if err != nil {
		return opError(err, "delete key %s", id)
	}
	return nil
}
