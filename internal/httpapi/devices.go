package httpapi

import (
	"encoding/csv"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/distq/distq/internal/devices"
	"github.com/distq/distq/internal/service"
)

// MaxDevicesBody bounds the body of POST /v1/device-distributions: 100,000
// device names of 32 characters in JSON fit in 4 MiB.
const MaxDevicesBody = MaxBatchBody

// deviceRoutes registers the device distribution routes on v1.
func (s *server) deviceRoutes(v1 *echo.Group, mw func(extra ...echo.MiddlewareFunc) []echo.MiddlewareFunc) {
	v1.POST("/device-distributions", s.createDevices, mw(bodyLimit(MaxDevicesBody))...)
	v1.GET("/device-distributions", s.listDevices, mw()...)
	v1.GET("/device-distributions/:id", s.getDevices, mw()...)
	v1.GET("/device-distributions/:id/results", s.deviceResults, mw()...)
	v1.POST("/device-distributions/:id/cancel", s.cancelDevices, mw()...)
	v1.POST("/device-distributions/:id/retry", s.retryDevices, mw()...)
}

func (s *server) createDevices(c echo.Context) error {
	release, err := acquireDecode(c.Request().Context())
	if err != nil {
		return err
	}
	var req devices.Request
	raw, err := readJSON(c, &req)
	release()
	if err != nil {
		return err
	}
	return s.idempotent(c, raw, func() (int, any, error) {
		v, err := s.Service.SubmitDevices(c.Request().Context(), teamOf(c), req)
		if err != nil {
			return 0, nil, err
		}
		c.Response().Header().Set(echo.HeaderLocation, "/v1/device-distributions/"+v.ID)
		return http.StatusAccepted, v, nil
	})
}

func (s *server) getDevices(c echo.Context) error {
	v, err := s.Service.GetDevices(c.Request().Context(), teamOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// pageLimit reads the limit parameter: 1 to max, def when absent.
func pageLimit(c echo.Context, def, max int) (int, error) {
	l := c.QueryParam("limit")
	if l == "" {
		return def, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > max {
		return 0, errorf(http.StatusBadRequest, "bad_parameter", "limit must be a whole number from 1 to %d, got %q", max, l)
	}
	return n, nil
}

type devicePage struct {
	Items      []service.DeviceView `json:"items"`
	NextCursor string               `json:"next_cursor,omitempty"`
}

func (s *server) listDevices(c echo.Context) error {
	// The list takes no filter: one silently ignored would answer the
	// wrong set.
	for k := range c.QueryParams() {
		if k != "cursor" && k != "limit" {
			return errorf(http.StatusBadRequest, "bad_parameter", "%q is not a parameter of this list (only cursor and limit: it takes no filter)", k)
		}
	}
	limit, err := pageLimit(c, 100, 1000)
	if err != nil {
		return err
	}
	items, next, err := s.Service.ListDevices(c.Request().Context(), teamOf(c), c.QueryParam("cursor"), limit)
	if err != nil {
		return err
	}
	if items == nil {
		items = []service.DeviceView{}
	}
	return c.JSON(http.StatusOK, devicePage{Items: items, NextCursor: next})
}

type resultPage struct {
	Items      []devices.Result `json:"items"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// deviceResults serves a page of per-device results as JSON, or every
// result as CSV (format=csv, or Accept: text/csv).
func (s *server) deviceResults(c echo.Context) error {
	outcome := service.Outcome(c.QueryParam("outcome"))
	switch outcome {
	case "":
		outcome = service.OutcomeFailed
	case service.OutcomeFailed, service.OutcomeAll:
	default:
		return errorf(http.StatusBadRequest, "bad_parameter", "outcome must be failed or all, got %q", outcome)
	}
	format := c.QueryParam("format")
	if format == "" && c.Request().Header.Get(echo.HeaderAccept) == "text/csv" {
		format = "csv"
	}
	if format != "" && format != "csv" && format != "json" {
		return errorf(http.StatusBadRequest, "bad_parameter", "format must be json or csv, got %q", format)
	}
	ctx, team, id := c.Request().Context(), teamOf(c), c.Param("id")
	if format != "csv" {
		limit, err := pageLimit(c, 1000, 10000)
		if err != nil {
			return err
		}
		items, next, err := s.Service.DeviceResults(ctx, team, id, outcome, c.QueryParam("cursor"), limit)
		if err != nil {
			return err
		}
		if items == nil {
			items = []devices.Result{}
		}
		return c.JSON(http.StatusOK, resultPage{Items: items, NextCursor: next})
	}
	// The first page decides the status: a refusal is a JSON error, not a
	// CSV that ends early.
	items, next, err := s.Service.DeviceResults(ctx, team, id, outcome, "", 5000)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+id+`-`+string(outcome)+`.csv"`)
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	_ = w.Write([]string{"device_name", "job", "code", "message", "target_instance_id"})
	for {
		for _, r := range items {
			_ = w.Write([]string{r.DeviceName, strconv.Itoa(r.Job), r.Code, r.Message, r.TargetInstanceID})
		}
		if next == "" {
			break
		}
		if items, next, err = s.Service.DeviceResults(ctx, team, id, outcome, next, 5000); err != nil {
			// Too late for a status: the CSV ends without its last rows,
			// and the client sees a broken transfer.
			w.Flush()
			panic(http.ErrAbortHandler)
		}
	}
	w.Flush()
	return w.Error()
}

func (s *server) cancelDevices(c echo.Context) error {
	v, err := s.Service.CancelDevices(c.Request().Context(), teamOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *server) retryDevices(c echo.Context) error {
	v, err := s.Service.RetryDevices(c.Request().Context(), teamOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, v)
}
