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

type budgetDoc struct {
	ID        string    `bson:"_id"`
	Sub       string    `bson:"sub,omitempty"` // pending tokens: the user
	Fail      int64     `bson:"fail"`
	Last      time.Time `bson:"last"`
	Used      time.Time `bson:"used,omitempty"`  // pending tokens: when consumed
	Ended     bool      `bson:"ended,omitempty"` // pending tokens: ended by EndFor
	ExpiresAt time.Time `bson:"expires_at"`
}

// Budgets keeps one counter document per scope; it implements
// mfa.BudgetStore.
type Budgets struct {
	coll *mongo.Collection
	// pending: the documents are mfa_pending tokens' (PendingTokens): their
	// _id is pendingPrefix and the token's id, they exist from the token's
	// issue (an attempt on an unknown one is refused, never an upsert), and
	// a consumed one takes no more attempts.
	pending bool
}

// pendingPrefix begins the _id of an mfa_pending token's document in the
// budgets collection (a token id has no '|'; budget scopes begin with
// their kind and '|').
const pendingPrefix = "mfa|"

// id is the _id of scope's document.
func (b *Budgets) id(scope string) string {
	if b.pending {
		return pendingPrefix + scope
	}
	return scope
}

// Budgets returns the attempt-budget store.
func (db *DB) Budgets() *Budgets { return &Budgets{coll: db.db.Collection(colBudgets)} }

// PendingTokens holds one document per mfa_pending token, from its issue
// to its expiry: its attempts and its consumption. The documents live in
// the budgets collection, so that the password step opens one and forgives
// its password budget in a single round trip. It implements
// mfa.PendingStore.
type PendingTokens struct{ Budgets }

// PendingTokens returns the mfa_pending token store.
func (db *DB) PendingTokens() *PendingTokens {
	return &PendingTokens{Budgets{coll: db.db.Collection(colBudgets), pending: true}}
}

// Open records a new token of subject with no attempt spent, and forgives
// the budget scopes named in forgive: one update command with a statement
// each (an upsert that only ever inserts, for the token).
func (p *PendingTokens) Open(ctx context.Context, id, subject string, now, expires time.Time, forgive ...string) error {
	models := []mongo.WriteModel{mongo.NewUpdateOneModel().
		SetFilter(bson.D{{Key: "_id", Value: p.id(id)}}).
		SetUpdate(bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "sub", Value: subject}, {Key: "fail", Value: int64(0)},
			{Key: "last", Value: now.UTC()}, {Key: "expires_at", Value: expires.UTC()}}}}).
		SetUpsert(true)}
	for _, scope := range forgive {
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: scope}}).
			SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "fail", Value: int64(0)}}}}))
	}
	if _, err := p.coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
		return opError(err, "open mfa_token")
	}
	return nil
}

// EndFor marks every unconsumed token of subject used (an indexed
// updateMany), so that none of them can finish a sign-in any more.
func (p *PendingTokens) EndFor(ctx context.Context, subject string, now time.Time) error {
	_, err := p.coll.UpdateMany(ctx,
		bson.D{{Key: "sub", Value: subject}, {Key: "used", Value: bson.D{{Key: "$exists", Value: false}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "used", Value: now.UTC()}, {Key: "ended", Value: true}}}})
	if err != nil {
		return opError(err, "end mfa_tokens")
	}
	return nil
}

// DropFor deletes every token record of subject (an indexed deleteMany).
func (p *PendingTokens) DropFor(ctx context.Context, subject string) error {
	if _, err := p.coll.DeleteMany(ctx, bson.D{{Key: "sub", Value: subject}}); err != nil {
		return opError(err, "delete mfa_tokens")
	}
	return nil
}

// Consume marks the token used: a compare-and-set of "used" on its
// document. A second consumption finds used set and gets mfa.ErrUsed; a
// token with no document gets mfa.ErrNotFound.
func (p *PendingTokens) Consume(ctx context.Context, id string, now, expires time.Time) error {
	r, err := p.coll.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: p.id(id)}, {Key: "used", Value: bson.D{{Key: "$exists", Value: false}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "used", Value: now.UTC()}, {Key: "expires_at", Value: expires.UTC()}}}})
	if err != nil {
		return opError(err, "consume mfa_token")
	}
	if r.MatchedCount == 0 {
		if _, err := p.Consumed(ctx, id); err != nil {
			return err
		}
		return mfa.ErrUsed
	}
	return nil
}

// Consumed reports whether the token was consumed; mfa.ErrNotFound when no
// login issued it (or its record expired), mfa.ErrEnded when EndFor ended
// it.
func (p *PendingTokens) Consumed(ctx context.Context, id string) (bool, error) {
	var doc budgetDoc
	err := p.coll.FindOne(ctx, bson.D{{Key: "_id", Value: p.id(id)}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, mfa.ErrNotFound
	}
	if err != nil {
		return false, opError(err, "find mfa_token")
	}
	if doc.Ended {
		return true, mfa.ErrEnded
	}
	return !doc.Used.IsZero(), nil
}

// Spend counts an attempt with one conditional findOneAndUpdate, an upsert
// for a new scope. When the scope exists but no gate passes, the upsert
// tries to insert a second document with its _id and gets a duplicate key;
// two first attempts racing on a new scope get the same. Either way the
// update is tried once more without upsert: it wins if a gate passes now,
// and otherwise the current state is read and returned with ok false.
//
// An mfa_pending token's document is never created here: without one (no
// login issued the token, or its record expired) Spend is mfa.ErrNotFound.
func (b *Budgets) Spend(ctx context.Context, scope string, gates []mfa.Gate, now, expires time.Time) (mfa.BudgetState, bool, error) {
	filter := bson.D{{Key: "_id", Value: b.id(scope)}, {Key: "$or", Value: gateFilter(gates, "fail", "last")}}
	if b.pending {
		filter = append(filter, bson.E{Key: "used", Value: bson.D{{Key: "$exists", Value: false}}})
	}
	update := bson.D{{Key: "$inc", Value: bson.D{{Key: "fail", Value: 1}}},
		{Key: "$set", Value: bson.D{{Key: "last", Value: now.UTC()}, {Key: "expires_at", Value: expires.UTC()}}}}
	opts := options.FindOneAndUpdate().SetReturnDocument(options.After)
	var doc budgetDoc
	err := b.coll.FindOneAndUpdate(ctx, filter, update, opts.SetUpsert(!b.pending)).Decode(&doc)
	if isDuplicate(err) {
		err = b.coll.FindOneAndUpdate(ctx, filter, update, options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&doc)
	}
	if errors.Is(err, mongo.ErrNoDocuments) {
		err = b.coll.FindOne(ctx, bson.D{{Key: "_id", Value: b.id(scope)}}).Decode(&doc)
		if b.pending && errors.Is(err, mongo.ErrNoDocuments) {
			return mfa.BudgetState{}, false, mfa.ErrNotFound
		}
		if err != nil {
			return mfa.BudgetState{}, false, opError(err, "read budget")
		}
		if doc.Ended {
			return mfa.BudgetState{}, false, mfa.ErrEnded
		}
		if !doc.Used.IsZero() {
			return mfa.BudgetState{}, false, mfa.ErrUsed
		}
		return mfa.BudgetState{Failures: doc.Fail, Last: doc.Last}, false, nil
	}
	if err != nil {
		return mfa.BudgetState{}, false, opError(err, "spend budget")
	}
	return mfa.BudgetState{Failures: doc.Fail, Last: doc.Last}, true, nil
}

// Forgive zeroes the scope's failure count.
func (b *Budgets) Forgive(ctx context.Context, scope string) error {
	_, err := b.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: b.id(scope)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "fail", Value: 0}}}})
	if err != nil {
		return opError(err, "forgive budget")
	}
	return nil
}

// Refund takes one counted attempt back, never below zero.
func (b *Budgets) Refund(ctx context.Context, scope string) error {
	_, err := b.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: b.id(scope)}, {Key: "fail", Value: bson.D{{Key: "$gt", Value: 0}}}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "fail", Value: -1}}}})
	if err != nil {
		return opError(err, "refund budget")
	}
	return nil
}

// ForgivePrefix zeroes every scope whose _id begins with prefix: a range
// read (no write lock held while it runs), then one update by _id.
func (b *Budgets) ForgivePrefix(ctx context.Context, prefix string) error {
	ids, err := b.idsWithPrefix(ctx, prefix)
	if err != nil || len(ids) == 0 {
		return err
	}
	if _, err := b.coll.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "fail", Value: 0}}}}); err != nil {
		return opError(err, "forgive budgets")
	}
	return nil
}

// DropPrefix deletes every scope whose _id begins with prefix: a range
// read (an index range on MongoDB; a scan on the embedded engine, which
// does not push ranges down — it runs once per deleted account and holds
// no write slot), then one delete by _id.
func (b *Budgets) DropPrefix(ctx context.Context, prefix string) error {
	ids, err := b.idsWithPrefix(ctx, prefix)
	if err != nil || len(ids) == 0 {
		return err
	}
	if _, err := b.coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}); err != nil {
		return opError(err, "delete budgets")
	}
	return nil
}

// Budget returns a scope's state; zero for an unknown scope.
func (b *Budgets) Budget(ctx context.Context, scope string) (mfa.BudgetState, error) {
	var doc budgetDoc
	err := b.coll.FindOne(ctx, bson.D{{Key: "_id", Value: b.id(scope)}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return mfa.BudgetState{}, nil
	}
	if err != nil {
		return mfa.BudgetState{}, opError(err, "read budget")
	}
	return mfa.BudgetState{Failures: doc.Fail, Last: doc.Last}, nil
}

// idsWithPrefix reads the _ids of the scopes beginning with prefix: a range
// on _id.
func (b *Budgets) idsWithPrefix(ctx context.Context, prefix string) (bson.A, error) {
	prefix = b.id(prefix)
	cur, err := b.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: prefix}, {Key: "$lt", Value: prefix + "\uffff"}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, opError(err, "find budgets")
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, opError(err, "find budgets")
	}
	ids := make(bson.A, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids, nil
}
