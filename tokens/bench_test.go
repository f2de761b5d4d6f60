package tokens

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkRawECDSAVerify is the floor Verifier.Access is measured against:
// SHA-256 of a typical access token's signing input and one P-256 signature
// check, nothing else.
func BenchmarkRawECDSAVerify(b *testing.B) {
	f := newFixture(b, ES256)
	tok, _ := f.access(b)
	input := []byte(tok[:strings.LastIndexByte(tok, '.')])
	priv := f.signing(b).Private.(*ecdsa.PrivateKey)
	sum := sha256.Sum256(input)
	sig, err := ecdsa.SignASN1(rand.Reader, priv, sum[:])
	if err != nil {
		b.Fatal(err)
	}
	pub := &priv.PublicKey
	b.ReportAllocs()
	for b.Loop() {
		h := sha256.Sum256(input)
		if !ecdsa.VerifyASN1(pub, h[:], sig) {
			b.Fatal("verify failed")
		}
	}
}

func BenchmarkVerifyAccess(b *testing.B) {
	f := newFixture(b, ES256)
	tok, _ := f.access(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.verify.Access(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyAccessParallel(b *testing.B) {
	f := newFixture(b, ES256)
	tok, _ := f.access(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.verify.Access(tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkIssueAccess(b *testing.B) {
	f := newFixture(b, ES256)
	amr := []string{"pwd", "otp", "mfa"}
	authTime := f.clock.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := f.issuer.Access("user-1", "sess-1", authTime, "aal2", amr); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyAccessEdDSA(b *testing.B) {
	f := newFixture(b, EdDSA)
	tok, _ := f.access(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.verify.Access(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssueAccessDPoP is the issue step of a request with a DPoP
// proof, without the store: the proof verified (ES256) and a bound access
// token signed. Compare BenchmarkIssueAccess.
func BenchmarkIssueAccessDPoP(b *testing.B) {
	f := newFixture(b, ES256)
	amr := []string{"pwd", "otp", "mfa"}
	authTime := f.clock.Now()
	v := NewDPoPVerifier(DPoPConfig{Now: f.clock.Now})
	k := newTestProofKey(b, ES256)
	const url = "https://auth.example.com/v1/token/refresh"
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i] = k.sign(b, nil, map[string]any{"jti": fmt.Sprint("j", i), "htm": "POST", "htu": url, "iat": authTime.Unix()})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := v.Verify(proofs[i], DPoPRequest{Method: "POST", URL: url})
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := f.issuer.BoundAccess("user-1", "sess-1", authTime, "aal2", amr, p.JKT); err != nil {
			b.Fatal(err)
		}
	}
}
