package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/stepup-auth/stepup/mfa"
)

type userDoc struct {
	ID        string      `bson:"_id"`
	Username  string      `bson:"username"`
	Password  string      `bson:"password"`
	Factors   []factorDoc `bson:"factors"`
	Recovery  []string    `bson:"recovery,omitempty"` // HMAC hashes
	CreatedAt time.Time   `bson:"created_at"`
	Rev       int64       `bson:"rev"`
}

type factorDoc struct {
	ID         string    `bson:"id"`
	Kind       string    `bson:"kind"`
	Name       string    `bson:"name"`
	Confirmed  bool      `bson:"confirmed"`
	CreatedAt  time.Time `bson:"created_at"`
	LastUsedAt time.Time `bson:"last_used_at,omitempty"`
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
	Flagged           bool     `bson:"flagged,omitempty"`
}

type usernameDoc struct {
	ID     string `bson:"_id"` // canonical username
	UserID string `bson:"user_id"`
}

// CreateUser inserts the user, then claims its username with a unique
// insert; if the name is taken the user document is removed again and
// mfa.ErrUsernameTaken returned.
func (db *DB) CreateUser(ctx context.Context, u *mfa.User) error {
	doc, err := db.userToDoc(u)
	if err != nil {
		return err
	}
	if _, err := db.db.Collection(colUsers).InsertOne(ctx, doc); err != nil {
		return opError(err, "insert user")
	}
	_, err = db.db.Collection(colUsernames).InsertOne(ctx, usernameDoc{ID: u.Username, UserID: u.ID})
	if err != nil {
		// Undo with a context that outlives a cancelled request.
		_, _ = db.db.Collection(colUsers).DeleteOne(context.WithoutCancel(ctx), bson.M{"_id": u.ID})
		if isDuplicate(err) {
			return mfa.ErrUsernameTaken
		}
		return opError(err, "insert username")
	}
	return nil
}

// UserByName looks the canonical username up, then the user, both by _id.
func (db *DB) UserByName(ctx context.Context, username string) (*mfa.User, error) {
	var n usernameDoc
	err := db.db.Collection(colUsernames).FindOne(ctx, bson.M{"_id": username}).Decode(&n)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, mfa.ErrNotFound
	}
	if err != nil {
		return nil, opError(err, "find username")
	}
	return db.User(ctx, n.UserID)
}

// User returns the user with that id, or mfa.ErrNotFound.
func (db *DB) User(ctx context.Context, id string) (*mfa.User, error) {
	var doc userDoc
	err := db.db.Collection(colUsers).FindOne(ctx, bson.M{"_id": id}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, mfa.ErrNotFound
	}
	if err != nil {
		return nil, opError(err, "find user %s", id)
	}
	return db.docToUser(&doc)
}

// UpdateUser replaces the password and factors if the stored revision is
// still u.Rev. On MongoDB the revision filter makes this an atomic
// compare-and-set. FerretDB does not make it atomic across connections
// (DESIGN.md); there a concurrent update by the same user may be lost, which
// is why nothing single-use depends on this document.
func (db *DB) UpdateUser(ctx context.Context, u *mfa.User) error {
	doc, err := db.userToDoc(u)
	if err != nil {
		return err
	}
	res, err := db.db.Collection(colUsers).UpdateOne(ctx,
		bson.M{"_id": u.ID, "rev": u.Rev},
		bson.M{"$set": bson.M{"password": doc.Password, "factors": doc.Factors, "recovery": doc.Recovery, "rev": u.Rev + 1}})
	if err != nil {
		return opError(err, "update user %s", u.ID)
	}
	if res.MatchedCount == 0 {
		if _, err := db.User(ctx, u.ID); errors.Is(err, mfa.ErrNotFound) {
			return mfa.ErrNotFound
		}
		return mfa.ErrConflict
	}
	u.Rev++
	return nil
}

func (db *DB) userToDoc(u *mfa.User) (*userDoc, error) {
	doc := &userDoc{ID: u.ID, Username: u.Username, Password: u.PasswordHash, CreatedAt: u.CreatedAt.UTC(), Rev: u.Rev,
		Recovery: u.RecoveryCodes,
		Factors:  make([]factorDoc, 0, len(u.Factors))}
	for _, f := range u.Factors {
		fd := factorDoc{ID: f.ID, Kind: string(f.Kind), Name: f.Name, Confirmed: f.Confirmed,
			CreatedAt: f.CreatedAt.UTC(), LastUsedAt: f.LastUsedAt.UTC()}
		if f.LastUsedAt.IsZero() {
			fd.LastUsedAt = time.Time{}
		}
		if len(f.Secret) > 0 {
			sealed, err := db.seal.seal(f.Secret, secretAD(u.ID, f.ID))
			if err != nil {
				return nil, err
			}
			fd.Secret = sealed
		}
		if c := f.Credential; c != nil {
			fd.Credential = &credDoc{ID: c.ID, PublicKey: c.PublicKey, AttestationType: c.AttestationType,
				AttestationFormat: c.AttestationFormat, Transports: c.Transports, AAGUID: c.AAGUID, SignCount: int64(c.SignCount),
				BackupEligible: c.BackupEligible, BackupState: c.BackupState, UVInitialized: c.UVInitialized,
				Attachment: c.Attachment, Flagged: c.Flagged}
		}
		doc.Factors = append(doc.Factors, fd)
	}
	return doc, nil
}

func (db *DB) docToUser(doc *userDoc) (*mfa.User, error) {
	u := &mfa.User{ID: doc.ID, Username: doc.Username, PasswordHash: doc.Password, CreatedAt: doc.CreatedAt, Rev: doc.Rev,
		RecoveryCodes: doc.Recovery,
		Factors:       make([]mfa.Factor, 0, len(doc.Factors))}
	for _, fd := range doc.Factors {
		f := mfa.Factor{ID: fd.ID, Kind: mfa.Kind(fd.Kind), Name: fd.Name, Confirmed: fd.Confirmed,
			CreatedAt: fd.CreatedAt, LastUsedAt: fd.LastUsedAt}
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
				Attachment: c.Attachment, Flagged: c.Flagged}
		}
		u.Factors = append(u.Factors, f)
	}
	return u, nil
}

func secretAD(userID, factorID string) string { return "factor|" + userID + "|" + factorID }
