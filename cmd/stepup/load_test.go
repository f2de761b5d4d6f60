package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

var loadDuration = flag.Duration("load", 10*time.Second, "how long BenchmarkSecondFactorLoad runs")

// BenchmarkSecondFactorLoad drives the TOTP second-factor step (POST
// /v1/mfa/totp/verify → session and tokens) from 1 and 32 concurrent clients
// against 2,000 users on the embedded store, for -load (default 10 s), and
// reports latency percentiles, successful steps per second and errors. Then
// it checks that nothing the steps had to write was skipped: every user's
// budget is reset, every factor's last use recorded, and one sign-in
// security event stored per success.
//
// mfa_tokens are minted in-process (the password step is argon2id-bound
// and measured by BenchmarkPasswordStep); each request is a real HTTP call.
//
//	go test -run XXX -bench SecondFactorLoad -benchtime 1x -args -load=60s ./cmd/stepup/
func BenchmarkSecondFactorLoad(b *testing.B) {
	for _, clients := range []int{1, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			a := startApp(b, appOptions{})
			users := scaleSeed(b, a, 2000)
			var (
				errs    atomic.Int64
				mu      sync.Mutex
				lat     []time.Duration
				perUser = make([]atomic.Int64, len(users))
				wg      sync.WaitGroup
			)
			deadline := time.Now().Add(*loadDuration)
			b.ResetTimer()
			start := time.Now()
			for w := range clients {
				wg.Go(func() {
					// Each client has users of its own (k ≡ w mod clients), so one
					// user's sign-ins never overtake each other. A time step is
					// accepted once per factor: coming back to a user whose last
					// step is the clock's, the client moves the clock on by one
					// step — once, whoever needs it first; codes still in flight
					// for the step before stay valid (±1 step skew).
					last := map[int]int64{}
					var mine []time.Duration
					for k := w; time.Now().Before(deadline); k += clients {
						if k >= len(users) {
							k = w
						}
						if prev, ok := last[k]; ok {
							for {
								now := a.Clock.ns.Load()
								if time.Unix(0, now).Unix()/30 > prev {
									break
								}
								a.Clock.ns.CompareAndSwap(now, now+int64(30*time.Second))
							}
						}
						u := users[k]
						tok, claims, err := a.Flows().Issuer.Pending(tokens.PendingClaims{Subject: u.ID, AMR: []string{mfa.AMRPassword}})
						if err == nil {
							err = a.Flows().Pending.Open(context.Background(), claims.Record, u.ID, a.Clock.Now(), claims.Expiry)
						}
						if err != nil {
							b.Error(err)
							return
						}
						step := a.Clock.step()
						code := totpCode(u.Factors[0].Secret, step)
						t0 := time.Now()
						r, err := a.postJSON("/v1/mfa/totp/verify", tok, map[string]string{"code": code})
						d := time.Since(t0)
						if err != nil || r.Status != http.StatusOK {
							if errs.Add(1) <= 3 {
								b.Logf("error: %v %d %s", err, r.Status, r.Body)
							}
							continue
						}
						last[k] = step
						perUser[k].Add(1)
						mine = append(mine, d)
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			pct := func(p float64) float64 {
				if len(lat) == 0 {
					return 0
				}
				return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "steps/s")
			b.ReportMetric(float64(errs.Load()), "errors")
			b.ReportMetric(0, "ns/op")

			// Nothing skipped: events drain, then every write is checked.
			a.Flows().Close()
			ctx := context.Background()
			missing := 0
			for k, u := range users {
				want := int(perUser[k].Load())
				if want == 0 {
					continue
				}
				got, err := a.DB().User(ctx, u.ID)
				if err != nil {
					b.Fatal(err)
				}
				if got.Attempts.Failures != 0 || got.Factors[0].LastUsedAt.IsZero() {
					b.Errorf("user %s: %d failures counted, last use %v after %d successes", u.ID, got.Attempts.Failures, got.Factors[0].LastUsedAt, want)
				}
				evs, err := a.DB().Events().Events(ctx, u.ID, 1000)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for _, e := range evs {
					if e.Type == mfa.EventLoginSuccess {
						n++
					}
				}
				if n != want {
					missing += want - n
				}
			}
			if missing != 0 {
				b.Errorf("%d sign-in security events missing", missing)
			}
			b.ReportMetric(float64(missing), "events-missing")
		})
	}
}
