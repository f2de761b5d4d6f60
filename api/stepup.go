package api

import (
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

type stepupRequest struct {
	ACRValues string  `json:"acr_values"`
	MaxAge    *int64  `json:"max_age,omitempty"`
	Password  *string `json:"password,omitempty"`
}

// stepup is POST /v1/stepup (RFC 9470 §4, OIDC acr_values/max_age
// semantics); flows.App.StepUp decides.
func (s *Server) stepup(c *gin.Context) {
	var req stepupRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	want, err := s.lowestACR(req.ACRValues)
	if err != nil {
		fail(c, err)
		return
	}
	if req.MaxAge != nil && (*req.MaxAge < 0 || *req.MaxAge > 366*24*3600) {
		fail(c, badRequest("max_age must be a number of seconds from 0 to one year"))
		return
	}
	var maxAge *time.Duration
	if req.MaxAge != nil {
		d := time.Duration(*req.MaxAge) * time.Second
		maxAge = &d
	}
	out, err := s.App.StepUp(c.Request.Context(), caller(c), want, maxAge, req.Password)
	if err != nil {
		fail(c, err)
		return
	}
	s.respondOutcome(c, out)
}

// lowestACR parses space-separated acr values; any of them is acceptable,
// so on a ladder the lowest one decides.
func (s *Server) lowestACR(values string) (string, error) {
	fields := strings.Fields(values)
	if len(fields) == 0 || len(fields) > 3 {
		return "", badRequest("acr_values must hold one to three of " + strings.Join(s.Policy.Levels[:], ", "))
	}
	best := -1
	for _, v := range fields {
		l := s.Policy.Level(v)
		if l < 0 {
			return "", badRequest("unknown acr value; supported: " + strings.Join(s.Policy.Levels[:], ", "))
		}
		if best < 0 || l < best {
			best = l
		}
	}
	return s.Policy.Levels[best], nil
}
