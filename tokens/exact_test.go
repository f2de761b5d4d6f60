package tokens

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// signRaw signs the header and payload JSON exactly as given, so a test can
// send what golang-jwt's encoder never writes (duplicated members).
func signRaw(t *testing.T, key *ecdsa.PrivateKey, header, payload string) string {
	t.Helper()
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	sig, err := jwt.SigningMethodES256.Sign(input, key)
	if err != nil {
		t.Fatalf("signRaw: %v", err)
	}
	return input + "." + b64.EncodeToString(sig)
}

// The exact checks of RFC 8725: each case is a token signed with the real
// key that differs from a valid one in one respect.
func TestVerifyAccessExact(t *testing.T) {
	f := newFixture(t, ES256)
	es := f.signing(t)
	key := es.Private.(*ecdsa.PrivateKey)
	hdr := map[string]any{"typ": TypeAccess, "kid": es.ID}
	hdrWith := func(name string, v any) map[string]any {
		return map[string]any{"typ": TypeAccess, "kid": es.ID, name: v}
	}
	good := f.accessClaims()
	now := f.clock.Now().Unix()
	rawHeader := fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt"}`, es.ID)
	rawPayload := fmt.Sprintf(`{"iss":%q,"sub":"user-1","aud":[%q],"client_id":"spa","iat":%d,"exp":%d,"jti":"j1","sid":"s1","auth_time":%d,"acr":"aal2","amr":["pwd","otp"]`,
		testIssuer, testAudience, now, now+600, now-60)
	const tenYears = 10 * 365 * 24 * 60 * 60

	tests := []struct {
		name   string
		token  string
		reason string // substring of the logged reason, proving which check refused it
	}{
		{"HeaderB64False", forge(t, jwt.SigningMethodES256, key, hdrWith("b64", false), good), `forbidden header member "b64"`},
		{"HeaderZip", forge(t, jwt.SigningMethodES256, key, hdrWith("zip", "DEF"), good), `forbidden header member "zip"`},
		{"HeaderCty", forge(t, jwt.SigningMethodES256, key, hdrWith("cty", "JWT"), good), `forbidden header member "cty"`},
		{"HeaderUnknown", forge(t, jwt.SigningMethodES256, key, hdrWith("x-extra", "1"), good), `forbidden header member "x-extra"`},
		{"HeaderKidInOtherCase", forge(t, jwt.SigningMethodES256, key, hdrWith("KID", es.ID), good), `forbidden header member "KID"`},
		{"HeaderKidNumber", forge(t, jwt.SigningMethodES256, key, hdrWith("kid", 7), good), "kid is not a string"},
		{"HeaderDuplicatedKid", signRaw(t, key, fmt.Sprintf(`{"alg":"ES256","kid":"nope","kid":%q,"typ":"at+jwt"}`, es.ID), rawPayload+"}"), `duplicated member "kid"`},
		{"ExpString", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "exp", fmt.Sprint(now+600))), "claim exp has the wrong JSON type"},
		{"IatString", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "iat", fmt.Sprint(now))), "claim iat has the wrong JSON type"},
		{"NbfString", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "nbf", fmt.Sprint(now))), "claim nbf has the wrong JSON type"},
		{"AuthTimeString", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "auth_time", fmt.Sprint(now-60))), "claim auth_time has the wrong JSON type"},
		{"AudNumber", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "aud", 42)), "claim aud has the wrong JSON type"},
		{"AudArrayWithNumber", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "aud", []any{testAudience, 1})), "claim aud has the wrong JSON type"},
		{"AMRString", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "amr", "pwd")), "claim amr has the wrong JSON type"},
		{"AMRWithNull", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "amr", []any{"pwd", nil})), "claim amr has the wrong JSON type"},
		{"ClientIDNumber", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "client_id", 7)), "claim client_id has the wrong JSON type"},
		{"ACRArray", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "acr", []string{"aal2"})), "claim acr has the wrong JSON type"},
		{"SubNull", signRaw(t, key, rawHeader, strings.Replace(rawPayload, `"user-1"`, "null", 1)+"}"), "claim sub has the wrong JSON type"},
		{"JTINumber", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "jti", 1)), "claim jti has the wrong JSON type"},
		{"DuplicatedClaim", signRaw(t, key, rawHeader, rawPayload+`,"acr":"aal3"}`), `duplicated member "acr"`},
		{"DuplicatedClaimEscaped", signRaw(t, key, rawHeader, rawPayload+`,"\u0061cr":"aal3"}`), `duplicated member "acr"`},
		{"ClaimInOtherCase", signRaw(t, key, rawHeader, rawPayload+`,"ACR":"aal3"}`), `"ACR" is acr in another case`},
		{"DataAfterPayload", signRaw(t, key, rawHeader, rawPayload+`}{}`), "data after"},
		{"MissingClientID", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "client_id", nil)), "missing client_id"},
		{"EmptyClientID", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "client_id", "")), "missing client_id"},
		{"TenYearLifetime", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "exp", now+tenYears)), "lifetime"},
		{"LifetimeOverMaxPlusLeeway", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "exp", now+3600+6)), "lifetime"},
		{"ExpNotAfterIat", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "iat", now+4, "exp", now+2)), "exp is not after iat"},
		{"IatInFuture", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "iat", now+60, "exp", now+660)), "before issued"},
		{"AuthTimeInFuture", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "auth_time", now+60)), "auth_time is in the future"},
		{"AuthTimeAfterIat", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "iat", now-600, "auth_time", now-60)), "auth_time is after iat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.verify.Access(tt.token)
			if !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrExpired) {
				t.Fatalf("Access error = %v, want ErrInvalidToken (not expired)", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not name the reason %q", err, tt.reason)
			}
		})
	}

	// The controls: the same constructions with nothing wrong are accepted.
	controls := []struct {
		name  string
		token string
	}{
		{"Forged", forge(t, jwt.SigningMethodES256, key, hdr, good)},
		{"RawPayload", signRaw(t, key, rawHeader, rawPayload+"}")},
		{"SpacedJSON", signRaw(t, key, " {\n"+rawHeader[1:], " "+strings.ReplaceAll(rawPayload, ",", " ,\t")+" }\n")},
		{"AudString", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "aud", testAudience))},
		{"UnknownClaim", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "x-tenant", 7))},
		{"LifetimeAtMax", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "exp", now+3600))},
		{"LifetimeWithinLeeway", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "exp", now+3600+5))},
		{"AuthTimeEqualsIat", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "auth_time", now))},
		{"AuthTimeWithinLeeway", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "auth_time", now+4))},
	}
	for _, c := range controls {
		t.Run("Control"+c.name, func(t *testing.T) {
			if _, err := f.verify.Access(c.token); err != nil {
				t.Errorf("Access: %v", err)
			}
		})
	}
}

func TestVerifyPendingExact(t *testing.T) {
	f := newFixture(t, ES256)
	es := f.signing(t)
	key := es.Private.(*ecdsa.PrivateKey)
	hdr := map[string]any{"typ": TypeMFAPending, "kid": es.ID}
	hdrWith := func(name string, v any) map[string]any {
		return map[string]any{"typ": TypeMFAPending, "kid": es.ID, name: v}
	}
	now := f.clock.Now().Unix()
	good := jwt.MapClaims{"iss": testIssuer, "sub": "user-1", "aud": []string{testMFAAud}, "iat": now, "exp": now + 300,
		"jti": "p1", "scope": ScopeMFAPending, "amr": []string{"pwd"}, "sid": "s1", "acr_values": "aal3", "max_age": 300}
	rawHeader := fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"mfa-pending+jwt"}`, es.ID)
	rawPayload := fmt.Sprintf(`{"iss":%q,"sub":"user-1","aud":%q,"iat":%d,"exp":%d,"jti":"p1","scope":"mfa_pending"`,
		testIssuer, testMFAAud, now, now+300)

	tests := []struct {
		name, token, reason string
	}{
		{"HeaderB64False", forge(t, jwt.SigningMethodES256, key, hdrWith("b64", false), good), `forbidden header member "b64"`},
		{"HeaderZip", forge(t, jwt.SigningMethodES256, key, hdrWith("zip", "DEF"), good), `forbidden header member "zip"`},
		{"HeaderCty", forge(t, jwt.SigningMethodES256, key, hdrWith("cty", "JWT"), good), `forbidden header member "cty"`},
		{"HeaderUnknown", forge(t, jwt.SigningMethodES256, key, hdrWith("x-extra", "1"), good), `forbidden header member "x-extra"`},
		{"ExpString", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "exp", fmt.Sprint(now+300))), "claim exp has the wrong JSON type"},
		{"IatString", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "iat", fmt.Sprint(now))), "claim iat has the wrong JSON type"},
		{"AudNumber", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "aud", 42)), "claim aud has the wrong JSON type"},
		{"AMRString", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "amr", "pwd")), "claim amr has the wrong JSON type"},
		{"ScopeArray", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "scope", []string{ScopeMFAPending})), "claim scope has the wrong JSON type"},
		{"MaxAgeString", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "max_age", "300")), "claim max_age has the wrong JSON type"},
		{"SIDNumber", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "sid", 1)), "claim sid has the wrong JSON type"},
		{"DuplicatedClaim", signRaw(t, key, rawHeader, rawPayload+`,"sub":"admin"}`), `duplicated member "sub"`},
		{"TenYearLifetime", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "exp", now+10*365*24*3600)), "lifetime"},
		{"LifetimeOverFiveMinutes", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "exp", now+300+6)), "lifetime"},
		{"IatInFuture", forge(t, jwt.SigningMethodES256, key, hdr, with(good, "iat", now+60, "exp", now+120)), "before issued"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.verify.Pending(tt.token, testMFAAud)
			if !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrExpired) {
				t.Fatalf("Pending error = %v, want ErrInvalidToken (not expired)", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not name the reason %q", err, tt.reason)
			}
		})
	}
	for name, tok := range map[string]string{
		"Forged":     forge(t, jwt.SigningMethodES256, key, hdr, good),
		"RawPayload": signRaw(t, key, rawHeader, rawPayload+"}"),
		"Issued":     func() string { tok, _ := f.pending(t); return tok }(),
	} {
		t.Run("Control"+name, func(t *testing.T) {
			if _, err := f.verify.Pending(tok, testMFAAud); err != nil {
				t.Errorf("Pending: %v", err)
			}
		})
	}
}

// The lifetime bounds come from the configuration: a verifier for shorter
// tokens refuses what the default one accepts.
func TestVerifierLifetimeConfig(t *testing.T) {
	f := newFixture(t, ES256)
	access, _ := f.access(t) // 15 minutes
	pending, _ := f.pending(t)
	if _, err := f.verify.Access(access); err != nil {
		t.Fatalf("default verifier: Access: %v", err)
	}
	short := NewVerifier(f.keys, VerifierConfig{Issuer: testIssuer, Audiences: []string{testAudience}, Now: f.clock.Now,
		MaxAccessTTL: 10 * time.Minute, MaxPendingTTL: time.Minute})
	if _, err := short.Access(access); !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "lifetime") {
		t.Errorf("Access error = %v, want ErrInvalidToken for the lifetime", err)
	}
	if _, err := short.Pending(pending, testMFAAud); !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "lifetime") {
		t.Errorf("Pending error = %v, want ErrInvalidToken for the lifetime", err)
	}
}
