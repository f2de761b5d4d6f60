package api

import (
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
)

// Cookie mode keeps the refresh token out of reach of page scripts: a
// browser frontend that sends the custom header below, from an allowed
// origin, gets its refresh token in a __Host- cookie instead of the body.
// __Host- pins the cookie to this host with Path=/ and Secure (RFC 6265bis
// §4.1.3.2 forbids a narrower path for the prefix); SameSite=Strict and
// HttpOnly keep it from other sites and from scripts.
//
// A request that relies on the cookie must carry both a matching Origin and
// the custom header, which a cross-site form cannot send without a CORS
// preflight this service refuses (CSRF).
const (
	cookieHeader  = "X-Stepup-Cookie"
	refreshCookie = "__Host-stepup-refresh"
)

// cookieMode reports whether the request asks for cookie delivery from an
// allowed origin.
func (s *Server) cookieMode(c *gin.Context) bool {
	return c.GetHeader(cookieHeader) == "1" && s.originAllowed(c.GetHeader("Origin"))
}

// originAllowed: the service's own origin (the built-in page) and the
// configured CORS origins.
func (s *Server) originAllowed(origin string) bool {
	if origin == "" {
		return false
	}
	if u, err := url.Parse(s.cfg.Issuer); err == nil && origin == u.Scheme+"://"+u.Host {
		return true
	}
	return slices.Contains(s.cfg.CORSOrigins, origin)
}

func (s *Server) setRefreshCookie(c *gin.Context, token string, maxAge time.Duration) {
	http.SetCookie(c.Writer, &http.Cookie{Name: refreshCookie, Value: token, Path: "/", MaxAge: int(maxAge / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func (s *Server) clearRefreshCookie(c *gin.Context) {
	http.SetCookie(c.Writer, &http.Cookie{Name: refreshCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// cookieRefresh returns the refresh token of the cookie for a refresh
// request without a body token, after the CSRF checks.
func (s *Server) cookieRefresh(c *gin.Context) (string, error) {
	ck, err := c.Request.Cookie(refreshCookie)
	if err != nil || ck.Value == "" {
		return "", badRequest("refresh_token is required")
	}
	if !s.cookieMode(c) {
		return "", errCSRF
	}
	return ck.Value, nil
}
