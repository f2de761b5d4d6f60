package store

import (
	"context"
	"errors"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/stepup-auth/stepup/mfa"
)

// userDoc is a user. Factors are a map keyed by factor id, so that each
// change is a $set or $unset of one factor's fields ("factors.<id>.name"),
// conditional on that factor, and never rewrites the others: renaming one
// factor cannot undo the removal of another (MongoDB has no conditional
// update of one array element without arrayFilters, which the embedded
// engine lacks).
type userDoc struct {
	ID       string               `bson:"_id"`
	Username string               `bson:"username"`
	Password string               `bson:"password"`
	Factors  map[string]factorDoc `bson:"factors"`
	NFactors int64                `bson:"nfactors"`
	// NConfirmed counts confirmed factors, so "the user's first factor"
	// and "the last factor" are decided atomically by a filter on it.
	NConfirmed int64     `bson:"nconfirmed"`
	Recovery   []string  `bson:"recovery,omitempty"` // HMAC hashes
	CreatedAt  time.Time `bson:"created_at"`
	MFAFail    int64     `bson:"mfa_fail"`
	MFALast    time.Time `bson:"mfa_last"`
	PwdFail    int64     `bson:"pwd_fail"`
	PwdLast    time.Time `bson:"pwd_last"`
	// Disabled by an administrator (absent in users written before it
	// existed: false).
	Disabled bool `bson:"disabled"`
}

type factorDoc struct {
	ID         string    `bson:"id"`
	Kind       string    `bson:"kind"`
	Name       string    `bson:"name"`
	Confirmed  bool      `bson:"confirmed"`
	CreatedAt  time.Time `bson:"created_at"`
	LastUsedAt time.Time `bson:"last_used_at,omitempty"`
	LastStep   int64     `bson:"last_step"`
	AddedBy    string    `bson:"added_by,omitempty"`
	Secret     []byte    `bson:"secret,omitempty"` // sealed
	Credential *credDoc  `bson:"credential,omitempty"`
}

type credDoc struct {
	ID                []byte   `bson:"id"`
	PublicKey         []byte   `bson:"public_key"`
	AttestationType   string   `bson:"attestation_type,omitempty"`
	AttestationFormat string   `bson:"attestation_format,omitempty"`
	Transports        []string `bson:"transports,omitempty"`
	AAGUID            []byte   `bson:"aaguid,omitempty"`
	SignCount         int64    `bson:"sign_count"`
	BackupEligible    bool     `bson:"be"`
	BackupState       bool     `bson:"bs"`
	UVInitialized     bool     `bson:"uv_initialized"`
	Attachment        string   `bson:"attachment,omitempty"`
	Flagged           bool     `bson:"flagged"`
	Attested          bool     `bson:"attested,omitempty"`
}

func (db *DB) users() *mongo.Collection { return db.db.Collection(colUsers) }

// CreateUser inserts the user; the unique index on username makes a taken
// name a duplicate key, mfa.ErrUsernameTaken.
func (db *DB) CreateUser(ctx context.Context, u *mfa.User) error {
	doc, err := db.userToDoc(u)
	if err != nil {
		return err
	}
	_, err = db.users().InsertOne(ctx, doc)
	if isDuplicate(err) {
		return mfa.ErrUsernameTaken
	}
	if err != nil {
		return opError(err, "insert user")
	}
	return nil
}

// UserByName finds the user by canonical username: one indexed equality.
func (db *DB) UserByName(ctx context.Context, username string) (*mfa.User, error) {
	return db.findUser(ctx, bson.D{{Key: "username", Value: username}}, "find user by name")
}

// User returns the user with that id, or mfa.ErrNotFound.
func (db *DB) User(ctx context.Context, id string) (*mfa.User, error) {
	return db.findUser(ctx, bson.D{{Key: "_id", Value: id}}, "find user "+id)
}

func (db *DB) findUser(ctx context.Context, filter bson.D, what string) (*mfa.User, error) {
	var doc userDoc
	err := db.users().FindOne(ctx, filter).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, mfa.ErrNotFound
	}
	if err != nil {
		return nil, opError(err, "%s", what)
	}
	return db.docToUser(&doc)
}

// SpendAttempt counts a second-factor attempt if a gate passes: one
// findOneAndUpdate that returns the user after it.
func (db *DB) SpendAttempt(ctx context.Context, id string, gates []mfa.Gate, now time.Time) (*mfa.User, bool, error) {
	filter := bson.D{{Key: "_id", Value: id}, {Key: "$or", Value: gateFilter(gates, "mfa_fail", "mfa_last")}}
	update := bson.D{{Key: "$inc", Value: bson.D{{Key: "mfa_fail", Value: 1}}},
		{Key: "$set", Value: bson.D{{Key: "mfa_last", Value: now.UTC()}}}}
	var doc userDoc
	err := db.users().FindOneAndUpdate(ctx, filter, update, options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		u, err := db.User(ctx, id)
		return u, false, err
	}
	if err != nil {
		return nil, false, opError(err, "spend attempt of user %s", id)
	}
	u, err := db.docToUser(&doc)
	return u, err == nil, err
}

// ForgiveAttempts zeroes the user's second-factor failure count.
func (db *DB) ForgiveAttempts(ctx context.Context, id string) error {
	return db.updateUser(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "mfa_fail", Value: 0}}}}, mfa.ErrNotFound, "forgive attempts of user %s", id)
}

// CountPasswordFailure increments the account's wrong-password count: one
// findOneAndUpdate returning the count after it.
func (db *DB) CountPasswordFailure(ctx context.Context, id string, now time.Time) (mfa.BudgetState, error) {
	var doc userDoc
	err := db.users().FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "pwd_fail", Value: 1}}}, {Key: "$set", Value: bson.D{{Key: "pwd_last", Value: now.UTC()}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return mfa.BudgetState{}, mfa.ErrNotFound
	}
	if err != nil {
		return mfa.BudgetState{}, opError(err, "count password failure of user %s", id)
	}
	return mfa.BudgetState{Failures: doc.PwdFail, Last: doc.PwdLast}, nil
}

// ForgivePasswordFailures zeroes the account's wrong-password count.
func (db *DB) ForgivePasswordFailures(ctx context.Context, id string) error {
	return db.updateUser(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "pwd_fail", Value: 0}}}}, mfa.ErrNotFound, "forgive password failures of user %s", id)
}

// SetPassword replaces the password hash, and nothing else.
func (db *DB) SetPassword(ctx context.Context, id, hash string) error {
	return db.updateUser(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "password", Value: hash}}}}, mfa.ErrNotFound, "set password of user %s", id)
}

// SetRecoveryCodes replaces the recovery-code hashes.
func (db *DB) SetRecoveryCodes(ctx context.Context, id string, hashes []string) error {
	return db.updateUser(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "recovery", Value: hashes}}}}, mfa.ErrNotFound, "set recovery codes of user %s", id)
}

// SetDisabled sets or clears the user's disabled flag, and nothing else.
func (db *DB) SetDisabled(ctx context.Context, id string, disabled bool) error {
	return db.updateUser(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "disabled", Value: disabled}}}}, mfa.ErrNotFound, "set disabled of user %s", id)
}

// ListUsers is a keyset page on the unique username index: usernames
// after after (exclusive) that begin with prefix, in ascending byte order
// (MongoDB's simple collation), at most limit. A page depends only on the
// last username of the previous one, never on an offset, so users created
// or removed meanwhile shift nothing: every user present during the whole
// walk is returned exactly once. On MongoDB the anchored, case-sensitive
// prefix regex and the $gt bound are one index range.
func (db *DB) ListUsers(ctx context.Context, prefix, after string, limit int) ([]*mfa.User, error) {
	cond := bson.D{}
	if after != "" {
		cond = append(cond, bson.E{Key: "$gt", Value: after})
	}
	if prefix != "" {
		if after < prefix {
			cond = append(cond, bson.E{Key: "$gte", Value: prefix})
		}
		cond = append(cond, bson.E{Key: "$regex", Value: "^" + regexp.QuoteMeta(prefix)})
	}
	filter := bson.D{}
	if len(cond) > 0 {
		filter = bson.D{{Key: "username", Value: cond}}
	}
	cur, err := db.users().Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "username", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, opError(err, "list users")
	}
	var docs []userDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, opError(err, "list users")
	}
	out := make([]*mfa.User, 0, len(docs))
	for i := range docs {
		u, err := db.docToUser(&docs[i])
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// AddFactor adds f with $set of its own key, dropping stale enrollments
// with $unset in the same update. The filter pins what the count depends
// on (nfactors, and each stale enrollment still there and unconfirmed), so
// a concurrent change makes it match nothing; then it reads and tries again.
func (db *DB) AddFactor(ctx context.Context, id string, f mfa.Factor, max int, staleBefore time.Time, first bool) error {
	fd, err := db.factorToDoc(id, &f)
	if err != nil {
		return err
	}
	for range 5 {
		u, err := db.User(ctx, id)
		if err != nil {
			return err
		}
		filter := bson.D{{Key: "_id", Value: id}, {Key: "nfactors", Value: int64(len(u.Factors))}}
		if first && f.Confirmed {
			if len(u.Confirmed("")) > 0 {
				return mfa.ErrNotFirst
			}
			filter = append(filter, noneConfirmed)
		}
		unset := bson.D{}
		for _, old := range u.Factors {
			if !old.Confirmed && old.CreatedAt.Before(staleBefore) {
				filter = append(filter, bson.E{Key: fpath(old.ID, "confirmed"), Value: false})
				unset = append(unset, bson.E{Key: fpath(old.ID), Value: ""})
			}
		}
		n := len(u.Factors) - len(unset) + 1
		if n > max {
			return mfa.ErrTooManyFactors
		}
		update := bson.D{{Key: "$set", Value: bson.D{{Key: fpath(f.ID), Value: fd}, {Key: "nfactors", Value: int64(n)}}}}
		if f.Confirmed {
			update = append(update, bson.E{Key: "$inc", Value: bson.D{{Key: "nconfirmed", Value: 1}}})
		}
		if len(unset) > 0 {
			update = append(update, bson.E{Key: "$unset", Value: unset})
		}
		res, err := db.users().UpdateOne(ctx, filter, update)
		if err != nil {
			return opError(err, "add factor to user %s", id)
		}
		if res.MatchedCount == 1 {
			return nil
		}
	}
	return opError(errors.New("too many concurrent factor changes"), "add factor to user %s", id)
}

// RenameFactor sets one factor's name if that factor still exists.
func (db *DB) RenameFactor(ctx context.Context, id, factorID, name string) error {
	return db.updateUser(ctx, bson.D{{Key: "_id", Value: id}, {Key: fpath(factorID, "id"), Value: factorID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: fpath(factorID, "name"), Value: name}}}}, mfa.ErrNotEnrolled, "rename factor %s", factorID)
}

// RemoveFactor unsets one factor, conditional on it being there and on
// every other factor's confirmation being what it read, and returns what
// it was and the user after. Whether it is the last confirmed one is
// decided on that pinned state: then the recovery codes go in the same
// update (they stand in for a second factor that no longer exists), and
// without last it is refused with mfa.ErrLastFactor. A concurrent change
// makes the update match nothing; then it reads and tries again.
func (db *DB) RemoveFactor(ctx context.Context, id, factorID string, allowLast bool) (*mfa.Factor, *mfa.User, error) {
	for range 5 {
		u, err := db.User(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		f := u.Factor(factorID)
		if f == nil {
			return nil, nil, mfa.ErrNotEnrolled
		}
		filter := bson.D{{Key: "_id", Value: id}, {Key: fpath(factorID, "id"), Value: factorID}}
		unset := bson.D{{Key: fpath(factorID), Value: ""}}
		othersConfirmed := false
		for _, o := range u.Factors {
			if o.ID != factorID {
				filter = append(filter, bson.E{Key: fpath(o.ID, "confirmed"), Value: o.Confirmed})
				othersConfirmed = othersConfirmed || o.Confirmed
			}
		}
		filter = append(filter, bson.E{Key: "nfactors", Value: int64(len(u.Factors))})
		if !othersConfirmed {
			if f.Confirmed && !allowLast {
				return nil, nil, mfa.ErrLastFactor
			}
			unset = append(unset, bson.E{Key: "recovery", Value: ""})
		}
		inc := bson.D{{Key: "nfactors", Value: -1}}
		if f.Confirmed {
			inc = append(inc, bson.E{Key: "nconfirmed", Value: -1})
		}
		var doc userDoc
		err = db.users().FindOneAndUpdate(ctx, filter, bson.D{{Key: "$unset", Value: unset}, {Key: "$inc", Value: inc}},
			options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&doc)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue
		}
		if err != nil {
			return nil, nil, opError(err, "remove factor %s", factorID)
		}
		after, err := db.docToUser(&doc)
		if err != nil {
			return nil, nil, err
		}
		return f, after, nil
	}
	return nil, nil, opError(errors.New("too many concurrent factor changes"), "remove factor %s", factorID)
}

// noneConfirmed is the filter of a user without a confirmed factor (users
// written before nconfirmed existed are migrated at start).
var noneConfirmed = bson.E{Key: "nconfirmed", Value: int64(0)}

// UseStep takes a TOTP time step with one conditional update; see
// mfa.UserStore.
func (db *DB) UseStep(ctx context.Context, id, factorID string, step int64, now time.Time, confirm bool, staleBefore time.Time, first bool) error {
	filter := bson.D{{Key: "_id", Value: id},
		{Key: fpath(factorID, "kind"), Value: string(mfa.KindTOTP)},
		{Key: fpath(factorID, "confirmed"), Value: !confirm},
		{Key: fpath(factorID, "last_step"), Value: bson.D{{Key: "$lt", Value: step}}}}
	set := bson.D{{Key: fpath(factorID, "last_step"), Value: step}, {Key: fpath(factorID, "last_used_at"), Value: now.UTC()},
		{Key: "mfa_fail", Value: 0}}
	update := bson.D{{Key: "$set", Value: set}}
	if confirm {
		filter = append(filter, bson.E{Key: fpath(factorID, "created_at"), Value: bson.D{{Key: "$gte", Value: staleBefore.UTC()}}})
		if first {
			filter = append(filter, noneConfirmed)
		}
		set = append(set, bson.E{Key: fpath(factorID, "confirmed"), Value: true})
		update = bson.D{{Key: "$set", Value: set}, {Key: "$inc", Value: bson.D{{Key: "nconfirmed", Value: 1}}}}
	}
	res, err := db.users().UpdateOne(ctx, filter, update)
	if err != nil {
		return opError(err, "use time step of factor %s", factorID)
	}
	if res.MatchedCount == 1 {
		return nil
	}
	// Nothing matched: say why (one more read, on failure only).
	u, err := db.User(ctx, id)
	if err != nil {
		return err
	}
	f := u.Factor(factorID)
	switch {
	case f == nil || f.Kind != mfa.KindTOTP:
		return mfa.ErrNotEnrolled
	case confirm && f.Confirmed:
		return mfa.ErrAlreadyConfirmed
	case confirm && first && len(u.Confirmed("")) > 0 && !f.Confirmed && !f.CreatedAt.Before(staleBefore) && f.LastStep < step:
		return mfa.ErrNotFirst
	case f.Confirmed != !confirm || (confirm && f.CreatedAt.Before(staleBefore)):
		return mfa.ErrNotEnrolled
	}
	return mfa.ErrBadCode
}

// UseCredential records an assertion if the counter grew (or both are
// zero): one conditional update.
func (db *DB) UseCredential(ctx context.Context, id, factorID string, count uint32, backupState bool, now time.Time) error {
	counter := bson.D{{Key: "$lt", Value: int64(count)}}
	if count == 0 {
		counter = bson.D{{Key: "$eq", Value: int64(0)}}
	}
	filter := bson.D{{Key: "_id", Value: id},
		{Key: fpath(factorID, "confirmed"), Value: true},
		{Key: fpath(factorID, "credential.flagged"), Value: false},
		{Key: fpath(factorID, "credential.sign_count"), Value: counter}}
	set := bson.D{{Key: fpath(factorID, "credential.sign_count"), Value: int64(count)},
		{Key: fpath(factorID, "credential.bs"), Value: backupState},
		{Key: fpath(factorID, "last_used_at"), Value: now.UTC()},
		{Key: "mfa_fail", Value: 0}}
	res, err := db.users().UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return opError(err, "use credential of factor %s", factorID)
	}
	if res.MatchedCount == 1 {
		return nil
	}
	u, err := db.User(ctx, id)
	if err != nil {
		return err
	}
	if f := u.Factor(factorID); f == nil || !f.Confirmed || f.Credential == nil || f.Credential.Flagged {
		return mfa.ErrNotEnrolled
	}
	return mfa.ErrBadCode
}

// FlagCredential marks a credential as possibly cloned.
func (db *DB) FlagCredential(ctx context.Context, id, factorID string) error {
	return db.updateUser(ctx, bson.D{{Key: "_id", Value: id}, {Key: fpath(factorID, "id"), Value: factorID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: fpath(factorID, "credential.flagged"), Value: true}}}}, mfa.ErrNotEnrolled, "flag factor %s", factorID)
}

// DeleteUser deletes the user document: its factors, sealed secrets and
// recovery-code hashes are in it, and the unique username index no longer
// holds the name. One findOneAndDelete returns what it deleted.
func (db *DB) DeleteUser(ctx context.Context, id string) (*mfa.User, error) {
	var doc userDoc
	err := db.users().FindOneAndDelete(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, mfa.ErrNotFound
	}
	if err != nil {
		return nil, opError(err, "delete user %s", id)
	}
	return db.docToUser(&doc)
}

// updateUser runs one update; no match is notFound.
func (db *DB) updateUser(ctx context.Context, filter, update bson.D, notFound error, format string, args ...any) error {
	res, err := db.users().UpdateOne(ctx, filter, update)
	if err != nil {
		return opError(err, format, args...)
	}
	if res.MatchedCount == 0 {
		return notFound
	}
	return nil
}

// fpath is the dotted path of a factor or one of its fields.
func fpath(factorID string, field ...string) string {
	return strings.Join(append([]string{"factors", factorID}, field...), ".")
}

func (db *DB) userToDoc(u *mfa.User) (*userDoc, error) {
	doc := &userDoc{ID: u.ID, Username: u.Username, Password: u.PasswordHash, CreatedAt: u.CreatedAt.UTC(),
		Recovery: u.RecoveryCodes, Factors: make(map[string]factorDoc, len(u.Factors)), NFactors: int64(len(u.Factors)),
		MFAFail: u.Attempts.Failures, MFALast: u.Attempts.Last.UTC(), Disabled: u.Disabled}
	for i := range u.Factors {
		fd, err := db.factorToDoc(u.ID, &u.Factors[i])
		if err != nil {
			return nil, err
		}
		doc.Factors[fd.ID] = *fd
		if fd.Confirmed {
			doc.NConfirmed++
		}
	}
	return doc, nil
}

func (db *DB) factorToDoc(userID string, f *mfa.Factor) (*factorDoc, error) {
	if f.ID == "" || strings.ContainsAny(f.ID, ".$") {
		return nil, errors.New("store: factor id must be non-empty without '.' or '$'")
	}
	fd := &factorDoc{ID: f.ID, Kind: string(f.Kind), Name: f.Name, Confirmed: f.Confirmed,
		CreatedAt: f.CreatedAt.UTC(), LastStep: f.LastStep, AddedBy: f.AddedBy}
	if !f.LastUsedAt.IsZero() {
		fd.LastUsedAt = f.LastUsedAt.UTC()
	}
	if len(f.Secret) > 0 {
		sealed, err := db.seal.seal(f.Secret, secretAD(userID, f.ID))
		if err != nil {
			return nil, err
		}
		fd.Secret = sealed
	}
	if c := f.Credential; c != nil {
		fd.Credential = &credDoc{ID: c.ID, PublicKey: c.PublicKey, AttestationType: c.AttestationType,
			AttestationFormat: c.AttestationFormat, Transports: c.Transports, AAGUID: c.AAGUID, SignCount: int64(c.SignCount),
			BackupEligible: c.BackupEligible, BackupState: c.BackupState, UVInitialized: c.UVInitialized,
			Attachment: c.Attachment, Flagged: c.Flagged, Attested: c.Attested}
	}
	return fd, nil
}

func (db *DB) docToUser(doc *userDoc) (*mfa.User, error) {
	u := &mfa.User{ID: doc.ID, Username: doc.Username, PasswordHash: doc.Password, CreatedAt: doc.CreatedAt,
		RecoveryCodes: doc.Recovery, Factors: make([]mfa.Factor, 0, len(doc.Factors)),
		Attempts:         mfa.BudgetState{Failures: doc.MFAFail, Last: doc.MFALast},
		PasswordFailures: mfa.BudgetState{Failures: doc.PwdFail, Last: doc.PwdLast}, Disabled: doc.Disabled}
	for _, key := range slices.Sorted(maps.Keys(doc.Factors)) {
		fd := doc.Factors[key]
		f := mfa.Factor{ID: fd.ID, Kind: mfa.Kind(fd.Kind), Name: fd.Name, Confirmed: fd.Confirmed,
			CreatedAt: fd.CreatedAt, LastUsedAt: fd.LastUsedAt, LastStep: fd.LastStep, AddedBy: fd.AddedBy}
		if len(fd.Secret) > 0 {
			plain, err := db.seal.open(fd.Secret, secretAD(doc.ID, fd.ID))
			if err != nil {
				return nil, err
			}
			f.Secret = plain
		}
		if c := fd.Credential; c != nil {
			f.Credential = &mfa.Credential{ID: c.ID, PublicKey: c.PublicKey, AttestationType: c.AttestationType,
				AttestationFormat: c.AttestationFormat, Transports: c.Transports, AAGUID: c.AAGUID, SignCount: uint32(c.SignCount),
				BackupEligible: c.BackupEligible, BackupState: c.BackupState, UVInitialized: c.UVInitialized,
				Attachment: c.Attachment, Flagged: c.Flagged, Attested: c.Attested}
		}
		u.Factors = append(u.Factors, f)
	}
	// Creation order, as a person enrolled them.
	slices.SortStableFunc(u.Factors, func(a, b mfa.Factor) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return u, nil
}

func secretAD(userID, factorID string) string { return "factor|" + userID + "|" + factorID }

// gateFilter is mfa.Budget's gates as a $or over a count and a time field.
// A scope whose count field is missing has failed nothing yet.
func gateFilter(gates []mfa.Gate, count, last string) bson.A {
	or := bson.A{}
	for _, g := range gates {
		c := bson.D{{Key: count, Value: bson.D{{Key: "$gte", Value: g.Min}, {Key: "$lt", Value: g.Max}}}}
		if !g.Before.IsZero() {
			c = append(c, bson.E{Key: last, Value: bson.D{{Key: "$lte", Value: g.Before.UTC()}}})
		}
		or = append(or, c)
		if g.Min == 0 && g.Before.IsZero() {
			or = append(or, bson.D{{Key: count, Value: bson.D{{Key: "$exists", Value: false}}}})
		}
	}
	return or
}
