package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// jwk is the public form of one key in the JWKS (RFC 7517 §4, RFC 7518
// §6.2.1 for EC, RFC 8037 §2 for OKP). It has no field for a private member,
// so none can leak into the document.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y,omitempty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// jwkSet is the RFC 7517 §5 document.
type jwkSet struct {
	Keys []jwk `json:"keys"`
}

var b64 = base64.RawURLEncoding

// publicJWK returns the public members of pub (kty, crv, x and, for EC, y).
// EC coordinates are the fixed-length 32-byte big-endian values that RFC 7518
// §6.2.1.2 requires, never big.Int.Bytes with leading zeros stripped.
func publicJWK(pub crypto.PublicKey) (jwk, error) {
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return jwk{}, errors.New("tokens: ECDSA key is not on P-256")
		}
		point, err := pub.Bytes() // 0x04 || X || Y, 65 bytes
		if err != nil {
			return jwk{}, fmt.Errorf("tokens: encode EC key: %w", err)
		}
		return jwk{Kty: "EC", Crv: "P-256", X: b64.EncodeToString(point[1:33]), Y: b64.EncodeToString(point[33:65])}, nil
	case ed25519.PublicKey:
		if len(pub) != ed25519.PublicKeySize {
			return jwk{}, errors.New("tokens: bad Ed25519 key length")
		}
		return jwk{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(pub)}, nil
	default:
		return jwk{}, fmt.Errorf("tokens: unsupported public key type %T", pub)
	}
}

// thumbprint is the RFC 7638 JWK SHA-256 thumbprint of pub, base64url
// without padding. It is the kid of every key this package generates: it is
// derived from the key alone, so two instances racing to create a key can
// never give different keys the same kid, and a resource server can check
// the binding. The members are the required ones in lexicographic order
// (RFC 7638 §3.2; RFC 8037 §2 for OKP); base64url needs no JSON escaping.
func thumbprint(pub crypto.PublicKey) (string, error) {
	k, err := publicJWK(pub)
	if err != nil {
		return "", err
	}
	var canon string
	switch k.Kty {
	case "EC":
		canon = `{"crv":"` + k.Crv + `","kty":"EC","x":"` + k.X + `","y":"` + k.Y + `"}`
	default:
		canon = `{"crv":"` + k.Crv + `","kty":"OKP","x":"` + k.X + `"}`
	}
	sum := sha256.Sum256([]byte(canon))
	return b64.EncodeToString(sum[:]), nil
}

// encodeJWKS renders the published keys, in the order given.
func encodeJWKS(keys []Key, pubs []crypto.PublicKey) ([]byte, error) {
	set := jwkSet{Keys: make([]jwk, 0, len(keys))}
	for i, k := range keys {
		j, err := publicJWK(pubs[i])
		if err != nil {
			return nil, err
		}
		j.Kid, j.Use, j.Alg = k.ID, "sig", k.Alg
		set.Keys = append(set.Keys, j)
	}
	return json.Marshal(set)
}

// usablePublic returns the public key of k if this package can sign with k:
// an ID, an activation time, and a private key of the type its Alg needs
// (*ecdsa.PrivateKey on P-256 for ES256, ed25519.PrivateKey for EdDSA).
func usablePublic(k Key) (crypto.PublicKey, bool) {
	if k.ID == "" || k.ActiveAt.IsZero() {
		return nil, false
	}
	switch k.Alg {
	case ES256:
		priv, ok := k.Private.(*ecdsa.PrivateKey)
		if !ok || priv == nil || priv.Curve != elliptic.P256() {
			return nil, false
		}
		return &priv.PublicKey, true
	case EdDSA:
		priv, ok := k.Private.(ed25519.PrivateKey)
		if !ok || len(priv) != ed25519.PrivateKeySize {
			return nil, false
		}
		return priv.Public(), true
	default:
		return nil, false
	}
}

// generateSigner makes a fresh private key for alg. Since Go 1.26 the
// standard library may ignore r for ECDSA and draw from its own secure
// source; r still feeds Ed25519.
func generateSigner(alg string, r io.Reader) (crypto.Signer, error) {
	switch alg {
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), r)
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(r)
		return priv, err
	default:
		return nil, fmt.Errorf("tokens: unsupported algorithm %q", alg)
	}
}
