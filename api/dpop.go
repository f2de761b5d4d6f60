package api

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/api/flows"
	"github.com/stepup-auth/stepup/tokens"
	"github.com/stepup-auth/stepup/tokens/guard"
)

// DPoP (RFC 9449) at the HTTP edge: the DPoP header is read here and
// checked by flows.App.Proof against the public URL of the request — the
// configured issuer and the path, never the Host header — and the proof
// travels to the flows in flows.Client.

const (
	dpopHeader  = "DPoP"
	nonceHeader = "DPoP-Nonce"
	ctxProof    = "dpop_proof"
)

// withProof checks the DPoP proof of a token-issuing request that carries
// no token (sign-in, passkey sign-in, refresh).
func (s *Server) withProof(c *gin.Context) {
	p, err := s.proof(c, "")
	if err != nil {
		abort(c, err)
		return
	}
	c.Set(ctxProof, p)
	c.Next()
}

// proof checks and uses up the request's DPoP proof; accessToken is the
// token sent with the DPoP scheme (its hash must be the proof's ath), or
// "". Nil and no error without a proof. With server nonces on, every
// answer to a request that carries a proof (or must) names the current
// nonce.
func (s *Server) proof(c *gin.Context, accessToken string) (*flows.Proof, error) {
	p, err := s.checkProof(c, accessToken)
	if err != nil || p == nil {
		return p, err
	}
	if err := s.App.UseProof(c.Request.Context(), p); err != nil {
		return nil, err
	}
	return p, nil
}

// checkProof is proof without using the proof up (no write): for a
// request that presents a token, which is checked first.
func (s *Server) checkProof(c *gin.Context, accessToken string) (*flows.Proof, error) {
	vals := c.Request.Header.Values(dpopHeader)
	if s.App.NoncesOn() && (len(vals) > 0 || accessToken != "" || s.App.DPoP.Required) {
		c.Header(nonceHeader, s.App.NonceNow())
	}
	if len(vals) > 1 {
		return nil, errors.Join(tokens.ErrDPoPProof, errors.New("repeated DPoP header"))
	}
	header := ""
	if len(vals) == 1 {
		header = vals[0]
	}
	return s.App.CheckProof(flows.ProofRequest{Header: header, Method: c.Request.Method,
		URL: s.cfg.Issuer + c.Request.URL.EscapedPath(), AccessToken: accessToken})
}

// resourceProof is the problem for a refused proof at an endpoint that
// takes an access token: 401 with a DPoP challenge (RFC 9449 §7.1, §9),
// where a token endpoint answers 400 (the error table).
func resourceProof(err error) error {
	code, detail := guard.CodeInvalidProof, "the DPoP proof is invalid, used before, or not for this request"
	switch {
	case errors.Is(err, tokens.ErrDPoPNonce):
		code, detail = guard.CodeUseNonce, "the DPoP proof must carry the server's nonce (DPoP-Nonce)"
	case errors.Is(err, tokens.ErrDPoPProof), errors.Is(err, flows.ErrDPoPReplay), errors.Is(err, flows.ErrDPoPUnavailable):
	default:
		return err
	}
	p := problem(http.StatusUnauthorized, Code(code), detail)
	p.Challenge = (&guard.Challenge{Code: code, Description: detail, DPoP: true}).Header()
	p.Err = err
	return p
}

// tokenType is the token_type of an access token bound to jkt.
func tokenType(jkt string) string {
	if jkt != "" {
		return "DPoP"
	}
	return "Bearer"
}

// proofOf is the proof withProof, requireAccess or requirePending found.
func proofOf(c *gin.Context) *flows.Proof {
	p, _ := c.Get(ctxProof)
	proof, _ := p.(*flows.Proof)
	return proof
}
