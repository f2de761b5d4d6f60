package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

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
	return nil
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
