package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/distq/distq/internal/service"
)

// idempotent answers with fn's status and value, once per Idempotency-Key:
// the service keeps the encoded answer, and a repeat with the same key and
// body gets it again (200, Idempotent-Replayed: true). Without the header
// fn simply runs.
func (s *server) idempotent(c echo.Context, body []byte, fn func() (int, any, error)) error {
	key := c.Request().Header.Get("Idempotency-Key")
	if key == "" && len(c.Request().Header.Values("Idempotency-Key")) > 0 {
		// Sent but empty: a client bug to report, not a request without a key.
		return errorf(http.StatusBadRequest, string(service.CodeBadIdempotencyKey), "Idempotency-Key must be 1 to 255 printable ASCII characters, got an empty one")
	}
	if key == "" {
		status, v, err := fn()
		if err != nil {
			return err
		}
		return c.JSON(status, v)
	}
	request := append([]byte(c.Request().Method+" "+c.Path()+"\n"), canonicalJSON(body)...)
	a, replayed, err := s.Service.Once(c.Request().Context(), teamOf(c), key, request, func() (service.Answer, error) {
		status, v, err := fn()
		if err != nil {
			return service.Answer{}, err
		}
		raw, err := json.Marshal(v)
		return service.Answer{Status: status, Body: raw}, err
	})
	if err != nil {
		return err
	}
	if replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
		return c.JSONBlob(http.StatusOK, a.Body)
	}
	return c.JSONBlob(a.Status, a.Body)
}

// canonicalJSON is body in one form for every serialisation of the same
// JSON value: object keys sorted, no insignificant space, strings escaped
// one way, numbers kept as written (json.Number: 1.0 and 1 differ, as they
// may to a decoder). So the same request pretty-printed or with its keys
// reordered is a repeat, not another request. Anything that does not
// decode as one JSON value is kept as it is.
func canonicalJSON(body []byte) []byte {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return body
	}
	if _, err := d.Token(); err == nil {
		return body // more than one value: not ours to reinterpret
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}
