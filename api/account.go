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
	cl := caller(c)
	u, err := s.App.Me(c.Request.Context(), cl)
	if err != nil {
		fail(c, err)
		return
	}
	ac := cl.Claims
	writeJSON(c, http.StatusOK, meView{ID: u.ID, Username: u.Username, SessionID: ac.Session, ACR: ac.ACR, AMR: ac.AMR,
		AuthTime: ac.AuthTime.UTC()})
}

type eventView struct {
	Type      string    `json:"type"`
	Detail    string    `json:"detail,omitempty"`
	At        time.Time `json:"at"`
	SessionID string    `json:"sid,omitempty"`
	IP        string    `json:"ip,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
}

// myEvents is GET /v1/me/events: the caller's 50 most recent events.
func (s *Server) myEvents(c *gin.Context) {
	evs, err := s.App.Events(c.Request.Context(), caller(c).Claims.Subject, 50)
	if err != nil {
		fail(c, err)
		return
	}
	out := make([]eventView, len(evs))
	for i, e := range evs {
		out[i] = eventView{Type: e.Type, Detail: e.Detail, At: e.At.UTC(), SessionID: e.SessionID, IP: e.IP, UserAgent: e.UserAgent}
	}
	writeJSON(c, http.StatusOK, gin.H{"events": out})
}

type passwordChange struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// changePassword is POST /v1/me/password.
func (s *Server) changePassword(c *gin.Context) {
	var req passwordChange
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	if err := s.App.ChangePassword(c.Request.Context(), caller(c), req.CurrentPassword, req.NewPassword); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
