// Package ginguard adapts package guard to Gin: the same checks, challenges
// and problem bodies, as gin.HandlerFunc. All logic is guard's
// (Guard.Authorize); this package only moves the request and the claims in
// and out of a *gin.Context.
//
// It imports Gin, guard and tokens, never the stepup server. Services that
// do not use Gin import guard alone and do not pull Gin in.
//
//	r := gin.New()
//	r.GET("/orders", ginguard.Require(g, "aal1", 0), listOrders)
//	r.POST("/transfer", ginguard.Require(g, "aal2", 5*time.Minute), transfer)
//	// in a handler: claims, _ := ginguard.Claims(c)
package ginguard

import (
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/tokens"
	"github.com/stepup-auth/stepup/tokens/guard"
)

// Middleware returns a Gin handler that lets the chain go on only for a
// request whose token meets req (see guard.Guard.Check); the others are
// answered with the challenge (status, WWW-Authenticate, problem+json),
// aborted, and the challenge recorded with c.Error for logging middleware
// (it is private: do not render it again). The verified claims travel in
// c.Request's context: read them with Claims. It panics if req is invalid
// (see guard.Guard.Validate).
func Middleware(g *guard.Guard, req guard.Requirement) gin.HandlerFunc {
	if err := g.Validate(req); err != nil {
		panic(err)
	}
	req.AMR = slices.Clone(req.AMR)
	return func(c *gin.Context) {
		r, ch := g.Authorize(c.Request, req)
		if ch != nil {
			_ = c.Error(ch) // gin.ErrorTypePrivate
			ch.ServeHTTP(c.Writer, c.Request)
			c.Abort()
			return
		}
		c.Request = r
		c.Next()
	}
}

// Require is Middleware for level acr or higher, authenticated at most
// maxAge ago (0: any age). It panics as guard.Guard.Require does.
func Require(g *guard.Guard, acr string, maxAge time.Duration) gin.HandlerFunc {
	return Middleware(g, guard.Requirement{ACR: acr, MaxAge: maxAge})
}

// RequireAMR is Middleware for a token whose amr holds every one of values.
func RequireAMR(g *guard.Guard, values ...string) gin.HandlerFunc {
	return Middleware(g, guard.Requirement{AMR: values})
}

// Claims returns the access-token claims a guard verified for c's request.
func Claims(c *gin.Context) (tokens.AccessClaims, bool) {
	return guard.FromContext(c.Request.Context())
}
