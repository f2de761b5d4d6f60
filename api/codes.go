package api

// Code is a problem's stable machine code (the "code" member of every
// RFC 9457 body). Every code the service sends is declared here, once;
// the contract test checks this list against openapi.yaml's enum both ways.
type Code string

// The codes.
const (
	CodeInvalidRequest       Code = "invalid_request"
	CodeUnsupportedMediaType Code = "unsupported_media_type"
	CodeRequestTooLarge      Code = "request_too_large"
	CodeInvalidCredentials   Code = "invalid_credentials"
	CodeMFAFailed            Code = "mfa_failed"
	CodeInvalidToken         Code = "invalid_token"
	CodeInsufficient         Code = "insufficient_user_authentication"
	CodeRateLimited          Code = "rate_limited"
	CodeAccountLocked        Code = "account_locked"
	CodeOverloaded           Code = "overloaded"
	CodeConflict             Code = "conflict"
	CodeNotFound             Code = "not_found"
	CodeSignupClosed         Code = "signup_closed"
	CodeInvalidGrant         Code = "invalid_grant"
	CodeUnavailable          Code = "unavailable"
	CodeInternalError        Code = "internal_error"
	CodeMethodNotAllowed     Code = "method_not_allowed"
	CodeInvalidClient        Code = "invalid_client"
	CodeUnmet                Code = "unmet_authentication_requirements"
	CodeCSRF                 Code = "csrf_check_failed"
	CodeLastFactor           Code = "last_factor"
	CodePasswordRequired     Code = "password_required"
	CodeHeadersTooLarge      Code = "request_header_fields_too_large"
	CodeForbidden            Code = "forbidden"
	CodeAccountDisabled      Code = "account_disabled"
	CodeInvalidDPoPProof     Code = "invalid_dpop_proof" // RFC 9449 §5, §7.1
	CodeUseDPoPNonce         Code = "use_dpop_nonce"     // RFC 9449 §8, §9
)

// Codes lists every code above.
var Codes = []Code{CodeInvalidRequest, CodeUnsupportedMediaType, CodeRequestTooLarge, CodeInvalidCredentials,
	CodeMFAFailed, CodeInvalidToken, CodeInsufficient, CodeRateLimited, CodeAccountLocked, CodeOverloaded,
	CodeConflict, CodeNotFound, CodeSignupClosed, CodeInvalidGrant, CodeUnavailable, CodeInternalError,
	CodeMethodNotAllowed, CodeInvalidClient, CodeUnmet, CodeCSRF, CodeLastFactor, CodePasswordRequired, CodeHeadersTooLarge,
	CodeForbidden, CodeAccountDisabled,
	CodeInvalidDPoPProof, CodeUseDPoPNonce}
