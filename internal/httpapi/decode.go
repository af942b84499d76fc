package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// readJSON reads and checks a JSON request body: the media type, the size
// limit, well-formed UTF-8 JSON of the right types, no unknown fields, no
// duplicate keys, keys that match a field exactly (encoding/json would
// also take "PRODUCT_KEY"), and no trailing data. It returns the raw body
// too, for idempotency hashes.
func readJSON(c echo.Context, dst any) ([]byte, error) {
	raw, err := readBody(c)
	if err != nil {
		return nil, err
	}
	// Only an object: encoding/json takes null as "nothing to set", which
	// would reach validation as an empty request.
	if body := bytes.TrimSpace(raw); len(body) > 0 && body[0] != '{' {
		if err := json.Unmarshal(body, new(any)); err != nil {
			return nil, decodeError(err) // not JSON at all: say where it breaks
		}
		return nil, errorf(http.StatusBadRequest, "malformed_json", "want a JSON object, got %s", jsonKind(body[0]))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return nil, decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errorf(http.StatusBadRequest, "malformed_json", "unexpected data after the JSON object")
	}
	if e := checkKeys(raw, jsonNames(reflect.TypeOf(dst))); e != nil {
		return nil, e
	}
	return raw, nil
}

// readBody checks the media type, its charset and the content coding, and
// reads the body (within the route's limit) as UTF-8.
func readBody(c echo.Context) ([]byte, error) {
	req := c.Request()
	ct := req.Header.Get(echo.HeaderContentType)
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return nil, errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json, got %q", ct)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "charset must be utf-8, got %q", cs)
	}
	if ce := req.Header.Values("Content-Encoding"); len(ce) > 0 && !(len(ce) == 1 && strings.EqualFold(ce[0], "identity")) {
		return nil, errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Encoding %q is not accepted: send the body uncompressed", strings.Join(ce, ", "))
	}
	var buf bytes.Buffer
	if n := req.ContentLength; n > 0 {
		buf.Grow(int(min(n, MaxBatchBody)) + bytes.MinRead) // one allocation, not a doubling series
	}
	_, err = buf.ReadFrom(req.Body)
	raw := buf.Bytes()
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "too_large", "request body is larger than %d bytes", tooBig.Limit)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.Response().Header().Set("Connection", "close")
			return nil, errorf(http.StatusRequestTimeout, "request_timeout", "the request body did not arrive in time")
		}
		return nil, errorf(http.StatusBadRequest, "bad_request", "the request body could not be read")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, errorf(http.StatusBadRequest, "malformed_json", "request body is empty; want a JSON object")
	}
	return raw, nil
}

// jsonNames returns the JSON names of the fields of struct type t (through
// pointers and embedded structs), or nil when t is not a struct.
func jsonNames(t reflect.Type) map[string]bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	names := map[string]bool{}
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case name == "-":
		case f.Anonymous && name == "":
			for n := range jsonNames(f.Type) {
				names[n] = true
			}
		case name != "":
			names[name] = true
		case f.IsExported():
			names[f.Name] = true
		}
	}
	return names
}

// checkKeys refuses, in the top-level object of raw (already decoded
// without error), a key seen twice, a key that is not exactly one of names
// (nil names: any key) and a value that is not valid UTF-8 (encoding/json
// would silently turn it into U+FFFD).
func checkKeys(raw []byte, names map[string]bool) *Error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		if e := checkKey(t.(string), seen, names); e != nil {
			return e
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil
		}
		if e := checkUTF8(t.(string), v); e != nil {
			return e
		}
	}
	return nil
}

// checkUTF8 refuses the value v of field k when it is not valid UTF-8.
func checkUTF8(k string, v []byte) *Error {
	if utf8.Valid(v) {
		return nil
	}
	e := errorf(http.StatusUnprocessableEntity, "validation_failed", "%s: not valid UTF-8", k)
	e.Details = append(e.Details, map[string]string{"field": k, "message": "not valid UTF-8"})
	return e
}

func checkKey(k string, seen, names map[string]bool) *Error {
	if seen[k] {
		e := errorf(http.StatusBadRequest, "malformed_json", "duplicate key %q", k)
		e.Details = append(e.Details, map[string]string{"field": k, "message": "duplicate key"})
		return e
	}
	seen[k] = true
	if names != nil && !names[k] {
		e := errorf(http.StatusBadRequest, "unknown_field", "unknown field %q (field names are lower-case and exact)", k)
		e.Details = append(e.Details, map[string]string{"field": k, "message": "unknown field"})
		return e
	}
	return nil
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

// jsonKind names the kind of JSON value that starts with b.
func jsonKind(b byte) string {
	switch b {
	case 'n':
		return "null"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}
