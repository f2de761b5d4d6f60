package store

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

type budgetDoc struct {
	ID    string `bson:"_id"`
	Next  int64  `bson:"next"`
	Reset int64  `bson:"reset"`
}

// Budgets holds attempt slots (unique inserts) and per-scope hints; it
// implements mfa.BudgetStore.
type Budgets struct {
	Claims
	hints *mongo.Collection
}

// Budgets returns the attempt-budget store.
func (db *DB) Budgets() *Budgets {
	return &Budgets{Claims: Claims{db: db, coll: db.db.Collection(colAttempts)}, hints: db.db.Collection(colBudgets)}
}

// Hint returns the scope's hints, zeros for a new scope.
func (b *Budgets) Hint(ctx context.Context, scope string) (next, reset int64, err error) {
	var doc budgetDoc
	err = b.hints.FindOne(ctx, bson.M{"_id": scope}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, opError(err, "find budget")
	}
	return doc.Next, doc.Reset, nil
}

// Advance raises the hints with $max, so a late writer never lowers them
// on MongoDB. On FerretDB $max is not atomic across connections; a lost
// raise only makes the next attempt walk a few taken slots or count a few
// more failures, never fewer.
func (b *Budgets) Advance(ctx context.Context, scope string, next, reset int64) error {
	set := bson.M{}
	if next > 0 {
		set["next"] = next
	}
	if reset > 0 {
		set["reset"] = reset
	}
	if len(set) == 0 {
		return nil
	}
	_, err := b.hints.UpdateOne(ctx, bson.M{"_id": scope}, bson.M{"$max": set}, options.UpdateOne().SetUpsert(true))
	if err != nil && !isDuplicate(err) { // two first upserts may race; the loser's raise is a hint
		return opError(err, "advance budget")
	}
	return nil
}
