package api

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// uiFiles is the built-in page: plain HTML, CSS and JavaScript, no build
// step. It calls only the public JSON API, as any frontend would.
//
//go:embed ui
var uiFiles embed.FS

// uiCSP forbids inline script and style and any origin but this one.
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

func (s *Server) uiHandler() gin.HandlerFunc {
	sub, _ := fs.Sub(uiFiles, "ui")
	files := http.FileServer(http.FS(sub))
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", uiCSP)
		h.Set("Cache-Control", "no-cache")
		path := strings.TrimPrefix(c.Param("path"), "/")
		if path == "" {
			path = "index.html"
		}
		if _, err := fs.Stat(sub, path); err != nil {
			fail(c, errNoPage)
			return
		}
		r := c.Request.Clone(c.Request.Context())
		r.URL.Path = "/" + path
		if path == "index.html" {
			r.URL.Path = "/"
		}
		files.ServeHTTP(c.Writer, r)
	}
}
