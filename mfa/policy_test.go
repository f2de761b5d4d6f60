package mfa_test

import (
	"slices"
	"testing"

	"github.com/stepup-auth/stepup/mfa"
)

// metals is a policy with renamed levels: names are configurable, the order
// is not.
var metals = mfa.Policy{Levels: [3]string{"bronze", "silver", "gold"}}

func TestPolicyLevel(t *testing.T) {
	tests := []struct {
		policy mfa.Policy
		acr    string
		want   int
	}{
		{mfa.DefaultPolicy, "aal1", 0},
		{mfa.DefaultPolicy, "aal2", 1},
		{mfa.DefaultPolicy, "aal3", 2},
		{mfa.DefaultPolicy, "", -1},
		{mfa.DefaultPolicy, "AAL2", -1},
		{mfa.DefaultPolicy, " aal2", -1},
		{mfa.DefaultPolicy, "aal4", -1},
		{mfa.DefaultPolicy, "0", -1},
		{metals, "silver", 1},
		{metals, "gold", 2},
		{metals, "aal2", -1},
	}
	for _, tt := range tests {
		if got := tt.policy.Level(tt.acr); got != tt.want {
			t.Errorf("%v.Level(%q): got %d, want %d", tt.policy.Levels, tt.acr, got, tt.want)
		}
	}
}

func TestPolicySatisfies(t *testing.T) {
	tests := []struct {
		have, want string
		ok         bool
	}{
		{"aal1", "aal1", true},
		{"aal2", "aal1", true},
		{"aal3", "aal1", true},
		{"aal1", "aal2", false},
		{"aal2", "aal2", true},
		{"aal3", "aal2", true},
		{"aal1", "aal3", false},
		{"aal2", "aal3", false},
		{"aal3", "aal3", true},
		{"", "aal1", false},      // a token without acr satisfies nothing
		{"aal9", "aal1", false},  // nor does an unknown one
		{"aal3", "aal9", false},  // an unknown demand is never met
		{"aal3", "", false},      // nor an empty one
		{"", "", false},          // nor two unknowns
		{"AAL3", "aal1", false},  // names are exact
		{"aal2 ", "aal2", false}, // no trimming
	}
	for _, tt := range tests {
		if got := mfa.DefaultPolicy.Satisfies(tt.have, tt.want); got != tt.ok {
			t.Errorf("Satisfies(have %q, want %q): got %v, want %v", tt.have, tt.want, got, tt.ok)
		}
	}
	if !metals.Satisfies("gold", "silver") || metals.Satisfies("silver", "gold") || metals.Satisfies("aal3", "aal1") {
		t.Errorf("renamed levels: ordering not by position, or default names still accepted")
	}
}

func TestPolicyAssurance(t *testing.T) {
	for _, p := range []mfa.Policy{mfa.DefaultPolicy, metals} {
		aal1, aal2, aal3 := p.Levels[0], p.Levels[1], p.Levels[2]
		tests := []struct {
			name string
			got  func() mfa.Assurance
			want mfa.Assurance
		}{
			{"PasswordOnly", p.PasswordOnly, mfa.Assurance{ACR: aal1, AMR: []string{"pwd"}}},
			{"PasswordTOTP", p.PasswordTOTP, mfa.Assurance{ACR: aal2, AMR: []string{"pwd", "otp", "mfa"}}},
			{"PasswordRecovery", p.PasswordRecovery, mfa.Assurance{ACR: aal2, AMR: []string{"pwd", "rec", "mfa"}}},
		}
		for _, tt := range tests {
			t.Run(aal1+"/"+tt.name, func(t *testing.T) {
				got := tt.got()
				if got.ACR != tt.want.ACR || !slices.Equal(got.AMR, tt.want.AMR) {
					t.Fatalf("got %+v, want %+v", got, tt.want)
				}
				if p.Satisfies(got.ACR, aal3) {
					t.Fatalf("%s reaches %s; only a device-bound WebAuthn credential may", tt.name, aal3)
				}
				got.AMR[0] = "tampered" // each call returns its own slice
				if again := tt.got(); again.AMR[0] != tt.want.AMR[0] {
					t.Fatalf("AMR shared between calls: got %v after modifying an earlier result", again.AMR)
				}
			})
		}
	}
}

// TestPolicyReachable: the factors offered for a step-up are those that can
// reach the level; TOTP and recovery codes never reach aal3.
func TestPolicyReachable(t *testing.T) {
	totp := mfa.Factor{ID: "t", Kind: mfa.KindTOTP, Confirmed: true, Secret: []byte("12345678901234567890")}
	pending := mfa.Factor{ID: "p", Kind: mfa.KindTOTP, Secret: []byte("12345678901234567890")}
	bound := mfa.Factor{ID: "b", Kind: mfa.KindWebAuthn, Confirmed: true, Credential: &mfa.Credential{ID: []byte("b")}}
	synced := mfa.Factor{ID: "s", Kind: mfa.KindWebAuthn, Confirmed: true, Credential: &mfa.Credential{ID: []byte("s"), BackupEligible: true}}
	cloned := mfa.Factor{ID: "c", Kind: mfa.KindWebAuthn, Confirmed: true, Credential: &mfa.Credential{ID: []byte("c"), Flagged: true}}
	codes := []string{"hash-1", "hash-2"}
	tests := []struct {
		name    string
		factors []mfa.Factor
		codes   []string
		acr     string
		want    []string
	}{
		{"TOTPForAAL2", []mfa.Factor{totp}, nil, "aal2", []string{"totp"}},
		{"TOTPNotForAAL3", []mfa.Factor{totp}, nil, "aal3", nil},
		{"UnconfirmedTOTPNever", []mfa.Factor{pending}, nil, "aal2", nil},
		{"RecoveryForAAL2", nil, codes, "aal2", []string{"recovery"}},
		{"RecoveryNotForAAL3", nil, codes, "aal3", nil},
		{"SyncedKeyForAAL2", []mfa.Factor{synced}, nil, "aal2", []string{"webauthn"}},
		{"SyncedKeyNotForAAL3", []mfa.Factor{synced}, nil, "aal3", nil},
		{"DeviceBoundKeyForAAL3", []mfa.Factor{bound}, nil, "aal3", []string{"webauthn"}},
		{"ClonedKeyNever", []mfa.Factor{cloned}, nil, "aal2", nil},
		{"OnlyDeviceBoundAtAAL3", []mfa.Factor{totp, synced, bound}, codes, "aal3", []string{"webauthn"}},
		{"AllAtAAL2", []mfa.Factor{totp, synced}, codes, "aal2", []string{"totp", "webauthn", "recovery"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &mfa.User{ID: "u", Factors: tt.factors, RecoveryCodes: tt.codes}
			if got := mfa.DefaultPolicy.Reachable(u, tt.acr); !slices.Equal(got, tt.want) {
				t.Fatalf("Reachable(%s): got %v, want %v", tt.acr, got, tt.want)
			}
		})
	}
}
