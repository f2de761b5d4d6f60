package guard

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Why a request was refused, carried in Challenge.Err. A refused token
// carries the tokens package's error instead: tokens.ErrInvalidToken, or
// tokens.ErrExpired, which is also ErrInvalidToken.
var (
	// ErrNoToken means the request carried no Bearer credentials.
	ErrNoToken = errors.New("guard: no bearer token")
	// ErrMalformed means the Authorization header was repeated or was not a
	// well-formed Bearer credential (RFC 6750 §2.1).
	ErrMalformed = errors.New("guard: malformed Authorization header")
	// ErrInsufficient means the token is valid but its acr, auth_time or amr
	// does not meet the requirement (RFC 9470).
	ErrInsufficient = errors.New("guard: insufficient user authentication")
	// ErrDPoPBound means a DPoP-bound token came as a Bearer token, or its
	// proof was made with another key (RFC 9449 §7.1).
	ErrDPoPBound = errors.New("guard: the token is bound to another DPoP key or was sent as a Bearer token")
	// ErrDPoPRequired means the route requires DPoP and the request used
	// the Bearer scheme, or a Bearer token came with the DPoP scheme.
	ErrDPoPRequired = errors.New("guard: a DPoP-bound token and proof are required")
	// ErrDPoPReplay means the proof's jti was seen before by this Guard.
	ErrDPoPReplay = errors.New("guard: the DPoP proof was used before")
)

// Error codes of challenges and problem bodies (RFC 6750 §3.1, RFC 9470 §3).
const (
	CodeInvalidRequest = "invalid_request"
	CodeInvalidToken   = "invalid_token"
	CodeInsufficient   = "insufficient_user_authentication"
	CodeInvalidProof   = "invalid_dpop_proof" // RFC 9449 §7.1
	CodeUseNonce       = "use_dpop_nonce"     // RFC 9449 §9
)

// Challenge is a refusal: the status, the WWW-Authenticate challenge and
// the RFC 9457 problem body to answer with. Its ServeHTTP writes all three.
// Err says why, for logs; it is never sent.
type Challenge struct {
	Status      int    // 401, or 400 for a malformed request
	Code        string // one of the Code constants
	Description string // error_description and problem detail, for the client
	Realm       string // realm of the challenge; omitted when empty
	ACRValues   string // RFC 9470 acr_values; omitted when empty
	// MaxAge is the RFC 9470 max_age, sent in whole seconds; omitted when 0.
	MaxAge time.Duration
	// DPoP makes it a DPoP challenge (RFC 9449 §7.1) with algs: for a
	// request that used the DPoP scheme or a DPoP-bound token, or a route
	// that requires DPoP.
	DPoP bool
	// AlsoDPoP adds, beside a Bearer challenge, a DPoP one (realm and algs
	// only): the route accepts either scheme.
	AlsoDPoP bool
	// Err is ErrNoToken, ErrMalformed, ErrInsufficient, or the tokens
	// package's verification error. It is for logs only.
	Err error
}

// Error returns the code, the description and, for logs, the reason.
func (c *Challenge) Error() string {
	s := "guard: " + c.Code + ": " + c.Description
	if c.Err != nil {
		s += ": " + c.Err.Error()
	}
	return s
}

// Unwrap returns Err, so errors.Is(c, tokens.ErrExpired) and the like work.
func (c *Challenge) Unwrap() error { return c.Err }

// Header returns the WWW-Authenticate value: a Bearer challenge (RFC 6750
// §3) with realm when set and, unless the request carried no credentials
// (§3.1: then no error code), error and error_description, plus acr_values
// and max_age when set (RFC 9470 §3). Every value here is checked or
// written by this package and contains no quote or backslash.
func (c *Challenge) Header() string {
	var b strings.Builder
	sep := " "
	scheme := "Bearer"
	if c.DPoP {
		scheme = "DPoP"
	}
	b.WriteString(scheme)
	param := func(name, value string) {
		b.WriteString(sep)
		sep = ", "
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(value)
		b.WriteByte('"')
	}
	if c.Realm != "" {
		param("realm", c.Realm)
	}
	if c.DPoP {
		param("algs", DPoPAlgs)
	}
	if errors.Is(c.Err, ErrNoToken) {
		return b.String()
	}
	param("error", c.Code)
	if c.Description != "" {
		param("error_description", c.Description)
	}
	if c.ACRValues != "" {
		param("acr_values", c.ACRValues)
	}
	if s := c.maxAgeSeconds(); s > 0 {
		param("max_age", strconv.FormatInt(s, 10))
	}
	return b.String()
}

// DPoPAlgs is the algs parameter of DPoP challenges: the proof algorithms
// accepted (tokens.DPoPAlgs).
const DPoPAlgs = "ES256 EdDSA"

// Headers returns every WWW-Authenticate value: Header, and with AlsoDPoP
// a DPoP challenge with realm and algs.
func (c *Challenge) Headers() []string {
	out := []string{c.Header()}
	if c.AlsoDPoP && !c.DPoP {
		out = append(out, (&Challenge{Realm: c.Realm, DPoP: true, Err: ErrNoToken}).Header())
	}
	return out
}

func (c *Challenge) maxAgeSeconds() int64 { return int64(c.MaxAge / time.Second) }

// problem is the RFC 9457 body; acr_values and max_age are extension
// members repeating the challenge for clients that read bodies only.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Detail    string `json:"detail,omitempty"`
	ACRValues string `json:"acr_values,omitempty"`
	MaxAge    int64  `json:"max_age,omitempty"`
}

// ServeHTTP answers with c: the status, WWW-Authenticate, Cache-Control:
// no-store and an application/problem+json body with the code.
func (c *Challenge) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	body, _ := json.Marshal(problem{
		Type:      "about:blank",
		Title:     http.StatusText(c.Status),
		Status:    c.Status,
		Code:      c.Code,
		Detail:    c.Description,
		ACRValues: c.ACRValues,
		MaxAge:    c.maxAgeSeconds(),
	})
	h := w.Header()
	h.Del("WWW-Authenticate")
	for _, v := range c.Headers() {
		h.Add("WWW-Authenticate", v)
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(c.Status)
	_, _ = w.Write(append(body, '\n'))
}

// Challenges the Guard builds. Descriptions never carry the internal reason.

func (g *Guard) noToken() *Challenge {
	return &Challenge{Status: http.StatusUnauthorized, Code: CodeInvalidToken,
		Description: "an access token is required", Realm: g.realm, Err: ErrNoToken}
}

func (g *Guard) malformed(why string) *Challenge {
	return &Challenge{Status: http.StatusBadRequest, Code: CodeInvalidRequest,
		Description: "the Authorization header must hold one Bearer token", Realm: g.realm,
		Err: errors.Join(ErrMalformed, errors.New(why))}
}

func (g *Guard) invalidToken(err error, expired bool) *Challenge {
	desc := "the access token is invalid"
	if expired {
		desc = "the access token expired"
	}
	return &Challenge{Status: http.StatusUnauthorized, Code: CodeInvalidToken,
		Description: desc, Realm: g.realm, Err: err}
}

// insufficient is the RFC 9470 challenge. It names everything req demands,
// not only what failed, so one step-up satisfies the whole requirement.
func (g *Guard) insufficient(req Requirement, desc string) *Challenge {
	return &Challenge{Status: http.StatusUnauthorized, Code: CodeInsufficient,
		Description: desc, Realm: g.realm, ACRValues: req.ACR, MaxAge: req.MaxAge, Err: ErrInsufficient}
}
