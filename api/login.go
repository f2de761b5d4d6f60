package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

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
}

type mfaRequired struct {
	Status    string   `json:"status"`
	MFAToken  string   `json:"mfa_token"`
	ExpiresIn int      `json:"expires_in"`
	Factors   []string `json:"factors"`
}

// login is the password step: POST /v1/login. Unknown user and wrong
// password give the identical answer after the same work: an attempt on
// the name's budget, one read, one argon2id hash.
func (s *Server) login(c *gin.Context) {
	var req credentials
	if err := decode(c, &req); err != nil {
		_ = c.Error(err)
		return
	}
	name, err := mfa.CanonicalUsername(req.Username)
	if err != nil {
		_ = c.Error(err)
		return
	}
	if len(req.Password) > 4*mfa.MaxPasswordLen {
		_ = c.Error(mfa.ErrInvalidPassword)
		return
	}
	pw, _ := mfa.NormalizePassword(req.Password) // a wrong-length password simply fails to match
	ctx := c.Request.Context()

	// A place in the hashing queue first: a server too busy to check the
	// password answers 503 without spending the user's password budget.
	release, err := s.Password.Admit()
	if err != nil {
		_ = c.Error(err)
		return
	}
	defer release()
	// The budget slot and the user are fetched at once (independent round
	// trips); both are in hand before the password is checked.
	var (
		attempt mfa.Attempt
		takeErr error
		u       *mfa.User
		wg      sync.WaitGroup
	)
	wg.Go(func() { attempt, takeErr = s.LoginBudget.Take(ctx, "pwd|"+name) })
	u, err = s.Users.UserByName(ctx, name)
	wg.Wait()
	if takeErr != nil {
		s.throttled(takeErr)
		_ = c.Error(takeErr)
		return
	}
	phc := ""
	switch {
	case err == nil:
		phc = u.PasswordHash
	case errors.Is(err, mfa.ErrNotFound):
	default:
		_ = c.Error(err)
		return
	}
	rehash, err := s.Password.VerifyAdmitted(ctx, phc, pw)
	if err != nil {
		if errors.Is(err, mfa.ErrBadCredentials) {
			s.m.verifies.WithLabelValues("pwd", "failure").Inc()
			if u != nil {
				s.event(c, u.ID, "", mfa.EventLoginFailure, "password")
			}
		}
		_ = c.Error(err)
		return
	}
	s.m.verifies.WithLabelValues("pwd", "success").Inc()
	// Resetting the budget overlaps what follows; its error is only logged
	// (a lost reset counts more failures, never fewer).
	wg.Go(func() {
		if err := s.LoginBudget.Succeed(context.WithoutCancel(ctx), attempt); err != nil {
			s.log.Warn("password budget not reset", "user", u.ID, "err", err)
		}
	})
	defer wg.Wait()
	if rehash {
		s.upgradeHash(context.WithoutCancel(ctx), u, pw)
	}

	// A user with any confirmed factor must answer a second one, even when
	// none is usable now (a flagged key): then only recovery codes or an
	// administrator's reset get them in, never the password alone. What is
	// offered is the policy's answer, the same function a step-up asks.
	if len(u.Confirmed("")) == 0 {
		s.complete(c, u.ID, s.Now(), s.Policy.PasswordOnly(), http.StatusOK)
		return
	}
	have := []string{mfa.AMRPassword}
	tok, claims, err := s.Issuer.Pending(tokens.PendingClaims{Subject: u.ID, AMR: have})
	if err != nil {
		_ = c.Error(err)
		return
	}
	factors := s.Policy.Offered(u, s.Policy.Levels[1], have)
	if factors == nil {
		factors = []string{}
	}
	writeJSON(c, http.StatusOK, mfaRequired{Status: "mfa_required", MFAToken: tok,
		ExpiresIn: ttl(claims.Expiry, s.Now()), Factors: factors})
}

// upgradeHash re-hashes a password whose stored cost parameters are out of
// date. Failure leaves the old, still valid hash.
func (s *Server) upgradeHash(ctx context.Context, u *mfa.User, pw string) {
	hash, err := s.Password.Hash(ctx, pw)
	if err != nil {
		return
	}
	u.PasswordHash = hash
	if err := s.Users.SetPassword(ctx, u.ID, hash); err != nil {
		s.log.Debug("password hash upgrade skipped", "user", u.ID, "err", err)
	}
}

// complete starts a session for a finished authentication and answers with
// the token response.
func (s *Server) complete(c *gin.Context, userID string, authTime time.Time, a mfa.Assurance, status int) {
	sess, refresh, err := s.Sessions.Start(c.Request.Context(), userID, authTime, a.ACR, a.AMR)
	if err != nil {
		_ = c.Error(err)
		return
	}
	s.event(c, userID, sess.ID, mfa.EventLoginSuccess, a.ACR+" "+strings.Join(a.AMR, ","))
	s.respondTokens(c, sess, refresh, status)
}

func (s *Server) respondTokens(c *gin.Context, sess *tokens.Session, refresh string, status int) {
	access, claims, err := s.Issuer.Access(sess.UserID, sess.ID, sess.AuthTime, sess.ACR, sess.AMR)
	if err != nil {
		_ = c.Error(err)
		return
	}
	s.m.issued.WithLabelValues("access", "issued").Inc()
	resp := tokenResponse{Status: "authenticated", TokenType: "Bearer", AccessToken: access,
		ExpiresIn: ttl(claims.Expiry, s.Now()), RefreshToken: refresh, ACR: sess.ACR, AMR: sess.AMR}
	if refresh != "" && s.cookieMode(c) {
		s.setRefreshCookie(c, refresh, min(s.Sessions.RefreshTTL, sess.ExpiresAt.Sub(s.Now())))
		resp.RefreshToken = ""
	}
	if n, ok := c.Get(ctxRecoveryLeft); ok {
		left := n.(int)
		resp.RecoveryCodesLeft = &left
	}
	writeJSON(c, status, resp)
}

// throttled counts a refusal by an attempt budget and reports whether err
// was one.
func (s *Server) throttled(err error) bool {
	var th *mfa.ThrottledError
	if errors.As(err, &th) {
		s.m.lockouts.Inc()
		return true
	}
	return false
}
