package main

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stepup-auth/stepup/api/flows"
)

// deviceList is GET /v1/me/devices.
type deviceList struct {
	Devices []struct {
		ID       string    `json:"id"`
		Name     string    `json:"name"`
		Current  bool      `json:"current"`
		FactorAt time.Time `json:"second_factor_at"`
	} `json:"devices"`
}

// rememberWith signs u in with a proof of k and a TOTP code asking to
// remember the device, and wants it remembered.
func rememberWith(t *testing.T, a *testApp, u totpUser, k *dpopKey) loginResult {
	t.Helper()
	a.Clock.Advance(30 * time.Second) // a TOTP step not used yet
	var l loginResult
	a.request(t, "POST", "/v1/login", "", k.proof(t, a, "POST", "/v1/login", proofOpts{}), credentials{u.Username, u.Password}).
		decode(t, http.StatusOK, &l)
	if l.Status != "mfa_required" {
		t.Fatalf("login: %q, want mfa_required", l.Status)
	}
	var out struct {
		loginResult
		Remembered bool `json:"device_remembered"`
	}
	a.request(t, "POST", "/v1/mfa/totp/verify", "Bearer "+l.MFAToken, k.proof(t, a, "POST", "/v1/mfa/totp/verify", proofOpts{}),
		map[string]any{"code": u.code(a.Clock.step()), "remember_device": true}).decode(t, http.StatusOK, &out)
	if !out.Remembered {
		t.Fatal("device_remembered missing")
	}
	return out.loginResult
}

// passwordWith runs the password step with a proof of k (none when k is
// nil) and returns the answer.
func passwordWith(t *testing.T, a *testApp, u totpUser, password string, k *dpopKey) loginResult {
	t.Helper()
	proof := ""
	if k != nil {
		proof = k.proof(t, a, "POST", "/v1/login", proofOpts{})
	}
	var l loginResult
	a.request(t, "POST", "/v1/login", "", proof, credentials{u.Username, password}).decode(t, http.StatusOK, &l)
	return l
}

// TestRememberedDevice: a device remembered after a real second factor —
// bound to its DPoP key only — skips the second factor at the next
// password sign-in with that key, at aal2 with amr pwd, swk, mfa and the
// auth_time of the real second factor. Another key, no key, a forgotten
// or expired grant, or a password change ask for the second factor again;
// a step-up with a max_age shorter than the time since the real factor
// asks for a real factor.
func TestRememberedDevice(t *testing.T) {
	a := startApp(t, appOptions{RememberDevice: 2 * time.Hour})
	u := newTOTPUser(t, a, "remy")
	k := newDPoPKey(t, jose.ES256)

	t.Run("NeedsAKey", func(t *testing.T) {
		a.Clock.Advance(30 * time.Second)
		l := a.login(t, u.Username, u.Password)
		a.post(t, "/v1/mfa/totp/verify", l.MFAToken, map[string]any{"code": u.code(a.Clock.step()), "remember_device": true}).
			wantProblem(t, http.StatusBadRequest, "invalid_request")
		// nothing was spent: the same token and code still sign in
		var done loginResult
		a.verify(t, l.MFAToken, u.code(a.Clock.step())).decode(t, http.StatusOK, &done)
	})

	granted := rememberWith(t, a, u, k)
	factorAt := a.Clock.Now()
	a.Clock.Advance(time.Hour)

	l := passwordWith(t, a, u, u.Password, k)
	if l.Status != "authenticated" || l.ACR != "aal2" || !slices.Equal(l.AMR, []string{"pwd", "swk", "mfa"}) {
		t.Fatalf("remembered sign-in: %+v, want authenticated at aal2 with pwd, swk, mfa", l)
	}
	boundTo(t, l, k)
	if at := int64(jwtClaims(t, l.AccessToken)["auth_time"].(float64)); at != factorAt.Unix() {
		t.Fatalf("auth_time %d, want the real second factor's %d (not now, %d)", at, factorAt.Unix(), a.Clock.Now().Unix())
	}
	if l.RefreshToken == "" || l.RefreshToken == granted.RefreshToken {
		t.Fatal("a remembered sign-in starts a new session")
	}

	t.Run("OtherKeyOrNone", func(t *testing.T) {
		if o := passwordWith(t, a, u, u.Password, newDPoPKey(t, jose.EdDSA)); o.Status != "mfa_required" {
			t.Fatalf("another key: %q, want mfa_required", o.Status)
		}
		if o := passwordWith(t, a, u, u.Password, nil); o.Status != "mfa_required" {
			t.Fatalf("no key: %q, want mfa_required", o.Status)
		}
		a.request(t, "POST", "/v1/login", "", k.proof(t, a, "POST", "/v1/login", proofOpts{}), credentials{u.Username, "wrong password entirely"}).
			wantProblem(t, http.StatusUnauthorized, "invalid_credentials")
	})
	t.Run("StepUpAsksForARealFactor", func(t *testing.T) {
		r := a.request(t, "POST", "/v1/stepup", "DPoP "+l.AccessToken, k.proof(t, a, "POST", "/v1/stepup", proofOpts{ath: l.AccessToken}),
			map[string]any{"acr_values": "aal2", "max_age": 600})
		r.wantProblem(t, http.StatusBadRequest, "password_required")
		var up loginResult
		a.request(t, "POST", "/v1/stepup", "DPoP "+l.AccessToken, k.proof(t, a, "POST", "/v1/stepup", proofOpts{ath: l.AccessToken}),
			map[string]any{"acr_values": "aal2", "max_age": 600, "password": u.Password}).decode(t, http.StatusOK, &up)
		if up.Status != "mfa_required" || !slices.Contains(up.Factors, "totp") {
			t.Fatalf("step-up: %+v, want mfa_required offering totp", up)
		}
	})
	t.Run("ListAndForget", func(t *testing.T) {
		var list deviceList
		a.request(t, "GET", "/v1/me/devices", "DPoP "+l.AccessToken, k.proof(t, a, "GET", "/v1/me/devices", proofOpts{ath: l.AccessToken}), nil).
			decode(t, http.StatusOK, &list)
		if len(list.Devices) != 1 || !list.Devices[0].Current || !list.Devices[0].FactorAt.Equal(factorAt) {
			t.Fatalf("devices %+v, want this one, current, granted at %v", list, factorAt)
		}
		id := list.Devices[0].ID
		other := newTOTPUser(t, a, "remy-neighbour")
		ol := a.login(t, other.Username, other.Password)
		a.Clock.Advance(30 * time.Second)
		var od loginResult
		a.verify(t, ol.MFAToken, other.code(a.Clock.step())).decode(t, http.StatusOK, &od)
		a.send(http.MethodDelete, "/v1/me/devices/"+id, od.AccessToken, "", nil)
		if r, _ := a.send(http.MethodDelete, "/v1/me/devices/"+id, od.AccessToken, "", nil); r.Status != http.StatusNotFound {
			t.Fatalf("another user's DELETE: %d, want 404", r.Status)
		}
		if o := passwordWith(t, a, u, u.Password, k); o.Status != "authenticated" {
			t.Fatal("another user's DELETE forgot the device")
		}
		r := a.request(t, "DELETE", "/v1/me/devices/"+id, "DPoP "+l.AccessToken,
			k.proof(t, a, "DELETE", "/v1/me/devices/"+id, proofOpts{ath: l.AccessToken}), nil)
		if r.Status != http.StatusNoContent {
			t.Fatalf("DELETE: %d %s", r.Status, r.Body)
		}
		if o := passwordWith(t, a, u, u.Password, k); o.Status != "mfa_required" {
			t.Fatalf("after forgetting: %q, want mfa_required", o.Status)
		}
	})
	t.Run("Expired", func(t *testing.T) {
		rememberWith(t, a, u, k)
		a.Clock.Advance(2*time.Hour + time.Second)
		if o := passwordWith(t, a, u, u.Password, k); o.Status != "mfa_required" {
			t.Fatalf("after expiry: %q, want mfa_required", o.Status)
		}
	})
	t.Run("PasswordChange", func(t *testing.T) {
		fresh := rememberWith(t, a, u, k)
		newPW := "remy's new correct horse battery"
		r := a.request(t, "POST", "/v1/me/password", "DPoP "+fresh.AccessToken,
			k.proof(t, a, "POST", "/v1/me/password", proofOpts{ath: fresh.AccessToken}),
			map[string]string{"current_password": u.Password, "new_password": newPW})
		if r.Status != http.StatusNoContent {
			t.Fatalf("password change: %d %s", r.Status, r.Body)
		}
		u.Password = newPW
		if o := passwordWith(t, a, u, newPW, k); o.Status != "mfa_required" {
			t.Fatalf("after a password change: %q, want mfa_required", o.Status)
		}
	})
	t.Run("FactorRemoval", func(t *testing.T) {
		fresh := rememberWith(t, a, u, k)
		path := "/v1/me/factors/" + u.FactorID
		r := a.request(t, "DELETE", path+"?last=true", "DPoP "+fresh.AccessToken,
			k.proof(t, a, "DELETE", path, proofOpts{ath: fresh.AccessToken}), nil)
		if r.Status != http.StatusNoContent {
			t.Fatalf("factor removal: %d %s", r.Status, r.Body)
		}
		var list deviceList
		a.request(t, "GET", "/v1/me/devices", "DPoP "+fresh.AccessToken,
			k.proof(t, a, "GET", "/v1/me/devices", proofOpts{ath: fresh.AccessToken}), nil).decode(t, http.StatusOK, &list)
		if len(list.Devices) != 0 {
			t.Fatalf("devices after a factor removal: %+v, want none", list.Devices)
		}
	})
}

// TestRememberDeviceOff: with STEPUP_REMEMBER_DEVICE=0 the wish is refused
// before anything is spent.
func TestRememberDeviceOff(t *testing.T) {
	a := startApp(t, appOptions{})
	u := newTOTPUser(t, a, "nora")
	k := newDPoPKey(t, jose.ES256)
	a.Clock.Advance(30 * time.Second)
	var l loginResult
	a.request(t, "POST", "/v1/login", "", k.proof(t, a, "POST", "/v1/login", proofOpts{}), credentials{u.Username, u.Password}).
		decode(t, http.StatusOK, &l)
	a.request(t, "POST", "/v1/mfa/totp/verify", "Bearer "+l.MFAToken, k.proof(t, a, "POST", "/v1/mfa/totp/verify", proofOpts{}),
		map[string]any{"code": u.code(a.Clock.step()), "remember_device": true}).wantProblem(t, http.StatusBadRequest, "invalid_request")
}

// TestRememberedDeviceReset: a device remembered on one instance is
// remembered on another; an operator's reset (the method `stepup admin
// reset` calls) forgets it everywhere.
func TestRememberedDeviceReset(t *testing.T) {
	apps := startApps(t, 2, appOptions{RememberDevice: 2 * time.Hour})
	a, b := apps[0], apps[1]
	u := newTOTPUser(t, a, "rosa")
	k := newDPoPKey(t, jose.ES256)
	rememberWith(t, a, u, k)
	if l := passwordWith(t, b, u, u.Password, k); l.Status != "authenticated" || l.ACR != "aal2" {
		t.Fatalf("on the other instance: %+v, want the remembered device's aal2", l)
	}
	ctx := context.Background()
	if ds, err := a.DB().Devices().Devices(ctx, u.ID, a.Clock.Now()); err != nil || len(ds) != 1 {
		t.Fatalf("devices before the reset: %v, %v; want one", ds, err)
	}
	if _, err := a.Flows().Reset(ctx, flows.Operator{Name: "test"}, u.Username); err != nil {
		t.Fatal(err)
	}
	if ds, err := a.DB().Devices().Devices(ctx, u.ID, a.Clock.Now()); err != nil || len(ds) != 0 {
		t.Fatalf("devices after the reset: %v, %v; want none", ds, err)
	}
	if l := passwordWith(t, b, u, u.Password, k); l.ACR != "aal1" {
		t.Fatalf("after the reset: %+v, want the password alone (aal1), not the device", l)
	}
}

// TestDeletionForgetsRememberedDevices: an account deleted by its user
// takes its remembered devices with it — no document of the store holds
// its id any more but its security events, kept for their retention.
func TestDeletionForgetsRememberedDevices(t *testing.T) {
	a := startApp(t, appOptions{RememberDevice: 2 * time.Hour})
	u := newTOTPUser(t, a, "remembered-then-gone")
	k := newDPoPKey(t, jose.ES256)
	l := rememberWith(t, a, u, k)
	if n := docsHolding(t, a, u.ID)["devices"]; n != 1 {
		t.Fatalf("%d remembered devices stored, want 1", n)
	}
	r := a.request(t, "DELETE", "/v1/me", "DPoP "+l.AccessToken,
		k.proof(t, a, "DELETE", "/v1/me", proofOpts{ath: l.AccessToken}), map[string]string{"password": u.Password})
	if r.Status != http.StatusNoContent {
		t.Fatalf("DELETE /v1/me: %d %s", r.Status, r.Body)
	}
	for coll, n := range docsHolding(t, a, u.ID) {
		if coll != "events" {
			t.Errorf("%s: %d documents still hold the deleted user's id", coll, n)
		}
	}
}
