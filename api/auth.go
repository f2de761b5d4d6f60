package api

import (
	"errors"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

const (
	ctxAccess  = "access_claims"
	ctxPending = "pending_claims"
	ctxSession = "session"
)

// bearer returns the RFC 6750 §2.1 token of the Authorization header.
func bearer(c *gin.Context) (string, bool) {
	h := c.GetHeader("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.ContainsAny(tok, " \t") {
		return "", false
	}
	return tok, true
}

// requireAccess admits a request only with a valid access token of a live
// session. An mfa_pending token, or any other kind, is refused here.
func (s *Server) requireAccess(c *gin.Context) {
	tok, ok := bearer(c)
	if !ok {
		p := invalidToken("an access token is required", nil)
		p.Challenge = `Bearer realm="stepup"`
		abort(c, p)
		return
	}
	claims, err := s.Verifier.Access(tok)
	if err != nil {
		abort(c, invalidToken("the access token is invalid or expired", err))
		return
	}
	sess, err := s.Sessions.Active(c.Request.Context(), claims.Session)
	if err != nil {
		if errors.Is(err, tokens.ErrSessionEnded) || errors.Is(err, tokens.ErrSessionNotFound) {
			abort(c, invalidToken("the session has ended", err))
			return
		}
		abort(c, err)
		return
	}
	c.Set(ctxAccess, claims)
	c.Set(ctxSession, sess)
	c.Next()
}

// requirePending admits a request only with a valid mfa_pending token
// addressed to the MFA endpoints; each endpoint refuses a used one.
func (s *Server) requirePending(c *gin.Context) {
	tok, ok := bearer(c)
	if !ok {
		p := invalidToken("an mfa_token is required", nil)
		p.Challenge = `Bearer realm="stepup"`
		abort(c, p)
		return
	}
	claims, err := s.Verifier.Pending(tok, s.cfg.MFAAudience)
	if err != nil {
		abort(c, invalidToken("the mfa_token is invalid or expired", err))
		return
	}
	// Whether it was used is checked by the step that spends it (its
	// budget document records consumption), saving a round trip.
	c.Set(ctxPending, claims)
	c.Next()
}

func abort(c *gin.Context, err error) {
	_ = c.Error(err)
	c.Abort()
}

func accessClaims(c *gin.Context) tokens.AccessClaims {
	return c.MustGet(ctxAccess).(tokens.AccessClaims)
}

func pendingClaims(c *gin.Context) tokens.PendingClaims {
	return c.MustGet(ctxPending).(tokens.PendingClaims)
}

// caller loads the user the access token names. On failure it records the
// error for the problem renderer and returns nil: the handler just returns.
func (s *Server) caller(c *gin.Context) *mfa.User {
	u, err := s.Users.User(c.Request.Context(), accessClaims(c).Subject)
	if err != nil {
		_ = c.Error(err)
		return nil
	}
	return u
}
