package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"
)

// WebAuthn and passkeys end to end: the real App over HTTP, a software
// authenticator (github.com/descope/virtualwebauthn) with real P-256 keys
// answering the options the server sends.

// waRP is the browser: the origin the App is configured with (testIssuer)
// and its RP ID.
var waRP = virtualwebauthn.RelyingParty{ID: "localhost", Name: "stepup", Origin: testIssuer}

// waKey is one software authenticator holding one credential.
type waKey struct {
	auth virtualwebauthn.Authenticator
	cred virtualwebauthn.Credential
}

// waNewKey makes a discoverable credential for userID: device-bound
// (BE=0) or a synced passkey (BE=BS=1), user-verifying. virtualwebauthn
// encodes the COSE x and y with big.Int.Bytes, which drops leading zero
// bytes, and go-webauthn refuses coordinates shorter than 32 bytes; keys
// with a leading zero byte (1 in 128) are redrawn.
func waNewKey(tb testing.TB, userID string, synced bool) *waKey {
	tb.Helper()
	for {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		pub, err := k.PublicKey.Bytes() // 0x04 ‖ x ‖ y
		if err != nil {
			tb.Fatal(err)
		}
		if pub[1] == 0 || pub[33] == 0 {
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			tb.Fatal(err)
		}
		return &waKey{
			auth: virtualwebauthn.NewAuthenticatorWithOptions(virtualwebauthn.AuthenticatorOptions{
				UserHandle: []byte(userID), BackupEligible: synced, BackupState: synced}),
			cred: virtualwebauthn.NewCredentialWithImportedKey(virtualwebauthn.KeyTypeEC2, der),
		}
	}
}

func (k *waKey) id() string { return base64.RawURLEncoding.EncodeToString(k.cred.ID) }

func (k *waKey) attest(o *virtualwebauthn.AttestationOptions) []byte {
	return []byte(virtualwebauthn.CreateAttestationResponse(waRP, k.auth, k.cred, *o))
}

// assert signs the next assertion: the counter grows by one each time.
func (k *waKey) assert(o *virtualwebauthn.AssertionOptions) []byte {
	k.cred.Counter++
	return []byte(virtualwebauthn.CreateAssertionResponse(waRP, k.auth, k.cred, *o))
}

// waWith returns the JSON object body with one more member.
func waWith(tb testing.TB, body []byte, key string, value any) []byte {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		tb.Fatal(err)
	}
	m[key] = value
	out, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// waOptions posts an empty body to an options endpoint and wants 200.
func (a *testApp) waOptions(tb testing.TB, path, token string) []byte {
	tb.Helper()
	r, err := a.send(http.MethodPost, path, token, "", nil)
	if err != nil {
		tb.Fatal(err)
	}
	if r.Status != http.StatusOK {
		tb.Fatalf("POST %s: status %d, want 200; body %s", path, r.Status, r.Body)
	}
	return r.Body
}

func (a *testApp) waCreation(tb testing.TB, accessToken string) *virtualwebauthn.AttestationOptions {
	tb.Helper()
	o, err := virtualwebauthn.ParseAttestationOptions(string(a.waOptions(tb, "/v1/me/factors/webauthn/options", accessToken)))
	if err != nil {
		tb.Fatal(err)
	}
	return o
}

// waRequest fetches request options: path is /v1/mfa/webauthn/options
// (with an mfa_token) or /v1/passkeys/options (with none).
func (a *testApp) waRequest(tb testing.TB, path, token string) *virtualwebauthn.AssertionOptions {
	tb.Helper()
	o, err := virtualwebauthn.ParseAssertionOptions(string(a.waOptions(tb, path, token)))
	if err != nil {
		tb.Fatal(err)
	}
	return o
}

// waRegister runs a whole registration with accessToken and wants 201.
func (a *testApp) waRegister(tb testing.TB, accessToken string, k *waKey, name string) factorResult {
	tb.Helper()
	body := waWith(tb, k.attest(a.waCreation(tb, accessToken)), "name", name)
	r := a.raw(tb, "/v1/me/factors/webauthn", accessToken, "application/json", body)
	var f factorResult
	r.decode(tb, http.StatusCreated, &f)
	if f.ID == "" || f.Kind != "webauthn" || f.Name != name || !f.Confirmed || r.Header.Get("Location") != "/v1/me/factors/"+f.ID {
		tb.Fatalf("registered factor %+v, Location %q: want a confirmed webauthn factor named %q", f, r.Header.Get("Location"), name)
	}
	return f
}

// waSecondFactor answers an mfa_token with k.
func (a *testApp) waSecondFactor(tb testing.TB, mfaToken string, k *waKey) response {
	tb.Helper()
	body := k.assert(a.waRequest(tb, "/v1/mfa/webauthn/options", mfaToken))
	return a.raw(tb, "/v1/mfa/webauthn/verify", mfaToken, "application/json", body)
}

// waPasskeySignIn signs in with k alone.
func (a *testApp) waPasskeySignIn(tb testing.TB, k *waKey) response {
	tb.Helper()
	body := k.assert(a.waRequest(tb, "/v1/passkeys/options", ""))
	return a.raw(tb, "/v1/passkeys/verify", "", "application/json", body)
}

// waClaims decodes a JWT's payload without checking it (the JOSE tests
// check signatures).
func waClaims(tb testing.TB, jwt string) map[string]any {
	tb.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		tb.Fatalf("token has %d parts, want 3", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// waSameSet compares amr lists, which RFC 8176 gives no order.
func waSameSet(got, want []string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

// waWantTokens wants r to be a token response for sub at acr with amr,
// in the body and in the access token, with auth_time now.
func (a *testApp) waWantTokens(tb testing.TB, r response, sub, acr string, amr ...string) loginResult {
	tb.Helper()
	var l loginResult
	r.decode(tb, http.StatusOK, &l)
	if l.Status != "authenticated" || l.AccessToken == "" || l.ACR != acr || !waSameSet(l.AMR, amr) {
		tb.Fatalf("got status %q acr %q amr %v, want authenticated, %s, %v", l.Status, l.ACR, l.AMR, acr, amr)
	}
	c := waClaims(tb, l.AccessToken)
	var camr []string
	if list, ok := c["amr"].([]any); ok {
		for _, v := range list {
			s, _ := v.(string)
			camr = append(camr, s)
		}
	}
	if c["sub"] != sub || c["acr"] != acr || !waSameSet(camr, amr) || len(camr) != len(amr) {
		tb.Errorf("access token sub %v acr %v amr %v; want %s, %s, %v", c["sub"], c["acr"], c["amr"], sub, acr, amr)
	}
	if at, _ := c["auth_time"].(float64); int64(at) != a.Clock.Now().Unix() {
		tb.Errorf("auth_time = %v, want now (%d)", c["auth_time"], a.Clock.Now().Unix())
	}
	return l
}

// waWantStepUp wants the RFC 9470 challenge for a fresh aal2.
func waWantStepUp(tb testing.TB, r response, acr string) {
	tb.Helper()
	r.wantProblem(tb, http.StatusUnauthorized, "insufficient_user_authentication")
	h := r.Header.Get("WWW-Authenticate")
	if !strings.Contains(h, `error="insufficient_user_authentication"`) || !strings.Contains(h, `acr_values="`+acr+`"`) ||
		!strings.Contains(h, "max_age=") {
		tb.Errorf("WWW-Authenticate = %q, want insufficient_user_authentication with acr_values=%q and max_age", h, acr)
	}
}

func (a *testApp) waFactors(tb testing.TB, accessToken string) []factorResult {
	tb.Helper()
	var out struct {
		Factors []factorResult `json:"factors"`
	}
	a.get(tb, "/v1/me/factors", accessToken).decode(tb, http.StatusOK, &out)
	return out.Factors
}

func (a *testApp) waDelete(tb testing.TB, path, token string) response {
	tb.Helper()
	r, err := a.send(http.MethodDelete, path, token, "", nil)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func (a *testApp) waPatch(tb testing.TB, path, token string, body []byte) response {
	tb.Helper()
	r, err := a.send(http.MethodPatch, path, token, "application/json", body)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// TestWebAuthnFlow walks a security key and a passkey through their life
// over HTTP: registration, second factor, passkey sign-in, the assurance
// each gives, renaming, and removal behind a fresh step-up.
func TestWebAuthnFlow(t *testing.T) {
	a := startApp(t, appOptions{})
	const username, password = "wa-alice", "correct horse battery staple"
	var (
		user      signupResult
		aal1      string // access token, password only
		key       *waKey // device-bound security key
		keyF      factorResult
		phone     *waKey // synced passkey
		phoneF    factorResult
		aal3      string // access token, password + security key
		aal2Fresh string
	)
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("PasswordOnlyIsAAL1", func(t *testing.T) {
		user = a.signup(t, username, password)
		l := a.login(t, username, password)
		if l.Status != "authenticated" || l.ACR != "aal1" {
			t.Fatalf("login %+v, want authenticated at aal1", l)
		}
		aal1 = l.AccessToken
	})

	step("RegisterSecurityKey", func(t *testing.T) {
		var opts struct {
			PublicKey struct {
				Challenge string `json:"challenge"`
				RP        struct {
					ID string `json:"id"`
				} `json:"rp"`
				User struct {
					ID string `json:"id"`
				} `json:"user"`
				Exclude   []json.RawMessage `json:"excludeCredentials"`
				Selection struct {
					ResidentKey      string `json:"residentKey"`
					UserVerification string `json:"userVerification"`
				} `json:"authenticatorSelection"`
			} `json:"publicKey"`
		}
		body := a.waOptions(t, "/v1/me/factors/webauthn/options", aal1)
		if err := json.Unmarshal(body, &opts); err != nil {
			t.Fatal(err)
		}
		pk := opts.PublicKey
		challenge, err := base64.RawURLEncoding.DecodeString(pk.Challenge)
		if err != nil || len(challenge) < 16 || pk.RP.ID != "localhost" || pk.User.ID != base64.RawURLEncoding.EncodeToString([]byte(user.ID)) ||
			len(pk.Exclude) != 0 || pk.Selection.ResidentKey != "preferred" || pk.Selection.UserVerification != "preferred" {
			t.Errorf("creation options %s: want a ≥16-byte base64url challenge, rp localhost, user.id = base64url(%s), "+
				"no exclusions, resident key and UV preferred", body, user.ID)
		}
		key = waNewKey(t, user.ID, false)
		keyF = a.waRegister(t, aal1, key, "YubiKey 5")
	})

	step("AnotherFactorNeedsFreshAAL2", func(t *testing.T) {
		r, err := a.send(http.MethodPost, "/v1/me/factors/webauthn/options", aal1, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		waWantStepUp(t, r, "aal2")
		stray := waNewKey(t, user.ID, false)
		body := waWith(t, stray.attest(&virtualwebauthn.AttestationOptions{Challenge: make([]byte, 32), RelyingPartyID: "localhost", UserID: user.ID}), "name", "x")
		waWantStepUp(t, a.raw(t, "/v1/me/factors/webauthn", aal1, "application/json", body), "aal2")
	})

	step("LoginOffersWebAuthn", func(t *testing.T) {
		l := a.login(t, username, password)
		if l.Status != "mfa_required" || l.MFAToken == "" || !slices.Contains(l.Factors, "webauthn") || l.AccessToken != "" {
			t.Fatalf("login %+v, want mfa_required with an mfa_token and factors containing webauthn", l)
		}
		o := a.waRequest(t, "/v1/mfa/webauthn/options", l.MFAToken)
		if !slices.Equal(o.AllowCredentials, []string{key.id()}) || o.RelyingPartyID != "localhost" {
			t.Errorf("request options allow %v for rp %q, want only %s for localhost", o.AllowCredentials, o.RelyingPartyID, key.id())
		}
	})

	step("SecurityKeyGivesAAL3", func(t *testing.T) {
		tok := a.mfaToken(t, username, password)
		a.Clock.Advance(3 * time.Second) // auth_time is the key's time, not the password's
		aal3 = a.waWantTokens(t, a.waSecondFactor(t, tok, key), user.ID, "aal3", "pwd", "hwk", "user", "mfa").AccessToken
		r, err := a.send(http.MethodPost, "/v1/mfa/webauthn/options", tok, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.wantProblem(t, http.StatusUnauthorized, "invalid_token") // the mfa_token is spent
	})

	step("PasskeySignIn", func(t *testing.T) {
		o := a.waRequest(t, "/v1/passkeys/options", "")
		if len(o.AllowCredentials) != 0 {
			t.Errorf("passkey options allow %v, want none (usernameless)", o.AllowCredentials)
		}
		body := key.assert(o)
		a.waWantTokens(t, a.raw(t, "/v1/passkeys/verify", "", "application/json", body), user.ID, "aal3", "hwk", "user", "mfa")
	})

	step("SyncedPasskeyGivesAAL2", func(t *testing.T) {
		phone = waNewKey(t, user.ID, true)
		phoneF = a.waRegister(t, aal3, phone, "Phone")
		phone.auth.Options.UserNotVerified = true // UV is preferred, not required, for a second factor
		tok := a.mfaToken(t, username, password)
		a.waWantTokens(t, a.waSecondFactor(t, tok, phone), user.ID, "aal2", "pwd", "swk", "mfa")
		phone.auth.Options.UserNotVerified = false
		a.waWantTokens(t, a.waPasskeySignIn(t, phone), user.ID, "aal2", "swk", "user", "mfa")
	})

	step("CeremonyBoundToItsMFAToken", func(t *testing.T) {
		tok1, tok2 := a.mfaToken(t, username, password), a.mfaToken(t, username, password)
		body := key.assert(a.waRequest(t, "/v1/mfa/webauthn/options", tok1))
		a.raw(t, "/v1/mfa/webauthn/verify", tok2, "application/json", body).wantProblem(t, http.StatusUnauthorized, "mfa_failed")
		a.waWantTokens(t, a.raw(t, "/v1/mfa/webauthn/verify", tok1, "application/json", body), user.ID, "aal3", "pwd", "hwk", "user", "mfa")
	})

	step("CredentialJSONIsStrict", func(t *testing.T) {
		tok := a.mfaToken(t, username, password)
		body := key.assert(a.waRequest(t, "/v1/mfa/webauthn/options", tok))
		for name, bad := range map[string][]byte{
			"UnknownField":    waWith(t, body, "extra", true),
			"NameOnVerify":    waWith(t, body, "name", "x"),
			"TrailingData":    append(slices.Clone(body), []byte(` {}`)...),
			"NotAnObject":     []byte(`[]`),
			"WrongType":       waWith(t, body, "type", "password"),
			"IDWrongJSONKind": waWith(t, body, "id", 7),
		} {
			if r := a.raw(t, "/v1/mfa/webauthn/verify", tok, "application/json", bad); r.Status != http.StatusBadRequest || r.code() != "invalid_request" {
				t.Errorf("%s: status %d code %q, want 400 invalid_request", name, r.Status, r.code())
			}
		}
		if r := a.raw(t, "/v1/passkeys/verify", "", "application/json", waWith(t, body, "extra", 1)); r.Status != http.StatusBadRequest {
			t.Errorf("passkey verify with an unknown field: status %d, want 400", r.Status)
		}
		reg := waWith(t, waNewKey(t, user.ID, false).attest(a.waCreation(t, aal3)), "extra", 1)
		if r := a.raw(t, "/v1/me/factors/webauthn", aal3, "application/json", reg); r.Status != http.StatusBadRequest {
			t.Errorf("registration with an unknown field: status %d, want 400", r.Status)
		}
		// Refused bodies spend nothing: the mfa_token and its ceremony still work.
		a.waWantTokens(t, a.raw(t, "/v1/mfa/webauthn/verify", tok, "application/json", body), user.ID, "aal3", "pwd", "hwk", "user", "mfa")
	})

	step("ListAndRename", func(t *testing.T) {
		fs := a.waFactors(t, aal3)
		var names []string
		for _, f := range fs {
			if f.Kind == "webauthn" && f.Confirmed {
				names = append(names, f.ID+"="+f.Name)
			}
		}
		if want := []string{keyF.ID + "=YubiKey 5", phoneF.ID + "=Phone"}; !waSameSet(names, want) {
			t.Errorf("factors %v, want %v", names, want)
		}
		var f factorResult
		a.waPatch(t, "/v1/me/factors/"+keyF.ID, aal3, []byte(`{"name":"  Desk key  "}`)).decode(t, http.StatusOK, &f)
		if f.ID != keyF.ID || f.Name != "Desk key" {
			t.Errorf("renamed factor %+v, want %s named \"Desk key\"", f, keyF.ID)
		}
		for name, body := range map[string]string{
			"Empty":         `{"name":""}`,
			"Blank":         `{"name":"   "}`,
			"TooLong":       `{"name":"` + strings.Repeat("x", 65) + `"}`,
			"ControlChar":   `{"name":"bad\u0007name"}`,
			"BidiOverride":  `{"name":"evil\u202ename"}`,
			"UnknownField":  `{"name":"ok","kind":"totp"}`,
			"NoName":        `{}`,
			"NotJSON":       `name=ok`,
			"WrongNameKind": `{"name":5}`,
		} {
			if r := a.waPatch(t, "/v1/me/factors/"+keyF.ID, aal3, []byte(body)); r.Status != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400; body %s", name, r.Status, r.Body)
			}
		}
		for _, f := range a.waFactors(t, aal3) {
			if f.ID == keyF.ID && f.Name != "Desk key" {
				t.Errorf("a refused rename changed the name to %q", f.Name)
			}
		}
	})

	step("AnotherUsersFactorIsNotFound", func(t *testing.T) {
		bob := a.signup(t, "wa-bob", password)
		bobKey := waNewKey(t, bob.ID, false)
		a.waRegister(t, a.login(t, "wa-bob", password).AccessToken, bobKey, "Bob's key")
		bobAAL3 := a.waWantTokens(t, a.waSecondFactor(t, a.mfaToken(t, "wa-bob", password), bobKey),
			bob.ID, "aal3", "pwd", "hwk", "user", "mfa").AccessToken
		a.waPatch(t, "/v1/me/factors/"+keyF.ID, bobAAL3, []byte(`{"name":"mine now"}`)).wantProblem(t, http.StatusNotFound, "not_found")
		a.waDelete(t, "/v1/me/factors/"+keyF.ID, bobAAL3).wantProblem(t, http.StatusNotFound, "not_found")
		if fs := a.waFactors(t, aal3); len(fs) != 2 {
			t.Errorf("alice has %d factors after bob's attempts, want 2", len(fs))
		}
		a.waWantTokens(t, a.waPasskeySignIn(t, key), user.ID, "aal3", "hwk", "user", "mfa")
	})

	step("RemoveNeedsFreshAAL3", func(t *testing.T) {
		// A device-bound key provides aal3, so removing it needs aal3.
		waWantStepUp(t, a.waDelete(t, "/v1/me/factors/"+keyF.ID, aal1), "aal3")
		a.Clock.Advance(11 * time.Minute) // past the 10 min freshness, inside the 15 min token lifetime
		if r := a.get(t, "/v1/me", aal3); r.Status != http.StatusOK {
			t.Fatalf("the aal3 token should still be valid: status %d", r.Status)
		}
		waWantStepUp(t, a.waDelete(t, "/v1/me/factors/"+keyF.ID, aal3), "aal3")
		if fs := a.waFactors(t, aal3); len(fs) != 2 {
			t.Errorf("%d factors after refused removals, want 2", len(fs))
		}
	})

	step("RemoveDeviceKeyNeedsFreshAAL3", func(t *testing.T) {
		// aal2 exactly (password and the synced passkey) may not remove the
		// device-bound key: it provides aal3.
		aal2 := a.waWantTokens(t, a.waSecondFactor(t, a.mfaToken(t, username, password), phone),
			user.ID, "aal2", "pwd", "swk", "user", "mfa").AccessToken
		waWantStepUp(t, a.waDelete(t, "/v1/me/factors/"+keyF.ID, aal2), "aal3")
		// A fresh aal3 (password and the key itself) may.
		aal2Fresh = a.waWantTokens(t, a.waSecondFactor(t, a.mfaToken(t, username, password), key),
			user.ID, "aal3", "pwd", "hwk", "user", "mfa").AccessToken
		r := a.waDelete(t, "/v1/me/factors/"+keyF.ID, aal2Fresh)
		if r.Status != http.StatusNoContent {
			t.Fatalf("DELETE: status %d, want 204; body %s", r.Status, r.Body)
		}
		// That session proved the password and the removed key: it falls to
		// the password alone.
		var after loginResult
		a.post(t, "/v1/stepup", aal2Fresh, map[string]string{"acr_values": "aal1"}).decode(t, http.StatusOK, &after)
		if c := waClaims(t, after.AccessToken); c["acr"] != "aal1" || fmt.Sprint(c["amr"]) != "[pwd]" {
			t.Errorf("session after removing the only hwk: acr %v amr %v, want aal1 [pwd]", c["acr"], c["amr"])
		}
		fs := a.waFactors(t, aal2Fresh)
		if len(fs) != 1 || fs[0].ID != phoneF.ID {
			t.Errorf("factors after removal %+v, want only %s", fs, phoneF.ID)
		}
	})

	step("RemovedCredentialRefused", func(t *testing.T) {
		a.waPasskeySignIn(t, key).wantProblem(t, http.StatusUnauthorized, "mfa_failed")
		tok := a.mfaToken(t, username, password)
		o := a.waRequest(t, "/v1/mfa/webauthn/options", tok)
		if !slices.Equal(o.AllowCredentials, []string{phone.id()}) {
			t.Errorf("request options allow %v, want only the phone %s", o.AllowCredentials, phone.id())
		}
		a.raw(t, "/v1/mfa/webauthn/verify", tok, "application/json", key.assert(o)).wantProblem(t, http.StatusUnauthorized, "mfa_failed")
		// The failure did not spend the mfa_token: the remaining passkey answers it.
		a.waWantTokens(t, a.waSecondFactor(t, tok, phone), user.ID, "aal2", "pwd", "swk", "user", "mfa")
	})

	step("RemovedKeyCanBeAddedAgain", func(t *testing.T) {
		// Removal released the credential id, so it is not "registered already".
		aal2 := a.waWantTokens(t, a.waSecondFactor(t, a.mfaToken(t, username, password), phone),
			user.ID, "aal2", "pwd", "swk", "user", "mfa").AccessToken
		a.waRegister(t, aal2, key, "YubiKey 5 again")
		a.waWantTokens(t, a.waPasskeySignIn(t, key), user.ID, "aal3", "hwk", "user", "mfa")
	})
}

// BenchmarkWebAuthnVerify times POST /v1/mfa/webauthn/verify through the
// handler and the store: budgets, ceremony lookup and claim, signature
// check, mfa_token claim, session and token issue. The password step, the
// options and the authenticator's signature are outside the timer.
func BenchmarkWebAuthnVerify(b *testing.B) {
	a := startApp(b, appOptions{})
	const username, password = "wa-bench", "correct horse battery staple"
	u := a.signup(b, username, password)
	k := waNewKey(b, u.ID, false)
	a.waRegister(b, a.login(b, username, password).AccessToken, k, "bench key")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		tok := a.mfaToken(b, username, password)
		body := k.assert(a.waRequest(b, "/v1/mfa/webauthn/options", tok))
		b.StartTimer()
		r, err := a.send(http.MethodPost, "/v1/mfa/webauthn/verify", tok, "application/json", body)
		if err != nil || r.Status != http.StatusOK {
			b.Fatalf("verify: status %d err %v; body %s", r.Status, err, r.Body)
		}
	}
}

// TestWebAuthnClonedKey: an assertion whose signature counter went
// backwards (a cloned authenticator, WebAuthn §6.1.1) is refused, and the
// credential stays refused however high its counter goes afterwards.
func TestWebAuthnClonedKey(t *testing.T) {
	a := startApp(t, appOptions{})
	const username, password = "wa-clone", "correct horse battery staple"
	u := a.signup(t, username, password)
	k := waNewKey(t, u.ID, false)
	k.cred.Counter = 10
	a.waRegister(t, a.login(t, username, password).AccessToken, k, "key")

	k.cred.Counter = 2 // the clone signs with 3
	tok := a.mfaToken(t, username, password)
	a.waSecondFactor(t, tok, k).wantProblem(t, http.StatusUnauthorized, "mfa_failed")

	k.cred.Counter = 50
	a.waPasskeySignIn(t, k).wantProblem(t, http.StatusUnauthorized, "mfa_failed")
	// Its one key flagged, the user has no key to answer an mfa_token with.
	tok = a.mfaToken(t, username, password)
	r, err := a.send(http.MethodPost, "/v1/mfa/webauthn/options", tok, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.wantProblem(t, http.StatusNotFound, "not_found")
}
