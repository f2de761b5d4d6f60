package mfa_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/stepup-auth/stepup/mfa"
)

func TestAuthenticatorName(t *testing.T) {
	yubikey := uuid.MustParse("cb69481e-8ff7-4039-93ec-0a2729a154a8")
	tests := []struct {
		name   string
		aaguid []byte
		want   string
	}{
		{"Known", yubikey[:], "YubiKey 5 Series"},
		{"GooglePasswordManager", mustUUID("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"), "Google Password Manager"},
		{"AllZero", make([]byte, 16), ""},
		{"Unknown", mustUUID("5e1ec7ed-0000-4000-8000-00000000a11e"), ""},
		{"Short", yubikey[:15], ""},
		{"Nil", nil, ""},
	}
	for _, tt := range tests {
		if got := mfa.AuthenticatorName(tt.aaguid); got != tt.want {
			t.Errorf("%s: AuthenticatorName(%x) = %q, want %q", tt.name, tt.aaguid, got, tt.want)
		}
	}
}

func mustUUID(s string) []byte {
	id := uuid.MustParse(s)
	return id[:]
}
