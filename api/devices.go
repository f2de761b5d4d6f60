package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// deviceView is a remembered device as the user sees it.
type deviceView struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Current    bool       `json:"current"` // the key of this request's DPoP proof
	CreatedAt  time.Time  `json:"created_at"`
	FactorAt   time.Time  `json:"second_factor_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
}

// listDevices is GET /v1/me/devices: the caller's remembered devices.
func (s *Server) listDevices(c *gin.Context) {
	ds, err := s.App.ListDevices(c.Request.Context(), caller(c))
	if err != nil {
		fail(c, err)
		return
	}
	jkt := caller(c).Client.Proof.JKT()
	out := make([]deviceView, 0, len(ds))
	for _, d := range ds {
		v := deviceView{ID: d.ID, Name: d.Name, Current: jkt != "" && d.JKT == jkt, CreatedAt: d.CreatedAt.UTC(),
			FactorAt: d.FactorAt.UTC(), ExpiresAt: d.ExpiresAt.UTC()}
		if !d.LastUsedAt.IsZero() {
			t := d.LastUsedAt.UTC()
			v.LastUsedAt = &t
		}
		out = append(out, v)
	}
	writeJSON(c, http.StatusOK, gin.H{"devices": out})
}

// forgetDevice is DELETE /v1/me/devices/{id}: its next sign-in asks for a
// second factor again. Another user's device id is 404.
func (s *Server) forgetDevice(c *gin.Context) {
	if err := s.App.ForgetDevice(c.Request.Context(), caller(c), c.Param("id")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
