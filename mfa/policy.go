package mfa

import "slices"

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

// Policy names the three assurance levels; their order is fixed.
type Policy struct {
	Levels [3]string // default aal1, aal2, aal3
}

// DefaultPolicy uses the NIST SP 800-63B names.
var DefaultPolicy = Policy{Levels: [3]string{"aal1", "aal2", "aal3"}}

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

// PasswordOnly is a password alone: aal1, pwd.
func (p Policy) PasswordOnly() Assurance {
	return Assurance{ACR: p.Levels[0], AMR: []string{AMRPassword}}
}

// PasswordTOTP is a password and a TOTP code: aal2. TOTP never yields aal3.
func (p Policy) PasswordTOTP() Assurance {
	return Assurance{ACR: p.Levels[1], AMR: []string{AMRPassword, AMROTP, AMRMFA}}
}

// PasswordWebAuthn is a password and a WebAuthn assertion: a device-bound
// credential (BE=0) reaches aal3 with hwk, a synced or syncable one aal2
// with swk; "user" only when this assertion carried UV.
func (p Policy) PasswordWebAuthn(a Assertion) Assurance {
	as := p.webauthn(a)
	as.AMR = append([]string{AMRPassword}, as.AMR...)
	return as
}

// Passkey is a passkey alone with user verification: the same levels as
// PasswordWebAuthn, without pwd. (Kratos caps this at aal1.)
func (p Policy) Passkey(a Assertion) Assurance {
	return p.webauthn(a)
}

func (p Policy) webauthn(a Assertion) Assurance {
	key, acr := AMRHardware, p.Levels[2]
	if a.BackupEligible {
		key, acr = AMRSoftware, p.Levels[1]
	}
	amr := []string{key}
	if a.UserVerified {
		amr = append(amr, AMRUser)
	}
	return Assurance{ACR: acr, AMR: append(amr, AMRMFA)}
}

// Reachable lists the kinds of u's confirmed factors that can reach acr:
// aal2 takes any second factor; aal3 only a device-bound WebAuthn credential
// (BE=0). TOTP and recovery codes never reach aal3.
func (p Policy) Reachable(u *User, acr string) []string {
	lvl := p.Level(acr)
	if lvl < 0 {
		return nil
	}
	var out []string
	if lvl <= 1 && len(u.Confirmed(KindTOTP)) > 0 {
		out = append(out, string(KindTOTP))
	}
	for _, f := range u.Confirmed(KindWebAuthn) {
		if f.Credential != nil && !f.Credential.Flagged && (lvl <= 1 || !f.Credential.BackupEligible) {
			out = append(out, string(KindWebAuthn))
			break
		}
	}
	if lvl <= 1 && len(u.RecoveryCodes) > 0 {
		out = append(out, KindRecovery)
	}
	return out
}

// PasswordRecovery is a password and a recovery code: aal2, with "rec"
// for the code (RFC 8176 has no value for it) — never otp or hwk.
func (p Policy) PasswordRecovery() Assurance {
	return Assurance{ACR: p.Levels[1], AMR: []string{AMRPassword, AMRRecovery, AMRMFA}}
}
