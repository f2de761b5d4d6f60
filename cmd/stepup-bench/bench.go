package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/argon2"

	"github.com/stepup-auth/stepup/tokens"
)

type bench struct {
	targets  []string
	workers  int
	audience string
	client   *http.Client
	next     atomic.Uint64 // round-robin over targets
	verifier *tokens.Verifier
}

type account struct {
	name, password string
	secret         string
	mu             sync.Mutex
	lastStep       int64
}

// step names, in flow order.
var steps = []string{"password", "totp", "refresh", "rs_verify"}

type stats struct {
	done   <-chan struct{} // closed when the run's duration is over
	mu     sync.Mutex
	lat    map[string][]time.Duration
	errs   map[string]map[string]int
	starve time.Duration
}

func (s *stats) stopping() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *stats) ok(step string, d time.Duration) {
	s.mu.Lock()
	s.lat[step] = append(s.lat[step], d)
	s.mu.Unlock()
}

func (s *stats) fail(step, why string) {
	if why == "transport" && s.stopping() {
		return // the run's own deadline cancelled this request
	}
	s.mu.Lock()
	if s.errs[step] == nil {
		s.errs[step] = map[string]int{}
	}
	s.errs[step][why]++
	s.mu.Unlock()
}

func (b *bench) target() string {
	return strings.TrimRight(b.targets[b.next.Add(1)%uint64(len(b.targets))], "/")
}

// post sends JSON and decodes the answer; a non-2xx status is an error
// named by the problem's code.
func (b *bench) post(ctx context.Context, path, token string, in, out any) error {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.target()+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("transport")
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		var p struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(data, &p)
		return fmt.Errorf("%d %s", resp.StatusCode, p.Code)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (b *bench) run(ctx context.Context, users int, duration time.Duration, w io.Writer) error {
	b.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	keys, err := newJWKS(ctx, b.client, b.targets[0])
	if err != nil {
		return err
	}
	b.verifier = tokens.NewVerifier(keys, tokens.VerifierConfig{Issuer: keys.issuer, Audiences: []string{b.audience}})

	fmt.Fprintf(w, "setup: %d accounts with a TOTP app each on %d instance(s)…\n", users, len(b.targets))
	start := time.Now()
	accts, err := b.setup(ctx, users)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "setup done in %s\n", time.Since(start).Round(time.Millisecond))

	runCtx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	st := &stats{lat: map[string][]time.Duration{}, errs: map[string]map[string]int{}, done: runCtx.Done()}
	var wg sync.WaitGroup
	var cursor atomic.Uint64
	began := time.Now()
	for range b.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				b.flow(runCtx, accts, &cursor, st)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(began)
	b.report(w, st, elapsed)
	rawCrypto(w)
	return nil
}

// setup creates the accounts, concurrently, each with a confirmed TOTP app.
func (b *bench) setup(ctx context.Context, n int) ([]*account, error) {
	run := make([]byte, 4)
	_, _ = rand.Read(run)
	prefix := fmt.Sprintf("bench-%x-", run)
	accts := make([]*account, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, b.workers)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a := &account{name: fmt.Sprintf("%s%d", prefix, i), password: "bench password " + prefix}
			if err := b.enroll(ctx, a); err != nil {
				errs <- fmt.Errorf("setup %s: %w", a.name, err)
				return
			}
			accts[i] = a
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return accts, nil
}

func (b *bench) enroll(ctx context.Context, a *account) error {
	creds := map[string]string{"username": a.name, "password": a.password}
	if err := b.post(ctx, "/v1/users", "", creds, nil); err != nil {
		return fmt.Errorf("sign-up: %w", err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := b.post(ctx, "/v1/login", "", creds, &tok); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	var enr struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if err := b.post(ctx, "/v1/me/factors/totp", tok.AccessToken, map[string]string{"name": "bench"}, &enr); err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	a.secret = enr.Secret
	// Confirm with the current step: even if a new step starts before the
	// server checks it, it is still in the ±1 window. That step is used
	// then, so this account's first sign-in waits for the next one.
	step := time.Now().Unix() / 30
	if err := b.post(ctx, "/v1/me/factors/totp/"+enr.ID+"/confirm", tok.AccessToken,
		map[string]string{"code": code(a.secret, step)}, nil); err != nil {
		return fmt.Errorf("confirm: %w", err)
	}
	a.lastStep = step
	return nil
}

// flow runs one sign-in: password, TOTP, refresh, resource-server verify.
func (b *bench) flow(ctx context.Context, accts []*account, cursor *atomic.Uint64, st *stats) {
	a := b.pick(ctx, accts, cursor, st)
	if a == nil {
		return
	}
	creds := map[string]string{"username": a.name, "password": a.password}
	var pending struct {
		MFAToken string `json:"mfa_token"`
	}
	t0 := time.Now()
	if err := b.post(ctx, "/v1/login", "", creds, &pending); err != nil {
		st.fail("password", err.Error())
		return
	}
	st.ok("password", time.Since(t0))

	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	t0 = time.Now()
	if err := b.post(ctx, "/v1/mfa/totp/verify", pending.MFAToken, map[string]string{"code": code(a.secret, a.lastStep)}, &tok); err != nil {
		st.fail("totp", err.Error())
		return
	}
	st.ok("totp", time.Since(t0))

	t0 = time.Now()
	if err := b.post(ctx, "/v1/token/refresh", "", map[string]string{"refresh_token": tok.RefreshToken}, &tok); err != nil {
		st.fail("refresh", err.Error())
		return
	}
	st.ok("refresh", time.Since(t0))

	t0 = time.Now()
	if _, err := b.verifier.Access(tok.AccessToken); err != nil {
		st.fail("rs_verify", "invalid_token")
		return
	}
	st.ok("rs_verify", time.Since(t0))
}

// pick takes the next account whose current TOTP step is still unused and
// reserves that step; if every account used it, it waits for the next step.
func (b *bench) pick(ctx context.Context, accts []*account, cursor *atomic.Uint64, st *stats) *account {
	for ctx.Err() == nil {
		now := time.Now().Unix() / 30
		for range accts {
			a := accts[cursor.Add(1)%uint64(len(accts))]
			a.mu.Lock()
			if a.lastStep < now {
				a.lastStep = now
				a.mu.Unlock()
				return a
			}
			a.mu.Unlock()
		}
		wait := time.Until(time.Unix((now+1)*30, 0))
		st.mu.Lock()
		st.starve += wait
		st.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil
}

func code(secret string, step int64) string {
	c, err := totp.GenerateCodeCustom(secret, time.Unix(step*30, 0), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		panic(err)
	}
	return c
}

func (b *bench) report(w io.Writer, st *stats, elapsed time.Duration) {
	fmt.Fprintf(w, "\nload: %d workers for %s against %d instance(s)\n", b.workers, elapsed.Round(time.Millisecond), len(b.targets))
	fmt.Fprintf(w, "%-10s %8s %9s %9s %9s %9s  %s\n", "step", "ok", "per_sec", "p50", "p90", "p99", "errors")
	for _, s := range steps {
		lat := st.lat[s]
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		var errs []string
		for why, n := range st.errs[s] {
			errs = append(errs, fmt.Sprintf("%s×%d", why, n))
		}
		sort.Strings(errs)
		fmt.Fprintf(w, "%-10s %8d %9.1f %9s %9s %9s  %s\n", s, len(lat), float64(len(lat))/elapsed.Seconds(),
			pct(lat, 50), pct(lat, 90), pct(lat, 99), strings.Join(errs, " "))
	}
	if st.starve > 0 {
		fmt.Fprintf(w, "workers waited %s in total for a fresh TOTP step (raise -users for more TOTP throughput)\n", st.starve.Round(time.Second))
	}
}

func pct(lat []time.Duration, p int) string {
	if len(lat) == 0 {
		return "-"
	}
	i := (len(lat)*p + 99) / 100
	return lat[min(max(i-1, 0), len(lat)-1)].Round(10 * time.Microsecond).String()
}

// rawCrypto measures, in this process and run, what the steps rest on.
func rawCrypto(w io.Writer) {
	salt := make([]byte, 16)
	const n = 8
	t0 := time.Now()
	for range n {
		argon2.IDKey([]byte("correct horse battery staple"), salt, 2, 19*1024, 1, 32)
	}
	argon := time.Since(t0) / n
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	digest := sha256.Sum256([]byte("header.payload"))
	sig, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
	const m = 400
	t0 = time.Now()
	for range m {
		if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
			panic("verify")
		}
	}
	verify := time.Since(t0) / m
	fmt.Fprintf(w, "\nraw crypto, this machine, this run: argon2id m=19MiB t=2 p=1: %s per hash (one core); ECDSA P-256 verify: %s\n",
		argon.Round(10*time.Microsecond), verify.Round(time.Microsecond))
}
