package mfa_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/store"
	"github.com/stepup-auth/stepup/store/storetest"
)

const (
	testBase = time.Second
	testMax  = 4 * time.Second
)

var budgetStart = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// budgetEnv is one fresh database seen through one or more store handles
// (service instances), all on one fake clock: the store stamps claims with
// its clock and Budget compares them with its own, so they must agree.
type budgetEnv struct {
	stores []*store.Budgets
	dbs    []*store.DB
	clk    *fakeClock
}

func newBudgetEnv(t *testing.T, instances int) *budgetEnv {
	t.Helper()
	env := &budgetEnv{clk: newClock(budgetStart)}
	cfg := storetest.Config(t)
	cfg.Now = env.clk.Now
	for range instances {
		db := storetest.Open(t, cfg)
		env.dbs = append(env.dbs, db)
		env.stores = append(env.stores, db.Budgets())
	}
	return env
}

// budget returns a Budget on the i-th instance with Base 1s and Max 4s.
func (env *budgetEnv) budget(i, free, limit int) *mfa.Budget {
	return &mfa.Budget{Store: env.stores[i], Free: free, Limit: limit, Base: testBase, Max: testMax,
		Keep: 24 * time.Hour, Now: env.clk.Now}
}

// tokenBudget returns an mfa_pending token's budget (Free = Limit = 5) on
// the i-th instance's token store.
func (env *budgetEnv) tokenBudget(i int) (*mfa.Budget, *store.PendingTokens) {
	p := env.dbs[i].PendingTokens()
	return &mfa.Budget{Store: p, Free: 5, Limit: 5, Base: testBase, Max: testMax, Keep: time.Hour, Now: env.clk.Now}, p
}

// throttled returns err as a *ThrottledError, failing the test if it is not one.
func throttled(t *testing.T, err error) *mfa.ThrottledError {
	t.Helper()
	var te *mfa.ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("got %v, want a *mfa.ThrottledError", err)
	}
	return te
}

type burstResult struct {
	slots     []int64 // slots claimed, sorted
	throttled []time.Duration
	locked    int
}

// burst releases n Take calls on scope at once, spread over the budgets
// (instances), and sorts out the answers.
func burst(t *testing.T, budgets []*mfa.Budget, scope string, n int) burstResult {
	t.Helper()
	var (
		mu  sync.Mutex
		res burstResult
		wg  sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range n {
		b := budgets[i%len(budgets)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			a, err := b.Take(context.Background(), scope)
			mu.Lock()
			defer mu.Unlock()
			var te *mfa.ThrottledError
			switch {
			case err == nil:
				if a.Scope != scope {
					t.Errorf("attempt scope: got %q, want %q", a.Scope, scope)
				}
				res.slots = append(res.slots, a.Slot)
			case errors.As(err, &te) && te.Locked:
				res.locked++
			case errors.As(err, &te):
				res.throttled = append(res.throttled, te.RetryAfter)
			default:
				t.Errorf("Take: got %v, want nil or *ThrottledError", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	slices.Sort(res.slots)
	return res
}

func slotRange(from, to int64) []int64 {
	var out []int64
	for k := from; k <= to; k++ {
		out = append(out, k)
	}
	return out
}

// TestBudgetBurst: a burst of 50 against Free=5, Limit=10 evaluates exactly
// the 5 free attempts; slot 6 is in backoff behind slot 5, claimed at the same
// instant, so every other caller is told to wait exactly Base. Each round
// costs about 2 s under -race (the embedded server runs in the test process,
// instrumented); run with -count for more rounds.
func TestBudgetBurst(t *testing.T) {
	const rounds, n = 5, 50
	b := newBudgetEnv(t, 1).budget(0, 5, 10)
	for r := range rounds {
		got := burst(t, []*mfa.Budget{b}, fmt.Sprintf("user-%d", r), n)
		if want := slotRange(1, 5); !slices.Equal(got.slots, want) {
			t.Fatalf("round %d: claimed slots %v, want %v", r, got.slots, want)
		}
		if got.locked != 0 || len(got.throttled) != n-5 {
			t.Fatalf("round %d: %d throttled, %d locked; want %d throttled, 0 locked", r, len(got.throttled), got.locked, n-5)
		}
		for _, d := range got.throttled {
			if d != testBase {
				t.Fatalf("round %d: RetryAfter %v, want %v", r, d, testBase)
			}
		}
	}
}

// TestBudgetBurstInBackoff: once the wait behind slot 5 is over, a burst
// evaluates exactly one attempt (slot 6); the rest are told to wait 2·Base
// behind it.
func TestBudgetBurstInBackoff(t *testing.T) {
	const n = 50
	env := newBudgetEnv(t, 1)
	b := env.budget(0, 5, 10)
	takeN(t, b, "user", 5)
	env.clk.Advance(testBase)
	got := burst(t, []*mfa.Budget{b}, "user", n)
	if want := []int64{6}; !slices.Equal(got.slots, want) {
		t.Fatalf("claimed slots %v, want %v", got.slots, want)
	}
	if got.locked != 0 || len(got.throttled) != n-1 {
		t.Fatalf("%d throttled, %d locked; want %d throttled, 0 locked", len(got.throttled), got.locked, n-1)
	}
	for _, d := range got.throttled {
		if d != 2*testBase {
			t.Fatalf("RetryAfter %v, want %v", d, 2*testBase)
		}
	}
}

// TestBudgetBurstAcrossInstances spreads the burst over three store handles
// (three service instances): the budget is shared and still exact.
func TestBudgetBurstAcrossInstances(t *testing.T) {
	const rounds, n = 2, 30
	env := newBudgetEnv(t, 3)
	bs := []*mfa.Budget{env.budget(0, 5, 10), env.budget(1, 5, 10), env.budget(2, 5, 10)}
	for r := range rounds {
		got := burst(t, bs, fmt.Sprintf("user-%d", r), n)
		if want := slotRange(1, 5); !slices.Equal(got.slots, want) {
			t.Fatalf("round %d: claimed slots %v, want %v", r, got.slots, want)
		}
		if got.locked != 0 || len(got.throttled) != n-5 {
			t.Fatalf("round %d: %d throttled, %d locked; want %d throttled, 0 locked", r, len(got.throttled), got.locked, n-5)
		}
	}
}

// TestBudgetTokenBurst: a token's own budget (Free = Limit = 5) evaluates
// exactly 5 of a burst of 20 and locks the rest.
func TestBudgetTokenBurst(t *testing.T) {
	const rounds, n = 3, 20
	env := newBudgetEnv(t, 1)
	b, p := env.tokenBudget(0)
	for r := range rounds {
		jti := fmt.Sprintf("jti-%d", r)
		if err := p.Open(context.Background(), jti, "u", env.clk.Now(), env.clk.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got := burst(t, []*mfa.Budget{b}, jti, n)
		if want := slotRange(1, 5); !slices.Equal(got.slots, want) {
			t.Fatalf("round %d: claimed slots %v, want %v", r, got.slots, want)
		}
		if got.locked != n-5 || len(got.throttled) != 0 {
			t.Fatalf("round %d: %d locked, %d throttled; want %d locked, 0 throttled", r, got.locked, len(got.throttled), n-5)
		}
	}
}

// TestBudgetBackoff walks one scope through its whole budget: 5 free
// failures, then waits of Base·2ⁿ after the previous slot, capped at Max,
// then a lock that no amount of time lifts.
func TestBudgetBackoff(t *testing.T) {
	ctx := context.Background()
	env := newBudgetEnv(t, 1)
	b, clk := env.budget(0, 5, 10), env.clk
	const scope = "user"
	waits := []time.Duration{0, 0, 0, 0, 0, testBase, 2 * testBase, testMax, testMax, testMax}
	for i, wait := range waits {
		attempt := i + 1
		if wait > 0 {
			te := throttled(t, second(b.Take(ctx, scope)))
			if te.Locked || te.RetryAfter != wait {
				t.Fatalf("attempt %d at once: got %+v, want RetryAfter %v", attempt, *te, wait)
			}
			clk.Advance(wait - time.Millisecond)
			te = throttled(t, second(b.Take(ctx, scope)))
			if te.Locked || te.RetryAfter != time.Millisecond {
				t.Fatalf("attempt %d 1ms early: got %+v, want RetryAfter 1ms", attempt, *te)
			}
			clk.Advance(time.Millisecond)
		}
		a, err := b.Take(ctx, scope)
		if err != nil {
			t.Fatalf("attempt %d after waiting %v: got %v, want nil", attempt, wait, err)
		}
		if a.Slot != int64(attempt) {
			t.Fatalf("attempt %d: claimed slot %d, want %d (throttled calls must not use slots)", attempt, a.Slot, attempt)
		}
	}
	te := throttled(t, second(b.Take(ctx, scope)))
	if !te.Locked || te.RetryAfter != 0 {
		t.Fatalf("after %d failures: got %+v, want Locked with no RetryAfter", b.Limit, *te)
	}
	clk.Advance(365 * 24 * time.Hour)
	if te := throttled(t, second(b.Take(ctx, scope))); !te.Locked {
		t.Fatalf("a year later: got %+v, want still Locked", *te)
	}
}

func TestBudgetSucceed(t *testing.T) {
	ctx := context.Background()
	env := newBudgetEnv(t, 1)

	t.Run("ResetsFreeAttempts", func(t *testing.T) {
		b, clk := env.budget(0, 5, 10), env.clk
		const scope = "reset"
		takeN(t, b, scope, 5)
		clk.Advance(testBase)
		a, err := b.Take(ctx, scope)
		if err != nil {
			t.Fatalf("6th attempt after Base: got %v, want nil", err)
		}
		if err := b.Succeed(ctx, a); err != nil {
			t.Fatalf("Succeed: %v", err)
		}
		takeN(t, b, scope, 5) // no clock movement: free again
		te := throttled(t, second(b.Take(ctx, scope)))
		if te.Locked || te.RetryAfter != testBase {
			t.Fatalf("6th failure after a success: got %+v, want RetryAfter %v (backoff restarted)", *te, testBase)
		}
	})

	t.Run("LateSucceedDoesNotRewind", func(t *testing.T) {
		b := env.budget(0, 5, 10)
		const scope = "late"
		first := takeN(t, b, scope, 1)[0]
		latest := takeN(t, b, scope, 1)[0]
		if err := b.Succeed(ctx, latest); err != nil {
			t.Fatal(err)
		}
		if err := b.Succeed(ctx, first); err != nil { // an older success reported late
			t.Fatal(err)
		}
		takeN(t, b, scope, 5)
		if te := throttled(t, second(b.Take(ctx, scope))); te.Locked || te.RetryAfter != testBase {
			t.Fatalf("got %+v, want RetryAfter %v", *te, testBase)
		}
	})

	t.Run("ConsumedTokenTakesNoAttempt", func(t *testing.T) {
		b, p := env.tokenBudget(0)
		const jti = "jti"
		if err := p.Open(ctx, jti, "u", env.clk.Now(), env.clk.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		takeN(t, b, jti, 2)
		if err := p.Consume(ctx, jti, env.clk.Now(), env.clk.Now().Add(time.Hour)); err != nil {
			t.Fatalf("Consume: %v", err)
		}
		if err := p.Consume(ctx, jti, env.clk.Now(), env.clk.Now().Add(time.Hour)); !errors.Is(err, mfa.ErrUsed) {
			t.Fatalf("second Consume: got %v, want ErrUsed", err)
		}
		if _, err := b.Take(ctx, jti); !errors.Is(err, mfa.ErrUsed) {
			t.Fatalf("Take after Consume: got %v, want ErrUsed", err)
		}
	})

	t.Run("UnopenedTokenIsUnknown", func(t *testing.T) {
		// A token no login opened (a signature alone) takes no attempt, is
		// not consumed and leaves no document behind.
		b, p := env.tokenBudget(0)
		const jti = "never-opened"
		if _, err := b.Take(ctx, jti); !errors.Is(err, mfa.ErrNotFound) {
			t.Fatalf("Take: got %v, want ErrNotFound", err)
		}
		if err := p.Consume(ctx, jti, env.clk.Now(), env.clk.Now().Add(time.Hour)); !errors.Is(err, mfa.ErrNotFound) {
			t.Fatalf("Consume: got %v, want ErrNotFound", err)
		}
		if _, err := p.Consumed(ctx, jti); !errors.Is(err, mfa.ErrNotFound) {
			t.Fatalf("Consumed: got %v, want ErrNotFound", err)
		}
	})

	t.Run("OpenForgivesInTheSameWrite", func(t *testing.T) {
		b, p := env.budget(0, 5, 10), env.dbs[0].PendingTokens()
		takeN(t, b, "pwd|carol|1.2.3.4", 3)
		if err := p.Open(ctx, "jti-carol", "carol", env.clk.Now(), env.clk.Now().Add(time.Hour), "pwd|carol|1.2.3.4"); err != nil {
			t.Fatal(err)
		}
		if st, err := env.stores[0].Budget(ctx, "pwd|carol|1.2.3.4"); err != nil || st.Failures != 0 {
			t.Fatalf("budget after Open: %+v, %v; want 0 failures", st, err)
		}
		if used, err := p.Consumed(ctx, "jti-carol"); err != nil || used {
			t.Fatalf("opened token: used %v, %v; want false, nil", used, err)
		}
	})

	t.Run("ScopesAreIndependent", func(t *testing.T) {
		b := env.budget(0, 5, 5)
		takeN(t, b, "alice", 5)
		if a, err := b.Take(ctx, "bob"); err != nil || a.Slot != 1 {
			t.Fatalf("other scope: got slot %d, %v; want slot 1, nil", a.Slot, err)
		}
	})
}

// TestBudgetNISTCap: with Limit = NISTMaxFailures and a caller that waits
// out every backoff (none is longer than Max), exactly 100 failures are
// evaluated, then the account is locked (NIST SP 800-63B §5.2.2).
func TestBudgetNISTCap(t *testing.T) {
	ctx := context.Background()
	env := newBudgetEnv(t, 1)
	b, clk := env.budget(0, 5, mfa.NISTMaxFailures), env.clk
	const scope = "user"
	failures := 0
	for {
		clk.Advance(b.Max)
		a, err := b.Take(ctx, scope)
		if err != nil {
			if te := throttled(t, err); !te.Locked {
				t.Fatalf("after %d failures and a wait of Max: got %+v, want a slot or Locked", failures, *te)
			}
			break
		}
		failures++
		if a.Slot != int64(failures) {
			t.Fatalf("failure %d claimed slot %d", failures, a.Slot)
		}
		if failures > mfa.NISTMaxFailures {
			t.Fatalf("%d failures evaluated, want at most %d", failures, mfa.NISTMaxFailures)
		}
	}
	if failures != mfa.NISTMaxFailures {
		t.Fatalf("failures evaluated before the lock: got %d, want %d", failures, mfa.NISTMaxFailures)
	}
	clk.Advance(10 * 365 * 24 * time.Hour)
	if te := throttled(t, second(b.Take(ctx, scope))); !te.Locked {
		t.Fatalf("ten years later: got %+v, want still Locked", *te)
	}
}

// takeN takes n attempts that must all be granted at once.
func takeN(t *testing.T, b *mfa.Budget, scope string, n int) []mfa.Attempt {
	t.Helper()
	var out []mfa.Attempt
	for i := range n {
		a, err := b.Take(context.Background(), scope)
		if err != nil {
			t.Fatalf("attempt %d of %d on %s: got %v, want nil", i+1, n, scope, err)
		}
		out = append(out, a)
	}
	return out
}

func second[T any](_ T, err error) error { return err }

var (
	_ mfa.BudgetStore  = (*store.Budgets)(nil)
	_ mfa.PendingStore = (*store.PendingTokens)(nil)
	_ mfa.UserStore    = (*store.DB)(nil)
)

// TestGates checks the gates a store evaluates against passes, the
// reference, for every failure count and wait around each boundary.
func TestGates(t *testing.T) {
	b := &mfa.Budget{Free: 5, Limit: 10, Base: testBase, Max: testMax}
	now := budgetStart
	gates := b.Gates(now)
	for fails := int64(0); fails <= 11; fails++ {
		for _, ago := range []time.Duration{0, testBase - time.Millisecond, testBase, 2 * testBase, testMax, 10 * testMax} {
			st := mfa.BudgetState{Failures: fails, Last: now.Add(-ago)}
			var want bool
			switch {
			case fails < 5:
				want = true
			case fails >= 10:
				want = false
			default:
				wait := min(testBase<<(fails-5), testMax)
				want = ago >= wait
			}
			if got := passes(gates, st); got != want {
				t.Errorf("failures %d, last %v ago: passes %v, want %v", fails, ago, got, want)
			}
			if !want {
				if err := b.Refusal(st, now); err == nil {
					t.Errorf("failures %d: Refusal nil", fails)
				}
			}
		}
	}
}

// passes is what a store's query over gates means: st passes one of them.
func passes(gates []mfa.Gate, st mfa.BudgetState) bool {
	for _, g := range gates {
		if st.Failures >= g.Min && st.Failures < g.Max && (g.Before.IsZero() || !st.Last.After(g.Before)) {
			return true
		}
	}
	return false
}
