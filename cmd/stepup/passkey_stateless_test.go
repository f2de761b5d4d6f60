package main

import (
	"context"
	"net/http"
	"testing"
)

// TestPasskeyOptionsStateless: anonymous passkey options cost the store
// nothing (the ceremony's state is sealed into its challenge), and sign-in
// with those options still works, once.
func TestPasskeyOptionsStateless(t *testing.T) {
	a := startApp(t, appOptions{})
	const username, password = "pk-stateless", "correct horse battery staple"
	user := a.signup(t, username, password)
	l := a.login(t, username, password)
	if l.Status != "authenticated" || l.AccessToken == "" {
		t.Fatalf("login %+v, want authenticated at aal1", l)
	}
	key := waNewKey(t, user.ID, false)
	a.waRegister(t, l.AccessToken, key, "Passkey")

	ctx := context.Background()
	count := func() int64 {
		t.Helper()
		n, err := a.DB().Ceremonies().Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()

	const total, batch = 2000, 100
	challenges := make(map[string]bool, total)
	for range total / batch {
		rs := fanOut(t, batch, func(int) (response, error) {
			return a.send(http.MethodPost, "/v1/passkeys/options", "", "", nil)
		})
		for _, r := range rs {
			if r.Status != http.StatusOK {
				t.Fatalf("POST /v1/passkeys/options: status %d, want 200; body %s", r.Status, r.Body)
			}
			challenges[string(r.Body)] = true
		}
	}
	if len(challenges) != total {
		t.Errorf("%d distinct option bodies of %d, want all distinct", len(challenges), total)
	}
	if after := count(); after != before {
		t.Errorf("ceremony documents: %d before %d anonymous options requests, %d after; want no change", before, total, after)
	}

	o := a.waRequest(t, "/v1/passkeys/options", "")
	body := key.assert(o)
	a.waWantTokens(t, a.raw(t, "/v1/passkeys/verify", "", "application/json", body), user.ID, "aal3", "hwk", "user", "mfa")
	if after := count(); after != before+1 {
		t.Errorf("ceremony documents after a sign-in: %d, want %d (the used challenge)", after, before+1)
	}
	a.raw(t, "/v1/passkeys/verify", "", "application/json", body).wantProblem(t, http.StatusUnauthorized, "mfa_failed")
	a.raw(t, "/v1/passkeys/verify", "", "application/json", key.assert(o)).wantProblem(t, http.StatusUnauthorized, "mfa_failed")
	a.waWantTokens(t, a.waPasskeySignIn(t, key), user.ID, "aal3", "hwk", "user", "mfa")
}
