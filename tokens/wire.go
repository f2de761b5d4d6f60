package tokens

import (
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// accessJWT is the JSON payload of an access token (RFC 9068 §2.2). It is
// decoded straight into this struct, never into a map.
type accessJWT struct {
	jwt.RegisteredClaims
	ClientID string           `json:"client_id,omitempty"`
	SID      string           `json:"sid,omitempty"`
	AuthTime *jwt.NumericDate `json:"auth_time,omitempty"`
	ACR      string           `json:"acr,omitempty"`
	AMR      []string         `json:"amr,omitempty"`
	Cnf      *confirmation    `json:"cnf,omitempty"`
}

// confirmation is the RFC 7800 cnf claim with the RFC 9449 §6.1 member
// jkt, the only confirmation method this service issues or accepts.
type confirmation struct {
	JKT string `json:"jkt"`
}

// bind returns the cnf claim for jkt, nil for none.
func bind(jkt string) *confirmation {
	if jkt == "" {
		return nil
	}
	return &confirmation{JKT: jkt}
}

// jkt is the thumbprint of c, "" for none.
func (c *confirmation) jkt() string {
	if c == nil {
		return ""
	}
	return c.JKT
}

// pendingJWT is the JSON payload of an mfa_pending token. The level a
// step-up must reach travels as "acr_values" (the RFC 9470 request
// parameter), not "acr": "acr" in a JWT states a level already reached, and
// a pending token has reached none worth trusting.
type pendingJWT struct {
	jwt.RegisteredClaims
	Scope     string        `json:"scope"`
	AMR       []string      `json:"amr,omitempty"`
	SID       string        `json:"sid,omitempty"`
	ACRValues string        `json:"acr_values,omitempty"`
	MaxAge    int64         `json:"max_age,omitempty"`
	Cnf       *confirmation `json:"cnf,omitempty"`
}

func (c *accessJWT) claims() AccessClaims {
	return AccessClaims{
		Issuer:   c.Issuer,
		Subject:  c.Subject,
		Audience: c.Audience,
		ClientID: c.ClientID,
		IssuedAt: fromNumeric(c.IssuedAt),
		Expiry:   fromNumeric(c.ExpiresAt),
		ID:       c.ID,
		Session:  c.SID,
		AuthTime: fromNumeric(c.AuthTime),
		ACR:      c.ACR,
		AMR:      c.AMR,
		JKT:      c.Cnf.jkt(),
	}
}

func (c *pendingJWT) claims() PendingClaims {
	return PendingClaims{
		Issuer:   c.Issuer,
		Subject:  c.Subject,
		Audience: c.Audience,
		IssuedAt: fromNumeric(c.IssuedAt),
		Expiry:   fromNumeric(c.ExpiresAt),
		ID:       c.ID,
		AMR:      c.AMR,
		Session:  c.SID,
		ACR:      c.ACRValues,
		MaxAge:   c.MaxAge,
		JKT:      c.Cnf.jkt(),
	}
}

// fromNumeric returns d in UTC, or the zero time for an absent claim.
func fromNumeric(d *jwt.NumericDate) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.UTC()
}

// numeric returns t as a NumericDate; t is already whole seconds.
func numeric(t time.Time) *jwt.NumericDate {
	return &jwt.NumericDate{Time: t}
}

// seconds truncates t to whole seconds in UTC, the precision of a JWT
// NumericDate, so that claims returned by the Issuer equal those a Verifier
// decodes.
func seconds(t time.Time) time.Time {
	return time.Unix(t.Unix(), 0).UTC()
}
