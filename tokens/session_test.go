package tokens_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/store"
	"github.com/stepup-auth/stepup/store/storetest"
	"github.com/stepup-auth/stepup/tokens"
)

// Sessions and refresh-token rotation against the real store (storetest):
// the compare-and-set on the session document is what is under test, so
// there is no fake SessionStore here.

// clock is a settable clock shared by Sessions and the assertions. It
// starts on a whole millisecond, which the store keeps exactly.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var (
	aal1 = []string{"pwd"}
	aal2 = []string{"pwd", "otp", "mfa"}
)

// newSessions returns Sessions on a fresh database with a fake clock.
func newSessions(t *testing.T) (*tokens.Sessions, *clock, *store.Sessions) {
	t.Helper()
	db := storetest.New(t)
	c := newClock()
	s := tokens.NewSessions(db.Sessions())
	s.Now = c.Now
	return s, c, db.Sessions()
}

// start begins an aal1 session for user.
func start(t *testing.T, s *tokens.Sessions, user string) (*tokens.Session, string) {
	t.Helper()
	sess, tok, err := s.Start(context.Background(), user, s.Now(), "aal1", aal1)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return sess, tok
}

// stored reads the session document back.
func stored(t *testing.T, st *store.Sessions, id string) *tokens.Session {
	t.Helper()
	sess, err := st.Session(context.Background(), id)
	if err != nil {
		t.Fatalf("Session(%s): %v", id, err)
	}
	return sess
}

func TestSessionStart(t *testing.T) {
	s, c, st := newSessions(t)
	s.RefreshTTL, s.MaxAge = time.Hour, 48*time.Hour
	sess, tok, err := s.Start(context.Background(), "u1", c.Now().Add(-time.Second), "aal2", aal2)
	if err != nil {
		t.Fatal(err)
	}
	sid, ok := tokens.RefreshSession(tok)
	if !ok || sid != sess.ID {
		t.Fatalf("RefreshSession(%q) = %q, %v; want %q, true", tok, sid, ok, sess.ID)
	}
	got := stored(t, st, sess.ID)
	now := c.Now()
	switch {
	case got.UserID != "u1" || got.ACR != "aal2" || !slices.Equal(got.AMR, aal2):
		t.Errorf("stored user/acr/amr = %q %q %v, want u1 aal2 %v", got.UserID, got.ACR, got.AMR, aal2)
	case !got.AuthTime.Equal(now.Add(-time.Second)) || !got.CreatedAt.Equal(now):
		t.Errorf("auth_time, created_at = %v, %v; want %v, %v", got.AuthTime, got.CreatedAt, now.Add(-time.Second), now)
	case got.RefreshHash != tokens.HashRefresh(tok):
		t.Errorf("stored refresh hash is not the hash of the handed-out token")
	case !got.ExpiresAt.Equal(now.Add(48*time.Hour)) || !got.RefreshExpiresAt.Equal(now.Add(time.Hour)):
		t.Errorf("expires_at, refresh_exp = %v, %v; want +48h, +1h", got.ExpiresAt, got.RefreshExpiresAt)
	case !got.RevokedAt.IsZero():
		t.Errorf("new session revoked at %v", got.RevokedAt)
	}
	if strings.Contains(got.RefreshHash, tok) || strings.Contains(got.RefreshHash, strings.SplitN(tok, ".", 2)[1]) {
		t.Errorf("the store holds the token itself")
	}
}

func TestRotate(t *testing.T) {
	ctx := context.Background()
	s, c, st := newSessions(t)
	sess, tok1, err := s.Start(ctx, "u1", c.Now(), "aal2", aal2)
	if err != nil {
		t.Fatal(err)
	}
	authTime := c.Now()
	c.Advance(time.Minute)

	got, tok2, err := s.Rotate(ctx, tok1)
	if err != nil {
		t.Fatalf("Rotate(first): %v", err)
	}
	if tok2 == "" || tok2 == tok1 || got.ID != sess.ID {
		t.Fatalf("Rotate gave token %q of session %q; want a new token of %q", tok2, got.ID, sess.ID)
	}
	if got.ACR != "aal2" || !slices.Equal(got.AMR, aal2) || !got.AuthTime.Equal(authTime) {
		t.Errorf("rotation changed the authentication: %s %v %v, want aal2 %v %v", got.ACR, got.AMR, got.AuthTime, aal2, authTime)
	}
	if !got.RefreshIssuedAt.Equal(c.Now()) || !got.RefreshExpiresAt.Equal(c.Now().Add(s.RefreshTTL)) {
		t.Errorf("refresh iat/exp = %v/%v, want now/now+RefreshTTL", got.RefreshIssuedAt, got.RefreshExpiresAt)
	}

	t.Run("NewTokenWorks", func(t *testing.T) {
		_, tok3, err := s.Rotate(ctx, tok2)
		if err != nil {
			t.Fatalf("Rotate(second): %v", err)
		}
		tok2 = tok3
	})
	t.Run("OldTokenRevokesSession", func(t *testing.T) {
		c.Advance(time.Second)
		got, next, err := s.Rotate(ctx, tok1)
		if !errors.Is(err, tokens.ErrRefreshReused) {
			t.Fatalf("Rotate(rotated token) = %v, want ErrRefreshReused", err)
		}
		if next != "" {
			t.Errorf("a reused token was given a successor")
		}
		if got == nil || got.ID != sess.ID || !got.RevokedAt.Equal(c.Now()) {
			t.Fatalf("reuse returned session %+v, want %s revoked at %v", got, sess.ID, c.Now())
		}
		if r := stored(t, st, sess.ID).RevokedAt; !r.Equal(c.Now()) {
			t.Errorf("stored revoked_at = %v, want %v", r, c.Now())
		}
	})
	t.Run("FamilyEnded", func(t *testing.T) {
		// The current token (the owner's, or the thief's) no longer works.
		if _, _, err := s.Rotate(ctx, tok2); !errors.Is(err, tokens.ErrRefreshUnknown) {
			t.Errorf("Rotate(current token of a revoked session) = %v, want ErrRefreshUnknown", err)
		}
		if _, err := s.Active(ctx, sess.ID); !errors.Is(err, tokens.ErrSessionEnded) {
			t.Errorf("Active = %v, want ErrSessionEnded", err)
		}
		// Presenting the old token again keeps saying reuse and revokes
		// nothing new: the first revocation time stays.
		revokedAt := stored(t, st, sess.ID).RevokedAt
		c.Advance(time.Minute)
		if _, _, err := s.Rotate(ctx, tok1); !errors.Is(err, tokens.ErrRefreshReused) {
			t.Errorf("Rotate(old token, again) = %v, want ErrRefreshReused", err)
		}
		if r := stored(t, st, sess.ID).RevokedAt; !r.Equal(revokedAt) {
			t.Errorf("revoked_at moved from %v to %v", revokedAt, r)
		}
	})
}

func TestRotateUnknown(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newSessions(t)
	a, aTok := start(t, s, "alice")
	b, bTok := start(t, s, "bob")
	_, aTok2, err := s.Rotate(ctx, aTok) // aTok is now a rotated token of a
	if err != nil {
		t.Fatal(err)
	}
	aSecret := aTok[strings.IndexByte(aTok, '.')+1:]
	bSecret := bTok[strings.IndexByte(bTok, '.')+1:]
	tests := []struct {
		name, token string
	}{
		{"Empty", ""},
		{"NoDot", "garbage"},
		{"EmptySession", "." + aSecret},
		{"ShortSecret", b.ID + ".abc"},
		{"ExtraDot", b.ID + "." + aSecret[:42] + "."},
		{"LongSession", strings.Repeat("s", 65) + "." + aSecret},
		{"NoSuchSession", "nosuchsession." + aSecret},
		{"OtherSessionsSecret", b.ID + "." + aSecret},
		{"OtherSessionsCurrentSecret", a.ID + "." + bSecret},
		{"GuessedSecret", b.ID + "." + strings.Repeat("A", 43)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sess, next, err := s.Rotate(ctx, tc.token)
			if !errors.Is(err, tokens.ErrRefreshUnknown) || sess != nil || next != "" {
				t.Fatalf("Rotate = %v, %q, %v; want nil, \"\", ErrRefreshUnknown", sess, next, err)
			}
		})
	}
	// None of that touched either session: both current tokens still work.
	if _, _, err := s.Rotate(ctx, aTok2); err != nil {
		t.Errorf("alice's current token after the garbage: %v", err)
	}
	if _, _, err := s.Rotate(ctx, bTok); err != nil {
		t.Errorf("bob's current token after the garbage: %v", err)
	}
}

func TestRefreshIdleExpiry(t *testing.T) {
	ctx := context.Background()
	s, c, st := newSessions(t)
	s.RefreshTTL, s.MaxAge = time.Hour, 30*24*time.Hour
	sess, tok := start(t, s, "u1")

	c.Advance(time.Hour - time.Millisecond)
	_, tok, err := s.Rotate(ctx, tok)
	if err != nil {
		t.Fatalf("Rotate a millisecond before the idle limit: %v", err)
	}
	// Each rotation restarts the idle limit.
	c.Advance(time.Hour - time.Millisecond)
	_, tok, err = s.Rotate(ctx, tok)
	if err != nil {
		t.Fatalf("Rotate within the renewed idle limit: %v", err)
	}
	c.Advance(time.Hour)
	if _, _, err := s.Rotate(ctx, tok); !errors.Is(err, tokens.ErrRefreshUnknown) {
		t.Fatalf("Rotate at the idle limit = %v, want ErrRefreshUnknown", err)
	}
	// An idle token expires; it is not reuse, and the session is not revoked.
	if got := stored(t, st, sess.ID); !got.RevokedAt.IsZero() {
		t.Errorf("an expired refresh token revoked the session at %v", got.RevokedAt)
	}
	if _, err := s.Active(ctx, sess.ID); err != nil {
		t.Errorf("Active after the idle expiry = %v, want the session still live", err)
	}
}

func TestSessionAbsoluteExpiry(t *testing.T) {
	ctx := context.Background()
	s, c, _ := newSessions(t)
	s.RefreshTTL, s.MaxAge = time.Hour, 2*time.Hour
	sess, tok := start(t, s, "u1")
	end := sess.ExpiresAt

	for _, at := range []time.Duration{50 * time.Minute, 100 * time.Minute} {
		c.Advance(50 * time.Minute)
		got, next, err := s.Rotate(ctx, tok)
		if err != nil {
			t.Fatalf("Rotate at +%v: %v", at, err)
		}
		// The refresh token never outlives the session.
		if want := minTime(c.Now().Add(time.Hour), end); !got.RefreshExpiresAt.Equal(want) {
			t.Errorf("at +%v: refresh expires %v, want %v", at, got.RefreshExpiresAt, want)
		}
		tok = next
	}
	c.Advance(20 * time.Minute) // +120m: the session's end, the token's idle limit not reached
	if _, _, err := s.Rotate(ctx, tok); !errors.Is(err, tokens.ErrRefreshUnknown) {
		t.Fatalf("Rotate at MaxAge = %v, want ErrRefreshUnknown", err)
	}
	if _, err := s.Active(ctx, sess.ID); !errors.Is(err, tokens.ErrSessionEnded) {
		t.Errorf("Active at MaxAge = %v, want ErrSessionEnded", err)
	}
	if _, err := s.Raise(ctx, sess.ID, c.Now(), "aal2", aal2); !errors.Is(err, tokens.ErrSessionEnded) {
		t.Errorf("Raise at MaxAge = %v, want ErrSessionEnded", err)
	}

	t.Run("MaxAgeShorterThanIdle", func(t *testing.T) {
		s.RefreshTTL, s.MaxAge = 24*time.Hour, time.Hour
		sess, _ := start(t, s, "u2")
		if !sess.RefreshExpiresAt.Equal(sess.ExpiresAt) {
			t.Errorf("first refresh token expires %v, after the session's end %v", sess.RefreshExpiresAt, sess.ExpiresAt)
		}
	})
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func TestRaise(t *testing.T) {
	ctx := context.Background()
	s, c, st := newSessions(t)
	sess, tok := start(t, s, "u1")

	c.Advance(5 * time.Minute)
	raisedAt := c.Now()
	got, err := s.Raise(ctx, sess.ID, raisedAt, "aal2", aal2)
	if err != nil {
		t.Fatalf("Raise: %v", err)
	}
	if got.ACR != "aal2" || !slices.Equal(got.AMR, aal2) || !got.AuthTime.Equal(raisedAt) {
		t.Errorf("Raise returned %s %v %v, want aal2 %v %v", got.ACR, got.AMR, got.AuthTime, aal2, raisedAt)
	}
	if got.RefreshHash != tokens.HashRefresh(tok) || !got.CreatedAt.Equal(sess.CreatedAt) {
		t.Errorf("Raise changed the refresh token or the creation time")
	}
	if db := stored(t, st, sess.ID); db.ACR != "aal2" || !slices.Equal(db.AMR, aal2) || !db.AuthTime.Equal(raisedAt) {
		t.Errorf("stored %s %v %v, want the step-up", db.ACR, db.AMR, db.AuthTime)
	}
	// The refresh family carries the step-up.
	rot, _, err := s.Rotate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if rot.ACR != "aal2" || !rot.AuthTime.Equal(raisedAt) {
		t.Errorf("rotation after the step-up: %s %v, want aal2 %v", rot.ACR, rot.AuthTime, raisedAt)
	}

	t.Run("RevokedSession", func(t *testing.T) {
		if err := s.Revoke(ctx, sess.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Raise(ctx, sess.ID, c.Now(), "aal3", []string{"pwd", "hwk", "mfa"}); !errors.Is(err, tokens.ErrSessionEnded) {
			t.Fatalf("Raise of a revoked session = %v, want ErrSessionEnded", err)
		}
		if db := stored(t, st, sess.ID); db.ACR != "aal2" || db.RevokedAt.IsZero() {
			t.Errorf("after a refused Raise: acr %s, revoked_at %v; want aal2 and revoked", db.ACR, db.RevokedAt)
		}
	})
	t.Run("NoSuchSession", func(t *testing.T) {
		if _, err := s.Raise(ctx, "nosuch", c.Now(), "aal2", aal2); !errors.Is(err, tokens.ErrSessionNotFound) {
			t.Fatalf("Raise of an unknown session = %v, want ErrSessionNotFound", err)
		}
	})
}

// TestRevokeWinsOverRaise races one Revoke against one Raise, many rounds:
// whatever the order, the session ends revoked, and its authentication is
// raised exactly when Raise reported success.
func TestRevokeWinsOverRaise(t *testing.T) {
	ctx := context.Background()
	s, c, st := newSessions(t)
	raised, refused := 0, 0
	for round := range 12 {
		sess, tok := start(t, s, "u1")
		var (
			wg        sync.WaitGroup
			revokeErr error
			raiseErr  error
		)
		go1 := make(chan struct{})
		wg.Go(func() { <-go1; revokeErr = s.Revoke(ctx, sess.ID) })
		wg.Go(func() { <-go1; _, raiseErr = s.Raise(ctx, sess.ID, c.Now(), "aal2", aal2) })
		close(go1)
		wg.Wait()

		if revokeErr != nil {
			t.Fatalf("round %d: Revoke: %v", round, revokeErr)
		}
		got := stored(t, st, sess.ID)
		if !got.RevokedAt.Equal(c.Now()) {
			t.Fatalf("round %d: revoked_at = %v, want %v (a step-up undid the revocation)", round, got.RevokedAt, c.Now())
		}
		switch {
		case raiseErr == nil:
			raised++
			if got.ACR != "aal2" || !slices.Equal(got.AMR, aal2) {
				t.Errorf("round %d: Raise succeeded but stored %s %v", round, got.ACR, got.AMR)
			}
		case errors.Is(raiseErr, tokens.ErrSessionEnded):
			refused++
			if got.ACR != "aal1" || !slices.Equal(got.AMR, aal1) {
				t.Errorf("round %d: Raise refused but stored %s %v", round, got.ACR, got.AMR)
			}
		default:
			t.Fatalf("round %d: Raise = %v, want nil or ErrSessionEnded", round, raiseErr)
		}
		if _, _, err := s.Rotate(ctx, tok); !errors.Is(err, tokens.ErrRefreshUnknown) {
			t.Errorf("round %d: Rotate after the race = %v, want ErrRefreshUnknown", round, err)
		}
		c.Advance(time.Second)
	}
	if raised+refused != 12 {
		t.Fatalf("raised %d + refused %d, want 12", raised, refused)
	}
	t.Logf("Raise before Revoke %d times, after %d times", raised, refused)
}

// TestRotateRace presents one refresh token 30 times at once: exactly one
// new token is handed out; every other call is refused as unknown (it lost
// the compare-and-set before the rotation was recorded) or as reuse (after;
// the session is then revoked, the winner's token with it).
func TestRotateRace(t *testing.T) {
	ctx := context.Background()
	s, _, st := newSessions(t)
	for round := range 3 {
		sess, tok := start(t, s, "u1")
		const n = 30
		var (
			wg                     sync.WaitGroup
			mu                     sync.Mutex
			winners                []string
			unknown, reused, other int
		)
		go1 := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-go1
				_, next, err := s.Rotate(ctx, tok)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners = append(winners, next)
				case errors.Is(err, tokens.ErrRefreshReused):
					reused++
				case errors.Is(err, tokens.ErrRefreshUnknown):
					unknown++
				default:
					other++
					t.Errorf("round %d: Rotate = %v", round, err)
				}
			})
		}
		close(go1)
		wg.Wait()
		t.Logf("round %d: %d winner, %d unknown, %d reused", round, len(winners), unknown, reused)
		if len(winners) != 1 || len(winners)+unknown+reused != n || other != 0 {
			t.Fatalf("round %d: %d new tokens, %d unknown, %d reused, %d other; want exactly 1 new token and %d refusals",
				round, len(winners), unknown, reused, other, n-1)
		}
		got := stored(t, st, sess.ID)
		if got.RefreshHash != tokens.HashRefresh(winners[0]) {
			t.Errorf("round %d: the stored token is not the one handed out", round)
		}
		_, _, err := s.Rotate(ctx, winners[0])
		switch {
		case reused > 0 && (got.RevokedAt.IsZero() || !errors.Is(err, tokens.ErrRefreshUnknown)):
			t.Errorf("round %d: reuse detected but revoked_at %v and the winner's token gave %v", round, got.RevokedAt, err)
		case reused == 0 && (!got.RevokedAt.IsZero() || err != nil):
			t.Errorf("round %d: no reuse but revoked_at %v and the winner's token gave %v", round, got.RevokedAt, err)
		}
	}
}

func TestOfRefresh(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newSessions(t)
	a, tok1 := start(t, s, "alice")
	b, bTok := start(t, s, "bob")

	got, err := s.OfRefresh(ctx, tok1)
	if err != nil || got.ID != a.ID {
		t.Fatalf("OfRefresh(current) = %v, %v; want session %s", got, err, a.ID)
	}
	_, tok2, err := s.Rotate(ctx, tok1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token string
		want        string // session id, or "" for ErrRefreshUnknown
	}{
		{"Current", tok2, a.ID},
		{"OtherSessionCurrent", bTok, b.ID},
		{"Rotated", tok1, ""},
		{"OtherSessionsSecret", b.ID + tok2[strings.IndexByte(tok2, '.'):], ""},
		{"NoSuchSession", "nosuch" + tok2[strings.IndexByte(tok2, '.'):], ""},
		{"Garbage", "garbage", ""},
		{"Empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.OfRefresh(ctx, tc.token)
			if tc.want == "" {
				if !errors.Is(err, tokens.ErrRefreshUnknown) || got != nil {
					t.Fatalf("OfRefresh = %v, %v; want ErrRefreshUnknown", got, err)
				}
				return
			}
			if err != nil || got.ID != tc.want {
				t.Fatalf("OfRefresh = %v, %v; want session %s", got, err, tc.want)
			}
		})
	}
	// Looking up the rotated token is not a use of it: nothing was revoked.
	if _, err := s.Active(ctx, a.ID); err != nil {
		t.Errorf("Active after OfRefresh(rotated) = %v", err)
	}
}

// Grace period: the same client presenting a just-rotated token again gets
// the same successor; anything else is reuse, as without a grace period.

var graceKey = []byte("0123456789abcdef0123456789abcdef")

const (
	tabA = "client-a" // a fingerprint; what it is made of does not matter here
	tabB = "client-b"
)

// newGraceSessions is newSessions with a grace key and a 10 s grace.
func newGraceSessions(t *testing.T) (*tokens.Sessions, *clock, *store.Sessions) {
	t.Helper()
	s, c, st := newSessions(t)
	s.GraceKey, s.Grace = graceKey, 10*time.Second
	return s, c, st
}

// rotated starts a session and rotates its first token from client: it
// returns the session, the rotated token and its successor.
func rotated(t *testing.T, s *tokens.Sessions, client string) (*tokens.Session, string, string) {
	t.Helper()
	sess, tok1 := start(t, s, "u1")
	_, tok2, err := s.RotateFrom(context.Background(), tok1, client)
	if err != nil {
		t.Fatalf("RotateFrom(first): %v", err)
	}
	return sess, tok1, tok2
}

// wantReuse fails t unless presenting tok from client is reuse that revoked
// the session at the clock's now.
func wantReuse(t *testing.T, s *tokens.Sessions, st *store.Sessions, c *clock, id, tok, client string) {
	t.Helper()
	got, next, err := s.RotateFrom(context.Background(), tok, client)
	if !errors.Is(err, tokens.ErrRefreshReused) || next != "" {
		t.Fatalf("RotateFrom(rotated token) = %q, %v; want ErrRefreshReused", next, err)
	}
	if got == nil || !got.RevokedAt.Equal(c.Now()) {
		t.Errorf("reuse returned session %+v, want it revoked at %v", got, c.Now())
	}
	if r := stored(t, st, id).RevokedAt; !r.Equal(c.Now()) {
		t.Errorf("stored revoked_at = %v, want %v", r, c.Now())
	}
}

func TestRotateGrace(t *testing.T) {
	ctx := context.Background()

	t.Run("SameClientWithinGrace", func(t *testing.T) {
		s, c, st := newGraceSessions(t)
		sess, tok1, tok2 := rotated(t, s, tabA)
		issued := stored(t, st, sess.ID).RefreshIssuedAt
		for _, d := range []time.Duration{0, 5 * time.Second, 5*time.Second - time.Millisecond} { // up to 10 s - 1 ms
			c.Advance(d)
			got, next, err := s.RotateFrom(ctx, tok1, tabA)
			if err != nil || next != tok2 {
				t.Fatalf("at +%v: RotateFrom(rotated token, same client) = %q, %v; want the successor %q", d, next, err, tok2)
			}
			if got.ID != sess.ID || !got.RevokedAt.IsZero() {
				t.Errorf("returned session %s revoked at %v, want %s live", got.ID, got.RevokedAt, sess.ID)
			}
		}
		db := stored(t, st, sess.ID)
		if !db.RevokedAt.IsZero() || db.RefreshHash != tokens.HashRefresh(tok2) || !db.RefreshIssuedAt.Equal(issued) {
			t.Errorf("stored revoked %v, current token changed %v, issued %v (want %v): the grace wrote something",
				db.RevokedAt, db.RefreshHash != tokens.HashRefresh(tok2), db.RefreshIssuedAt, issued)
		}
		// The successor rotates as usual; its predecessor then is reuse,
		// even from the same client within the grace of its own rotation.
		if _, _, err := s.RotateFrom(ctx, tok2, tabA); err != nil {
			t.Fatalf("RotateFrom(successor): %v", err)
		}
		wantReuse(t, s, st, c, sess.ID, tok1, tabA)
	})
	t.Run("AtGraceEnd", func(t *testing.T) {
		s, c, st := newGraceSessions(t)
		sess, tok1, _ := rotated(t, s, tabA)
		c.Advance(s.Grace)
		wantReuse(t, s, st, c, sess.ID, tok1, tabA)
	})
	t.Run("OtherClientWithinGrace", func(t *testing.T) {
		s, c, st := newGraceSessions(t)
		sess, tok1, tok2 := rotated(t, s, tabA)
		c.Advance(time.Second)
		wantReuse(t, s, st, c, sess.ID, tok1, tabB)
		// The family is over for the rotating client too.
		if _, _, err := s.RotateFrom(ctx, tok2, tabA); !errors.Is(err, tokens.ErrRefreshUnknown) {
			t.Errorf("RotateFrom(successor of a revoked session) = %v, want ErrRefreshUnknown", err)
		}
		if _, next, err := s.RotateFrom(ctx, tok1, tabA); next != "" || !errors.Is(err, tokens.ErrRefreshReused) {
			t.Errorf("RotateFrom(rotated token, same client, after revocation) = %q, %v; want ErrRefreshReused", next, err)
		}
	})
	t.Run("NoClient", func(t *testing.T) {
		s, c, st := newGraceSessions(t)
		sess, tok1, _ := rotated(t, s, tabA)
		wantReuse(t, s, st, c, sess.ID, tok1, "")
	})
	t.Run("ChangedKey", func(t *testing.T) {
		s, c, st := newGraceSessions(t)
		sess, tok1, _ := rotated(t, s, tabA)
		s.GraceKey = []byte("fedcba9876543210fedcba9876543210")
		wantReuse(t, s, st, c, sess.ID, tok1, tabA)
	})
	t.Run("SuccessorSealed", func(t *testing.T) {
		s, _, st := newGraceSessions(t)
		sess, tok1, tok2 := rotated(t, s, tabA)
		h := stored(t, st, sess.ID).Handover
		if h == nil || h.From != tokens.HashRefresh(tok1) || h.Client != tabA {
			t.Fatalf("stored handover %+v, want one from the rotated token by %s", h, tabA)
		}
		if strings.Contains(string(h.Sealed), tok2[strings.IndexByte(tok2, '.')+1:]) {
			t.Errorf("the store holds the successor in clear")
		}
	})
	for _, tc := range []struct {
		name  string
		key   []byte
		grace time.Duration
	}{
		{"NoKey", nil, 10 * time.Second},
		{"ZeroGrace", graceKey, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c, st := newSessions(t)
			s.GraceKey, s.Grace = tc.key, tc.grace
			sess, tok1, _ := rotated(t, s, tabA)
			if h := stored(t, st, sess.ID).Handover; h != nil {
				t.Errorf("grace off, but a handover was stored: %+v", h)
			}
			wantReuse(t, s, st, c, sess.ID, tok1, tabA)
		})
	}
}

// TestRotateGraceRace presents one refresh token 20 times at once from one
// client: every call gets the one and same successor and the session
// stays live. From two clients at once, one rotates and the other is reuse.
func TestRotateGraceRace(t *testing.T) {
	ctx := context.Background()
	s, _, st := newGraceSessions(t)
	present := func(tok string, clients []string) ([]string, []error) {
		var wg sync.WaitGroup
		nexts, errs := make([]string, len(clients)), make([]error, len(clients))
		go1 := make(chan struct{})
		for i, cl := range clients {
			wg.Go(func() { <-go1; _, nexts[i], errs[i] = s.RotateFrom(ctx, tok, cl) })
		}
		close(go1)
		wg.Wait()
		return nexts, errs
	}
	t.Run("SameClient", func(t *testing.T) {
		for round := range 3 {
			sess, tok := start(t, s, "u1")
			nexts, errs := present(tok, slices.Repeat([]string{tabA}, 20))
			for i := range nexts {
				if errs[i] != nil || nexts[i] != nexts[0] || nexts[i] == "" {
					t.Fatalf("round %d: call %d = %q, %v; want the successor %q", round, i, nexts[i], errs[i], nexts[0])
				}
			}
			got := stored(t, st, sess.ID)
			if !got.RevokedAt.IsZero() || got.RefreshHash != tokens.HashRefresh(nexts[0]) {
				t.Fatalf("round %d: session revoked at %v, stored token is the handed-out one: %v", round, got.RevokedAt,
					got.RefreshHash == tokens.HashRefresh(nexts[0]))
			}
		}
	})
	t.Run("TwoClients", func(t *testing.T) {
		for round := range 5 {
			sess, tok := start(t, s, "u1")
			nexts, errs := present(tok, []string{tabA, tabB})
			ok, reused := 0, 0
			for i := range errs {
				switch {
				case errs[i] == nil && nexts[i] != "":
					ok++
				case errors.Is(errs[i], tokens.ErrRefreshReused):
					reused++
				default:
					t.Fatalf("round %d: call %d = %q, %v", round, i, nexts[i], errs[i])
				}
			}
			if ok != 1 || reused != 1 {
				t.Fatalf("round %d: %d rotated, %d reused; want 1 and 1", round, ok, reused)
			}
			if stored(t, st, sess.ID).RevokedAt.IsZero() {
				t.Fatalf("round %d: reuse from another client left the session live", round)
			}
		}
	})
}

func TestFingerprint(t *testing.T) {
	if tokens.Fingerprint("1.2.3.4", "UA") == tokens.Fingerprint("1.2.3.4U", "A") {
		t.Errorf("Fingerprint does not separate its parts")
	}
	if a, b := tokens.Fingerprint("1.2.3.4", "UA"), tokens.Fingerprint("1.2.3.4", "UA"); a != b || len(a) != 64 {
		t.Errorf("Fingerprint = %q, %q; want one 64-hex-digit value", a, b)
	}
}
