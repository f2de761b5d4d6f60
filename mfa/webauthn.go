package mfa

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// Credential is our record of a WebAuthn public key credential
// (WebAuthn Level 3 §4 "credential record"). It is adapted to go-webauthn's
// type only at the boundary.
type Credential struct {
	ID                []byte
	PublicKey         []byte // COSE
	AttestationType   string
	AttestationFormat string
	Transports        []string
	AAGUID            []byte
	SignCount         uint32
	BackupEligible    bool // BE, fixed at registration
	BackupState       bool // BS, as last seen
	UVInitialized     bool
	Attachment        string
	// Flagged is set when the signature counter went backwards (a cloned
	// authenticator, §6.1.1); a flagged credential is refused until removed.
	Flagged bool
	// Attested is decided once, at registration: the attestation statement
	// verified, its certificate chain led to a trusted root for its AAGUID,
	// and that AAGUID is allowed (see AttestationTrust). Only then does
	// Policy in AAL3Attested mode count the credential as a hardware key.
	Attested bool
}

// Ceremony kinds.
const (
	CeremonyRegister = "register"
	CeremonyMFA      = "mfa" // second factor after a password
)

// Ceremony is the server side state of one WebAuthn ceremony, found again
// by its challenge (which the client echoes inside clientDataJSON).
type Ceremony struct {
	Challenge string // base64url, as in clientDataJSON
	Kind      string
	UserID    string // register and mfa
	Binding   string // the mfa_token jti (mfa) or the session id (register)
	Session   []byte // go-webauthn SessionData as JSON: challenge, allowed credentials, required UV
	ExpiresAt time.Time
}

// CeremonyStore keeps ceremonies and the global credential index. It is
// implemented by store.
type CeremonyStore interface {
	// SaveCeremony inserts c.
	SaveCeremony(ctx context.Context, c Ceremony) error
	// TakeCeremony deletes and returns the ceremony with that challenge,
	// kind, user and binding if it has not expired at now — one atomic
	// delete, so a ceremony finishes at most once. ErrNotFound otherwise.
	TakeCeremony(ctx context.Context, challenge, kind, userID, binding string, now time.Time) (Ceremony, error)
	// ClaimCredential records that credential id belongs to userID. It
	// returns ErrUsed when the id is registered to anyone already.
	ClaimCredential(ctx context.Context, id []byte, userID string) error
	// ReleaseCredential forgets a credential id (its factor was removed).
	ReleaseCredential(ctx context.Context, id []byte) error
}

// Assertion says what one WebAuthn assertion proved, read from the
// authenticator data of this ceremony, never from the stored record.
type Assertion struct {
	UserVerified   bool // UV
	BackupEligible bool // BE: a synced or syncable credential
	// Attested is the credential's recorded registration verdict
	// (Credential.Attested), never anything the client sends now.
	Attested bool
}

// WebAuthn runs registration and authentication ceremonies (W3C WebAuthn
// Level 3 §7) with go-webauthn. Registration and second-factor ceremonies
// keep their state in the store, and finishing takes (deletes) it. The
// anonymous usernameless ceremony writes nothing when it starts: its state
// is sealed into its challenge, and only a verified assertion records the
// challenge as used. Each ceremony finishes at most once.
type WebAuthn struct {
	RP         *webauthn.WebAuthn
	Ceremonies CeremonyStore
	Users      UserStore
	// PasskeyKey is the 32-byte AES-256-GCM key that seals a usernameless
	// ceremony's state into its challenge.
	PasskeyKey []byte
	// PasskeyDone holds the challenges of finished usernameless ceremonies,
	// each until it expires, so an assertion is accepted once.
	PasskeyDone Claims
	// UserVerification is asked for in registration and second-factor
	// ceremonies; passkey sign-in always requires it.
	UserVerification protocol.UserVerificationRequirement
	Attestation      protocol.ConveyancePreference
	// Trust decides at registration whether a credential's attestation
	// is trusted (Credential.Attested); nil trusts none.
	Trust *AttestationTrust
	TTL   time.Duration // ceremony lifetime, ≤ 5 min
	Now   func() time.Time
}

// Ceremony failures; the api answers all of them alike.
var (
	ErrCeremony  = errors.New("mfa: webauthn ceremony failed")
	ErrCredTaken = errors.New("mfa: credential registered already")
)

// webUser adapts a User to go-webauthn. The user handle is the user id: random,
// no personal data (§14.6.1).
type webUser struct {
	u     *User
	creds []webauthn.Credential
}

func newWebUser(u *User) *webUser { return newWebUserOnly(u, nil) }

// newWebUserOnly offers only the credentials only accepts, when it is not
// nil (a step-up to aal3 offers the ones that can reach it).
func newWebUserOnly(u *User, only func(*Credential) bool) *webUser {
	w := &webUser{u: u}
	for _, f := range u.Confirmed(KindWebAuthn) {
		if f.Credential != nil && !f.Credential.Flagged && (only == nil || only(f.Credential)) {
			w.creds = append(w.creds, toLib(f.Credential))
		}
	}
	return w
}

func (w *webUser) WebAuthnID() []byte                         { return []byte(w.u.ID) }
func (w *webUser) WebAuthnName() string                       { return w.u.Username }
func (w *webUser) WebAuthnDisplayName() string                { return w.u.Username }
func (w *webUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

func toLib(c *Credential) webauthn.Credential {
	tr := make([]protocol.AuthenticatorTransport, len(c.Transports))
	for i, t := range c.Transports {
		tr[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{ID: c.ID, PublicKey: c.PublicKey, AttestationType: c.AttestationType,
		AttestationFormat: c.AttestationFormat, Transport: tr,
		Flags:         webauthn.CredentialFlags{UserPresent: true, UserVerified: c.UVInitialized, BackupEligible: c.BackupEligible, BackupState: c.BackupState},
		Authenticator: webauthn.Authenticator{AAGUID: c.AAGUID, SignCount: c.SignCount, Attachment: protocol.AuthenticatorAttachment(c.Attachment)}}
}

func fromLib(c *webauthn.Credential) *Credential {
	tr := make([]string, len(c.Transport))
	for i, t := range c.Transport {
		tr[i] = string(t)
	}
	return &Credential{ID: c.ID, PublicKey: c.PublicKey, AttestationType: c.AttestationType, AttestationFormat: c.AttestationFormat,
		Transports: tr, AAGUID: c.Authenticator.AAGUID, SignCount: c.Authenticator.SignCount,
		BackupEligible: c.Flags.BackupEligible, BackupState: c.Flags.BackupState, UVInitialized: c.Flags.UserVerified,
		Attachment: string(c.Authenticator.Attachment)}
}

func descriptors(u *User) []protocol.CredentialDescriptor {
	var out []protocol.CredentialDescriptor
	for _, f := range u.Factors {
		if f.Kind == KindWebAuthn && f.Credential != nil {
			c := toLib(f.Credential)
			out = append(out, c.Descriptor())
		}
	}
	return out
}

func (w *WebAuthn) save(ctx context.Context, kind, userID, binding string, s *webauthn.SessionData) error {
	raw, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("mfa: encode ceremony: %w", err)
	}
	return w.Ceremonies.SaveCeremony(ctx, Ceremony{Challenge: s.Challenge, Kind: kind, UserID: userID, Binding: binding,
		Session: raw, ExpiresAt: w.Now().Add(w.TTL)})
}

// BeginRegistration starts registering a security key or passkey for u
// (§7.1): the options exclude u's existing credentials (step 3 of §5.1.3's
// excludeCredentials), prefer a resident key, and ask for the configured
// user verification and attestation. binding ties the ceremony to the
// caller's session.
func (w *WebAuthn) BeginRegistration(ctx context.Context, u *User, binding string) (*protocol.CredentialCreation, error) {
	creation, sess, err := w.RP.BeginRegistration(newWebUser(u),
		webauthn.WithExclusions(descriptors(u)),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: w.UserVerification,
		}),
		webauthn.WithConveyancePreference(w.Attestation),
		webauthn.WithExtensions(webauthn.WithExtensionInputs(protocol.AuthenticationExtensions{CredProps: true})),
	)
	if err != nil {
		return nil, fmt.Errorf("mfa: begin registration: %w", err)
	}
	if err := w.save(ctx, CeremonyRegister, u.ID, binding, sess); err != nil {
		return nil, err
	}
	return creation, nil
}

// FinishRegistration verifies a registration response (§7.1 steps 5–27)
// for the ceremony its challenge names, which must belong to u and binding.
// It returns the new credential, which the caller stores as a factor; the
// credential id is claimed globally first, so an id registered to anyone
// already gives ErrCredTaken. Any other failure is ErrCeremony.
func (w *WebAuthn) FinishRegistration(ctx context.Context, u *User, binding string, body []byte) (*Credential, error) {
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return nil, fmt.Errorf("%w: parse: %w", ErrCeremony, err)
	}
	sess, err := w.take(ctx, parsed.Response.CollectedClientData.Challenge, CeremonyRegister, u.ID, binding)
	if err != nil {
		return nil, err
	}
	cred, err := w.RP.CreateCredential(newWebUser(u), *sess, parsed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCeremony, err)
	}
	if flags := parsed.Response.AttestationObject.AuthData.Flags; !flags.HasBackupEligible() && flags.HasBackupState() {
		return nil, fmt.Errorf("%w: BS set without BE", ErrCeremony)
	}
	c := fromLib(cred)
	// §7.1, "assess the attestation trustworthiness": once, now,
	// from the statement just verified; the verdict is stored with the
	// credential.
	c.Attested = w.Trust.Attests(cred, w.RP.Config.Attestation, w.RP.Config.Signature)
	if err := w.Ceremonies.ClaimCredential(ctx, cred.ID, u.ID); err != nil {
		if errors.Is(err, ErrUsed) {
			return nil, ErrCredTaken
		}
		return nil, err
	}
	return c, nil
}

// BeginLogin starts a second-factor assertion for u (§7.2), listing u's
// usable credentials — only those only accepts when it is not nil (a
// step-up to aal3: Policy.ReachesTop) — bound to the mfa_token id. With
// requireUV the ceremony requires user verification whatever the
// configuration says (the key is then the only factor of this
// authentication).
func (w *WebAuthn) BeginLogin(ctx context.Context, u *User, binding string, only func(*Credential) bool, requireUV bool) (*protocol.CredentialAssertion, error) {
	wu := newWebUserOnly(u, only)
	if len(wu.creds) == 0 {
		return nil, ErrNotEnrolled
	}
	uv := w.UserVerification
	if requireUV {
		uv = protocol.VerificationRequired
	}
	assertion, sess, err := w.RP.BeginLogin(wu, webauthn.WithUserVerification(uv))
	if err != nil {
		return nil, fmt.Errorf("mfa: begin login: %w", err)
	}
	if err := w.save(ctx, CeremonyMFA, u.ID, binding, sess); err != nil {
		return nil, err
	}
	return assertion, nil
}

// FinishLogin verifies a second-factor assertion (§7.2 steps 5–25) for the
// ceremony its challenge names, which must belong to u and binding. On
// success the credential's counter and backup state are updated in u (the
// caller saves u) and the factor used is returned with what this assertion
// proved.
func (w *WebAuthn) FinishLogin(ctx context.Context, u *User, binding string, body []byte) (*Factor, Assertion, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return nil, Assertion{}, fmt.Errorf("%w: parse: %w", ErrCeremony, err)
	}
	sess, err := w.take(ctx, parsed.Response.CollectedClientData.Challenge, CeremonyMFA, u.ID, binding)
	if err != nil {
		return nil, Assertion{}, err
	}
	cred, err := w.RP.ValidateLogin(newWebUser(u), *sess, parsed)
	if err != nil {
		return nil, Assertion{}, fmt.Errorf("%w: %w", ErrCeremony, err)
	}
	return w.accept(ctx, u, cred, parsed)
}

// BeginPasskey starts a usernameless sign-in (§7.2 with an empty
// allowCredentials): user verification is required. It writes nothing: the
// challenge is the ceremony's state, sealed (see sealPasskey), so anonymous
// requests cost the store nothing.
func (w *WebAuthn) BeginPasskey(ctx context.Context) (*protocol.CredentialAssertion, error) {
	challenge, err := w.sealPasskey(w.Now().Add(w.TTL))
	if err != nil {
		return nil, err
	}
	assertion, _, err := w.RP.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired),
		webauthn.WithChallenge(challenge))
	if err != nil {
		return nil, fmt.Errorf("mfa: begin passkey login: %w", err)
	}
	return assertion, nil
}

// FinishPasskey verifies a usernameless assertion: the user is the owner of
// the credential named by the user handle. The ceremony is the one sealed
// in the challenge of clientDataJSON (§7.2 step 12 compares it with the
// one sent); UV is required by that ceremony, never by the request. Only
// after the signature verified is the challenge claimed, so a replay, or a
// second assertion for the same options, gives ErrCeremony.
func (w *WebAuthn) FinishPasskey(ctx context.Context, body []byte) (*User, *Factor, Assertion, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return nil, nil, Assertion{}, fmt.Errorf("%w: parse: %w", ErrCeremony, err)
	}
	challenge := parsed.Response.CollectedClientData.Challenge
	expires, err := w.openPasskey(challenge)
	if err != nil {
		return nil, nil, Assertion{}, err
	}
	// Expires stays zero: the seal's expiry is checked above against the
	// service's clock; the library would compare it with the wall clock.
	sess := webauthn.SessionData{Challenge: challenge, RelyingPartyID: w.RP.Config.RPID,
		UserVerification: protocol.VerificationRequired}
	var owner *User
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		u, err := w.Users.User(ctx, string(userHandle))
		if err != nil {
			return nil, err
		}
		owner = u
		return newWebUser(u), nil
	}
	_, cred, err := w.RP.ValidatePasskeyLogin(handler, sess, parsed)
	if err != nil {
		return nil, nil, Assertion{}, fmt.Errorf("%w: %w", ErrCeremony, err)
	}
	if !parsed.Response.AuthenticatorData.Flags.HasUserVerified() {
		return nil, nil, Assertion{}, fmt.Errorf("%w: no user verification", ErrCeremony)
	}
	err = w.PasskeyDone.Claim(ctx, challenge, expires)
	if errors.Is(err, ErrUsed) {
		return nil, nil, Assertion{}, fmt.Errorf("%w: passkey ceremony finished already", ErrCeremony)
	}
	if err != nil {
		return nil, nil, Assertion{}, err
	}
	f, a, err := w.accept(ctx, owner, cred, parsed)
	return owner, f, a, err
}

// A sealed passkey ceremony is AES-256-GCM(PasskeyKey, nonce, payload,
// "passkey") preceded by its 12-byte nonce; the payload is a version byte,
// 16 random bytes (so no two challenges are alike, §13.4.3), the expiry in
// Unix milliseconds, big-endian, and the user verification asked for
// (always 1, required). 1+16+8+1 payload bytes make a 54-byte challenge.
const (
	passkeyAAD     = "passkey"
	passkeyVersion = 1
	passkeyPayload = 1 + 16 + 8 + 1
	passkeyUVReq   = 1
)

func (w *WebAuthn) passkeyAEAD() (cipher.AEAD, error) {
	if len(w.PasskeyKey) != 32 {
		return nil, errors.New("mfa: passkey key must be 32 bytes")
	}
	block, err := aes.NewCipher(w.PasskeyKey)
	if err != nil {
		return nil, fmt.Errorf("mfa: passkey key: %w", err)
	}
	return cipher.NewGCM(block)
}

// sealPasskey makes the challenge of a usernameless ceremony that expires
// at expires.
func (w *WebAuthn) sealPasskey(expires time.Time) ([]byte, error) {
	aead, err := w.passkeyAEAD()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, aead.NonceSize(), aead.NonceSize()+passkeyPayload+aead.Overhead())
	plain := make([]byte, passkeyPayload)
	plain[0] = passkeyVersion
	if _, err := rand.Read(buf); err != nil {
		return nil, fmt.Errorf("mfa: passkey nonce: %w", err)
	}
	if _, err := rand.Read(plain[1:17]); err != nil {
		return nil, fmt.Errorf("mfa: passkey nonce: %w", err)
	}
	binary.BigEndian.PutUint64(plain[17:25], uint64(expires.UnixMilli()))
	plain[25] = passkeyUVReq
	return aead.Seal(buf, buf, plain, []byte(passkeyAAD)), nil
}

// openPasskey checks that challenge (base64url, as in clientDataJSON) is a
// canonical seal under PasskeyKey of a ceremony requiring user
// verification that has not expired at w.Now(), and returns its expiry.
// Anything else is ErrCeremony.
func (w *WebAuthn) openPasskey(challenge string) (time.Time, error) {
	aead, err := w.passkeyAEAD()
	if err != nil {
		return time.Time{}, err
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(challenge)
	if err != nil || len(raw) != aead.NonceSize()+passkeyPayload+aead.Overhead() {
		return time.Time{}, fmt.Errorf("%w: not a passkey ceremony", ErrCeremony)
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(passkeyAAD))
	if err != nil || plain[0] != passkeyVersion || plain[25] != passkeyUVReq {
		return time.Time{}, fmt.Errorf("%w: not a passkey ceremony", ErrCeremony)
	}
	expires := time.UnixMilli(int64(binary.BigEndian.Uint64(plain[17:25])))
	if !w.Now().Before(expires) {
		return time.Time{}, fmt.Errorf("%w: passkey ceremony expired", ErrCeremony)
	}
	return expires, nil
}

// take deletes and returns the ceremony of challenge if its kind, owner and
// binding match and it has not expired, so it finishes at most once.
func (w *WebAuthn) take(ctx context.Context, challenge, kind, userID, binding string) (*webauthn.SessionData, error) {
	if challenge == "" {
		return nil, fmt.Errorf("%w: no challenge", ErrCeremony)
	}
	c, err := w.Ceremonies.TakeCeremony(ctx, challenge, kind, userID, binding, w.Now())
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: unknown, finished, expired or foreign ceremony", ErrCeremony)
	}
	if err != nil {
		return nil, err
	}
	var sess webauthn.SessionData
	if err := json.Unmarshal(c.Session, &sess); err != nil {
		return nil, fmt.Errorf("mfa: decode ceremony: %w", err)
	}
	return &sess, nil
}

// accept applies the service's own checks after go-webauthn's: a signature
// counter that did not grow (when either side is non-zero) flags the
// credential and fails (§6.1.1; the library only warns). Then it records
// the new counter, backup state and use with one conditional update that
// succeeds only if the stored counter is still lower, so of two assertions
// carrying the same counter only one passes (§7.2 step 21).
func (w *WebAuthn) accept(ctx context.Context, u *User, cred *webauthn.Credential, parsed *protocol.ParsedCredentialAssertionData) (*Factor, Assertion, error) {
	var f *Factor
	for i := range u.Factors {
		c := u.Factors[i].Credential
		if u.Factors[i].Kind == KindWebAuthn && c != nil && bytes.Equal(c.ID, cred.ID) {
			f = &u.Factors[i]
		}
	}
	if f == nil {
		return nil, Assertion{}, fmt.Errorf("%w: credential not found", ErrCeremony)
	}
	if cred.Authenticator.CloneWarning {
		if err := w.Users.FlagCredential(context.WithoutCancel(ctx), u.ID, f.ID); err != nil {
			return nil, Assertion{}, fmt.Errorf("mfa: flag credential: %w", err)
		}
		return nil, Assertion{}, fmt.Errorf("%w: signature counter went backwards", ErrCeremony)
	}
	flags := parsed.Response.AuthenticatorData.Flags
	now := w.Now()
	err := w.Users.UseCredential(ctx, u.ID, f.ID, cred.Authenticator.SignCount, flags.HasBackupState(), now)
	if errors.Is(err, ErrBadCode) || errors.Is(err, ErrNotEnrolled) {
		return nil, Assertion{}, fmt.Errorf("%w: counter taken by a concurrent assertion, or factor removed", ErrCeremony)
	}
	if err != nil {
		return nil, Assertion{}, err
	}
	f.Credential.SignCount = cred.Authenticator.SignCount
	f.Credential.BackupState = flags.HasBackupState()
	f.LastUsedAt = now
	return f, Assertion{UserVerified: flags.HasUserVerified(), BackupEligible: flags.HasBackupEligible(),
		Attested: f.Credential.Attested}, nil
}

// CredentialKey is the base64url form of a credential id.
func CredentialKey(id []byte) string { return base64.RawURLEncoding.EncodeToString(id) }
