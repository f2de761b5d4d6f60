package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/mfa"
)

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// signup creates an account: POST /v1/users.
func (s *Server) signup(c *gin.Context) {
	if !s.cfg.SignupOpen {
		_ = c.Error(problem(http.StatusForbidden, "signup_closed", "sign-up is closed on this service"))
		return
	}
	var req credentials
	if err := decode(c, &req); err != nil {
		_ = c.Error(err)
		return
	}
	name, err := mfa.CanonicalUsername(req.Username)
	if err != nil {
		_ = c.Error(err)
		return
	}
	pw, err := mfa.NormalizePassword(req.Password)
	if err != nil {
		_ = c.Error(err)
		return
	}
	ctx := c.Request.Context()
	hash, err := s.Password.Hash(ctx, pw)
	if err != nil {
		_ = c.Error(err)
		return
	}
	u := &mfa.User{ID: s.Rand(16), Username: name, PasswordHash: hash, CreatedAt: s.Now()}
	if err := s.Users.CreateUser(ctx, u); err != nil {
		_ = c.Error(err)
		return
	}
	c.Header("Location", "/v1/me")
	writeJSON(c, http.StatusCreated, gin.H{"id": u.ID, "username": u.Username})
}
