package uitest

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"
)

// An RFC 6238 TOTP written for the tests, independent of the server's
// (pquerna/otp): HMAC-SHA-1 over the big-endian step counter, dynamic
// truncation (RFC 4226 §5.3), 30 s steps, on the real clock: the service
// runs in its own process on time.Now.

// hotp is RFC 4226 HOTP with the given number of digits.
func hotp(secret []byte, counter uint64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac := hmac.New(sha1.New, secret)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// totpStep is the current 30 s time step.
func totpStep() int64 { return time.Now().Unix() / 30 }

// totpCode is the 6-digit code of a 30 s time step.
func totpCode(secret []byte, step int64) string { return hotp(secret, uint64(step), 6) }

// wrongCode is a 6-digit code that is none of the codes of the steps around
// step (±2), different for each salt.
func wrongCode(secret []byte, step int64, salt int) string {
	for i := salt; ; i++ {
		c := fmt.Sprintf("%06d", (i*7919+104729)%1000000)
		ok := true
		for s := step - 2; s <= step+2; s++ {
			if totpCode(secret, s) == c {
				ok = false
			}
		}
		if ok {
			return c
		}
	}
}

// decodeBase32 decodes an authenticator-app secret: RFC 4648 base32, upper
// case, padding optional.
func decodeBase32(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimRight(strings.ToUpper(s), "="))
	if err != nil {
		tb.Fatalf("secret %q is not base32: %v", s, err)
	}
	return b
}

// TestTOTPReference checks the test's own TOTP against the SHA-1 vectors of
// RFC 6238 Appendix B, so the codes typed into the page rest on a known-good
// oracle.
func TestTOTPReference(t *testing.T) {
	secret := []byte("12345678901234567890")
	for _, tc := range []struct {
		unix int64
		want string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	} {
		if got := hotp(secret, uint64(tc.unix/30), 8); got != tc.want {
			t.Errorf("T=%d: got %s, want %s", tc.unix, got, tc.want)
		}
		if got, want := totpCode(secret, tc.unix/30), tc.want[2:]; got != want {
			t.Errorf("T=%d 6 digits: got %s, want %s", tc.unix, got, want)
		}
	}
}
