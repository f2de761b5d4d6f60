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

// deviceDoc is mfa.Device: a remembered device, by mfa.DeviceID.
type deviceDoc struct {
	ID         string    `bson:"_id"`
	UserID     string    `bson:"user_id"`
	JKT        string    `bson:"jkt"`
	Name       string    `bson:"name,omitempty"`
	CreatedAt  time.Time `bson:"created_at"`
	FactorAt   time.Time `bson:"factor_at"`
	LastUsedAt time.Time `bson:"last_used_at,omitempty"`
	ExpiresAt  time.Time `bson:"expires_at"`
}

func (d *deviceDoc) device() mfa.Device {
	return mfa.Device{ID: d.ID, UserID: d.UserID, JKT: d.JKT, Name: d.Name, CreatedAt: d.CreatedAt,
		FactorAt: d.FactorAt, LastUsedAt: d.LastUsedAt, ExpiresAt: d.ExpiresAt}
}

// Devices implements mfa.DeviceStore: one document per grant, looked up by
// _id at sign-in and by the indexed user_id for the user's list and for
// revoking them all.
type Devices struct{ db *DB }

// Devices returns the remembered-device store.
func (db *DB) Devices() *Devices { return &Devices{db: db} }

func (s *Devices) coll() *mongo.Collection { return s.db.db.Collection(colDevices) }

// RememberDevice inserts or replaces the grant (one round trip).
func (s *Devices) RememberDevice(ctx context.Context, d *mfa.Device) error {
	doc := deviceDoc{ID: d.ID, UserID: d.UserID, JKT: d.JKT, Name: d.Name, CreatedAt: d.CreatedAt.UTC(),
		FactorAt: d.FactorAt.UTC(), ExpiresAt: d.ExpiresAt.UTC()}
	_, err := s.coll().ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, doc, options.Replace().SetUpsert(true))
	if err != nil {
		return opError(err, "remember device")
	}
	return nil
}

// Device returns a live grant, or mfa.ErrNotFound.
func (s *Devices) Device(ctx context.Context, id string, now time.Time) (*mfa.Device, error) {
	var d deviceDoc
	err := s.coll().FindOne(ctx, bson.D{{Key: "_id", Value: id},
		{Key: "expires_at", Value: bson.D{{Key: "$gt", Value: now.UTC()}}}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, mfa.ErrNotFound
	}
	if err != nil {
		return nil, opError(err, "find device")
	}
	dev := d.device()
	return &dev, nil
}

// UseDevice sets last_used_at.
func (s *Devices) UseDevice(ctx context.Context, id string, at time.Time) error {
	_, err := s.coll().UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "last_used_at", Value: at.UTC()}}}})
	if err != nil {
		return opError(err, "use device")
	}
	return nil
}

// Devices lists the user's live grants, newest first.
func (s *Devices) Devices(ctx context.Context, userID string, now time.Time) ([]mfa.Device, error) {
	cur, err := s.coll().Find(ctx, bson.D{{Key: "user_id", Value: userID},
		{Key: "expires_at", Value: bson.D{{Key: "$gt", Value: now.UTC()}}}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: -1}}).SetLimit(100))
	if err != nil {
		return nil, opError(err, "list devices")
	}
	var docs []deviceDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, opError(err, "list devices")
	}
	out := make([]mfa.Device, 0, len(docs))
	for i := range docs {
		out = append(out, docs[i].device())
	}
	return out, nil
}

// ForgetDevice deletes one grant of the user.
func (s *Devices) ForgetDevice(ctx context.Context, userID, id string) error {
	res, err := s.coll().DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "user_id", Value: userID}})
	if err != nil {
		return opError(err, "forget device")
	}
	if res.DeletedCount == 0 {
		return mfa.ErrNotFound
	}
	return nil
}

// ForgetDevices deletes every grant of the user.
func (s *Devices) ForgetDevices(ctx context.Context, userID string) error {
	if _, err := s.coll().DeleteMany(ctx, bson.D{{Key: "user_id", Value: userID}}); err != nil {
		return opError(err, "forget devices")
	}
	return nil
}
