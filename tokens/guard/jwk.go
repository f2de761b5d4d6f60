package guard

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/stepup-auth/stepup/tokens"
)

// pinnedKey is one verification key with the single algorithm its kid is
// bound to.
type pinnedKey struct {
	key crypto.PublicKey
	alg string
}

// jwkMembers are the members of one JWK (RFC 7517 §4) this package reads.
// Every other member is ignored, as §4 requires; private members ("d") are
// never read.
type jwkMembers struct {
	Kty    string   `json:"kty"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	Alg    string   `json:"alg"`
	KeyOps []string `json:"key_ops"`
}

var errNoUsableKeys = errors.New("guard: the JWKS holds no usable signature key")

// parseJWKS decodes an RFC 7517 §5 JWK Set and returns its usable
// verification keys by kid. A key is usable if it has a kid, is meant for
// signatures (use absent or "sig"; key_ops absent or containing "verify"),
// and is either EC P-256 for ES256 (RFC 7518 §6.2) or OKP Ed25519 for EdDSA
// (RFC 8037 §2). An alg member, if present, must name that algorithm; if
// absent, the curve implies it. Other keys (RSA, oct, other curves, malformed
// members) are skipped, not fatal, so that one key this package cannot use
// does not hide the others. A kid that appears twice is dropped: it would not
// name one key.
//
// It returns an error if data is not a JWK Set or holds no usable key.
func parseJWKS(data []byte) (map[string]pinnedKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("guard: decode JWKS: %w", err)
	}
	keys := make(map[string]pinnedKey, len(set.Keys))
	ambiguous := map[string]bool{}
	for _, raw := range set.Keys {
		var m jwkMembers
		if err := json.Unmarshal(raw, &m); err != nil {
			continue
		}
		k, ok := m.pinned()
		if !ok || ambiguous[m.Kid] {
			continue
		}
		if _, dup := keys[m.Kid]; dup {
			delete(keys, m.Kid)
			ambiguous[m.Kid] = true
			continue
		}
		keys[m.Kid] = k
	}
	if len(keys) == 0 {
		return nil, errNoUsableKeys
	}
	return keys, nil
}

// pinned returns the key m describes and its algorithm, or ok == false if m
// is not a usable signature-verification key.
func (m *jwkMembers) pinned() (pinnedKey, bool) {
	if m.Kid == "" || (m.Use != "" && m.Use != "sig") ||
		(m.KeyOps != nil && !slices.Contains(m.KeyOps, "verify")) {
		return pinnedKey{}, false
	}
	switch {
	case m.Kty == "EC" && m.Crv == "P-256" && (m.Alg == "" || m.Alg == tokens.ES256):
		x, errX := coordinate(m.X, 32)
		y, errY := coordinate(m.Y, 32)
		if errX != nil || errY != nil {
			return pinnedKey{}, false
		}
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point) // checks the point is on the curve
		if err != nil {
			return pinnedKey{}, false
		}
		return pinnedKey{key: pub, alg: tokens.ES256}, true
	case m.Kty == "OKP" && m.Crv == "Ed25519" && (m.Alg == "" || m.Alg == tokens.EdDSA):
		x, err := coordinate(m.X, ed25519.PublicKeySize)
		if err != nil {
			return pinnedKey{}, false
		}
		return pinnedKey{key: ed25519.PublicKey(x), alg: tokens.EdDSA}, true
	default:
		return pinnedKey{}, false
	}
}

var b64 = base64.RawURLEncoding.Strict()

// coordinate decodes an unpadded base64url member of exactly n bytes; RFC
// 7518 §6.2.1.2 fixes the length of EC coordinates, RFC 8037 §2 that of x.
func coordinate(s string, n int) ([]byte, error) {
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) != n {
		return nil, fmt.Errorf("guard: key member is %d bytes, want %d", len(b), n)
	}
	return b, nil
}
