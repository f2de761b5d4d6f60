package api

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/stepup-auth/stepup/api/flows"
	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/tokens"
)

// NewAdmin builds the handler of the admin listener (STEPUP_ADMIN_ADDR):
// /metrics (Prometheus, unauthenticated, as before) and the admin API
// under /admin/v1, for admin clients with HTTP Basic (RFC 7617). It shares
// s's application, logging and request metrics; none of the public routes
// is on it, and none of its routes is on the public listener.
func (s *Server) NewAdmin(metrics http.Handler) *Server {
	a := &Server{Deps: s.Deps, cfg: s.cfg, log: s.log, engine: gin.New(), m: s.m}
	e := a.engine
	if err := e.SetTrustedProxies(s.cfg.TrustedProxies); err != nil {
		_ = e.SetTrustedProxies(nil)
	}
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	e.Use(a.requestID, a.recover, a.observe, a.securityHeaders, a.renderErrors, limitHeaders)
	e.NoRoute(func(c *gin.Context) { fail(c, errNoEndpoint) })
	e.NoMethod(func(c *gin.Context) { fail(c, errMethod) })
	if metrics != nil {
		e.GET("/metrics", gin.WrapH(metrics))
	}

	v1 := e.Group("/admin/v1", a.requireAdmin)
	v1.GET("/users", a.adminListUsers)
	v1.POST("/users", a.adminCreateUser)
	v1.GET("/users/:id", a.adminGetUser)
	v1.POST("/users/:id/disable", a.adminDisable)
	v1.POST("/users/:id/enable", a.adminEnable)
	v1.POST("/users/:id/unlock", a.adminUnlock)
	v1.POST("/users/:id/reset", a.adminReset)
	v1.DELETE("/users/:id", a.adminDeleteUser)
	v1.GET("/users/:id/sessions", a.adminUserSessions)
	v1.DELETE("/users/:id/sessions", a.adminEndUserSessions)
	v1.DELETE("/users/:id/sessions/:sid", a.adminEndUserSession)
	v1.GET("/events", a.adminEvents)
	return a
}

const ctxOperator = "operator"

// requireAdmin admits a request only with the HTTP Basic credentials of a
// configured admin client; a read-only client only for GET. A Bearer
// token, whatever it is, is no admin credential: 401 like none at all.
//
// The admin API's clients are programs, not browsers. A browser that has
// cached an operator's Basic credentials for the admin listener would send
// them with a form another site posts to it (a simple request needs no
// CORS preflight), so a change that comes with an Origin header, or that a
// browser marks as cross-site, is refused before anything else (403):
// browsers send Origin with every POST, and DELETE needs a preflight this
// listener never grants.
func (s *Server) requireAdmin(c *gin.Context) {
	if c.Request.Method != http.MethodGet {
		if c.GetHeader("Origin") != "" || c.GetHeader("Sec-Fetch-Site") == "cross-site" || c.GetHeader("Sec-Fetch-Site") == "same-site" {
			abort(c, errAdminFromBrowser)
			return
		}
	}
	id, secret, ok := c.Request.BasicAuth()
	if !ok {
		abort(c, flows.ErrAdminAuth)
		return
	}
	op, err := s.App.AdminLogin(c.Request.Context(), client(c), id, secret, c.Request.Method != http.MethodGet)
	if err != nil {
		abort(c, err)
		return
	}
	c.Set(ctxOperator, op)
	c.Next()
}

func operator(c *gin.Context) flows.Operator { return c.MustGet(ctxOperator).(flows.Operator) }

// readQuery holds the query string to the named parameters, each at most
// once, like a body's members.
func readQuery(c *gin.Context, allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range c.Request.URL.Query() {
		if !slices.Contains(allowed, k) {
			return nil, badRequest("unknown query parameter " + sanitize(k))
		}
		if len(v) != 1 {
			return nil, badRequest("query parameter " + sanitize(k) + " must appear once")
		}
		if len(v[0]) > 512 {
			return nil, badRequest("query parameter " + sanitize(k) + " is too long")
		}
		out[k] = v[0]
	}
	return out, nil
}

func queryLimit(q map[string]string) (int, error) {
	s, ok := q["limit"]
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > flows.MaxPageSize {
		return 0, flows.ErrBadLimit
	}
	return n, nil
}

// noBody refuses a body on an action that takes none, except an empty
// JSON object.
func noBody(c *gin.Context) error {
	if c.Request.ContentLength == 0 {
		return nil
	}
	var empty struct{}
	return decode(c, &empty)
}

type adminUserView struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	CreatedAt time.Time `json:"created_at"`
	Disabled  bool      `json:"disabled"`
}

func viewAdminUser(u *mfa.User) adminUserView {
	return adminUserView{ID: u.ID, Username: u.Username, CreatedAt: u.CreatedAt.UTC(), Disabled: u.Disabled}
}

// adminListUsers is GET /admin/v1/users?prefix=&cursor=&limit=.
func (s *Server) adminListUsers(c *gin.Context) {
	q, err := readQuery(c, "prefix", "cursor", "limit")
	if err != nil {
		fail(c, err)
		return
	}
	limit, err := queryLimit(q)
	if err != nil {
		fail(c, err)
		return
	}
	us, next, err := s.App.ListUsers(c.Request.Context(), q["prefix"], q["cursor"], limit)
	if err != nil {
		fail(c, err)
		return
	}
	items := make([]adminUserView, len(us))
	for i, u := range us {
		items[i] = viewAdminUser(u)
	}
	writeJSON(c, http.StatusOK, listView[adminUserView]{Items: items, NextCursor: next})
}

// listView is every list answer of the admin API: the cursor of the next
// page is absent after the last.
type listView[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

type adminFactorView struct {
	factorView
	// WebAuthn only.
	Attachment     string `json:"attachment,omitempty"`
	BackupEligible *bool  `json:"backup_eligible,omitempty"`
	Flagged        bool   `json:"flagged,omitempty"`
}

type lockView struct {
	Failures int64 `json:"failures"`
	// LockedUntil: the password path is closed until then (NIST's cap).
	LockedUntil *time.Time `json:"locked_until,omitempty"`
	// Locked: the second-factor budget is spent until an unlock.
	Locked bool `json:"locked"`
}

type adminUserDetail struct {
	adminUserView
	Factors           []adminFactorView `json:"factors"`
	RecoveryCodesLeft int               `json:"recovery_codes_remaining"`
	Locks             struct {
		Password     lockView `json:"password"`
		SecondFactor lockView `json:"second_factor"`
	} `json:"locks"`
	Sessions   []adminSessionView `json:"sessions"`
	LastSignIn *time.Time         `json:"last_sign_in,omitempty"`
}

// adminSessionView is one of a user's sessions as an administrator sees
// it: what the user sees of it ("your devices"), without "current".
type adminSessionView = sessionFields

func viewAdminSessions(ss []*tokens.Session) []adminSessionView {
	out := make([]adminSessionView, len(ss))
	for i, x := range ss {
		out[i] = viewSession(x)
	}
	return out
}

func viewAdminDetail(info *flows.UserInfo) adminUserDetail {
	u := info.User
	d := adminUserDetail{adminUserView: viewAdminUser(u), Factors: make([]adminFactorView, 0, len(u.Factors)),
		RecoveryCodesLeft: info.RecoveryCodesLeft}
	for i := range u.Factors {
		f := &u.Factors[i]
		v := adminFactorView{factorView: viewFactor(f)}
		if cr := f.Credential; cr != nil {
			be := cr.BackupEligible
			v.Attachment, v.BackupEligible, v.Flagged = cr.Attachment, &be, cr.Flagged
		}
		d.Factors = append(d.Factors, v)
	}
	d.Locks.Password = lockView{Failures: u.PasswordFailures.Failures, Locked: !info.PasswordLockedUntil.IsZero()}
	if !info.PasswordLockedUntil.IsZero() {
		t := info.PasswordLockedUntil.UTC()
		d.Locks.Password.LockedUntil = &t
	}
	d.Locks.SecondFactor = lockView{Failures: u.Attempts.Failures, Locked: info.SecondFactorLocked}
	d.Sessions = viewAdminSessions(info.Sessions)
	if !info.LastSignIn.IsZero() {
		t := info.LastSignIn.UTC()
		d.LastSignIn = &t
	}
	return d
}

// adminGetUser is GET /admin/v1/users/{id}: the user, their factors
// (never a secret), lock state and sessions.
func (s *Server) adminGetUser(c *gin.Context) {
	if _, err := readQuery(c); err != nil {
		fail(c, err)
		return
	}
	info, err := s.App.UserInfo(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, viewAdminDetail(info))
}

// adminCreateUser is POST /admin/v1/users: whatever the sign-up setting.
func (s *Server) adminCreateUser(c *gin.Context) {
	var req credentials
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	u, err := s.App.CreateUser(c.Request.Context(), operator(c), req.Username, req.Password)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", "/admin/v1/users/"+u.ID)
	writeJSON(c, http.StatusCreated, viewAdminUser(u))
}

// noInput refuses a query string and a body (but an empty JSON object) on
// a route that takes neither.
func noInput(c *gin.Context) error {
	if _, err := readQuery(c); err != nil {
		return err
	}
	return noBody(c)
}

// adminAct runs one action of an operator on the user named in the path
// and answers the user after it.
func adminAct(c *gin.Context, act func(context.Context, flows.Operator, string) (*mfa.User, error)) {
	if err := noInput(c); err != nil {
		fail(c, err)
		return
	}
	u, err := act(c.Request.Context(), operator(c), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, viewAdminUser(u))
}

// adminDisable is POST /admin/v1/users/{id}/disable: no sign-in by any
// path, every session ended.
func (s *Server) adminDisable(c *gin.Context) { adminAct(c, s.App.DisableUser) }

// adminEnable is POST /admin/v1/users/{id}/enable.
func (s *Server) adminEnable(c *gin.Context) { adminAct(c, s.App.EnableUser) }

// adminUnlock is POST /admin/v1/users/{id}/unlock: lifts the password and
// second-factor locks.
func (s *Server) adminUnlock(c *gin.Context) { adminAct(c, s.App.UnlockUser) }

// adminReset is POST /admin/v1/users/{id}/reset: removes every second
// factor and recovery code, ends every session, lifts the locks.
func (s *Server) adminReset(c *gin.Context) { adminAct(c, s.App.ResetUser) }

// adminDeleteUser is DELETE /admin/v1/users/{id}: the account, its
// factors, credentials, recovery codes and sessions; the name is free
// again at once.
func (s *Server) adminDeleteUser(c *gin.Context) { adminDo(c, s.App.DeleteUser) }

// adminDo runs an operator's action on the user of the path that answers
// nothing: 204.
func adminDo(c *gin.Context, act func(context.Context, flows.Operator, string) error) {
	if err := noInput(c); err != nil {
		fail(c, err)
		return
	}
	if err := act(c.Request.Context(), operator(c), c.Param("id")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// adminUserSessions is GET /admin/v1/users/{id}/sessions: the live
// sessions, oldest first (the whole list: no cursor).
func (s *Server) adminUserSessions(c *gin.Context) {
	if err := noInput(c); err != nil {
		fail(c, err)
		return
	}
	ss, err := s.App.UserSessions(c.Request.Context(), operator(c), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, listView[adminSessionView]{Items: viewAdminSessions(ss)})
}

// adminEndUserSessions is DELETE /admin/v1/users/{id}/sessions: every
// session ends, on every instance at once.
func (s *Server) adminEndUserSessions(c *gin.Context) { adminDo(c, s.App.EndUserSessions) }

// adminEndUserSession is DELETE /admin/v1/users/{id}/sessions/{sid}.
func (s *Server) adminEndUserSession(c *gin.Context) {
	if err := noInput(c); err != nil {
		fail(c, err)
		return
	}
	if err := s.App.EndUserSession(c.Request.Context(), operator(c), c.Param("id"), c.Param("sid")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

type adminEventView struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	Type      string    `json:"type"`
	Detail    string    `json:"detail,omitempty"`
	At        time.Time `json:"at"`
	SessionID string    `json:"sid,omitempty"`
	IP        string    `json:"ip,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	Actor     string    `json:"actor,omitempty"`
}

// adminEvents is GET /admin/v1/events?user=&type=&since=&cursor=&limit=:
// the feed of every security event, in the order they were written. The
// cursor is always given (the feed has no end): poll with it.
func (s *Server) adminEvents(c *gin.Context) {
	q, err := readQuery(c, "user", "type", "since", "cursor", "limit")
	if err != nil {
		fail(c, err)
		return
	}
	limit, err := queryLimit(q)
	if err != nil {
		fail(c, err)
		return
	}
	f := flows.EventFilter{UserID: q["user"], Type: q["type"]}
	if v, ok := q["since"]; ok {
		if f.Since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			fail(c, badRequest("since must be an RFC 3339 date-time, such as 2026-11-27T00:00:00Z"))
			return
		}
	}
	es, next, err := s.App.EventFeed(c.Request.Context(), f, q["cursor"], limit)
	if err != nil {
		fail(c, err)
		return
	}
	items := make([]adminEventView, len(es))
	for i, e := range es {
		items[i] = adminEventView{ID: e.ID, UserID: e.UserID, Type: e.Type, Detail: e.Detail, At: e.At.UTC(),
			SessionID: e.SessionID, IP: e.IP, UserAgent: e.UserAgent, Actor: e.Actor}
	}
	writeJSON(c, http.StatusOK, listView[adminEventView]{Items: items, NextCursor: next})
}
