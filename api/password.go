package api

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/mfa"
)

type passwordChange struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// changePassword is POST /v1/me/password. It needs the current password
// (counted against the username's password budget) and, for a user with a
// second factor, a fresh aal2 session; it ends the user's other sessions.
func (s *Server) changePassword(c *gin.Context) {
	var req passwordChange
	if err := decode(c, &req); err != nil {
		_ = c.Error(err)
		return
	}
	next, err := mfa.NormalizePassword(req.NewPassword)
	if err != nil {
		_ = c.Error(err)
		return
	}
	ac := accessClaims(c)
	ctx := c.Request.Context()
	u := s.caller(c)
	if u == nil {
		return
	}
	if err := s.require(c, u, mfa.ChangePassword, nil); err != nil {
		_ = c.Error(err)
		return
	}
	if err := s.checkPassword(c, u, req.CurrentPassword, ac.Session, "password change"); err != nil {
		_ = c.Error(err)
		return
	}
	hash, err := s.Password.Hash(ctx, next)
	if err != nil {
		_ = c.Error(err)
		return
	}
	u.PasswordHash = hash
	if err := s.Users.SetPassword(ctx, u.ID, hash); err != nil {
		_ = c.Error(err)
		return
	}
	if err := s.Sessions.Store.RevokeUserSessions(context.WithoutCancel(ctx), u.ID, ac.Session, s.Now()); err != nil {
		_ = c.Error(err)
		return
	}
	s.event(c, u.ID, ac.Session, mfa.EventPasswordChanged, "other sessions ended")
	c.Status(http.StatusNoContent)
}
