package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/service"
)

func (s *server) createDistribution(c echo.Context) error {
	var req distribution.Request
	raw, err := readJSON(c, &req)
	if err != nil {
		return err
	}
	return s.idempotent(c, raw, func() (int, any, error) {
		d, err := s.Service.Submit(c.Request().Context(), teamOf(c), req)
		if err != nil {
			var se *service.Error
			if errors.As(err, &se) && se.Code == service.CodeDuplicate && se.ExistingID != "" {
				c.Response().Header().Set(echo.HeaderLocation, "/v1/distributions/"+se.ExistingID)
			}
			return 0, nil, err
		}
		c.Response().Header().Set(echo.HeaderLocation, "/v1/distributions/"+d.ID)
		return http.StatusAccepted, d, nil
	})
}

func (s *server) getDistribution(c echo.Context) error {
	wait, state, err := longPollParams(c, s.MaxWait)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	d, err := s.Service.Await(ctx, teamOf(c), c.Param("id"), state, wait)
	if err != nil {
		if ctx.Err() != nil {
			return nil // the caller left
		}
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func longPollParams(c echo.Context, maxWait time.Duration) (time.Duration, distribution.State, error) {
	var wait time.Duration
	if w := c.QueryParam("wait"); w != "" {
		d, err := time.ParseDuration(w)
		if err != nil {
			if n, nerr := strconv.Atoi(w); nerr == nil && n >= 0 && n <= int(maxWait/time.Second) {
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil || d < 0 || d > maxWait {
			return 0, "", errorf(http.StatusBadRequest, "bad_parameter", "wait must be a duration from 0s to %v (e.g. 30s), got %q", maxWait, w)
		}
		wait = d
	}
	state := distribution.State(c.QueryParam("state"))
	if state != "" && !state.Valid() {
		return 0, "", errorf(http.StatusBadRequest, "bad_parameter", "state must be one of %v, got %q", distribution.States, state)
	}
	return wait, state, nil
}

func (s *server) cancelDistribution(c echo.Context) error {
	d, err := s.Service.Cancel(c.Request().Context(), teamOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (s *server) retryDistribution(c echo.Context) error {
	d, err := s.Service.Retry(c.Request().Context(), teamOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, d)
}

type listPage struct {
	Items      []distribution.Distribution `json:"items"`
	NextCursor string                      `json:"next_cursor,omitempty"`
}

func (s *server) listDistributions(c echo.Context) error {
	return s.list(c, c.QueryParam("batch_id"))
}

// listFilter decodes the query parameters of a listing.
func listFilter(c echo.Context, batchID string) (distribution.Filter, error) {
	f := distribution.Filter{BatchID: batchID, ProductKey: c.QueryParam("product_key"), Limit: 100}
	if st := c.QueryParam("state"); st != "" {
		if !distribution.State(st).Valid() {
			return f, errorf(http.StatusBadRequest, "bad_parameter", "state must be one of %v, got %q", distribution.States, st)
		}
		f.State = distribution.State(st)
	}
	if batchID != "" && !distribution.ValidID(distribution.KindBatch, batchID) {
		return f, errorf(http.StatusBadRequest, "bad_parameter", "batch_id %q is not a batch id", batchID)
	}
	if len(f.ProductKey) > 64 {
		return f, errorf(http.StatusBadRequest, "bad_parameter", "product_key is longer than 64")
	}
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return f, errorf(http.StatusBadRequest, "bad_parameter", "limit must be a whole number from 1 to 1000, got %q", l)
		}
		f.Limit = n
	}
	if cur := c.QueryParam("cursor"); cur != "" {
		if !distribution.ValidID(distribution.KindDistribution, cur) {
			return f, errorf(http.StatusBadRequest, "bad_cursor", "cursor %q is not one this API returned", cur)
		}
		f.After = cur
	}
	return f, nil
}

func (s *server) list(c echo.Context, batchID string) error {
	f, err := listFilter(c, batchID)
	if err != nil {
		return err
	}
	items, next, err := s.Service.List(c.Request().Context(), teamOf(c), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listPage{Items: items, NextCursor: next})
}
