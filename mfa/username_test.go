package mfa_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"

	"github.com/stepup-auth/stepup/mfa"
)

func TestCanonicalUsername(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" means ErrInvalidUsername
	}{
		{"Lowercased", "Alice", "alice"},
		{"Trimmed", " alice ", "alice"},
		{"TrimmedNoBreakSpace", "\u00a0alice\u3000", "alice"},
		{"FullWidthFolded", "ＡＬＩＣＥ", "alice"},
		{"SharpSFolded", "Straße", "strasse"},
		{"KelvinSignFolded", "\u212a", "k"},
		{"ComposedAndDecomposedAgree", "Jose\u0301", "jos\u00e9"},
		{"Email", "Alice@Example.COM", "alice@example.com"},
		{"NonLatinKept", "Ωμέγα", "ωμέγα"},
		{"MaxBytes", strings.Repeat("a", 128), strings.Repeat("a", 128)},
		{"MaxBytesAfterTrim", "  " + strings.Repeat("a", 128) + " ", strings.Repeat("a", 128)},
		{"MaxBytesAfterNFKC", strings.Repeat("\u01c6", 42), strings.Repeat("d\u017e", 42)},
		{"MaxBytesMultiByte", strings.Repeat("é", 64), strings.Repeat("é", 64)},

		{"Empty", "", ""},
		{"OnlySpaces", "   ", ""},
		{"InnerSpace", "a b", ""},
		{"InnerIdeographicSpace", "a\u3000b", ""},
		{"Tab", "a\tb", ""},
		{"NUL", "a\x00b", ""},
		{"Newline", "alice\nbob", ""},
		{"DEL", "a\x7fb", ""},
		{"ZeroWidthJoiner", "a\u200db", ""},
		{"ZeroWidthSpace", "a\u200bb", ""},
		{"RightToLeftOverride", "a\u202eb", ""},
		{"ByteOrderMark", "\ufeffalice", ""},
		{"InvalidUTF8", "\xff", ""},
		{"InvalidUTF8Inside", "al\xffice", ""},
		{"TooLong", strings.Repeat("a", 129), ""},
		{"TooLongMultiByte", strings.Repeat("é", 64) + "a", ""},
		{"TooLongAfterNFKC", strings.Repeat("\u01c6", 43), ""}, // 86 bytes in, 129 once each ǆ is dž
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mfa.CanonicalUsername(tt.in)
			if tt.want == "" {
				if !errors.Is(err, mfa.ErrInvalidUsername) {
					t.Fatalf("CanonicalUsername(%q) = %q, %v; want ErrInvalidUsername", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("CanonicalUsername(%q) = %q, %v; want %q, nil", tt.in, got, err, tt.want)
			}
			if again, err := mfa.CanonicalUsername(got); err != nil || again != got {
				t.Fatalf("not idempotent: CanonicalUsername(%q) = %q, %v", got, again, err)
			}
		})
	}
}

// TestCanonicalUsernameIdempotent: a canonical name is its own canonical
// form, for every BMP character, so the name shown to a user logs them in.
func TestCanonicalUsernameIdempotent(t *testing.T) {
	cherokee := func(r rune) bool { return unicode.Is(unicode.Cherokee, r) }
	var broken []rune
	for r := rune(0); r <= 0xffff; r++ {
		in := "a" + string(r)
		once, err := mfa.CanonicalUsername(in)
		if err != nil {
			continue
		}
		twice, err := mfa.CanonicalUsername(once)
		if err == nil && twice == once {
			continue
		}
		if cherokee(r) {
			broken = append(broken, r)
			continue
		}
		t.Errorf("U+%04X: CanonicalUsername(%q) = %q, but CanonicalUsername(%q) = %q, %v", r, in, once, once, twice, err)
	}
	t.Run("Cherokee", func(t *testing.T) {
		// golang.org/x/text/cases.Fold maps U+13A0..U+13F5 and
		// U+AB70..U+ABBF onto each other (golang/go#46101); username.go
		// lower-cases once more so both cases give one name.
		if len(broken) > 0 {
			t.Fatalf("%d Cherokee letters are not stable (e.g. U+%04X)", len(broken), broken[0])
		}
		for _, pair := range [][2]string{{"a\u13a0", "a\uab70"}, {"\u13f5", "\u13fd"}} {
			x, errX := mfa.CanonicalUsername(pair[0])
			y, errY := mfa.CanonicalUsername(pair[1])
			if errX != nil || errY != nil || x != y {
				t.Errorf("case pair %q, %q: got %q, %v and %q, %v; want one name", pair[0], pair[1], x, errX, y, errY)
			}
		}
	})
}
