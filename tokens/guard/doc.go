// Package guard is what a resource server imports to accept stepup access
// tokens and demand an assurance level: it verifies RFC 9068 access tokens
// offline against the authorization server's published keys, holds them to
// an acr level, a maximum authentication age and required amr values, and
// answers a token that falls short with the RFC 9470 step-up challenge.
//
// It owns the resource-server side: key discovery and caching (JWKS), the
// Bearer challenges (RFC 6750 §3, RFC 9470 §3) with RFC 9457 problem
// bodies, and net/http middleware. Token verification itself is
// tokens.Verifier's. It depends on the standard library, golang-jwt and
// package tokens only, never on the server (store, api, mfa) nor on a web
// framework; the Gin adapter is the separate package ginguard, and
// guardtest runs a stand-in authorization server for tests.
//
// Usage:
//
//	keys, err := guard.NewJWKS(ctx, guard.JWKSConfig{Issuer: "https://auth.example.com"})
//	if err != nil {
//		return err // metadata or key set unreachable or unacceptable
//	}
//	defer keys.Close()
//	g, err := guard.New(keys, guard.Config{Issuer: "https://auth.example.com", Audience: "orders"})
//	mux.Handle("GET /orders", g.Require("aal1", 0)(listOrders))
//	mux.Handle("POST /transfer", g.Require("aal2", 5*time.Minute)(transfer))
//	mux.Handle("DELETE /keys/{id}", g.Middleware(guard.Requirement{ACR: "aal3", AMR: []string{"hwk"}})(removeKey))
//	// in a handler: claims, _ := guard.FromContext(r.Context())
//
// A token below the level gets 401 with
//
//	WWW-Authenticate: Bearer realm="orders", error="insufficient_user_authentication",
//	    error_description="...", acr_values="aal2", max_age="300"
//
// which the client answers with POST /v1/stepup {acr_values, max_age} at the
// authorization server, then retries with the new token.
//
// DPoP (RFC 9449): with Config.URL set to the server's public base URL, a
// token bound to a key (cnf.jkt) is accepted with "Authorization: DPoP
// <token>" and a DPoP proof of that key for this method and URL (ath the
// token's hash, iat within DPoPMaxAge, a jti this Guard has not seen), and
// refused as a Bearer token. Requirement.DPoP makes a route refuse Bearer
// tokens altogether. Refusals carry a DPoP challenge
// (WWW-Authenticate: DPoP algs="ES256 EdDSA", error=…, and acr_values and
// max_age on step-up). The jti cache is per instance: see dpop.go for what
// that protects and what not. Server nonces are not used by the Guard.
package guard
