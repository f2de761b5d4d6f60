package mfa_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stepup-auth/stepup/mfa"
)

func TestCheckStrength(t *testing.T) {
	tests := []struct {
		password string
		weak     bool
	}{
		{"password", true},
		{"password1", true},
		{"P@ssw0rd1", true},
		{"12345678", true},
		{"qwertyuiop", true},
		{"iloveyou", true},
		{"alice2024", true}, // the username and a year
		{"baseball1", true}, // a top-30k password
		{"correct horse battery staple", false},
		{"pw-alice-correct horse", false},
		{"Tr0ub4dour&3-meadow-xylophone", false},
	}
	for _, tt := range tests {
		err := mfa.CheckStrength(tt.password, "alice")
		if got := errors.Is(err, mfa.ErrWeakPassword); got != tt.weak {
			t.Errorf("CheckStrength(%q): weak %v, want %v", tt.password, got, tt.weak)
		}
	}
	// The longest password allowed is checked on its first 100
	// characters: weak there is weak.
	if err := mfa.CheckStrength(strings.Repeat("a", mfa.MaxPasswordLen), "alice"); !errors.Is(err, mfa.ErrWeakPassword) {
		t.Errorf("1,024 times a: %v, want ErrWeakPassword", err)
	}
}
