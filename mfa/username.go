package mfa

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// MaxUsernameLen bounds a canonical username in bytes.
const MaxUsernameLen = 128

var folder = cases.Fold()

// CanonicalUsername returns the form a username is stored and compared in:
// Unicode NFKC, then case folding, then NFKC again (folding can denormalise),
// with leading and trailing white space trimmed. It returns
// ErrInvalidUsername for an empty name, invalid UTF-8, control or format
// characters, any inner white space, or a name over MaxUsernameLen bytes.
func CanonicalUsername(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", ErrInvalidUsername
	}
	s = norm.NFKC.String(folder.String(norm.NFKC.String(s)))
	// x/text's folding maps Cherokee to its uppercase letters and is then
	// not idempotent (golang/go#46101); lower-casing once more makes the
	// canonical form a fixed point for every code point.
	s = norm.NFKC.String(strings.ToLower(s))
	s = strings.TrimSpace(s)
	if s == "" || len(s) > MaxUsernameLen {
		return "", ErrInvalidUsername
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) ||
			r == utf8.RuneError || !unicode.IsPrint(r) {
			return "", ErrInvalidUsername
		}
	}
	return s, nil
}
