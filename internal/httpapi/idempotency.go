package httpapi

import (
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
	if key == "" {
		status, v, err := fn()
		if err != nil {
			return err
		}
		return c.JSON(status, v)
	}
	request := append([]byte(c.Request().Method+" "+c.Path()+"\n"), body...)
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
