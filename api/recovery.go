package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/mfa"
)

const ctxRecoveryLeft = "recovery_left"

// verifyRecovery is POST /v1/mfa/recovery/verify: a recovery code as the
// second factor. It shares the account's failure budget, yields aal2 with
// amr [pwd, rec, mfa] — never otp or hwk — and says how many codes remain.
func (s *Server) verifyRecovery(c *gin.Context) {
	code, err := decodeCode(c, recoveryFormat)
	if err != nil {
		_ = c.Error(err)
		return
	}
	pc := pendingClaims(c)
	if err := s.reaches(pc, mfa.KindRecovery); err != nil {
		_ = c.Error(err)
		return
	}
	ctx := c.Request.Context()
	u, err := s.spendAttempt(c, pc)
	if err != nil {
		_ = c.Error(err)
		return
	}
	if err := s.Recovery.Use(ctx, u, code); err != nil {
		s.m.verifies.WithLabelValues("recovery", "failure").Inc()
		s.event(c, u.ID, pc.Session, mfa.EventMFAFailure, "recovery code")
		_ = c.Error(err)
		return
	}
	s.m.verifies.WithLabelValues("recovery", "success").Inc()
	if err := s.Users.ForgiveAttempts(ctx, u.ID); err != nil {
		_ = c.Error(err)
		return
	}
	left, err := s.Recovery.Remaining(ctx, u)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.Set(ctxRecoveryLeft, left)
	s.event(c, u.ID, pc.Session, mfa.EventRecoveryUsed, strconv.Itoa(left)+" left")
	s.finishSecondFactor(c, pc, u, mfa.AMRRecovery)
}

// newRecoveryCodes is POST /v1/me/recovery-codes: a new set replaces the
// old one, shown once. It needs a fresh aal2 session.
func (s *Server) newRecoveryCodes(c *gin.Context) {
	if err := emptyBody(c); err != nil {
		_ = c.Error(err)
		return
	}
	ac := accessClaims(c)
	u := s.caller(c)
	if u == nil {
		return
	}
	if err := s.require(c, u, mfa.ChangeRecoveryCodes, nil); err != nil {
		_ = c.Error(err)
		return
	}
	if len(u.Confirmed("")) == 0 {
		_ = c.Error(problem(http.StatusConflict, "conflict", "enroll a second factor before creating recovery codes"))
		return
	}
	codes, err := s.replaceRecoveryCodes(c, u)
	if err != nil {
		_ = c.Error(err)
		return
	}
	s.event(c, u.ID, ac.Session, mfa.EventRecoveryNew, "")
	writeJSON(c, http.StatusCreated, gin.H{"recovery_codes": codes, "remaining": len(codes)})
}

// replaceRecoveryCodes stores a new set on u and returns the codes.
func (s *Server) replaceRecoveryCodes(c *gin.Context, u *mfa.User) ([]string, error) {
	codes, hashes, err := s.Recovery.Generate(u.ID)
	if err != nil {
		return nil, err
	}
	u.RecoveryCodes = hashes
	if err := s.Users.SetRecoveryCodes(c.Request.Context(), u.ID, hashes); err != nil {
		return nil, err
	}
	return codes, nil
}
