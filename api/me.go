package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

type meView struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	SessionID string    `json:"sid"`
	ACR       string    `json:"acr"`
	AMR       []string  `json:"amr"`
	AuthTime  time.Time `json:"auth_time"`
}

// me is GET /v1/me: the caller and what the presented token says of them.
func (s *Server) me(c *gin.Context) {
	ac := accessClaims(c)
	u := s.caller(c)
	if u == nil {
		return
	}
	writeJSON(c, http.StatusOK, meView{ID: u.ID, Username: u.Username, SessionID: ac.Session, ACR: ac.ACR, AMR: ac.AMR,
		AuthTime: ac.AuthTime.UTC()})
}
