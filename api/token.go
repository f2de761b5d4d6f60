package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/api/flows"
)

type refreshRequest struct {
	RefreshToken string `json:"refresh_token,omitempty"` // absent: the cookie
}

// refresh rotates a refresh token: POST /v1/token/refresh. The new access
// token keeps the session's auth_time, acr and amr; refresh never raises
// them. A rotated token presented again revokes the whole session.
func (s *Server) refresh(c *gin.Context) {
	var req refreshRequest
	switch mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type")); {
	case mt == "application/x-www-form-urlencoded":
		// RFC 6749 §6: grant_type=refresh_token&refresh_token=…
		form, err := readForm(c, "grant_type", "refresh_token")
		if err != nil {
			_ = c.Error(err)
			return
		}
		if form.Get("grant_type") != "refresh_token" {
			_ = c.Error(badRequest("grant_type must be refresh_token"))
			return
		}
		req.RefreshToken = form.Get("refresh_token")
	case c.Request.ContentLength != 0:
		if err := decode(c, &req); err != nil {
			_ = c.Error(err)
			return
		}
	}
	if req.RefreshToken == "" {
		tok, err := s.cookieRefresh(c)
		if err != nil {
			_ = c.Error(err)
			return
		}
		req.RefreshToken = tok
	}
	if len(req.RefreshToken) > 256 {
		_ = c.Error(badRequest("refresh_token is too long"))
		return
	}
	t, err := s.App.Refresh(c.Request.Context(), client(c), req.RefreshToken)
	if err != nil {
		fail(c, err)
		return
	}
	s.respondTokens(c, t)
}

// readForm parses an application/x-www-form-urlencoded body (RFC 7009 and
// 7662 requests) strictly: only the named parameters, each at most once.
func readForm(c *gin.Context, allowed ...string) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errNotForm
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, 16<<10)
	if err := c.Request.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errTooLarge
		}
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

// revoke is POST /v1/token/revoke (RFC 7009). Revoking either token of a
// session ends the session (§2.1 allows revoking the related tokens). The
// answer is 200 whether or not the token was known (§2.2).
func (s *Server) revoke(c *gin.Context) {
	token, err := readTokenForm(c)
	if err != nil {
		fail(c, err)
		return
	}
	if err := s.App.Revoke(c.Request.Context(), client(c), token); err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
}

// introspect is POST /v1/token/introspect (RFC 7662) for registered
// clients authenticated with HTTP Basic. Inactive, unknown and foreign
// tokens all answer {"active":false} (§2.2).
func (s *Server) introspect(c *gin.Context) {
	if err := s.App.Anonymous(c.Request.Context(), flows.AnonIntrospect, client(c)); err != nil {
		fail(c, err)
		return
	}
	id, secret, ok := c.Request.BasicAuth()
	if !ok || !s.clientOK(id, secret) {
		fail(c, errInvalidClient)
		return
	}
	token, err := readTokenForm(c)
	if err != nil {
		fail(c, err)
		return
	}
	info, err := s.App.Lookup(c.Request.Context(), token)
	if err != nil {
		fail(c, err)
		return
	}
	now := s.Now()
	if info == nil || !info.Session.Live(now) {
		writeJSON(c, http.StatusOK, gin.H{"active": false})
		return
	}
	sess := info.Session
	if info.Access == nil {
		if !now.Before(sess.RefreshExpiresAt) {
			writeJSON(c, http.StatusOK, gin.H{"active": false})
			return
		}
		out := gin.H{"active": true, "token_type": "refresh_token", "sub": sess.UserID,
			"sid": sess.ID, "exp": sess.RefreshExpiresAt.Unix(), "iat": sess.RefreshIssuedAt.Unix(), "iss": s.cfg.Issuer,
			"acr": sess.ACR, "amr": sess.AMR, "auth_time": sess.AuthTime.Unix()}
		confirm(out, sess.JKT)
		writeJSON(c, http.StatusOK, out)
		return
	}
	access := info.Access
	out := gin.H{"active": true, "token_type": tokenType(access.JKT), "iss": access.Issuer, "sub": access.Subject,
		"aud": access.Audience, "client_id": access.ClientID, "exp": access.Expiry.Unix(), "iat": access.IssuedAt.Unix(),
		"jti": access.ID, "sid": access.Session, "acr": access.ACR, "amr": access.AMR, "auth_time": access.AuthTime.Unix()}
	confirm(out, access.JKT)
	writeJSON(c, http.StatusOK, out)
}

// confirm adds the RFC 9449 §6.2 cnf member of a DPoP-bound token.
func confirm(out gin.H, jkt string) {
	if jkt != "" {
		out["cnf"] = gin.H{"jkt": jkt}
	}
}

// clientOK checks introspection client credentials in constant time.
func (s *Server) clientOK(id, secret string) bool {
	want, ok := s.cfg.IntrospectionClients[id]
	// Compared as SHA-256 digests: equal length, so the time taken does
	// not tell the secret's length either.
	got, exp := sha256.Sum256([]byte(secret)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(got[:], exp[:]) == 1 && ok
}
