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
// then a slot of the token's budget and one of the account's are claimed
// (so a burst evaluates exactly as many guesses as there are slots); then
// the code is checked and its time step claimed; last the mfa_token is
// consumed with a unique insert, so of two racing winners only one gets
// tokens.
func (s *Server) verifyTOTP(c *gin.Context) {
	code, err := decodeCode(c, s.TOTP.CheckFormat)
	if err != nil {
		_ = c.Error(err)
		return
	}
	pc := pendingClaims(c)
	if err := s.reaches(pc, s.Policy.PasswordTOTP()); err != nil {
		_ = c.Error(err)
		return
	}
	ctx := c.Request.Context()
	acct, u, err := s.spendAttempt(c, pc)
	if err != nil {
		_ = c.Error(err)
		return
	}
	var matched *mfa.Factor
	for _, f := range u.Confirmed(mfa.KindTOTP) {
		if _, err := s.TOTP.Verify(ctx, &f, code); err == nil {
			matched = u.Factor(f.ID)
			break
		} else if !errors.Is(err, mfa.ErrBadCode) {
			_ = c.Error(err)
			return
		}
	}
	if matched == nil {
		s.m.verifies.WithLabelValues("totp", "failure").Inc()
		s.event(c, u.ID, pc.Session, mfa.EventMFAFailure, "totp")
		_ = c.Error(mfa.ErrBadCode)
		return
	}
	s.m.verifies.WithLabelValues("totp", "success").Inc()
	s.finishSecondFactor(c, pc, acct, u, matched, s.Policy.PasswordTOTP())
}

// spendAttempt claims a slot of the mfa_token's budget (a spent token is
// dead) and one of the account's (backoff, then lock), and loads the user.
//
// The token's slot comes first, so a dead token spends nothing of the
// account's budget; then the account's slot and the user load run at once,
// both done before the caller evaluates the guess.
func (s *Server) spendAttempt(c *gin.Context, pc tokens.PendingClaims) (mfa.Attempt, *mfa.User, error) {
	ctx := c.Request.Context()
	if _, err := s.TokenBudget.Take(ctx, "tok|"+pc.ID); err != nil {
		var th *mfa.ThrottledError
		if errors.As(err, &th) {
			return mfa.Attempt{}, nil, invalidToken("the mfa_token has no attempts left", nil)
		}
		return mfa.Attempt{}, nil, err
	}
	var (
		acctErr error
		acct    mfa.Attempt
		wg      sync.WaitGroup
	)
	wg.Go(func() { acct, acctErr = s.AccountBudget.Take(ctx, "mfa|"+pc.Subject) })
	u, userErr := s.Users.User(ctx, pc.Subject)
	wg.Wait()
	if err := acctErr; err != nil {
		if s.throttled(err) {
			s.event(c, pc.Subject, pc.Session, mfa.EventLockout, "second factor")
		}
		return mfa.Attempt{}, nil, err
	}
	if errors.Is(userErr, mfa.ErrNotFound) {
		return mfa.Attempt{}, nil, invalidToken("the mfa_token's user is gone", nil)
	}
	return acct, u, userErr
}

// reaches refuses, before any attempt is spent, a factor that cannot reach
// the level a step-up mfa_token asks for (TOTP and recovery codes never
// reach aal3).
func (s *Server) reaches(pc tokens.PendingClaims, best mfa.Assurance) error {
	if pc.ACR != "" && !s.Policy.Satisfies(best.ACR, pc.ACR) {
		return problem(http.StatusForbidden, "unmet_authentication_requirements",
			"that factor cannot reach the requested authentication level")
	}
	return nil
}

// finishSecondFactor consumes the mfa_token, resets the account budget,
// records the factor's use and issues tokens: a new session after a
// password, or the same session raised after a step-up.
func (s *Server) finishSecondFactor(c *gin.Context, pc tokens.PendingClaims, acct mfa.Attempt, u *mfa.User, f *mfa.Factor, a mfa.Assurance) {
	ctx := c.Request.Context()
	a, err := s.stepupAssurance(pc, a)
	if err != nil {
		_ = c.Error(err)
		return
	}
	now := s.Now()
	// What does not depend on consuming the mfa_token runs while it is
	// consumed: a new session (handed out only if this request consumed the
	// token; an unused session record expires), the budget reset (a lost
	// one counts more failures, never fewer) and the factor's last use and
	// counter. All finish before the answer, so the client's next request
	// sees them. A step-up changes an existing session, so it waits.
	var (
		sess    *tokens.Session
		refresh string
		wg      sync.WaitGroup
		lostErr error
	)
	bg := context.WithoutCancel(ctx)
	if pc.Session == "" {
		wg.Go(func() { sess, refresh, lostErr = s.Sessions.Start(ctx, u.ID, now, a.ACR, a.AMR) })
	}
	wg.Go(func() {
		if err := s.AccountBudget.Succeed(bg, acct); err != nil {
			s.log.Warn("second-factor budget not reset", "user", u.ID, "err", err)
		}
	})
	if f != nil {
		f.LastUsedAt = now
		wg.Go(func() {
			if err := s.Users.UpdateUser(bg, u); err != nil {
				s.log.Warn("factor last use not recorded", "user", u.ID, "err", err)
			}
		})
	}
	consumeErr := s.UsedTokens.Claim(ctx, pc.ID, pc.Expiry.Add(time.Minute))
	wg.Wait()
	if consumeErr != nil {
		if errors.Is(consumeErr, mfa.ErrUsed) {
			consumeErr = invalidToken("the mfa_token has been used", nil)
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
