package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Honest aal3 end to end: STEPUP_WEBAUTHN_AAL3=attested over HTTP with the
// software authenticator, whose registrations are rewritten here to carry
// "none" or "packed" attestation with an x5c chain from CAs made in the
// test; and a FIDO MDS BLOB signed in the test.

// Known AAGUIDs of the shipped list, and one that is on no list.
var (
	atYubiKey  = uuid.MustParse("cb69481e-8ff7-4039-93ec-0a2729a154a8") // "YubiKey 5 Series"
	atYubiNFC  = uuid.MustParse("fa2b99dc-9e39-4257-8f92-4a30d23c4118") // "YubiKey 5 Series with NFC"
	atUnlisted = uuid.MustParse("5e1ec7ed-0000-4000-8000-00000000a11e")
)

// atCA is a certificate authority made for a test.
type atCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func atKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// atCert issues a certificate for key from parent (self-signed when parent
// is nil). The library checks validity against the wall clock, so the
// certificates are valid around the real now.
func atCert(tb testing.TB, tmpl *x509.Certificate, key *ecdsa.PrivateKey, parent *atCA) *x509.Certificate {
	tb.Helper()
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, signer)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func atNewCA(tb testing.TB, name string) *atCA {
	tb.Helper()
	k := atKey(tb)
	return &atCA{key: k, cert: atCert(tb, &x509.Certificate{Subject: pkix.Name{CommonName: name, Organization: []string{"stepup tests"}},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, k, nil)}
}

// attester issues a packed attestation certificate (WebAuthn §8.2.1: C, O,
// OU "Authenticator Attestation", CN, not a CA, the AAGUID in the FIDO
// extension) for aaguid: one model's batch key.
func (ca *atCA) attester(tb testing.TB, aaguid uuid.UUID) (*x509.Certificate, *ecdsa.PrivateKey) {
	tb.Helper()
	ext, err := asn1.Marshal(aaguid[:])
	if err != nil {
		tb.Fatal(err)
	}
	k := atKey(tb)
	return atCert(tb, &x509.Certificate{
		Subject: pkix.Name{Country: []string{"SE"}, Organization: []string{"Test Keys AB"},
			OrganizationalUnit: []string{"Authenticator Attestation"}, CommonName: "Test Key Batch 1"},
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}, Value: ext}},
	}, k, ca), k
}

func atPEM(tb testing.TB, dir, name string, certs ...*x509.Certificate) string {
	tb.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// atKeyOf makes a software key of model aaguid: device-bound unless synced.
func atKeyOf(tb testing.TB, userID string, aaguid uuid.UUID, synced bool) *waKey {
	tb.Helper()
	k := waNewKey(tb, userID, synced)
	k.auth.Aaguid = aaguid
	return k
}

// attestAs answers creation options o with k, its attestation statement
// replaced: format "none" when attKey is nil, otherwise "packed" signed by
// attKey with the chain x5c (§8.2: sig over authenticatorData ‖
// SHA-256(clientDataJSON)).
func (k *waKey) attestAs(tb testing.TB, o *virtualwebauthn.AttestationOptions, attKey *ecdsa.PrivateKey, x5c ...*x509.Certificate) []byte {
	tb.Helper()
	var cred map[string]any
	if err := json.Unmarshal(k.attest(o), &cred); err != nil {
		tb.Fatal(err)
	}
	resp := cred["response"].(map[string]any)
	rawObj, err := base64.RawURLEncoding.DecodeString(resp["attestationObject"].(string))
	if err != nil {
		tb.Fatal(err)
	}
	var obj struct {
		Fmt      string         `cbor:"fmt"`
		AttStmt  map[string]any `cbor:"attStmt"`
		AuthData []byte         `cbor:"authData"`
	}
	if err := webauthncbor.Unmarshal(rawObj, &obj); err != nil {
		tb.Fatal(err)
	}
	clientData, err := base64.RawURLEncoding.DecodeString(resp["clientDataJSON"].(string))
	if err != nil {
		tb.Fatal(err)
	}
	obj.Fmt, obj.AttStmt = "none", map[string]any{}
	if attKey != nil {
		h := sha256.Sum256(clientData)
		digest := sha256.Sum256(append(append([]byte{}, obj.AuthData...), h[:]...))
		sig, err := ecdsa.SignASN1(rand.Reader, attKey, digest[:])
		if err != nil {
			tb.Fatal(err)
		}
		chain := make([]any, len(x5c))
		for i, c := range x5c {
			chain[i] = c.Raw
		}
		obj.Fmt, obj.AttStmt = "packed", map[string]any{"alg": int64(-7), "sig": sig, "x5c": chain}
	}
	out, err := webauthncbor.Marshal(obj)
	if err != nil {
		tb.Fatal(err)
	}
	resp["attestationObject"] = base64.RawURLEncoding.EncodeToString(out)
	b, err := json.Marshal(cred)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// atUser signs up, registers its first key with body (made from the
// creation options by attest) and returns the user, the factor and what a
// password + key sign-in gives.
func (a *testApp) atUser(t *testing.T, name string, key func(userID string) *waKey, attest func(k *waKey, o *virtualwebauthn.AttestationOptions) []byte) (signupResult, *waKey, factorResult, loginResult) {
	t.Helper()
	const password = "correct horse battery staple"
	u := a.signup(t, name, password)
	k := key(u.ID)
	access := a.login(t, name, password).AccessToken
	body := waWith(t, attest(k, a.waCreation(t, access)), "name", "my key")
	var f factorResult
	a.raw(t, "/v1/me/factors/webauthn", access, "application/json", body).decode(t, http.StatusCreated, &f)
	var l loginResult
	a.waSecondFactor(t, a.mfaToken(t, name, password), k).decode(t, http.StatusOK, &l)
	return u, k, f, l
}

func atWant(t *testing.T, l loginResult, acr string, amr ...string) {
	t.Helper()
	if l.Status != "authenticated" || l.ACR != acr || !waSameSet(l.AMR, amr) {
		t.Errorf("password + key: %s acr %q amr %v; want authenticated at %s with %v", l.Status, l.ACR, l.AMR, acr, amr)
	}
	if c := waClaims(t, l.AccessToken); c["acr"] != acr {
		t.Errorf("access token acr %v, want %s", c["acr"], acr)
	}
}

// TestAttestedAAL3 runs STEPUP_WEBAUTHN_AAL3=attested with a plain AAGUID
// allowlist and a root file: only a device-bound key whose packed
// attestation chains to the trusted root, for an allowed AAGUID, reaches
// aal3 (and hwk); every other key, however it presents itself (BE=0, UV),
// stops at aal2 with swk, and cannot answer a step-up to aal3.
func TestAttestedAAL3(t *testing.T) {
	dir := t.TempDir()
	trusted, other := atNewCA(t, "Trusted Attestation Root"), atNewCA(t, "Other Root")
	roots := atPEM(t, dir, "roots.pem", trusted.cert)
	// Two instances on one store: the verdict recorded at registration on
	// one is what the other applies.
	apps := startApps(t, 2, appOptions{Configure: func(c *Config) {
		c.AAL3, c.AttestationRoots, c.AAGUIDs = "attested", roots, []uuid.UUID{atYubiKey, atYubiNFC}
	}})
	a, b := apps[0], apps[1]

	// Registration asks for attestation.
	var opts struct {
		PublicKey struct {
			Attestation string `json:"attestation"`
		} `json:"publicKey"`
	}
	l := a.login(t, a.signup(t, "at-options", "correct horse battery staple").Username, "correct horse battery staple")
	if err := json.Unmarshal(a.waOptions(t, "/v1/me/factors/webauthn/options", l.AccessToken), &opts); err != nil || opts.PublicKey.Attestation != "direct" {
		t.Errorf("creation options attestation = %q (%v), want direct", opts.PublicKey.Attestation, err)
	}

	bound := func(id uuid.UUID) func(string) *waKey {
		return func(userID string) *waKey { return atKeyOf(t, userID, id, false) }
	}
	packed := func(ca *atCA, certFor uuid.UUID) func(*waKey, *virtualwebauthn.AttestationOptions) []byte {
		return func(k *waKey, o *virtualwebauthn.AttestationOptions) []byte {
			cert, key := ca.attester(t, certFor)
			return k.attestAs(t, o, key, cert)
		}
	}
	none := func(k *waKey, o *virtualwebauthn.AttestationOptions) []byte { return k.attestAs(t, o, nil) }
	self := func(k *waKey, o *virtualwebauthn.AttestationOptions) []byte { return k.attest(o) } // packed self attestation

	t.Run("TrustedRootAllowedAAGUID", func(t *testing.T) {
		_, k, f, l := a.atUser(t, "at-trusted", bound(atYubiKey), packed(trusted, atYubiKey))
		atWant(t, l, "aal3", "pwd", "hwk", "user", "mfa")
		if f.Authenticator == nil || *f.Authenticator != "YubiKey 5 Series" || !f.Attested {
			t.Errorf("registered factor authenticator = %v, attested %v; want YubiKey 5 Series, attested", f.Authenticator, f.Attested)
		}
		var got factorResult
		a.get(t, "/v1/me/factors/"+f.ID, l.AccessToken).decode(t, http.StatusOK, &got)
		if got.Authenticator == nil || *got.Authenticator != "YubiKey 5 Series" || !got.Attested {
			t.Errorf("GET /v1/me/factors/{id}: authenticator %v, attested %v; want YubiKey 5 Series, attested", got.Authenticator, got.Attested)
		}
		if list := a.waFactors(t, l.AccessToken); len(list) != 1 || list[0].Authenticator == nil || *list[0].Authenticator != "YubiKey 5 Series" {
			t.Errorf("GET /v1/me/factors: %+v, want the key with authenticator YubiKey 5 Series", list)
		}
		sub := waClaims(t, l.AccessToken)["sub"].(string)
		a.waWantTokens(t, a.waPasskeySignIn(t, k), sub, "aal3", "hwk", "user", "mfa")
		b.waWantTokens(t, b.waSecondFactor(t, b.mfaToken(t, "at-trusted", "correct horse battery staple"), k), sub,
			"aal3", "pwd", "hwk", "user", "mfa")
	})
	t.Run("NoneAttestation", func(t *testing.T) {
		_, k, f, l := a.atUser(t, "at-none", bound(atYubiKey), none)
		atWant(t, l, "aal2", "pwd", "swk", "user", "mfa")
		var other loginResult
		b.waSecondFactor(t, b.mfaToken(t, "at-none", "correct horse battery staple"), k).decode(t, http.StatusOK, &other)
		atWant(t, other, "aal2", "pwd", "swk", "user", "mfa")
		// The name comes from the AAGUID alone: it is a label, trusted or not.
		if f.Authenticator == nil || *f.Authenticator != "YubiKey 5 Series" || f.Attested {
			t.Errorf("factor authenticator = %v, attested %v; want YubiKey 5 Series, not attested", f.Authenticator, f.Attested)
		}
		// No factor can reach aal3: a step-up to it is refused outright.
		a.post(t, "/v1/stepup", l.AccessToken, suStepupBody{ACRValues: "aal3"}).
			wantProblem(t, http.StatusForbidden, "unmet_authentication_requirements")
	})
	t.Run("SelfAttestation", func(t *testing.T) {
		_, _, _, l := a.atUser(t, "at-self", bound(atYubiKey), self)
		atWant(t, l, "aal2", "pwd", "swk", "user", "mfa")
	})
	t.Run("OtherRoot", func(t *testing.T) {
		_, _, _, l := a.atUser(t, "at-other-root", bound(atYubiKey), packed(other, atYubiKey))
		atWant(t, l, "aal2", "pwd", "swk", "user", "mfa")
	})
	t.Run("AAGUIDOffTheList", func(t *testing.T) {
		_, _, f, l := a.atUser(t, "at-unlisted", bound(atUnlisted), packed(trusted, atUnlisted))
		atWant(t, l, "aal2", "pwd", "swk", "user", "mfa")
		if f.Authenticator != nil {
			t.Errorf("factor of an unknown AAGUID shows authenticator %q, want none", *f.Authenticator)
		}
	})
	t.Run("SyncedAttested", func(t *testing.T) {
		synced := func(userID string) *waKey { return atKeyOf(t, userID, atYubiNFC, true) }
		_, _, _, l := a.atUser(t, "at-synced", synced, packed(trusted, atYubiNFC))
		atWant(t, l, "aal2", "pwd", "swk", "user", "mfa")
	})
	t.Run("StepUpOffersOnlyAttestedKeys", func(t *testing.T) {
		// A user with an unattested key and an attested one: a step-up to
		// aal3 offers only the attested one.
		const password = "correct horse battery staple"
		u, _, _, l := a.atUser(t, "at-two", bound(atYubiKey), none)
		good := atKeyOf(t, u.ID, atYubiKey, false)
		cert, key := trusted.attester(t, atYubiKey)
		body := waWith(t, good.attestAs(t, a.waCreation(t, l.AccessToken), key, cert), "name", "attested")
		var f factorResult
		a.raw(t, "/v1/me/factors/webauthn", l.AccessToken, "application/json", body).decode(t, http.StatusCreated, &f)
		var pending loginResult
		a.post(t, "/v1/stepup", l.AccessToken, suStepupBody{ACRValues: "aal3"}).decode(t, http.StatusOK, &pending)
		o := a.waRequest(t, "/v1/mfa/webauthn/options", pending.MFAToken)
		if len(o.AllowCredentials) != 1 || o.AllowCredentials[0] != good.id() {
			t.Fatalf("aal3 step-up offers %v, want only the attested key %s", o.AllowCredentials, good.id())
		}
		a.waWantTokens(t, a.raw(t, "/v1/mfa/webauthn/verify", pending.MFAToken, "application/json", good.assert(o)),
			u.ID, "aal3", "pwd", "swk", "hwk", "user", "mfa") // the session's methods still count
	})
}

// atBLOB signs an MDS3 BLOB (a JWT, FIDO MDS §3.1.6) with a signer whose
// certificate chains to root through the x5c header, describing the models
// aaguids, whose attestations chain to attRoot.
func atBLOB(tb testing.TB, root *atCA, attRoot *x509.Certificate, aaguids ...uuid.UUID) []byte {
	tb.Helper()
	signKey := atKey(tb)
	signer := atCert(tb, &x509.Certificate{Subject: pkix.Name{CommonName: "Test MDS signer"},
		KeyUsage: x509.KeyUsageDigitalSignature}, signKey, root)
	b64 := base64.StdEncoding.EncodeToString
	var entries []any
	for _, id := range aaguids {
		entries = append(entries, map[string]any{
			"aaguid": id.String(),
			"metadataStatement": map[string]any{
				"aaguid": id.String(), "description": "Test Key", "protocolFamily": "fido2", "schema": 3,
				"attestationTypes":            []string{"basic_full"},
				"attestationRootCertificates": []string{b64(attRoot.Raw)},
			},
			"statusReports":          []any{map[string]any{"status": "FIDO_CERTIFIED_L1", "effectiveDate": "2025-01-01"}},
			"timeOfLastStatusChange": "2025-01-01",
		})
	}
	claims := jwt.MapClaims{
		"legalHeader": "test metadata", "no": 42, "nextUpdate": "2099-01-01",
		"entries": entries,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["x5c"] = []string{b64(signer.Raw), b64(root.cert.Raw)}
	s, err := tok.SignedString(signKey)
	if err != nil {
		tb.Fatal(err)
	}
	return []byte(s)
}

// TestAttestedMDS trusts the models of a FIDO Metadata Service BLOB: one
// signed by the configured MDS root is accepted and its models'
// attestation roots trusted (every model it describes without an AAGUID
// list, the listed ones with it); one signed under another root stops the
// start with a line that names STEPUP_FIDO_MDS_FILE.
func TestAttestedMDS(t *testing.T) {
	dir := t.TempDir()
	mdsRoot, attRoot := atNewCA(t, "Test MDS Root"), atNewCA(t, "Test Model Attestation Root")
	blob := filepath.Join(dir, "blob.jwt")
	if err := os.WriteFile(blob, atBLOB(t, mdsRoot, attRoot.cert, atYubiNFC, atUnlisted), 0o600); err != nil {
		t.Fatal(err)
	}
	rootPEM := atPEM(t, dir, "mds-root.pem", mdsRoot.cert)

	a := startApp(t, appOptions{Configure: func(c *Config) { c.AAL3, c.MDSFile, c.MDSRoot = "attested", blob, rootPEM }})
	bound := func(id uuid.UUID) func(string) *waKey {
		return func(userID string) *waKey { return atKeyOf(t, userID, id, false) }
	}
	t.Run("ModelInTheBLOB", func(t *testing.T) {
		_, _, f, l := a.atUser(t, "mds-trusted", bound(atYubiNFC), func(k *waKey, o *virtualwebauthn.AttestationOptions) []byte {
			cert, key := attRoot.attester(t, atYubiNFC)
			return k.attestAs(t, o, key, cert)
		})
		atWant(t, l, "aal3", "pwd", "hwk", "user", "mfa")
		if f.Authenticator == nil || *f.Authenticator != "YubiKey 5 Series with NFC" {
			t.Errorf("factor authenticator = %v, want YubiKey 5 Series with NFC", f.Authenticator)
		}
	})
	t.Run("ModelNotInTheBLOB", func(t *testing.T) {
		_, _, _, l := a.atUser(t, "mds-unlisted", bound(atYubiKey), func(k *waKey, o *virtualwebauthn.AttestationOptions) []byte {
			cert, key := attRoot.attester(t, atYubiKey)
			return k.attestAs(t, o, key, cert)
		})
		atWant(t, l, "aal2", "pwd", "swk", "user", "mfa")
	})
	t.Run("ModelInTheBLOBOffTheList", func(t *testing.T) {
		listed := startApp(t, appOptions{Configure: func(c *Config) {
			c.AAL3, c.MDSFile, c.MDSRoot, c.AAGUIDs = "attested", blob, rootPEM, []uuid.UUID{atYubiNFC}
		}})
		attest := func(id uuid.UUID) func(*waKey, *virtualwebauthn.AttestationOptions) []byte {
			return func(k *waKey, o *virtualwebauthn.AttestationOptions) []byte {
				cert, key := attRoot.attester(t, id)
				return k.attestAs(t, o, key, cert)
			}
		}
		_, _, _, l := listed.atUser(t, "mds-off-list", bound(atUnlisted), attest(atUnlisted))
		atWant(t, l, "aal2", "pwd", "swk", "user", "mfa")
		_, _, _, l = listed.atUser(t, "mds-on-list", bound(atYubiNFC), attest(atYubiNFC))
		atWant(t, l, "aal3", "pwd", "hwk", "user", "mfa")
	})
	t.Run("BLOBUnderAnotherRoot", func(t *testing.T) {
		forged := filepath.Join(dir, "forged.jwt")
		if err := os.WriteFile(forged, atBLOB(t, atNewCA(t, "Not The MDS Root"), attRoot.cert, atYubiNFC), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := a.Config
		cfg.Addr, cfg.MDSFile = "127.0.0.1:0", forged
		app := &App{Config: cfg, Now: a.Clock.Now, Logger: slog.New(slog.NewTextHandler(tbWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := app.Open(ctx)
		if err == nil {
			_ = app.Close(ctx)
			t.Fatal("a BLOB signed under another root was accepted")
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "STEPUP_FIDO_MDS_FILE: "+forged+": ") || !strings.Contains(msg, "does not verify against the MDS root") {
			t.Errorf("start error %q, want it to name STEPUP_FIDO_MDS_FILE and say the BLOB does not verify", msg)
		}
	})
}

// TestAAL3Config: the authenticator-policy settings are checked at start,
// each error naming its variable.
func TestAAL3Config(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string // prefix of the error; "" for none
	}{
		{map[string]string{}, ""},
		{map[string]string{"STEPUP_WEBAUTHN_AAL3": "attested", "STEPUP_FIDO_MDS_FILE": "/x"}, ""},
		{map[string]string{"STEPUP_WEBAUTHN_AAL3": "attested", "STEPUP_WEBAUTHN_AAGUIDS": atYubiKey.String(), "STEPUP_WEBAUTHN_ATTESTATION_ROOTS": "/r"}, ""},
		{map[string]string{"STEPUP_WEBAUTHN_AAL3": "maybe"}, "STEPUP_WEBAUTHN_AAL3: must be claimed or attested"},
		{map[string]string{"STEPUP_WEBAUTHN_AAL3": "attested"}, "STEPUP_WEBAUTHN_AAL3: attested needs"},
		{map[string]string{"STEPUP_WEBAUTHN_AAL3": "attested", "STEPUP_WEBAUTHN_AAGUIDS": atYubiKey.String()}, "STEPUP_WEBAUTHN_ATTESTATION_ROOTS: needed"},
		{map[string]string{"STEPUP_WEBAUTHN_AAL3": "attested", "STEPUP_FIDO_MDS_FILE": "/x", "STEPUP_WEBAUTHN_ATTESTATION": "none"}, "STEPUP_WEBAUTHN_ATTESTATION: none hides"},
		{map[string]string{"STEPUP_WEBAUTHN_AAL3": "attested", "STEPUP_FIDO_MDS_FILE": "/x", "STEPUP_WEBAUTHN_AAGUIDS": "yubikey"}, "STEPUP_WEBAUTHN_AAGUIDS: \"yubikey\" is not an AAGUID"},
		{map[string]string{"STEPUP_WEBAUTHN_AAL3": "attested", "STEPUP_FIDO_MDS_FILE": "/x", "STEPUP_WEBAUTHN_AAGUIDS": uuid.Nil.String()}, "STEPUP_WEBAUTHN_AAGUIDS:"},
		{map[string]string{"STEPUP_FIDO_MDS_FILE": "/x"}, "STEPUP_WEBAUTHN_AAL3: the attestation trust settings"},
		{map[string]string{"STEPUP_WEBAUTHN_AAL3": "attested", "STEPUP_FIDO_MDS_ROOT": "/r", "STEPUP_WEBAUTHN_AAGUIDS": atYubiKey.String(), "STEPUP_WEBAUTHN_ATTESTATION_ROOTS": "/r"}, "STEPUP_FIDO_MDS_ROOT: needs STEPUP_FIDO_MDS_FILE"},
	} {
		_, err := LoadConfig(nil, func(k string) string { return tc.env[k] })
		got := ""
		if err != nil {
			got = err.Error()
		}
		if (tc.want == "") != (got == "") || !strings.HasPrefix(got, tc.want) {
			t.Errorf("env %v: error %q, want %s", tc.env, got, fmt.Sprintf("%q…", tc.want))
		}
	}
}
