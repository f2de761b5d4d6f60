package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/stepup-auth/stepup/api/flows"
)

// Config is every setting, from the environment with flags mirroring it
// (except secrets: environment or file only).
type Config struct {
	Addr        string
	AdminAddr   string // operations listener (/metrics); empty: none
	Issuer      string
	MongoURI    string
	Database    string // overrides the URI's database (tests)
	DataDir     string
	MasterKey   []byte
	Audiences   []string
	RPID        string
	RPOrigins   []string
	CORSOrigins []string
	SignupOpen  bool
	SigningAlg  string
	AccessTTL   time.Duration
	LogLevel    string
	SessionMax  time.Duration
	SessionIdle time.Duration
	// EventRetention is how long a security event is kept, also after
	// its account is deleted.
	EventRetention time.Duration
	TrustedProxies []string
	// AnonRate is requests per minute per client address on each anonymous
	// endpoint; 0 is no limit.
	AnonRate int
	// AddrFailures is wrong passwords per hour per client address at
	// sign-in, over every username; 0 is no limit.
	AddrFailures int
	// Introspectors are the RFC 7662 clients: id → secret.
	Introspectors map[string]string
	WebAuthnUV    string // required, preferred or discouraged
	Attestation   string // none, indirect, direct or enterprise
	// AAL3 is claimed (a BE=0 credential is a hardware key) or attested
	// (only a credential with trusted attestation is; see mfa.AAL3Mode).
	AAL3 string
	// MDSFile is a FIDO Metadata Service BLOB; MDSRoot the PEM file of its
	// trust anchor (empty: the FIDO Alliance's).
	MDSFile, MDSRoot string
	// AttestationRoots is a PEM file of attestation roots for the AAGUIDs
	// listed in AAGUIDs that the BLOB does not describe.
	AttestationRoots string
	// AAGUIDs are the authenticator models allowed to be attested.
	AAGUIDs []uuid.UUID
	// AdminClients may call the admin API; only their secrets' hashes are
	// kept.
	AdminClients []flows.AdminClient
	// DPoPRequired refuses to issue tokens without a DPoP proof.
	DPoPRequired bool
	// DPoPNonce makes every DPoP proof carry a server nonce.
	DPoPNonce bool
	// RememberDevice is how long a remembered device skips the second
	// factor; 0 turns remembering off.
	RememberDevice time.Duration
}

// setting is one configuration variable and its flag.
type setting struct {
	env, flag, def, usage string
}

var settings = []setting{
	{"STEPUP_ADDR", "addr", "127.0.0.1:8080", "public listen address (:8080 for every interface)"},
	{"STEPUP_ADMIN_ADDR", "admin-addr", "127.0.0.1:9090", "operations listen address (/metrics); off for none"},
	{"STEPUP_ISSUER", "issuer", "http://localhost:8080", "iss of every token and base URL of the metadata"},
	{"STEPUP_MONGODB_URI", "mongodb-uri", "", "MongoDB connection string; unset starts the embedded store"},
	{"STEPUP_DATA_DIR", "data-dir", "./data", "folder of the embedded store and its generated master key"},
	{"STEPUP_MASTER_KEY", "master-key", "", "refused: the master key is a secret, set $STEPUP_MASTER_KEY or $STEPUP_MASTER_KEY_FILE"},
	{"STEPUP_MASTER_KEY_FILE", "master-key-file", "", "file holding the base64 master key, readable by its owner only"},
	{"STEPUP_AUDIENCES", "audiences", "stepup", "comma-separated audiences of access tokens; the first is this API's own"},
	{"STEPUP_RP_ID", "rp-id", "localhost", "WebAuthn relying party ID"},
	{"STEPUP_RP_ORIGINS", "rp-origins", "", "comma-separated exact WebAuthn origins (default: the issuer's origin)"},
	{"STEPUP_CORS_ORIGINS", "cors-origins", "", "comma-separated origins of browser frontends allowed to call the API"},
	{"STEPUP_SIGNUP", "signup", "open", "open or closed sign-up"},
	{"STEPUP_SIGNING_ALG", "signing-alg", "ES256", "ES256 or EdDSA"},
	{"STEPUP_ACCESS_TTL", "access-ttl", "15m", "access token lifetime (1m–1h)"},
	{"STEPUP_LOG_LEVEL", "log-level", "info", "debug, info, warn or error"},
	{"STEPUP_WEBAUTHN_UV", "webauthn-uv", "preferred", "user verification asked of security keys at registration and as second factor: required, preferred or discouraged (passkey sign-in always requires it)"},
	{"STEPUP_WEBAUTHN_ATTESTATION", "webauthn-attestation", "", "attestation conveyance preference: none, indirect, direct or enterprise (default none, or direct when STEPUP_WEBAUTHN_AAL3=attested)"},
	{"STEPUP_WEBAUTHN_AAL3", "webauthn-aal3", "claimed", "which WebAuthn credentials reach aal3: claimed (any device-bound one, BE=0) or attested (only device-bound ones with attestation trusted for an allowed model)"},
	{"STEPUP_FIDO_MDS_FILE", "fido-mds-file", "", "FIDO Metadata Service BLOB (a JWT file) whose models' attestation roots and status are trusted in attested mode"},
	{"STEPUP_FIDO_MDS_ROOT", "fido-mds-root", "", "PEM file of the certificate the MDS BLOB must chain to (default: the FIDO Alliance MDS root)"},
	{"STEPUP_WEBAUTHN_AAGUIDS", "webauthn-aaguids", "", "comma-separated AAGUIDs allowed to reach aal3 in attested mode (default with an MDS BLOB: every model it describes)"},
	{"STEPUP_WEBAUTHN_ATTESTATION_ROOTS", "webauthn-attestation-roots", "", "PEM file of attestation root certificates for the listed AAGUIDs that the MDS BLOB does not describe"},
	{"STEPUP_SESSION_MAX_AGE", "session-max-age", "720h", "absolute session lifetime, after which the user signs in again"},
	{"STEPUP_SESSION_IDLE", "session-idle", "24h", "idle timeout: a refresh token unused this long expires"},
	{"STEPUP_EVENT_RETENTION", "event-retention", "2160h", "how long security events are kept (1h–87600h), also after their account is deleted"},
	{"STEPUP_INTROSPECTION_CLIENTS", "introspection-clients", "", "comma-separated id:secret pairs allowed to call /v1/token/introspect (secrets ≥ 16 characters)"},
	{"STEPUP_ADDR_FAILURES", "addr-failures", "100", "wrong passwords one client address may give at sign-in in an hour, over every username together, counted in the store for all instances; past it the address's password sign-ins get 429 until the hour ends; 0 turns the limit off"},
	{"STEPUP_ADMIN_CLIENTS", "admin-clients", "", "refused: the admin clients' secrets are secrets, set $STEPUP_ADMIN_CLIENTS"},
	{"STEPUP_ANON_RATE", "anon-rate", "60", "requests per minute one client address may make to each anonymous endpoint (sign-up, passkey options, introspection), counted in the store for all instances; 0 turns the limit off"},
	{"STEPUP_DPOP", "dpop", "optional", "DPoP (RFC 9449): optional (a request with a proof gets tokens bound to its key; without one, Bearer tokens) or required (no token is issued without a proof)"},
	{"STEPUP_DPOP_NONCE", "dpop-nonce", "off", "on makes every DPoP proof carry a server nonce (DPoP-Nonce, RFC 9449 §8), accepted by every instance for 5 to 10 minutes; off by default"},
	{"STEPUP_REMEMBER_DEVICE", "remember-device", "720h", "how long a remembered device (a DPoP key, after a second factor with remember_device) skips the second factor at sign-in; 0 turns it off"},
	{"STEPUP_TRUSTED_PROXIES", "trusted-proxies", "", "comma-separated proxy addresses or CIDRs whose X-Forwarded-For gives the client address (none by default)"},
}

// secretFlags are the settings read from the environment only: a flag shows
// in the process list. Their flag is defined only to refuse it clearly.
var secretFlags = map[string]string{
	"STEPUP_MASTER_KEY":            "the master key is a secret: pass it in STEPUP_MASTER_KEY or STEPUP_MASTER_KEY_FILE, never as a flag (flags show in the process list)",
	"STEPUP_INTROSPECTION_CLIENTS": "the introspection clients' secrets: pass them in STEPUP_INTROSPECTION_CLIENTS, never as a flag (flags show in the process list)",
	"STEPUP_ADMIN_CLIENTS":         "the admin clients' secrets: pass them in STEPUP_ADMIN_CLIENTS, never as a flag (flags show in the process list)",
}

// LoadConfig reads the environment, then flags (which win), and validates.
// Each error names the variable and what it needs, in one line.
func LoadConfig(args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("stepup serve", flag.ContinueOnError)
	vals := map[string]*string{}
	var refused error
	for _, s := range settings {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		if msg, ok := secretFlags[s.env]; ok {
			vals[s.env] = &def
			name := s.flag
			fs.BoolFunc(name, s.usage, func(string) error {
				refused = fmt.Errorf("-%s: %s", name, msg)
				return nil
			})
			continue
		}
		vals[s.env] = fs.String(s.flag, def, s.usage+" ($"+s.env+")")
	}
	perr := fs.Parse(args)
	if refused != nil {
		return Config{}, refused
	}
	if perr != nil {
		return Config{}, perr
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	get := func(env string) string { return strings.TrimSpace(*vals[env]) }

	c := Config{Addr: get("STEPUP_ADDR"), MongoURI: get("STEPUP_MONGODB_URI"), DataDir: get("STEPUP_DATA_DIR"),
		RPID: get("STEPUP_RP_ID"), LogLevel: get("STEPUP_LOG_LEVEL"), SigningAlg: get("STEPUP_SIGNING_ALG")}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return c, fmt.Errorf("STEPUP_ADDR: must be host:port or :port, got %q", c.Addr)
	}
	switch c.AdminAddr = get("STEPUP_ADMIN_ADDR"); c.AdminAddr {
	case "off", "":
		c.AdminAddr = ""
	case c.Addr:
		return c, fmt.Errorf("STEPUP_ADMIN_ADDR: must differ from STEPUP_ADDR (%s), or be off", c.Addr)
	default:
		if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
			return c, fmt.Errorf("STEPUP_ADMIN_ADDR: must be host:port, :port or off, got %q", c.AdminAddr)
		}
	}
	var err error
	if c.Issuer, err = parseIssuer(get("STEPUP_ISSUER")); err != nil {
		return c, fmt.Errorf("STEPUP_ISSUER: %w", err)
	}
	if c.MongoURI != "" && !strings.HasPrefix(c.MongoURI, "mongodb://") && !strings.HasPrefix(c.MongoURI, "mongodb+srv://") {
		return c, errors.New("STEPUP_MONGODB_URI: must start with mongodb:// or mongodb+srv://")
	}
	if c.DataDir == "" {
		return c, errors.New("STEPUP_DATA_DIR: must not be empty")
	}
	mk, mkFile := get("STEPUP_MASTER_KEY"), get("STEPUP_MASTER_KEY_FILE")
	switch {
	case mk != "" && mkFile != "":
		return c, errors.New("STEPUP_MASTER_KEY_FILE: the master key is also in STEPUP_MASTER_KEY; set one of the two")
	case mk != "":
		if c.MasterKey, err = decodeKey(mk); err != nil {
			return c, fmt.Errorf("STEPUP_MASTER_KEY: %w", err)
		}
	case mkFile != "":
		if c.MasterKey, err = readKeyFile(mkFile); err != nil {
			return c, fmt.Errorf("STEPUP_MASTER_KEY_FILE: %w", err)
		}
	case c.MongoURI != "":
		return c, errors.New("STEPUP_MASTER_KEY: required with STEPUP_MONGODB_URI (or STEPUP_MASTER_KEY_FILE); make one with: head -c 32 /dev/urandom | base64")
	}
	if c.Audiences = splitList(get("STEPUP_AUDIENCES")); len(c.Audiences) == 0 {
		return c, errors.New("STEPUP_AUDIENCES: needs at least one audience")
	}
	if c.RPOrigins = splitList(get("STEPUP_RP_ORIGINS")); len(c.RPOrigins) == 0 {
		u, _ := url.Parse(c.Issuer)
		c.RPOrigins = []string{u.Scheme + "://" + u.Host}
	}
	for _, o := range c.RPOrigins {
		if err := checkOrigin(o); err != nil {
			return c, fmt.Errorf("STEPUP_RP_ORIGINS: %q %w", o, err)
		}
		u, _ := url.Parse(o)
		if h := u.Hostname(); h != c.RPID && !strings.HasSuffix(h, "."+c.RPID) {
			return c, fmt.Errorf("STEPUP_RP_ID: %q is not the host of origin %q nor a suffix of it", c.RPID, o)
		}
	}
	if c.AnonRate, err = strconv.Atoi(get("STEPUP_ANON_RATE")); err != nil || c.AnonRate < 0 || c.AnonRate > 100000 {
		return c, errors.New("STEPUP_ANON_RATE: must be a whole number of requests per minute from 0 (off) to 100000, such as 60")
	}
	if c.AddrFailures, err = strconv.Atoi(get("STEPUP_ADDR_FAILURES")); err != nil || c.AddrFailures < 0 || c.AddrFailures > 1000000 {
		return c, errors.New("STEPUP_ADDR_FAILURES: must be a whole number of wrong passwords per hour from 0 (off) to 1000000, such as 100")
	}
	c.TrustedProxies = splitList(get("STEPUP_TRUSTED_PROXIES"))
	for _, p := range c.TrustedProxies {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				return c, fmt.Errorf("STEPUP_TRUSTED_PROXIES: %q is not an IP address or CIDR", p)
			}
		}
	}
	c.CORSOrigins = splitList(get("STEPUP_CORS_ORIGINS"))
	for _, o := range c.CORSOrigins {
		if err := checkOrigin(o); err != nil {
			return c, fmt.Errorf("STEPUP_CORS_ORIGINS: %q %w", o, err)
		}
	}
	switch get("STEPUP_SIGNUP") {
	case "open":
		c.SignupOpen = true
	case "closed":
	default:
		return c, errors.New("STEPUP_SIGNUP: must be open or closed")
	}
	if c.SigningAlg != "ES256" && c.SigningAlg != "EdDSA" {
		return c, errors.New("STEPUP_SIGNING_ALG: must be ES256 or EdDSA")
	}
	if c.AccessTTL, err = time.ParseDuration(get("STEPUP_ACCESS_TTL")); err != nil || c.AccessTTL < time.Minute || c.AccessTTL > time.Hour {
		return c, errors.New("STEPUP_ACCESS_TTL: must be a duration from 1m to 1h, such as 15m")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return c, errors.New("STEPUP_LOG_LEVEL: must be debug, info, warn or error")
	}
	if c.SessionMax, err = time.ParseDuration(get("STEPUP_SESSION_MAX_AGE")); err != nil || c.SessionMax < time.Hour {
		return c, errors.New("STEPUP_SESSION_MAX_AGE: must be a duration of at least 1h, such as 720h")
	}
	if c.SessionIdle, err = time.ParseDuration(get("STEPUP_SESSION_IDLE")); err != nil || c.SessionIdle < 5*time.Minute || c.SessionIdle > c.SessionMax {
		return c, errors.New("STEPUP_SESSION_IDLE: must be a duration from 5m up to STEPUP_SESSION_MAX_AGE, such as 24h")
	}
	if c.EventRetention, err = time.ParseDuration(get("STEPUP_EVENT_RETENTION")); err != nil || c.EventRetention < time.Hour || c.EventRetention > 87600*time.Hour {
		return c, errors.New("STEPUP_EVENT_RETENTION: must be a duration from 1h to 87600h (10 years), such as 2160h (90 days)")
	}
	c.Introspectors = map[string]string{}
	for _, pair := range splitList(get("STEPUP_INTROSPECTION_CLIENTS")) {
		id, secret, ok := strings.Cut(pair, ":")
		if !ok || id == "" || len(secret) < 16 {
			return c, errors.New("STEPUP_INTROSPECTION_CLIENTS: each entry must be id:secret with a secret of at least 16 characters")
		}
		c.Introspectors[id] = secret
	}
	if c.AdminClients, err = parseAdminClients(get("STEPUP_ADMIN_CLIENTS")); err != nil {
		return c, fmt.Errorf("STEPUP_ADMIN_CLIENTS: %w", err)
	}
	if len(c.AdminClients) > 0 && c.AdminAddr == "" {
		return c, errors.New("STEPUP_ADMIN_CLIENTS: the admin API is served on STEPUP_ADMIN_ADDR, which is off; set an address or remove the clients")
	}
	switch c.WebAuthnUV = get("STEPUP_WEBAUTHN_UV"); c.WebAuthnUV {
	case "required", "preferred", "discouraged":
	default:
		return c, errors.New("STEPUP_WEBAUTHN_UV: must be required, preferred or discouraged")
	}
	switch c.Attestation = get("STEPUP_WEBAUTHN_ATTESTATION"); c.Attestation {
	case "", "none", "indirect", "direct", "enterprise":
	default:
		return c, errors.New("STEPUP_WEBAUTHN_ATTESTATION: must be none, indirect, direct or enterprise")
	}
	c.MDSFile, c.MDSRoot, c.AttestationRoots = get("STEPUP_FIDO_MDS_FILE"), get("STEPUP_FIDO_MDS_ROOT"), get("STEPUP_WEBAUTHN_ATTESTATION_ROOTS")
	for _, s := range splitList(get("STEPUP_WEBAUTHN_AAGUIDS")) {
		id, err := uuid.Parse(s)
		if err != nil || len(s) != 36 || id == uuid.Nil {
			return c, fmt.Errorf("STEPUP_WEBAUTHN_AAGUIDS: %q is not an AAGUID such as cb69481e-8ff7-4039-93ec-0a2729a154a8", s)
		}
		c.AAGUIDs = append(c.AAGUIDs, id)
	}
	c.AAL3 = get("STEPUP_WEBAUTHN_AAL3")
	if err := checkAAL3(c); err != nil {
		return c, err
	}
	switch get("STEPUP_DPOP") {
	case "optional":
	case "required":
		c.DPoPRequired = true
	default:
		return c, errors.New("STEPUP_DPOP: must be optional or required")
	}
	if c.RememberDevice, err = time.ParseDuration(get("STEPUP_REMEMBER_DEVICE")); err != nil || c.RememberDevice < 0 ||
		(c.RememberDevice > 0 && c.RememberDevice < time.Hour) || c.RememberDevice > 366*24*time.Hour {
		return c, errors.New("STEPUP_REMEMBER_DEVICE: must be 0 (off) or a duration from 1h to 8784h, such as 720h")
	}
	switch get("STEPUP_DPOP_NONCE") {
	case "off":
	case "on":
		c.DPoPNonce = true
	default:
		return c, errors.New("STEPUP_DPOP_NONCE: must be on or off")
	}
	return c, nil
}

// checkAAL3 checks the authenticator policy's settings fit together; the
// files themselves are read and verified when the App opens.
func checkAAL3(c Config) error {
	trustSet := c.MDSFile != "" || c.MDSRoot != "" || c.AttestationRoots != "" || len(c.AAGUIDs) > 0
	switch c.AAL3 {
	case "", "claimed":
		if trustSet {
			return errors.New("STEPUP_WEBAUTHN_AAL3: the attestation trust settings (STEPUP_FIDO_MDS_FILE, STEPUP_FIDO_MDS_ROOT, STEPUP_WEBAUTHN_AAGUIDS, STEPUP_WEBAUTHN_ATTESTATION_ROOTS) need attested, not claimed")
		}
		return nil
	case "attested":
	default:
		return errors.New("STEPUP_WEBAUTHN_AAL3: must be claimed or attested")
	}
	switch {
	case c.Attestation == "none" || c.Attestation == "indirect":
		return fmt.Errorf("STEPUP_WEBAUTHN_ATTESTATION: %s hides the attestation that STEPUP_WEBAUTHN_AAL3=attested needs; use direct or enterprise", c.Attestation)
	case c.MDSRoot != "" && c.MDSFile == "":
		return errors.New("STEPUP_FIDO_MDS_ROOT: needs STEPUP_FIDO_MDS_FILE")
	case c.MDSFile == "" && len(c.AAGUIDs) == 0:
		return errors.New("STEPUP_WEBAUTHN_AAL3: attested needs STEPUP_FIDO_MDS_FILE or STEPUP_WEBAUTHN_AAGUIDS (with STEPUP_WEBAUTHN_ATTESTATION_ROOTS)")
	case c.MDSFile == "" && c.AttestationRoots == "":
		return errors.New("STEPUP_WEBAUTHN_ATTESTATION_ROOTS: needed for STEPUP_WEBAUTHN_AAGUIDS without STEPUP_FIDO_MDS_FILE")
	}
	return nil
}

// minAdminSecret is the shortest admin client secret: 32 characters (say,
// `head -c 24 /dev/urandom | base64`), so that it cannot be guessed and a
// fast hash of it suffices.
const minAdminSecret = 32

// parseAdminClients reads comma-separated id:secret[:ro] entries. The id
// is what comes before the first colon; a trailing :ro makes the client
// read-only. Errors never quote an entry: it holds a secret.
func parseAdminClients(s string) ([]flows.AdminClient, error) {
	var out []flows.AdminClient
	for i, entry := range splitList(s) {
		id, secret, ok := strings.Cut(entry, ":")
		ro := false
		if rest, found := strings.CutSuffix(secret, ":ro"); found {
			secret, ro = rest, true
		}
		switch {
		case !ok || id == "":
			return nil, fmt.Errorf("entry %d: must be id:secret or id:secret:ro", i+1)
		case len(secret) < minAdminSecret:
			return nil, fmt.Errorf("entry %d (client %q): the secret must be at least %d characters, such as the output of: head -c 24 /dev/urandom | base64", i+1, id, minAdminSecret)
		case !printableASCII(id):
			return nil, fmt.Errorf("entry %d: the id must be printable ASCII without spaces", i+1)
		}
		if slices.ContainsFunc(out, func(c flows.AdminClient) bool { return c.ID == id }) {
			return nil, fmt.Errorf("client %q is listed twice", id)
		}
		out = append(out, flows.AdminClient{ID: id, SecretHash: flows.HashAdminSecret(secret), ReadOnly: ro})
	}
	return out, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func parseIssuer(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", errors.New("must be an absolute http(s) URL without query or fragment, such as https://auth.example.com")
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return "", errors.New("must use https unless the host is localhost or a loopback address")
	}
	return strings.TrimRight(s, "/"), nil
}

func checkOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return errors.New("must be an origin: scheme://host[:port]")
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return errors.New("must use https unless the host is localhost")
	}
	return nil
}

func isLoopback(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, strings.TrimRight(p, "/"))
		}
	}
	return out
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("must decode to 32 bytes, got %d", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("must be base64 of 32 random bytes")
}

// readKeyFile reads a base64 master key from path, which only its owner may
// read or write: a key any other user can read is no longer a secret.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: other users may read or change it; chmod 600 it", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<10))
	if err != nil {
		return nil, err
	}
	k, err := decodeKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// masterKeyFile reads the generated master key of the embedded store, or
// creates it (mode 0600) on first start. It reports whether it created it.
func masterKeyFile(dir string) ([]byte, bool, error) {
	path := dir + "/master.key"
	if b, err := os.ReadFile(path); err == nil {
		k, err := decodeKey(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
		return k, false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	k := make([]byte, 32)
	if _, err := randRead(k); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n"); err != nil {
		return nil, false, err
	}
	return k, true, f.Sync()
}
