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

type codeRequest struct {
	Code string `json:"code"`
}

// decodeCode reads {"code": …} strictly and checks the code's form before
// anything is spent: a malformed code costs no attempt.
func decodeCode(c *gin.Context, check func(string) error) (string, error) {
	var req codeRequest
	if err := decode(c, &req); err != nil {
		return "", err
	}
	if err := check(req.Code); err != nil {
		return "", err
	}
	return req.Code, nil
}

func recoveryFormat(code string) error {
	_, err := mfa.NormalizeRecoveryCode(code)
	return err
}

// verifyTOTP is the TOTP second factor: POST /v1/mfa/totp/verify.
//
// Order matters: the code's format is checked before anything is spent;
// then one attempt of the token's budget and one of the account's are
// counted (each an atomic conditional update, so a burst evaluates exactly
// as many guesses as the budgets allow); then the code's time step is taken
// with one conditional update that accepts only a step later than the last
// (single use, never backwards) and records the use; last the mfa_token is
// consumed atomically, so of two racing winners only one gets tokens.
func (s *Server) verifyTOTP(c *gin.Context) {
	code, err := decodeCode(c, s.TOTP.CheckFormat)
	if err != nil {
		_ = c.Error(err)
		return
	}
	pc := pendingClaims(c)
	if err := s.reaches(pc, string(mfa.KindTOTP)); err != nil {
		_ = c.Error(err)
		return
	}
	ctx := c.Request.Context()
	u, err := s.spendAttempt(c, pc)
	if err != nil {
		_ = c.Error(err)
		return
	}
	f, step, err := s.TOTP.MatchAny(u, code)
	if err == nil {
		err = s.Users.UseStep(ctx, u.ID, f.ID, step, s.Now(), false, time.Time{})
		if errors.Is(err, mfa.ErrNotEnrolled) {
			err = mfa.ErrBadCode // removed meanwhile
		}
	}
	if err != nil {
		if errors.Is(err, mfa.ErrBadCode) {
			s.m.verifies.WithLabelValues("totp", "failure").Inc()
			s.event(c, u.ID, pc.Session, mfa.EventMFAFailure, "totp")
		}
		_ = c.Error(err)
		return
	}
	s.m.verifies.WithLabelValues("totp", "success").Inc()
	s.finishSecondFactor(c, pc, u, mfa.AMROTP)
}

// spendAttempt counts an attempt on the mfa_token's budget (a spent or
// consumed token is dead) and then on the account's, which returns the user
// in the same round trip.
//
// The token's attempt comes first, so a dead token spends nothing of the
// account's budget.
func (s *Server) spendAttempt(c *gin.Context, pc tokens.PendingClaims) (*mfa.User, error) {
	ctx := c.Request.Context()
	if _, err := s.TokenBudget.Take(ctx, pc.ID); err != nil {
		var th *mfa.ThrottledError
		switch {
		case errors.As(err, &th):
			return nil, invalidToken("the mfa_token has no attempts left", nil)
		case errors.Is(err, mfa.ErrUsed):
			return nil, invalidToken("the mfa_token has been used", nil)
		}
		return nil, err
	}
	now := s.Now()
	u, ok, err := s.Users.SpendAttempt(ctx, pc.Subject, s.AccountBudget.Gates(now), now)
	if errors.Is(err, mfa.ErrNotFound) {
		return nil, invalidToken("the mfa_token's user is gone", nil)
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		err := s.AccountBudget.Refusal(u.Attempts, now)
		s.throttled(err)
		s.event(c, pc.Subject, pc.Session, mfa.EventLockout, "second factor")
		return nil, err
	}
	return u, nil
}

// reaches refuses, before any attempt is spent, a kind of factor that
// cannot reach, on top of what the mfa_token carries as still counted, the
// level a step-up asks for (TOTP and recovery codes never reach aal3).
func (s *Server) reaches(pc tokens.PendingClaims, kind string) error {
	if pc.ACR != "" && !s.Policy.CanReach(kind, pc.AMR, pc.ACR) {
		return problem(http.StatusForbidden, "unmet_authentication_requirements",
			"that factor cannot reach the requested authentication level")
	}
	return nil
}

// finishSecondFactor consumes the mfa_token and issues tokens: a new
// session after a password, or the same session raised after a step-up,
// at the level of what the token still counted and this factor proved
// (mfa.Policy.Assess). The factor's use and the account's budget reset were
// recorded by the update that accepted the factor.
func (s *Server) finishSecondFactor(c *gin.Context, pc tokens.PendingClaims, u *mfa.User, proved ...string) {
	ctx := c.Request.Context()
	a, err := s.assess(pc, proved...)
	if err != nil {
		_ = c.Error(err)
		return
	}
	now := s.Now()
	// A new session is inserted while the mfa_token is consumed; it is
	// handed out only if this request consumed the token (an unused session
	// has no refresh token anyone knows, and expires). A step-up changes an
	// existing session, so it waits.
	var (
		sess    *tokens.Session
		refresh string
		wg      sync.WaitGroup
		lostErr error
	)
	if pc.Session == "" {
		wg.Go(func() { sess, refresh, lostErr = s.Sessions.Start(ctx, u.ID, now, a.ACR, a.AMR) })
	}
	consumeErr := s.Pending.Consume(ctx, pc.ID, now, pc.Expiry.Add(time.Minute))
	wg.Wait()
	if consumeErr != nil {
		if errors.Is(consumeErr, mfa.ErrUsed) {
			consumeErr = invalidToken("the mfa_token has been used", nil)
		}
		if sess != nil {
			_ = s.Sessions.Revoke(context.WithoutCancel(ctx), sess.ID)
		}
		_ = c.Error(consumeErr)
		return
	}
	if pc.Session == "" {
		if lostErr != nil {
			_ = c.Error(lostErr)
			return
		}
		s.event(c, u.ID, sess.ID, mfa.EventLoginSuccess, a.ACR+" "+strings.Join(a.AMR, ","))
		s.respondTokens(c, sess, refresh, http.StatusOK)
		return
	}
	sess, err = s.Sessions.Raise(ctx, pc.Session, now, a.ACR, a.AMR)
	if err != nil {
		if errors.Is(err, tokens.ErrSessionEnded) || errors.Is(err, tokens.ErrSessionNotFound) {
			err = invalidToken("the session being stepped up has ended", err)
		}
		_ = c.Error(err)
		return
	}
	s.m.stepups.WithLabelValues(pc.ACR, a.ACR).Inc()
	s.event(c, u.ID, sess.ID, mfa.EventStepUp, a.ACR+" "+strings.Join(a.AMR, ","))
	s.respondTokens(c, sess, "", http.StatusOK)
}
