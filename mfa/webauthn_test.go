package mfa_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/store"
	"github.com/stepup-auth/stepup/store/storetest"
)

// The WebAuthn ceremonies against the real store, driven by a software
// authenticator (github.com/descope/virtualwebauthn): real P-256 keys, real
// signatures over authenticator data and clientDataJSON. Its options set the
// UP, UV, BE and BS flags and the signature counter; a wrong RP ID gives a
// wrong rpIdHash.

const (
	waRPID   = "localhost"
	waOrigin = "http://localhost:8080"
	waTTL    = 5 * time.Minute
)

// waRP is the browser and relying party the authenticator talks to.
var waRP = virtualwebauthn.RelyingParty{ID: waRPID, Name: "stepup", Origin: waOrigin}

// waEnv is an mfa.WebAuthn wired as cmd/stepup wires it, on a fresh
// database, with a fake clock, and a raw view of that database for the
// checks that the store exposes no reader for (the credential index).
type waEnv struct {
	db  *store.DB
	raw *mongo.Database
	wa  *mfa.WebAuthn
	clk *fakeClock
}

func waNewEnv(t *testing.T) *waEnv {
	t.Helper()
	clk := newClock(time.Now())
	cfg := storetest.Config(t)
	cfg.Now = clk.Now
	db := storetest.Open(t, cfg)
	client, err := mongo.Connect(options.Client().ApplyURI(cfg.URI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	rp, err := webauthn.New(&webauthn.Config{RPID: waRPID, RPDisplayName: "stepup", RPOrigins: []string{waOrigin},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: waTTL, TimeoutUVD: waTTL},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: waTTL, TimeoutUVD: waTTL},
		}})
	if err != nil {
		t.Fatal(err)
	}
	return &waEnv{db: db, raw: client.Database(cfg.Database), clk: clk,
		wa: &mfa.WebAuthn{RP: rp, Ceremonies: db.Ceremonies(), Users: db,
			PasskeyKey: waPasskeyKey(), PasskeyDone: db.FinishedPasskeys(),
			UserVerification: protocol.VerificationPreferred, Attestation: protocol.PreferNoAttestation,
			TTL: waTTL, Now: clk.Now}}
}

// waPasskeyKey is a fresh 32-byte key for sealing passkey ceremonies.
func waPasskeyKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

func waRandID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (e *waEnv) newUser(t *testing.T) *mfa.User {
	t.Helper()
	u := &mfa.User{ID: waRandID(), PasswordHash: "$argon2id$unused", CreatedAt: e.clk.Now()}
	u.Username = "user-" + u.ID
	if err := e.db.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return e.reload(t, u)
}

func (e *waEnv) reload(t *testing.T, u *mfa.User) *mfa.User {
	t.Helper()
	got, err := e.db.User(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// unchanged fails t unless the stored user is exactly before.
func (e *waEnv) unchanged(t *testing.T, before *mfa.User) {
	t.Helper()
	if got := e.reload(t, before); !reflect.DeepEqual(got, before) {
		t.Errorf("user was written by a failed ceremony:\n got %+v\nwant %+v", got, before)
	}
}

// indexOwner reads the credential index entry of id straight from the
// database: its owner and claim time, or ok false when there is none.
func (e *waEnv) indexOwner(t *testing.T, id []byte) (owner string, at time.Time, ok bool) {
	t.Helper()
	var doc struct {
		UserID string    `bson:"user_id"`
		At     time.Time `bson:"at"`
	}
	err := e.raw.Collection("webauthn_credentials").FindOne(context.Background(), bson.M{"_id": mfa.CredentialKey(id)}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", time.Time{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return doc.UserID, doc.At, true
}

// waKey is one software authenticator holding one credential.
type waKey struct {
	auth virtualwebauthn.Authenticator
	cred virtualwebauthn.Credential
}

// waNewKey makes an authenticator with a fresh P-256 credential.
// virtualwebauthn encodes the COSE x and y with big.Int.Bytes, which drops
// leading zero bytes, and go-webauthn rightly refuses coordinates shorter
// than 32 bytes; so keys with a leading zero byte (1 in 128) are redrawn.
func waNewKey(t *testing.T, o virtualwebauthn.AuthenticatorOptions) *waKey {
	t.Helper()
	for {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := k.PublicKey.Bytes() // 0x04 ‖ x ‖ y
		if err != nil {
			t.Fatal(err)
		}
		if pub[1] == 0 || pub[33] == 0 {
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return &waKey{auth: virtualwebauthn.NewAuthenticatorWithOptions(o),
			cred: virtualwebauthn.NewCredentialWithImportedKey(virtualwebauthn.KeyTypeEC2, der)}
	}
}

// waPasskey is a discoverable credential for u: it returns u's id as the
// user handle.
func waPasskey(t *testing.T, u *mfa.User, backedUp bool) *waKey {
	t.Helper()
	return waNewKey(t, virtualwebauthn.AuthenticatorOptions{UserHandle: []byte(u.ID), BackupEligible: backedUp, BackupState: backedUp})
}

func (k *waKey) attest(rp virtualwebauthn.RelyingParty, o *virtualwebauthn.AttestationOptions) []byte {
	return []byte(virtualwebauthn.CreateAttestationResponse(rp, k.auth, k.cred, *o))
}

func (k *waKey) assert(rp virtualwebauthn.RelyingParty, o *virtualwebauthn.AssertionOptions) []byte {
	return []byte(virtualwebauthn.CreateAssertionResponse(rp, k.auth, k.cred, *o))
}

func waJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// beginRegistration starts a registration for u and returns the options as
// the authenticator reads them.
func (e *waEnv) beginRegistration(t *testing.T, u *mfa.User, binding string) *virtualwebauthn.AttestationOptions {
	t.Helper()
	creation, err := e.wa.BeginRegistration(context.Background(), u, binding)
	if err != nil {
		t.Fatal(err)
	}
	o, err := virtualwebauthn.ParseAttestationOptions(waJSON(t, creation))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// enroll registers k for u and stores it as the api does: a confirmed
// WebAuthn factor, written with AddFactor. It returns the reloaded user.
func (e *waEnv) enroll(t *testing.T, u *mfa.User, k *waKey) (*mfa.User, *mfa.Factor) {
	t.Helper()
	ctx := context.Background()
	cred, err := e.wa.FinishRegistration(ctx, u, "sess-1", k.attest(waRP, e.beginRegistration(t, u, "sess-1")))
	if err != nil {
		t.Fatalf("FinishRegistration: %v", err)
	}
	f := mfa.Factor{ID: waRandID(), Kind: mfa.KindWebAuthn, Name: "key", Confirmed: true, CreatedAt: e.clk.Now(), Credential: cred}
	if err := e.db.AddFactor(ctx, u.ID, f, 20, e.clk.Now().Add(-time.Hour), false); err != nil {
		t.Fatal(err)
	}
	u = e.reload(t, u)
	return u, u.Factor(f.ID)
}

// beginLogin starts a second-factor ceremony for u bound to jti.
func (e *waEnv) beginLogin(t *testing.T, u *mfa.User, jti string) *virtualwebauthn.AssertionOptions {
	t.Helper()
	a, err := e.wa.BeginLogin(context.Background(), u, jti, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	o, err := virtualwebauthn.ParseAssertionOptions(waJSON(t, a))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (e *waEnv) beginPasskey(t *testing.T) *virtualwebauthn.AssertionOptions {
	t.Helper()
	a, err := e.wa.BeginPasskey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	o, err := virtualwebauthn.ParseAssertionOptions(waJSON(t, a))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func waWantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

// waSameAssurance compares acr and amr; amr as a set (RFC 8176 gives it no
// order).
func waSameAssurance(t *testing.T, got, want mfa.Assurance) {
	t.Helper()
	g, w := slices.Clone(got.AMR), slices.Clone(want.AMR)
	slices.Sort(g)
	slices.Sort(w)
	if got.ACR != want.ACR || !slices.Equal(g, w) || len(slices.Compact(g)) != len(got.AMR) {
		t.Errorf("assurance = %s %v, want %s %v", got.ACR, got.AMR, want.ACR, want.AMR)
	}
}

func TestWebAuthnRegistration(t *testing.T) {
	for _, tc := range []struct {
		name   string
		be, bs bool
	}{
		{"DeviceBoundKey", false, false},
		{"SyncedPasskey", true, true},
		{"BackupEligibleNotYetBackedUp", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := waNewEnv(t)
			u := e.newUser(t)
			k := waNewKey(t, virtualwebauthn.AuthenticatorOptions{UserHandle: []byte(u.ID), BackupEligible: tc.be, BackupState: tc.bs})
			k.cred.Counter = 7
			u, f := e.enroll(t, u, k)
			c := f.Credential
			if string(c.ID) != string(k.cred.ID) || len(c.PublicKey) == 0 || c.SignCount != 7 ||
				c.BackupEligible != tc.be || c.BackupState != tc.bs || !c.UVInitialized || c.Flagged {
				t.Errorf("stored credential %+v; want id %x, counter 7, BE %v, BS %v, UV initialised, not flagged",
					c, k.cred.ID, tc.be, tc.bs)
			}
			if owner, _, ok := e.indexOwner(t, k.cred.ID); !ok || owner != u.ID {
				t.Errorf("credential index: owner %q (present %v), want %q", owner, ok, u.ID)
			}
		})
	}

	t.Run("CredentialIDOfAnotherUser", func(t *testing.T) {
		e := waNewEnv(t)
		alice := e.newUser(t)
		k := waPasskey(t, alice, false)
		alice, _ = e.enroll(t, alice, k)
		_, aliceAt, _ := e.indexOwner(t, k.cred.ID)
		e.clk.Advance(time.Minute)

		mallory := e.newUser(t)
		copied := waPasskey(t, mallory, false) // a key pair of its own, alice's credential id
		copied.cred.ID = k.cred.ID
		for name, key := range map[string]*waKey{"CopiedID": copied, "SameAuthenticator": k} {
			_, err := e.wa.FinishRegistration(context.Background(), mallory, "sess-m", key.attest(waRP, e.beginRegistration(t, mallory, "sess-m")))
			waWantErr(t, err, mfa.ErrCredTaken)
			if owner, at, ok := e.indexOwner(t, k.cred.ID); !ok || owner != alice.ID || !at.Equal(aliceAt) {
				t.Errorf("%s: index entry now %q at %v (present %v), want %q at %v", name, owner, at, ok, alice.ID, aliceAt)
			}
		}
		e.unchanged(t, mallory)
		e.unchanged(t, alice)
	})

	t.Run("SameCredentialTwiceForOneUser", func(t *testing.T) {
		e := waNewEnv(t)
		u := e.newUser(t)
		k := waPasskey(t, u, false)
		u, _ = e.enroll(t, u, k)
		_, err := e.wa.FinishRegistration(context.Background(), u, "sess-1", k.attest(waRP, e.beginRegistration(t, u, "sess-1")))
		waWantErr(t, err, mfa.ErrCredTaken)
	})

	// Each of these fails with ErrCeremony and leaves no index entry, so the
	// same authenticator can still register properly afterwards.
	for _, tc := range []struct {
		name   string
		rp     virtualwebauthn.RelyingParty
		opts   virtualwebauthn.AuthenticatorOptions
		finish string // binding presented at finish
	}{
		{name: "WrongOrigin", rp: virtualwebauthn.RelyingParty{ID: waRPID, Origin: "https://evil.example"}},
		{name: "WrongOriginPort", rp: virtualwebauthn.RelyingParty{ID: waRPID, Origin: "http://localhost:8081"}},
		{name: "WrongRPIDHash", rp: virtualwebauthn.RelyingParty{ID: "evil.example", Origin: waOrigin}},
		{name: "UserNotPresent", opts: virtualwebauthn.AuthenticatorOptions{UserNotPresent: true}},
		{name: "BackupStateWithoutEligibility", opts: virtualwebauthn.AuthenticatorOptions{BackupState: true}},
		{name: "CeremonyOfAnotherSession", finish: "sess-other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := waNewEnv(t)
			u := e.newUser(t)
			if tc.rp.ID == "" {
				tc.rp = waRP
			}
			if tc.finish == "" {
				tc.finish = "sess-1"
			}
			k := waNewKey(t, tc.opts)
			_, err := e.wa.FinishRegistration(context.Background(), u, tc.finish, k.attest(tc.rp, e.beginRegistration(t, u, "sess-1")))
			waWantErr(t, err, mfa.ErrCeremony)
			if owner, _, ok := e.indexOwner(t, k.cred.ID); ok {
				t.Errorf("a failed registration claimed the credential id for %q", owner)
			}
			e.unchanged(t, u)
			k.auth.Options = virtualwebauthn.AuthenticatorOptions{}
			e.enroll(t, u, k)
		})
	}

	t.Run("UVRequiredButMissing", func(t *testing.T) {
		e := waNewEnv(t)
		e.wa.UserVerification = protocol.VerificationRequired
		u := e.newUser(t)
		k := waNewKey(t, virtualwebauthn.AuthenticatorOptions{UserNotVerified: true})
		_, err := e.wa.FinishRegistration(context.Background(), u, "sess-1", k.attest(waRP, e.beginRegistration(t, u, "sess-1")))
		waWantErr(t, err, mfa.ErrCeremony)
		if _, _, ok := e.indexOwner(t, k.cred.ID); ok {
			t.Error("a failed registration claimed the credential id")
		}
	})

	t.Run("ReplayedRegistration", func(t *testing.T) {
		e := waNewEnv(t)
		u := e.newUser(t)
		k := waPasskey(t, u, false)
		body := k.attest(waRP, e.beginRegistration(t, u, "sess-1"))
		if _, err := e.wa.FinishRegistration(context.Background(), u, "sess-1", body); err != nil {
			t.Fatal(err)
		}
		_, err := e.wa.FinishRegistration(context.Background(), u, "sess-1", body)
		waWantErr(t, err, mfa.ErrCeremony)
	})
}

// The rows of DESIGN.md's acr/amr table that a WebAuthn assertion reaches.
var (
	waPwdHwk     = mfa.Assurance{ACR: "aal3", AMR: []string{"pwd", "hwk", "mfa"}}
	waPwdHwkUser = mfa.Assurance{ACR: "aal3", AMR: []string{"pwd", "hwk", "mfa", "user"}}
	waPwdSwk     = mfa.Assurance{ACR: "aal2", AMR: []string{"pwd", "swk", "mfa"}}
	waPwdSwkUser = mfa.Assurance{ACR: "aal2", AMR: []string{"pwd", "swk", "mfa", "user"}}
	waPasskeyHwk = mfa.Assurance{ACR: "aal3", AMR: []string{"hwk", "user", "mfa"}}
	waPasskeySwk = mfa.Assurance{ACR: "aal2", AMR: []string{"swk", "user", "mfa"}}
)

func TestWebAuthnSecondFactor(t *testing.T) {
	for _, tc := range []struct {
		name     string
		be, uv   bool
		want     mfa.Assurance
		wantPass mfa.Assurance
	}{
		{"DeviceBoundKeyWithUV", false, true, waPwdHwkUser, waPasskeyHwk},
		{"DeviceBoundKeyWithoutUV", false, false, waPwdHwk, mfa.Assurance{}},
		{"SyncedPasskeyWithUV", true, true, waPwdSwkUser, waPasskeySwk},
		{"SyncedPasskeyWithoutUV", true, false, waPwdSwk, mfa.Assurance{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := waNewEnv(t)
			u := e.newUser(t)
			k := waPasskey(t, u, tc.be)
			k.cred.Counter = 1
			u, f := e.enroll(t, u, k)
			e.clk.Advance(time.Minute)
			k.cred.Counter = 2
			k.auth.Options.UserNotVerified = !tc.uv
			got, a, err := e.wa.FinishLogin(context.Background(), u, "jti-1", k.assert(waRP, e.beginLogin(t, u, "jti-1")))
			if err != nil {
				t.Fatalf("FinishLogin: %v", err)
			}
			if want := (mfa.Assertion{UserVerified: tc.uv, BackupEligible: tc.be}); a != want {
				t.Errorf("assertion = %+v, want %+v", a, want)
			}
			if got.ID != f.ID || got.Credential.SignCount != 2 || !got.LastUsedAt.Equal(e.clk.Now()) {
				t.Errorf("factor %s counter %d last used %v; want %s, 2, %v", got.ID, got.Credential.SignCount, got.LastUsedAt, f.ID, e.clk.Now())
			}
			waSameAssurance(t, mfa.DefaultPolicy.PasswordWebAuthn(a), tc.want)
			if tc.uv {
				waSameAssurance(t, mfa.DefaultPolicy.Passkey(a), tc.wantPass)
			}
			if c := e.reload(t, u).Factor(f.ID).Credential; c.SignCount != 2 || c.Flagged {
				t.Errorf("stored counter %d flagged %v, want 2 and not flagged", c.SignCount, c.Flagged)
			}
		})
	}

	// Every failure below is ErrCeremony and leaves the user as stored.
	for _, tc := range []struct {
		name     string
		be       bool // at registration
		uvReq    bool // UserVerification required
		rp       virtualwebauthn.RelyingParty
		mutate   func(k *waKey)
		jti      string        // presented at finish; default the ceremony's
		advance  time.Duration // clock moves before finish
		wantPass bool
	}{
		{name: "WrongOrigin", rp: virtualwebauthn.RelyingParty{ID: waRPID, Origin: "https://evil.example"}},
		{name: "WrongRPIDHash", rp: virtualwebauthn.RelyingParty{ID: "evil.example", Origin: waOrigin}},
		{name: "UserNotPresent", mutate: func(k *waKey) { k.auth.Options.UserNotPresent = true }},
		{name: "UVRequiredButMissing", uvReq: true, mutate: func(k *waKey) { k.auth.Options.UserNotVerified = true }},
		{name: "UVRequiredAndPresent", uvReq: true, wantPass: true},
		{name: "BackupStateWithoutEligibility", mutate: func(k *waKey) { k.auth.Options.BackupState = true }},
		{name: "BackupEligibilityGained", mutate: func(k *waKey) { k.auth.Options.BackupEligible = true }},
		{name: "BackupEligibilityLost", be: true, mutate: func(k *waKey) { k.auth.Options.BackupEligible, k.auth.Options.BackupState = false, false }},
		{name: "BackupStateChangesWhileEligible", be: true, mutate: func(k *waKey) { k.auth.Options.BackupState = false }, wantPass: true},
		{name: "CeremonyOfAnotherMFAToken", jti: "jti-other"},
		{name: "ExpiredCeremony", advance: waTTL},
		{name: "JustBeforeExpiry", advance: waTTL - time.Second, wantPass: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := waNewEnv(t)
			if tc.uvReq {
				e.wa.UserVerification = protocol.VerificationRequired
			}
			u := e.newUser(t)
			k := waPasskey(t, u, tc.be)
			u, _ = e.enroll(t, u, k)
			if tc.rp.ID == "" {
				tc.rp = waRP
			}
			if tc.jti == "" {
				tc.jti = "jti-1"
			}
			if tc.mutate != nil {
				tc.mutate(k)
			}
			body := k.assert(tc.rp, e.beginLogin(t, u, "jti-1"))
			e.clk.Advance(tc.advance)
			_, _, err := e.wa.FinishLogin(context.Background(), u, tc.jti, body)
			if tc.wantPass {
				if err != nil {
					t.Fatalf("FinishLogin: %v", err)
				}
				return
			}
			waWantErr(t, err, mfa.ErrCeremony)
			e.unchanged(t, u)
		})
	}

	t.Run("ReplayedAssertion", func(t *testing.T) {
		e := waNewEnv(t)
		u := e.newUser(t)
		k := waPasskey(t, u, false)
		u, f := e.enroll(t, u, k)
		k.cred.Counter = 1
		body := k.assert(waRP, e.beginLogin(t, u, "jti-1"))
		if _, _, err := e.wa.FinishLogin(context.Background(), u, "jti-1", body); err != nil {
			t.Fatal(err)
		}
		u = e.reload(t, u)
		_, _, err := e.wa.FinishLogin(context.Background(), u, "jti-1", body)
		waWantErr(t, err, mfa.ErrCeremony)
		e.unchanged(t, u)
		if c := u.Factor(f.ID).Credential; c.SignCount != 1 || c.Flagged {
			t.Errorf("counter %d flagged %v, want 1 and not flagged", c.SignCount, c.Flagged)
		}
	})

	t.Run("ConcurrentFinishOneWinner", func(t *testing.T) {
		e := waNewEnv(t)
		u := e.newUser(t)
		k := waPasskey(t, u, false)
		u, _ = e.enroll(t, u, k)
		body := k.assert(waRP, e.beginLogin(t, u, "jti-1"))
		const n = 10
		users := make([]*mfa.User, n) // FinishLogin updates its user: one copy each
		for i := range users {
			users[i] = e.reload(t, u)
		}
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				_, _, errs[i] = e.wa.FinishLogin(context.Background(), users[i], "jti-1", body)
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, mfa.ErrCeremony):
				t.Errorf("loser err = %v, want ErrCeremony", err)
			}
		}
		if wins != 1 {
			t.Errorf("%d of %d concurrent finishes succeeded, want exactly 1", wins, n)
		}
	})

	t.Run("AnotherUsersCredential", func(t *testing.T) {
		e := waNewEnv(t)
		alice, bob := e.newUser(t), e.newUser(t)
		ka, kb := waPasskey(t, alice, false), waPasskey(t, bob, false)
		alice, _ = e.enroll(t, alice, ka)
		bob, _ = e.enroll(t, bob, kb)
		// Bob's authenticator answers Alice's ceremony, with and without
		// naming Bob in the user handle.
		for _, handle := range [][]byte{[]byte(bob.ID), nil} {
			kb.auth.Options.UserHandle = handle
			_, _, err := e.wa.FinishLogin(context.Background(), alice, "jti-a", kb.assert(waRP, e.beginLogin(t, alice, "jti-a")))
			waWantErr(t, err, mfa.ErrCeremony)
		}
		// Bob finishes Alice's ceremony as himself: refused before it is
		// used up, so Alice can still finish it.
		kb.auth.Options.UserHandle = []byte(bob.ID)
		o := e.beginLogin(t, alice, "jti-a")
		_, _, err := e.wa.FinishLogin(context.Background(), bob, "jti-a", kb.assert(waRP, o))
		waWantErr(t, err, mfa.ErrCeremony)
		e.unchanged(t, alice)
		e.unchanged(t, bob)
		if _, _, err := e.wa.FinishLogin(context.Background(), alice, "jti-a", ka.assert(waRP, o)); err != nil {
			t.Errorf("Alice's ceremony after Bob's attempt: %v", err)
		}
	})

	t.Run("StepUpToAAL3OffersOnlyDeviceBound", func(t *testing.T) {
		e := waNewEnv(t)
		u := e.newUser(t)
		synced, bound := waPasskey(t, u, true), waPasskey(t, u, false)
		u, _ = e.enroll(t, u, synced)
		u, fb := e.enroll(t, u, bound)
		a, err := e.wa.BeginLogin(context.Background(), u, "jti-1", mfa.DefaultPolicy.ReachesTop, false)
		if err != nil {
			t.Fatal(err)
		}
		o, err := virtualwebauthn.ParseAssertionOptions(waJSON(t, a))
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{mfa.CredentialKey(bound.cred.ID)}; !slices.Equal(o.AllowCredentials, want) {
			t.Errorf("allowCredentials = %v, want only the device-bound %v", o.AllowCredentials, want)
		}
		_, _, err = e.wa.FinishLogin(context.Background(), u, "jti-1", synced.assert(waRP, o))
		waWantErr(t, err, mfa.ErrCeremony)
		e.unchanged(t, u)

		only := e.newUser(t)
		only, _ = e.enroll(t, only, waPasskey(t, only, true))
		_, err = e.wa.BeginLogin(context.Background(), only, "jti-2", mfa.DefaultPolicy.ReachesTop, false)
		waWantErr(t, err, mfa.ErrNotEnrolled)

		f, a2, err := e.wa.FinishLogin(context.Background(), u, "jti-3", bound.assert(waRP, e.beginLogin(t, u, "jti-3")))
		if err != nil || f.ID != fb.ID || a2.BackupEligible {
			t.Errorf("device-bound key: factor %v assertion %+v err %v", f, a2, err)
		}
	})

	t.Run("RegistrationResponseToLogin", func(t *testing.T) {
		e := waNewEnv(t)
		u := e.newUser(t)
		k := waPasskey(t, u, false)
		u, _ = e.enroll(t, u, k)
		other := waPasskey(t, u, false)
		reg := e.beginRegistration(t, u, "sess-1")
		e.beginLogin(t, u, "jti-1")
		// The attestation itself, and an assertion over the registration
		// challenge: both refused, and neither uses the ceremony up.
		_, _, err := e.wa.FinishLogin(context.Background(), u, "jti-1", other.attest(waRP, reg))
		waWantErr(t, err, mfa.ErrCeremony)
		_, _, err = e.wa.FinishLogin(context.Background(), u, "sess-1", k.assert(waRP, &virtualwebauthn.AssertionOptions{Challenge: reg.Challenge}))
		waWantErr(t, err, mfa.ErrCeremony)
		e.unchanged(t, u)
		if _, err := e.wa.FinishRegistration(context.Background(), u, "sess-1", other.attest(waRP, reg)); err != nil {
			t.Fatalf("the registration ceremony no longer finishes: %v", err)
		}
	})

	t.Run("AssertionToRegistration", func(t *testing.T) {
		e := waNewEnv(t)
		u := e.newUser(t)
		k := waPasskey(t, u, false)
		u, _ = e.enroll(t, u, k)
		login := e.beginLogin(t, u, "jti-1")
		e.beginRegistration(t, u, "sess-1")
		fresh := waPasskey(t, u, false)
		_, err := e.wa.FinishRegistration(context.Background(), u, "sess-1", k.assert(waRP, login))
		waWantErr(t, err, mfa.ErrCeremony)
		att := &virtualwebauthn.AttestationOptions{Challenge: login.Challenge, RelyingPartyID: waRPID, UserID: u.ID}
		_, err = e.wa.FinishRegistration(context.Background(), u, "jti-1", fresh.attest(waRP, att))
		waWantErr(t, err, mfa.ErrCeremony)
		if _, _, ok := e.indexOwner(t, fresh.cred.ID); ok {
			t.Error("a registration over a login challenge claimed the credential id")
		}
		if _, _, err := e.wa.FinishLogin(context.Background(), u, "jti-1", k.assert(waRP, login)); err != nil {
			t.Fatalf("the login ceremony no longer finishes: %v", err)
		}
	})
}

// TestWebAuthnSignCounter covers §6.1.1: a counter that does not grow (when
// either side is non-zero) flags the credential, and a flagged credential is
// refused from then on.
func TestWebAuthnSignCounter(t *testing.T) {
	for _, tc := range []struct {
		name         string
		stored, sent uint32
		ok           bool
	}{
		{"BothZero", 0, 0, true},
		{"Increased", 5, 6, true},
		{"StartedCounting", 0, 1, true},
		{"Regressed", 5, 3, false},
		{"Repeated", 5, 5, false},
		{"ResetToZero", 5, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := waNewEnv(t)
			u := e.newUser(t)
			k := waPasskey(t, u, false)
			k.cred.Counter = tc.stored
			u, f := e.enroll(t, u, k)
			k.cred.Counter = tc.sent
			_, _, err := e.wa.FinishLogin(context.Background(), u, "jti-1", k.assert(waRP, e.beginLogin(t, u, "jti-1")))
			c := e.reload(t, u).Factor(f.ID).Credential
			if tc.ok {
				if err != nil {
					t.Fatalf("FinishLogin: %v", err)
				}
				if c.Flagged {
					t.Error("credential flagged")
				}
				return
			}
			waWantErr(t, err, mfa.ErrCeremony)
			if !c.Flagged || c.SignCount != tc.stored {
				t.Errorf("stored credential flagged %v counter %d, want flagged with counter %d", c.Flagged, c.SignCount, tc.stored)
			}
		})
	}

	t.Run("FlaggedCredentialRefusedLater", func(t *testing.T) {
		e := waNewEnv(t)
		u := e.newUser(t)
		cloned, good := waPasskey(t, u, false), waPasskey(t, u, false)
		cloned.cred.Counter = 5
		u, flagged := e.enroll(t, u, cloned)
		cloned.cred.Counter = 3
		_, _, err := e.wa.FinishLogin(context.Background(), u, "jti-1", cloned.assert(waRP, e.beginLogin(t, u, "jti-1")))
		waWantErr(t, err, mfa.ErrCeremony)
		u = e.reload(t, u)
		if !u.Factor(flagged.ID).Credential.Flagged {
			t.Fatal("credential not flagged")
		}
		// Its only credential flagged, the user has nothing to answer with.
		_, err = e.wa.BeginLogin(context.Background(), u, "jti-2", nil, false)
		waWantErr(t, err, mfa.ErrNotEnrolled)

		u, _ = e.enroll(t, u, good)
		o := e.beginLogin(t, u, "jti-3")
		if want := []string{mfa.CredentialKey(good.cred.ID)}; !slices.Equal(o.AllowCredentials, want) {
			t.Errorf("allowCredentials = %v, want only the unflagged %v", o.AllowCredentials, want)
		}
		cloned.cred.Counter = 100
		_, _, err = e.wa.FinishLogin(context.Background(), u, "jti-3", cloned.assert(waRP, o))
		waWantErr(t, err, mfa.ErrCeremony)
		_, _, _, err = e.wa.FinishPasskey(context.Background(), cloned.assert(waRP, e.beginPasskey(t)))
		waWantErr(t, err, mfa.ErrCeremony)
		e.unchanged(t, u)
		if _, _, err := e.wa.FinishLogin(context.Background(), u, "jti-4", good.assert(waRP, e.beginLogin(t, u, "jti-4"))); err != nil {
			t.Errorf("the unflagged credential: %v", err)
		}
	})
}

func TestWebAuthnPasskey(t *testing.T) {
	for _, tc := range []struct {
		name string
		be   bool
		want mfa.Assurance
	}{
		{"DeviceBoundSignIn", false, waPasskeyHwk},
		{"SyncedSignIn", true, waPasskeySwk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := waNewEnv(t)
			e.newUser(t) // another user, to be sure the handle picks the owner
			u := e.newUser(t)
			k := waPasskey(t, u, tc.be)
			u, f := e.enroll(t, u, k)
			k.cred.Counter = 1
			o := e.beginPasskey(t)
			if len(o.AllowCredentials) != 0 {
				t.Errorf("allowCredentials = %v, want none (usernameless)", o.AllowCredentials)
			}
			owner, got, a, err := e.wa.FinishPasskey(context.Background(), k.assert(waRP, o))
			if err != nil {
				t.Fatalf("FinishPasskey: %v", err)
			}
			if owner.ID != u.ID || got.ID != f.ID || got.Credential.SignCount != 1 {
				t.Errorf("owner %s factor %s counter %d, want %s, %s, 1", owner.ID, got.ID, got.Credential.SignCount, u.ID, f.ID)
			}
			if want := (mfa.Assertion{UserVerified: true, BackupEligible: tc.be}); a != want {
				t.Errorf("assertion = %+v, want %+v", a, want)
			}
			waSameAssurance(t, mfa.DefaultPolicy.Passkey(a), tc.want)
		})
	}

	for _, tc := range []struct {
		name   string
		origin string
		mutate func(k *waKey, other *mfa.User)
		mfa    bool // answer a second-factor ceremony instead
	}{
		{name: "NoUserVerification", mutate: func(k *waKey, _ *mfa.User) { k.auth.Options.UserNotVerified = true }},
		{name: "UserNotPresent", mutate: func(k *waKey, _ *mfa.User) { k.auth.Options.UserNotPresent = true }},
		{name: "UserHandleOfAnotherUser", mutate: func(k *waKey, other *mfa.User) { k.auth.Options.UserHandle = []byte(other.ID) }},
		{name: "NoUserHandle", mutate: func(k *waKey, _ *mfa.User) { k.auth.Options.UserHandle = nil }},
		{name: "UnknownUserHandle", mutate: func(k *waKey, _ *mfa.User) { k.auth.Options.UserHandle = []byte("nobody") }},
		{name: "WrongOrigin", origin: "https://evil.example"},
		{name: "SecondFactorCeremony", mfa: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := waNewEnv(t)
			other := e.newUser(t)
			other, _ = e.enroll(t, other, waPasskey(t, other, false))
			u := e.newUser(t)
			k := waPasskey(t, u, false)
			u, _ = e.enroll(t, u, k)
			rp := waRP
			if tc.origin != "" {
				rp.Origin = tc.origin
			}
			if tc.mutate != nil {
				tc.mutate(k, other)
			}
			o := e.beginPasskey(t)
			if tc.mfa {
				o = e.beginLogin(t, u, "jti-1")
			}
			_, _, _, err := e.wa.FinishPasskey(context.Background(), k.assert(rp, o))
			waWantErr(t, err, mfa.ErrCeremony)
			e.unchanged(t, u)
			e.unchanged(t, other)
		})
	}

	t.Run("ReplayedSignIn", func(t *testing.T) {
		e := waNewEnv(t)
		u := e.newUser(t)
		k := waPasskey(t, u, false)
		e.enroll(t, u, k)
		body := k.assert(waRP, e.beginPasskey(t))
		if _, _, _, err := e.wa.FinishPasskey(context.Background(), body); err != nil {
			t.Fatal(err)
		}
		_, _, _, err := e.wa.FinishPasskey(context.Background(), body)
		waWantErr(t, err, mfa.ErrCeremony)
	})
}

// TestWebAuthnPolicy pins the whole WebAuthn part of DESIGN.md's table.
func TestWebAuthnPolicy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		a       mfa.Assertion
		pwd     mfa.Assurance
		passkey mfa.Assurance // only reachable with UV
	}{
		{"DeviceBoundWithUV", mfa.Assertion{UserVerified: true}, waPwdHwkUser, waPasskeyHwk},
		{"DeviceBoundWithoutUV", mfa.Assertion{}, waPwdHwk, mfa.Assurance{}},
		{"SyncedWithUV", mfa.Assertion{UserVerified: true, BackupEligible: true}, waPwdSwkUser, waPasskeySwk},
		{"SyncedWithoutUV", mfa.Assertion{BackupEligible: true}, waPwdSwk, mfa.Assurance{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			waSameAssurance(t, mfa.DefaultPolicy.PasswordWebAuthn(tc.a), tc.pwd)
			if tc.a.UserVerified {
				waSameAssurance(t, mfa.DefaultPolicy.Passkey(tc.a), tc.passkey)
			}
		})
	}
}
