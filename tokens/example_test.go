package tokens

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A service instance: keys from a KeyStore, an Issuer for the service's own
// tokens, and a Verifier, which a resource server builds the same way over
// any KeyResolver.
func Example() {
	ctx := context.Background()
	keys := NewKeySet(newMemStore(), KeySetOptions{}) // store.Keys in the service
	if err := keys.Refresh(ctx); err != nil {
		panic(err)
	}
	// In the service: go keys.Run(ctx, time.Minute)

	issuer := NewIssuer(keys, IssuerConfig{Issuer: "https://auth.example.com", Audiences: []string{"orders"}, ClientID: "spa"})
	verifier := NewVerifier(keys, VerifierConfig{Issuer: "https://auth.example.com", Audiences: []string{"orders"}})

	mfaToken, _, _ := issuer.Pending(PendingClaims{Subject: "user-1", AMR: []string{"pwd"}})
	pending, err := verifier.Pending(mfaToken, "https://auth.example.com/v1/mfa")
	fmt.Println(pending.Subject, pending.AMR, err)

	access, _, _ := issuer.Access(pending.Subject, "sess-1", time.Now(), "aal2", []string{"pwd", "otp", "mfa"})
	claims, err := verifier.Access(access)
	fmt.Println(claims.Subject, claims.ACR, claims.AMR, err)

	_, err = verifier.Access(mfaToken) // an mfa_pending token is worthless here
	fmt.Println(errors.Is(err, ErrInvalidToken))
	// Output:
	// user-1 [pwd] <nil>
	// user-1 aal2 [pwd otp mfa] <nil>
	// true
}
