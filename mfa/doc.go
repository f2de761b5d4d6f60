// Package mfa owns the authentication factors — password, TOTP, WebAuthn —
// their verification, the attempt budgets that bound guessing, and the
// assurance policy that turns what a user proved into acr and amr values.
//
// It declares the storage interfaces it needs (UserStore, Claims, Budgets)
// and store implements them. It must not import store, api or tokens.
package mfa
