package tokens

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// proofKey is a client's key in these tests.
type testProofKey struct {
	priv   any
	method jwt.SigningMethod
	jwk    map[string]any
}

func newTestProofKey(t testing.TB, alg string) testProofKey {
	t.Helper()
	switch alg {
	case ES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		j, _ := publicJWK(&k.PublicKey)
		return testProofKey{k, jwt.SigningMethodES256, map[string]any{"kty": "EC", "crv": "P-256", "x": j.X, "y": j.Y}}
	default:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return testProofKey{priv, jwt.SigningMethodEdDSA, map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(pub)}}
	}
}

// sign makes a proof with header members head (over the defaults) and
// claims.
func (k testProofKey) sign(t testing.TB, head map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.method, claims)
	tok.Header["typ"] = "dpop+jwt"
	tok.Header["jwk"] = k.jwk
	for name, v := range head {
		if v == nil {
			delete(tok.Header, name)
			continue
		}
		tok.Header[name] = v
	}
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestThumbprintRFC8037: the RFC 8037 Appendix A.3 example thumbprint.
func TestThumbprintRFC8037(t *testing.T) {
	x, _ := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	got, err := Thumbprint(ed25519.PublicKey(x))
	if err != nil || got != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" {
		t.Fatalf("Thumbprint = %q, %v; want the RFC 8037 A.3 value", got, err)
	}
}

func TestDPoPVerify(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	v := NewDPoPVerifier(DPoPConfig{Now: func() time.Time { return now }})
	const url = "https://auth.example.com/v1/me"
	req := DPoPRequest{Method: "GET", URL: url, AccessToken: "the.access.token"}
	ec := newTestProofKey(t, ES256)
	ed := newTestProofKey(t, EdDSA)
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"jti": "j1", "htm": "GET", "htu": url, "iat": now.Unix(), "ath": AccessTokenHash("the.access.token")}
		if mod != nil {
			mod(c)
		}
		return c
	}
	t.Run("Accepted", func(t *testing.T) {
		for _, k := range []testProofKey{ec, ed} {
			p, err := v.Verify(k.sign(t, nil, claims(nil)), req)
			if err != nil {
				t.Fatal(err)
			}
			var pub any
			switch priv := k.priv.(type) {
			case *ecdsa.PrivateKey:
				pub = &priv.PublicKey
			case ed25519.PrivateKey:
				pub = priv.Public()
			}
			want, _ := Thumbprint(pub)
			if p.JKT != want || p.ID != "j1" || !p.IssuedAt.Equal(now) || !p.Until.Equal(now.Add(65*time.Second)) || p.Replay == "" {
				t.Fatalf("proof = %+v", p)
			}
		}
	})
	t.Run("URLNormalised", func(t *testing.T) {
		for _, htu := range []string{"HTTPS://Auth.Example.com:443/v1/me", "https://auth.example.com/v1/me?q=1#f"} {
			if _, err := v.Verify(ec.sign(t, nil, claims(func(c jwt.MapClaims) { c["htu"] = htu })), req); err != nil {
				t.Errorf("htu %q: %v", htu, err)
			}
		}
	})
	priv := map[string]any{"kty": "EC", "crv": "P-256", "x": ec.jwk["x"], "y": ec.jwk["y"], "d": "AAAA"}
	refused := []struct {
		name string
		tok  string
	}{
		{"WrongTyp", ec.sign(t, map[string]any{"typ": "JWT"}, claims(nil))},
		{"NoTyp", ec.sign(t, map[string]any{"typ": nil}, claims(nil))},
		{"NoJWK", ec.sign(t, map[string]any{"jwk": nil}, claims(nil))},
		{"PrivateJWK", ec.sign(t, map[string]any{"jwk": priv}, claims(nil))},
		{"OtherKeysJWK", ec.sign(t, map[string]any{"jwk": newTestProofKey(t, ES256).jwk}, claims(nil))},
		{"AlgJWKMismatch", ec.sign(t, map[string]any{"jwk": ed.jwk}, claims(nil))},
		{"ExtraHeader", ec.sign(t, map[string]any{"kid": "k1"}, claims(nil))},
		{"Crit", ec.sign(t, map[string]any{"crit": []string{"exp"}}, claims(nil))},
		{"NoJTI", ec.sign(t, nil, claims(func(c jwt.MapClaims) { delete(c, "jti") }))},
		{"LongJTI", ec.sign(t, nil, claims(func(c jwt.MapClaims) { c["jti"] = strings.Repeat("j", 257) }))},
		{"OtherMethod", ec.sign(t, nil, claims(func(c jwt.MapClaims) { c["htm"] = "get" }))},
		{"OtherPath", ec.sign(t, nil, claims(func(c jwt.MapClaims) { c["htu"] = url + "/" }))},
		{"OtherPort", ec.sign(t, nil, claims(func(c jwt.MapClaims) { c["htu"] = "https://auth.example.com:8443/v1/me" }))},
		{"OtherScheme", ec.sign(t, nil, claims(func(c jwt.MapClaims) { c["htu"] = "http://auth.example.com/v1/me" }))},
		{"NoIat", ec.sign(t, nil, claims(func(c jwt.MapClaims) { delete(c, "iat") }))},
		{"StringIat", ec.sign(t, nil, claims(func(c jwt.MapClaims) { c["iat"] = "1700000000" }))},
		{"OldIat", ec.sign(t, nil, claims(func(c jwt.MapClaims) { c["iat"] = now.Add(-61 * time.Second).Unix() }))},
		{"FutureIat", ec.sign(t, nil, claims(func(c jwt.MapClaims) { c["iat"] = now.Add(6 * time.Second).Unix() }))},
		{"NoAth", ec.sign(t, nil, claims(func(c jwt.MapClaims) { delete(c, "ath") }))},
		{"WrongAth", ec.sign(t, nil, claims(func(c jwt.MapClaims) { c["ath"] = AccessTokenHash("other") }))},
		{"BadSignature", func() string {
			s := ec.sign(t, nil, claims(nil))
			return s[:len(s)-4] + "AAAA"
		}()},
		{"HS256", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil))
			tok.Header["typ"], tok.Header["jwk"] = "dpop+jwt", map[string]any{"kty": "oct", "k": "AAAA"}
			s, _ := tok.SignedString([]byte("secret"))
			return s
		}()},
		{"TooLong", ec.sign(t, nil, claims(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", 5000) }))},
		{"NotJWS", "not.a-proof"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := v.Verify(tc.tok, req); !errors.Is(err, ErrDPoPProof) {
				t.Fatalf("Verify = %v, want ErrDPoPProof", err)
			}
		})
	}
	t.Run("AthIgnoredWithoutToken", func(t *testing.T) {
		tok := ec.sign(t, nil, claims(func(c jwt.MapClaims) { delete(c, "ath") }))
		if _, err := v.Verify(tok, DPoPRequest{Method: "GET", URL: url}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDPoPNonces(t *testing.T) {
	c := newClock()
	n := NewDPoPNonces([]byte("0123456789abcdef0123456789abcdef"), time.Minute, c.Now)
	other := NewDPoPNonces([]byte("another key, another service....."), time.Minute, c.Now)
	cur := n.Current()
	if !n.Valid(cur) || other.Valid(cur) || n.Valid("") || n.Valid(cur[:len(cur)-1]+"A") {
		t.Fatal("a nonce is valid under its key only, unaltered")
	}
	c.Advance(time.Minute)
	if !n.Valid(cur) || n.Current() == cur {
		t.Fatal("the previous slot's nonce must stay valid, and a new slot must give a new nonce")
	}
	c.Advance(time.Minute)
	if n.Valid(cur) {
		t.Fatal("a nonce two slots old must be refused")
	}
}
