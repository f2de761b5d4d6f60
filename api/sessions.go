package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/tokens"
)

// sessionFields is a session as its user ("your devices") and an
// administrator see it. The user agent and address are what the client
// sent when it signed in: shown, never trusted.
type sessionFields struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	AuthTime   time.Time `json:"auth_time"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	ACR        string    `json:"acr"`
	AMR        []string  `json:"amr"`
}

func viewSession(x *tokens.Session) sessionFields {
	amr := x.AMR
	if amr == nil {
		amr = []string{}
	}
	return sessionFields{ID: x.ID, CreatedAt: x.CreatedAt.UTC(), LastUsedAt: x.LastUsed().UTC(), ExpiresAt: x.ExpiresAt.UTC(),
		AuthTime: x.AuthTime.UTC(), UserAgent: x.Device.UserAgent, IP: x.Device.IP, ACR: x.ACR, AMR: amr}
}

// sessionView is one of the caller's sessions, marked if it is the
// caller's own.
type sessionView struct {
	sessionFields
	Current bool `json:"current"`
}

// mySessions is GET /v1/me/sessions: the caller's live sessions, oldest
// first, the caller's own marked current.
func (s *Server) mySessions(c *gin.Context) {
	ss, err := s.App.MySessions(c.Request.Context(), caller(c))
	if err != nil {
		fail(c, err)
		return
	}
	out := make([]sessionView, len(ss))
	for i, x := range ss {
		out[i] = sessionView{sessionFields: viewSession(x.Session), Current: x.Current}
	}
	writeJSON(c, http.StatusOK, gin.H{"items": out})
}

// endMySession is DELETE /v1/me/sessions/{id}: the caller's own session is
// a logout; another needs what the policy requires.
func (s *Server) endMySession(c *gin.Context) {
	cl := caller(c)
	sid := c.Param("id")
	if err := s.App.EndMySession(c.Request.Context(), cl, sid); err != nil {
		fail(c, err)
		return
	}
	if sid == cl.Session.ID {
		s.clearCookieIfSent(c)
	}
	c.Status(http.StatusNoContent)
}

type logoutRequest struct {
	All bool `json:"all,omitempty"`
}

// logout is POST /v1/logout: it ends the caller's session — its refresh
// family and every access token carrying its sid, on every instance at
// once — or, with {"all": true}, every session of the user. No body and
// {} are the caller's session alone.
func (s *Server) logout(c *gin.Context) {
	var req logoutRequest
	if c.Request.ContentLength != 0 {
		if err := decode(c, &req); err != nil {
			fail(c, err)
			return
		}
	}
	logout := s.App.Logout
	if req.All {
		logout = s.App.LogoutAll
	}
	if err := logout(c.Request.Context(), caller(c)); err != nil {
		fail(c, err)
		return
	}
	s.clearCookieIfSent(c)
	c.Status(http.StatusNoContent)
}

type deleteAccountRequest struct {
	Password string `json:"password"`
}

// deleteMe is DELETE /v1/me: the account goes, with the password
// re-entered and what the policy requires.
func (s *Server) deleteMe(c *gin.Context) {
	var req deleteAccountRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	if err := s.App.DeleteMe(c.Request.Context(), caller(c), req.Password); err != nil {
		fail(c, err)
		return
	}
	s.clearCookieIfSent(c)
	c.Status(http.StatusNoContent)
}

func (s *Server) clearCookieIfSent(c *gin.Context) {
	if _, err := c.Request.Cookie(refreshCookie); err == nil {
		s.clearRefreshCookie(c)
	}
}
