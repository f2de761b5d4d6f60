package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/api/flows"
	"github.com/stepup-auth/stepup/mfa"
	"github.com/stepup-auth/stepup/store/storetest"
)

// The admin API, end to end: real instances on the real store, HTTP only.

const (
	opsSecret     = "ops-secret-0123456789abcdefghijklmnop"   // ≥ 32 characters
	auditorSecret = "auditor-secret-0123456789abcdefghijklmn" // read-only client
	testAdmins    = "ops:" + opsSecret + ",auditor:" + auditorSecret + ":ro"
)

// startAdminAPI starts n instances on one store, each with an admin
// listener serving the clients ops (read-write) and auditor (read-only),
// trusting 127.0.0.1 for X-Forwarded-For so a test can speak for several
// client addresses.
func startAdminAPI(tb testing.TB, n int) []*testApp {
	tb.Helper()
	return startApps(tb, n, appOptions{AdminClients: testAdmins, TrustedProxies: []string{"127.0.0.1"}})
}

// adminReq is one request to the admin listener.
type adminReq struct {
	method, path string
	id, secret   string    // HTTP Basic; empty id: none
	bearer       string    // a Bearer token instead
	from         string    // X-Forwarded-For; empty: the peer
	body         any       // marshalled as JSON; nil: no body
	header       [2]string // one more header, if set
}

// admin sends r to a's admin listener; it never fails the test, so
// goroutines may call it.
func (a *testApp) adminSend(r adminReq) (response, error) {
	var rd io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(r.method, "http://"+a.AdminAddr()+r.path, rd)
	if err != nil {
		return response{}, err
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.id != "" {
		req.SetBasicAuth(r.id, r.secret)
	}
	if r.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	if r.from != "" {
		req.Header.Set("X-Forwarded-For", r.from)
	}
	if r.header[0] != "" {
		req.Header.Set(r.header[0], r.header[1])
	}
	res, err := a.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

func (a *testApp) adminDo(tb testing.TB, r adminReq) response {
	tb.Helper()
	res, err := a.adminSend(r)
	if err != nil {
		tb.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	return res
}

// ops sends a request as the read-write client.
func (a *testApp) ops(tb testing.TB, method, path string, body any) response {
	tb.Helper()
	return a.adminDo(tb, adminReq{method: method, path: path, id: "ops", secret: opsSecret, body: body})
}

type (
	adminUser struct {
		ID        string    `json:"id"`
		Username  string    `json:"username"`
		CreatedAt time.Time `json:"created_at"`
		Disabled  bool      `json:"disabled"`
	}
	adminUserList struct {
		Items      []adminUser `json:"items"`
		NextCursor *string     `json:"next_cursor"`
	}
	adminEvent struct {
		ID     string `json:"id"`
		UserID string `json:"user_id"`
		Type   string `json:"type"`
		Detail string `json:"detail"`
		IP     string `json:"ip"`
		Actor  string `json:"actor"`
	}
	adminEventList struct {
		Items      []adminEvent `json:"items"`
		NextCursor *string      `json:"next_cursor"`
	}
)

// adminRoutes lists the admin API's routes from the admin listener's own
// router, with the path parameters filled in: a route added later is
// walked without anyone listing it here.
func adminRoutes(tb testing.TB, a *testApp, params map[string]string) [][2]string {
	tb.Helper()
	var out [][2]string
	for _, r := range a.AdminServer().Routes() {
		if !strings.HasPrefix(r[1], "/admin/") {
			continue
		}
		path := r[1]
		for _, seg := range strings.Split(path, "/") {
			if name, ok := strings.CutPrefix(seg, ":"); ok {
				v, known := params[name]
				if !known {
					tb.Fatalf("route %s %s: no value for path parameter %q", r[0], r[1], name)
				}
				path = strings.Replace(path, seg, v, 1)
			}
		}
		out = append(out, [2]string{r[0], path})
	}
	if len(out) < 8 {
		tb.Fatalf("the admin listener registers %d admin routes: %v", len(out), out)
	}
	return out
}

// TestAdminAuthOnEveryRoute walks every admin route of the router and
// tries it without credentials, with a wrong secret, with an unknown
// client, with a user's access token (as Bearer and as a Basic password),
// and — for every route that is not a GET — as the read-only client, and
// as the read-write client from a browser's cross-origin request. Each is
// refused, and nothing changed: the user is as before, their session still
// works.
func TestAdminAuthOnEveryRoute(t *testing.T) {
	a := startAdminAPI(t, 1)[0]
	u := newTOTPUser(t, a, "victim")
	l := a.login(t, u.Username, u.Password)
	var tok loginResult
	a.verify(t, l.MFAToken, u.code(a.Clock.step())).decode(t, http.StatusOK, &tok)
	me := func() meResult {
		var m meResult
		a.get(t, "/v1/me", tok.AccessToken).decode(t, http.StatusOK, &m)
		return m
	}
	sid := me().SID
	body := map[string]string{"username": "newcomer", "password": "a long new password for the newcomer"}

	addr := 0
	fresh := func() string { addr++; return "192.0.2." + strconv.Itoa(addr) } // each attempt its own address: no backoff
	const challenge = `Basic realm="stepup admin", charset="UTF-8"`
	for _, r := range adminRoutes(t, a, map[string]string{"id": u.ID, "sid": sid}) {
		method, path := r[0], r[1]
		var b any
		if method == http.MethodPost && path == "/admin/v1/users" {
			b = body
		}
		for name, req := range map[string]adminReq{
			"no credentials":        {},
			"wrong secret":          {id: "ops", secret: opsSecret[:len(opsSecret)-1] + "X"},
			"unknown client":        {id: "nobody", secret: opsSecret},
			"empty secret":          {id: "ops"},
			"user access token":     {bearer: tok.AccessToken},
			"token as Basic secret": {id: u.ID, secret: tok.AccessToken},
			"refresh token":         {bearer: tok.RefreshToken},
		} {
			req.method, req.path, req.body, req.from = method, path, b, fresh()
			res := a.adminDo(t, req)
			if res.Status != http.StatusUnauthorized || res.code() != "invalid_client" || res.Header.Get("WWW-Authenticate") != challenge {
				t.Errorf("%s %s, %s: %d %s, WWW-Authenticate %q; want 401 invalid_client with %q",
					method, path, name, res.Status, res.Body, res.Header.Get("WWW-Authenticate"), challenge)
			}
		}
		if method != http.MethodGet {
			// A form another site makes the operator's browser post, with
			// cached Basic credentials of the read-write client.
			for _, h := range [][2]string{{"Origin", "https://evil.example"}, {"Origin", "null"}, {"Sec-Fetch-Site", "cross-site"}} {
				res := a.adminDo(t, adminReq{method: method, path: path, id: "ops", secret: opsSecret, body: b, from: fresh(), header: h})
				if res.Status != http.StatusForbidden || res.code() != "forbidden" {
					t.Errorf("%s %s with %s: %s: %d %s, want 403 forbidden", method, path, h[0], h[1], res.Status, res.Body)
				}
			}
		}
		ro := a.adminDo(t, adminReq{method: method, path: path, id: "auditor", secret: auditorSecret, body: b, from: fresh()})
		if method == http.MethodGet {
			if ro.Status != http.StatusOK {
				t.Errorf("%s %s as the read-only client: %d %s, want 200", method, path, ro.Status, ro.Body)
			}
		} else if ro.Status != http.StatusForbidden || ro.code() != "forbidden" {
			t.Errorf("%s %s as the read-only client: %d %s, want 403 forbidden", method, path, ro.Status, ro.Body)
		}
	}

	// Nothing changed: the session lives, the user is enabled with their
	// factor, nobody was created.
	if got := me(); got.SID != sid {
		t.Errorf("session after the refused requests: %+v", got)
	}
	var detail struct {
		Disabled bool `json:"disabled"`
		Factors  []struct {
			ID string `json:"id"`
		} `json:"factors"`
	}
	r := a.ops(t, http.MethodGet, "/admin/v1/users/"+u.ID, nil)
	r.decode(t, http.StatusOK, &detail)
	if detail.Disabled || len(detail.Factors) != 1 || detail.Factors[0].ID != u.FactorID {
		t.Errorf("user after the refused requests: %+v", detail)
	}
	// The factors are shown without secrets.
	if body := string(r.Body); strings.Contains(body, u.Base32) || strings.Contains(body, "secret") ||
		strings.Contains(body, u.RecoveryCodes[0]) || strings.Contains(body, "argon2") {
		t.Errorf("the user's detail shows a secret: %s", body)
	}
	if _, err := a.DB().UserByName(context.Background(), "newcomer"); err == nil {
		t.Error("a refused POST /admin/v1/users created the user")
	}
}

// TestAdminNotOnPublicListener: the public listener has no /admin/ route,
// whatever the credentials; and the admin listener none of the public API.
func TestAdminNotOnPublicListener(t *testing.T) {
	a := startAdminAPI(t, 1)[0]
	for _, p := range []string{"/admin/v1/users", "/admin/v1/events", "/admin/", "/metrics"} {
		req, _ := http.NewRequest(http.MethodGet, a.base+p, nil)
		req.SetBasicAuth("ops", opsSecret)
		res, err := a.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		r := response{Status: res.StatusCode, Header: res.Header, Body: b}
		r.wantProblem(t, http.StatusNotFound, "not_found")
	}
	if r := a.ops(t, http.MethodGet, "/admin/v1/users", nil); r.Status != http.StatusOK {
		t.Fatalf("admin listener: %d %s", r.Status, r.Body)
	}
	for _, p := range []string{"/v1/me", "/healthz", "/v1/login"} {
		if r := a.ops(t, http.MethodGet, p, nil); r.Status != http.StatusNotFound {
			t.Errorf("admin listener %s: %d, want 404", p, r.Status)
		}
	}
}

// TestAdminAuthBackoff: wrong secrets from one address are counted in the
// store before the secret is compared; past 10, every request from that
// address — the right secret too — waits (429 and Retry-After), shared by
// every instance; another address is not slowed.
func TestAdminAuthBackoff(t *testing.T) {
	apps := startAdminAPI(t, 2)
	a, b := apps[0], apps[1]
	const attacker, admin = "198.51.100.7", "198.51.100.8"
	for i := range 10 {
		r := apps[i%2].adminDo(t, adminReq{method: http.MethodGet, path: "/admin/v1/users", id: "ops", secret: "guess-" + strconv.Itoa(i), from: attacker})
		r.wantProblem(t, http.StatusUnauthorized, "invalid_client")
	}
	for _, app := range apps {
		r := app.adminDo(t, adminReq{method: http.MethodGet, path: "/admin/v1/users", id: "ops", secret: opsSecret, from: attacker})
		r.wantProblem(t, http.StatusTooManyRequests, "rate_limited")
		if r.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if r := b.adminDo(t, adminReq{method: http.MethodGet, path: "/admin/v1/users", id: "ops", secret: opsSecret, from: admin}); r.Status != http.StatusOK {
		t.Fatalf("another address: %d %s", r.Status, r.Body)
	}
	a.Clock.Advance(2 * time.Second) // the first backoff step
	if r := a.adminDo(t, adminReq{method: http.MethodGet, path: "/admin/v1/users", id: "ops", secret: opsSecret, from: attacker}); r.Status != http.StatusOK {
		t.Fatalf("after the backoff: %d %s", r.Status, r.Body)
	}
	// The success forgave the address's failures: 10 free again.
	for i := range 10 {
		a.adminDo(t, adminReq{method: http.MethodGet, path: "/admin/v1/events", id: "ops", secret: "again-" + strconv.Itoa(i), from: attacker}).
			wantProblem(t, http.StatusUnauthorized, "invalid_client")
	}
	a.adminDo(t, adminReq{method: http.MethodGet, path: "/admin/v1/events", id: "ops", secret: "once-more", from: attacker}).
		wantProblem(t, http.StatusTooManyRequests, "rate_limited")
}

// TestAdminListUsersPaging pages through users with a small page size
// while users are created — between pages, just after and just before the
// cursor, and by a concurrent writer on another instance — and checks
// that the walk is strictly ordered (so no duplicate) and that every user
// that existed when the walk began, and every one created after the
// cursor, appears exactly once.
func TestAdminListUsersPaging(t *testing.T) {
	apps := startAdminAPI(t, 2)
	a, b := apps[0], apps[1]
	ctx := context.Background()
	var before []string
	for i := range 40 {
		name := fmt.Sprintf("u%03d", i*5)
		before = append(before, name)
		if err := a.DB().CreateUser(ctx, &mfa.User{ID: "id-" + name, Username: name, PasswordHash: "x", CreatedAt: a.Clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}

	// A concurrent writer on instance b creates users all along the range.
	stop := make(chan struct{})
	var created atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("u%03d-c%d", (i*37)%200, i)
			r, err := b.adminSend(adminReq{method: http.MethodPost, path: "/admin/v1/users", id: "ops", secret: opsSecret,
				body: map[string]string{"username": name, "password": "concurrent user password " + name}})
			if err != nil || r.Status != http.StatusCreated {
				t.Errorf("concurrent create %s: %v %d %s", name, err, r.Status, r.Body)
				return
			}
			created.Add(1)
		}
	})

	var seen []string
	var mustSee []string // created after the cursor: the walk has to reach them
	cursor := ""
	for page := 0; ; page++ {
		q := url.Values{"limit": {"7"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var l adminUserList
		a.ops(t, http.MethodGet, "/admin/v1/users?"+q.Encode(), nil).decode(t, http.StatusOK, &l)
		for _, u := range l.Items {
			seen = append(seen, u.Username)
		}
		if l.NextCursor == nil {
			break
		}
		if len(l.Items) != 7 {
			t.Fatalf("page %d: %d items with a next cursor", page, len(l.Items))
		}
		cursor = *l.NextCursor
		last := l.Items[len(l.Items)-1].Username
		// Between pages: one user right after the cursor, one right
		// before it (which an offset would turn into a duplicate).
		for _, name := range []string{last + "a", last[:len(last)-1] + "!" + strconv.Itoa(page)} {
			a.ops(t, http.MethodPost, "/admin/v1/users", map[string]string{"username": name,
				"password": "between pages password " + name}).decode(t, http.StatusCreated, &adminUser{})
		}
		mustSee = append(mustSee, last+"a")
		if page > 200 {
			t.Fatal("the walk does not end")
		}
	}
	close(stop)
	wg.Wait()
	if created.Load() == 0 {
		t.Fatal("the concurrent writer created nobody during the walk")
	}
	for i := 1; i < len(seen); i++ {
		if seen[i-1] >= seen[i] {
			t.Fatalf("walk not strictly ordered at %d: %q then %q (a duplicate or a step back)", i, seen[i-1], seen[i])
		}
	}
	for _, name := range append(before, mustSee...) {
		if _, found := slices.BinarySearch(seen, name); !found {
			t.Errorf("%q was never listed", name)
		}
	}
	for _, name := range seen {
		if _, err := a.DB().UserByName(ctx, name); err != nil {
			t.Errorf("listed %q does not exist: %v", name, err)
		}
	}
	t.Logf("walked %d users in pages of 7; %d created concurrently", len(seen), created.Load())

	// Prefix search, canonicalised like a username, paged the same way.
	var got []string
	cursor = ""
	for {
		q := url.Values{"prefix": {"U01"}, "limit": {"3"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var l adminUserList
		a.ops(t, http.MethodGet, "/admin/v1/users?"+q.Encode(), nil).decode(t, http.StatusOK, &l)
		for _, u := range l.Items {
			got = append(got, u.Username)
		}
		if l.NextCursor == nil {
			break
		}
		cursor = *l.NextCursor
	}
	var want []string
	all, err := a.DB().ListUsers(ctx, "", "", 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range all {
		if strings.HasPrefix(u.Username, "u01") {
			want = append(want, u.Username)
		}
	}
	if !slices.Equal(got, want) || len(want) < 2 {
		t.Errorf("prefix U01: %q, want %q", got, want)
	}
	// Input errors.
	for _, q := range []string{"limit=0", "limit=201", "limit=x", "cursor=bm9wZQ", "cursor=%25%25", "prefix=a%20b", "other=1", "limit=1&limit=2"} {
		a.ops(t, http.MethodGet, "/admin/v1/users?"+q, nil).wantProblem(t, http.StatusBadRequest, "invalid_request")
	}
}

// TestAdminDisable disables a user with a live session on instance 1, a
// pending second factor and a passkey, and checks on instance 2 at once:
// the access token and the refresh token are refused, the pending
// mfa_token cannot finish, neither the password nor the passkey signs in;
// a wrong password still says only invalid_credentials. Enabling restores
// sign-in.
func TestAdminDisable(t *testing.T) {
	apps := startAdminAPI(t, 2)
	a, b := apps[0], apps[1]
	u := newTOTPUser(t, a, "mallory")
	var tok loginResult
	a.verify(t, a.mfaToken(t, u.Username, u.Password), u.code(a.Clock.step())).decode(t, http.StatusOK, &tok)
	key := waNewKey(t, u.ID, false)
	a.waRegister(t, tok.AccessToken, key, "key")
	pending := a.mfaToken(t, u.Username, u.Password)
	if r := b.get(t, "/v1/me", tok.AccessToken); r.Status != http.StatusOK {
		t.Fatalf("before: %d", r.Status)
	}

	var du adminUser
	a.ops(t, http.MethodPost, "/admin/v1/users/"+u.ID+"/disable", nil).decode(t, http.StatusOK, &du)
	if !du.Disabled || du.ID != u.ID {
		t.Fatalf("disable answered %+v", du)
	}
	b.get(t, "/v1/me", tok.AccessToken).wantProblem(t, http.StatusUnauthorized, "invalid_token")
	b.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": tok.RefreshToken}).
		wantProblem(t, http.StatusBadRequest, "invalid_grant")
	b.verify(t, pending, u.code(a.Clock.step()+1)).wantProblem(t, http.StatusForbidden, "account_disabled")
	b.post(t, "/v1/login", "", credentials{u.Username, u.Password}).wantProblem(t, http.StatusForbidden, "account_disabled")
	b.post(t, "/v1/login", "", credentials{u.Username, "not the password at all"}).wantProblem(t, http.StatusUnauthorized, "invalid_credentials")
	b.waPasskeySignIn(t, key).wantProblem(t, http.StatusForbidden, "account_disabled")
	var detail adminUser
	b.ops(t, http.MethodGet, "/admin/v1/users/"+u.ID, nil).decode(t, http.StatusOK, &detail)
	if !detail.Disabled {
		t.Error("GET after disable: not disabled")
	}

	a.ops(t, http.MethodPost, "/admin/v1/users/"+u.ID+"/enable", map[string]any{}).decode(t, http.StatusOK, &du)
	if du.Disabled {
		t.Fatalf("enable answered %+v", du)
	}
	a.Clock.Advance(60 * time.Second) // a TOTP step not used yet
	var again loginResult
	b.verify(t, b.mfaToken(t, u.Username, u.Password), u.code(a.Clock.step())).decode(t, http.StatusOK, &again)
	if r := a.get(t, "/v1/me", again.AccessToken); r.Status != http.StatusOK {
		t.Errorf("after enable: /v1/me %d", r.Status)
	}
	b.waWantTokens(t, b.waPasskeySignIn(t, key), u.ID, "aal3", "hwk", "user", "mfa")
	// The old session stays ended.
	a.get(t, "/v1/me", tok.AccessToken).wantProblem(t, http.StatusUnauthorized, "invalid_token")
	a.ops(t, http.MethodPost, "/admin/v1/users/nope/disable", nil).wantProblem(t, http.StatusNotFound, "not_found")
}

// adminFeed polls the event feed from cursor until it has no more, and
// returns the events and the cursor to poll next.
func adminFeed(tb testing.TB, a *testApp, query url.Values, cursor string) ([]adminEvent, string) {
	tb.Helper()
	var out []adminEvent
	for {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r, err := a.adminSend(adminReq{method: http.MethodGet, path: "/admin/v1/events?" + q.Encode(), id: "auditor", secret: auditorSecret})
		if err != nil {
			tb.Fatal(err)
		}
		var l adminEventList
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &l) != nil || l.NextCursor == nil {
			tb.Fatalf("events: %d %s", r.Status, r.Body)
		}
		out = append(out, l.Items...)
		if len(l.Items) == 0 || *l.NextCursor == cursor {
			return out, *l.NextCursor
		}
		cursor = *l.NextCursor
	}
}

// TestAdminEventFeedExactlyOnce: three instances write security events at
// once (each through its own batching queue) while a SIEM polls the feed
// with its cursor; in the end it has received every event in the store
// exactly once.
func TestAdminEventFeedExactlyOnce(t *testing.T) {
	apps := startAdminAPI(t, 3)
	ctx := context.Background()
	var ids []string
	for i := range 6 {
		id := fmt.Sprintf("feed-%d", i)
		if err := apps[0].DB().CreateUser(ctx, &mfa.User{ID: id, Username: id, PasswordHash: "x", CreatedAt: apps[0].Clock.Now()}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	const perInstance = 40
	var writers sync.WaitGroup
	for n, app := range apps {
		for w := range 2 {
			writers.Go(func() {
				for i := range perInstance / 2 {
					path := "/admin/v1/users/" + ids[(n+w+i)%len(ids)] + "/unlock"
					r, err := app.adminSend(adminReq{method: http.MethodPost, path: path, id: "ops", secret: opsSecret})
					if err != nil || r.Status != http.StatusOK {
						t.Errorf("unlock: %v %d %s", err, r.Status, r.Body)
						return
					}
				}
			})
		}
	}
	done := make(chan struct{})
	go func() { writers.Wait(); close(done) }()

	seen := map[string]int{}
	var order []string
	cursor := ""
	polls := 0
	// One page per poll, from a different instance each time, so pages
	// and writes interleave.
	poll := func() int {
		r, err := apps[polls%3].adminSend(adminReq{method: http.MethodGet, id: "auditor", secret: auditorSecret,
			path: "/admin/v1/events?" + url.Values{"limit": {"4"}, "cursor": {cursor}}.Encode()})
		polls++
		var l adminEventList
		if err != nil || r.Status != http.StatusOK || json.Unmarshal(r.Body, &l) != nil || l.NextCursor == nil {
			t.Fatalf("events: %v %d %s", err, r.Status, r.Body)
		}
		cursor = *l.NextCursor
		for _, e := range l.Items {
			seen[e.ID]++
			order = append(order, e.ID)
		}
		return len(l.Items)
	}
	duringWrites := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			duringWrites += poll()
		}
	}
	total := 3 * perInstance
	// The queues write what is left; the feed must reach every event.
	deadline := time.Now().Add(60 * time.Second)
	for len(seen) < total && time.Now().Before(deadline) {
		poll()
		time.Sleep(5 * time.Millisecond)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s received %d times", id, n)
		}
	}
	var stored int
	for _, id := range ids {
		evs, err := apps[0].DB().Events().Events(ctx, id, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			stored++
			if seen[e.ID] != 1 {
				t.Errorf("stored event %s (%s) received %d times", e.ID, e.Type, seen[e.ID])
			}
		}
	}
	if stored != total || len(seen) != total {
		t.Errorf("%d events stored, %d received, want %d each", stored, len(seen), total)
	}
	t.Logf("%d events received exactly once over %d polls, %d of them while the instances were writing", len(order), polls, duringWrites)
	// Polling again gives nothing new.
	if es, _ := adminFeed(t, apps[1], url.Values{}, cursor); len(es) != 0 {
		t.Errorf("a poll after the end gave %d events again", len(es))
	}
}

// TestAdminActionsAreEvents: every admin action leaves a security event
// naming the admin client, with its address — create, disable, enable,
// unlock, reset, end a session, end every session, delete; the sessions
// routes end what they say and no more; the feed filters by user and type.
func TestAdminActionsAreEvents(t *testing.T) {
	a := startAdminAPI(t, 1)[0]
	var nu adminUser
	a.adminDo(t, adminReq{method: http.MethodPost, path: "/admin/v1/users", id: "ops", secret: opsSecret, from: "203.0.113.9",
		body: map[string]string{"username": "Created", "password": "an administrator's chosen password"}}).
		decode(t, http.StatusCreated, &nu)
	if nu.Username != "created" || nu.Disabled {
		t.Fatalf("created %+v", nu)
	}
	for _, act := range []string{"disable", "enable", "unlock", "reset"} {
		a.adminDo(t, adminReq{method: http.MethodPost, path: "/admin/v1/users/" + nu.ID + "/" + act, id: "ops", secret: opsSecret,
			from: "203.0.113.9"}).decode(t, http.StatusOK, &adminUser{})
	}
	// Two sign-ins of the user; the admin ends one session, then all, then
	// deletes the user.
	pw := "an administrator's chosen password"
	s1, s2 := a.login(t, "created", pw), a.login(t, "created", pw)
	var sessions struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	a.ops(t, http.MethodGet, "/admin/v1/users/"+nu.ID+"/sessions", nil).decode(t, http.StatusOK, &sessions)
	if len(sessions.Items) != 2 {
		t.Fatalf("sessions: %+v", sessions)
	}
	var detail struct {
		Sessions   []struct{ ID string } `json:"sessions"`
		LastSignIn *time.Time            `json:"last_sign_in"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for detail.LastSignIn == nil && time.Now().Before(deadline) { // the sign-in events are written off the request path
		a.ops(t, http.MethodGet, "/admin/v1/users/"+nu.ID, nil).decode(t, http.StatusOK, &detail)
		time.Sleep(5 * time.Millisecond)
	}
	if len(detail.Sessions) != 2 || detail.LastSignIn == nil || !detail.LastSignIn.Equal(a.Clock.Now()) {
		t.Errorf("detail: %d sessions, last sign-in %v; want 2 and %v", len(detail.Sessions), detail.LastSignIn, a.Clock.Now())
	}
	sid1 := sessions.Items[0].ID
	if m := a.get(t, "/v1/me", s1.AccessToken); m.Status != http.StatusOK {
		t.Fatal("s1 not live")
	}
	var me1 meResult
	a.get(t, "/v1/me", s1.AccessToken).decode(t, http.StatusOK, &me1)
	first, other := s1, s2
	if me1.SID != sid1 {
		first, other = s2, s1
	}
	r := a.adminDo(t, adminReq{method: http.MethodDelete, path: "/admin/v1/users/" + nu.ID + "/sessions/" + sid1, id: "ops", secret: opsSecret, from: "203.0.113.9"})
	if r.Status != http.StatusNoContent {
		t.Fatalf("end session: %d %s", r.Status, r.Body)
	}
	a.get(t, "/v1/me", first.AccessToken).wantProblem(t, http.StatusUnauthorized, "invalid_token")
	if m := a.get(t, "/v1/me", other.AccessToken); m.Status != http.StatusOK {
		t.Fatalf("the other session ended too: %d", m.Status)
	}
	a.ops(t, http.MethodDelete, "/admin/v1/users/"+nu.ID+"/sessions/"+sid1, nil).wantProblem(t, http.StatusNotFound, "not_found")
	r = a.adminDo(t, adminReq{method: http.MethodDelete, path: "/admin/v1/users/" + nu.ID + "/sessions", id: "ops", secret: opsSecret, from: "203.0.113.9"})
	if r.Status != http.StatusNoContent {
		t.Fatalf("end sessions: %d %s", r.Status, r.Body)
	}
	a.get(t, "/v1/me", other.AccessToken).wantProblem(t, http.StatusUnauthorized, "invalid_token")
	a.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": other.RefreshToken}).wantProblem(t, http.StatusBadRequest, "invalid_grant")
	r = a.adminDo(t, adminReq{method: http.MethodDelete, path: "/admin/v1/users/" + nu.ID, id: "ops", secret: opsSecret, from: "203.0.113.9"})
	if r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	a.ops(t, http.MethodGet, "/admin/v1/users/"+nu.ID, nil).wantProblem(t, http.StatusNotFound, "not_found")
	a.post(t, "/v1/login", "", credentials{"created", pw}).wantProblem(t, http.StatusUnauthorized, "invalid_credentials")

	want := []string{mfa.EventAdminCreated, mfa.EventAdminDisabled, mfa.EventAdminEnabled, mfa.EventAdminUnlock, mfa.EventAdminReset,
		mfa.EventSessionRevoked, mfa.EventSessionRevoked, mfa.EventAccountDeleted}
	var got []adminEvent
	deadline = time.Now().Add(30 * time.Second)
	for cursor := ""; len(got) < len(want) && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var es []adminEvent
		es, cursor = adminFeed(t, a, url.Values{"user": {nu.ID}}, cursor)
		for _, e := range es {
			if e.Actor != "" || e.Type != mfa.EventLoginSuccess {
				got = append(got, e)
			}
		}
	}
	var types []string
	for _, e := range got {
		types = append(types, e.Type)
		if e.Actor != "admin client ops" || e.IP != "203.0.113.9" || e.UserID != nu.ID {
			t.Errorf("event %+v: want actor \"admin client ops\", ip 203.0.113.9, user %s", e, nu.ID)
		}
	}
	slices.Sort(types) // two queue writers may write a moment's events in either order
	slices.Sort(want)
	if !slices.Equal(types, want) {
		t.Errorf("events %q, want %q", types, want)
	}
	es, _ := adminFeed(t, a, url.Values{"type": {mfa.EventAdminDisabled}}, "")
	if len(es) != 1 || es[0].Type != mfa.EventAdminDisabled {
		t.Errorf("type filter: %+v", es)
	}
	for _, q := range []string{"since=yesterday", "cursor=dTphYmM", "cursor=ZTotMQ", "limit=500", "bogus=1"} {
		a.ops(t, http.MethodGet, "/admin/v1/events?"+q, nil).wantProblem(t, http.StatusBadRequest, "invalid_request")
	}
}

// TestAdminClientsConfig: STEPUP_ADMIN_CLIENTS is read from the
// environment only, each secret at least 32 characters; a wrong value
// stops the start with one line that names the variable and never the
// secret; only the secrets' digests are kept.
func TestAdminClientsConfig(t *testing.T) {
	long := strings.Repeat("s", 32)
	c, err := LoadConfig(nil, env(map[string]string{"STEPUP_ADMIN_CLIENTS": "ops:" + long + ", audit:" + long + "x:ro"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.AdminClients) != 2 || c.AdminClients[0].ID != "ops" || c.AdminClients[0].ReadOnly ||
		c.AdminClients[1].ID != "audit" || !c.AdminClients[1].ReadOnly {
		t.Fatalf("clients %+v", c.AdminClients)
	}
	if strings.Contains(fmt.Sprintf("%+v", c), long) {
		t.Error("the configuration holds a secret in clear")
	}
	short := strings.Repeat("s", 31)
	for name, v := range map[string]string{
		"short secret":   "ops:" + short,
		"short ro":       "ops:" + short + ":ro",
		"no secret":      "ops",
		"no id":          ":" + long,
		"twice":          "ops:" + long + ",ops:" + long + "y",
		"space in id":    "o ps:" + long,
		"one short of 2": "ops:" + long + ",b:" + short,
	} {
		_, err := LoadConfig(nil, env(map[string]string{"STEPUP_ADMIN_CLIENTS": v}))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "STEPUP_ADMIN_CLIENTS: ") || strings.Contains(msg, "\n") || strings.Contains(msg, short) || strings.Contains(msg, long) {
			t.Errorf("%s: error %q, want one line naming STEPUP_ADMIN_CLIENTS without the secret", name, msg)
		}
	}
	for _, args := range [][]string{{"-admin-clients", "ops:" + long}, {"-admin-clients=ops:" + long}} {
		_, err := LoadConfig(args, env(nil))
		if err == nil || !strings.Contains(err.Error(), "never as a flag") || strings.Contains(err.Error(), long) {
			t.Errorf("%q: %v, want the flag refused", args, err)
		}
	}
	_, err = LoadConfig(nil, env(map[string]string{"STEPUP_ADMIN_CLIENTS": "ops:" + long, "STEPUP_ADMIN_ADDR": "off"}))
	if err == nil || !strings.HasPrefix(err.Error(), "STEPUP_ADMIN_CLIENTS: ") {
		t.Errorf("clients with the admin listener off: %v", err)
	}
}

// TestAdminCommandLine: `stepup admin` runs the admin API's application
// methods (here on a running instance's App), by username.
func TestAdminCommandLine(t *testing.T) {
	a := startAdminAPI(t, 1)[0]
	ctx := context.Background()
	op := flows.Operator{Name: "stepup admin (test)"}
	run := func(cmd, arg, stdin string) string {
		t.Helper()
		var out strings.Builder
		if err := runAdmin(ctx, a.Flows(), op, cmd, arg, strings.NewReader(stdin), &out); err != nil {
			t.Fatalf("admin %s %s: %v", cmd, arg, err)
		}
		return out.String()
	}
	pw := "a password typed on standard input"
	if got := run("create", "Carol", pw+"\n"); !strings.HasPrefix(got, "created carol (id ") {
		t.Fatalf("create: %q", got)
	}
	l := a.login(t, "carol", pw)
	if got := run("users", "ca", ""); !strings.Contains(got, "\tcarol\t0 factors\n") {
		t.Errorf("users: %q", got)
	}
	run("disable", "CAROL", "")
	a.get(t, "/v1/me", l.AccessToken).wantProblem(t, http.StatusUnauthorized, "invalid_token")
	a.post(t, "/v1/login", "", credentials{"carol", pw}).wantProblem(t, http.StatusForbidden, "account_disabled")
	if got := run("users", "", ""); !strings.Contains(got, "\tcarol\t0 factors\tdisabled\n") {
		t.Errorf("users: %q", got)
	}
	run("enable", "carol", "")
	l = a.login(t, "carol", pw)
	run("logout", "carol", "")
	a.get(t, "/v1/me", l.AccessToken).wantProblem(t, http.StatusUnauthorized, "invalid_token")
	run("delete", "carol", "")
	a.post(t, "/v1/login", "", credentials{"carol", pw}).wantProblem(t, http.StatusUnauthorized, "invalid_credentials")
	var out strings.Builder
	if err := runAdmin(ctx, a.Flows(), op, "unlock", "carol", nil, &out); err == nil || !strings.Contains(err.Error(), `user "carol"`) {
		t.Errorf("unlock of a deleted user: %v", err)
	}
	// Its actions are events naming it.
	es, _ := adminFeed(t, a, url.Values{"type": {mfa.EventAdminDisabled}}, "")
	deadline := time.Now().Add(30 * time.Second)
	for len(es) == 0 && time.Now().Before(deadline) { // written off the request path
		time.Sleep(5 * time.Millisecond)
		es, _ = adminFeed(t, a, url.Values{"type": {mfa.EventAdminDisabled}}, "")
	}
	if len(es) != 1 {
		t.Fatalf("disable events: %+v", es)
	}
	if es[0].Actor != "stepup admin (test)" {
		t.Errorf("event %+v", es[0])
	}
}

// TestAdminCommandWiring runs `stepup admin` itself — its own wiring of
// the application on the store, from the STEPUP_* environment — not only
// runAdmin: disable ends the user's pending mfa_token and sessions, delete
// frees the name.
func TestAdminCommandWiring(t *testing.T) {
	a := startApp(t, appOptions{})
	u := newTOTPUser(t, a, "cli-target")
	var tok loginResult
	a.verify(t, a.mfaToken(t, u.Username, u.Password), u.code(a.Clock.step())).decode(t, http.StatusOK, &tok)
	pending := a.mfaToken(t, u.Username, u.Password)
	// The database goes in the URI's path (the socket's host is
	// percent-encoded, which net/url refuses).
	scheme, rest, _ := strings.Cut(a.Config.MongoURI, "://")
	host, query, _ := strings.Cut(rest, "?")
	host, _, _ = strings.Cut(host, "/")
	uri := scheme + "://" + host + "/" + a.Config.Database
	if query != "" {
		uri += "?" + query
	}
	t.Setenv("STEPUP_MONGODB_URI", uri)
	t.Setenv("STEPUP_MASTER_KEY", base64.StdEncoding.EncodeToString(storetest.MasterKey))
	ctx := context.Background()
	if err := admin(ctx, []string{"disable", u.Username}); err != nil {
		t.Fatalf("stepup admin disable: %v", err)
	}
	a.Clock.Advance(30 * time.Second)
	a.verify(t, pending, u.code(a.Clock.step())).wantProblem(t, http.StatusForbidden, "account_disabled")
	a.post(t, "/v1/token/refresh", "", map[string]string{"refresh_token": tok.RefreshToken}).wantProblem(t, http.StatusBadRequest, "invalid_grant")
	if err := admin(ctx, []string{"delete", u.Username}); err != nil {
		t.Fatalf("stepup admin delete: %v", err)
	}
	a.post(t, "/v1/login", "", credentials{u.Username, u.Password}).wantProblem(t, http.StatusUnauthorized, "invalid_credentials")
}
