package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/api/flows"
)

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// tokenResponse is the answer of every completed authentication.
type tokenResponse struct {
	Status       string   `json:"status"`
	TokenType    string   `json:"token_type"`
	AccessToken  string   `json:"access_token"`
	ExpiresIn    int      `json:"expires_in"`
	RefreshToken string   `json:"refresh_token,omitempty"` // absent after a step-up: the session's token still works
	ACR          string   `json:"acr"`
	AMR          []string `json:"amr"`
	// RecoveryCodesLeft is set after a recovery code was used.
	RecoveryCodesLeft *int `json:"recovery_codes_remaining,omitempty"`
	// DeviceRemembered: remember_device was granted.
	DeviceRemembered bool `json:"device_remembered,omitempty"`
}

type mfaRequired struct {
	Status    string   `json:"status"`
	MFAToken  string   `json:"mfa_token"`
	ExpiresIn int      `json:"expires_in"`
	Factors   []string `json:"factors"`
}

// signup creates an account: POST /v1/users.
func (s *Server) signup(c *gin.Context) {
	var req credentials
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	if err := s.App.Anonymous(c.Request.Context(), flows.AnonSignUp, client(c)); err != nil {
		fail(c, err)
		return
	}
	u, err := s.App.SignUp(c.Request.Context(), client(c), req.Username, req.Password)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", "/v1/me")
	writeJSON(c, http.StatusCreated, gin.H{"id": u.ID, "username": u.Username})
}

// login is the password step: POST /v1/login.
func (s *Server) login(c *gin.Context) {
	var req credentials
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	out, err := s.App.Login(c.Request.Context(), client(c), req.Username, req.Password)
	if err != nil {
		fail(c, err)
		return
	}
	s.respondOutcome(c, out)
}

func (s *Server) respondOutcome(c *gin.Context, out *flows.Outcome) {
	if out.Pending != nil {
		writeJSON(c, http.StatusOK, mfaRequired{Status: "mfa_required", MFAToken: out.Pending.Token,
			ExpiresIn: ttl(out.Pending.Expiry, s.Now()), Factors: out.Pending.Factors})
		return
	}
	s.respondTokens(c, out.Tokens)
}

// respondTokens writes the token response; in cookie mode the refresh
// token goes into the __Host- cookie instead of the body.
func (s *Server) respondTokens(c *gin.Context, t *flows.Tokens) {
	sess := t.Session
	resp := tokenResponse{Status: "authenticated", TokenType: tokenType(t.JKT), AccessToken: t.Access,
		ExpiresIn: ttl(t.AccessExpiry, s.Now()), RefreshToken: t.Refresh, ACR: sess.ACR, AMR: sess.AMR,
		RecoveryCodesLeft: t.RecoveryLeft, DeviceRemembered: t.Remembered}
	if t.Refresh != "" && s.cookieMode(c) {
		s.setRefreshCookie(c, t.Refresh, sess.RefreshExpiresAt.Sub(s.Now()))
		resp.RefreshToken = ""
	}
	writeJSON(c, http.StatusOK, resp)
}
