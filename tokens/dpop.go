package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DPoP (RFC 9449): a client proves possession of a key with a signed proof
// JWT in the DPoP header of each request; tokens issued to it carry the key's
// RFC 7638 thumbprint as cnf.jkt and are worthless without the key.

// TypeDPoPProof is the JOSE typ of a DPoP proof (RFC 9449 §4.2).
const TypeDPoPProof = "dpop+jwt"

// DPoPAlgs are the proof algorithms accepted (and advertised as
// dpop_signing_alg_values_supported).
var DPoPAlgs = []string{ES256, EdDSA}

// DPoP errors. ErrDPoPProof is every refusal of a proof itself; the error
// text says why, for logs only. ErrDPoPNonce means the proof lacks the
// server's current nonce (RFC 9449 §8: use_dpop_nonce).
var (
	ErrDPoPProof = errors.New("tokens: invalid DPoP proof")
	ErrDPoPNonce = errors.New("tokens: DPoP proof without a current server nonce")
)

func badProof(reason string) error { return fmt.Errorf("%w: %s", ErrDPoPProof, reason) }

// maxProofLen bounds the work on a proof before its signature is checked; a
// proof with an EC key is about 500 bytes.
const maxProofLen = 4 << 10

// maxJTILen bounds the proof's jti (stored for replay detection).
const maxJTILen = 256

// DPoPConfig configures a DPoPVerifier. Zero values take the defaults named
// on each field.
type DPoPConfig struct {
	// MaxAge is how old a proof's iat may be (default 60 seconds): a proof
	// is accepted, and its jti remembered, for that long.
	MaxAge time.Duration
	// Leeway is how far in the future iat may be, for clock skew (default 5
	// seconds).
	Leeway time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DPoPVerifier checks DPoP proofs (RFC 9449 §4.3). It does not remember
// jtis: the caller records DPoPProof.Replay until DPoPProof.Until, where
// it can make single use hold (a store for a service of several instances,
// memory for one). It is safe for concurrent use.
type DPoPVerifier struct {
	maxAge time.Duration
	leeway time.Duration
	now    func() time.Time
	parser *jwt.Parser
}

// NewDPoPVerifier returns a DPoPVerifier for cfg.
func NewDPoPVerifier(cfg DPoPConfig) *DPoPVerifier {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = time.Minute
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &DPoPVerifier{maxAge: cfg.MaxAge, leeway: cfg.Leeway, now: cfg.Now,
		// Time claims are checked here, not by golang-jwt: a proof has iat
		// only, and its window is DPoP's own.
		parser: jwt.NewParser(jwt.WithValidMethods(DPoPAlgs), jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())}
}

// DPoPRequest is the request a proof must be for.
type DPoPRequest struct {
	Method string // htm
	// URL is the request's public URL (htu): the configured base URL and
	// the path, never one built from the Host header. Query and fragment
	// are ignored on both sides (RFC 9449 §4.3 step 9).
	URL string
	// AccessToken, when set, is the token presented with the proof: ath
	// must be its hash (RFC 9449 §4.3 step 10). When empty, ath is not read.
	AccessToken string
}

// DPoPProof is what a verified proof says.
type DPoPProof struct {
	JKT      string    // RFC 7638 SHA-256 thumbprint of the proof's key
	ID       string    // jti
	IssuedAt time.Time // iat
	Nonce    string    // the server nonce it carries, if any
	// Replay names the proof for single use: a digest of the key and jti.
	Replay string
	// Until is when the proof stops being accepted anyway; Replay need not
	// be remembered longer.
	Until time.Time
}

// dpopClaims is the payload of a proof.
type dpopClaims struct {
	JTI   string           `json:"jti"`
	HTM   string           `json:"htm"`
	HTU   string           `json:"htu"`
	IAT   *jwt.NumericDate `json:"iat"`
	ATH   string           `json:"ath,omitempty"`
	Nonce string           `json:"nonce,omitempty"`
}

// golang-jwt's Claims interface; the times are checked in Verify.
func (c *dpopClaims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (c *dpopClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IAT, nil }
func (c *dpopClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c *dpopClaims) GetIssuer() (string, error)                   { return "", nil }
func (c *dpopClaims) GetSubject() (string, error)                  { return "", nil }
func (c *dpopClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// proofClaimTypes are the JSON types of the proof's claims.
var proofClaimTypes = map[string]jsonType{"jti": jsonString, "htm": jsonString, "htu": jsonString,
	"iat": jsonNumber, "ath": jsonString, "nonce": jsonString}

// Verify checks proof, the value of one DPoP header, for req (RFC 9449
// §4.3): a compact JWS of at most 4 KiB whose header holds exactly typ
// "dpop+jwt", alg ES256 or EdDSA and jwk, a public key of that algorithm's
// type (EC P-256 or OKP Ed25519) without private members; a valid
// signature by that key; no duplicated member, every claim of its JSON
// type; jti non-empty (≤ 256 bytes); htm equal to req.Method; htu equal to
// req.URL ignoring query and fragment (scheme and host compared without
// case, a default port ignored); iat no older than MaxAge and no later than
// Leeway ahead; and, when req.AccessToken is set, ath the base64url SHA-256
// of it. It does not check the nonce (see DPoPNonces) nor replay.
//
// Every refusal is ErrDPoPProof.
func (v *DPoPVerifier) Verify(proof string, req DPoPRequest) (DPoPProof, error) {
	if proof == "" || len(proof) > maxProofLen {
		return DPoPProof{}, badProof("empty or too long")
	}
	head, rest, ok1 := strings.Cut(proof, ".")
	payload, _, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return DPoPProof{}, badProof("not a compact JWS")
	}
	h, err := segment(head)
	if err != nil {
		return DPoPProof{}, badProof("header: " + err.Error())
	}
	pub, jkt, err := proofKey(h)
	if err != nil {
		return DPoPProof{}, err
	}
	p, err := segment(payload)
	if err != nil {
		return DPoPProof{}, badProof("payload: " + err.Error())
	}
	for name, t := range proofClaimTypes {
		if raw, ok := p[name]; ok && !hasType(raw, t) {
			return DPoPProof{}, badProof("claim " + name + " has the wrong JSON type")
		}
	}
	var c dpopClaims
	_, err = v.parser.ParseWithClaims(proof, &c, func(t *jwt.Token) (any, error) {
		if t.Method == nil || t.Method.Alg() != pub.alg {
			return nil, errors.New("alg does not match the jwk")
		}
		return pub.key, nil
	})
	if err != nil {
		return DPoPProof{}, badProof(err.Error())
	}
	now := v.now()
	switch {
	case c.JTI == "" || len(c.JTI) > maxJTILen:
		return DPoPProof{}, badProof("jti missing or too long")
	case c.HTM != req.Method:
		return DPoPProof{}, badProof("htm is not the request's method")
	case !sameURL(c.HTU, req.URL):
		return DPoPProof{}, badProof("htu is not the request's URL")
	case c.IAT == nil:
		return DPoPProof{}, badProof("iat missing")
	case c.IAT.Before(now.Add(-v.maxAge)):
		return DPoPProof{}, badProof("iat too old")
	case c.IAT.After(now.Add(v.leeway)):
		return DPoPProof{}, badProof("iat in the future")
	}
	if req.AccessToken != "" {
		want := AccessTokenHash(req.AccessToken)
		if subtle.ConstantTimeCompare([]byte(c.ATH), []byte(want)) != 1 {
			return DPoPProof{}, badProof("ath missing or not the access token's hash")
		}
	}
	replay := sha256.Sum256([]byte(jkt + "|" + c.JTI))
	return DPoPProof{JKT: jkt, ID: c.JTI, IssuedAt: c.IAT.UTC(), Nonce: c.Nonce,
		Replay: b64.EncodeToString(replay[:]), Until: c.IAT.Add(v.maxAge + v.leeway)}, nil
}

// AccessTokenHash is a proof's ath for token: base64url SHA-256 of its
// ASCII (RFC 9449 §4.2).
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return b64.EncodeToString(sum[:])
}

// privateMembers are JWK members that only a private (or symmetric) key has
// (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// proofKey checks a proof's JOSE header — exactly typ, alg and jwk — and
// returns the key of its jwk and the key's RFC 7638 thumbprint.
func proofKey(h map[string]json.RawMessage) (pinned, string, error) {
	for name := range h {
		switch name {
		case "typ", "alg", "jwk":
		default:
			return pinned{}, "", badProof(fmt.Sprintf("header member %.40q not allowed", name))
		}
	}
	var typ, alg string
	if json.Unmarshal(h["typ"], &typ) != nil || !strings.EqualFold(typ, TypeDPoPProof) {
		return pinned{}, "", badProof("typ is not dpop+jwt")
	}
	if json.Unmarshal(h["alg"], &alg) != nil {
		return pinned{}, "", badProof("alg missing")
	}
	raw, ok := h["jwk"]
	if !ok || len(raw) == 0 || raw[0] != '{' {
		return pinned{}, "", badProof("jwk missing")
	}
	members, err := segmentJSON(raw)
	if err != nil {
		return pinned{}, "", badProof("jwk: " + err.Error())
	}
	for _, m := range privateMembers {
		if _, ok := members[m]; ok {
			return pinned{}, "", badProof("jwk holds a private key member")
		}
	}
	str := func(name string) string {
		var s string
		_ = json.Unmarshal(members[name], &s)
		return s
	}
	var k pinned
	switch kty, crv := str("kty"), str("crv"); {
	case alg == ES256 && kty == "EC" && crv == "P-256":
		x, errX := strictB64.DecodeString(str("x"))
		y, errY := strictB64.DecodeString(str("y"))
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return pinned{}, "", badProof("jwk: bad EC coordinates")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return pinned{}, "", badProof("jwk: point not on P-256")
		}
		k = pinned{key: pub, alg: ES256}
	case alg == EdDSA && kty == "OKP" && crv == "Ed25519":
		x, err := strictB64.DecodeString(str("x"))
		if err != nil || len(x) != ed25519.PublicKeySize {
			return pinned{}, "", badProof("jwk: bad Ed25519 key")
		}
		k = pinned{key: ed25519.PublicKey(x), alg: EdDSA}
	default:
		return pinned{}, "", badProof("alg and jwk are not ES256 with P-256 nor EdDSA with Ed25519")
	}
	jkt, err := thumbprint(k.key)
	if err != nil {
		return pinned{}, "", badProof(err.Error())
	}
	return k, jkt, nil
}

// pinned is a proof's key with the one algorithm it may sign with.
type pinned struct {
	key crypto.PublicKey
	alg string
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of an EC P-256 or Ed25519
// public key, base64url: a DPoP key's jkt.
func Thumbprint(pub crypto.PublicKey) (string, error) { return thumbprint(pub) }

// sameURL compares two http(s) URLs as RFC 9449 §4.3 asks: without query
// and fragment, after syntax-based normalisation (RFC 3986 §6.2.2, §6.2.3):
// scheme and host without case, a default port dropped, an empty path as
// "/".
func sameURL(a, b string) bool {
	na, ok1 := normalURL(a)
	nb, ok2 := normalURL(b)
	return ok1 && ok2 && na == nb
}

func normalURL(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port := u.Port(); port != "" && !(scheme == "http" && port == "80") && !(scheme == "https" && port == "443") {
		host += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, true
}
