package mfa

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"

	"github.com/trustelem/zxcvbn"
)

// Password length bounds, in characters, after NFKC normalisation
// (NIST SP 800-63B §5.1.1.2 asks for at least 8 and allowing at least 64).
const (
	MinPasswordLen = 8
	MaxPasswordLen = 1024
)

// Argon2Params are argon2id cost parameters. The defaults are OWASP's
// m=19 MiB, t=2, p=1.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultArgon2 is the cost new hashes get.
var DefaultArgon2 = Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
)

// Password hashes and checks passwords with argon2id. The number of hashes
// computed at once is bounded (each costs Memory KiB); callers beyond a short
// queue get ErrBusy at once instead of piling up memory.
type Password struct {
	Params Argon2Params
	Rand   io.Reader

	slots chan struct{} // running hashes
	queue chan struct{} // running + waiting
	dummy string        // hash checked for unknown users

	// PerClient is the most places of the queue one client (address) may
	// hold at once, so that under a flood the flooder is the one refused;
	// NewPassword sets a quarter of the queue (at least 1).
	PerClient int
	mu        sync.Mutex
	held      map[string]int // places held, by client
}

// NewPassword returns a hasher that runs at most workers hashes at once and
// lets at most queue more wait. Zero values pick runtime.NumCPU() workers and
// a queue of 4 per worker.
func NewPassword(p Argon2Params, workers, queue int) *Password {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	if queue <= 0 {
		queue = 4 * workers
	}
	pw := &Password{
		Params: p,
		Rand:   rand.Reader,
		slots:  make(chan struct{}, workers),
		queue:  make(chan struct{}, workers+queue),
		held:   map[string]int{},
	}
	pw.PerClient = max(1, (workers+queue)/4)
	salt := make([]byte, saltLen)
	_, _ = io.ReadFull(pw.Rand, salt)
	pw.dummy = encodePHC(p, salt, make([]byte, keyLen))
	return pw
}

// NormalizePassword applies NFKC and checks the length rules. It returns
// ErrInvalidPassword when they are not met.
func NormalizePassword(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", ErrInvalidPassword
	}
	s = norm.NFKC.String(s)
	n := utf8.RuneCountInString(s)
	if n < MinPasswordLen || n > MaxPasswordLen {
		return "", ErrInvalidPassword
	}
	return s, nil
}

// Hash returns the PHC string of a normalised password. It returns ErrBusy
// when the hashing queue is full, or ctx's error.
func (p *Password) Hash(ctx context.Context, password string) (string, error) {
	return p.hash(ctx, password, false)
}

// HashAdmitted is Hash for a caller holding a place from AdmitFor.
func (p *Password) HashAdmitted(ctx context.Context, password string) (string, error) {
	return p.hash(ctx, password, true)
}

func (p *Password) hash(ctx context.Context, password string, admitted bool) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(p.Rand, salt); err != nil {
		return "", fmt.Errorf("mfa: salt: %w", err)
	}
	var key []byte
	err := p.runQueued(ctx, admitted, func() {
		key = argon2.IDKey([]byte(password), salt, p.Params.Time, p.Params.Memory, p.Params.Threads, keyLen)
	})
	if err != nil {
		return "", err
	}
	return encodePHC(p.Params, salt, key), nil
}

// Verify checks a normalised password against a PHC string. An empty phc
// (unknown user) is checked against a dummy hash of the same cost, so the
// answer takes the same time and is always false. rehash is true when the
// stored parameters differ from the current ones. It returns ErrBusy when
// the queue is full and ErrBadCredentials for a mismatch.
func (p *Password) Verify(ctx context.Context, phc, password string) (rehash bool, err error) {
	return p.verify(ctx, phc, password, false)
}

func (p *Password) verify(ctx context.Context, phc, password string, admitted bool) (rehash bool, err error) {
	known := phc != ""
	if !known {
		phc = p.dummy
	}
	params, salt, want, err := decodePHC(phc)
	if err != nil {
		return false, err
	}
	var got []byte
	if err := p.runQueued(ctx, admitted, func() {
		got = argon2.IDKey([]byte(password), salt, params.Time, params.Memory, params.Threads, uint32(len(want)))
	}); err != nil {
		return false, err
	}
	if subtle.ConstantTimeCompare(got, want) != 1 || !known {
		return false, ErrBadCredentials
	}
	return params != p.Params, nil
}

// Admit takes a place in the hashing queue ahead of a VerifyAdmitted, so a
// caller learns the server is too busy (ErrBusy) before it spends anything
// else, such as an attempt slot. release gives the place back; call it once.
func (p *Password) Admit() (release func(), err error) { return p.AdmitFor("") }

// AdmitFor is Admit for a client (its address; "" for none): a client that
// already holds PerClient places is refused with ErrBusy while others still
// get in, so one client cannot starve the rest.
func (p *Password) AdmitFor(client string) (release func(), err error) {
	if client != "" {
		p.mu.Lock()
		if p.held[client] >= p.PerClient {
			p.mu.Unlock()
			return nil, ErrBusy
		}
		p.held[client]++
		p.mu.Unlock()
	}
	done := func() {
		if client == "" {
			return
		}
		p.mu.Lock()
		if p.held[client]--; p.held[client] <= 0 {
			delete(p.held, client)
		}
		p.mu.Unlock()
	}
	select {
	case p.queue <- struct{}{}:
		return func() { <-p.queue; done() }, nil
	default:
		done()
		return nil, ErrBusy
	}
}

// VerifyAdmitted is Verify for a caller holding a place from Admit.
func (p *Password) VerifyAdmitted(ctx context.Context, phc, password string) (rehash bool, err error) {
	return p.verify(ctx, phc, password, true)
}

func (p *Password) run(ctx context.Context, f func()) error {
	return p.runQueued(ctx, false, f)
}

func (p *Password) runQueued(ctx context.Context, admitted bool, f func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !admitted {
		release, err := p.Admit()
		if err != nil {
			return err
		}
		defer release()
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.slots }()
	f()
	return nil
}

var b64 = base64.RawStdEncoding

func encodePHC(p Argon2Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func decodePHC(s string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("mfa: unsupported password hash format")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, fmt.Errorf("mfa: unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, fmt.Errorf("mfa: bad argon2 parameters: %w", err)
	}
	// argon2 panics below these; a stored hash is not trusted that far.
	if p.Time < 1 || p.Threads < 1 || p.Memory < 8*uint32(p.Threads) || p.Memory > 4<<20 {
		return p, nil, nil, fmt.Errorf("mfa: bad argon2 parameters")
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return p, nil, nil, fmt.Errorf("mfa: bad salt: %w", err)
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 {
		return p, nil, nil, fmt.Errorf("mfa: bad hash")
	}
	return p, salt, key, nil
}

// ErrWeakPassword refuses a password that is common, or close enough to
// common words, names, keyboard patterns, dates or the username to fall to
// a guessing attack (NIST SP 800-63B §3.1.1.2: compare against values known
// to be commonly used, expected or compromised).
var ErrWeakPassword = errors.New("mfa: password too easy to guess")

// zxcvbnPrefix bounds the strength check: zxcvbn's matching grows faster
// than linearly, and the first 100 characters decide whether a password
// is guessable.
const zxcvbnPrefix = 100

// CheckStrength refuses, with ErrWeakPassword, a password that zxcvbn
// estimates at fewer than 10⁶ guesses (score 0 or 1): its 30,000 most
// common passwords, dictionary words and names with their usual
// substitutions, keyboard walks, repeats, sequences, dates, and the
// username itself. It is a blocklist that also catches the blocklist's
// variants ("P@ssw0rd1"); it imposes no composition rule.
func CheckStrength(password, username string) error {
	runes := []rune(password)
	if len(runes) > zxcvbnPrefix {
		runes = runes[:zxcvbnPrefix]
	}
	if zxcvbn.PasswordStrength(string(runes), []string{username, "stepup"}).Score < 2 {
		return ErrWeakPassword
	}
	return nil
}
