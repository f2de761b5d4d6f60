package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

// errPasswordRequired answers a step-up whose session no longer counts
// (older than max_age) when only a password and a second factor together
// can reach the level: the client asks again with the password.
var errPasswordRequired = problem(http.StatusBadRequest, "password_required",
	"the session's sign-in is older than max_age: send the password again with the step-up")

// require applies the policy's requirement for change (f for a rename or
// removal) to the caller's session, as the session record says now: an
// RFC 9470 challenge when it is not met.
func (s *Server) require(c *gin.Context, u *mfa.User, ch mfa.Change, f *mfa.Factor) error {
	sess := c.MustGet(ctxSession).(*tokens.Session)
	ms := mfa.Session{ID: sess.ID, ACR: sess.ACR, AuthTime: sess.AuthTime, Created: sess.CreatedAt}
	now := s.Now()
	r := s.Policy.Requires(u, ch, f, ms, now)
	if s.Policy.Meets(ms, r, now) {
		return nil
	}
	return insufficient(r.ACR, int(r.MaxAge/time.Second))
}

// checkPassword checks u's password again for a signed-in session (a
// password change, a step-up), counted against the username's password
// budget like a sign-in. A wrong password is 400 invalid_credentials: the
// bearer token itself is fine.
func (s *Server) checkPassword(c *gin.Context, u *mfa.User, password, sid, what string) error {
	ctx := c.Request.Context()
	attempt, err := s.LoginBudget.Take(ctx, "pwd|"+u.Username)
	if err != nil {
		s.throttled(err)
		return err
	}
	pw, _ := mfa.NormalizePassword(password)
	if _, err := s.Password.Verify(ctx, u.PasswordHash, pw); err != nil {
		if errors.Is(err, mfa.ErrBadCredentials) {
			s.event(c, u.ID, sid, mfa.EventLoginFailure, what)
		}
		return notTheToken(err)
	}
	return s.LoginBudget.Succeed(ctx, attempt)
}
