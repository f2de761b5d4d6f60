package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// maxBody bounds every request body; the largest legitimate one (a WebAuthn
// registration) is far smaller.
const maxBody = 64 << 10

// decode reads exactly one JSON object into v: the content type must be
// application/json, the body an object (not null, an array or a scalar),
// unknown fields and trailing data are refused, and the body is capped at
// maxBody bytes.
func decode(c *gin.Context, v any) error {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mt != "application/json" {
		return errNotJSON
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errTooLarge
		}
		return badRequest("the body could not be read")
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return badRequest("the body is empty")
	}
	if trimmed[0] != '{' {
		// encoding/json would take null for an empty object.
		return badRequest("the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest(describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("the body must hold exactly one JSON object")
	}
	// What encoding/json let pass is checked again, strictly; v is not
	// used when this fails.
	return checkMembers(body, v)
}

// describeJSONError names the field at fault without echoing the input.
func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return "field " + typeErr.Field + " has the wrong type"
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return "the body is not valid JSON"
	case errors.Is(err, io.EOF):
		return "the body is empty"
	}
	const unknown = "json: unknown field "
	if msg := err.Error(); len(msg) > len(unknown) && msg[:len(unknown)] == unknown {
		return "unknown field " + sanitize(msg[len(unknown):])
	}
	return "the body is not a valid request"
}

func jsonEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

// writeJSON renders v with Cache-Control: no-store (RFC 6749 §5.1 for
// token responses; nothing here is cacheable).
func writeJSON(c *gin.Context, status int, v any) {
	c.Header("Cache-Control", "no-store")
	c.Header("Content-Type", "application/json")
	c.Status(status)
	_ = jsonEncoder(c.Writer).Encode(v)
}

// checkMembers holds the body's top-level members to v's JSON names
// exactly, where encoding/json is lenient: a member name must match a
// field's name to the letter (encoding/json matches case-insensitively, so
// {"USERNAME":…} would fill Username), may appear once (encoding/json keeps
// the last), and may not be null (encoding/json leaves the zero value). A
// field without omitempty is required.
func checkMembers(body []byte, v any) error {
	fields := map[string]bool{} // name → required
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fields[name] = !strings.Contains(opts, "omitempty")
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // {
		return badRequest(describeJSONError(err))
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return badRequest(describeJSONError(err))
		}
		name, _ := tok.(string)
		if _, ok := fields[name]; !ok {
			return badRequest("unknown field " + sanitize(name))
		}
		if seen[name] {
			return badRequest("field " + strconv.Quote(name) + " appears more than once")
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return badRequest(describeJSONError(err))
		}
		if string(raw) == "null" {
			return badRequest("field " + strconv.Quote(name) + " must not be null")
		}
	}
	for name, required := range fields {
		if required && !seen[name] {
			return badRequest("field " + strconv.Quote(name) + " is required")
		}
	}
	return nil
}
