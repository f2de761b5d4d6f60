package guard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/stepup-auth/stepup/tokens/guard"
	"github.com/stepup-auth/stepup/tokens/guard/guardtest"
)

// A resource server demanding aal2 within five minutes for a transfer. The
// authorization server here is guardtest's stand-in: real keys, metadata
// and JWKS over HTTP, real signatures.
func Example() {
	as, err := guardtest.Start(guardtest.Options{Audience: "orders"})
	if err != nil {
		panic(err)
	}
	defer as.Close()

	ctx := context.Background()
	keys, err := guard.NewJWKS(ctx, guard.JWKSConfig{Issuer: as.URL})
	if err != nil {
		panic(err)
	}
	defer keys.Close()
	g, err := guard.New(keys, guard.Config{Issuer: as.URL, Audience: "orders", Now: as.Now})
	if err != nil {
		panic(err)
	}
	transfer := g.Require("aal2", 5*time.Minute)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := guard.FromContext(r.Context())
		fmt.Fprintf(w, "transfer by %s at %s", claims.Subject, claims.ACR)
	}))

	call := func(token string) {
		r := httptest.NewRequest(http.MethodPost, "/transfer", nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		transfer.ServeHTTP(w, r)
		if w.Code == http.StatusOK {
			fmt.Println(w.Code, w.Body)
			return
		}
		fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	}
	now := as.Now()
	call("")
	call("not-a-jwt")
	aal1, _ := as.Issue("aal1", []string{"pwd"}, now)
	stale, _ := as.Issue("aal2", []string{"pwd", "otp", "mfa"}, now.Add(-time.Hour))
	fresh, _ := as.Issue("aal2", []string{"pwd", "otp", "mfa"}, now)
	call(aal1)
	call(stale)
	call(fresh)
	// Output:
	// 401 Bearer realm="orders"
	// 401 Bearer realm="orders", error="invalid_token", error_description="the access token is invalid"
	// 401 Bearer realm="orders", error="insufficient_user_authentication", error_description="authentication level aal2 or higher is required", acr_values="aal2", max_age="300"
	// 401 Bearer realm="orders", error="insufficient_user_authentication", error_description="a more recent authentication is required", acr_values="aal2", max_age="300"
	// 200 transfer by user-1 at aal2
}

// Several demands on one route: level, freshness and a hardware-bound
// authenticator.
func ExampleGuard_Middleware() {
	as, err := guardtest.Start(guardtest.Options{})
	if err != nil {
		panic(err)
	}
	defer as.Close()
	keys, err := guard.NewJWKS(context.Background(), guard.JWKSConfig{Issuer: as.URL})
	if err != nil {
		panic(err)
	}
	defer keys.Close()
	g, _ := guard.New(keys, guard.Config{Issuer: as.URL, Audience: as.Audience, Now: as.Now})

	removeKey := g.Middleware(guard.Requirement{ACR: "aal2", MaxAge: time.Minute, AMR: []string{"hwk"}})(
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))

	for _, amr := range [][]string{{"pwd", "otp", "mfa"}, {"pwd", "hwk", "mfa"}} {
		r := httptest.NewRequest(http.MethodDelete, "/keys/1", nil)
		tok, _ := as.Issue("aal3", amr, as.Now())
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		removeKey.ServeHTTP(w, r)
		fmt.Println(amr, w.Code, w.Header().Get("WWW-Authenticate"))
	}
	// Output:
	// [pwd otp mfa] 401 Bearer realm="stepup", error="insufficient_user_authentication", error_description="authentication with hwk is required", acr_values="aal2", max_age="60"
	// [pwd hwk mfa] 204
}
