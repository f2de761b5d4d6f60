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

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

// Problem is an RFC 9457 problem detail with a stable machine code. Detail
// is written for the client and never carries an internal error; Err is the
// cause, logged once with the request id and never sent.
type Problem struct {
	Status     int    `json:"status"`
	Code       string `json:"code"`
	Title      string `json:"title"`
	Detail     string `json:"detail,omitempty"`
	RetryAfter int    `json:"-"`
	// Challenge is a WWW-Authenticate value for 401 answers.
	Challenge string `json:"-"`
	Err       error  `json:"-"`
}

func (p *Problem) Error() string {
	if p.Err != nil {
		return p.Code + ": " + p.Err.Error()
	}
	return p.Code + ": " + p.Detail
}

func (p *Problem) Unwrap() error { return p.Err }

// notTheToken turns a 401 for a failed factor or password into a 400 on
// routes where the bearer access token itself was fine, so an RFC 6750
// client does not take it for a bad token.
func notTheToken(err error) error {
	p := toProblem(err)
	if p.Status == http.StatusUnauthorized && p.Code != "invalid_token" && p.Code != "insufficient_user_authentication" {
		q := *p
		q.Status, q.Title, q.Challenge = http.StatusBadRequest, http.StatusText(http.StatusBadRequest), ""
		return &q
	}
	return err
}

func problem(status int, code, detail string) *Problem {
	return &Problem{Status: status, Code: code, Title: http.StatusText(status), Detail: detail}
}

func badRequest(detail string) *Problem {
	return problem(http.StatusBadRequest, "invalid_request", detail)
}

// bearerChallenge is the RFC 6750 §3 challenge for a bad or missing token.
func invalidToken(detail string, err error) *Problem {
	p := problem(http.StatusUnauthorized, "invalid_token", detail)
	p.Challenge = `Bearer error="invalid_token", error_description="` + detail + `"`
	p.Err = err
	return p
}

// insufficient is the RFC 9470 §3 challenge.
func insufficient(acr string, maxAge int) *Problem {
	p := problem(http.StatusUnauthorized, "insufficient_user_authentication",
		"a more recent or stronger authentication is required")
	p.Challenge = `Bearer error="insufficient_user_authentication", error_description="a more recent or stronger authentication is required", acr_values="` +
		acr + `", max_age="` + strconv.Itoa(maxAge) + `"`
	return p
}

// toProblem maps domain errors to problems: the one table of sentinel →
// status and code.
func toProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var down interface{ Unavailable() bool }
	if errors.As(err, &down) && down.Unavailable() {
		p = problem(http.StatusServiceUnavailable, "unavailable", "the service's store is unreachable; retry shortly")
		p.RetryAfter = 2
		p.Err = err
		return p
	}
	var th *mfa.ThrottledError
	if errors.As(err, &th) {
		if th.Locked {
			p = problem(http.StatusTooManyRequests, "account_locked",
				"too many failed attempts; the account is locked until an administrator unlocks it")
		} else {
			p = problem(http.StatusTooManyRequests, "rate_limited", "too many failed attempts; retry later")
			p.RetryAfter = max(1, int(th.RetryAfter.Seconds()+0.999))
		}
		return p
	}
	switch {
	case errors.Is(err, mfa.ErrBadCredentials):
		p = problem(http.StatusUnauthorized, "invalid_credentials", "the username or password is wrong")
		p.Challenge = `Bearer realm="stepup"`
	case errors.Is(err, mfa.ErrBadCode):
		p = problem(http.StatusUnauthorized, "mfa_failed", "the second factor was not accepted")
		p.Challenge = `Bearer realm="stepup"`
	case errors.Is(err, mfa.ErrMalformedRecovery):
		p = badRequest("a recovery code is 16 letters and digits, as shown, in groups of four")
	case errors.Is(err, mfa.ErrMalformedCode):
		p = badRequest("code must be a string of exactly the configured number of digits")
	case errors.Is(err, mfa.ErrInvalidUsername):
		p = badRequest("username must be 1–128 printable characters without spaces")
	case errors.Is(err, mfa.ErrInvalidPassword):
		p = badRequest(fmt.Sprintf("password must be %d–%d characters", mfa.MinPasswordLen, mfa.MaxPasswordLen))
	case errors.Is(err, mfa.ErrUsernameTaken):
		p = problem(http.StatusConflict, "conflict", "that username is taken")
	case errors.Is(err, mfa.ErrAlreadyConfirmed):
		p = problem(http.StatusConflict, "conflict", "the factor is confirmed already")
	case errors.Is(err, mfa.ErrTooManyFactors):
		p = problem(http.StatusConflict, "conflict", "too many factors; remove one first")
	case errors.Is(err, mfa.ErrNotEnrolled), errors.Is(err, mfa.ErrNotFound):
		p = problem(http.StatusNotFound, "not_found", "no such resource")
	case errors.Is(err, mfa.ErrBusy):
		p = problem(http.StatusServiceUnavailable, "overloaded", "too many sign-ins at once; retry shortly")
		p.RetryAfter = 1
	case errors.Is(err, tokens.ErrRefreshUnknown), errors.Is(err, tokens.ErrRefreshReused),
		errors.Is(err, tokens.ErrSessionEnded), errors.Is(err, tokens.ErrSessionNotFound):
		p = problem(http.StatusBadRequest, "invalid_grant", "the refresh token is invalid, expired or revoked")
	case errors.Is(err, tokens.ErrInvalidToken):
		p = invalidToken("the token is invalid or expired", nil)
	case errors.Is(err, context.DeadlineExceeded):
		p = problem(http.StatusServiceUnavailable, "unavailable", "the service is temporarily unavailable")
		p.RetryAfter = 1
	default:
		p = problem(http.StatusInternalServerError, "internal_error", "an internal error occurred")
	}
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
	}{Type: "about:blank", Title: p.Title, Status: p.Status, Code: p.Code, Detail: p.Detail, Instance: requestID(c)}
	if body.Instance != "" {
		body.Instance = "urn:request:" + body.Instance
	}
	c.Render(p.Status, problemJSON{body})
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
