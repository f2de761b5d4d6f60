package tokens

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The exact checks of RFC 8725 §3.8–3.12 that golang-jwt does not make: it
// decodes the header into a map and the payload into a struct, so it
// ignores unknown header members, takes the last of duplicated members,
// matches claim names without regard to case and reads a number given as a
// JSON string. checkJSON runs on the raw segments before golang-jwt does.

// headerMembers are the only JOSE header members a token may carry: those
// Issuer.sign writes. Everything else (crit, b64, zip, cty, jwk, jku, x5u,
// x5c, …) is refused, so no extension changes how a token is read and no
// key is ever taken or fetched from the token itself.
var headerMembers = [...]string{"alg", "kid", "typ"}

// jsonType is the JSON type a member must have.
type jsonType uint8

const (
	jsonString   jsonType = iota + 1
	jsonNumber            // a NumericDate or a count of seconds
	jsonStrings           // an array of strings
	jsonAudience          // a string or an array of strings (RFC 7519 §4.1.3)
	jsonObject            // a JSON object (cnf, RFC 7800)
)

// claimTypes are the types of the claims either token kind reads. A token
// may carry other claims, which are ignored, but none whose name equals one
// of these except for case (encoding/json would decode it into the field).
var claimTypes = map[string]jsonType{
	"iss": jsonString, "sub": jsonString, "aud": jsonAudience, "jti": jsonString,
	"exp": jsonNumber, "iat": jsonNumber, "nbf": jsonNumber,
	"client_id": jsonString, "sid": jsonString, "auth_time": jsonNumber,
	"acr": jsonString, "amr": jsonStrings,
	"scope": jsonString, "acr_values": jsonString, "max_age": jsonNumber,
	"cnf": jsonObject,
}

// strictB64 is the segment encoding golang-jwt uses under
// jwt.WithStrictDecoding.
var strictB64 = base64.RawURLEncoding.Strict()

// checkJSON refuses a compact JWS whose header has a member other than
// alg, kid and typ (each a string) or whose payload has a claim of
// claimTypes with the wrong JSON type or the wrong case; in both, a
// duplicated member is refused. The signature is checked afterwards by
// golang-jwt.
func checkJSON(token string) error {
	head, rest, ok1 := strings.Cut(token, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return invalid("token is malformed: not three segments")
	}
	h, err := segment(head)
	if err != nil {
		return invalid("token is malformed: header: " + err.Error())
	}
	for name, v := range h {
		if !inHeader(name) {
			return invalid(fmt.Sprintf("forbidden header member %.40q", name))
		}
		if !hasType(v, jsonString) {
			return invalid(fmt.Sprintf("header member %s is not a string", name))
		}
	}
	p, err := segment(payload)
	if err != nil {
		return invalid("token is malformed: payload: " + err.Error())
	}
	for name, v := range p {
		want, known := claimTypes[name]
		if !known {
			for reg := range claimTypes {
				if strings.EqualFold(name, reg) {
					return invalid(fmt.Sprintf("claim %.40q is %s in another case", name, reg))
				}
			}
			continue
		}
		if !hasType(v, want) {
			return invalid(fmt.Sprintf("claim %s has the wrong JSON type", name))
		}
	}
	return nil
}

func inHeader(name string) bool {
	for _, m := range headerMembers {
		if name == m {
			return true
		}
	}
	return false
}

// segment decodes a base64url segment holding one JSON object and returns
// its members. A duplicated member name (after JSON unescaping) or data
// after the object is an error.
func segment(s string) (map[string]json.RawMessage, error) {
	raw, err := strictB64.DecodeString(s)
	if err != nil {
		return nil, errors.New("bad base64url")
	}
	return segmentJSON(raw)
}

// segmentJSON is segment for JSON already decoded.
func segmentJSON(raw []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	m := make(map[string]json.RawMessage)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, errors.New("bad JSON")
		}
		name, _ := t.(string) // a key is always a string
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errors.New("bad JSON")
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("duplicated member %.40q", name)
		}
		m[name] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, errors.New("bad JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return m, nil
}

// hasType reports whether the JSON value v (valid, without surrounding
// space) is of type t.
func hasType(v json.RawMessage, t jsonType) bool {
	if len(v) == 0 {
		return false
	}
	switch t {
	case jsonString:
		return v[0] == '"'
	case jsonNumber:
		return v[0] == '-' || ('0' <= v[0] && v[0] <= '9')
	case jsonStrings:
		if v[0] != '[' {
			return false
		}
		var elems []json.RawMessage
		if err := json.Unmarshal(v, &elems); err != nil {
			return false
		}
		for _, e := range elems {
			if !hasType(e, jsonString) {
				return false
			}
		}
		return true
	case jsonAudience:
		return hasType(v, jsonString) || hasType(v, jsonStrings)
	case jsonObject:
		return v[0] == '{'
	}
	return false
}
