package tokens

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// forge signs claims with method and key under the fixture's default header
// (typ at+jwt, the signing kid) changed by header; a nil value deletes a
// member.
func forge(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("forge: %v", err)
	}
	return s
}

// accessClaims is a complete, valid access-token payload at the fixture's now.
func (f *fixture) accessClaims() jwt.MapClaims {
	now := f.clock.Now().Unix()
	return jwt.MapClaims{
		"iss": testIssuer, "sub": "user-1", "aud": []string{testAudience}, "client_id": "spa",
		"iat": now, "exp": now + 600, "jti": "j1", "sid": "s1", "auth_time": now - 60,
		"acr": "aal2", "amr": []string{"pwd", "otp", "mfa"},
	}
}

// with returns a copy of c changed by kv pairs; a nil value deletes a claim.
func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// otherKeys adds an EdDSA key to the fixture's store (as after a change of
// algorithm) and returns it, refreshed into the key set.
func (f *fixture) addEdDSAKey(t *testing.T) Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := thumbprint(priv.Public())
	k := Key{ID: kid, Alg: EdDSA, Private: priv, CreatedAt: f.clock.Now(), ActiveAt: f.clock.Now().Add(-time.Hour)}
	if err := f.store.AddKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	if err := f.keys.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifyAccessRefusesForgeries(t *testing.T) {
	f := newFixture(t, ES256)
	es := f.signing(t)
	ed := f.addEdDSAKey(t)
	if f.signing(t).ID != es.ID {
		t.Fatal("the older EdDSA key took over signing")
	}
	esPriv := es.Private.(*ecdsa.PrivateKey)
	hdr := map[string]any{"typ": TypeAccess, "kid": es.ID}
	good := f.accessClaims()

	attacker, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&esPriv.PublicKey)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	rawKey, _ := esPriv.PublicKey.Bytes()
	attackerJWK, _ := publicJWK(&attacker.PublicKey)

	legit, _ := f.access(t)
	parts := strings.Split(legit, ".")
	payload, _ := b64.DecodeString(parts[1])
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	m["sub"] = "admin"
	changed, _ := json.Marshal(m)
	tampered := parts[0] + "." + b64.EncodeToString(changed) + "." + parts[2]

	// A non-canonical base64 signature: the last character's unused low
	// bits flipped. Lenient decoders map it to the same bytes.
	sig := parts[2]
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	noncanonical := parts[0] + "." + parts[1] + "." + sig[:len(sig)-1] + string(alphabet[last^1])

	pending, _ := f.pending(t)
	t.Logf("valid token control: %d bytes", len(legit))

	tests := []struct {
		name    string
		token   string
		reason  string // substring of the logged reason, proving which check refused it
		expired bool
	}{
		{"AlgNone", forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, hdr, good), "signing method", false},
		{"HS256WithPEMPublicKey", forge(t, jwt.SigningMethodHS256, pemKey, hdr, good), "signing method", false},
		{"HS256WithRawPublicKey", forge(t, jwt.SigningMethodHS256, rawKey, hdr, good), "signing method", false},
		{"UnknownKid", forge(t, jwt.SigningMethodES256, esPriv, map[string]any{"typ": TypeAccess, "kid": "nope"}, good), "unknown kid", false},
		{"MissingKid", forge(t, jwt.SigningMethodES256, esPriv, map[string]any{"typ": TypeAccess, "kid": nil}, good), "missing kid", false},
		{"ES256HeaderOnEdDSAKid", forge(t, jwt.SigningMethodES256, esPriv, map[string]any{"typ": TypeAccess, "kid": ed.ID}, good), "alg is not", false},
		{"EdDSAHeaderOnES256Kid", forge(t, jwt.SigningMethodEdDSA, ed.Private, hdr, good), "alg is not", false},
		{"ChangedClaimKeptSignature", tampered, "signature is invalid", false},
		{"NonCanonicalSignatureEncoding", noncanonical, "malformed", false},
		{"SameKidDifferentKey", forge(t, jwt.SigningMethodES256, attacker, hdr, good), "signature is invalid", false},
		{"MissingExp", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "exp", nil)), "exp claim is required", false},
		{"HeaderJWK", forge(t, jwt.SigningMethodES256, esPriv, map[string]any{"typ": TypeAccess, "kid": es.ID, "jwk": attackerJWK}, good), "forbidden header", false},
		{"HeaderJKU", forge(t, jwt.SigningMethodES256, esPriv, map[string]any{"typ": TypeAccess, "kid": es.ID, "jku": "https://evil.example/jwks"}, good), "forbidden header", false},
		{"HeaderX5U", forge(t, jwt.SigningMethodES256, esPriv, map[string]any{"typ": TypeAccess, "kid": es.ID, "x5u": "https://evil.example/cert"}, good), "forbidden header", false},
		{"HeaderX5C", forge(t, jwt.SigningMethodES256, esPriv, map[string]any{"typ": TypeAccess, "kid": es.ID, "x5c": []string{"MIIB"}}, good), "forbidden header", false},
		{"CritHeader", forge(t, jwt.SigningMethodES256, esPriv, map[string]any{"typ": TypeAccess, "kid": es.ID, "crit": []string{"exp"}}, good), "forbidden header", false},
		{"Expired", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "exp", f.clock.Now().Unix()-6)), "expired", true},
		{"IssuedInFuture", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "iat", f.clock.Now().Unix()+60)), "before issued", false},
		{"WrongIssuer", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "iss", "https://evil.example")), "issuer", false},
		{"WrongAudience", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "aud", []string{"someone-else"})), "audience", false},
		{"NoAudience", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "aud", nil)), "aud claim is required", false},
		{"TypJWT", forge(t, jwt.SigningMethodES256, esPriv, map[string]any{"typ": "JWT", "kid": es.ID}, good), "wrong typ", false},
		{"MissingTyp", forge(t, jwt.SigningMethodES256, esPriv, map[string]any{"typ": nil, "kid": es.ID}, good), "wrong typ", false},
		{"PendingTokenAsAccess", pending, "wrong typ", false},
		{"PendingTypWithAccessClaims", forge(t, jwt.SigningMethodES256, esPriv, map[string]any{"typ": TypeMFAPending, "kid": es.ID}, good), "wrong typ", false},
		{"MissingSub", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "sub", nil)), "missing sub", false},
		{"MissingJTI", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "jti", nil)), "missing jti", false},
		{"MissingIAT", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "iat", nil)), "missing iat", false},
		{"MissingSID", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "sid", nil)), "missing sid", false},
		{"MissingAuthTime", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "auth_time", nil)), "missing auth_time", false},
		{"MissingACR", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "acr", nil)), "missing acr", false},
		{"Empty", "", "malformed", false},
		{"TwoSegments", parts[0] + "." + parts[1], "malformed", false},
		{"FourSegments", legit + ".x", "malformed", false},
		{"TooLong", parts[0] + "." + strings.Repeat("A", maxTokenLen) + "." + parts[2], "too long", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.verify.Access(tt.token)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Access error = %v, want ErrInvalidToken", err)
			}
			if got := errors.Is(err, ErrExpired); got != tt.expired {
				t.Errorf("errors.Is(err, ErrExpired) = %v, want %v (err %v)", got, tt.expired, err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not name the reason %q", err, tt.reason)
			}
		})
	}

	// The controls: the same construction with nothing wrong is accepted,
	// so the refusals above come from the one thing each case changed.
	t.Run("ControlForgedWithRealKey", func(t *testing.T) {
		if _, err := f.verify.Access(forge(t, jwt.SigningMethodES256, esPriv, hdr, good)); err != nil {
			t.Errorf("Access: %v", err)
		}
	})
	t.Run("ControlApplicationTyp", func(t *testing.T) {
		tok := forge(t, jwt.SigningMethodES256, esPriv, map[string]any{"typ": "application/AT+JWT", "kid": es.ID}, good)
		if _, err := f.verify.Access(tok); err != nil {
			t.Errorf("Access: %v", err)
		}
	})
	t.Run("ControlEdDSAKeyWithItsOwnAlg", func(t *testing.T) {
		tok := forge(t, jwt.SigningMethodEdDSA, ed.Private, map[string]any{"typ": TypeAccess, "kid": ed.ID}, good)
		if _, err := f.verify.Access(tok); err != nil {
			t.Errorf("Access: %v", err)
		}
	})
	t.Run("ControlExpiredWithinLeeway", func(t *testing.T) {
		now := f.clock.Now().Unix()
		tok := forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "iat", now-600, "auth_time", now-660, "exp", now-4))
		if _, err := f.verify.Access(tok); err != nil {
			t.Errorf("Access: %v", err)
		}
	})
}

func TestVerifyPendingRefusesOtherTokens(t *testing.T) {
	f := newFixture(t, ES256)
	es := f.signing(t)
	esPriv := es.Private.(*ecdsa.PrivateKey)
	hdr := map[string]any{"typ": TypeMFAPending, "kid": es.ID}
	now := f.clock.Now().Unix()
	good := jwt.MapClaims{"iss": testIssuer, "sub": "user-1", "aud": []string{testMFAAud}, "iat": now, "exp": now + 300,
		"jti": "p1", "scope": ScopeMFAPending, "amr": []string{"pwd"}}
	access, _ := f.access(t)

	tests := []struct {
		name, token, audience, reason string
	}{
		{"AccessTokenAsPending", access, testMFAAud, "wrong typ"},
		{"AccessTypWithPendingClaims", forge(t, jwt.SigningMethodES256, esPriv, map[string]any{"typ": TypeAccess, "kid": es.ID}, good), testMFAAud, "wrong typ"},
		{"OtherEndpointAudience", forge(t, jwt.SigningMethodES256, esPriv, hdr, good), testAudience, "wrong aud"},
		{"NoAudienceToCheck", forge(t, jwt.SigningMethodES256, esPriv, hdr, good), "", "no audience"},
		{"WrongScope", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "scope", "openid")), testMFAAud, "wrong scope"},
		{"ScopeWithExtras", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "scope", "mfa_pending admin")), testMFAAud, "wrong scope"},
		{"NoScope", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "scope", nil)), testMFAAud, "wrong scope"},
		{"MissingSub", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "sub", nil)), testMFAAud, "missing sub"},
		{"MissingJTI", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "jti", nil)), testMFAAud, "missing jti"},
		{"MissingExp", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "exp", nil)), testMFAAud, "exp claim is required"},
		{"WrongIssuer", forge(t, jwt.SigningMethodES256, esPriv, hdr, with(good, "iss", "x")), testMFAAud, "issuer"},
		{"AlgNone", forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, hdr, good), testMFAAud, "signing method"},
		{"CritHeader", forge(t, jwt.SigningMethodES256, esPriv, map[string]any{"typ": TypeMFAPending, "kid": es.ID, "crit": []string{"b64"}, "b64": false}, good), testMFAAud, "forbidden header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.verify.Pending(tt.token, tt.audience)
			if !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrExpired) {
				t.Fatalf("Pending error = %v, want ErrInvalidToken (not expired)", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not name the reason %q", err, tt.reason)
			}
		})
	}
	t.Run("ControlForgedWithRealKey", func(t *testing.T) {
		if _, err := f.verify.Pending(forge(t, jwt.SigningMethodES256, esPriv, hdr, good), testMFAAud); err != nil {
			t.Errorf("Pending: %v", err)
		}
	})
	t.Run("ExpiresAfterFiveMinutes", func(t *testing.T) {
		tok, _ := f.pending(t)
		f.clock.Advance(5*time.Minute + 6*time.Second)
		defer f.clock.Advance(-5*time.Minute - 6*time.Second)
		if _, err := f.verify.Pending(tok, testMFAAud); !errors.Is(err, ErrExpired) {
			t.Errorf("Pending error = %v, want ErrExpired", err)
		}
	})
}

func TestExpiredIsInvalid(t *testing.T) {
	if !errors.Is(ErrExpired, ErrInvalidToken) {
		t.Error("errors.Is(ErrExpired, ErrInvalidToken) = false")
	}
	if errors.Is(ErrInvalidToken, ErrExpired) {
		t.Error("errors.Is(ErrInvalidToken, ErrExpired) = true")
	}
}

// staticResolver resolves one kid, as a resource server's JWKS cache would.
type staticResolver struct {
	kid string
	key crypto.PublicKey
	alg string
}

func (r staticResolver) Public(kid string) (crypto.PublicKey, string, bool) {
	if kid != r.kid {
		return nil, "", false
	}
	return r.key, r.alg, true
}

func TestVerifierWithOtherResolver(t *testing.T) {
	f := newFixture(t, ES256)
	k := f.signing(t)
	pub, _, _ := f.keys.Public(k.ID)
	v := NewVerifier(staticResolver{kid: k.ID, key: pub, alg: ES256}, VerifierConfig{Issuer: testIssuer, Audiences: []string{testAudience}, Now: f.clock.Now})
	tok, want := f.access(t)
	got, err := v.Access(tok)
	if err != nil {
		t.Fatalf("Access: %v", err)
	}
	if got.ID != want.ID {
		t.Errorf("jti = %q, want %q", got.ID, want.ID)
	}
}
