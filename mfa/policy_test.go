package mfa_test

import (
	"slices"
	"testing"
	"time"

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

// TestPolicyOffered: the factors offered after a password (login, or a
// step-up whose session still counts) are those that can reach the level;
// TOTP and recovery codes never reach aal3.
func TestPolicyOffered(t *testing.T) {
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
			if got := mfa.DefaultPolicy.Offered(u, tt.acr, []string{"pwd"}); !slices.Equal(got, tt.want) {
				t.Fatalf("Offered(%s): got %v, want %v", tt.acr, got, tt.want)
			}
		})
	}
}

// TestPolicyOfferedWithNothingCounted: when nothing of the session counts
// any more (max_age passed), only a key that verifies its user can reach a
// multi-factor level alone; a recovery code or TOTP alone is one factor.
func TestPolicyOfferedWithNothingCounted(t *testing.T) {
	totp := mfa.Factor{ID: "t", Kind: mfa.KindTOTP, Confirmed: true}
	uvKey := mfa.Factor{ID: "k", Kind: mfa.KindWebAuthn, Confirmed: true, Credential: &mfa.Credential{ID: []byte("k"), UVInitialized: true}}
	plainKey := mfa.Factor{ID: "p", Kind: mfa.KindWebAuthn, Confirmed: true, Credential: &mfa.Credential{ID: []byte("p")}}
	tests := []struct {
		name    string
		factors []mfa.Factor
		acr     string
		want    []string
	}{
		{"TOTPAloneIsOneFactor", []mfa.Factor{totp}, "aal2", nil},
		{"UVKeyReachesAAL3", []mfa.Factor{totp, uvKey}, "aal3", []string{"webauthn"}},
		{"KeyWithoutUVIsOneFactor", []mfa.Factor{plainKey}, "aal2", nil},
		{"AnythingReachesAAL1", []mfa.Factor{totp, plainKey}, "aal1", []string{"totp", "webauthn", "recovery"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &mfa.User{Factors: tt.factors, RecoveryCodes: []string{"h"}}
			if got := mfa.DefaultPolicy.Offered(u, tt.acr, nil); !slices.Equal(got, tt.want) {
				t.Fatalf("Offered(%s, nothing counted): got %v, want %v", tt.acr, got, tt.want)
			}
		})
	}
}

// TestPolicyAssess is DESIGN.md's table, and the combinations a step-up
// makes of what a session still counts and what its ceremony proved.
func TestPolicyAssess(t *testing.T) {
	tests := []struct {
		methods []string
		acr     string
		amr     []string
	}{
		{[]string{"pwd"}, "aal1", []string{"pwd"}},
		{[]string{"otp", "pwd"}, "aal2", []string{"pwd", "otp", "mfa"}},
		{[]string{"pwd", "rec"}, "aal2", []string{"pwd", "rec", "mfa"}},
		{[]string{"pwd", "swk"}, "aal2", []string{"pwd", "swk", "mfa"}},
		{[]string{"pwd", "swk", "user"}, "aal2", []string{"pwd", "swk", "user", "mfa"}},
		{[]string{"pwd", "hwk"}, "aal3", []string{"pwd", "hwk", "mfa"}},
		{[]string{"pwd", "hwk", "user"}, "aal3", []string{"pwd", "hwk", "user", "mfa"}},
		{[]string{"swk", "user"}, "aal2", []string{"swk", "user", "mfa"}},
		{[]string{"hwk", "user"}, "aal3", []string{"hwk", "user", "mfa"}},
		// One factor is one factor, whatever it is (issue: a non-UV key
		// after max_age=0 must not be aal3 with mfa).
		{[]string{"hwk"}, "aal1", []string{"hwk"}},
		{[]string{"otp"}, "aal1", []string{"otp"}},
		{[]string{"rec"}, "aal1", []string{"rec"}},
		{[]string{"user"}, "aal1", []string{"user"}},
		{nil, "aal1", []string{}},
		// "mfa" is derived, never taken from the input.
		{[]string{"mfa", "otp"}, "aal1", []string{"otp"}},
		{[]string{"pwd", "otp", "mfa", "otp"}, "aal2", []string{"pwd", "otp", "mfa"}},
		// TOTP and recovery codes never reach aal3.
		{[]string{"pwd", "otp", "rec"}, "aal2", []string{"pwd", "otp", "rec", "mfa"}},
	}
	for _, tt := range tests {
		got := mfa.DefaultPolicy.Assess(tt.methods...)
		if got.ACR != tt.acr || !slices.Equal(got.AMR, tt.amr) {
			t.Errorf("Assess(%v) = %s %v, want %s %v", tt.methods, got.ACR, got.AMR, tt.acr, tt.amr)
		}
	}
}

// TestPolicyRequires: what each change needs, and the undo window.
func TestPolicyRequires(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	p := mfa.DefaultPolicy
	totp := mfa.Factor{ID: "t", Kind: mfa.KindTOTP, Confirmed: true, CreatedAt: now.Add(-time.Hour)}
	key := mfa.Factor{ID: "k", Kind: mfa.KindWebAuthn, Confirmed: true, CreatedAt: now.Add(-time.Hour), Credential: &mfa.Credential{ID: []byte("k")}}
	synced := mfa.Factor{ID: "s", Kind: mfa.KindWebAuthn, Confirmed: true, CreatedAt: now.Add(-time.Hour), Credential: &mfa.Credential{ID: []byte("s"), BackupEligible: true}}
	none := &mfa.User{}
	with := &mfa.User{Factors: []mfa.Factor{totp, key, synced}}
	old := mfa.Session{ID: "owner", ACR: "aal1", AuthTime: now.Add(-2 * time.Hour), Created: now.Add(-2 * time.Hour)}
	adder := mfa.Session{ID: "thief", ACR: "aal1", AuthTime: now.Add(-2 * time.Hour), Created: now.Add(-2 * time.Hour)}
	totp.AddedBy = "thief"
	young := mfa.Session{ACR: "aal2", AuthTime: now, Created: now}
	tests := []struct {
		name string
		u    *mfa.User
		ch   mfa.Change
		f    *mfa.Factor
		s    mfa.Session
		want string
	}{
		{"FirstFactorAnySession", none, mfa.ChangeEnroll, nil, young, ""},
		{"AnotherFactorAAL2", with, mfa.ChangeEnroll, nil, young, "aal2"},
		{"RenameTOTPAAL2", with, mfa.ChangeRename, &totp, young, "aal2"},
		{"RenameDeviceKeyAAL3", with, mfa.ChangeRename, &key, young, "aal3"},
		{"RemoveTOTPAAL2", with, mfa.ChangeRemove, &totp, young, "aal2"},
		{"RemoveDeviceKeyAAL3", with, mfa.ChangeRemove, &key, young, "aal3"},
		{"RemoveSyncedKeyAAL2", with, mfa.ChangeRemove, &synced, young, "aal2"},
		{"OlderSessionUndoesNewFactor", with, mfa.ChangeRemove, &totp, old, ""},
		{"AddingSessionDoesNot", with, mfa.ChangeRemove, &totp, adder, "aal2"},
		{"RecoveryCodesAAL2", with, mfa.ChangeRecoveryCodes, nil, young, "aal2"},
		{"PasswordNoFactorAny", none, mfa.ChangePassword, nil, young, ""},
		{"PasswordWithFactorAAL2", with, mfa.ChangePassword, nil, young, "aal2"},
		{"EndSessionNoFactorAny", none, mfa.ChangeEndSession, nil, young, ""},
		{"EndSessionWithFactorAAL2", with, mfa.ChangeEndSession, nil, young, "aal2"},
		{"EndAllSessionsAny", with, mfa.ChangeEndAllSessions, nil, old, ""},
		{"DeleteNoFactorAny", none, mfa.ChangeDeleteAccount, nil, young, ""},
		{"DeleteWithFactorAAL2", with, mfa.ChangeDeleteAccount, nil, young, "aal2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := p.Requires(tt.u, tt.ch, tt.f, tt.s, now)
			if r.ACR != tt.want {
				t.Fatalf("Requires: got %q, want %q", r.ACR, tt.want)
			}
			if r.ACR != "" && r.MaxAge != p.Fresh {
				t.Fatalf("MaxAge %v, want %v", r.MaxAge, p.Fresh)
			}
		})
	}
	t.Run("UndoWindowCloses", func(t *testing.T) {
		late := now.Add(p.UndoWindow + time.Hour)
		if r := p.Requires(with, mfa.ChangeRemove, &totp, old, late); r.ACR != "aal2" {
			t.Fatalf("after the window: got %q, want aal2", r.ACR)
		}
	})
	t.Run("Meets", func(t *testing.T) {
		r := mfa.Requirement{ACR: "aal2", MaxAge: 10 * time.Minute}
		for _, c := range []struct {
			s    mfa.Session
			want bool
		}{
			{mfa.Session{ACR: "aal2", AuthTime: now}, true},
			{mfa.Session{ACR: "aal3", AuthTime: now.Add(-10 * time.Minute)}, true},
			{mfa.Session{ACR: "aal2", AuthTime: now.Add(-11 * time.Minute)}, false},
			{mfa.Session{ACR: "aal1", AuthTime: now}, false},
		} {
			if got := p.Meets(c.s, r, now); got != c.want {
				t.Errorf("Meets(%+v) = %v, want %v", c.s, got, c.want)
			}
		}
		if !p.Meets(mfa.Session{}, mfa.Requirement{}, now) {
			t.Error("an empty requirement must be met by any session")
		}
	})
}

// TestPolicyAfterRemoval: a removed method leaves the session's amr and its
// level follows what remains.
func TestPolicyAfterRemoval(t *testing.T) {
	key := mfa.Factor{ID: "k", Kind: mfa.KindWebAuthn, Confirmed: true, Credential: &mfa.Credential{ID: []byte("k")}}
	totp := mfa.Factor{ID: "t", Kind: mfa.KindTOTP, Confirmed: true}
	tests := []struct {
		name string
		amr  []string
		u    *mfa.User
		acr  string
		want []string
	}{
		{"LastTOTPGone", []string{"pwd", "otp", "mfa"}, &mfa.User{}, "aal1", []string{"pwd"}},
		{"OtherKeyStays", []string{"pwd", "hwk", "user", "mfa"}, &mfa.User{Factors: []mfa.Factor{key}}, "aal3", []string{"pwd", "hwk", "user", "mfa"}},
		{"KeyGoneUserGoesToo", []string{"hwk", "user", "mfa"}, &mfa.User{Factors: []mfa.Factor{totp}}, "aal1", []string{}},
		{"RecoveryKept", []string{"pwd", "rec", "mfa"}, &mfa.User{Factors: []mfa.Factor{totp}, RecoveryCodes: []string{"h"}}, "aal2", []string{"pwd", "rec", "mfa"}},
	}
	for _, tt := range tests {
		got := mfa.DefaultPolicy.AfterRemoval(tt.amr, tt.u)
		if got.ACR != tt.acr || !slices.Equal(got.AMR, tt.want) {
			t.Errorf("%s: got %s %v, want %s %v", tt.name, got.ACR, got.AMR, tt.acr, tt.want)
		}
	}
}

func TestCounted(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	amr := []string{"pwd", "otp", "mfa"}
	five := 5 * time.Minute
	zero := time.Duration(0)
	if got := mfa.Counted(amr, now.Add(-time.Hour), nil, now); !slices.Equal(got, []string{"pwd", "otp"}) {
		t.Errorf("no max_age: %v", got)
	}
	if got := mfa.Counted(amr, now.Add(-time.Minute), &five, now); !slices.Equal(got, []string{"pwd", "otp"}) {
		t.Errorf("within max_age: %v", got)
	}
	if got := mfa.Counted(amr, now.Add(-6*time.Minute), &five, now); got != nil {
		t.Errorf("past max_age: %v", got)
	}
	if got := mfa.Counted(amr, now.Add(-time.Second), &zero, now); got != nil {
		t.Errorf("max_age 0: %v", got)
	}
}
