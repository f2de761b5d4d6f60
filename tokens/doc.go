// Package tokens issues and verifies the service's JWTs (mfa_pending and
// RFC 9068 access tokens), holds the signing keys and publishes them as a
// JWKS (RFC 7517).
//
// It owns the token profiles of DESIGN.md. It must not import store, api or
// mfa: persistence of keys is reached through the KeyStore interface declared
// here and implemented by store.
package tokens
