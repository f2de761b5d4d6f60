package mfa

import (
	"slices"
	"time"
)

// Authentication method reference values (RFC 8176), plus "rec" for a
// recovery code, for which RFC 8176 has no value.
const (
	AMRPassword = "pwd"
	AMROTP      = "otp"
	AMRMFA      = "mfa"
	AMRHardware = "hwk"
	AMRSoftware = "swk"
	AMRUser     = "user"
	AMRRecovery = "rec"
)

// amrOrder is the order methods are listed in, whatever order they were
// proved in.
var amrOrder = []string{AMRPassword, AMROTP, AMRRecovery, AMRHardware, AMRSoftware, AMRUser}

// Policy is the assurance policy, decided here and only here: which level
// what was proved reaches (Assess), which factors are offered for a level
// (Offered), what a change to a user's authenticators requires (Requires)
// and what a session becomes after a removal (AfterRemoval).
type Policy struct {
	Levels [3]string // default aal1, aal2, aal3
	// Fresh is how recent a session's authentication must be for a
	// sensitive change; default 10 minutes.
	Fresh time.Duration
	// UndoWindow is how long a session that started before a factor was
	// added (by another session) may remove that factor at its own level,
	// so an owner can undo a factor a password thief added (default 24
	// hours). A thief's older session could undo the owner's new factor the
	// same way; the owner is told either way (security events) and a
	// password change ends every other session.
	UndoWindow time.Duration
}

// DefaultPolicy uses the NIST SP 800-63B names.
var DefaultPolicy = Policy{Levels: [3]string{"aal1", "aal2", "aal3"}, Fresh: 10 * time.Minute, UndoWindow: 24 * time.Hour}

// Level returns the rank of acr (0, 1, 2), or -1 for an unknown value.
func (p Policy) Level(acr string) int {
	return slices.Index(p.Levels[:], acr)
}

// Satisfies reports whether have is at least want.
func (p Policy) Satisfies(have, want string) bool {
	h, w := p.Level(have), p.Level(want)
	return h >= 0 && w >= 0 && h >= w
}

// Assurance is what an authentication proved.
type Assurance struct {
	ACR string
	AMR []string
}

// Assess maps the methods an authentication proved (RFC 8176 values, in any
// order, "mfa" ignored) to its assurance — DESIGN.md's table in one place.
// Something held (otp, rec, swk, hwk) together with something known or a
// user verification (pwd, user) is multi-factor: aal3 when what is held is a
// device-bound key (hwk), aal2 otherwise, with "mfa" in the amr. Anything
// less is aal1: a key without user verification, alone, is one factor.
// TOTP and recovery codes never reach aal3 by themselves.
func (p Policy) Assess(methods ...string) Assurance {
	var amr []string
	for _, m := range amrOrder {
		if slices.Contains(methods, m) {
			amr = append(amr, m)
		}
	}
	has := func(ms ...string) bool {
		for _, m := range ms {
			if slices.Contains(amr, m) {
				return true
			}
		}
		return false
	}
	held := has(AMROTP, AMRRecovery, AMRSoftware, AMRHardware)
	known := has(AMRPassword, AMRUser)
	switch {
	case held && known && has(AMRHardware):
		return Assurance{ACR: p.Levels[2], AMR: append(amr, AMRMFA)}
	case held && known:
		return Assurance{ACR: p.Levels[1], AMR: append(amr, AMRMFA)}
	}
	if amr == nil {
		amr = []string{}
	}
	return Assurance{ACR: p.Levels[0], AMR: amr}
}

// Methods are what one WebAuthn assertion proved: the key (hwk when
// device-bound, swk when backup-eligible) and, with UV, "user".
func (a Assertion) Methods() []string {
	m := []string{AMRHardware}
	if a.BackupEligible {
		m[0] = AMRSoftware
	}
	if a.UserVerified {
		m = append(m, AMRUser)
	}
	return m
}

// PasswordOnly is a password alone: aal1, pwd.
func (p Policy) PasswordOnly() Assurance { return p.Assess(AMRPassword) }

// PasswordTOTP is a password and a TOTP code: aal2.
func (p Policy) PasswordTOTP() Assurance { return p.Assess(AMRPassword, AMROTP) }

// PasswordRecovery is a password and a recovery code: aal2, with "rec".
func (p Policy) PasswordRecovery() Assurance { return p.Assess(AMRPassword, AMRRecovery) }

// PasswordWebAuthn is a password and a WebAuthn assertion.
func (p Policy) PasswordWebAuthn(a Assertion) Assurance {
	return p.Assess(append([]string{AMRPassword}, a.Methods()...)...)
}

// Passkey is a passkey alone (with user verification: the caller requires
// it). (Kratos caps this at aal1.)
func (p Policy) Passkey(a Assertion) Assurance { return p.Assess(a.Methods()...) }

// Offered lists the kinds of u's factors that, answered on top of the
// methods in have (what still counts from this sign-in: the password just
// checked, or what a session proved within max_age), reach acr. Login and
// step-up both ask it, so they always offer the same. A flagged (possibly
// cloned) credential is never offered; a key counts with user verification
// only if it has done UV before.
func (p Policy) Offered(u *User, acr string, have []string) []string {
	if p.Level(acr) < 0 {
		return nil
	}
	reaches := func(m ...string) bool { return p.Satisfies(p.Assess(append(slices.Clone(have), m...)...).ACR, acr) }
	var out []string
	if len(u.Confirmed(KindTOTP)) > 0 && reaches(AMROTP) {
		out = append(out, string(KindTOTP))
	}
	for _, f := range u.Confirmed(KindWebAuthn) {
		if c := f.Credential; c != nil && !c.Flagged && reaches(credentialMethods(c)...) {
			out = append(out, string(KindWebAuthn))
			break
		}
	}
	if len(u.RecoveryCodes) > 0 && reaches(AMRRecovery) {
		out = append(out, KindRecovery)
	}
	return out
}

// CanReach reports whether factor kind answered on top of have can reach
// acr at best (a key at its best: device-bound with user verification).
func (p Policy) CanReach(kind string, have []string, acr string) bool {
	var m []string
	switch kind {
	case string(KindTOTP):
		m = []string{AMROTP}
	case KindRecovery:
		m = []string{AMRRecovery}
	default:
		m = []string{AMRHardware, AMRUser}
	}
	return p.Satisfies(p.Assess(append(slices.Clone(have), m...)...).ACR, acr)
}

// credentialMethods is the best a stored credential can prove.
func credentialMethods(c *Credential) []string {
	return Assertion{BackupEligible: c.BackupEligible, UserVerified: c.UVInitialized}.Methods()
}

// FactorLevel is the level a factor provides together with a password:
// aal3 for a device-bound key, aal2 for anything else.
func (p Policy) FactorLevel(f *Factor) string {
	if f.Kind == KindWebAuthn && f.Credential != nil {
		return p.Assess(append([]string{AMRPassword}, credentialMethods(f.Credential)...)...).ACR
	}
	return p.Levels[1]
}

// Change is a change to a user's authenticators or credentials.
type Change int

// The changes the policy rules on.
const (
	ChangeEnroll         Change = iota // start or confirm an enrollment
	ChangeRename                       // rename a factor
	ChangeRemove                       // remove a factor
	ChangeRecoveryCodes                // a new set of recovery codes
	ChangePassword                     // a new password
	ChangeEndSession                   // end another session of the user
	ChangeEndAllSessions               // end every session, the asking one too
	ChangeDeleteAccount                // delete the account
)

// Session is what the policy needs to know of the session asking.
type Session struct {
	ID       string
	ACR      string
	AuthTime time.Time // its last interactive authentication
	Created  time.Time // when it was signed in
}

// Requirement is what a change needs: a session at ACR or better whose
// authentication is at most MaxAge old. ACR "" lets any signed-in session.
type Requirement struct {
	ACR    string
	MaxAge time.Duration
}

// Requires says what change on u (f for a rename or removal) needs from
// session s at now:
//   - enrolling (and confirming) the first factor: any session; another
//     one: a fresh aal2, so a stolen password cannot add the thief's
//     authenticator — checked again at confirmation, so an enrollment
//     started before the user's first factor cannot be confirmed after it;
//   - renaming or removing a factor: fresh at the level that factor
//     provides (removing a device-bound key needs aal3), except that a
//     session older than the factor may remove it within UndoWindow of its
//     creation, at any level — the owner undoing what a password thief
//     added (not the session that added it: it needs the level);
//   - new recovery codes: a fresh aal2;
//   - a new password: a fresh aal2 once the user has a second factor;
//   - ending another session of the user: a fresh aal2 once the user has a
//     second factor, so a stolen password alone cannot sign the owner out
//     of their devices (ending one's own session is a logout: any session);
//   - ending every session, the asking one included: any session — it is
//     the way out when a device is lost, and it leaves nobody signed in, so
//     a thief gains nothing by it;
//   - deleting the account: a fresh aal2 once the user has a second factor
//     (the password is asked again as well; see flows).
func (p Policy) Requires(u *User, ch Change, f *Factor, s Session, now time.Time) Requirement {
	fresh := func(acr string) Requirement { return Requirement{ACR: acr, MaxAge: p.fresh()} }
	hasFactor := len(u.Confirmed("")) > 0
	switch ch {
	case ChangeEnroll:
		if !hasFactor {
			return Requirement{}
		}
		return fresh(p.Levels[1])
	case ChangeRemove:
		if f != nil && f.AddedBy != s.ID && s.Created.Before(f.CreatedAt) && now.Sub(f.CreatedAt) <= p.undo() {
			return Requirement{}
		}
		fallthrough
	case ChangeRename:
		if f == nil || !f.Confirmed {
			return Requirement{}
		}
		return fresh(p.FactorLevel(f))
	case ChangeRecoveryCodes:
		return fresh(p.Levels[1])
	case ChangePassword, ChangeEndSession, ChangeDeleteAccount:
		if !hasFactor {
			return Requirement{}
		}
		return fresh(p.Levels[1])
	case ChangeEndAllSessions:
		return Requirement{}
	}
	return fresh(p.Levels[2])
}

// Meets reports whether session s meets r at now.
func (p Policy) Meets(s Session, r Requirement, now time.Time) bool {
	if r.ACR == "" {
		return true
	}
	return p.Satisfies(s.ACR, r.ACR) && now.Sub(s.AuthTime) <= r.MaxAge
}

// AfterRemoval is what a session that proved amr becomes once u (after the
// removal) no longer has some of those methods: they leave its amr and the
// level is assessed again from what remains, so no token issued afterwards
// names a removed method or a level it no longer has.
func (p Policy) AfterRemoval(amr []string, u *User) Assurance {
	have := map[string]bool{AMRPassword: true, AMRUser: true}
	for _, f := range u.Confirmed("") {
		switch {
		case f.Kind == KindTOTP:
			have[AMROTP] = true
		case f.Credential != nil && f.Credential.BackupEligible:
			have[AMRSoftware] = true
		case f.Credential != nil:
			have[AMRHardware] = true
		}
	}
	if len(u.RecoveryCodes) > 0 {
		have[AMRRecovery] = true
	}
	var kept []string
	for _, m := range amr {
		if have[m] {
			kept = append(kept, m)
		}
	}
	// "user" is verification by an authenticator; without a key left it
	// names nothing.
	if !slices.Contains(kept, AMRHardware) && !slices.Contains(kept, AMRSoftware) {
		kept = slices.DeleteFunc(kept, func(m string) bool { return m == AMRUser })
	}
	return p.Assess(kept...)
}

// Counted is what a session's methods still count for at now under a
// max_age (nil: no limit): all of them while its authentication is recent
// enough, none after.
func Counted(amr []string, authTime time.Time, maxAge *time.Duration, now time.Time) []string {
	if maxAge != nil && now.Sub(authTime) > *maxAge {
		return nil
	}
	return slices.DeleteFunc(slices.Clone(amr), func(m string) bool { return m == AMRMFA })
}

func (p Policy) fresh() time.Duration {
	if p.Fresh == 0 {
		return 10 * time.Minute
	}
	return p.Fresh
}

func (p Policy) undo() time.Duration {
	if p.UndoWindow == 0 {
		return 24 * time.Hour
	}
	return p.UndoWindow
}
