package api

import (
	"crypto/subtle"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

// logout is POST /v1/logout: it ends the caller's session — its refresh
// family and every access token carrying its sid, on every instance at once.
func (s *Server) logout(c *gin.Context) {
	ac := accessClaims(c)
	if err := s.Sessions.Revoke(c.Request.Context(), ac.Session); err != nil {
		_ = c.Error(err)
		return
	}
	s.event(c, ac.Subject, ac.Session, mfa.EventLogout, "")
	if _, err := c.Request.Cookie(refreshCookie); err == nil {
		s.clearRefreshCookie(c)
	}
	s.m.issued.WithLabelValues("session", "logout").Inc()
	c.Status(http.StatusNoContent)
}

// readForm parses an application/x-www-form-urlencoded body (RFC 7009 and
// 7662 requests) strictly: only the named parameters, each at most once.
func readForm(c *gin.Context, allowed ...string) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, problem(http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/x-www-form-urlencoded")
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, 16<<10)
	if err := c.Request.ParseForm(); err != nil {
		return nil, badRequest("the body is not a valid form")
	}
	form := c.Request.PostForm
	for k, v := range form {
		if !slices.Contains(allowed, k) {
			return nil, badRequest("unknown parameter " + sanitize(k))
		}
		if len(v) != 1 {
			return nil, badRequest("parameter " + sanitize(k) + " must appear once")
		}
	}
	return form, nil
}

// readTokenForm reads the RFC 7009 / RFC 7662 request: token (required)
// and token_type_hint (ignored: the token's form says what it is).
func readTokenForm(c *gin.Context) (string, error) {
	form, err := readForm(c, "token", "token_type_hint")
	if err != nil {
		return "", err
	}
	if form.Get("token") == "" {
		return "", badRequest("token is required")
	}
	return form.Get("token"), nil
}

// sessionOf finds the session a token belongs to: an access token of this
// issuer, else the current refresh token of a session. All nil for
// anything else.
func (s *Server) sessionOf(c *gin.Context, token string) (sess *tokens.Session, access *tokens.AccessClaims, refresh bool, err error) {
	ctx := c.Request.Context()
	if strings.Count(token, ".") == 2 {
		ac, err := s.Verifier.Access(token)
		if err != nil {
			return nil, nil, false, nil
		}
		sess, err := s.Sessions.Store.Session(ctx, ac.Session)
		if errors.Is(err, tokens.ErrSessionNotFound) {
			return nil, nil, false, nil
		}
		return sess, &ac, false, err
	}
	sess, err = s.Sessions.OfRefresh(ctx, token)
	if errors.Is(err, tokens.ErrRefreshUnknown) {
		return nil, nil, false, nil
	}
	return sess, nil, err == nil, err
}

// revoke is POST /v1/token/revoke (RFC 7009). Revoking either token of a
// session ends the session (§2.1 allows revoking the related tokens). The
// answer is 200 whether or not the token was known (§2.2).
func (s *Server) revoke(c *gin.Context) {
	token, err := readTokenForm(c)
	if err != nil {
		_ = c.Error(err)
		return
	}
	sess, _, _, err := s.sessionOf(c, token)
	if err != nil {
		_ = c.Error(err)
		return
	}
	if sess != nil {
		if err := s.Sessions.Revoke(c.Request.Context(), sess.ID); err != nil {
			_ = c.Error(err)
			return
		}
		s.m.issued.WithLabelValues("session", "revoked").Inc()
		s.event(c, sess.UserID, sess.ID, mfa.EventSessionRevoked, "RFC 7009")
	}
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
}

// introspect is POST /v1/token/introspect (RFC 7662) for registered
// clients authenticated with HTTP Basic. Inactive, unknown and foreign
// tokens all answer {"active":false} (§2.2).
func (s *Server) introspect(c *gin.Context) {
	id, secret, ok := c.Request.BasicAuth()
	if !ok || !s.clientOK(id, secret) {
		c.Header("WWW-Authenticate", `Basic realm="stepup introspection"`)
		_ = c.Error(problem(http.StatusUnauthorized, "invalid_client", "client authentication failed"))
		return
	}
	token, err := readTokenForm(c)
	if err != nil {
		_ = c.Error(err)
		return
	}
	sess, access, refresh, err := s.sessionOf(c, token)
	if err != nil {
		_ = c.Error(err)
		return
	}
	now := s.Now()
	if sess == nil || !sess.Live(now) {
		writeJSON(c, http.StatusOK, gin.H{"active": false})
		return
	}
	if refresh {
		if !sess.RefreshLive(sess.RefreshHash, now) {
			writeJSON(c, http.StatusOK, gin.H{"active": false})
			return
		}
		exp := sess.RefreshExpiresAt
		if exp.After(sess.ExpiresAt) {
			exp = sess.ExpiresAt
		}
		writeJSON(c, http.StatusOK, gin.H{"active": true, "token_type": "refresh_token", "sub": sess.UserID,
			"sid": sess.ID, "exp": exp.Unix(), "iat": sess.RefreshIssuedAt.Unix(), "iss": s.cfg.Issuer,
			"acr": sess.ACR, "amr": sess.AMR, "auth_time": sess.AuthTime.Unix()})
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"active": true, "token_type": "Bearer", "iss": access.Issuer, "sub": access.Subject,
		"aud": access.Audience, "client_id": access.ClientID, "exp": access.Expiry.Unix(), "iat": access.IssuedAt.Unix(),
		"jti": access.ID, "sid": access.Session, "acr": access.ACR, "amr": access.AMR, "auth_time": access.AuthTime.Unix()})
}

// clientOK checks introspection client credentials in constant time.
func (s *Server) clientOK(id, secret string) bool {
	want, ok := s.cfg.IntrospectionClients[id]
	return ok && subtle.ConstantTimeCompare([]byte(want), []byte(secret)) == 1
}
