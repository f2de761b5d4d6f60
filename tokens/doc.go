// Package tokens issues and verifies the service's JWTs (mfa_pending and
// RFC 9068 access tokens), holds the signing keys and publishes them as a
// JWKS (RFC 7517).
//
// It owns the token profiles of DESIGN.md. It must not import store, api or
// mfa: persistence of keys is reached through the KeyStore interface declared
// here and implemented by store.
//
// The roles: a KeySet keeps the keys (ES256 by default, EdDSA selectable),
// rotates them with overlap and renders the JWKS; an Issuer signs tokens with
// the KeySet's current key; a Verifier checks them against any KeyResolver,
// so a resource server can reuse it over a fetched JWKS. Verification pins
// one algorithm per kid, requires exp, checks typ, iss and aud, and makes
// the exact checks of RFC 8725: a header of alg, kid and typ only (so no
// crit, and never a key from the token: jwk, jku, x5u, x5c), no duplicated
// member, every registered claim of its JSON type, client_id on access
// tokens, a lifetime bounded by configuration, iat and auth_time not in the
// future.
// Every refusal is ErrInvalidToken (ErrExpired narrows it); callers never
// need golang-jwt.
//
// Choices of this package: a kid is the RFC 7638 SHA-256 thumbprint of the
// public key; an mfa_pending token carries the level a step-up must reach as
// "acr_values" (not "acr", which would claim a level reached).
package tokens
