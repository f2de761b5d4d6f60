package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// JOSE helpers written for the tests: they read, check and forge compact
// JWTs with the standard library only, so the tests do not trust the code
// under test to tell them what a token says.

var seg = base64.RawURLEncoding

// jwtParts is a decoded compact JWS.
type jwtParts struct {
	Header       map[string]any
	Claims       map[string]any // numbers are json.Number
	SigningInput string
	Sig          []byte
}

func decodeSegment(tb testing.TB, s string) map[string]any {
	tb.Helper()
	b, err := seg.DecodeString(s)
	if err != nil {
		tb.Fatalf("segment %q: %v", s, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		tb.Fatalf("segment %s: %v", b, err)
	}
	return m
}

// parseJWT splits and decodes a compact JWS without checking it.
func parseJWT(tb testing.TB, tok string) jwtParts {
	tb.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		tb.Fatalf("token has %d parts, want 3", len(parts))
	}
	sig, err := seg.DecodeString(parts[2])
	if err != nil {
		tb.Fatalf("signature: %v", err)
	}
	return jwtParts{Header: decodeSegment(tb, parts[0]), Claims: decodeSegment(tb, parts[1]),
		SigningInput: parts[0] + "." + parts[1], Sig: sig}
}

// numClaim returns a NumericDate claim, failing tb if it is absent.
func numClaim(tb testing.TB, claims map[string]any, name string) int64 {
	tb.Helper()
	n, ok := claims[name].(json.Number)
	if !ok {
		tb.Fatalf("claim %s = %v, want a number", name, claims[name])
	}
	v, err := n.Int64()
	if err != nil {
		tb.Fatalf("claim %s = %v: %v", name, n, err)
	}
	return v
}

// strList returns a claim that is a string or an array of strings as a list.
func strList(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil
			}
			out = append(out, s)
		}
		return out
	}
	return nil
}

// clone copies a header or claims map one level deep.
func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func encodeSegment(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return seg.EncodeToString(b)
}

// signES256 signs header and claims with key as JWS ES256 (r‖s, 32 bytes
// each, RFC 7518 §3.4).
func signES256(tb testing.TB, key *ecdsa.PrivateKey, header, claims map[string]any) string {
	tb.Helper()
	input := encodeSegment(tb, header) + "." + encodeSegment(tb, claims)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		tb.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + seg.EncodeToString(sig)
}

// signHS256 signs header and claims with HMAC-SHA-256 under key.
func signHS256(tb testing.TB, key []byte, header, claims map[string]any) string {
	tb.Helper()
	input := encodeSegment(tb, header) + "." + encodeSegment(tb, claims)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(input))
	return input + "." + seg.EncodeToString(mac.Sum(nil))
}

// unsigned builds an alg "none" token (empty signature).
func unsigned(tb testing.TB, header, claims map[string]any) string {
	tb.Helper()
	return encodeSegment(tb, header) + "." + encodeSegment(tb, claims) + "."
}

// jwk is one public key of a JWKS.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	D   string `json:"d"` // must never be there
}

// jwks fetches /.well-known/jwks.json and returns the raw document and its
// keys.
func (a *testApp) jwks(tb testing.TB) ([]byte, []jwk) {
	tb.Helper()
	r := a.get(tb, "/.well-known/jwks.json", "")
	if r.Status != http.StatusOK {
		tb.Fatalf("jwks: status %d", r.Status)
	}
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		tb.Fatalf("jwks %s: %v", r.Body, err)
	}
	return r.Body, doc.Keys
}

// publicKey returns the P-256 key the JWKS publishes under kid.
func (a *testApp) publicKey(tb testing.TB, kid string) (*ecdsa.PublicKey, jwk) {
	tb.Helper()
	_, keys := a.jwks(tb)
	i := slices.IndexFunc(keys, func(k jwk) bool { return k.Kid == kid })
	if i < 0 {
		tb.Fatalf("kid %q not in the JWKS %+v", kid, keys)
	}
	k := keys[i]
	if k.Kty != "EC" || k.Crv != "P-256" || k.Alg != "ES256" || k.D != "" {
		tb.Fatalf("JWKS key %+v: want a public EC P-256 ES256 key", k)
	}
	x, errX := seg.DecodeString(k.X)
	y, errY := seg.DecodeString(k.Y)
	if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
		tb.Fatalf("JWKS key %+v: bad coordinates", k)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		tb.Fatalf("JWKS key %+v: %v", k, err)
	}
	return pub, k
}

// verifyES256 checks a JWS ES256 signature.
func verifyES256(pub *ecdsa.PublicKey, p jwtParts) bool {
	if len(p.Sig) != 64 {
		return false
	}
	sum := sha256.Sum256([]byte(p.SigningInput))
	return ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(p.Sig[:32]), new(big.Int).SetBytes(p.Sig[32:]))
}

// signingKey is the server's current private signing key, read from the
// running App (the test is in package main), so that a test can make tokens
// that are correctly signed and wrong in exactly one other way.
func (a *testApp) signingKey(tb testing.TB) (string, *ecdsa.PrivateKey) {
	tb.Helper()
	k, err := a.keys.Signing()
	if err != nil {
		tb.Fatal(err)
	}
	priv, ok := k.Private.(*ecdsa.PrivateKey)
	if !ok {
		tb.Fatalf("signing key is %T, want *ecdsa.PrivateKey", k.Private)
	}
	return k.ID, priv
}
