package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/boombuler/barcode/qr"
	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

// errLastFactor refuses to remove the last second factor unless asked
// for explicitly.
var errLastFactor = problem(http.StatusConflict, "last_factor",
	"this is the last second factor: removing it leaves only the password; repeat with ?last=true to remove it")

const (
	maxFactors       = 20
	maxNameLen       = 64
	enrollmentWindow = 15 * time.Minute // an unconfirmed factor is dropped after this
)

type factorView struct {
	ID         string     `json:"id"`
	Kind       mfa.Kind   `json:"kind"`
	Name       string     `json:"name"`
	Confirmed  bool       `json:"confirmed"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

func viewFactor(f *mfa.Factor) factorView {
	v := factorView{ID: f.ID, Kind: f.Kind, Name: f.Name, Confirmed: f.Confirmed, CreatedAt: f.CreatedAt.UTC()}
	if !f.LastUsedAt.IsZero() {
		t := f.LastUsedAt.UTC()
		v.LastUsedAt = &t
	}
	return v
}

// listFactors is GET /v1/me/factors. Secrets are never shown.
func (s *Server) listFactors(c *gin.Context) {
	u := s.caller(c)
	if u == nil {
		return
	}
	out := make([]factorView, 0, len(u.Factors))
	for i := range u.Factors {
		out = append(out, viewFactor(&u.Factors[i]))
	}
	left, err := s.Recovery.Remaining(c.Request.Context(), u)
	if err != nil {
		_ = c.Error(err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"factors": out, "recovery_codes_remaining": left})
}

type enrollRequest struct {
	Name string `json:"name"`
}

type totpEnrollment struct {
	factorView
	Secret string `json:"secret"`
	URI    string `json:"otpauth_uri"`
	QR     string `json:"qr_png"`
}

// enrollTOTP starts a TOTP enrollment: POST /v1/me/factors/totp. The
// factor counts only once confirmed. A user who has a confirmed factor
// already needs a fresh aal2 session to add one, so a stolen password alone
// cannot add the thief's authenticator.
func (s *Server) enrollTOTP(c *gin.Context) {
	var req enrollRequest
	if c.Request.ContentLength != 0 {
		if err := decode(c, &req); err != nil {
			_ = c.Error(err)
			return
		}
	}
	name, err := factorName(req.Name, "Authenticator app")
	if err != nil {
		_ = c.Error(err)
		return
	}
	ctx := c.Request.Context()
	u := s.caller(c)
	if u == nil {
		return
	}
	if err := s.mayEnroll(c, u); err != nil {
		_ = c.Error(err)
		return
	}
	enr, err := s.TOTP.Generate(u.Username)
	if err != nil {
		_ = c.Error(err)
		return
	}
	png, err := qrPNG(enr.URI)
	if err != nil {
		_ = c.Error(err)
		return
	}
	now := s.Now()
	f := mfa.Factor{ID: s.Rand(12), Kind: mfa.KindTOTP, Name: name, CreatedAt: now, Secret: enr.Secret, AddedBy: accessClaims(c).Session}
	if err := s.Users.AddFactor(ctx, u.ID, f, maxFactors, now.Add(-enrollmentWindow)); err != nil {
		_ = c.Error(err)
		return
	}
	c.Header("Location", "/v1/me/factors/"+f.ID)
	writeJSON(c, http.StatusCreated, totpEnrollment{factorView: viewFactor(&f), Secret: enr.Base32, URI: enr.URI,
		QR: "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)})
}

// mayEnroll applies the enrollment policy (mfa.Policy.Requires): the first
// factor needs any session; another needs a fresh aal2 (RFC 9470 challenge
// otherwise). A user has at most maxFactors factors. Confirmation asks the
// policy again, so a factor the user confirmed meanwhile raises the bar for
// an enrollment started before it.
func (s *Server) mayEnroll(c *gin.Context, u *mfa.User) error {
	if len(pruneUnconfirmed(u.Factors, s.Now())) >= maxFactors {
		return mfa.ErrTooManyFactors
	}
	return s.require(c, u, mfa.ChangeEnroll, nil)
}

// confirmTOTP activates a TOTP factor with a code from the app:
// POST /v1/me/factors/totp/{id}/confirm. The code's time step is claimed,
// so the confirming code cannot be used again to sign in.
func (s *Server) confirmTOTP(c *gin.Context) {
	code, err := decodeCode(c, s.TOTP.CheckFormat)
	if err != nil {
		_ = c.Error(err)
		return
	}
	ac := accessClaims(c)
	ctx := c.Request.Context()
	u := s.caller(c)
	if u == nil {
		return
	}
	f := u.Factor(c.Param("id"))
	if f == nil || f.Kind != mfa.KindTOTP || (!f.Confirmed && s.Now().Sub(f.CreatedAt) > enrollmentWindow) {
		_ = c.Error(mfa.ErrNotEnrolled)
		return
	}
	if f.Confirmed {
		_ = c.Error(mfa.ErrAlreadyConfirmed)
		return
	}
	if err := s.require(c, u, mfa.ChangeEnroll, nil); err != nil {
		_ = c.Error(err)
		return
	}
	if _, err := s.EnrollBudget.Take(ctx, "enroll|"+f.ID); err != nil {
		s.throttled(err)
		_ = c.Error(err)
		return
	}
	now := s.Now()
	step, err := s.TOTP.Match(f, code)
	if err == nil {
		// Activates the factor and takes the step in one conditional
		// update, so the confirming code cannot sign in again.
		err = s.Users.UseStep(ctx, u.ID, f.ID, step, now, true, now.Add(-enrollmentWindow))
	}
	if err != nil {
		if errors.Is(err, mfa.ErrBadCode) {
			s.m.verifies.WithLabelValues("totp_confirm", "failure").Inc()
		}
		_ = c.Error(notTheToken(err))
		return
	}
	s.m.verifies.WithLabelValues("totp_confirm", "success").Inc()
	s.event(c, u.ID, ac.Session, mfa.EventFactorAdded, "totp "+f.ID)
	first := len(u.Confirmed("")) == 0
	f.Confirmed, f.LastUsedAt, f.LastStep = true, now, step
	s.writeFactor(c, u, f, first, http.StatusOK)
}

// writeFactor answers with a newly active factor; the user's first one
// also brings the first set of recovery codes, shown this once.
func (s *Server) writeFactor(c *gin.Context, u *mfa.User, f *mfa.Factor, first bool, status int) {
	view := viewFactor(f)
	if !first || len(u.RecoveryCodes) > 0 {
		writeJSON(c, status, view)
		return
	}
	codes, err := s.replaceRecoveryCodes(c, u)
	if err != nil {
		// The factor is active; codes can be made later at /v1/me/recovery-codes.
		s.log.Warn("first recovery codes not created", "user", u.ID, "err", err)
		writeJSON(c, status, view)
		return
	}
	writeJSON(c, status, struct {
		factorView
		RecoveryCodes []string `json:"recovery_codes"`
	}{view, codes})
}

// pruneUnconfirmed drops enrollments never confirmed within the window.
func pruneUnconfirmed(fs []mfa.Factor, now time.Time) []mfa.Factor {
	out := fs[:0:0]
	for _, f := range fs {
		if f.Confirmed || now.Sub(f.CreatedAt) <= enrollmentWindow {
			out = append(out, f)
		}
	}
	return out
}

// factorName trims and checks a display name; empty gives def.
func factorName(s, def string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return def, nil
	}
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxNameLen {
		return "", badRequest("name must be at most 64 characters")
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return "", badRequest("name must not contain control characters")
		}
	}
	return s, nil
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
		_ = c.Error(err)
		return
	}
	name, err := factorName(req.Name, "")
	if err != nil || name == "" {
		_ = c.Error(badRequest("name must be 1–64 characters without control characters"))
		return
	}
	ctx := c.Request.Context()
	u, f := s.callerFactor(c)
	if f == nil {
		return
	}
	if err := s.require(c, u, mfa.ChangeRename, f); err != nil {
		_ = c.Error(err)
		return
	}
	f.Name = name
	if err := s.Users.RenameFactor(ctx, u.ID, f.ID, name); err != nil {
		_ = c.Error(err)
		return
	}
	writeJSON(c, http.StatusOK, viewFactor(f))
}

// removeFactor is DELETE /v1/me/factors/{id}. It needs what the policy
// says (mfa.Policy.Requires: fresh at the level the factor provides, so an
// aal2 session cannot remove a device-bound key; a session older than the
// factor may undo it for a while). Removing the last second factor leaves
// the password alone, so it must be asked for explicitly with ?last=true,
// and is recorded as its own security event.
func (s *Server) removeFactor(c *gin.Context) {
	ac := accessClaims(c)
	last := c.Query("last")
	if last != "" && last != "true" {
		_ = c.Error(badRequest("last must be true or absent"))
		return
	}
	ctx := c.Request.Context()
	u, f := s.callerFactor(c)
	if f == nil {
		return
	}
	if err := s.require(c, u, mfa.ChangeRemove, f); err != nil {
		_ = c.Error(err)
		return
	}
	if f.Confirmed && len(u.Confirmed("")) == 1 && last != "true" {
		_ = c.Error(errLastFactor)
		return
	}
	got, err := s.Users.RemoveFactor(ctx, u.ID, f.ID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	removed := *got
	u.Factors = slices.DeleteFunc(u.Factors, func(x mfa.Factor) bool { return x.ID == removed.ID })
	if len(u.Confirmed("")) == 0 {
		u.RecoveryCodes = nil // the store dropped them: they stood in for a second factor that no longer exists
	}
	s.event(c, u.ID, ac.Session, mfa.EventFactorRemoved, string(removed.Kind)+" "+removed.ID)
	if removed.Confirmed && len(u.Confirmed("")) == 0 {
		s.event(c, u.ID, ac.Session, mfa.EventLastFactorRemoved, "only the password is left")
	}
	if err := s.afterRemoval(c, u, ac); err != nil {
		_ = c.Error(err)
		return
	}
	if removed.Credential != nil {
		if err := s.WebAuthn.Ceremonies.ReleaseCredential(context.WithoutCancel(ctx), removed.Credential.ID); err != nil {
			s.log.Warn("credential index not released", "factor", removed.ID, "err", err)
		}
	}
	c.Status(http.StatusNoContent)
}

// afterRemoval ends the user's other sessions and downgrades the caller's
// to what it still proves (mfa.Policy.AfterRemoval), so no token issued
// afterwards names a removed method.
func (s *Server) afterRemoval(c *gin.Context, u *mfa.User, ac tokens.AccessClaims) error {
	ctx := c.Request.Context()
	now := s.Now()
	if err := s.Sessions.Store.RevokeUserSessions(ctx, u.ID, ac.Session, now); err != nil {
		return err
	}
	sess := c.MustGet(ctxSession).(*tokens.Session)
	a := s.Policy.AfterRemoval(sess.AMR, u)
	if a.ACR == sess.ACR && slices.Equal(a.AMR, sess.AMR) {
		return nil
	}
	_, err := s.Sessions.Store.SetAuth(ctx, sess.ID, sess.AuthTime, a.ACR, a.AMR, now)
	return err
}

// getFactor is GET /v1/me/factors/{id}. Another user's factor id is 404.
func (s *Server) getFactor(c *gin.Context) {
	_, f := s.callerFactor(c)
	if f == nil {
		return
	}
	writeJSON(c, http.StatusOK, viewFactor(f))
}

// callerFactor loads the caller and their factor named by the path's id;
// another user's factor id is not found. On failure it records the error
// and returns a nil factor.
func (s *Server) callerFactor(c *gin.Context) (*mfa.User, *mfa.Factor) {
	u := s.caller(c)
	if u == nil {
		return nil, nil
	}
	f := u.Factor(c.Param("id"))
	if f == nil {
		_ = c.Error(mfa.ErrNotEnrolled)
	}
	return u, f
}
