package api

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"time"

	"github.com/boombuler/barcode/qr"
	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/mfa"
)

type factorView struct {
	ID         string     `json:"id"`
	Kind       mfa.Kind   `json:"kind"`
	Name       string     `json:"name"`
	Confirmed  bool       `json:"confirmed"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	// Authenticator is the model a WebAuthn factor's AAGUID names, from the
	// list shipped in the binary; absent when the AAGUID is unknown or zero.
	Authenticator string `json:"authenticator,omitempty"`
	// Attested is set on a WebAuthn factor whose attestation was trusted at
	// registration (STEPUP_WEBAUTHN_AAL3=attested).
	Attested bool `json:"attested,omitempty"`
}

func viewFactor(f *mfa.Factor) factorView {
	v := factorView{ID: f.ID, Kind: f.Kind, Name: f.Name, Confirmed: f.Confirmed, CreatedAt: f.CreatedAt.UTC()}
	if f.Credential != nil {
		v.Authenticator = mfa.AuthenticatorName(f.Credential.AAGUID)
		v.Attested = f.Credential.Attested
	}
	if !f.LastUsedAt.IsZero() {
		t := f.LastUsedAt.UTC()
		v.LastUsedAt = &t
	}
	return v
}

// listFactors is GET /v1/me/factors. Secrets are never shown.
func (s *Server) listFactors(c *gin.Context) {
	u, left, err := s.App.Factors(c.Request.Context(), caller(c))
	if err != nil {
		fail(c, err)
		return
	}
	out := make([]factorView, 0, len(u.Factors))
	for i := range u.Factors {
		out = append(out, viewFactor(&u.Factors[i]))
	}
	writeJSON(c, http.StatusOK, gin.H{"factors": out, "recovery_codes_remaining": left})
}

// getFactor is GET /v1/me/factors/{id}. Another user's factor id is 404.
func (s *Server) getFactor(c *gin.Context) {
	_, f, err := s.App.Factor(c.Request.Context(), caller(c), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, viewFactor(f))
}

type enrollRequest struct {
	Name string `json:"name,omitempty"`
}

type totpEnrollment struct {
	factorView
	Secret string `json:"secret"`
	URI    string `json:"otpauth_uri"`
	QR     string `json:"qr_png"`
}

// enrollTOTP starts a TOTP enrollment: POST /v1/me/factors/totp.
func (s *Server) enrollTOTP(c *gin.Context) {
	var req enrollRequest
	if c.Request.ContentLength != 0 {
		if err := decode(c, &req); err != nil {
			fail(c, err)
			return
		}
	}
	enr, err := s.App.EnrollTOTP(c.Request.Context(), caller(c), req.Name)
	if err != nil {
		fail(c, err)
		return
	}
	png, err := qrPNG(enr.URI)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", "/v1/me/factors/"+enr.Factor.ID)
	writeJSON(c, http.StatusCreated, totpEnrollment{factorView: viewFactor(&enr.Factor), Secret: enr.Secret, URI: enr.URI,
		QR: "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)})
}

// confirmTOTP activates a TOTP factor with a code from the app:
// POST /v1/me/factors/totp/{id}/confirm.
func (s *Server) confirmTOTP(c *gin.Context) {
	var req codeRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	f, codes, err := s.App.ConfirmTOTP(c.Request.Context(), caller(c), c.Param("id"), req.Code)
	if err != nil {
		fail(c, err)
		return
	}
	writeFactor(c, f, codes, http.StatusOK)
}

// writeFactor answers with a newly active factor; the user's first one
// also brings the first recovery codes, shown this once.
func writeFactor(c *gin.Context, f *mfa.Factor, codes []string, status int) {
	if len(codes) == 0 {
		writeJSON(c, status, viewFactor(f))
		return
	}
	writeJSON(c, status, struct {
		factorView
		RecoveryCodes []string `json:"recovery_codes"`
	}{viewFactor(f), codes})
}

// qrPNG draws the otpauth URI as a QR code with the four-module quiet zone
// ISO/IEC 18004 asks for, so phone cameras find it on any background.
func qrPNG(uri string) ([]byte, error) {
	code, err := qr.Encode(uri, qr.M, qr.Auto)
	if err != nil {
		return nil, err
	}
	const scale, quiet = 6, 4
	n := code.Bounds().Dx()
	size := (n + 2*quiet) * scale
	img := image.NewGray(image.Rect(0, 0, size, size))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for y := range n {
		for x := range n {
			if code.At(x, y) != color.White && isDark(code.At(x, y)) {
				for dy := range scale {
					for dx := range scale {
						img.SetGray((x+quiet)*scale+dx, (y+quiet)*scale+dy, color.Gray{})
					}
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func isDark(c color.Color) bool {
	r, _, _, _ := c.RGBA()
	return r < 0x8000
}

type renameRequest struct {
	Name string `json:"name"`
}

// renameFactor is PATCH /v1/me/factors/{id}.
func (s *Server) renameFactor(c *gin.Context) {
	var req renameRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	f, err := s.App.RenameFactor(c.Request.Context(), caller(c), c.Param("id"), req.Name)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, viewFactor(f))
}

// removeFactor is DELETE /v1/me/factors/{id}[?last=true].
func (s *Server) removeFactor(c *gin.Context) {
	last := c.Query("last")
	if last != "" && last != "true" {
		fail(c, badRequest("last must be true or absent"))
		return
	}
	if err := s.App.RemoveFactor(c.Request.Context(), caller(c), c.Param("id"), last == "true"); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// newRecoveryCodes is POST /v1/me/recovery-codes: a new set replaces the
// old one, shown once.
func (s *Server) newRecoveryCodes(c *gin.Context) {
	if err := emptyBody(c); err != nil {
		fail(c, err)
		return
	}
	codes, err := s.App.NewRecoveryCodes(c.Request.Context(), caller(c))
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusCreated, gin.H{"recovery_codes": codes, "remaining": len(codes)})
}
