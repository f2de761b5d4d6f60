package api

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/api/flows"
	"github.com/stepup-auth/stepup/tokens"
)

type codeRequest struct {
	Code string `json:"code"`
}

// verifyRequest is a code as a second factor.
type verifyRequest struct {
	Code string `json:"code"`
	// RememberDevice asks to remember the DPoP key of this request's
	// proof: its next password sign-in skips the second factor.
	RememberDevice bool `json:"remember_device,omitempty"`
}

// verifyTOTP is the TOTP second factor: POST /v1/mfa/totp/verify.
func (s *Server) verifyTOTP(c *gin.Context) { s.verifyCode(c, s.App.VerifyTOTP) }

// verifyRecovery is a recovery code as the second factor:
// POST /v1/mfa/recovery/verify.
func (s *Server) verifyRecovery(c *gin.Context) { s.verifyCode(c, s.App.VerifyRecovery) }

// verifyCode decodes a code (and whether to remember this device) and
// answers with the tokens verify issues for it.
func (s *Server) verifyCode(c *gin.Context, verify func(context.Context, flows.Client, tokens.PendingClaims, string) (*flows.Tokens, error)) {
	var req verifyRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	cl := client(c)
	cl.RememberDevice = req.RememberDevice
	t, err := verify(c.Request.Context(), cl, pendingClaims(c), req.Code)
	if err != nil {
		fail(c, err)
		return
	}
	s.respondTokens(c, t)
}

// webauthnOptions is POST /v1/mfa/webauthn/options: request options listing
// the user's credentials, bound to the mfa_token.
func (s *Server) webauthnOptions(c *gin.Context) {
	if err := emptyBody(c); err != nil {
		fail(c, err)
		return
	}
	o, err := s.App.WebAuthnOptions(c.Request.Context(), pendingClaims(c))
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, o)
}

// webauthnVerify is POST /v1/mfa/webauthn/verify: the assertion as second
// factor.
func (s *Server) webauthnVerify(c *gin.Context) {
	body, remember, err := decodeAssertion(c)
	if err != nil {
		fail(c, err)
		return
	}
	cl := client(c)
	cl.RememberDevice = remember
	t, err := s.App.VerifyWebAuthn(c.Request.Context(), cl, pendingClaims(c), body)
	if err != nil {
		fail(c, err)
		return
	}
	s.respondTokens(c, t)
}

// passkeyOptions is POST /v1/passkeys/options: a usernameless ceremony.
func (s *Server) passkeyOptions(c *gin.Context) {
	if err := emptyBody(c); err != nil {
		fail(c, err)
		return
	}
	if err := s.App.Anonymous(c.Request.Context(), flows.AnonPasskey, client(c)); err != nil {
		fail(c, err)
		return
	}
	o, err := s.App.PasskeyOptions(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, o)
}

// passkeyVerify is POST /v1/passkeys/verify: a passkey with user
// verification is both factors at once.
func (s *Server) passkeyVerify(c *gin.Context) {
	body, _, err := decodeCredential(c, false)
	if err != nil {
		fail(c, err)
		return
	}
	t, err := s.App.VerifyPasskey(c.Request.Context(), client(c), body)
	if err != nil {
		fail(c, err)
		return
	}
	s.respondTokens(c, t)
}
