package mfa_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/store/storetest"
)

// TestRecoveryCodes: 120 random bits each, stored only as an HMAC under
// the server's key (a database without the key cannot test a guess), usable
// once.
func TestRecoveryCodes(t *testing.T) {
	db := storetest.New(t)
	ctx := context.Background()
	r := mfa.NewRecovery(db.UsedRecoveryCodes())
	r.Key = []byte("0123456789abcdef0123456789abcdef")
	codes, hashes, err := r.Generate("u1")
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != mfa.RecoveryCount || len(hashes) != mfa.RecoveryCount {
		t.Fatalf("%d codes, %d hashes", len(codes), len(hashes))
	}
	for _, c := range codes {
		norm := strings.ReplaceAll(c, "-", "")
		if len(norm)*5 < 100 || len(norm) != 24 {
			t.Fatalf("code %q carries %d bits, want 120", c, len(norm)*5)
		}
	}
	u := &mfa.User{ID: "u1", RecoveryCodes: hashes}
	// Another key makes other hashes: the key is part of what is stored.
	other := mfa.NewRecovery(db.UsedRecoveryCodes())
	other.Key = []byte("another key, another key, another")
	if err := other.Use(ctx, u, codes[0]); !errors.Is(err, mfa.ErrBadCode) {
		t.Fatalf("a code checked under another key: %v, want ErrBadCode", err)
	}
	if err := r.Use(ctx, u, strings.ToUpper(codes[0])); err != nil {
		t.Fatalf("the code, upper-case: %v", err)
	}
	if err := r.Use(ctx, u, codes[0]); !errors.Is(err, mfa.ErrBadCode) {
		t.Fatalf("the code again: %v, want ErrBadCode", err)
	}
	if _, err := mfa.NormalizeRecoveryCode("abcd-efgh-ijkl"); !errors.Is(err, mfa.ErrMalformedRecovery) {
		t.Fatalf("12 characters: %v, want ErrMalformedRecovery", err)
	}
	if n, _ := r.Remaining(ctx, u); n != mfa.RecoveryCount-1 {
		t.Fatalf("remaining %d", n)
	}
}
