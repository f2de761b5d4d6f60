package api

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/api/flows"
	"github.com/stepup-auth/stepup/tokens"
	"github.com/stepup-auth/stepup/tokens/guard"
)

const (
	ctxCaller  = "caller"
	ctxPending = "pending_claims"
)

// bearer returns the request's token and scheme, Bearer or DPoP (guard's
// parser, RFC 6750 §2.1, RFC 9449 §7.1), or the problem to answer: a
// missing one is 401 with a realm challenge, a malformed header 400
// invalid_request.
func bearer(c *gin.Context, what string) (string, string, error) {
	scheme, tok, err := guard.Credentials(c.Request)
	switch {
	case errors.Is(err, guard.ErrNoToken):
		p := problem(http.StatusUnauthorized, CodeInvalidToken, what+" is required")
		p.Challenge = (&guard.Challenge{Realm: "stepup", Err: guard.ErrNoToken}).Header() + ", " +
			(&guard.Challenge{Realm: "stepup", DPoP: true, Err: guard.ErrNoToken}).Header()
		return "", "", p
	case err != nil:
		p := badRequest("the Authorization header must hold one Bearer or DPoP token")
		p.Challenge = (&guard.Challenge{Code: guard.CodeInvalidRequest, Description: p.Detail}).Header()
		p.Err = err
		return "", "", p
	}
	return scheme, tok, nil
}

// client is who is asking, with the request's verified DPoP proof.
func client(c *gin.Context) flows.Client {
	return flows.Client{IP: c.ClientIP(), UserAgent: c.Request.UserAgent(), Proof: proofOf(c)}
}

// requireAccess admits a request only with a valid access token of a live
// session. An mfa_pending token, or any other kind, is refused here. A
// DPoP-bound token needs the DPoP scheme and a proof of its key with its
// hash (ath).
func (s *Server) requireAccess(c *gin.Context) {
	scheme, tok, err := bearer(c, "an access token")
	if err != nil {
		abort(c, err)
		return
	}
	ath := ""
	if scheme == guard.SchemeDPoP {
		ath = tok
	}
	// The proof is checked, the token verified, and only then the proof
	// used up: a stranger's self-signed proof costs the store no write.
	p, err := s.checkProof(c, ath)
	if err != nil {
		abort(c, resourceProof(err))
		return
	}
	c.Set(ctxProof, p)
	caller, err := s.App.Authenticate(c.Request.Context(), tok, client(c))
	if err != nil {
		abort(c, err)
		return
	}
	if err := s.App.UseProof(c.Request.Context(), p); err != nil {
		abort(c, resourceProof(err))
		return
	}
	c.Set(ctxCaller, caller)
	c.Next()
}

// requirePending admits a request only with a valid mfa_pending token
// addressed to the MFA endpoints; each endpoint refuses a used one.
//
// An mfa_token bound to a DPoP key (the password step had a proof) needs a
// proof of that key; it may come as a Bearer or a DPoP token, the proof's
// ath being checked with the latter.
func (s *Server) requirePending(c *gin.Context) {
	scheme, tok, err := bearer(c, "an mfa_token")
	if err != nil {
		abort(c, err)
		return
	}
	ath := ""
	if scheme == guard.SchemeDPoP {
		ath = tok
	}
	p, err := s.checkProof(c, ath)
	if err != nil {
		abort(c, err)
		return
	}
	c.Set(ctxProof, p)
	claims, err := s.App.PendingToken(tok)
	if err != nil {
		abort(c, err)
		return
	}
	if err := s.App.UseProof(c.Request.Context(), p); err != nil {
		abort(c, err)
		return
	}
	c.Set(ctxPending, claims)
	c.Next()
}

func abort(c *gin.Context, err error) {
	_ = c.Error(err)
	c.Abort()
}

func caller(c *gin.Context) *flows.Caller { return c.MustGet(ctxCaller).(*flows.Caller) }

func pendingClaims(c *gin.Context) tokens.PendingClaims {
	return c.MustGet(ctxPending).(tokens.PendingClaims)
}

// fail records err for the problem renderer; handlers return after it.
func fail(c *gin.Context, err error) { _ = c.Error(err) }
