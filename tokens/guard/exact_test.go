package guard

import (
	"crypto"
	"crypto/ecdsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stepup-auth/stepup/tokens"
)

// oneKey resolves one ES256 key, as a JWKS holding one key would, so the
// test can sign tokens the Guard accepts with whatever header and claims.
type oneKey struct {
	kid string
	pub crypto.PublicKey
}

func (k oneKey) Public(kid string) (crypto.PublicKey, string, bool) {
	if kid != k.kid {
		return nil, "", false
	}
	return k.pub, tokens.ES256, true
}

// signRaw signs header and payload JSON exactly as given.
func signRaw(t *testing.T, key *ecdsa.PrivateKey, header, payload string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	sig, err := jwt.SigningMethodES256.Sign(input, key)
	if err != nil {
		t.Fatalf("signRaw: %v", err)
	}
	return input + "." + enc.EncodeToString(sig)
}

// The exact checks of RFC 8725 hold in a resource server too: each case is
// signed with a key the Guard trusts and differs from a valid token in one
// respect.
func TestExactChecks(t *testing.T) {
	const (
		issuer   = "https://auth.example.com"
		audience = "orders"
		kid      = "k1"
	)
	key := newP256(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g, err := New(oneKey{kid: kid, pub: &key.PublicKey}, Config{Issuer: issuer, Audience: audience,
		Now: func() time.Time { return at }, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	now := at.Unix()
	good := jwt.MapClaims{
		"iss": issuer, "sub": "user-1", "aud": []string{audience}, "client_id": "spa",
		"iat": now, "exp": now + 600, "jti": "j1", "sid": "s1", "auth_time": now - 60,
		"acr": "aal2", "amr": []string{"pwd", "otp", "mfa"},
	}
	with := func(kv ...any) jwt.MapClaims {
		out := jwt.MapClaims{}
		for k, v := range good {
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
	hdr := map[string]any{"kid": kid}
	hdrWith := func(name string, v any) map[string]any { return map[string]any{"kid": kid, name: v} }
	es := jwt.SigningMethodES256
	rawHeader := fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt"}`, kid)
	rawPayload := fmt.Sprintf(`{"iss":%q,"sub":"user-1","aud":%q,"client_id":"spa","iat":%d,"exp":%d,"jti":"j1","sid":"s1","auth_time":%d,"acr":"aal2","amr":["pwd"]`,
		issuer, audience, now, now+600, now-60)

	check := func(tok string) *Challenge {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		_, ch := g.Check(r, Requirement{})
		return ch
	}
	tests := []struct {
		name, token, reason string
	}{
		{"HeaderB64False", forge(t, es, key, hdrWith("b64", false), good), `forbidden header member "b64"`},
		{"HeaderZip", forge(t, es, key, hdrWith("zip", "DEF"), good), `forbidden header member "zip"`},
		{"HeaderCty", forge(t, es, key, hdrWith("cty", "JWT"), good), `forbidden header member "cty"`},
		{"HeaderUnknown", forge(t, es, key, hdrWith("x-extra", "1"), good), `forbidden header member "x-extra"`},
		{"HeaderCrit", forge(t, es, key, hdrWith("crit", []string{"exp"}), good), `forbidden header member "crit"`},
		{"ExpString", forge(t, es, key, hdr, with("exp", fmt.Sprint(now+600))), "claim exp has the wrong JSON type"},
		{"IatString", forge(t, es, key, hdr, with("iat", fmt.Sprint(now))), "claim iat has the wrong JSON type"},
		{"AuthTimeString", forge(t, es, key, hdr, with("auth_time", fmt.Sprint(now-60))), "claim auth_time has the wrong JSON type"},
		{"AudNumber", forge(t, es, key, hdr, with("aud", 42)), "claim aud has the wrong JSON type"},
		{"AMRString", forge(t, es, key, hdr, with("amr", "pwd")), "claim amr has the wrong JSON type"},
		{"DuplicatedClaim", signRaw(t, key, rawHeader, rawPayload+`,"acr":"aal3"}`), `duplicated member "acr"`},
		{"MissingClientID", forge(t, es, key, hdr, with("client_id", nil)), "missing client_id"},
		{"EmptyClientID", forge(t, es, key, hdr, with("client_id", "")), "missing client_id"},
		{"TenYearLifetime", forge(t, es, key, hdr, with("exp", now+10*365*24*3600)), "lifetime"},
		{"IatInFuture", forge(t, es, key, hdr, with("iat", now+60, "exp", now+660)), "before issued"},
		{"AuthTimeInFuture", forge(t, es, key, hdr, with("auth_time", now+60)), "auth_time is in the future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := check(tt.token)
			if ch == nil || ch.Status != 401 || ch.Code != CodeInvalidToken {
				t.Fatalf("Check = %v, want 401 invalid_token", ch)
			}
			if !errors.Is(ch, tokens.ErrInvalidToken) || errors.Is(ch, tokens.ErrExpired) {
				t.Errorf("Check error = %v, want tokens.ErrInvalidToken (not expired)", ch.Err)
			}
			if !strings.Contains(ch.Err.Error(), tt.reason) {
				t.Errorf("error %q does not name the reason %q", ch.Err, tt.reason)
			}
		})
	}
	t.Run("ControlForged", func(t *testing.T) {
		if ch := check(forge(t, es, key, hdr, good)); ch != nil {
			t.Errorf("Check: %v", ch)
		}
	})
	t.Run("ControlRawPayload", func(t *testing.T) {
		if ch := check(signRaw(t, key, rawHeader, rawPayload+"}")); ch != nil {
			t.Errorf("Check: %v", ch)
		}
	})
	t.Run("ControlOneHourLifetime", func(t *testing.T) {
		if ch := check(forge(t, es, key, hdr, with("exp", now+3600))); ch != nil {
			t.Errorf("Check: %v", ch)
		}
	})
	t.Run("MaxLifetimeConfigured", func(t *testing.T) {
		short, err := New(oneKey{kid: kid, pub: &key.PublicKey}, Config{Issuer: issuer, Audience: audience,
			Now: func() time.Time { return at }, MaxLifetime: 5 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+forge(t, es, key, hdr, good)) // 10 minutes
		if _, ch := short.Check(r, Requirement{}); !errors.Is(ch, tokens.ErrInvalidToken) || !strings.Contains(ch.Err.Error(), "lifetime") {
			t.Errorf("Check = %v, want ErrInvalidToken for the lifetime", ch)
		}
	})
	t.Run("NegativeMaxLifetimeInvalid", func(t *testing.T) {
		if err := (Config{Issuer: issuer, Audience: audience, MaxLifetime: -time.Second}).Validate(); err == nil {
			t.Error("Validate accepted a negative MaxLifetime")
		}
	})
}
