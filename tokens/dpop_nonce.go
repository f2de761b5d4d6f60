package tokens

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// DPoPNonces makes and checks server nonces for DPoP proofs (RFC 9449 §8)
// without state: a nonce is a time slot and an HMAC of it under a key every
// instance of the service derives from the master key, so each instance
// accepts the nonces of every other. A nonce is accepted during its slot
// and the next one, so it lives between one and two Periods; it limits how
// long before use a proof can have been made (pre-generated proofs of a
// stolen key), it is not single-use (the proof's jti is).
type DPoPNonces struct {
	key    []byte
	period time.Duration
	now    func() time.Time
}

// DefaultNoncePeriod is the slot length of DPoPNonces.
const DefaultNoncePeriod = 5 * time.Minute

// NewDPoPNonces returns DPoPNonces under key (32 bytes or more), with slots
// of period (default DefaultNoncePeriod) on the clock now (default
// time.Now).
func NewDPoPNonces(key []byte, period time.Duration, now func() time.Time) *DPoPNonces {
	if period <= 0 {
		period = DefaultNoncePeriod
	}
	if now == nil {
		now = time.Now
	}
	return &DPoPNonces{key: key, period: period, now: now}
}

func (n *DPoPNonces) slot() uint64 { return uint64(n.now().UnixNano() / int64(n.period)) }

// make returns the nonce of slot: base64url of the slot (8 bytes) and the
// first 16 bytes of its HMAC-SHA-256.
func (n *DPoPNonces) make(slot uint64) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], slot)
	m := hmac.New(sha256.New, n.key)
	m.Write([]byte("dpop-nonce"))
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return b64.EncodeToString(b[:])
}

// Current is the nonce to hand out now.
func (n *DPoPNonces) Current() string { return n.make(n.slot()) }

// Valid reports whether s is the nonce of the current or the previous slot.
func (n *DPoPNonces) Valid(s string) bool {
	raw, err := strictB64.DecodeString(s)
	if err != nil || len(raw) != 24 {
		return false
	}
	slot, cur := binary.BigEndian.Uint64(raw[:8]), n.slot()
	if slot != cur && slot+1 != cur {
		return false
	}
	return hmac.Equal([]byte(n.make(slot)), []byte(s))
}
