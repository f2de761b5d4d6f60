package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/mfa"
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
}

// decodeCredential decodes the body and returns it re-encoded without name.
func decodeCredential(c *gin.Context, registering bool) ([]byte, string, error) {
	var pkc publicKeyCredential
	if err := decode(c, &pkc); err != nil {
		return nil, "", err
	}
	// response must be an object; members inside it are go-webauthn's to
	// check (browsers' toJSON() adds some).
	if pkc.ID == "" || pkc.RawID == "" || pkc.Type != "public-key" || !bytes.HasPrefix(bytes.TrimSpace(pkc.Response), []byte("{")) {
		return nil, "", badRequest("a PublicKeyCredential needs id, rawId, type \"public-key\" and response")
	}
	if pkc.Name != "" && !registering {
		return nil, "", badRequest("unknown field \"name\"")
	}
	name := pkc.Name
	pkc.Name = ""
	raw, err := json.Marshal(pkc)
	if err != nil {
		return nil, "", err
	}
	return raw, name, nil
}

// ceremonyFailed maps every WebAuthn failure to one answer: the response
// never says why an assertion failed.
func ceremonyFailed(err error) error {
	if errors.Is(err, mfa.ErrCeremony) {
		return &Problem{Status: http.StatusUnauthorized, Code: "mfa_failed", Title: http.StatusText(http.StatusUnauthorized),
			Detail: "the security key or passkey was not accepted", Challenge: `Bearer realm="stepup"`, Err: err}
	}
	return err
}

// webauthnRegisterOptions is POST /v1/me/factors/webauthn/options.
func (s *Server) webauthnRegisterOptions(c *gin.Context) {
	if err := emptyBody(c); err != nil {
		_ = c.Error(err)
		return
	}
	ac := accessClaims(c)
	ctx := c.Request.Context()
	u := s.caller(c)
	if u == nil {
		return
	}
	if err := s.mayEnroll(c, u); err != nil {
		_ = c.Error(err)
		return
	}
	creation, err := s.WebAuthn.BeginRegistration(ctx, u, ac.Session)
	if err != nil {
		_ = c.Error(err)
		return
	}
	writeJSON(c, http.StatusOK, creation)
}

// webauthnRegister is POST /v1/me/factors/webauthn: it verifies the
// attestation and adds the security key or passkey as a confirmed factor.
func (s *Server) webauthnRegister(c *gin.Context) {
	body, rawName, err := decodeCredential(c, true)
	if err != nil {
		_ = c.Error(err)
		return
	}
	name, err := factorName(rawName, "Security key")
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
	if err := s.mayEnroll(c, u); err != nil {
		_ = c.Error(err)
		return
	}
	cred, err := s.WebAuthn.FinishRegistration(ctx, u, ac.Session, body)
	if err != nil {
		s.m.verifies.WithLabelValues("webauthn_register", "failure").Inc()
		if errors.Is(err, mfa.ErrCredTaken) {
			_ = c.Error(problem(http.StatusConflict, "conflict", "this credential is registered already"))
			return
		}
		_ = c.Error(notTheToken(ceremonyFailed(err)))
		return
	}
	f := mfa.Factor{ID: s.Rand(12), Kind: mfa.KindWebAuthn, Name: name, Confirmed: true, CreatedAt: s.Now(), Credential: cred,
		AddedBy: ac.Session}
	first := len(u.Confirmed("")) == 0
	u.Factors = append(u.Factors, f)
	if err := s.Users.AddFactor(ctx, u.ID, f, maxFactors, s.Now().Add(-enrollmentWindow)); err != nil {
		_ = s.WebAuthn.Ceremonies.ReleaseCredential(context.WithoutCancel(ctx), cred.ID)
		_ = c.Error(err)
		return
	}
	s.m.verifies.WithLabelValues("webauthn_register", "success").Inc()
	s.event(c, u.ID, ac.Session, mfa.EventFactorAdded, "webauthn "+f.ID)
	c.Header("Location", "/v1/me/factors/"+f.ID)
	s.writeFactor(c, u, &f, first, http.StatusCreated)
}

// webauthnOptions is POST /v1/mfa/webauthn/options: request options listing
// the user's credentials, bound to the mfa_token.
func (s *Server) webauthnOptions(c *gin.Context) {
	if err := emptyBody(c); err != nil {
		_ = c.Error(err)
		return
	}
	pc := pendingClaims(c)
	ctx := c.Request.Context()
	if used, err := s.Pending.Consumed(ctx, pc.ID); err != nil || used {
		if err == nil {
			err = invalidToken("the mfa_token has been used", nil)
		}
		_ = c.Error(err)
		return
	}
	u, err := s.Users.User(ctx, pc.Subject)
	if err != nil {
		_ = c.Error(err)
		return
	}
	// A step-up to the top level offers only device-bound keys; when nothing
	// known counts any more (no password in this flow), the key must verify
	// its user to be a second factor of its own.
	deviceBound := pc.ACR != "" && s.Policy.Level(pc.ACR) >= 2
	requireUV := !slices.Contains(pc.AMR, mfa.AMRPassword) && !slices.Contains(pc.AMR, mfa.AMRUser)
	assertion, err := s.WebAuthn.BeginLogin(ctx, u, pc.ID, deviceBound, requireUV)
	if err != nil {
		_ = c.Error(err)
		return
	}
	writeJSON(c, http.StatusOK, assertion)
}

// webauthnVerify is POST /v1/mfa/webauthn/verify: the assertion as second
// factor. acr and amr follow this assertion's BE and UV flags.
func (s *Server) webauthnVerify(c *gin.Context) {
	body, _, err := decodeCredential(c, false)
	if err != nil {
		_ = c.Error(err)
		return
	}
	pc := pendingClaims(c)
	ctx := c.Request.Context()
	u, err := s.spendAttempt(c, pc)
	if err != nil {
		_ = c.Error(err)
		return
	}
	_, a, err := s.WebAuthn.FinishLogin(ctx, u, pc.ID, body)
	if err != nil {
		s.m.verifies.WithLabelValues("webauthn", "failure").Inc()
		s.event(c, u.ID, pc.Session, mfa.EventMFAFailure, "webauthn")
		_ = c.Error(ceremonyFailed(err))
		return
	}
	s.m.verifies.WithLabelValues("webauthn", "success").Inc()
	s.finishSecondFactor(c, pc, u, a.Methods()...)
}

// passkeyOptions is POST /v1/passkeys/options: a usernameless ceremony.
func (s *Server) passkeyOptions(c *gin.Context) {
	if err := emptyBody(c); err != nil {
		_ = c.Error(err)
		return
	}
	assertion, err := s.WebAuthn.BeginPasskey(c.Request.Context())
	if err != nil {
		_ = c.Error(err)
		return
	}
	writeJSON(c, http.StatusOK, assertion)
}

// passkeyVerify is POST /v1/passkeys/verify: a passkey with user
// verification is both factors at once.
func (s *Server) passkeyVerify(c *gin.Context) {
	body, _, err := decodeCredential(c, false)
	if err != nil {
		_ = c.Error(err)
		return
	}
	ctx := c.Request.Context()
	u, _, a, err := s.WebAuthn.FinishPasskey(ctx, body)
	if err != nil {
		s.m.verifies.WithLabelValues("passkey", "failure").Inc()
		_ = c.Error(ceremonyFailed(err))
		return
	}
	s.m.verifies.WithLabelValues("passkey", "success").Inc()
	s.complete(c, u.ID, s.Now(), s.Policy.Passkey(a), http.StatusOK)
}

// emptyBody accepts no body or an empty JSON object.
func emptyBody(c *gin.Context) error {
	if c.Request.ContentLength == 0 {
		return nil
	}
	var v struct{}
	return decode(c, &v)
}
