package api

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

type stepupRequest struct {
	ACRValues string  `json:"acr_values"`
	MaxAge    *int64  `json:"max_age,omitempty"`
	Password  *string `json:"password,omitempty"`
}

// stepup is POST /v1/stepup (RFC 9470 §4, OIDC acr_values/max_age
// semantics). If the session already meets the request, it answers with a
// new access token at once; otherwise with an mfa_token bound to the same
// session that offers only the factors able to reach the level.
//
// What the session proved counts towards the new level only while its
// authentication is within max_age; after that the step-up must prove a
// whole multi-factor authentication again: a key that verifies its user, or
// the password (re-entered in this request, counted against the password
// budget) and a second factor. The answer says password_required when only
// the latter can reach the level.
func (s *Server) stepup(c *gin.Context) {
	var req stepupRequest
	if err := decode(c, &req); err != nil {
		_ = c.Error(err)
		return
	}
	want, err := s.lowestACR(req.ACRValues)
	if err != nil {
		_ = c.Error(err)
		return
	}
	if req.MaxAge != nil && (*req.MaxAge < 0 || *req.MaxAge > 366*24*3600) {
		_ = c.Error(badRequest("max_age must be a number of seconds from 0 to one year"))
		return
	}
	var maxAge *time.Duration
	if req.MaxAge != nil {
		d := time.Duration(*req.MaxAge) * time.Second
		maxAge = &d
	}
	sess := c.MustGet(ctxSession).(*tokens.Session)
	now := s.Now()
	fresh := maxAge == nil || now.Sub(sess.AuthTime) <= *maxAge
	if s.Policy.Satisfies(sess.ACR, want) && fresh && req.Password == nil {
		s.m.stepups.WithLabelValues(want, sess.ACR).Inc()
		s.respondTokens(c, sess, "", http.StatusOK)
		return
	}
	ctx := c.Request.Context()
	u, err := s.Users.User(ctx, sess.UserID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	have := mfa.Counted(sess.AMR, sess.AuthTime, maxAge, now)
	if req.Password != nil {
		if err := s.checkPassword(c, u, *req.Password, sess.ID, "step-up"); err != nil {
			_ = c.Error(err)
			return
		}
		have = append(have, mfa.AMRPassword)
	}
	factors := s.Policy.Offered(u, want, have)
	if len(factors) == 0 {
		if req.Password == nil && len(s.Policy.Offered(u, want, append(have, mfa.AMRPassword))) > 0 {
			_ = c.Error(errPasswordRequired)
			return
		}
		_ = c.Error(problem(http.StatusForbidden, "unmet_authentication_requirements",
			"no enrolled factor can reach the requested authentication level"))
		return
	}
	pending := tokens.PendingClaims{Subject: u.ID, Session: sess.ID, ACR: want, AMR: have}
	if req.MaxAge != nil {
		pending.MaxAge = *req.MaxAge
	}
	tok, claims, err := s.Issuer.Pending(pending)
	if err != nil {
		_ = c.Error(err)
		return
	}
	writeJSON(c, http.StatusOK, mfaRequired{Status: "mfa_required", MFAToken: tok,
		ExpiresIn: ttl(claims.Expiry, now), Factors: factors})
}

// lowestACR parses space-separated acr values; any of them is acceptable,
// so on a ladder the lowest one decides.
func (s *Server) lowestACR(values string) (string, error) {
	fields := strings.Fields(values)
	if len(fields) == 0 || len(fields) > 3 {
		return "", badRequest("acr_values must hold one to three of " + strings.Join(s.Policy.Levels[:], ", "))
	}
	best := -1
	for _, v := range fields {
		l := s.Policy.Level(v)
		if l < 0 {
			return "", badRequest("unknown acr value; supported: " + strings.Join(s.Policy.Levels[:], ", "))
		}
		if best < 0 || l < best {
			best = l
		}
	}
	return s.Policy.Levels[best], nil
}

// assess combines what the mfa_token carries as still counted (the
// password just checked, or what a stepped-up session proved within
// max_age) with what this ceremony proved, and refuses a result below the
// level a step-up asked for.
func (s *Server) assess(pc tokens.PendingClaims, proved ...string) (mfa.Assurance, error) {
	a := s.Policy.Assess(append(slices.Clone(pc.AMR), proved...)...)
	if pc.ACR != "" && !s.Policy.Satisfies(a.ACR, pc.ACR) {
		return a, problem(http.StatusForbidden, "unmet_authentication_requirements",
			"that factor cannot reach the requested authentication level")
	}
	return a, nil
}
