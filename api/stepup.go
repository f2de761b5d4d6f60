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
	ACRValues string `json:"acr_values"`
	MaxAge    *int64 `json:"max_age,omitempty"`
}

// stepup is POST /v1/stepup (RFC 9470 §4, OIDC acr_values/max_age
// semantics). If the session already meets the request, it answers with a
// new access token at once; otherwise with an mfa_token bound to the same
// session that offers only the factors able to reach the level.
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
	sess := c.MustGet(ctxSession).(*tokens.Session)
	now := s.Now()
	fresh := req.MaxAge == nil || now.Sub(sess.AuthTime) <= time.Duration(*req.MaxAge)*time.Second
	if s.Policy.Satisfies(sess.ACR, want) && fresh {
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
	factors := s.Policy.Reachable(u, want)
	if len(factors) == 0 {
		_ = c.Error(problem(http.StatusForbidden, "unmet_authentication_requirements",
			"no enrolled factor can reach the requested authentication level"))
		return
	}
	pending := tokens.PendingClaims{Subject: u.ID, Session: sess.ID, ACR: want}
	if slices.Contains(sess.AMR, mfa.AMRPassword) {
		pending.AMR = []string{mfa.AMRPassword}
	}
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

// stepupAssurance adjusts what a second factor proved for the mfa_token it
// answered: pwd only when the password was proved in this flow, and the
// level must reach what a step-up asked for.
func (s *Server) stepupAssurance(pc tokens.PendingClaims, a mfa.Assurance) (mfa.Assurance, error) {
	if !slices.Contains(pc.AMR, mfa.AMRPassword) {
		a.AMR = slices.DeleteFunc(slices.Clone(a.AMR), func(m string) bool { return m == mfa.AMRPassword })
	}
	if pc.ACR != "" && !s.Policy.Satisfies(a.ACR, pc.ACR) {
		return a, problem(http.StatusForbidden, "unmet_authentication_requirements",
			"that factor cannot reach the requested authentication level")
	}
	return a, nil
}
