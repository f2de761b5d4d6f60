package tokens_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stepup-auth/stepup/tokens"
)

// TestRotateBound: a session bound to a DPoP key rotates only for that
// key. Its current token with another key or none is unknown and changes
// nothing; a rotated token presented again without the key is unknown too
// and does not end the family (no grace period here: the path of
// RotateBound without a client); with the key it is reuse.
func TestRotateBound(t *testing.T) {
	ctx := context.Background()
	s, c, st := newSessions(t)
	sess, tok1, err := s.StartBound(ctx, tokens.Device{}, "u1", c.Now(), "aal1", []string{"pwd"}, "key-a")
	if err != nil {
		t.Fatal(err)
	}
	if got := stored(t, st, sess.ID); got.JKT != "key-a" {
		t.Fatalf("stored JKT %q, want key-a", got.JKT)
	}
	for _, jkt := range []string{"", "key-b"} {
		if _, _, err := s.RotateBound(ctx, tok1, "", jkt); !errors.Is(err, tokens.ErrRefreshUnknown) {
			t.Fatalf("current token with key %q: %v, want ErrRefreshUnknown", jkt, err)
		}
	}
	if got := stored(t, st, sess.ID); got.RefreshHash != tokens.HashRefresh(tok1) || !got.RevokedAt.IsZero() {
		t.Fatal("a refused rotation changed the session")
	}
	_, tok2, err := s.RotateBound(ctx, tok1, "", "key-a")
	if err != nil {
		t.Fatal(err)
	}
	for _, jkt := range []string{"", "key-b"} {
		if _, _, err := s.RotateBound(ctx, tok1, "", jkt); !errors.Is(err, tokens.ErrRefreshUnknown) {
			t.Fatalf("rotated token with key %q: %v, want ErrRefreshUnknown", jkt, err)
		}
	}
	if got := stored(t, st, sess.ID); !got.RevokedAt.IsZero() {
		t.Fatal("a rotated token without the key ended the family")
	}
	if _, _, err := s.RotateBound(ctx, tok1, "", "key-a"); !errors.Is(err, tokens.ErrRefreshReused) {
		t.Fatalf("rotated token with the key: %v, want ErrRefreshReused", err)
	}
	if _, _, err := s.RotateBound(ctx, tok2, "", "key-a"); !errors.Is(err, tokens.ErrRefreshUnknown) {
		t.Fatalf("after reuse: %v, want the family ended", err)
	}
	// An unbound session rotates with or without a proof.
	_, tok, err := s.Start(ctx, "u2", c.Now(), "aal1", []string{"pwd"})
	if err != nil {
		t.Fatal(err)
	}
	if _, tok, err = s.RotateBound(ctx, tok, "", "key-z"); err != nil {
		t.Fatal(err)
	}
	if _, _, err = s.RotateBound(ctx, tok, "", ""); err != nil {
		t.Fatal(err)
	}
}
