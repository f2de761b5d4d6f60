package flows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/stepup-auth/stepup/mfa"
)

const (
	maxFactors       = 20
	maxNameLen       = 64
	enrollmentWindow = 15 * time.Minute // an unconfirmed factor is dropped after this
)

// ErrInvalidName refuses a factor name.
var ErrInvalidName = errors.New("flows: a name is 1–64 characters without control characters")

// FactorName trims and checks a display name; empty gives def (and is an
// error when def is empty).
func FactorName(s, def string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		if def == "" {
			return "", ErrInvalidName
		}
		return def, nil
	}
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxNameLen {
		return "", ErrInvalidName
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return "", ErrInvalidName
		}
	}
	return s, nil
}

// Me returns the caller's user.
func (a *App) Me(ctx context.Context, c *Caller) (*mfa.User, error) {
	return a.Users.User(ctx, c.Claims.Subject)
}

// Factors returns the caller's user (with its factors) and how many
// recovery codes are left.
func (a *App) Factors(ctx context.Context, c *Caller) (*mfa.User, int, error) {
	u, err := a.Me(ctx, c)
	if err != nil {
		return nil, 0, err
	}
	left, err := a.Recovery.Remaining(ctx, u)
	return u, left, err
}

// Factor returns one of the caller's factors; another user's is
// mfa.ErrNotEnrolled.
func (a *App) Factor(ctx context.Context, c *Caller, id string) (*mfa.User, *mfa.Factor, error) {
	u, err := a.Me(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	f := u.Factor(id)
	if f == nil {
		return nil, nil, mfa.ErrNotEnrolled
	}
	return u, f, nil
}

// TOTPEnrollment is a TOTP factor being enrolled: the secret is shown once.
type TOTPEnrollment struct {
	Factor mfa.Factor
	Secret string // base32
	URI    string // otpauth://
}

// EnrollTOTP starts a TOTP enrollment; the factor counts once confirmed.
// The policy decides who may (mfa.Policy.Requires, ChangeEnroll);
// mfa.ErrTooManyFactors beyond 20.
func (a *App) EnrollTOTP(ctx context.Context, c *Caller, name string) (*TOTPEnrollment, error) {
	name, err := FactorName(name, "Authenticator app")
	if err != nil {
		return nil, err
	}
	u, err := a.mayEnroll(ctx, c)
	if err != nil {
		return nil, err
	}
	enr, err := a.TOTP.Generate(u.Username)
	if err != nil {
		return nil, err
	}
	now := a.Now()
	f := mfa.Factor{ID: a.Rand(12), Kind: mfa.KindTOTP, Name: name, CreatedAt: now, Secret: enr.Secret, AddedBy: c.Session.ID}
	if err := a.Users.AddFactor(ctx, u.ID, f, maxFactors, now.Add(-enrollmentWindow), false); err != nil {
		return nil, err
	}
	return &TOTPEnrollment{Factor: f, Secret: enr.Base32, URI: enr.URI}, nil
}

func (a *App) mayEnroll(ctx context.Context, c *Caller) (*mfa.User, error) {
	u, err := a.Me(ctx, c)
	if err != nil {
		return nil, err
	}
	if len(pruneUnconfirmed(u.Factors, a.Now())) >= maxFactors {
		return nil, mfa.ErrTooManyFactors
	}
	return u, a.require(c, u, mfa.ChangeEnroll, nil)
}

// ConfirmTOTP activates a TOTP factor with a code from the app. The
// enrollment policy is asked again, so a factor the user confirmed
// meanwhile raises the bar for an enrollment started before it. The
// code's time step is taken, so it cannot sign in again. The user's first
// factor brings the first recovery codes, returned once.
func (a *App) ConfirmTOTP(ctx context.Context, c *Caller, id, code string) (*mfa.Factor, []string, error) {
	if err := a.TOTP.CheckFormat(code); err != nil {
		return nil, nil, err
	}
	u, f, err := a.Factor(ctx, c, id)
	if err != nil {
		return nil, nil, err
	}
	now := a.Now()
	if f.Kind != mfa.KindTOTP || (!f.Confirmed && now.Sub(f.CreatedAt) > enrollmentWindow) {
		return nil, nil, mfa.ErrNotEnrolled
	}
	if f.Confirmed {
		return nil, nil, mfa.ErrAlreadyConfirmed
	}
	if err := a.require(c, u, mfa.ChangeEnroll, nil); err != nil {
		return nil, nil, err
	}
	if _, err := a.Budgets.Enroll.Take(ctx, enrollScope(f.ID)); err != nil {
		a.throttled(err)
		return nil, nil, err
	}
	// The policy let a session without the level in only because the user
	// had no confirmed factor: the update activates the factor only while
	// that is still so, so two enrollments confirmed at once cannot both
	// pass that way.
	first := len(u.Confirmed("")) == 0
	step, err := a.TOTP.Match(f, code)
	if err == nil {
		// Activates the factor and takes the step in one conditional update.
		err = a.Users.UseStep(ctx, u.ID, f.ID, step, now, true, now.Add(-enrollmentWindow), first)
		if errors.Is(err, mfa.ErrNotFirst) {
			if err = a.requireAgain(ctx, c, mfa.ChangeEnroll); err == nil {
				first = false
				err = a.Users.UseStep(ctx, u.ID, f.ID, step, now, true, now.Add(-enrollmentWindow), false)
			}
		}
	}
	if err != nil {
		if errors.Is(err, mfa.ErrBadCode) {
			a.m.verified("totp_confirm", false)
			return nil, nil, ErrCodeRejected
		}
		return nil, nil, err
	}
	a.m.verified("totp_confirm", true)
	a.event(c.Client, u.ID, c.Session.ID, mfa.EventFactorAdded, "totp "+f.ID)
	f.Confirmed, f.LastUsedAt, f.LastStep = true, now, step
	return f, a.firstRecoveryCodes(ctx, u, first), nil
}

// requireAgain reads the user again and applies the policy for ch: a
// conditional write found the user changed since the first read.
func (a *App) requireAgain(ctx context.Context, c *Caller, ch mfa.Change) error {
	u, err := a.Me(ctx, c)
	if err != nil {
		return err
	}
	return a.require(c, u, ch, nil)
}

// firstRecoveryCodes makes the first set with the user's first factor.
func (a *App) firstRecoveryCodes(ctx context.Context, u *mfa.User, first bool) []string {
	if !first || len(u.RecoveryCodes) > 0 {
		return nil
	}
	codes, err := a.replaceRecoveryCodes(ctx, u)
	if err != nil {
		// The factor is active; codes can be made later.
		a.Logger.Warn("first recovery codes not created", "user", u.ID, "err", err)
		return nil
	}
	return codes
}

// WebAuthnRegisterOptions starts registering a security key or passkey,
// bound to the caller's session.
func (a *App) WebAuthnRegisterOptions(ctx context.Context, c *Caller) (*protocol.CredentialCreation, error) {
	u, err := a.mayEnroll(ctx, c)
	if err != nil {
		return nil, err
	}
	return a.WebAuthn.BeginRegistration(ctx, u, c.Session.ID)
}

// RegisterWebAuthn verifies an attestation and adds the key as a confirmed
// factor: ErrRegistrationRejected when the ceremony fails, ErrCredTaken
// when the credential is anyone's already.
func (a *App) RegisterWebAuthn(ctx context.Context, c *Caller, name string, body []byte) (*mfa.Factor, []string, error) {
	name, err := FactorName(name, "Security key")
	if err != nil {
		return nil, nil, err
	}
	u, err := a.mayEnroll(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	cred, err := a.WebAuthn.FinishRegistration(ctx, u, c.Session.ID, body)
	if err != nil {
		a.m.verified("webauthn_register", false)
		switch {
		case errors.Is(err, mfa.ErrCredTaken):
			return nil, nil, ErrCredTaken
		case errors.Is(err, mfa.ErrCeremony):
			return nil, nil, errors.Join(ErrRegistrationRejected, err)
		}
		return nil, nil, err
	}
	now := a.Now()
	f := mfa.Factor{ID: a.Rand(12), Kind: mfa.KindWebAuthn, Name: name, Confirmed: true, CreatedAt: now, Credential: cred,
		AddedBy: c.Session.ID}
	first := len(u.Confirmed("")) == 0 // see ConfirmTOTP
	err = a.Users.AddFactor(ctx, u.ID, f, maxFactors, now.Add(-enrollmentWindow), first)
	if errors.Is(err, mfa.ErrNotFirst) {
		if err = a.requireAgain(ctx, c, mfa.ChangeEnroll); err == nil {
			first = false
			err = a.Users.AddFactor(ctx, u.ID, f, maxFactors, now.Add(-enrollmentWindow), false)
		}
	}
	if err != nil {
		_ = a.WebAuthn.Ceremonies.ReleaseCredential(context.WithoutCancel(ctx), cred.ID)
		return nil, nil, err
	}
	a.m.verified("webauthn_register", true)
	a.event(c.Client, u.ID, c.Session.ID, mfa.EventFactorAdded, "webauthn "+f.ID)
	return &f, a.firstRecoveryCodes(ctx, u, first), nil
}

// RenameFactor renames one of the caller's factors; it needs the level the
// factor provides (mfa.Policy.Requires, ChangeRename).
func (a *App) RenameFactor(ctx context.Context, c *Caller, id, name string) (*mfa.Factor, error) {
	name, err := FactorName(name, "")
	if err != nil {
		return nil, err
	}
	u, f, err := a.Factor(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if err := a.require(c, u, mfa.ChangeRename, f); err != nil {
		return nil, err
	}
	if err := a.Users.RenameFactor(ctx, u.ID, f.ID, name); err != nil {
		return nil, err
	}
	f.Name = name
	return f, nil
}

// RemoveFactor removes one of the caller's factors. It needs what the
// policy says (fresh at the level the factor provides, or the undo window
// of an older session); the last second factor only with last set
// (ErrLastFactor otherwise), recorded as its own event. The user's other
// sessions end and the caller's is re-assessed.
func (a *App) RemoveFactor(ctx context.Context, c *Caller, id string, last bool) error {
	u, f, err := a.Factor(ctx, c, id)
	if err != nil {
		return err
	}
	if err := a.require(c, u, mfa.ChangeRemove, f); err != nil {
		return err
	}
	// Whether it is the last confirmed factor is decided by the store on
	// the state it removes from, so two removals at once cannot both pass
	// as "not the last".
	removed, u, err := a.Users.RemoveFactor(ctx, u.ID, f.ID, last)
	if errors.Is(err, mfa.ErrLastFactor) {
		return ErrLastFactor
	}
	if err != nil {
		return err
	}
	a.event(c.Client, u.ID, c.Session.ID, mfa.EventFactorRemoved, string(removed.Kind)+" "+removed.ID)
	if removed.Confirmed && len(u.Confirmed("")) == 0 {
		a.event(c.Client, u.ID, c.Session.ID, mfa.EventLastFactorRemoved, "only the password is left")
	}
	if err := a.afterRemoval(ctx, c, u); err != nil {
		return err
	}
	if removed.Credential != nil {
		if err := a.WebAuthn.Ceremonies.ReleaseCredential(context.WithoutCancel(ctx), removed.Credential.ID); err != nil {
			a.Logger.Warn("credential index not released", "factor", removed.ID, "err", err)
		}
	}
	return nil
}

// afterRemoval ends the user's other sessions and re-assesses the caller's
// (mfa.Policy.AfterRemoval), so no token issued afterwards names a removed
// method.
func (a *App) afterRemoval(ctx context.Context, c *Caller, u *mfa.User) error {
	now := a.Now()
	if err := a.Sessions.Store.RevokeUserSessions(ctx, u.ID, c.Session.ID, now); err != nil {
		return err
	}
	if err := a.forgetDevices(ctx, u.ID); err != nil {
		return err
	}
	sess := c.Session
	as := a.Policy.AfterRemoval(sess.AMR, u)
	if as.ACR == sess.ACR && slices.Equal(as.AMR, sess.AMR) {
		return nil
	}
	_, err := a.Sessions.Store.SetAuth(ctx, sess.ID, sess.AuthTime, as.ACR, as.AMR, now)
	return err
}

// NewRecoveryCodes replaces the caller's recovery codes (a fresh aal2:
// mfa.Policy.Requires, ChangeRecoveryCodes) and returns the new ones, shown
// once. ErrNoFactorYet without a second factor.
func (a *App) NewRecoveryCodes(ctx context.Context, c *Caller) ([]string, error) {
	u, err := a.Me(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := a.require(c, u, mfa.ChangeRecoveryCodes, nil); err != nil {
		return nil, err
	}
	if len(u.Confirmed("")) == 0 {
		return nil, ErrNoFactorYet
	}
	codes, err := a.replaceRecoveryCodes(ctx, u)
	if err != nil {
		return nil, err
	}
	a.event(c.Client, u.ID, c.Session.ID, mfa.EventRecoveryNew, "")
	return codes, nil
}

func (a *App) replaceRecoveryCodes(ctx context.Context, u *mfa.User) ([]string, error) {
	codes, hashes, err := a.Recovery.Generate(u.ID)
	if err != nil {
		return nil, err
	}
	if err := a.Users.SetRecoveryCodes(ctx, u.ID, hashes); err != nil {
		return nil, err
	}
	u.RecoveryCodes = hashes
	return codes, nil
}

// pruneUnconfirmed drops enrollments never confirmed within the window.
func pruneUnconfirmed(fs []mfa.Factor, now time.Time) []mfa.Factor {
	out := fs[:0:0]
	for _, f := range fs {
		if f.Confirmed || now.Sub(f.CreatedAt) <= enrollmentWindow {
			out = append(out, f)
		}
	}
	return out
}
