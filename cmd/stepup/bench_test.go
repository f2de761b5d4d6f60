package main

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// Benchmarks of the service's hot paths through the real handlers and store,
// each beside the raw primitive that bounds it from below. Run with
//
//	go test -run XXX -bench . -benchmem -benchtime=20x ./cmd/stepup/
//
// Issuing and verifying tokens in isolation is measured in package tokens
// (BenchmarkIssueAccess, BenchmarkVerifyAccess, BenchmarkRawECDSAVerify);
// it is not repeated here.

// BenchmarkRawArgon2id is one argon2id hash at the service's cost (OWASP:
// m=19 MiB, t=2, p=1): the floor of every password step.
func BenchmarkRawArgon2id(b *testing.B) {
	pw, salt := []byte("correct horse battery staple"), []byte("0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		argon2.IDKey(pw, salt, 2, 19*1024, 1, 32)
	}
}

// BenchmarkPasswordStep is POST /v1/login over loopback for a user without
// second factors: budget slot, user lookup, argon2id, budget reset, session
// and refresh token inserts, access token. Each success resets the password
// budget, so it never throttles.
func BenchmarkPasswordStep(b *testing.B) {
	a := startApp(b, appOptions{})
	a.signup(b, "bench-user", "bench password")
	b.ReportAllocs()
	for b.Loop() {
		r, err := a.postJSON("/v1/login", "", credentials{"bench-user", "bench password"})
		if err != nil || r.Status != http.StatusOK {
			b.Fatalf("login: %v %d %s", err, r.Status, r.Body)
		}
	}
}

// BenchmarkTOTPVerify is POST /v1/mfa/totp/verify over loopback with a right
// code: the token's attempt, the account's attempt with the user read and
// seed decryption, the time step's compare-and-set, the token's
// consumption, the session and tokens. Every iteration gets
// a fresh mfa_token and, with the clock 30 s on, a fresh time step; the login
// that makes the token is not timed.
func BenchmarkTOTPVerify(b *testing.B) {
	a := startApp(b, appOptions{})
	u := newTOTPUser(b, a, "bench-totp")
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		a.Clock.Advance(30 * time.Second)
		tok := a.mfaToken(b, u.Username, u.Password)
		code := u.code(a.Clock.step())
		b.StartTimer()
		r, err := a.postJSON("/v1/mfa/totp/verify", tok, codeBody{code})
		if err != nil || r.Status != http.StatusOK {
			b.Fatalf("verify: %v %d %s", err, r.Status, r.Body)
		}
	}
}

// BenchmarkRefresh is POST /v1/token/refresh over loopback: the rotation's
// compare-and-set on the session, the rotated hash's record, a new access
// token.
func BenchmarkRefresh(b *testing.B) {
	a := startApp(b, appOptions{})
	u := newTOTPUser(b, a, "bench-refresh")
	a.Clock.Advance(30 * time.Second)
	var l loginResult
	a.verify(b, a.mfaToken(b, u.Username, u.Password), u.code(a.Clock.step())).decode(b, http.StatusOK, &l)
	refresh := l.RefreshToken
	b.ReportAllocs()
	for b.Loop() {
		r, err := a.postJSON("/v1/token/refresh", "", map[string]string{"refresh_token": refresh})
		if err != nil || r.Status != http.StatusOK {
			b.Fatalf("refresh: %v %d %s", err, r.Status, r.Body)
		}
		var next loginResult
		r.decode(b, http.StatusOK, &next)
		refresh = next.RefreshToken
	}
}

// BenchmarkMe is GET /v1/me over loopback: access token verification, the
// session check and the user read. Compare with BenchmarkRawECDSAVerifyP256.
func BenchmarkMe(b *testing.B) {
	a := startApp(b, appOptions{})
	a.signup(b, "bench-me", "bench password")
	tok := a.login(b, "bench-me", "bench password").AccessToken
	b.ReportAllocs()
	for b.Loop() {
		r, err := a.send(http.MethodGet, "/v1/me", tok, "", nil)
		if err != nil || r.Status != http.StatusOK {
			b.Fatalf("me: %v %d %s", err, r.Status, r.Body)
		}
	}
}

// BenchmarkRawECDSAVerifyP256 is the floor of every access-token check: the
// SHA-256 of a real access token's signing input and one P-256 verification
// of its JOSE signature, with the key taken from the JWKS.
func BenchmarkRawECDSAVerifyP256(b *testing.B) {
	a := startApp(b, appOptions{})
	a.signup(b, "bench-ecdsa", "bench password")
	p := parseJWT(b, a.login(b, "bench-ecdsa", "bench password").AccessToken)
	kid, _ := p.Header["kid"].(string)
	pub, _ := a.publicKey(b, kid)
	input := []byte(p.SigningInput)
	b.ReportAllocs()
	for b.Loop() {
		sum := sha256.Sum256(input)
		if !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(p.Sig[:32]), new(big.Int).SetBytes(p.Sig[32:])) {
			b.Fatal("signature does not verify")
		}
	}
}

// heapObjects is the heap memory held by objects, live or not yet swept.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkLogin32Parallel sends 32 logins of 32 users at once and reports
// how many got through, how many were turned away by the bounded hashing
// queue (503 overloaded), and the heap's peak growth during the burst: the
// queue is what keeps 32 × 19 MiB from being allocated at once. The clock
// jumps 16 minutes between bursts so a user turned away every time is never
// throttled by back-off (the longest is 15 minutes). Nothing here is
// asserted; the numbers are reported. peak-heap-MiB is the largest growth,
// over a burst, of the heap held by objects (live or not yet swept) above
// its level after a GC just before the burst.
func BenchmarkLogin32Parallel(b *testing.B) { benchLoginParallel(b, 32) }

// BenchmarkLogin64Parallel is the same burst with 64 sign-ins at once.
func BenchmarkLogin64Parallel(b *testing.B) { benchLoginParallel(b, 64) }

func benchLoginParallel(b *testing.B, n int) {
	// Each 503 is logged at error level; keep them out of the output.
	a := startApp(b, appOptions{Logger: slog.New(slog.DiscardHandler)})
	names := make([]string, n)
	var wg sync.WaitGroup
	for i := range names {
		names[i] = fmt.Sprintf("par-%02d", i)
	}
	for w := range 2 { // two at a time: the hasher has NumCPU workers
		wg.Go(func() {
			for i := w; i < n; i += 2 {
				if r, err := a.postJSON("/v1/users", "", credentials{names[i], "bench password"}); err != nil || r.Status != http.StatusCreated {
					b.Errorf("signup %s: %v %d", names[i], err, r.Status)
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	bodies := make([][]byte, n)
	for i, name := range names {
		bodies[i], _ = json.Marshal(credentials{name, "bench password"})
	}

	var peak, okCount, busy, other uint64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		a.Clock.Advance(16 * time.Minute)
		runtime.GC()
		base := heapObjects()
		stop, sampled := make(chan struct{}), make(chan uint64)
		go func() {
			// runtime/metrics, unlike ReadMemStats, does not stop the
			// world. The sampling still slows the burst down (ns/op is not
			// a latency figure here).
			top := base
			t := time.NewTicker(2 * time.Millisecond)
			defer t.Stop()
			for {
				top = max(top, heapObjects())
				select {
				case <-stop:
					sampled <- top
					return
				case <-t.C:
				}
			}
		}()
		b.StartTimer()
		rs := fanOut(b, n, func(i int) (response, error) {
			return a.send(http.MethodPost, "/v1/login", "", "application/json", bodies[i])
		})
		b.StopTimer()
		close(stop)
		if top := <-sampled; top > base {
			peak = max(peak, top-base)
		}
		for _, r := range rs {
			switch {
			case r.Status == http.StatusOK:
				okCount++
			case r.Status == http.StatusServiceUnavailable && r.code() == "overloaded":
				busy++
			default:
				other++
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(okCount)/float64(b.N), "ok/op")
	b.ReportMetric(float64(busy)/float64(b.N), "busy/op")
	b.ReportMetric(float64(other)/float64(b.N), "other/op")
}

// BenchmarkPasswordStepMFA is the password step of a user with a second
// factor: it ends with mfa_required and an mfa_token, no session yet.
func BenchmarkPasswordStepMFA(b *testing.B) {
	a := startApp(b, appOptions{})
	u := newTOTPUser(b, a, "bench-mfa")
	b.ReportAllocs()
	for b.Loop() {
		r, err := a.postJSON("/v1/login", "", credentials{u.Username, u.Password})
		if err != nil || r.Status != http.StatusOK {
			b.Fatalf("login: %v %d %s", err, r.Status, r.Body)
		}
	}
}
