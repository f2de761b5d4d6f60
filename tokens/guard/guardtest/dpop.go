package guardtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stepup-auth/stepup/tokens"
)

// DPoPKey is a client's DPoP key (RFC 9449) that mints proofs, for tests of
// resource servers that accept DPoP-bound tokens (Server.BoundToken).
type DPoPKey struct {
	priv crypto.Signer
	alg  string
	jwk  map[string]any
	jkt  string
}

// NewDPoPKey makes a key for alg, tokens.ES256 (P-256) or tokens.EdDSA
// (Ed25519); a failure is fatal to tb.
func NewDPoPKey(tb testing.TB, alg string) *DPoPKey {
	tb.Helper()
	k := &DPoPKey{alg: alg}
	b64 := base64.RawURLEncoding
	switch alg {
	case tokens.ES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		point, _ := priv.PublicKey.Bytes()
		k.priv, k.jwk = priv, map[string]any{"kty": "EC", "crv": "P-256",
			"x": b64.EncodeToString(point[1:33]), "y": b64.EncodeToString(point[33:])}
	case tokens.EdDSA:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		k.priv, k.jwk = priv, map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(pub)}
	default:
		tb.Fatalf("guardtest: unsupported DPoP algorithm %q", alg)
	}
	jkt, err := tokens.Thumbprint(k.priv.Public())
	if err != nil {
		tb.Fatal(err)
	}
	k.jkt = jkt
	return k
}

// JKT is the key's RFC 7638 thumbprint: the cnf.jkt of tokens bound to it.
func (k *DPoPKey) JKT() string { return k.jkt }

// Proof is what a proof says; zero members take the defaults named.
type Proof struct {
	Method string    // htm (required)
	URL    string    // htu (required)
	Token  string    // the access token; ath is its hash ("" omits ath)
	IAT    time.Time // iat (default: time.Now)
	JTI    string    // jti (default: 128 random bits)
	Nonce  string    // nonce (omitted when empty)
}

// Proof mints a proof signed by k; a failure is fatal to tb.
func (k *DPoPKey) Proof(tb testing.TB, p Proof) string {
	tb.Helper()
	if p.IAT.IsZero() {
		p.IAT = time.Now()
	}
	if p.JTI == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		p.JTI = base64.RawURLEncoding.EncodeToString(b)
	}
	claims := jwt.MapClaims{"jti": p.JTI, "htm": p.Method, "htu": p.URL, "iat": p.IAT.Unix()}
	if p.Token != "" {
		sum := sha256.Sum256([]byte(p.Token))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if p.Nonce != "" {
		claims["nonce"] = p.Nonce
	}
	method := jwt.SigningMethod(jwt.SigningMethodES256)
	if k.alg == tokens.EdDSA {
		method = jwt.SigningMethodEdDSA
	}
	t := jwt.NewWithClaims(method, claims)
	t.Header["typ"] = tokens.TypeDPoPProof
	t.Header["jwk"] = k.jwk
	s, err := t.SignedString(k.priv)
	if err != nil {
		tb.Fatalf("guardtest: sign proof: %v", err)
	}
	return s
}

// BoundToken is Token for an access token bound to k (cnf.jkt).
func (s *Server) BoundToken(tb testing.TB, k *DPoPKey, acr string, amr []string, authTime time.Time) string {
	tb.Helper()
	tok, _, err := s.issuer.BoundAccess(Subject, Session, authTime, acr, amr, k.JKT())
	if err != nil {
		tb.Fatalf("guardtest: issue token: %v", err)
	}
	return tok
}
