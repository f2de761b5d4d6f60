package api

import (
	"errors"
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
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
	sess, next, err := s.Sessions.Rotate(c.Request.Context(), req.RefreshToken)
	if err != nil {
		if errors.Is(err, tokens.ErrRefreshReused) {
			s.m.issued.WithLabelValues("refresh", "reuse_detected").Inc()
			if sess != nil {
				s.event(c, sess.UserID, sess.ID, mfa.EventRefreshReuse, "session revoked")
			}
			s.log.Warn("refresh token reuse; session revoked", "request_id", requestID(c))
		}
		_ = c.Error(err)
		return
	}
	s.m.issued.WithLabelValues("refresh", "rotated").Inc()
	s.respondTokens(c, sess, next, http.StatusOK)
}
