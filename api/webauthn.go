package api

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
)

// publicKeyCredential is the PublicKeyCredential JSON a browser's
// toJSON() produces (WebAuthn Level 3 §5.1.8), decoded strictly at the top
// level; response and clientExtensionResults are checked by go-webauthn.
type publicKeyCredential struct {
	ID                      string          `json:"id"`
	RawID                   string          `json:"rawId"`
	Type                    string          `json:"type"`
	Response                json.RawMessage `json:"response"`
	ClientExtensionResults  json.RawMessage `json:"clientExtensionResults,omitempty"`
	AuthenticatorAttachment string          `json:"authenticatorAttachment,omitempty"`
	Name                    string          `json:"name,omitempty"` // registration only
	// RememberDevice: second factor only (see verifyRequest).
	RememberDevice bool `json:"remember_device,omitempty"`
}

// decodeCredential decodes the body and returns it re-encoded without name.
func decodeCredential(c *gin.Context, registering bool) ([]byte, string, error) {
	raw, name, remember, err := decodePKC(c, registering)
	if err == nil && remember {
		err = badRequest("unknown field \"remember_device\"")
	}
	return raw, name, err
}

// decodeAssertion decodes a second factor's assertion and its
// remember_device member; the body is returned without it.
func decodeAssertion(c *gin.Context) ([]byte, bool, error) {
	raw, _, remember, err := decodePKC(c, false)
	return raw, remember, err
}

func decodePKC(c *gin.Context, registering bool) ([]byte, string, bool, error) {
	var pkc publicKeyCredential
	if err := decode(c, &pkc); err != nil {
		return nil, "", false, err
	}
	// response must be an object; members inside it are go-webauthn's to
	// check (browsers' toJSON() adds some).
	if pkc.ID == "" || pkc.RawID == "" || pkc.Type != "public-key" || !bytes.HasPrefix(bytes.TrimSpace(pkc.Response), []byte("{")) {
		return nil, "", false, badRequest("a PublicKeyCredential needs id, rawId, type \"public-key\" and response")
	}
	if pkc.Name != "" && !registering {
		return nil, "", false, badRequest("unknown field \"name\"")
	}
	name, remember := pkc.Name, pkc.RememberDevice
	pkc.Name, pkc.RememberDevice = "", false
	raw, err := json.Marshal(pkc)
	if err != nil {
		return nil, "", false, err
	}
	return raw, name, remember, nil
}

// webauthnRegisterOptions is POST /v1/me/factors/webauthn/options.
func (s *Server) webauthnRegisterOptions(c *gin.Context) {
	if err := emptyBody(c); err != nil {
		fail(c, err)
		return
	}
	o, err := s.App.WebAuthnRegisterOptions(c.Request.Context(), caller(c))
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, o)
}

// webauthnRegister is POST /v1/me/factors/webauthn: it verifies the
// attestation and adds the security key or passkey as a confirmed factor.
func (s *Server) webauthnRegister(c *gin.Context) {
	body, name, err := decodeCredential(c, true)
	if err != nil {
		fail(c, err)
		return
	}
	f, codes, err := s.App.RegisterWebAuthn(c.Request.Context(), caller(c), name, body)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", "/v1/me/factors/"+f.ID)
	writeFactor(c, f, codes, http.StatusCreated)
}

// emptyBody accepts no body or an empty JSON object.
func emptyBody(c *gin.Context) error {
	if c.Request.ContentLength == 0 {
		return nil
	}
	var v struct{}
	return decode(c, &v)
}
