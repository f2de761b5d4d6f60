// Package api is stepup's HTTP interface: Gin handlers, middleware and the
// RFC 9457 error rendering from one error table. A handler decodes the
// request, calls one method of the application (api/flows) and encodes the
// result; it holds no store handle and decides no policy. api receives
// every dependency from cmd and imports neither store nor configuration.
// Nothing but cmd imports api.
package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stepup-auth/stepup/api/flows"
	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

// Config holds the HTTP-facing settings.
type Config struct {
	Issuer      string   // iss and base URL
	MFAAudience string   // aud of mfa_pending tokens
	Audiences   []string // aud of access tokens; the first is this API's own
	SignupOpen  bool
	CORSOrigins []string
	// TrustedProxies are the addresses whose X-Forwarded-For is believed
	// for the client address in security events; none by default.
	TrustedProxies []string
	// IntrospectionClients maps client id to secret for RFC 7662.
	IntrospectionClients map[string]string
}

// Deps are what the handlers use: the application and what the
// well-known documents publish.
type Deps struct {
	App      *flows.App
	Keys     *tokens.KeySet // the JWKS
	Policy   mfa.Policy     // acr names: metadata and acr_values parsing
	Ready    func(context.Context) error
	Logger   *slog.Logger
	Registry *prometheus.Registry
	Now      func() time.Time
}

// Server is the HTTP handler.
type Server struct {
	Deps
	cfg    Config
	log    *slog.Logger
	engine *gin.Engine
	m      *metrics
}

// NewServer builds the Gin engine with middleware and every route.
func NewServer(cfg Config, d Deps) *Server {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Server{Deps: d, cfg: cfg, log: d.Logger, engine: gin.New(), m: newMetrics(d.Registry)}
	e := s.engine
	if err := e.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		s.log.Warn("trusted proxies ignored", "err", err)
		_ = e.SetTrustedProxies(nil)
	}
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	e.Use(s.requestID, s.recover, s.observe, s.securityHeaders, s.cors, s.renderErrors, limitHeaders)
	e.NoRoute(func(c *gin.Context) { fail(c, errNoEndpoint) })
	e.NoMethod(func(c *gin.Context) {
		fail(c, errMethod)
	})

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/.well-known/jwks.json", s.jwks)
	e.GET("/.well-known/oauth-authorization-server", s.metadata)
	e.GET("/ui/*path", s.uiHandler())
	e.GET("/ui", func(c *gin.Context) { c.Redirect(http.StatusMovedPermanently, "/ui/") })

	v1 := e.Group("/v1")
	v1.POST("/users", s.signup)
	v1.POST("/login", s.withProof, s.login)
	v1.POST("/token/refresh", s.withProof, s.refresh)
	v1.POST("/token/revoke", s.revoke)
	v1.POST("/token/introspect", s.introspect)
	v1.POST("/stepup", s.requireAccess, s.stepup)
	v1.POST("/logout", s.requireAccess, s.logout)

	pending := v1.Group("/mfa", s.requirePending)
	pending.POST("/totp/verify", s.verifyTOTP)
	pending.POST("/webauthn/options", s.webauthnOptions)
	pending.POST("/webauthn/verify", s.webauthnVerify)
	pending.POST("/recovery/verify", s.verifyRecovery)

	v1.POST("/passkeys/options", s.passkeyOptions)
	v1.POST("/passkeys/verify", s.withProof, s.passkeyVerify)

	me := v1.Group("/me", s.requireAccess)
	me.GET("", s.me)
	me.DELETE("", s.deleteMe)
	me.GET("/sessions", s.mySessions)
	me.DELETE("/sessions/:id", s.endMySession)
	me.GET("/factors", s.listFactors)
	me.GET("/factors/:id", s.getFactor)
	me.POST("/factors/totp", s.enrollTOTP)
	me.POST("/factors/totp/:id/confirm", s.confirmTOTP)
	me.POST("/factors/webauthn/options", s.webauthnRegisterOptions)
	me.POST("/factors/webauthn", s.webauthnRegister)
	me.PATCH("/factors/:id", s.renameFactor)
	me.DELETE("/factors/:id", s.removeFactor)
	me.POST("/recovery-codes", s.newRecoveryCodes)
	me.GET("/events", s.myEvents)
	me.POST("/password", s.changePassword)
	me.GET("/devices", s.listDevices)
	me.DELETE("/devices/:id", s.forgetDevice)
	return s
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// Routes lists method and path of every route, for the contract test.
func (s *Server) Routes() [][2]string {
	var out [][2]string
	for _, r := range s.engine.Routes() {
		out = append(out, [2]string{r.Method, r.Path})
	}
	return out
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

const ctxRequestID = "request_id"

func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if id == "" || len(id) > 64 || !printableASCII(id) {
		id = randomID(12)
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-Id", id)
	c.Next()
}

func requestID(c *gin.Context) string { return c.GetString(ctxRequestID) }

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == '"' {
			return false
		}
	}
	return true
}

func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.log.Error("panic", "request_id", requestID(c), "panic", r)
			if !c.Writer.Written() {
				writeProblem(c, problem(http.StatusInternalServerError, CodeInternalError, "an internal error occurred"))
			}
			c.Abort()
		}
	}()
	c.Next()
}

func (s *Server) securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	c.Next()
}

// cors answers only the exact origins configured; credentials are never
// allowed with a wildcard (there is no wildcard).
func (s *Server) cors(c *gin.Context) {
	origin := c.GetHeader("Origin")
	if origin == "" || !slices.Contains(s.cfg.CORSOrigins, origin) {
		c.Next()
		return
	}
	h := c.Writer.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true") // exact origin only, never *
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, Retry-After, X-Request-Id, DPoP-Nonce")
	if c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id, X-Stepup-Cookie, DPoP")
		h.Set("Access-Control-Max-Age", "600")
		c.AbortWithStatus(http.StatusNoContent)
		return
	}
	c.Next()
}

func (s *Server) healthz(c *gin.Context) { writeJSON(c, http.StatusOK, gin.H{"status": "ok"}) }

func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.Ready(ctx); err != nil {
		fail(c, errors.Join(errStoreUnreachable, err))
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"status": "ready"})
}

// ttl is a token lifetime in whole seconds for expires_in.
func ttl(exp, now time.Time) int { return int(exp.Sub(now).Round(time.Second) / time.Second) }

// MaxHeaderBytes is how large a request's headers may be. The HTTP server
// is given more room than this (cmd sets it), so that this middleware, not
// net/http's plain-text answer, refuses: 431 with problem+json.
const MaxHeaderBytes = 16 << 10

func limitHeaders(c *gin.Context) {
	n := len(c.Request.RequestURI)
	for k, vs := range c.Request.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	if n > MaxHeaderBytes {
		fail(c, errHeadersTooLarge)
		c.Abort()
		return
	}
	c.Next()
}
