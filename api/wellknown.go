package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/tokens"
)

// jwks is GET /.well-known/jwks.json: public members only (RFC 7517).
// It reloads the keys first (at most once a second), so it lists keys other
// instances created since this one's last refresh.
func (s *Server) jwks(c *gin.Context) {
	s.Keys.Reload()
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/jwk-set+json", s.Keys.JWKS())
}

// metadata is GET /.well-known/oauth-authorization-server (RFC 8414), with
// this service's own endpoints under stepup_* names.
func (s *Server) metadata(c *gin.Context) {
	iss := s.cfg.Issuer
	c.Header("Cache-Control", "public, max-age=300")
	c.JSON(http.StatusOK, gin.H{
		"issuer":                                         iss,
		"jwks_uri":                                       iss + "/.well-known/jwks.json",
		"token_endpoint":                                 iss + "/v1/token/refresh",
		"grant_types_supported":                          []string{"refresh_token"},
		"token_endpoint_auth_methods_supported":          []string{"none"},
		"response_types_supported":                       []string{},
		"revocation_endpoint":                            iss + "/v1/token/revoke",
		"revocation_endpoint_auth_methods_supported":     []string{"none"},
		"introspection_endpoint":                         iss + "/v1/token/introspect",
		"introspection_endpoint_auth_methods_supported":  []string{"client_secret_basic"},
		"acr_values_supported":                           s.Policy.Levels[:],
		"dpop_signing_alg_values_supported":              tokens.DPoPAlgs,
		"authorization_response_iss_parameter_supported": false,
		"stepup_login_endpoint":                          iss + "/v1/login",
		"stepup_stepup_endpoint":                         iss + "/v1/stepup",
		"stepup_mfa_endpoints": gin.H{
			"totp":             iss + "/v1/mfa/totp/verify",
			"webauthn_options": iss + "/v1/mfa/webauthn/options",
			"webauthn":         iss + "/v1/mfa/webauthn/verify",
			"recovery":         iss + "/v1/mfa/recovery/verify",
		},
		"stepup_passkey_endpoints": gin.H{
			"options": iss + "/v1/passkeys/options",
			"verify":  iss + "/v1/passkeys/verify",
		},
		"stepup_mfa_audience": s.cfg.MFAAudience,
	})
}
