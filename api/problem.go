package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/api/flows"
	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
	"github.com/stepup-auth/stepup/tokens/guard"
)

// Problem is an RFC 9457 problem detail with a stable machine code. Detail
// is written for the client and never carries an internal error; Err is the
// cause, logged once with the request id and never sent.
type Problem struct {
	Status     int    `json:"status"`
	Code       Code   `json:"code"`
	Title      string `json:"title"`
	Detail     string `json:"detail,omitempty"`
	RetryAfter int    `json:"-"`
	// Challenge is a WWW-Authenticate value for 401 answers.
	Challenge string `json:"-"`
	Err       error  `json:"-"`
}

func (p *Problem) Error() string {
	if p.Err != nil {
		return string(p.Code) + ": " + p.Err.Error()
	}
	return string(p.Code) + ": " + p.Detail
}

func (p *Problem) Unwrap() error { return p.Err }

func problem(status int, code Code, detail string) *Problem {
	return &Problem{Status: status, Code: code, Title: http.StatusText(status), Detail: detail}
}

func badRequest(detail string) *Problem {
	return problem(http.StatusBadRequest, CodeInvalidRequest, detail)
}

// Challenge kinds of a table entry.
const (
	noChallenge = iota
	realmChallenge
	invalidTokenChallenge
	basicChallenge
	adminChallenge
	dpopChallenge // a DPoP challenge (RFC 9449 §7.1) with the row's code
)

// The HTTP layer's own errors; the table below says what each becomes.
var (
	errNotJSON          = errors.New("api: the body is not application/json")
	errNotForm          = errors.New("api: the body is not a form")
	errTooLarge         = errors.New("api: the body is too large")
	errNoEndpoint       = errors.New("api: no such endpoint")
	errNoPage           = errors.New("api: no such page")
	errMethod           = errors.New("api: method not allowed")
	errInvalidClient    = errors.New("api: introspection client authentication failed")
	errCSRF             = errors.New("api: cookie refresh without the CSRF checks")
	errStoreUnreachable = errors.New("api: the store is unreachable")
	errHeadersTooLarge  = errors.New("api: request headers too large")
	errAdminFromBrowser = errors.New("api: an admin API change from a browser's cross-origin request")
)

// errorEntry is one row of the error table: an error and the problem it
// becomes.
type errorEntry struct {
	err       error
	status    int
	code      Code
	detail    string
	challenge int
}

// errorTable is the one table of error → problem, declared once; the
// first row whose error matches (errors.Is) decides. Typed errors
// (*Problem, *mfa.ThrottledError, *flows.InsufficientError, store
// outages) are handled before it in toProblem. The contract test reads
// this table: every code here is in openapi.yaml's enum and back.
var errorTable = []errorEntry{
	// HTTP.
	{errNotJSON, 415, CodeUnsupportedMediaType, "the body must be application/json", noChallenge},
	{errNotForm, 415, CodeUnsupportedMediaType, "the body must be application/x-www-form-urlencoded", noChallenge},
	{errTooLarge, 413, CodeRequestTooLarge, "the body is too large", noChallenge},
	{errNoEndpoint, 404, CodeNotFound, "no such endpoint", noChallenge},
	{errNoPage, 404, CodeNotFound, "no such page", noChallenge},
	{errMethod, 405, CodeMethodNotAllowed, "method not allowed on this endpoint", noChallenge},
	{errInvalidClient, 401, CodeInvalidClient, "client authentication failed", basicChallenge},
	{flows.ErrAdminAuth, 401, CodeInvalidClient, "admin client authentication failed: HTTP Basic with an admin client's id and secret is required", adminChallenge},
	{flows.ErrReadOnlyClient, 403, CodeForbidden, "this admin client may only read", noChallenge},
	{errAdminFromBrowser, 403, CodeForbidden, "the admin API takes no changes from a browser's cross-origin request (an Origin header)", noChallenge},
	{flows.ErrBadCursor, 400, CodeInvalidRequest, "cursor is not one this list gave", noChallenge},
	{flows.ErrBadLimit, 400, CodeInvalidRequest, "limit must be a whole number from 1 to 200", noChallenge},
	{errCSRF, 403, CodeCSRF, "a cookie refresh needs an allowed Origin and the X-Stepup-Cookie: 1 header", noChallenge},
	{errHeadersTooLarge, 431, CodeHeadersTooLarge, "the request's headers are too large", noChallenge},
	{errStoreUnreachable, 503, CodeUnavailable, "the store is unreachable", noChallenge},
	// The mfa_token, the access token, the session.
	{flows.ErrPendingBad, 401, CodeInvalidToken, "the mfa_token is invalid or expired", invalidTokenChallenge},
	{flows.ErrPendingUsed, 401, CodeInvalidToken, "the mfa_token has been used", invalidTokenChallenge},
	{flows.ErrPendingSpent, 401, CodeInvalidToken, "the mfa_token has no attempts left", invalidTokenChallenge},
	{flows.ErrPendingUser, 401, CodeInvalidToken, "the mfa_token's user is gone", invalidTokenChallenge},
	{flows.ErrAccessBad, 401, CodeInvalidToken, "the access token is invalid or expired", invalidTokenChallenge},
	{flows.ErrSessionGone, 401, CodeInvalidToken, "the session has ended", invalidTokenChallenge},
	{flows.ErrStepUpSession, 401, CodeInvalidToken, "the session being stepped up has ended", invalidTokenChallenge},
	{tokens.ErrInvalidToken, 401, CodeInvalidToken, "the token is invalid or expired", invalidTokenChallenge},
	// DPoP (RFC 9449). At the token-issuing endpoints a refused proof is
	// 400 (§5); the endpoints taking an access token answer 401 with a
	// DPoP challenge instead (resourceProof).
	{flows.ErrDPoPBound, 401, CodeInvalidToken,
		"the token is bound to a DPoP key: send it with the DPoP scheme and a proof of that key", dpopChallenge},
	{flows.ErrDPoPUnbound, 401, CodeInvalidToken, "the token is not DPoP-bound: send it with the Bearer scheme", invalidTokenChallenge},
	{tokens.ErrDPoPNonce, 400, CodeUseDPoPNonce, "the DPoP proof must carry the server's nonce (DPoP-Nonce)", noChallenge},
	{tokens.ErrDPoPProof, 400, CodeInvalidDPoPProof, "the DPoP proof is invalid or not for this request", noChallenge},
	{flows.ErrDPoPReplay, 400, CodeInvalidDPoPProof, "the DPoP proof was used before", noChallenge},
	{flows.ErrDPoPUnavailable, 400, CodeInvalidDPoPProof, "DPoP proofs are not accepted here", noChallenge},
	{flows.ErrDPoPRequired, 400, CodeInvalidDPoPProof, "a DPoP proof is required", noChallenge},
	// Credentials of the request itself (sign-in, the mfa_token endpoints).
	{mfa.ErrBadCredentials, 401, CodeInvalidCredentials, "the username or password is wrong", realmChallenge},
	{mfa.ErrBadCode, 401, CodeMFAFailed, "the second factor was not accepted", realmChallenge},
	{mfa.ErrCeremony, 401, CodeMFAFailed, "the security key or passkey was not accepted", realmChallenge},
	// Something in the body of a request whose access token is fine.
	{flows.ErrCodeRejected, 400, CodeMFAFailed, "the code was not accepted", noChallenge},
	{flows.ErrRegistrationRejected, 400, CodeMFAFailed, "the security key or passkey was not accepted", noChallenge},
	{flows.ErrPasswordRejected, 400, CodeInvalidCredentials, "the password is wrong", noChallenge},
	{flows.ErrPasswordRequired, 400, CodePasswordRequired,
		"the session's sign-in is older than max_age: send the password again with the step-up", noChallenge},
	// Input.
	{mfa.ErrMalformedRecovery, 400, CodeInvalidRequest, "a recovery code is 24 letters and digits as shown, in groups of four", noChallenge},
	{mfa.ErrMalformedCode, 400, CodeInvalidRequest, "code must be a string of exactly the configured number of digits", noChallenge},
	{mfa.ErrInvalidUsername, 400, CodeInvalidRequest, "username must be 1–128 printable characters without spaces", noChallenge},
	{mfa.ErrInvalidPassword, 400, CodeInvalidRequest,
		fmt.Sprintf("password must be %d–%d characters", mfa.MinPasswordLen, mfa.MaxPasswordLen), noChallenge},
	{mfa.ErrWeakPassword, 400, CodeInvalidRequest,
		"that password is too common or too easy to guess; choose another (several unrelated words work well)", noChallenge},
	{flows.ErrRememberNeedsKey, 400, CodeInvalidRequest, "remember_device needs a DPoP proof: the device is remembered by its key", noChallenge},
	{flows.ErrRememberOff, 400, CodeInvalidRequest, "remembering devices is turned off on this service", noChallenge},
	{flows.ErrInvalidName, 400, CodeInvalidRequest, "name must be 1–64 characters without control characters", noChallenge},
	// Levels.
	{flows.ErrFactorCannotReach, 403, CodeUnmet,
		"that factor cannot reach the requested authentication level", noChallenge},
	{flows.ErrNoFactorReaches, 403, CodeUnmet,
		"no enrolled factor can reach the requested authentication level", noChallenge},
	// Changes.
	{flows.ErrSignupClosed, 403, CodeSignupClosed, "sign-up is closed on this service", noChallenge},
	{flows.ErrAccountDisabled, 403, CodeAccountDisabled, "the account is disabled; an administrator can enable it", noChallenge},
	{mfa.ErrUsernameTaken, 409, CodeConflict, "that username is taken", noChallenge},
	{mfa.ErrAlreadyConfirmed, 409, CodeConflict, "the factor is confirmed already", noChallenge},
	{mfa.ErrTooManyFactors, 409, CodeConflict, "too many factors; remove one first", noChallenge},
	{flows.ErrCredTaken, 409, CodeConflict, "this credential is registered already", noChallenge},
	{flows.ErrNoFactorYet, 409, CodeConflict, "enroll a second factor before creating recovery codes", noChallenge},
	{flows.ErrLastFactor, 409, CodeLastFactor,
		"this is the last second factor: removing it leaves only the password; repeat with ?last=true to remove it", noChallenge},
	{mfa.ErrNotEnrolled, 404, CodeNotFound, "no such resource", noChallenge},
	{mfa.ErrNotFound, 404, CodeNotFound, "no such resource", noChallenge},
	{flows.ErrNoSession, 404, CodeNotFound, "no such session", noChallenge},
	// Refresh.
	{tokens.ErrRefreshUnknown, 400, CodeInvalidGrant, "the refresh token is invalid, expired or revoked", noChallenge},
	{tokens.ErrRefreshReused, 400, CodeInvalidGrant, "the refresh token is invalid, expired or revoked", noChallenge},
	{tokens.ErrSessionEnded, 400, CodeInvalidGrant, "the refresh token is invalid, expired or revoked", noChallenge},
	{tokens.ErrSessionNotFound, 400, CodeInvalidGrant, "the refresh token is invalid, expired or revoked", noChallenge},
	// Load.
	{mfa.ErrBusy, 503, CodeOverloaded, "too many sign-ins at once; retry shortly", noChallenge},
	{context.DeadlineExceeded, 503, CodeUnavailable, "the service is temporarily unavailable", noChallenge},
}

// invalidToken is the RFC 6750 §3 problem for a bad or missing token.
func invalidToken(detail string, err error) *Problem {
	p := problem(http.StatusUnauthorized, CodeInvalidToken, detail)
	p.Challenge = (&guard.Challenge{Code: guard.CodeInvalidToken, Description: detail}).Header()
	p.Err = err
	return p
}

// toProblem maps an error to its problem: typed errors first, then the
// table, then 500 with a generic detail.
func toProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var ua interface{ Unavailable() bool }
	if errors.As(err, &ua) && ua.Unavailable() {
		p = problem(http.StatusServiceUnavailable, CodeUnavailable, "the service is temporarily unavailable")
		p.RetryAfter = 1
		p.Err = err
		return p
	}
	var th *mfa.ThrottledError
	if errors.As(err, &th) {
		if th.Locked {
			p = problem(http.StatusTooManyRequests, CodeAccountLocked,
				"too many failed attempts; the account is locked until an administrator unlocks it")
			if th.RetryAfter > 0 {
				p.Detail = "too many failed passwords; the password is refused for a while (see Retry-After) or until an administrator unlocks it; a passkey still signs in"
				p.RetryAfter = max(1, int(th.RetryAfter.Seconds()+0.999))
			}
		} else {
			p = problem(http.StatusTooManyRequests, CodeRateLimited, "too many failed attempts; retry later")
			p.RetryAfter = max(1, int(th.RetryAfter.Seconds()+0.999))
		}
		p.Err = err
		return p
	}
	var ins *flows.InsufficientError
	if errors.As(err, &ins) {
		p = problem(http.StatusUnauthorized, CodeInsufficient, "a more recent or stronger authentication is required")
		p.Challenge = (&guard.Challenge{Code: guard.CodeInsufficient, Description: p.Detail, ACRValues: ins.ACR, MaxAge: ins.MaxAge}).Header()
		p.Err = err
		return p
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			p = problem(e.status, e.code, e.detail)
			switch e.challenge {
			case realmChallenge:
				p.Challenge = (&guard.Challenge{Realm: "stepup", Err: guard.ErrNoToken}).Header()
			case invalidTokenChallenge:
				p.Challenge = (&guard.Challenge{Code: guard.CodeInvalidToken, Description: e.detail}).Header()
			case basicChallenge:
				p.Challenge = `Basic realm="stepup introspection"`
			case adminChallenge:
				p.Challenge = `Basic realm="stepup admin", charset="UTF-8"`
			case dpopChallenge:
				p.Challenge = (&guard.Challenge{Code: string(e.code), Description: e.detail, DPoP: true}).Header()
			}
			p.Err = err
			return p
		}
	}
	p = problem(http.StatusInternalServerError, CodeInternalError, "an internal error occurred")
	p.Err = err
	return p
}

// renderErrors renders the last error a handler recorded with c.Error as
// problem+json and logs unexpected ones once, with the request id.
func (s *Server) renderErrors(c *gin.Context) {
	c.Next()
	if len(c.Errors) == 0 || c.Writer.Written() {
		return
	}
	err := c.Errors.Last().Err
	p := toProblem(err)
	level := slog.LevelDebug
	switch {
	case p.Status == http.StatusServiceUnavailable:
		level = slog.LevelWarn // load shedding or a store outage: not a bug, and clients could flood ERROR
	case p.Status >= 500:
		level = slog.LevelError
	}
	if p.Err != nil {
		s.log.Log(c.Request.Context(), level, "request failed", "request_id", requestID(c),
			"code", p.Code, "status", p.Status, "err", p.Err.Error())
	}
	if p.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	if p.Challenge != "" {
		c.Header("WWW-Authenticate", p.Challenge)
	}
	c.Header("Cache-Control", "no-store")
	writeProblem(c, p)
}

func writeProblem(c *gin.Context, p *Problem) {
	body := struct {
		Type     string `json:"type"`
		Title    string `json:"title"`
		Status   int    `json:"status"`
		Code     string `json:"code"`
		Detail   string `json:"detail,omitempty"`
		Instance string `json:"instance,omitempty"`
		// Error is the RFC 6749 §5.2 error code, beside the problem's
		// members, on the endpoints OAuth clients call (refresh, RFC 7009
		// revocation, RFC 7662 introspection).
		Error string `json:"error,omitempty"`
	}{Type: "about:blank", Title: p.Title, Status: p.Status, Code: string(p.Code), Detail: p.Detail, Instance: requestID(c)}
	if body.Instance != "" {
		body.Instance = "urn:request:" + body.Instance
	}
	if oauthEndpoint(c.FullPath()) {
		body.Error = oauthError(p)
	}
	c.Render(p.Status, problemJSON{body})
}

// oauthEndpoint reports whether route is one an OAuth client library calls.
func oauthEndpoint(route string) bool {
	switch route {
	case "/v1/token/refresh", "/v1/token/revoke", "/v1/token/introspect":
		return true
	}
	return false
}

// oauthError is the RFC 6749 §5.2 code of p.
func oauthError(p *Problem) string {
	switch {
	case p.Code == CodeInvalidClient:
		return "invalid_client"
	case p.Code == CodeInvalidGrant:
		return "invalid_grant"
	case p.Code == CodeInvalidDPoPProof, p.Code == CodeUseDPoPNonce:
		return string(p.Code)
	case p.Status == http.StatusServiceUnavailable:
		return "temporarily_unavailable"
	case p.Status >= 500:
		return "server_error"
	}
	return "invalid_request"
}

type problemJSON struct{ v any }

func (r problemJSON) Render(w http.ResponseWriter) error {
	r.WriteContentType(w)
	return jsonEncoder(w).Encode(r.v)
}

func (r problemJSON) WriteContentType(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/problem+json")
}

// sanitize keeps header parameter values free of quotes.
func sanitize(s string) string { return strings.NewReplacer(`"`, "", `\`, "").Replace(s) }
