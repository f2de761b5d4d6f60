package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/stepup-auth/stepup/store/storetest"
)

type deleteBody struct {
	Password string `json:"password"`
}

// deleteMe sends DELETE /v1/me with body (raw JSON).
func (a *testApp) deleteMe(tb testing.TB, token, body string) response {
	tb.Helper()
	r, err := a.send(http.MethodDelete, "/v1/me", token, "application/json", []byte(body))
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// docsHolding returns, for every collection of the app's database, how
// many documents hold s anywhere (as extended JSON).
func docsHolding(tb testing.TB, a *testApp, s string) map[string]int {
	tb.Helper()
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(storetest.URI(tb)))
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = client.Disconnect(ctx) }()
	db := client.Database(a.Config.Database)
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]int{}
	for _, name := range names {
		cur, err := db.Collection(name).Find(ctx, bson.D{})
		if err != nil {
			tb.Fatal(err)
		}
		for cur.Next(ctx) {
			j, err := bson.MarshalExtJSON(cur.Current, false, false)
			if err != nil {
				tb.Fatal(err)
			}
			if strings.Contains(strings.ToLower(string(j)), strings.ToLower(s)) {
				out[name]++
			}
		}
		if err := cur.Err(); err != nil {
			tb.Fatal(err)
		}
		_ = cur.Close(ctx)
	}
	return out
}

// TestAccountDeletion: a user with TOTP, recovery codes and a security key
// deletes the account over HTTP on two instances. A missing fresh aal2 is
// challenged and a wrong password refused (and counted), both deleting
// nothing. Afterwards every old access, refresh and mfa token, TOTP code,
// recovery code and the key are refused on every instance; nothing in the
// store holds the name; and a new account with the same name (and
// password) shares none of it.
func TestAccountDeletion(t *testing.T) {
	apps := startApps(t, 2, appOptions{})
	a0, a1 := apps[0], apps[1]
	clk := a0.Clock
	u := newTOTPUser(t, a0, "Delete-Alice")
	var s1 loginResult // aal2, password + TOTP
	a0.verify(t, a0.mfaToken(t, u.Username, u.Password), u.code(clk.step())).decode(t, http.StatusOK, &s1)
	key := waNewKey(t, u.ID, false)
	a0.waRegister(t, s1.AccessToken, key, "YubiKey")
	// An mfa_token that is still outstanding when the account goes.
	outstanding := a1.mfaToken(t, u.Username, u.Password)

	t.Run("StaleAAL2Challenged", func(t *testing.T) {
		clk.Advance(11 * time.Minute)
		waWantStepUp(t, a1.deleteMe(t, s1.AccessToken, `{"password":"`+u.Password+`"}`), "aal2")
		a1.get(t, "/v1/me", s1.AccessToken).decode(t, http.StatusOK, &meResult{})
		if f := a1.waFactors(t, s1.AccessToken); len(f) != 2 {
			t.Fatalf("after a refused deletion: %d factors, want 2", len(f))
		}
	})

	var s2 loginResult // a fresh aal2
	clk.Advance(30 * time.Second)
	a1.verify(t, a1.mfaToken(t, u.Username, u.Password), u.code(clk.step())).decode(t, http.StatusOK, &s2)

	t.Run("StrictBody", func(t *testing.T) {
		for _, body := range []string{`{}`, `{"password":null}`, `{"Password":"` + u.Password + `"}`,
			`{"password":"` + u.Password + `","x":1}`, `{"password":"a","password":"` + u.Password + `"}`} {
			a0.deleteMe(t, s2.AccessToken, body).wantProblem(t, http.StatusBadRequest, "invalid_request")
		}
		r, err := a0.send(http.MethodDelete, "/v1/me", s2.AccessToken, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.wantProblem(t, http.StatusUnsupportedMediaType, "unsupported_media_type")
	})

	t.Run("WrongPasswordCounted", func(t *testing.T) {
		before, err := a0.DB().User(context.Background(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		p := a0.deleteMe(t, s2.AccessToken, `{"password":"not the password, surely"}`).wantProblem(t, http.StatusBadRequest, "invalid_credentials")
		if strings.Contains(p.Detail, "surely") {
			t.Errorf("the problem echoes the password: %q", p.Detail)
		}
		after, err := a0.DB().User(context.Background(), u.ID)
		if err != nil {
			t.Fatalf("user after a wrong password: %v", err)
		}
		if after.PasswordFailures.Failures != before.PasswordFailures.Failures+1 || len(after.Factors) != 2 {
			t.Fatalf("failures %d → %d, %d factors; want one more failure and both factors", before.PasswordFailures.Failures,
				after.PasswordFailures.Failures, len(after.Factors))
		}
		wantAccessWorks(t, apps, s2.AccessToken)
	})

	if r := a1.deleteMe(t, s2.AccessToken, `{"password":"`+u.Password+`"}`); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}

	// oldRefused tries everything the old account had, on every instance.
	oldRefused := func(t *testing.T) {
		t.Helper()
		wantEnded(t, apps, s1.AccessToken, s1.RefreshToken)
		wantEnded(t, apps, s2.AccessToken, s2.RefreshToken)
		for i, a := range apps {
			r := a.verify(t, outstanding, u.code(clk.step()+1))
			if r.Status != http.StatusUnauthorized || r.code() != "invalid_token" {
				t.Errorf("instance %d: the old mfa_token: %d %s, want 401 invalid_token", i, r.Status, r.Body)
			}
			r = a.post(t, "/v1/mfa/recovery/verify", outstanding, codeBody{u.RecoveryCodes[0]})
			if r.Status != http.StatusUnauthorized {
				t.Errorf("instance %d: a recovery code with the old mfa_token: %d %s, want 401", i, r.Status, r.Body)
			}
			body := key.assert(a.waRequest(t, "/v1/passkeys/options", ""))
			if r := a.raw(t, "/v1/passkeys/verify", "", "application/json", body); r.Status != http.StatusUnauthorized {
				t.Errorf("instance %d: the old key's passkey sign-in: %d %s, want 401", i, r.Status, r.Body)
			}
		}
	}
	// Before anything else touches the name (a sign-in attempt on any
	// name, existing or not, keeps a budget under it).
	t.Run("NothingHoldsTheName", func(t *testing.T) {
		if got := docsHolding(t, a0, "delete-alice"); len(got) != 0 {
			t.Fatalf("documents holding the deleted username: %v", got)
		}
		// The events stay, under the random id (the ones written so far:
		// they are written off the request path).
		if got := docsHolding(t, a0, u.ID); got["events"] == 0 || got["users"] != 0 || got["sessions"] != 0 {
			t.Fatalf("documents holding the old id: %v; want events only", got)
		}
	})

	t.Run("OldAccountRefused", func(t *testing.T) {
		oldRefused(t)
		a0.post(t, "/v1/login", "", credentials{u.Username, u.Password}).wantProblem(t, http.StatusUnauthorized, "invalid_credentials")
	})

	t.Run("SameNameSharesNothing", func(t *testing.T) {
		nu := a1.signup(t, u.Username, u.Password)
		if nu.ID == u.ID {
			t.Fatal("the new account has the old id")
		}
		l := a0.login(t, u.Username, u.Password)
		if l.Status != "authenticated" || l.ACR != "aal1" {
			t.Fatalf("new account's sign-in: %+v, want aal1 tokens (no factor of the old one)", l)
		}
		if f := a0.waFactors(t, l.AccessToken); len(f) != 0 {
			t.Fatalf("new account has %d factors, want none", len(f))
		}
		if items := a1.sessions(t, l.AccessToken); len(items) != 1 {
			t.Fatalf("new account has %d sessions, want its own", len(items))
		}
		oldRefused(t)
		// The new account gets a second factor of its own: its mfa_token
		// takes none of the old TOTP codes or recovery codes.
		var enr factorResult
		a0.post(t, "/v1/me/factors/totp", l.AccessToken, nil).decode(t, http.StatusCreated, &enr)
		secret := decodeBase32(t, enr.Secret)
		a0.post(t, "/v1/me/factors/totp/"+enr.ID+"/confirm", l.AccessToken, codeBody{totpCode(secret, clk.step())}).decode(t, http.StatusOK, &factorResult{})
		fresh := a1.mfaToken(t, u.Username, u.Password)
		a1.verify(t, fresh, u.code(clk.step()+1)).wantProblem(t, http.StatusUnauthorized, "mfa_failed")
		a1.post(t, "/v1/mfa/recovery/verify", fresh, codeBody{u.RecoveryCodes[1]}).wantProblem(t, http.StatusUnauthorized, "mfa_failed")
		// The old key's credential id was released: the same key registers
		// with the new account; the old key's handle still signs nobody in.
		var again loginResult
		a0.verify(t, a0.mfaToken(t, u.Username, u.Password), totpCode(secret, clk.step()+1)).decode(t, http.StatusOK, &again)
		reused := &waKey{auth: key.auth, cred: key.cred}
		reused.auth.Options.UserHandle = []byte(nu.ID)
		a0.waRegister(t, again.AccessToken, reused, "same key")
		oldRefused(t)
	})
}

// TestAccountDeletionRace: while one instance deletes the account, two
// others rotate its sessions' refresh tokens and sign it in again. Whatever
// the interleaving, every request gets a definite answer (tokens, refused,
// or busy with nothing issued), and afterwards no
// token any of them handed out works on any instance.
func TestAccountDeletionRace(t *testing.T) {
	apps := startApps(t, 3, appOptions{})
	const name, pw = "race-bob", "correct horse battery staple"
	apps[0].signup(t, name, pw)
	var sessions []loginResult
	for i := range 4 {
		sessions = append(sessions, apps[i%3].login(t, name, pw))
	}
	const signIns = 3
	rs := fanOut(t, 1+len(sessions)+signIns, func(i int) (response, error) {
		switch {
		case i == 0:
			return apps[0].send(http.MethodDelete, "/v1/me", sessions[0].AccessToken, "application/json", []byte(`{"password":"`+pw+`"}`))
		case i <= len(sessions):
			return apps[1].postJSON("/v1/token/refresh", "", map[string]string{"refresh_token": sessions[i-1].RefreshToken})
		default:
			return apps[2].postJSON("/v1/login", "", credentials{name, pw})
		}
	})
	if rs[0].Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", rs[0].Status, rs[0].Body)
	}
	var issued []loginResult
	for i, r := range rs[1:] {
		switch got := fmt.Sprintf("%d %s", r.Status, r.code()); got {
		case "200 ":
			var l loginResult
			r.decode(t, http.StatusOK, &l)
			issued = append(issued, l)
		case "400 invalid_grant", "401 invalid_credentials":
		case "503 overloaded": // one address holds a few places in the hashing queue: nothing issued
		default:
			t.Errorf("request %d racing the deletion: %s %s", i+1, got, r.Body)
		}
	}
	t.Logf("%d of %d racing requests got tokens before the deletion took them back", len(issued), len(rs)-1)
	for _, l := range append(issued, sessions...) {
		wantEnded(t, apps, l.AccessToken, l.RefreshToken)
	}
	apps[1].post(t, "/v1/login", "", credentials{name, pw}).wantProblem(t, http.StatusUnauthorized, "invalid_credentials")
	if got := docsHolding(t, apps[0], name); len(got) != 1 || got["budgets"] != 1 { // that last attempt's
		t.Errorf("documents holding the name: %v; want only the last attempt's budget", got)
	}
	oldID, _ := parseJWT(t, sessions[0].AccessToken).Claims["sub"].(string)
	if got := docsHolding(t, apps[0], oldID); oldID == "" || got["sessions"] != 0 || got["users"] != 0 {
		t.Errorf("documents holding the old id: %v; want no session or user", got)
	}
}

// TestEventRetentionConfig: STEPUP_EVENT_RETENTION defaults to 90 days and
// refuses what is not a duration from 1h to 87600h, in one line naming it.
func TestEventRetentionConfig(t *testing.T) {
	c, err := LoadConfig(nil, env(nil))
	if err != nil || c.EventRetention != 90*24*time.Hour {
		t.Fatalf("default: %v, %v; want 2160h", c.EventRetention, err)
	}
	if c, err := LoadConfig([]string{"-event-retention", "720h"}, env(nil)); err != nil || c.EventRetention != 720*time.Hour {
		t.Fatalf("-event-retention 720h: %v, %v", c.EventRetention, err)
	}
	for _, v := range []string{"forever", "30m", "87601h", "-1h"} {
		_, err := LoadConfig(nil, env(map[string]string{"STEPUP_EVENT_RETENTION": v}))
		if err == nil || !strings.HasPrefix(err.Error(), "STEPUP_EVENT_RETENTION: ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want one line naming STEPUP_EVENT_RETENTION", v, err)
		}
	}
}
