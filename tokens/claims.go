package tokens

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"time"
)

// Token types carried in the JOSE "typ" header. Every endpoint accepts
// exactly one of them.
const (
	TypeAccess     = "at+jwt"          // RFC 9068 §2.1
	TypeMFAPending = "mfa-pending+jwt" // this service's own profile
)

// ScopeMFAPending is the only scope an mfa_pending token carries.
const ScopeMFAPending = "mfa_pending"

// AccessClaims is the verified content of an access token (RFC 9068 §2.2).
type AccessClaims struct {
	Issuer   string
	Subject  string
	Audience []string
	ClientID string
	IssuedAt time.Time
	Expiry   time.Time
	ID       string // jti
	Session  string // sid
	AuthTime time.Time
	ACR      string
	AMR      []string
	// JKT is the RFC 7638 thumbprint of the DPoP key the token is bound to
	// (cnf.jkt, RFC 9449 §6); empty for a Bearer token.
	JKT string
}

// PendingClaims is the verified content of an mfa_pending token.
type PendingClaims struct {
	Issuer   string
	Subject  string
	Audience []string
	IssuedAt time.Time
	Expiry   time.Time
	ID       string // jti
	AMR      []string
	Session  string // sid, set only when stepping up an existing session
	ACR      string // the acr the client must reach (step-up), empty for sign-in
	MaxAge   int64  // seconds, step-up only; 0 when absent
	// JKT binds the token to a DPoP key (cnf.jkt): the second factor must
	// come with a proof of that key. Empty when the password step had none.
	JKT string

	// Record names the token's record in the store (its attempts, its
	// consumption): the jti and a digest of the claims exactly as signed.
	// Issuer.Pending and Verifier.Pending set it, so a token that differs
	// from the one issued in any claim — a jti reused with another sub,
	// a raised acr — names a record no login made, and is refused.
	Record string
}

// pendingRecord is PendingClaims.Record for a token: the jti, '.', and the
// first 128 bits of the SHA-256 of its payload segment, base64url.
func pendingRecord(jti, token string) string {
	parts := strings.SplitN(token, ".", 3)
	if len(parts) != 3 {
		return ""
	}
	sum := sha256.Sum256([]byte(parts[1]))
	return jti + "." + base64.RawURLEncoding.EncodeToString(sum[:16])
}
