package mfa_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/store"
	"github.com/stepup-auth/stepup/store/storetest"
)

// rfc6238 computes a TOTP code independently of the code under test:
// HOTP (RFC 4226 §5.3: HMAC-SHA-1 of the big-endian counter, dynamic
// truncation, modulo 10^digits) with the counter T = floor(unix / period)
// (RFC 6238 §4.2).
func rfc6238(secret []byte, at time.Time, period int64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(at.Unix()/period))
	mac := hmac.New(sha1.New, secret)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := uint64(sum[off]&0x7f)<<24 | uint64(sum[off+1])<<16 | uint64(sum[off+2])<<8 | uint64(sum[off+3])
	mod := uint64(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// stepCode is the 6-digit, 30-second code of a time step.
func stepCode(secret []byte, step int64) string {
	return rfc6238(secret, time.Unix(step*30, 0), 30, 6)
}

// totpStart is the middle of a time step, so ±1 step is unambiguous.
var totpStart = time.Date(2030, 1, 1, 0, 0, 15, 0, time.UTC)

// totpVerifier is how the service accepts a code: TOTP.Match says which
// time step it is for, UserStore.UseStep takes that step atomically (only if
// later than the last). Each factor it sees is stored once on a user of its
// own in a real store.
type totpVerifier struct {
	*mfa.TOTP
	db    *store.DB
	mu    sync.Mutex
	users map[string]string // factor id → user id
}

// Verify matches code and takes its step, as the api does.
func (v *totpVerifier) Verify(ctx context.Context, f *mfa.Factor, code string) (int64, error) {
	v.mu.Lock()
	uid, ok := v.users[f.ID]
	if !ok {
		uid = "user-" + f.ID
		fc := *f
		fc.Confirmed = true // the api accepts codes only of confirmed factors
		u := &mfa.User{ID: uid, Username: uid, CreatedAt: v.Now(), Factors: []mfa.Factor{fc}}
		if err := v.db.CreateUser(ctx, u); err != nil {
			v.mu.Unlock()
			return 0, err
		}
		v.users[f.ID] = uid
	}
	v.mu.Unlock()
	step, err := v.Match(f, code)
	if err != nil {
		return 0, err
	}
	if err := v.db.UseStep(ctx, uid, f.ID, step, v.Now(), false, time.Time{}, false); err != nil {
		return 0, err
	}
	return step, nil
}

func newVerifier(db *store.DB, clk *fakeClock) *totpVerifier {
	v := &totpVerifier{TOTP: mfa.NewTOTP("Stepup"), db: db, users: map[string]string{}}
	v.Now = clk.Now
	return v
}

// newTOTP returns a 6-digit, 30 s, ±1 step verifier on a fresh store, its
// clock at totpStart, and the current step.
func newTOTP(t *testing.T) (*totpVerifier, *fakeClock, int64) {
	t.Helper()
	clk := newClock(totpStart)
	return newVerifier(storetest.New(t), clk), clk, totpStart.Unix() / 30
}

func newFactor(t *testing.T, id string) *mfa.Factor {
	t.Helper()
	secret := make([]byte, 20)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	return &mfa.Factor{ID: id, Kind: mfa.KindTOTP, Confirmed: true, Secret: secret}
}

// RFC 6238 Appendix B, SHA-1 rows.
func TestTOTPRFC6238Vectors(t *testing.T) {
	secret := []byte("12345678901234567890")
	v, clk, _ := newTOTP(t)
	v.Digits = 8
	tests := []struct {
		unix int64
		want string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	}
	for _, tt := range tests {
		t.Run(strconv.FormatInt(tt.unix, 10), func(t *testing.T) {
			at := time.Unix(tt.unix, 0)
			if got := rfc6238(secret, at, 30, 8); got != tt.want {
				t.Fatalf("reference implementation: got %s, want %s", got, tt.want)
			}
			clk.Set(at)
			f := &mfa.Factor{ID: "rfc-" + strconv.FormatInt(tt.unix, 10), Kind: mfa.KindTOTP, Secret: secret}
			step, err := v.Verify(context.Background(), f, tt.want)
			if err != nil {
				t.Fatalf("Verify(%s) at %d: got %v, want nil", tt.want, tt.unix, err)
			}
			if want := tt.unix / 30; step != want {
				t.Errorf("accepted step: got %d, want %d", step, want)
			}
		})
	}
}

func TestTOTPWindow(t *testing.T) {
	v, _, cur := newTOTP(t)
	tests := []struct {
		name   string
		offset int64
		want   error
	}{
		{"TwoStepsBehindRefused", -2, mfa.ErrBadCode},
		{"OneStepBehindAccepted", -1, nil},
		{"CurrentStepAccepted", 0, nil},
		{"OneStepAheadAccepted", +1, nil},
		{"TwoStepsAheadRefused", +2, mfa.ErrBadCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFactor(t, "window-"+tt.name)
			step, err := v.Verify(context.Background(), f, stepCode(f.Secret, cur+tt.offset))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify(code of step now%+d): got %v, want %v", tt.offset, err, tt.want)
			}
			if tt.want == nil && step != cur+tt.offset {
				t.Errorf("accepted step: got %d, want %d", step, cur+tt.offset)
			}
		})
	}
}

func TestTOTPStepBoundaries(t *testing.T) {
	v, clk, cur := newTOTP(t)
	first := time.Unix(cur*30, 0)   // first second of step cur
	last := time.Unix(cur*30+29, 0) // last second of step cur
	tests := []struct {
		name string
		at   time.Time
		step int64
		want error
	}{
		{"FirstSecondAcceptsPrevious", first, cur - 1, nil},
		{"FirstSecondRefusesTwoBack", first, cur - 2, mfa.ErrBadCode},
		{"LastSecondAcceptsNext", last, cur + 1, nil},
		{"LastSecondRefusesTwoAhead", last, cur + 2, mfa.ErrBadCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.Set(tt.at)
			f := newFactor(t, "boundary-"+tt.name)
			_, err := v.Verify(context.Background(), f, stepCode(f.Secret, tt.step))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify at %s, code of step %+d: got %v, want %v", tt.at.Format(time.TimeOnly), tt.step-cur, err, tt.want)
			}
		})
	}
}

func TestTOTPSingleUse(t *testing.T) {
	ctx := context.Background()
	v, clk, cur := newTOTP(t)

	t.Run("ReplayedCode", func(t *testing.T) {
		f := newFactor(t, "replay")
		code := stepCode(f.Secret, cur)
		if _, err := v.Verify(ctx, f, code); err != nil {
			t.Fatalf("first use: got %v, want nil", err)
		}
		if _, err := v.Verify(ctx, f, code); !errors.Is(err, mfa.ErrBadCode) {
			t.Fatalf("replay: got %v, want ErrBadCode", err)
		}
	})

	t.Run("ReplayAfterClockMoves", func(t *testing.T) {
		defer clk.Set(totpStart)
		f := newFactor(t, "replay-later")
		code := stepCode(f.Secret, cur)
		if _, err := v.Verify(ctx, f, code); err != nil {
			t.Fatalf("first use: got %v, want nil", err)
		}
		clk.Advance(30 * time.Second) // the code is now one step behind, still in the window
		if _, err := v.Verify(ctx, f, code); !errors.Is(err, mfa.ErrBadCode) {
			t.Fatalf("replay one step later: got %v, want ErrBadCode", err)
		}
	})

	t.Run("OlderStepAfterNewer", func(t *testing.T) {
		f := newFactor(t, "backwards")
		if _, err := v.Verify(ctx, f, stepCode(f.Secret, cur)); err != nil {
			t.Fatalf("step N: got %v, want nil", err)
		}
		if _, err := v.Verify(ctx, f, stepCode(f.Secret, cur-1)); !errors.Is(err, mfa.ErrBadCode) {
			t.Fatalf("step N-1 after N: got %v, want ErrBadCode", err)
		}
		if _, err := v.Verify(ctx, f, stepCode(f.Secret, cur+1)); err != nil {
			t.Fatalf("step N+1 after N: got %v, want nil", err)
		}
		if _, err := v.Verify(ctx, f, stepCode(f.Secret, cur-1)); !errors.Is(err, mfa.ErrBadCode) {
			t.Fatalf("step N-1 after N+1: got %v, want ErrBadCode", err)
		}
	})

	t.Run("OlderStepAfterFutureStepAcrossClock", func(t *testing.T) {
		defer clk.Set(totpStart)
		f := newFactor(t, "backwards-later")
		if _, err := v.Verify(ctx, f, stepCode(f.Secret, cur+1)); err != nil { // accepted early, by skew
			t.Fatalf("step N+1 at N: got %v, want nil", err)
		}
		clk.Advance(30 * time.Second) // now at N+1; N is in the window
		if _, err := v.Verify(ctx, f, stepCode(f.Secret, cur)); !errors.Is(err, mfa.ErrBadCode) {
			t.Fatalf("step N at N+1 after N+1 was used: got %v, want ErrBadCode", err)
		}
		if _, err := v.Verify(ctx, f, stepCode(f.Secret, cur+2)); err != nil {
			t.Fatalf("step N+2 at N+1: got %v, want nil", err)
		}
	})

	t.Run("WrongCode", func(t *testing.T) {
		f := newFactor(t, "wrong")
		window := map[string]bool{}
		for s := cur - 1; s <= cur+1; s++ {
			window[stepCode(f.Secret, s)] = true
		}
		wrong := "000000"
		for n := 0; window[wrong]; n++ {
			wrong = fmt.Sprintf("%06d", n+1)
		}
		if _, err := v.Verify(ctx, f, wrong); !errors.Is(err, mfa.ErrBadCode) {
			t.Fatalf("code of no step: got %v, want ErrBadCode", err)
		}
		if _, err := v.Verify(ctx, f, stepCode(f.Secret, cur)); err != nil {
			t.Fatalf("right code after a wrong one: got %v, want nil", err)
		}
	})

	t.Run("FactorsAreIndependent", func(t *testing.T) {
		a := newFactor(t, "phone")
		b := &mfa.Factor{ID: "tablet", Kind: mfa.KindTOTP, Secret: a.Secret}
		code := stepCode(a.Secret, cur)
		if _, err := v.Verify(ctx, a, code); err != nil {
			t.Fatalf("factor a: got %v, want nil", err)
		}
		if _, err := v.Verify(ctx, b, code); err != nil {
			t.Fatalf("same step on factor b: got %v, want nil", err)
		}
	})
}

// TestTOTPReplayAfterSweep: an accepted step's record outlives the step's
// time in the window, so sweeping expired records never re-opens a code.
// The newest step the window accepts (now+Skew) stays acceptable until the
// last second of step now+2·Skew.
func TestTOTPReplayAfterSweep(t *testing.T) {
	ctx := context.Background()
	clk := newClock(totpStart)
	cfg := storetest.Config(t)
	cfg.Now = clk.Now
	db := storetest.Open(t, cfg)
	cur := totpStart.Unix() / 30
	tests := []struct {
		name string
		skew uint
		bug  string
	}{
		{"Skew1", 1, ""},
		{"Skew2", 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.bug != "" {
				t.Skip(tt.bug)
			}
			clk.Set(totpStart)
			v := newVerifier(db, clk)
			v.Skew = tt.skew
			f := newFactor(t, "sweep-"+tt.name)
			step := cur + int64(tt.skew)
			code := stepCode(f.Secret, step)
			if _, err := v.Verify(ctx, f, code); err != nil {
				t.Fatalf("first use of step now+%d: got %v, want nil", tt.skew, err)
			}
			clk.Set(time.Unix((step+int64(tt.skew)+1)*30-1, 0)) // last second step is in the window
			if _, err := db.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(ctx, f, code); !errors.Is(err, mfa.ErrBadCode) {
				t.Fatalf("replay after a sweep while the step is still in the window: got %v, want ErrBadCode", err)
			}
		})
	}
}

func TestTOTPMalformedCode(t *testing.T) {
	v, _, cur := newTOTP(t)
	f := newFactor(t, "malformed")
	tests := []struct{ name, code string }{
		{"Empty", ""},
		{"FiveDigits", "12345"},
		{"SevenDigits", "1234567"},
		{"Letters", "abcdef"},
		{"FullWidthDigits", "１２３４５６"},
		{"ArabicIndicDigits", "١٢٣٤٥٦"},
		{"InnerSpace", "123 45"},
		{"LeadingSpace", " 12345"},
		{"PaddedValidCode", " " + stepCode(f.Secret, cur)},
		{"Sign", "-12345"},
		{"TrailingNewline", "12345\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := v.CheckFormat(tt.code); !errors.Is(err, mfa.ErrMalformedCode) {
				t.Errorf("CheckFormat(%q): got %v, want ErrMalformedCode", tt.code, err)
			}
			if _, err := v.Verify(context.Background(), f, tt.code); !errors.Is(err, mfa.ErrMalformedCode) {
				t.Errorf("Verify(%q): got %v, want ErrMalformedCode", tt.code, err)
			}
		})
	}
	t.Run("EightDigitsWhenSixConfigured", func(t *testing.T) {
		if err := v.CheckFormat("12345678"); !errors.Is(err, mfa.ErrMalformedCode) {
			t.Fatalf("got %v, want ErrMalformedCode", err)
		}
	})
	t.Run("SixDigitsWhenEightConfigured", func(t *testing.T) {
		eight := *v.TOTP
		eight.Digits = 8
		if err := eight.CheckFormat("123456"); !errors.Is(err, mfa.ErrMalformedCode) {
			t.Fatalf("got %v, want ErrMalformedCode", err)
		}
	})
	t.Run("StepNotConsumed", func(t *testing.T) {
		if _, err := v.Verify(context.Background(), f, stepCode(f.Secret, cur)); err != nil {
			t.Fatalf("valid code after malformed ones: got %v, want nil", err)
		}
	})
}

// TestTOTPRaceSameCode releases 50 verifications of one valid code at once:
// exactly one is accepted, every round.
func TestTOTPRaceSameCode(t *testing.T) {
	const rounds, n = 3, 50
	v, _, cur := newTOTP(t)
	for r := range rounds {
		f := newFactor(t, fmt.Sprintf("race-%d", r))
		code := stepCode(f.Secret, cur)
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := v.Verify(context.Background(), f, code)
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, mfa.ErrBadCode):
					t.Errorf("round %d: got %v, want nil or ErrBadCode", r, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if got := wins.Load(); got != 1 {
			t.Fatalf("round %d: %d of %d concurrent uses of one code accepted, want 1", r, got, n)
		}
	}
}

// TestTOTPRaceAdjacentSteps races codes of steps N and N+1. N+1 is the newest
// step of the window, so exactly one of its holders wins; N may win at most
// once, and never after N+1's acceptance was reported.
func TestTOTPRaceAdjacentSteps(t *testing.T) {
	const rounds, n = 5, 10
	v, _, cur := newTOTP(t)
	ctx := context.Background()
	for r := range rounds {
		f := newFactor(t, fmt.Sprintf("adjacent-%d", r))
		codes := map[int64]string{cur: stepCode(f.Secret, cur), cur + 1: stepCode(f.Secret, cur+1)}
		var (
			order    atomic.Int64 // orders call starts and returns
			mu       sync.Mutex
			wins     = map[int64]int{}
			newerEnd int64 // when N+1's acceptance returned
			olderBeg int64 // when N's accepted call began
		)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 2 * n {
			step := cur + int64(i%2)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				began := order.Add(1)
				got, err := v.Verify(ctx, f, codes[step])
				ended := order.Add(1)
				switch {
				case err == nil:
					if got != step {
						t.Errorf("round %d: accepted step %d for the code of %d", r, got, step)
					}
					mu.Lock()
					wins[step]++
					if step == cur+1 {
						newerEnd = ended
					} else {
						olderBeg = began
					}
					mu.Unlock()
				case !errors.Is(err, mfa.ErrBadCode):
					t.Errorf("round %d: got %v, want nil or ErrBadCode", r, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins[cur+1] != 1 {
			t.Fatalf("round %d: step N+1 accepted %d times, want 1", r, wins[cur+1])
		}
		if wins[cur] > 1 {
			t.Fatalf("round %d: step N accepted %d times, want at most 1", r, wins[cur])
		}
		if wins[cur] == 1 && olderBeg > newerEnd {
			t.Fatalf("round %d: step N accepted by a call that began (seq %d) after N+1's acceptance returned (seq %d)", r, olderBeg, newerEnd)
		}
		for _, step := range []int64{cur - 1, cur, cur + 1} {
			if _, err := v.Verify(ctx, f, stepCode(f.Secret, step)); !errors.Is(err, mfa.ErrBadCode) {
				t.Fatalf("round %d: step N%+d after the race: got %v, want ErrBadCode", r, step-cur, err)
			}
		}
	}
}

func TestTOTPGenerate(t *testing.T) {
	stream := make([]byte, 64)
	for i := range stream {
		stream[i] = byte(i + 1)
	}
	tests := []struct {
		name       string
		secretSize int
		wantLen    int
	}{
		{"ZeroMeansMinimum", 0, 20},
		{"TooSmallRaisedToMinimum", 10, 20},
		{"Minimum", 20, 20},
		{"Larger", 32, 32},
	}
	base, _, cur := newTOTP(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := *base.TOTP
			v.SecretSize = tt.secretSize
			v.Rand = bytes.NewReader(stream)
			e, err := v.Generate("alice@example.com")
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if len(e.Secret) != tt.wantLen {
				t.Errorf("secret length: got %d bytes, want %d", len(e.Secret), tt.wantLen)
			}
			if !bytes.Equal(e.Secret, stream[:tt.wantLen]) {
				t.Errorf("secret: got %x, want the first %d bytes of Rand", e.Secret, tt.wantLen)
			}
			decoded, err := b32(e.Base32)
			if err != nil || !bytes.Equal(decoded, e.Secret) {
				t.Errorf("Base32 %q decodes to %x, %v; want %x", e.Base32, decoded, err, e.Secret)
			}

			u, err := url.Parse(e.URI)
			if err != nil {
				t.Fatalf("URI %q: %v", e.URI, err)
			}
			q := u.Query()
			for _, c := range []struct{ what, got, want string }{
				{"scheme", u.Scheme, "otpauth"},
				{"type", u.Host, "totp"},
				{"label", u.Path, "/Stepup:alice@example.com"},
				{"issuer", q.Get("issuer"), "Stepup"},
				{"secret", q.Get("secret"), e.Base32},
				{"digits", q.Get("digits"), "6"},
				{"period", q.Get("period"), "30"},
				{"algorithm", q.Get("algorithm"), "SHA1"},
			} {
				if c.got != c.want {
					t.Errorf("URI %s: got %q, want %q (URI %s)", c.what, c.got, c.want, e.URI)
				}
			}
			if e.Key == nil || e.Key.Secret() != e.Base32 || e.Key.AccountName() != "alice@example.com" {
				t.Errorf("Key does not describe the enrollment: %v", e.Key)
			}

			// The seed handed to the app is the one Verify checks against.
			f := &mfa.Factor{ID: "enrolled-" + tt.name, Kind: mfa.KindTOTP, Secret: e.Secret}
			if _, err := v.Match(f, stepCode(e.Secret, cur)); err != nil {
				t.Errorf("code from the enrolled seed: got %v, want nil", err)
			}
		})
	}

	t.Run("EightDigitURI", func(t *testing.T) {
		v := *base.TOTP
		v.Digits = 8
		e, err := v.Generate("bob")
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(e.URI)
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Query().Get("digits"); got != "8" {
			t.Fatalf("digits: got %q, want 8", got)
		}
	})

	t.Run("SecretsDiffer", func(t *testing.T) {
		v := *base.TOTP
		a, errA := v.Generate("alice")
		b, errB := v.Generate("alice")
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		if bytes.Equal(a.Secret, b.Secret) {
			t.Fatalf("two enrollments got the same secret %x", a.Secret)
		}
	})

	t.Run("RandFailure", func(t *testing.T) {
		v := *base.TOTP
		v.Rand = bytes.NewReader(make([]byte, 5))
		if _, err := v.Generate("alice"); err == nil {
			t.Fatal("Generate with a short Rand: got nil error, want one")
		}
	})
}

// b32 decodes unpadded RFC 4648 Base32, as authenticator apps read it.
func b32(s string) ([]byte, error) {
	for len(s)%8 != 0 {
		s += "="
	}
	return base32.StdEncoding.DecodeString(s)
}
