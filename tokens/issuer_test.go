package tokens

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// segments decodes the JOSE header and payload of a compact token into maps.
func segments(t *testing.T, token string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments, want 3", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		raw, err := b64.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
	}
	return header, payload
}

func TestAccessRoundTrip(t *testing.T) {
	for _, alg := range []string{ES256, EdDSA} {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t, alg)
			tok, issued := f.access(t)
			got, err := f.verify.Access(tok)
			if err != nil {
				t.Fatalf("Access: %v", err)
			}
			if !reflect.DeepEqual(got, issued) {
				t.Errorf("verified claims\n got %+v\nwant %+v", got, issued)
			}
			now := f.clock.Now()
			if !got.IssuedAt.Equal(now) || !got.Expiry.Equal(now.Add(15*time.Minute)) {
				t.Errorf("iat/exp = %v/%v, want %v/+15m", got.IssuedAt, got.Expiry, now)
			}
			if got.ClientID != "spa" || got.ACR != "aal2" || got.Session != "sess-1" {
				t.Errorf("claims = %+v", got)
			}
		})
	}
}

func TestAccessWireFormat(t *testing.T) {
	f := newFixture(t, ES256)
	tok, _ := f.access(t)
	h, p := segments(t, tok)
	want := map[string]any{"typ": "at+jwt", "alg": "ES256", "kid": f.signing(t).ID}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("header = %v, want %v", h, want)
	}
	for _, name := range []string{"iss", "sub", "aud", "client_id", "iat", "exp", "jti", "sid", "auth_time", "acr", "amr"} {
		if _, ok := p[name]; !ok {
			t.Errorf("payload lacks %q: %v", name, p)
		}
	}
	if aud, ok := p["aud"].([]any); !ok || len(aud) != 1 {
		t.Errorf("aud = %#v, want a one-element array", p["aud"])
	}
	if _, ok := p["auth_time"].(float64); !ok {
		t.Errorf("auth_time = %#v, want a NumericDate", p["auth_time"])
	}
	jti, _ := p["jti"].(string)
	if raw, err := b64.DecodeString(jti); err != nil || len(raw) < 16 {
		t.Errorf("jti %q is not ≥128 bits of base64url", jti)
	}
}

func TestAccessIDsAreUnique(t *testing.T) {
	f := newFixture(t, ES256)
	seen := map[string]bool{}
	for range 100 {
		_, c := f.access(t)
		if seen[c.ID] {
			t.Fatalf("jti %q issued twice", c.ID)
		}
		seen[c.ID] = true
	}
}

func TestPendingRoundTrip(t *testing.T) {
	for _, alg := range []string{ES256, EdDSA} {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t, alg)
			tok, issued := f.pending(t)
			got, err := f.verify.Pending(tok, testMFAAud)
			if err != nil {
				t.Fatalf("Pending: %v", err)
			}
			if !reflect.DeepEqual(got, issued) {
				t.Errorf("verified claims\n got %+v\nwant %+v", got, issued)
			}
			if want := f.clock.Now().Add(5 * time.Minute); !got.Expiry.Equal(want) {
				t.Errorf("exp = %v, want %v", got.Expiry, want)
			}
			if got.ACR != "aal3" || got.MaxAge != 300 || got.Session != "sess-1" {
				t.Errorf("claims = %+v", got)
			}
		})
	}
}

func TestPendingWireFormat(t *testing.T) {
	f := newFixture(t, ES256)

	t.Run("StepUpCarriesSessionAndLevel", func(t *testing.T) {
		tok, _ := f.pending(t)
		h, p := segments(t, tok)
		if h["typ"] != TypeMFAPending {
			t.Errorf("typ = %v, want %s", h["typ"], TypeMFAPending)
		}
		want := map[string]any{"scope": "mfa_pending", "sid": "sess-1", "acr_values": "aal3", "max_age": float64(300)}
		for k, v := range want {
			if p[k] != v {
				t.Errorf("%s = %#v, want %#v", k, p[k], v)
			}
		}
		if aud, _ := p["aud"].([]any); len(aud) != 1 || aud[0] != testMFAAud {
			t.Errorf("aud = %#v, want [%q]", p["aud"], testMFAAud)
		}
	})

	t.Run("SignInOmitsEmptyMembers", func(t *testing.T) {
		tok, _, err := f.issuer.Pending(PendingClaims{Subject: "user-1", AMR: []string{"pwd"}})
		if err != nil {
			t.Fatal(err)
		}
		_, p := segments(t, tok)
		for _, name := range []string{"sid", "acr", "acr_values", "max_age"} {
			if _, ok := p[name]; ok {
				t.Errorf("payload has %q, want it omitted: %v", name, p)
			}
		}
	})

	t.Run("IssuerFieldsOverwriteCallerValues", func(t *testing.T) {
		_, c, err := f.issuer.Pending(PendingClaims{Subject: "u", Issuer: "evil", Audience: []string{testAudience}, ID: "fixed"})
		if err != nil {
			t.Fatal(err)
		}
		if c.Issuer != testIssuer || !reflect.DeepEqual(c.Audience, []string{testMFAAud}) || c.ID == "fixed" {
			t.Errorf("claims = %+v", c)
		}
	})
}

func TestIssuerRefusesIncompleteClaims(t *testing.T) {
	f := newFixture(t, ES256)
	now := f.clock.Now()
	tests := []struct {
		name     string
		sub, sid string
		authTime time.Time
		acr      string
	}{
		{"NoSubject", "", "s", now, "aal1"},
		{"NoSession", "u", "", now, "aal1"},
		{"NoAuthTime", "u", "s", time.Time{}, "aal1"},
		{"NoACR", "u", "s", now, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := f.issuer.Access(tt.sub, tt.sid, tt.authTime, tt.acr, nil); err == nil {
				t.Error("Access succeeded, want an error")
			}
		})
	}
	t.Run("PendingNoSubject", func(t *testing.T) {
		if _, _, err := f.issuer.Pending(PendingClaims{}); err == nil {
			t.Error("Pending succeeded, want an error")
		}
	})
}

func TestIssuerWithoutKey(t *testing.T) {
	keys := NewKeySet(newMemStore(), KeySetOptions{}) // never refreshed
	iss := NewIssuer(keys, IssuerConfig{Issuer: testIssuer, Audiences: []string{testAudience}, ClientID: "c"})
	if _, _, err := iss.Access("u", "s", time.Now(), "aal1", nil); !errors.Is(err, ErrNoKey) {
		t.Errorf("Access error = %v, want ErrNoKey", err)
	}
	if _, _, err := iss.Pending(PendingClaims{Subject: "u"}); !errors.Is(err, ErrNoKey) {
		t.Errorf("Pending error = %v, want ErrNoKey", err)
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"IssuerNeedsIssuer", IssuerConfig{Audiences: []string{"a"}, ClientID: "c"}.Validate()},
		{"IssuerNeedsClientID", IssuerConfig{Issuer: "i", Audiences: []string{"a"}}.Validate()},
		{"IssuerNeedsAudience", IssuerConfig{Issuer: "i", ClientID: "c"}.Validate()},
		{"IssuerRefusesEmptyAudience", IssuerConfig{Issuer: "i", ClientID: "c", Audiences: []string{""}}.Validate()},
		{"IssuerRefusesMFAAudienceForAccess", IssuerConfig{Issuer: "i", ClientID: "c", Audiences: []string{"i/v1/mfa"}}.Validate()},
		{"PendingTTLAtMostFiveMinutes", IssuerConfig{Issuer: "i", ClientID: "c", Audiences: []string{"a"}, PendingTTL: 6 * time.Minute}.Validate()},
		{"NegativeAccessTTL", IssuerConfig{Issuer: "i", ClientID: "c", Audiences: []string{"a"}, AccessTTL: -time.Second}.Validate()},
		{"VerifierNeedsIssuer", VerifierConfig{Audiences: []string{"a"}}.Validate()},
		{"VerifierNeedsAudience", VerifierConfig{Issuer: "i"}.Validate()},
		{"VerifierNegativeMaxAccessTTL", VerifierConfig{Issuer: "i", Audiences: []string{"a"}, MaxAccessTTL: -time.Second}.Validate()},
		{"VerifierNegativeMaxPendingTTL", VerifierConfig{Issuer: "i", Audiences: []string{"a"}, MaxPendingTTL: -time.Second}.Validate()},
		{"KeySetUnknownAlg", KeySetOptions{Alg: "RS256"}.Validate()},
		{"KeySetPublishNotBeforeRotation", KeySetOptions{Rotation: time.Hour, Publish: time.Hour}.Validate()},
		{"KeySetNegativeRetain", KeySetOptions{Retain: -time.Hour}.Validate()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Error("Validate = nil, want an error")
			}
		})
	}
	t.Run("DefaultsAreValid", func(t *testing.T) {
		if err := (IssuerConfig{Issuer: "i", Audiences: []string{"a"}, ClientID: "c"}).Validate(); err != nil {
			t.Error(err)
		}
		if err := (KeySetOptions{}).Validate(); err != nil {
			t.Error(err)
		}
	})
	t.Run("TokenMustNotOutliveKeyRetention", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("NewIssuer did not panic")
			}
		}()
		keys := NewKeySet(newMemStore(), KeySetOptions{Retain: 10 * time.Minute})
		NewIssuer(keys, IssuerConfig{Issuer: "i", ClientID: "c", Audiences: []string{"a"}, AccessTTL: time.Hour})
	})
}
