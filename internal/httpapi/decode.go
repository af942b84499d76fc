package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// readJSON reads and checks a JSON request body: the media type, the size
// limit, well-formed JSON of the right types, no unknown fields, and no
// trailing data. It returns the raw body too, for idempotency hashes.
func readJSON(c echo.Context, dst any) ([]byte, error) {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return nil, errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json, got %q", ct)
	}
	raw, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "too_large", "request body is larger than %d bytes", tooBig.Limit)
		}
		return nil, errorf(http.StatusBadRequest, "bad_request", "reading the body: %v", err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, errorf(http.StatusBadRequest, "malformed_json", "request body is empty; want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return nil, decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errorf(http.StatusBadRequest, "malformed_json", "unexpected data after the JSON object")
	}
	return raw, nil
}

func decodeError(err error) *Error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return errorf(http.StatusBadRequest, "malformed_json", "malformed JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		e := errorf(http.StatusBadRequest, "malformed_json", "field %s: want %s, got JSON %s", field, typ.Type, typ.Value)
		e.Details = append(e.Details, map[string]string{"field": field, "message": fmt.Sprintf("want %s", typ.Type)})
		return e
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, "malformed_json", "malformed JSON: unexpected end of body")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		e := errorf(http.StatusBadRequest, "unknown_field", "unknown field %s", name)
		e.Details = append(e.Details, map[string]string{"field": strings.Trim(name, `"`), "message": "unknown field"})
		return e
	}
	return errorf(http.StatusBadRequest, "malformed_json", "malformed JSON: %v", err)
}
